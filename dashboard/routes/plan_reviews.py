"""Reviews of an active plan, its follow-up meetings, and the reviews due (SPEC J5).

- `/plans/reviews`: the viewer's active plans whose review is overdue or due within a
  week (a case worker's own, every plan for a coordinator), overdue first;
- `/cases/{id}/plan/reviews`: the plan's reviews, the latest first; `…/reviews/new` the
  form (a status and a note for each objective and commitment, the next review date);
- `/cases/{id}/plan/follow-up`: a free time at a helpdesk, booked for the plan's citizen
  through the booking service (its rules, its messages to the citizen).

Routes parse the form, call one `shared.plans.reviews` service and map its errors: a
plan the viewer may not see is a 404, invalid input comes back as the form with the
messages next to the fields and every value kept (400), a refused booking names why by
its code (409 for a place just taken).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Annotated, Any

from babel.dates import format_date
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard import slot_picker
from dashboard.deps import STAFF, Session, Viewer, allow, settings_of, writes_on_read
from dashboard.params import FormText, QueryId, QueryText, QueryWord, RecordId, storable_form
from dashboard.templating import render
from shared.booking import service as booking
from shared.booking.errors import BookingError
from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.db import utcnow
from shared.i18n import N_, Translator
from shared.plans import document, listing, reviews
from shared.plans import service as plans
from shared.plans.errors import InvalidInput, NotAllowed, PlanError, PlanNotFound
from shared.plans.models import PlanState

router = APIRouter()
Staff = Annotated[Viewer, Depends(allow(*STAFF))]

NOTICES = {
    "recorded": N_("Review recorded. The next review date is on the plan."),
    "booked": N_("Follow-up meeting booked. A citizen who uses Telegram is told there."),
}
NOT_ACTIVE = N_("Only an active plan (signed, not closed) has reviews and follow-up meetings.")
BOOKING_ERRORS = {
    **slot_picker.SLOT_ERRORS,
    "already_booked": N_(
        "The citizen already has an active booking: move or cancel it from the agenda first."
    ),
}


def _http(exc: PlanError) -> HTTPException:
    if isinstance(exc, PlanNotFound):
        return HTTPException(status_code=404)
    if isinstance(exc, NotAllowed):
        return HTTPException(status_code=403)
    return HTTPException(status_code=400)


def _today(request: Request) -> date:
    return utcnow().astimezone(settings_of(request).tz).date()


def _date_label(viewer: Viewer) -> Callable[[date], str]:
    """Plain dates (no time) in the viewer's language."""
    language = Translator(viewer.language).language
    return lambda value: format_date(value, "full", locale=language)


async def _plan(
    session: Session, viewer: Viewer, case_id: int
) -> tuple[plans.PlanRows, Case, Citizen]:
    """The case's plan as the viewer may see it (the read is in the audit log)."""
    try:
        rows = await plans.get_plan(session=session, case_id=case_id, staff=viewer.member)
    except PlanError as exc:
        raise _http(exc) from None
    case = await session.get(Case, case_id)
    assert case is not None  # the plan service found it
    citizen = await session.get(Citizen, case.citizen_id)
    assert citizen is not None  # a foreign key of the case
    return rows, case, citizen


def _header(rows: plans.PlanRows, case: Case, citizen: Citizen) -> dict[str, Any]:
    return {
        "case": case,
        "citizen": citizen,
        "plan": rows.plan,
        "active": rows.plan.state == PlanState.ACTIVE.value,
        "state_label": document.STATE_LABELS[rows.plan.state],
    }


# --- the reviews due ---------------------------------------------------------------------


@router.get("/plans/reviews")
async def reviews_due(request: Request, session: Session, viewer: Staff) -> HTMLResponse:
    today = _today(request)
    due = await listing.plans_due_for_review(session=session, staff=viewer.member, today=today)
    return render(
        request,
        "plan_reviews/due.html",
        {
            "due": due,
            "within": listing.REVIEW_SOON_DAYS,
            "everyone": viewer.member.sees_all,
            "date_label": _date_label(viewer),
        },
    )


# --- the plan's reviews ------------------------------------------------------------------


@router.get("/cases/{case_id}/plan/reviews")
@writes_on_read()
async def plan_reviews(
    request: Request, session: Session, viewer: Staff, case_id: RecordId, notice: QueryWord = ""
) -> HTMLResponse:
    rows, case, citizen = await _plan(session, viewer, case_id)
    found = await reviews.reviews_of(session=session, plan_id=rows.plan.id)
    return render(
        request,
        "plan_reviews/reviews.html",
        {
            **_header(rows, case, citizen),
            "reviews": [reviews.shown(review) for review in found],
            "notice": NOTICES.get(notice, ""),
            "date_label": _date_label(viewer),
        },
    )


async def _form_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    rows: plans.PlanRows,
    case: Case,
    citizen: Citizen,
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    params: Mapping[str, Mapping[str, object]] | None = None,
    problem: str = "",
    status: int = 200,
) -> HTMLResponse:
    t = Translator(viewer.language)
    settings = settings_of(request)
    today = _today(request)
    if values is None:
        values = {
            "held_on": today.isoformat(),
            "next_review_on": (today + timedelta(days=settings.plan_review_days)).isoformat(),
        }
    header = _header(rows, case, citizen)
    if not header["active"] and not problem:
        problem, status = NOT_ACTIVE, 400
    return render(
        request,
        "plan_reviews/new.html",
        {
            **header,
            "items": reviews.review_items(rows),
            "values": values,
            "errors": {
                name: t(message, **(params or {}).get(name, {}))
                for name, message in (errors or {}).items()
            },
            "problem": problem,
            "status_options": [(value, t(label)) for value, label in reviews.STATUS_LABELS.items()],
            "note_max": reviews.MAX_NOTE,
            "notes_max": reviews.MAX_NOTES,
            "review_days": settings.plan_review_days,
            "date_label": _date_label(viewer),
        },
        status_code=status,
    )


