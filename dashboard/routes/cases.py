"""Cases: the list with search and filters, a case's page, assignment, interview and outcome.

Routes parse the request, call one `shared.cases` service and map its errors: a missing
case is a 404, someone else's case (for a case worker) a 403, invalid input re-renders
the form with the messages next to the fields and the input kept (400). Every read of a
case is recorded by the service (SPEC J8). After a change, a 303 redirect shows the
result (`?notice=key`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

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
from dashboard.params import FormText, QueryText, QueryWord, RecordId, read_id, storable_form
from dashboard.templating import render
from shared.booking import hours
from shared.cases import interview as interview_form
from shared.cases import labels, listing, view
from shared.cases import service as cases
from shared.cases.errors import (
    CaseError,
    CaseNotFound,
    CaseNotVisible,
    IllegalTransition,
    InvalidCursor,
    InvalidInput,
    NotAllowed,
)
from shared.cases.models import Outcome
from shared.db import utcnow
from shared.i18n import N_, Translator

router = APIRouter()
Staff = Annotated[Viewer, Depends(allow(*STAFF))]
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]

# What a change did, shown after the redirect.
NOTICES = {
    "assigned": N_("Assignment saved."),
    "interview": N_("Interview saved as a draft."),
    "outcome": N_("Outcome recorded."),
    "eligibility": N_("Eligibility decision saved."),
    "closed": N_("Case closed."),
    # Set by `dashboard.routes.erasure`.
    "erased": N_("The citizen's personal data has been erased."),
}
ASSIGNED_FILTERS = (("", N_("Anyone")), ("me", N_("Assigned to me")), ("none", N_("Unassigned")))
URGENT_FILTERS = (("", N_("Any")), ("yes", N_("Urgent only")), ("no", N_("Not urgent")))
ELIGIBILITY_DECISIONS = {
    "eligible": (True, N_("Eligible")),
    "not_eligible": (False, N_("Not eligible")),
    "questionnaire": (None, N_("As the questionnaire says (remove the decision)")),
}
FILTER_FIELDS = (
    "q", "state", "urgent", "helpdesk", "from", "to", "assigned", "due", "due_from", "due_to",
)  # fmt: skip


def _not_found_or_forbidden(exc: CaseError) -> HTTPException:
    if isinstance(exc, CaseNotFound):
        return HTTPException(status_code=404)
    if isinstance(exc, CaseNotVisible | NotAllowed):
        return HTTPException(status_code=403)
    return HTTPException(status_code=400)


def actor_label(actor: str, t: Translator) -> str:
    """ "staff:luca" → "luca"; "citizen:12" → "the citizen"; anything else as it is."""
    kind, _, name = actor.partition(":")
    if kind == "staff" and name:
        return name
    if kind == "citizen":
        return t("the citizen")
    return actor


def _common(viewer: Viewer) -> dict[str, Any]:
    return {
        "case_states": labels.CASE_STATES,
        "outcomes": labels.OUTCOMES,
        "booking_states": labels.BOOKING_STATES,
        "message_kinds": labels.MESSAGES,
        "message_states": labels.MESSAGE_STATES,
        "actor_label": lambda actor: actor_label(actor, Translator(viewer.language)),
    }


# --- the list ------------------------------------------------------------------------


def _page_link(raw: Mapping[str, str], **cursor: str) -> str:
    query = {name: raw[name] for name in FILTER_FIELDS if raw.get(name)}
    return "/cases?" + urlencode({**query, **cursor})


def searching(request: Request) -> bool:
    """A search by text is audited (`listing.list_cases`); the list and its filters are reads."""
    return bool(request.query_params.get("q", "").strip())


@router.get("/cases")
@writes_on_read(when=searching)
async def case_list(
    request: Request,
    session: Session,
    viewer: Staff,
    # The search form's fields: `listing.parse_filters` checks them, next to each field.
    q: QueryText = "",
    state: QueryText = "",
    urgent: QueryText = "",
    helpdesk: QueryText = "",
    from_: Annotated[QueryText, Query(alias="from")] = "",
    to: QueryText = "",
    assigned: QueryText = "",
    # A deadline the figures page links to (`listing.CaseFilters.due`).
    due: QueryText = "",
    due_from: QueryText = "",
    due_to: QueryText = "",
    after: QueryWord = "",
    before: QueryWord = "",
) -> HTMLResponse:
    raw = {
        "q": q, "state": state, "urgent": urgent, "helpdesk": helpdesk,
        "from": from_, "to": to, "assigned": assigned,
        "due": due, "due_from": due_from, "due_to": due_to,
    }  # fmt: skip
    errors: dict[str, str] = {}
    params: dict[str, dict[str, object]] = {}
    page = listing.CasePage([], None, None)
    filters = listing.CaseFilters()
    try:
        filters = listing.parse_filters(raw)
        page = await listing.list_cases(
            session=session,
            settings=settings_of(request),
            staff=viewer.member,
            filters=filters,
            after=after or None,
            before=before or None,
        )
    except InvalidInput as exc:
        errors, params = exc.errors, exc.params
    except InvalidCursor:
        raise HTTPException(status_code=400) from None
    helpdesks = await hours.list_helpdesks(session=session, active_only=False)
    t = Translator(viewer.language)
    return render(
        request,
        "cases/list.html",
        {
            **_common(viewer),
            "raw": raw,
            "errors": {
                name: t(message, **params.get(name, {})) for name, message in errors.items()
            },
            "page": page,
            "filtered": filters.active,
            "sees_all": viewer.member.sees_all,
            "state_options": [("", t("Any"))]
            + [(value, t(label)) for value, label in labels.CASE_STATES.items()],
            "urgent_options": [(value, t(label)) for value, label in URGENT_FILTERS],
            "assigned_options": [(value, t(label)) for value, label in ASSIGNED_FILTERS],
            "helpdesk_options": [("", t("Any"))] + [(str(h.id), h.name) for h in helpdesks],
            "next_link": _page_link(raw, after=page.next_cursor) if page.next_cursor else "",
            "previous_link": (
                _page_link(raw, before=page.previous_cursor) if page.previous_cursor else ""
            ),
        },
        status_code=400 if errors else 200,
    )


# --- one case ------------------------------------------------------------------------


async def _detail_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    case_id: int,
    *,
    notice: str = "",
    errors: Mapping[str, str] | None = None,
    params: Mapping[str, Mapping[str, object]] | None = None,
    problem: str = "",
    form: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    try:
        detail = await view.get_case_detail(
            session=session, case_id=case_id, staff=viewer.member, now=utcnow()
        )
    except CaseError as exc:
        raise _not_found_or_forbidden(exc) from None
    t = Translator(viewer.language)
    shown_errors = {
        name: t(message, **(params or {}).get(name, {})) for name, message in (errors or {}).items()
    }
    interview = detail.interview
    return render(
        request,
        "cases/detail.html",
        {
            **_common(viewer),
            "detail": detail,
            "case": detail.case,
            "citizen": detail.citizen,
            "answers": detail.prescreening(viewer.language),
            "interview": interview,
            "interview_answers": (
                interview_form.filled(interview_form.load(interview.answers), t)
                if interview is not None
                else []
            ),
            "notice": NOTICES.get(notice, ""),
            "errors": shown_errors,
            "problem": problem,
            "form": form or {},
            "decision_options": [
                (key, t(label)) for key, (_flag, label) in ELIGIBILITY_DECISIONS.items()
            ],
            "assign_options": [("", t("Nobody"))]
            + [(str(s.id), s.display_name) for s in detail.assignable],
        },
        status_code=status,
    )


@router.get("/cases/{case_id}")
@writes_on_read()
async def case_page(
    request: Request, session: Session, viewer: Staff, case_id: RecordId, notice: QueryWord = ""
) -> HTMLResponse:
    return await _detail_page(request, session, viewer, case_id, notice=notice)


async def _change(
    request: Request,
    session: Session,
    viewer: Viewer,
    case_id: int,
    action: Callable[[], Awaitable[object]],
    *,
    notice: str,
    form: Mapping[str, str],
) -> Response:
    """Run a change of the case page; errors re-render the page with the input kept."""
    try:
        async with all_or_nothing(session):
            await action()
    except InvalidInput as exc:
        return await _detail_page(
            request, session, viewer, case_id,
            errors=exc.errors, params=exc.params, form=form, status=400,
        )  # fmt: skip
    except IllegalTransition as exc:
        return await _detail_page(
            request, session, viewer, case_id, problem=exc.message, form=form, status=400
        )
    except CaseError as exc:
        raise _not_found_or_forbidden(exc) from None
    return RedirectResponse(f"/cases/{case_id}?notice={notice}", status_code=303)


@router.post("/cases/{case_id}/assign")
async def assign(
    request: Request,
    session: Session,
    viewer: Staff,
    case_id: RecordId,
    assignee: FormText = "",
) -> Response:
    assignee = assignee.strip()
    if assignee and read_id(assignee) is None:
        errors = {"assignee": N_("Choose an active case worker.")}
        form = {"assignee": assignee}
        return await _detail_page(
            request, session, viewer, case_id, errors=errors, form=form, status=400
        )
    return await _change(
        request,
        session,
        viewer,
        case_id,
        lambda: cases.assign_case(
            session=session,
            case_id=case_id,
            assignee_id=int(assignee) if assignee else None,
            staff=viewer.member,
            now=utcnow(),
        ),
        notice="assigned",
        form={"assignee": assignee},
    )


@router.post("/cases/{case_id}/eligibility")
async def eligibility(
    request: Request,
    session: Session,
    viewer: Coordinator,
    case_id: RecordId,
    decision: FormText = "",
    reason: FormText = "",
) -> Response:
    form = {"decision": decision, "reason": reason}
    if decision not in ELIGIBILITY_DECISIONS:
        errors = {"decision": N_("Choose one of the options.")}
        return await _detail_page(
            request, session, viewer, case_id, errors=errors, form=form, status=400
        )
    return await _change(
        request,
        session,
        viewer,
        case_id,
        lambda: cases.override_eligibility(
            session=session,
            settings=settings_of(request),
            case_id=case_id,
            eligible=ELIGIBILITY_DECISIONS[decision][0],
            reason=reason,
            staff=viewer.member,
            now=utcnow(),
        ),
        notice="eligibility",
        form=form,
    )


@router.post("/cases/{case_id}/close")
async def close(
    request: Request,
    session: Session,
    viewer: Staff,
    case_id: RecordId,
    close_reason: FormText = "",
) -> Response:
    return await _change(
        request,
        session,
        viewer,
        case_id,
        lambda: cases.close_case(
            session=session,
            case_id=case_id,
            reason=close_reason,
            staff=viewer.member,
            now=utcnow(),
        ),
        notice="closed",
        form={"close_reason": close_reason},
    )


# --- interview and outcome -----------------------------------------------------------


async def _interview_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    case_id: int,
    *,
    values: Mapping[str, Sequence[str]] | None = None,
    errors: Mapping[str, str] | None = None,
    params: Mapping[str, Mapping[str, object]] | None = None,
    outcome: Mapping[str, str] | None = None,
    problem: str = "",
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    try:
        page = await view.get_interview(
            session=session, case_id=case_id, staff=viewer.member, now=utcnow()
        )
    except CaseError as exc:
        raise _not_found_or_forbidden(exc) from None
    t = Translator(viewer.language)
    errors = errors or {}
    shown = interview_form.form_values(page.form) if values is None else values
    return render(
        request,
        "cases/interview.html",
        {
            **_common(viewer),
            "page": page,
            "case": page.case,
            "citizen": page.citizen,
            "sections": interview_form.layout(
                values=shown, errors=errors, params=params or {}, t=t
            ),
            "filled": interview_form.filled(page.form, t),
            "errors": {
                name: t(message, **(params or {}).get(name, {}))
                for name, message in errors.items()
                if "." not in name
            },
            "has_errors": bool(errors),
            "outcome": outcome or {},
            "outcome_choices": [(o.value, labels.OUTCOMES[o.value]) for o in Outcome],
            "problem": problem,
            "notice": NOTICES.get(notice, ""),
        },
        status_code=status,
    )


async def _interview_fields(request: Request) -> dict[str, list[str]]:
    """The interview form's fields ("section.field" → values) of the submitted form."""
    submitted = await storable_form(request)
    return {
        name: [value for value in submitted.getlist(name) if isinstance(value, str)]
        for name in submitted
        if "." in name
    }


