"""The intervention plan of a case: the editor, its lifecycle, and the plans list.

`/cases/{id}/plan` shows the plan: the editor while it can be changed (a plain form; the
"add" buttons post the same form and bring it back with one more row, so no JavaScript
is needed), the plan as it stands, its history after approval, and the actions the
viewer may take in its state. Routes parse the form, call one `shared.plans` service and
map its errors: a plan the viewer may not see is a 404, a role that may not act a 403,
invalid input or a refused step re-renders the page with the messages and the input
kept (400), money that doesn't fit names the fund and what is left (409).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from dashboard.deps import (
    COORDINATION,
    STAFF,
    Session,
    Viewer,
    all_or_nothing,
    allow,
    settings_of,
    writes_on_read,
)
from dashboard.params import (
    BadDay,
    FormText,
    QueryText,
    QueryWord,
    RecordId,
    read_day,
    storable_form,
)
from dashboard.templating import render
from shared import money, program
from shared.cases.errors import CaseNotFound, CaseNotVisible
from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.db import utcnow
from shared.funds.errors import FundError, FundExhausted
from shared.funds.models import Fund
from shared.i18n import N_, Translator
from shared.plans import catalog, document, history, lifecycle, listing, scans, view
from shared.plans import service as plans
from shared.plans.errors import (
    CaseNotReady,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
    PlanError,
    PlanNotFound,
)
from shared.plans.form import EditorRows, parse_plan_form, stored_values, submitted_rows
from shared.plans.lifecycle import Action
from shared.plans.models import Plan, PlanOutcome, PlanState, SupportState, Trend
from shared.plans.pdf import render_plan_pdf
from shared.settings import Settings
from shared.staff.models import Role, StaffUser

router = APIRouter()
Staff = Annotated[Viewer, Depends(allow(*STAFF))]
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]

NOTICES = {
    "started": N_("The plan is started: fill it in and save it as you go."),
    "saved": N_("Plan saved."),
    "sent_back": N_(
        "Plan saved. The change needs a new approval: the plan is back with the coordinators."
    ),
    "submitted": N_("Plan sent to the coordinators for approval."),
    "approved": N_("Plan approved: the money is committed against its funds."),
    "returned": N_("Plan returned to the case worker with your comment."),
    "signed": N_("Signature recorded: the plan is active."),
    "closed": N_("Plan closed, and the case with it."),
    "payment": N_("Payment recorded."),
    "scan": N_("The scan of the signed plan is saved."),
}
SCAN_REFUSED = {
    "empty": N_("Choose the file of the scan."),
    "too_large": N_("The file is too large: at most 10 MB."),
    "wrong_type": N_("The scan must be a PDF, JPEG or PNG file."),
}
SCAN_TOO_EARLY = N_("A scan can be kept once the plan is approved.")
ILLEGAL = {
    Action.EDIT: N_("The plan can't be changed in this state."),
    Action.SUBMIT: N_("Only a draft or a returned plan can be submitted."),
    Action.APPROVE: N_("Only a submitted plan can be approved."),
    Action.RETURN: N_("Only a submitted plan can be returned."),
    Action.SIGN: N_("Only an approved plan can be signed."),
    Action.CLOSE: N_("Only an approved or active plan can be closed."),
}
ACTION_LABELS = {
    Action.SUBMIT: N_("Submit for approval"),
    Action.APPROVE: N_("Approve"),
    Action.RETURN: N_("Return with a comment"),
    Action.SIGN: N_("Record the signature"),
    Action.CLOSE: N_("Close the plan"),
}
FUND_EXHAUSTED = N_("The fund “{fund}” has {left} left: this plan needs {needed} more.")
FUND_REFUSED = N_("A fund of this plan refused the money: check the funds page.")
NOT_READY = N_("Only an admitted case gets a plan: record the interview's outcome first.")
LISTS = ("objective", "commitment", "support", "team")
OUTCOME_LABELS = {
    PlanOutcome.EMPLOYED.value: N_("Employed"),
    PlanOutcome.INTERNSHIP_STARTED.value: N_("Internship started"),
    PlanOutcome.SELF_EMPLOYMENT_RESTARTED.value: N_("Self-employment restarted"),
    PlanOutcome.REFERRED.value: N_("Referred to another service"),
    PlanOutcome.DROPPED_OUT.value: N_("Dropped out"),
    PlanOutcome.OTHER.value: N_("Other"),
}
TREND_LABELS = {
    Trend.BETTER.value: N_("Better"),
    Trend.SAME.value: N_("Same"),
    Trend.WORSE.value: N_("Worse"),
}
BASELINES = (
    ("income", N_("Income")),
    ("debts", N_("Debts")),
    ("urgent_expenses", N_("Urgent expenses")),
)


def _http(exc: PlanError) -> HTTPException:
    if isinstance(exc, PlanNotFound):
        return HTTPException(status_code=404)
    if isinstance(exc, NotAllowed):
        return HTTPException(status_code=403)
    return HTTPException(status_code=400)


async def _choices(session: Session, t: Translator) -> dict[str, Any]:
    """The options the editor offers, read on their own (for the printable plan)."""
    staff = (
        await session.execute(
            select(StaffUser.id, StaffUser.display_name)
            .where(
                StaffUser.active.is_(True),
                StaffUser.role.in_([Role.OPERATORE.value, Role.COORDINATORE.value]),
            )
            .order_by(StaffUser.display_name)
        )
    ).all()
    funds = (
        await session.execute(select(Fund.id, Fund.name, Fund.active).order_by(Fund.name))
    ).all()
    return _options([(i, name) for i, name in staff], [(i, name) for i, name, _ in funds], t)


def _options(
    staff: Sequence[tuple[int, str]], funds: Sequence[tuple[int, str]], t: Translator
) -> dict[str, Any]:
    """The options the editor offers: who can be responsible, the funds, kinds, states."""
    people = [(f"staff:{i}", name) for i, name in staff]
    organisations = [(f"org:{key}", name) for key, name in program.ORGANISATIONS]
    return {
        "responsible_options": [("", t("Choose…")), *people, *organisations],
        "member_options": [("", t("Someone without an account")), *people],
        "organisation_options": [("", t("No organisation")), *organisations],
        "fund_options": [("", t("No fund")), *((str(i), n) for i, n in funds)],
        "fund_names": dict(funds),
        "staff_names": dict(staff),
        "kind_options": [(k.value, t(catalog.intervention(k).label)) for k in catalog.kinds()],
        "support_states": [
            (s.value, t(document.SUPPORT_STATE_LABELS[s.value])) for s in SupportState
        ],
    }


def _support_views(
    editor: EditorRows,
    values: Mapping[str, Sequence[str]],
    errors: Mapping[str, str],
    t: Translator,
) -> list[dict[str, Any]]:
    return [
        {
            "n": n,
            "kind": kind.value,
            "label": t(catalog.intervention(kind).label),
            "uses_fund": catalog.intervention(kind).uses_fund,
            "fields": catalog.details_layout(
                kind, values=values, errors=errors, t=t, prefix=f"support-{n}."
            ),
        }
        for n, kind in editor.supports
    ]


async def _plan_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    case_id: int,
    *,
    values: Mapping[str, Sequence[str]] | None = None,
    editor: EditorRows | None = None,
    errors: Mapping[str, str] | None = None,
    params: Mapping[str, Mapping[str, object]] | None = None,
    problem: str = "",
    notice: str = "",
    forms: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    t = Translator(viewer.language)
    try:
        shown_page = await view.get_plan_page(session=session, case_id=case_id, staff=viewer.member)
    except CaseNotFound:
        raise HTTPException(status_code=404) from None
    except (CaseNotVisible, NotAllowed):
        raise HTTPException(status_code=403) from None
    case, citizen, rows = shown_page.case, shown_page.citizen, shown_page.rows
    choices = _options(
        [(s.id, s.display_name) for s in shown_page.staff],
        [(f.id, f.name) for f in shown_page.funds],
        t,
    )
    context: dict[str, Any] = {
        "case": case,
        "citizen": citizen,
        "rows": rows,
        "problem": problem,
        "notice": NOTICES.get(notice, ""),
        "forms": forms or {},
        "errors": {
            name: t(message, **(params or {}).get(name, {}))
            for name, message in (errors or {}).items()
        },
        "has_errors": bool(errors),
        **choices,
    }
    if rows is not None:
        plan = rows.plan
        settings = settings_of(request)
        editable = lifecycle.can(Action.EDIT, plan.state, viewer.role)
        warnings = plans.plan_warnings(rows, settings=settings, language=t.language)
        context |= {
            "plan": plan,
            "editable": editable,
            "actions": [
                (a.value, ACTION_LABELS[a])
                for a in lifecycle.actions_for(plan.state, viewer.role)
                if a is not Action.EDIT
            ],
            "state_label": document.STATE_LABELS[plan.state],
            "version_line": document.version_line(plan.version, _dated(plan, settings), t),
            "history": [
                (
                    change,
                    history.describe(
                        change,
                        t,
                        staff_names=choices["staff_names"],
                        fund_names=choices["fund_names"],
                    ),
                )
                for change in shown_page.history
            ],
            "scans": shown_page.scans,
            "kind_labels": {k.value: catalog.intervention(k).label for k in catalog.kinds()},
            "euros": lambda cents: money.format_euros(cents, t.language),
            "may_scan": plan.state in scans.SCANNED_STATES,
            "signed_on": document.day(plan.signed_on, t),
            "warnings": [(w.field, t(w.message, **w.params)) for w in warnings],
            "outcome_options": [(k, t(v)) for k, v in OUTCOME_LABELS.items()],
            "trend_options": [(k, t(v)) for k, v in TREND_LABELS.items()],
            "baselines": [(k, t(v)) for k, v in BASELINES],
            "today": utcnow().astimezone(settings.tz).date().isoformat(),
        }
        # The page shows the editor or the plan as printed, never both: build only that.
        if editable:
            if values is None or editor is None:
                values, editor = stored_values(rows, t.language)
            context |= {
                "values": values,
                "editor": editor,
                "supports_view": _support_views(editor, values, context["errors"], t),
            }
        else:
            context["shown"] = _document(rows, case, citizen, choices, settings, t)
    return render(request, "plans/plan.html", context, status_code=status)


def _dated(plan: Plan, settings: Settings) -> date:
    """The plan's date as printed: the day of its last change, in the program's time zone."""
    return plan.updated_at.astimezone(settings.tz).date()


def _document(
    rows: plans.PlanRows,
    case: Case,
    citizen: Citizen,
    choices: Mapping[str, Any],
    settings: Settings,
    t: Translator,
) -> document.PlanDocument:
    staff_names: Mapping[int, str] = choices["staff_names"]
    owner = rows.plan.owner_id
    return document.build_document(
        rows=rows,
        citizen_name=citizen.name or "",
        citizen_fiscal_code=citizen.fiscal_code,
        case_id=case.id,
        staff_names=staff_names,
        fund_names=choices["fund_names"],
        case_worker=staff_names.get(owner, "") if owner is not None else "",
        dated=_dated(rows.plan, settings),
        t=t,
    )


@router.get("/cases/{case_id}/plan.pdf")
@writes_on_read()
async def plan_pdf(
    request: Request, session: Session, viewer: Staff, case_id: RecordId
) -> Response:
    """The plan to print and sign (A4, in the viewer's language: Italian by default)."""
    t = Translator(viewer.language)
    case = await session.get(Case, case_id)
    if case is None:
        raise HTTPException(status_code=404)
    try:
        rows = await plans.get_plan(session=session, case_id=case_id, staff=viewer.member)
    except PlanError as exc:
        raise _http(exc) from None
    citizen = await session.get(Citizen, case.citizen_id)
    assert citizen is not None
    settings = settings_of(request)
    shown = _document(rows, case, citizen, await _choices(session, t), settings, t)
    content = render_plan_pdf(shown, dated=_dated(rows.plan, settings))
    name = f"piano-caso-{case.id}-v{rows.plan.version}.pdf"
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


@router.get("/cases/{case_id}/plan")
@writes_on_read()
async def plan_page(
    request: Request, session: Session, viewer: Staff, case_id: RecordId, notice: QueryWord = ""
) -> HTMLResponse:
    return await _plan_page(request, session, viewer, case_id, notice=notice)


def _to_plan(case_id: int, notice: str) -> RedirectResponse:
    return RedirectResponse(f"/cases/{case_id}/plan?notice={notice}", status_code=303)


@router.post("/cases/{case_id}/plan/start")
async def start_plan(
    request: Request, session: Session, viewer: Staff, case_id: RecordId
) -> Response:
    try:
        async with all_or_nothing(session):
            await plans.start_plan(
                session=session, case_id=case_id, staff=viewer.member, now=utcnow()
            )
    except CaseNotReady:
        return await _plan_page(request, session, viewer, case_id, problem=NOT_READY, status=400)
    except PlanError as exc:
        raise _http(exc) from None
    return _to_plan(case_id, "started")


async def _editor_fields(request: Request) -> dict[str, list[str]]:
    submitted = await storable_form(request)
    return {
        name: [value for value in submitted.getlist(name) if isinstance(value, str)]
        for name in submitted
        if name != "csrf_token"
    }


@router.post("/cases/{case_id}/plan")
async def save_plan(
    request: Request, session: Session, viewer: Staff, case_id: RecordId
) -> Response:
    fields = await _editor_fields(request)
    editor = submitted_rows(fields)
    adding = (fields.get("add") or [""])[-1]
    if adding:
        # "Add a row" buttons: the form comes back with one more row, nothing is saved.
        what, _, kind = adding.partition(":")
        if what in LISTS and (what != "support" or kind in catalog.CATALOG):
            editor = editor.adding(what, catalog.Kind(kind) if kind else None)
        return await _plan_page(request, session, viewer, case_id, values=fields, editor=editor)
    try:
        data = parse_plan_form(fields)
        async with all_or_nothing(session):
            result = await plans.save_plan(
                session=session, case_id=case_id, data=data, staff=viewer.member,
                settings=settings_of(request), now=utcnow(),
            )  # fmt: skip
    except InvalidInput as exc:
        return await _plan_page(
            request, session, viewer, case_id, values=fields, editor=editor,
            errors=exc.errors, params=exc.params, status=400,
        )  # fmt: skip
    except IllegalTransition as exc:
        return await _plan_page(
            request, session, viewer, case_id, values=fields, editor=editor,
            problem=ILLEGAL[Action(exc.action)], status=400,
        )  # fmt: skip
    except PlanError as exc:
        raise _http(exc) from None
    return _to_plan(case_id, "sent_back" if result.sent_back else "saved")


async def _step(
    request: Request,
    session: Session,
    viewer: Viewer,
    case_id: int,
    action: Action,
    *,
    forms: Mapping[str, str] | None = None,
    signed_on: date | None = None,
    comment: str = "",
    closure: plans.Closure | None = None,
) -> Response:
    staff, now = viewer.member, utcnow()
    try:
        async with all_or_nothing(session):
            if action is Action.SUBMIT:
                await plans.submit_plan(session=session, case_id=case_id, staff=staff, now=now)
            elif action is Action.APPROVE:
                await plans.approve_plan(session=session, case_id=case_id, staff=staff, now=now)
            elif action is Action.RETURN:
                await plans.return_plan(
                    session=session, case_id=case_id, comment=comment, staff=staff, now=now
                )
            elif action is Action.SIGN:
                assert signed_on is not None
                await plans.record_signature(
                    session=session, case_id=case_id, signed_on=signed_on, staff=staff,
                    settings=settings_of(request), now=now,
                )  # fmt: skip
            else:
                assert closure is not None
                await plans.close_plan(
                    session=session, case_id=case_id, closure=closure, staff=staff, now=now
                )
    except InvalidInput as exc:
        return await _plan_page(
            request, session, viewer, case_id, errors=exc.errors, params=exc.params,
            forms=forms, status=400,
        )  # fmt: skip
    except IllegalTransition as exc:
        return await _plan_page(
            request, session, viewer, case_id, problem=ILLEGAL[Action(exc.action)],
            forms=forms, status=400,
        )  # fmt: skip
    except FundExhausted as exc:
        t = Translator(viewer.language)
        problem = t(
            FUND_EXHAUSTED, fund=exc.fund_name, left=money.format_euros(exc.left_cents, t.language),
            needed=money.format_euros(exc.needed_cents, t.language),
        )  # fmt: skip
        return await _plan_page(request, session, viewer, case_id, problem=problem, status=409)
    except FundError:
        return await _plan_page(request, session, viewer, case_id, problem=FUND_REFUSED, status=409)
    except PlanError as exc:
        raise _http(exc) from None
    done = {Action.SUBMIT: "submitted", Action.APPROVE: "approved", Action.RETURN: "returned",
            Action.SIGN: "signed", Action.CLOSE: "closed"}  # fmt: skip
    return _to_plan(case_id, done[action])


@router.post("/cases/{case_id}/plan/submit")
async def submit_plan(
    request: Request, session: Session, viewer: Staff, case_id: RecordId
) -> Response:
    return await _step(request, session, viewer, case_id, Action.SUBMIT)


@router.post("/cases/{case_id}/plan/approve")
async def approve_plan(
    request: Request, session: Session, viewer: Coordinator, case_id: RecordId
) -> Response:
    return await _step(request, session, viewer, case_id, Action.APPROVE)


@router.post("/cases/{case_id}/plan/return")
async def return_plan(
    request: Request,
    session: Session,
    viewer: Coordinator,
    case_id: RecordId,
    comment: FormText = "",
) -> Response:
    return await _step(
        request, session, viewer, case_id, Action.RETURN, comment=comment,
        forms={"comment": comment},
    )  # fmt: skip


async def _scan_bytes(scan: UploadFile | None) -> bytes:
    """The uploaded file, read no further than one byte past the limit."""
    if scan is None or not scan.filename:
        return b""
    return await scan.read(scans.MAX_SCAN_BYTES + 1)


ScanUpload = Annotated[UploadFile | None, File()]


@router.post("/cases/{case_id}/plan/sign")
async def sign_plan(
    request: Request,
    session: Session,
    viewer: Staff,
    case_id: RecordId,
    signed_on: FormText = "",
    scan: ScanUpload = None,
) -> Response:
    forms = {"signed_on": signed_on}
    try:
        day = read_day(signed_on)
    except BadDay as exc:
        return await _plan_page(
            request, session, viewer, case_id, errors={"signed_on": exc.message},
            forms=forms, status=400,
        )  # fmt: skip
    if day is None:
        return await _plan_page(
            request, session, viewer, case_id,
            errors={"signed_on": N_("Write the date of the signature.")}, forms=forms, status=400,
        )  # fmt: skip
    content = await _scan_bytes(scan)
    if content:
        # Checked before signing: a refused scan must leave the plan as it was.
        try:
            scans.media_type_of(content)
        except scans.ScanRefused as exc:
            return await _plan_page(
                request, session, viewer, case_id, errors={"scan": SCAN_REFUSED[exc.reason]},
                forms=forms, status=400,
            )  # fmt: skip
    response = await _step(
        request, session, viewer, case_id, Action.SIGN, signed_on=day, forms=forms
    )
    if content and response.status_code == 303:
        await scans.attach_signed_scan(
            session=session, case_id=case_id, content=content, staff=viewer.member, now=utcnow()
        )
    return response


@router.post("/cases/{case_id}/plan/scans")
async def upload_scan(
    request: Request, session: Session, viewer: Staff, case_id: RecordId, scan: ScanUpload = None
) -> Response:
    try:
        async with all_or_nothing(session):
            await scans.attach_signed_scan(
                session=session, case_id=case_id, content=await _scan_bytes(scan),
                staff=viewer.member, now=utcnow(),
            )  # fmt: skip
    except scans.ScanRefused as exc:
        return await _plan_page(
            request, session, viewer, case_id, errors={"scan": SCAN_REFUSED[exc.reason]},
            status=400,
        )  # fmt: skip
    except IllegalTransition:
        return await _plan_page(
            request, session, viewer, case_id, problem=SCAN_TOO_EARLY, status=400
        )
    except PlanError as exc:
        raise _http(exc) from None
    return _to_plan(case_id, "scan")


@router.get("/cases/{case_id}/plan/scans/{scan_id}")
@writes_on_read()
async def download_scan(
    session: Session, viewer: Staff, case_id: RecordId, scan_id: RecordId
) -> Response:
    try:
        found = await scans.get_signed_scan(
            session=session, case_id=case_id, scan_id=scan_id, staff=viewer.member
        )
    except PlanError as exc:
        raise _http(exc) from None
    extension = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
    name = f"piano-caso-{case_id}-v{found.version}-firmato.{extension[found.media_type]}"
    return Response(
        found.content,
        media_type=found.media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/cases/{case_id}/plan/close")
async def close_plan(
    request: Request,
    session: Session,
    viewer: Staff,
    case_id: RecordId,
    outcome: FormText = "",
    income: FormText = "",
    debts: FormText = "",
    urgent_expenses: FormText = "",
    notes: FormText = "",
) -> Response:
    forms = {"outcome": outcome, "income": income, "debts": debts,
             "urgent_expenses": urgent_expenses, "notes": notes}  # fmt: skip
    try:
        closure = plans.parse_closure(
            outcome=outcome, income=income, debts=debts, urgent_expenses=urgent_expenses,
            notes=notes,
        )  # fmt: skip
    except InvalidInput as exc:
        return await _plan_page(
            request, session, viewer, case_id, errors=exc.errors, params=exc.params,
            forms=forms, status=400,
        )  # fmt: skip
    return await _step(
        request, session, viewer, case_id, Action.CLOSE, closure=closure, forms=forms
    )


# --- the list ----------------------------------------------------------------------------


@router.get("/plans")
async def plan_list(
    request: Request,
    session: Session,
    viewer: Staff,
    state: QueryText = "",
    owner: QueryText = "",
    kind: QueryText = "",
    after: QueryWord = "",
) -> HTMLResponse:
    t = Translator(viewer.language)
    # Coordinators land on their queue: the plans waiting for approval.
    if not request.query_params and viewer.role is Role.COORDINATORE:
        state = PlanState.SUBMITTED.value
    raw = {"state": state, "owner": owner, "kind": kind}
    errors: dict[str, str] = {}
    try:
        filters = listing.parse_filters(raw)
        page = await listing.list_plans(
            session=session, filters=filters, staff=viewer.member, after=after or None
        )
    except InvalidInput as exc:
        errors = {name: t(message) for name, message in exc.errors.items()}
        filters, page = listing.PlanFilters(), listing.PlanPage((), None)
    owners = await listing.plan_owners(session=session)
    now = utcnow()
    return render(
        request,
        "plans/list.html",
        {
            "page": page,
            "raw": raw,
            "errors": errors,
            "queue": filters.is_queue,
            "state_options": [("", t("Any state"))]
            + [(s.value, t(document.STATE_LABELS[s.value])) for s in PlanState],
            "owner_options": [("", t("Any case worker"))] + [(str(i), n) for i, n in owners],
            "kind_options": [("", t("Any support"))]
            + [(k.value, t(catalog.intervention(k).label)) for k in catalog.kinds()],
            "state_labels": document.STATE_LABELS,
            "kind_labels": {k.value: catalog.intervention(k).label for k in catalog.kinds()},
            "waited_days": lambda at: (now - at).days if at else None,
            "euros": lambda cents: money.format_euros(cents, t.language),
            "next_link": (
                "/plans?" + urlencode({**raw, "after": page.next_cursor})
                if page.next_cursor
                else None
            ),
        },
        status_code=400 if errors else 200,
    )
