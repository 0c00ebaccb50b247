"""Requests to confirm: the coordinators' queue of a moderated helpdesk's bookings.

`GET /bookings/requests` lists the pending requests oldest first (how long each has
waited, when it expires, the citizen's essentials) and the requests expired in the last
days, so staff can phone those citizens. Confirm is a button (POST); declining asks for
a reason and, optionally, another time to propose (`GET`/`POST /bookings/{id}/decline`).
Coordinators only. Plain forms and 303 redirects: no JavaScript needed. A request
someone else handled meanwhile, or that expired, is a message on the page, not an error.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard.deps import COORDINATION, Session, Viewer, all_or_nothing, allow, settings_of
from dashboard.limits import TOO_LONG
from dashboard.pages import with_notice
from dashboard.params import FormText, QueryWord, RecordId, read_instant
from dashboard.slot_picker import BOOKING_REFUSED, SLOT_ERRORS
from dashboard.templating import render
from shared.booking import availability, moderation
from shared.booking.errors import BookingError, BookingNotFound, TextTooLong
from shared.booking.moderation import ReasonRequired, RequestLine, RequestNotPending
from shared.db import utcnow
from shared.i18n import N_, Translator

router = APIRouter()
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]

REQUESTS = "/bookings/requests"
# Days of free times offered as "another time" when declining.
PROPOSAL_DAYS = 14
PROPOSALS_SHOWN = 40

NOTICES = {
    "confirmed": ("success", N_("Request confirmed. The citizen is told on Telegram.")),
    "confirmed_call": (
        "warning",
        N_("Request confirmed. This citizen has no Telegram chat: phone them to tell them."),
    ),
    "declined": ("success", N_("Request declined. The citizen is told on Telegram.")),
    "declined_offered": (
        "success",
        N_(
            "Request declined. The citizen is told on Telegram and asked to accept or decline "
            "the time you proposed."
        ),
    ),
    "declined_call": (
        "warning",
        N_("Request declined. This citizen has no Telegram chat: phone them to tell them."),
    ),
    # Someone else (or the expiry) got there first: nothing was changed by this action.
    "not_pending": (
        "warning",
        N_(
            "This request was already handled by someone else, or it expired meanwhile: "
            "nothing was changed. The lists below are up to date."
        ),
    ),
}

MODERATION_LABELS = {
    "pending": N_("Waiting for confirmation"),
    "confirmed": N_("Confirmed"),
    "declined": N_("Declined"),
    "expired": N_("Expired"),
    "withdrawn": N_("Withdrawn"),
}


def _waited(t: Translator, since: datetime, now: datetime) -> str:
    """How long a request has waited, roughly: "3 h", "2 days"."""
    hours = max(int((now - since).total_seconds() // 3600), 0)
    if hours < 1:
        return t("less than an hour")
    if hours < 48:
        return t.n("{n} hour", "{n} hours", hours)
    return t.n("{n} day", "{n} days", hours // 24)


@router.get("/bookings/requests")
async def requests_page(
    request: Request, session: Session, viewer: Coordinator, notice: QueryWord = ""
) -> HTMLResponse:
    now = utcnow()
    t = Translator(viewer.language)
    pending = await moderation.pending_requests(session=session)
    expired = await moderation.recently_expired(session=session, now=now)
    return render(
        request,
        "bookings/requests.html",
        {
            "pending": pending,
            "expired": expired,
            "waited": {line.booking_id: _waited(t, line.created_at, now) for line in pending},
            "soon": {
                line.booking_id
                for line in pending
                if line.request_expires_at is not None
                and line.request_expires_at - now < timedelta(hours=4)
            },
            "expired_days": moderation.RECENTLY_EXPIRED_DAYS,
            "notice": NOTICES.get(notice),
        },
    )


async def _request_line(session: Session, booking_id: int) -> RequestLine:
    try:
        return await moderation.get_request(session=session, booking_id=booking_id)
    except BookingNotFound:
        raise HTTPException(status_code=404) from None


def _back(key: str) -> RedirectResponse:
    return RedirectResponse(with_notice(REQUESTS, key), status_code=303)


@router.post("/bookings/{booking_id}/confirm")
async def confirm(
    request: Request, session: Session, viewer: Coordinator, booking_id: RecordId
) -> Response:
    line = await _request_line(session, booking_id)
    try:
        async with all_or_nothing(session):
            await moderation.confirm_request(
                session=session,
                settings=settings_of(request),
                booking_id=booking_id,
                actor=viewer.actor,
            )
    except RequestNotPending:
        return _back("not_pending")
    return _back("confirmed" if line.has_telegram else "confirmed_call")


async def _proposals(request: Request, session: Session, line: RequestLine) -> list[Any]:
    """Free times at the request's helpdesk in the next days, without its own."""
    settings = settings_of(request)
    today = utcnow().astimezone(settings.tz).date()
    since = datetime.combine(today, time.min, tzinfo=settings.tz)
    slots = await availability.list_free_slots(
        session=session,
        settings=settings,
        helpdesk_id=line.helpdesk_id,
        since=since,
        until=since + timedelta(days=PROPOSAL_DAYS),
        urgent=line.urgent,
    )
    return [s for s in slots if s.starts_at != line.starts_at][:PROPOSALS_SHOWN]