@router.get("/cases/{case_id}/interview")
@writes_on_read()
async def interview_page(
    request: Request, session: Session, viewer: Staff, case_id: RecordId, notice: QueryWord = ""
) -> HTMLResponse:
    return await _interview_page(request, session, viewer, case_id, notice=notice)


@router.post("/cases/{case_id}/interview")
async def save_interview(
    request: Request, session: Session, viewer: Staff, case_id: RecordId
) -> Response:
    fields = await _interview_fields(request)
    try:
        async with all_or_nothing(session):
            await cases.save_interview(
                session=session, case_id=case_id, fields=fields, staff=viewer.member,
                now=utcnow(),
            )  # fmt: skip
    except InvalidInput as exc:
        return await _interview_page(
            request, session, viewer, case_id,
            values=fields, errors=exc.errors, params=exc.params, status=400,
        )  # fmt: skip
    except IllegalTransition as exc:
        return await _interview_page(
            request, session, viewer, case_id, values=fields, problem=exc.message, status=400
        )
    except CaseError as exc:
        raise _not_found_or_forbidden(exc) from None
    return RedirectResponse(f"/cases/{case_id}/interview?notice=interview", status_code=303)


@router.post("/cases/{case_id}/outcome")
async def record_outcome(
    request: Request,
    session: Session,
    viewer: Staff,
    case_id: RecordId,
    outcome: FormText = "",
    reason: FormText = "",
    referred_to: FormText = "",
) -> Response:
    fields = await _interview_fields(request)
    kept = {"outcome": outcome, "reason": reason, "referred_to": referred_to}
    try:
        async with all_or_nothing(session):
            await cases.record_outcome(
                session=session,
                case_id=case_id,
                outcome=outcome,
                reason=reason,
                referred_to=referred_to,
                # Only a page's own form carries the interview: never wipe a draft with nothing.
                fields=fields or None,
                staff=viewer.member,
                now=utcnow(),
            )
    except InvalidInput as exc:
        return await _interview_page(
            request, session, viewer, case_id, values=fields or None, errors=exc.errors,
            params=exc.params, outcome=kept, status=400,
        )  # fmt: skip
    except IllegalTransition as exc:
        return await _interview_page(
            request, session, viewer, case_id, values=fields or None, outcome=kept,
            problem=exc.message, status=400,
        )  # fmt: skip
    except CaseError as exc:
        raise _not_found_or_forbidden(exc) from None
    return RedirectResponse(f"/cases/{case_id}?notice=outcome", status_code=303)