@router.get("/cases/{case_id}/plan/reviews/new")
@writes_on_read()
async def new_review(
    request: Request, session: Session, viewer: Staff, case_id: RecordId
) -> HTMLResponse:
    rows, case, citizen = await _plan(session, viewer, case_id)
    return await _form_page(request, session, viewer, rows, case, citizen)


@router.post("/cases/{case_id}/plan/reviews")
async def record_review(
    request: Request,
    session: Session,
    viewer: Staff,
    case_id: RecordId,
    held_on: FormText = "",
    next_review_on: FormText = "",
    notes: FormText = "",
) -> Response:
    submitted = await storable_form(request)
    # The statuses and notes are named after the plan's rows ("objective:12.status").
    fields = {
        name: value
        for name, value in submitted.multi_items()
        if isinstance(value, str) and name != "csrf_token"
    }
    fields |= {"held_on": held_on, "next_review_on": next_review_on, "notes": notes}
    rows, case, citizen = await _plan(session, viewer, case_id)
    page = (request, session, viewer, rows, case, citizen)
    if rows.plan.state != PlanState.ACTIVE.value:
        return await _form_page(*page, values=fields, problem=NOT_ACTIVE, status=400)
    try:
        data = reviews.parse_review_form(
            held_on=held_on, next_review_on=next_review_on, notes=notes, fields=fields,
            rows=rows, today=_today(request),
        )  # fmt: skip
        review = await reviews.record_review(
            session=session, case_id=case_id, held_on=data.held_on, progress=data.progress,
            notes=data.notes, next_review_on=data.next_review_on, staff=viewer.member,
            settings=settings_of(request), now=utcnow(),
        )  # fmt: skip
    except InvalidInput as exc:
        return await _form_page(
            *page, values=fields, errors=exc.errors, params=exc.params, status=400
        )
    except reviews.PlanNotActive:
        return await _form_page(*page, values=fields, problem=NOT_ACTIVE, status=400)
    except PlanError as exc:
        raise _http(exc) from None
    return RedirectResponse(
        f"/cases/{case_id}/plan/reviews?notice=recorded#review-{review.id}", status_code=303
    )


# --- follow-up meetings ------------------------------------------------------------------


async def _follow_up_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    case_id: int,
    *,
    helpdesk_id: int | None = None,
    day: str = "",
    notice: str = "",
    problem: str = "",
    status: int = 200,
) -> HTMLResponse:
    """The citizen's booking if they have one; else the free times (of `day`, a filter
    typed into the page's own form: a bad one is shown next to it)."""
    rows, case, citizen = await _plan(session, viewer, case_id)
    header = _header(rows, case, citizen)
    current = await booking.active_booking(session=session, citizen_id=citizen.id)
    picker = await slot_picker.pick_slot(
        session=session,
        settings=settings_of(request),
        t=Translator(viewer.language),
        helpdesk_id=helpdesk_id,
        day=day,
        offer=header["active"] and current is None,
        urgent=citizen.urgent,
    )
    if picker.day_error:
        status = 400
    if not header["active"] and not problem:
        problem = NOT_ACTIVE
    return render(
        request,
        "plan_reviews/follow_up.html",
        {
            **header,
            "current": current,
            **picker.context(),
            "notice": NOTICES.get(notice, ""),
            "problem": problem,
        },
        status_code=status,
    )


@router.get("/cases/{case_id}/plan/follow-up")
@writes_on_read()
async def follow_up(
    request: Request,
    session: Session,
    viewer: Staff,
    case_id: RecordId,
    helpdesk: QueryId = None,
    day: QueryText = "",
    notice: QueryWord = "",
) -> HTMLResponse:
    return await _follow_up_page(
        request, session, viewer, case_id, helpdesk_id=helpdesk, day=day, notice=notice
    )


@router.post("/cases/{case_id}/plan/follow-up")
async def book_follow_up(
    request: Request, session: Session, viewer: Staff, case_id: RecordId, slot: FormText = ""
) -> Response:
    parsed = slot_picker.parse_slot(slot)
    if parsed is None:
        code, status = "no_slot", 400
    else:
        helpdesk_id, starts_at = parsed
        try:
            await reviews.book_follow_up(
                session=session, settings=settings_of(request), case_id=case_id,
                helpdesk_id=helpdesk_id, starts_at=starts_at, staff=viewer.member,
            )  # fmt: skip
        except reviews.PlanNotActive:
            return await _follow_up_page(
                request, session, viewer, case_id, problem=NOT_ACTIVE, status=400
            )
        except PlanError as exc:
            raise _http(exc) from None
        except BookingError as exc:
            code, status = exc.code, 409 if exc.code == "slot_taken" else 400
        else:
            return RedirectResponse(
                f"/cases/{case_id}/plan/follow-up?notice=booked", status_code=303
            )
    problem = BOOKING_ERRORS.get(code, slot_picker.BOOKING_REFUSED)
    return await _follow_up_page(request, session, viewer, case_id, problem=problem, status=status)