async def _decline_page(
    request: Request,
    session: Session,
    line: RequestLine,
    *,
    reason: str = "",
    proposed: str = "",
    errors: dict[str, str] | None = None,
    problem: str = "",
    status: int = 200,
) -> HTMLResponse:
    handled = line.moderation != moderation.PENDING
    return render(
        request,
        "bookings/decline.html",
        {
            "line": line,
            "handled": handled,
            "state_label": MODERATION_LABELS.get(line.moderation or "", ""),
            "proposals": [] if handled else await _proposals(request, session, line),
            "reason": reason,
            "proposed": proposed,
            "errors": errors or {},
            "problem": problem,
            "max_reason": moderation.MAX_DECLINE_REASON,
        },
        status_code=status,
    )


@router.get("/bookings/{booking_id}/decline")
async def decline_form(
    request: Request, session: Session, viewer: Coordinator, booking_id: RecordId
) -> HTMLResponse:
    return await _decline_page(request, session, await _request_line(session, booking_id))


@router.post("/bookings/{booking_id}/decline")
async def decline(
    request: Request,
    session: Session,
    viewer: Coordinator,
    booking_id: RecordId,
    reason: FormText = "",
    propose: FormText = "",
) -> Response:
    line = await _request_line(session, booking_id)
    t = Translator(viewer.language)
    propose_at = read_instant(propose) if propose.strip() else None
    if propose.strip() and propose_at is None:
        errors = {"propose": t(N_("Choose one of the free times, or none."))}
        return await _decline_page(
            request, session, line, reason=reason, proposed=propose, errors=errors, status=400
        )
    try:
        async with all_or_nothing(session):
            await moderation.decline_request(
                session=session,
                settings=settings_of(request),
                booking_id=booking_id,
                actor=viewer.actor,
                reason=reason,
                propose_at=propose_at,
            )
    except ReasonRequired:
        errors = {"reason": t(N_("Write why the request is declined: the citizen is told."))}
        return await _decline_page(
            request, session, line, reason=reason, proposed=propose, errors=errors, status=400
        )
    except TextTooLong as exc:
        errors = {"reason": t(TOO_LONG, max_length=exc.max_length)}
        return await _decline_page(
            request, session, line, reason=reason, proposed=propose, errors=errors, status=400
        )
    except RequestNotPending:
        return _back("not_pending")
    except BookingError as exc:
        # The proposed time can't be held (just taken, too soon...): nothing was changed.
        session.expire_all()
        line = await _request_line(session, booking_id)
        problem = SLOT_ERRORS.get(exc.code, BOOKING_REFUSED)
        return await _decline_page(
            request, session, line, reason=reason, proposed=propose, problem=problem, status=409
        )
    if not line.has_telegram:
        return _back("declined_call")
    return _back("declined_offered" if propose_at is not None else "declined")
