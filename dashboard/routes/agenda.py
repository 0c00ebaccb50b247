"""Agenda: each helpdesk's appointments of a day or a week; check-in, no-show, cancel, move.

Every action is a plain form POST answered with a 303 redirect (keyboard and no-JS
users); check-in and no-show also answer htmx requests with the updated table row.
The booking services queue the messages that tell the citizen.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Annotated
from urllib.parse import parse_qs, urlencode, urlsplit

from babel.dates import format_date
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard.deps import STAFF, Session, Viewer, allow, settings_of
from dashboard.limits import TOO_LONG
from dashboard.pages import with_notice
from dashboard.params import (
    BadDay,
    FormText,
    QueryDay,
    QueryId,
    QueryText,
    QueryWord,
    RecordId,
    read_day,
    read_id,
    read_instant,
)
from dashboard.redirects import local_path
from dashboard.templating import render
from shared.booking import agenda, availability, hours
from shared.booking import service as booking
from shared.booking.agenda import AgendaEntry, AgendaLine
from shared.booking.errors import (
    BookingError,
    BookingNotFound,
    IllegalTransition,
    SlotTaken,
    TextTooLong,
)
from shared.booking.models import BookingState, Helpdesk
from shared.booking.service import CancelledBy
from shared.cases import access, labels
from shared.db import utcnow
from shared.i18n import N_, Translator

router = APIRouter()
Staff = Annotated[Viewer, Depends(allow(*STAFF))]
BackQuery = Annotated[str, Query(max_length=300)]
BackForm = Annotated[str, Form(max_length=300)]

AGENDA = "/agenda"
DAYS_OF_FREE_SLOTS = 7

# The one word per state of every page (kept under this name for the pages importing it).
STATE_LABELS = labels.BOOKING_STATES

# What an action did, shown after the redirect (`?notice=key`): (alert kind, text).
NOTICES = {
    "attended": ("success", N_("Checked in.")),
    "no_show": ("success", N_("Marked as a no-show.")),
    "cancelled": ("success", N_("Booking cancelled. The citizen is told on Telegram.")),
    "cancelled_call": (
        "warning",
        N_("Booking cancelled. This citizen has no Telegram chat: phone them to tell them."),
    ),
    "moved": ("success", N_("Booking moved. The citizen is told on Telegram.")),
    "moved_call": (
        "warning",
        N_("Booking moved. This citizen has no Telegram chat: phone them to tell them."),
    ),
}

# The booking domain's refusals as staff read them; nothing was changed by the action.
PROBLEMS = {
    "check_in_early": N_("Check-in opens one hour before the appointment."),
    "no_show_early": N_("A no-show can only be recorded after the appointment starts."),
    "not_active": N_("This booking is no longer active: it was changed in the meantime."),
    "slot_taken": N_("That place was just taken: choose another time."),
    "slot_not_offered": N_("The helpdesk has no free time at that moment: choose another."),
    "slot_in_past": N_("That time has already passed: choose another."),
    "slot_too_soon": N_("That time is too close to now: choose a later one."),
    "slot_too_far": N_("That time is beyond the booking horizon: choose an earlier one."),
    "helpdesk_inactive": N_("This helpdesk is not taking bookings."),
    "helpdesk_not_found": N_("Choose one of the helpdesks."),
    "choose_slot": N_("Choose one of the free times."),
    "failed": N_("The booking could not be changed."),
}
_ILLEGAL = {
    "Check-in opens one hour before the appointment.": "check_in_early",
    "A no-show can only be recorded after the appointment starts.": "no_show_early",
}


def problem_key(exc: BookingError) -> str:
    """The `PROBLEMS` key for a refusal of the booking domain."""
    if isinstance(exc, IllegalTransition):
        return _ILLEGAL.get(str(exc), "not_active")
    return exc.code if exc.code in PROBLEMS else "failed"


def notice_of(key: str) -> tuple[str, str] | None:
    """(alert kind, text) for a notice or problem key from a query string, else None."""
    if key in NOTICES:
        return NOTICES[key]
    if key in PROBLEMS:
        return ("danger", PROBLEMS[key])
    return None


def date_labeler(viewer: Viewer, style: str = "full") -> Callable[[date], str]:
    """Format plain dates (no time) in the viewer's language."""
    language = Translator(viewer.language).language

    def label(value: date) -> str:
        return format_date(value, style, locale=language)

    return label


def day_or_none(value: str) -> date | None:
    """A day from a hidden form field; None when empty, malformed or out of range."""
    try:
        return read_day(value)
    except BadDay:
        return None


def local_today(request: Request) -> date:
    return utcnow().astimezone(settings_of(request).tz).date()


async def _entry(session: Session, booking_id: int) -> AgendaEntry:
    try:
        return await agenda.entry(session=session, booking_id=booking_id)
    except BookingNotFound:
        raise HTTPException(status_code=404) from None


# --- the agenda ----------------------------------------------------------------------


def _agenda_back(view: str, day: date, helpdesk_id: int | None) -> str:
    query = {"view": view, "day": day.isoformat()}
    if helpdesk_id is not None:
        query["helpdesk"] = str(helpdesk_id)
    return f"{AGENDA}?{urlencode(query)}"


def _period(view: str, chosen: date, tz: tzinfo) -> tuple[date, list[date], datetime, datetime]:
    """The first day, the days, and the moments [since, until) an agenda's view shows."""
    first = chosen if view == "day" else chosen - timedelta(days=chosen.weekday())
    days = [first + timedelta(days=n) for n in range(1 if view == "day" else 7)]
    since = datetime.combine(first, time.min, tzinfo=tz)
    until = datetime.combine(days[-1] + timedelta(days=1), time.min, tzinfo=tz)
    return first, days, since, until


def _may_open(viewer: Viewer) -> Callable[[AgendaLine], bool]:
    """Whether the viewer may open the case of an agenda line (its name links to it)."""

    def may_open(line: AgendaLine) -> bool:
        return line.case_id is not None and access.can_see(viewer.member, line.case_assigned_to_id)

    return may_open


async def _total_of(request: Request, session: Session, back: str) -> int | None:
    """The "still to do" of the agenda page `back` shows (None if it is no agenda page)."""
    parts = urlsplit(back)
    if parts.path != AGENDA:
        return None
    query = parse_qs(parts.query)
    view = (query.get("view") or ["day"])[0]
    chosen = day_or_none((query.get("day") or [""])[0]) or local_today(request)
    helpdesk_id = read_id((query.get("helpdesk") or [""])[0])
    _first, _days, since, until = _period(
        view if view in ("day", "week") else "day", chosen, settings_of(request).tz
    )
    return await agenda.count_to_record(
        session=session, since=since, until=until, helpdesk_id=helpdesk_id
    )


@router.get("/agenda")
async def agenda_page(
    request: Request,
    session: Session,
    viewer: Staff,
    view: QueryWord = "day",
    day: QueryDay = None,
    helpdesk: QueryId = None,
    notice: QueryWord = "",
) -> HTMLResponse:
    if view not in ("day", "week"):
        raise HTTPException(status_code=400)
    chosen = day or local_today(request)
    helpdesk_id = helpdesk
    tz = settings_of(request).tz
    first, days, since, until = _period(view, chosen, tz)

    helpdesks = await hours.list_helpdesks(session=session, active_only=False)
    if helpdesk_id is not None and helpdesk_id not in {h.id for h in helpdesks}:
        raise HTTPException(status_code=404)
    entries = await agenda.lines_between(
        session=session, since=since, until=until, helpdesk_id=helpdesk_id
    )
    by_place_and_day: dict[tuple[int, date], list[AgendaLine]] = {}
    for line in entries:
        key = (line.helpdesk_id, line.starts_at.astimezone(tz).date())
        by_place_and_day.setdefault(key, []).append(line)
    with_bookings = {helpdesk_id for helpdesk_id, _ in by_place_and_day}
    shown: list[Helpdesk] = (
        [h for h in helpdesks if h.id == helpdesk_id]
        if helpdesk_id is not None
        # Inactive helpdesks only while they still have appointments to show.
        else [h for h in helpdesks if h.active or h.id in with_bookings]
    )
    groups = [(h, [(d, by_place_and_day.get((h.id, d), [])) for d in days]) for h in shown]
    step = timedelta(days=1 if view == "day" else 7)
    return render(
        request,
        "agenda/index.html",
        {
            "view": view,
            "chosen": chosen,
            "first": first,
            "last": days[-1],
            "today": local_today(request),
            "helpdesk_id": helpdesk_id,
            "helpdesks": helpdesks,
            "groups": groups,
            "total": sum(1 for e in entries if e.state == BookingState.BOOKED.value),
            "back": _agenda_back(view, chosen, helpdesk_id),
            "previous": _agenda_back(view, chosen - step, helpdesk_id),
            "next": _agenda_back(view, chosen + step, helpdesk_id),
            "notice": notice_of(notice),
            "states": STATE_LABELS,
            "state_label": labels.booking_state,
            "may_open": _may_open(viewer),
            "notices": NOTICES,
            "problems": PROBLEMS,
            "date_label": date_labeler(viewer),
        },
    )


# --- check-in and no-show ------------------------------------------------------------


async def _close_booking(
    request: Request, session: Session, viewer: Viewer, booking_id: int, back: str, done: str
) -> Response:
    back = local_path(back, AGENDA)
    try:
        if done == "attended":
            await booking.mark_attended(session=session, booking_id=booking_id, actor=viewer.actor)
        else:
            await booking.mark_no_show(
                session=session,
                settings=settings_of(request),
                booking_id=booking_id,
                actor=viewer.actor,
            )
        key = done
    except BookingNotFound:
        raise HTTPException(status_code=404) from None
    except BookingError as exc:
        key = problem_key(exc)
    if request.headers.get("HX-Request") == "true":
        return render(
            request,
            "agenda/_row.html",
            {
                "line": await agenda.line(session=session, booking_id=booking_id),
                "back": back,
                "row_notice": notice_of(key),
                "states": STATE_LABELS,
                "state_label": labels.booking_state,
                "may_open": _may_open(viewer),
                # The page's "still to do", swapped in out of band with the row.
                "total": await _total_of(request, session, back),
            },
        )
    return RedirectResponse(with_notice(back, key), status_code=303)


@router.post("/agenda/bookings/{booking_id}/attended")
async def check_in(
    request: Request, session: Session, viewer: Staff, booking_id: RecordId, back: BackForm = ""
) -> Response:
    return await _close_booking(request, session, viewer, booking_id, back, "attended")


@router.post("/agenda/bookings/{booking_id}/no-show")
async def no_show(
    request: Request, session: Session, viewer: Staff, booking_id: RecordId, back: BackForm = ""
) -> Response:
    return await _close_booking(request, session, viewer, booking_id, back, "no_show")


# --- cancel --------------------------------------------------------------------------


def _cancel_page(
    request: Request,
    entry: AgendaEntry,
    *,
    back: str,
    reason: str,
    errors: dict[str, str] | None = None,
    problem: str = "",
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "agenda/cancel.html",
        {
            "entry": entry,
            "back": back,
            "reason": reason,
            "errors": errors or {},
            "problem": PROBLEMS.get(problem, ""),
            "states": STATE_LABELS,
            "state_label": labels.booking_state,
        },
        status_code=status,
    )


@router.get("/agenda/bookings/{booking_id}/cancel")
async def cancel_form(
    request: Request,
    session: Session,
    viewer: Staff,
    booking_id: RecordId,
    back: BackQuery = "",
    # Suggested by the page that links here (a closure's reason); checked when sent.
    reason: QueryText = "",
) -> HTMLResponse:
    entry = await _entry(session, booking_id)
    return _cancel_page(request, entry, back=local_path(back, AGENDA), reason=reason)


@router.post("/agenda/bookings/{booking_id}/cancel")
async def cancel(
    request: Request,
    session: Session,
    viewer: Staff,
    booking_id: RecordId,
    reason: FormText = "",
    back: BackForm = "",
) -> Response:
    back = local_path(back, AGENDA)
    entry = await _entry(session, booking_id)
    t = Translator(viewer.language)
    if not reason.strip():
        errors = {"reason": t(N_("Write why the booking is cancelled."))}
        return _cancel_page(request, entry, back=back, reason=reason, errors=errors, status=400)
    try:
        await booking.cancel_booking(
            session=session,
            settings=settings_of(request),
            booking_id=booking_id,
            by=CancelledBy.STAFF,
            actor=viewer.actor,
            reason=reason,
        )
    except TextTooLong as exc:
        errors = {"reason": t(TOO_LONG, max_length=exc.max_length)}
        return _cancel_page(request, entry, back=back, reason=reason, errors=errors, status=400)
    except BookingError as exc:
        entry = await _entry(session, booking_id)
        return _cancel_page(
            request, entry, back=back, reason=reason, problem=problem_key(exc), status=409
        )
    told = entry.citizen.telegram_chat_id is not None
    return RedirectResponse(
        with_notice(back, "cancelled" if told else "cancelled_call"), status_code=303
    )


# --- move ----------------------------------------------------------------------------


async def _move_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    booking_id: int,
    *,
    helpdesk_id: int | None,
    start: date | None,
    back: str,
    chosen: str = "",
    problem: str = "",
    status: int = 200,
) -> HTMLResponse:
    entry = await _entry(session, booking_id)
    settings = settings_of(request)
    tz = settings.tz
    helpdesks = await hours.list_helpdesks(session=session)
    open_ids = [h.id for h in helpdesks]
    if helpdesk_id not in open_ids:
        # The booking's own helpdesk first, unless it stopped taking bookings.
        current = entry.booking.helpdesk_id
        helpdesk_id = current if current in open_ids or not open_ids else open_ids[0]
    start = start or local_today(request)
    since = datetime.combine(start, time.min, tzinfo=tz)
    until = datetime.combine(start + timedelta(days=DAYS_OF_FREE_SLOTS), time.min, tzinfo=tz)
    slots = await availability.list_free_slots(
        session=session, settings=settings, helpdesk_id=helpdesk_id, since=since, until=until,
        urgent=entry.citizen.urgent,
    )  # fmt: skip
    days = [
        (day, list(found))
        for day, found in itertools.groupby(slots, key=lambda s: s.starts_at.astimezone(tz).date())
    ]
    return render(
        request,
        "agenda/move.html",
        {
            "entry": entry,
            "helpdesks": helpdesks,
            "helpdesk_id": helpdesk_id,
            "start": start,
            "days": days,
            "back": back,
            "chosen": chosen,
            "problem": PROBLEMS.get(problem, ""),
            "states": STATE_LABELS,
            "state_label": labels.booking_state,
            "date_label": date_labeler(viewer),
            "span": DAYS_OF_FREE_SLOTS,
            "later": (start + timedelta(days=DAYS_OF_FREE_SLOTS)).isoformat(),
            "earlier": max(
                start - timedelta(days=DAYS_OF_FREE_SLOTS), local_today(request)
            ).isoformat(),
        },
        status_code=status,
    )


@router.get("/agenda/bookings/{booking_id}/move")
async def move_form(
    request: Request,
    session: Session,
    viewer: Staff,
    booking_id: RecordId,
    helpdesk: QueryId = None,
    start: QueryDay = None,
    back: BackQuery = "",
) -> HTMLResponse:
    return await _move_page(
        request,
        session,
        viewer,
        booking_id,
        helpdesk_id=helpdesk,
        start=start,
        back=local_path(back, AGENDA),
    )


@router.post("/agenda/bookings/{booking_id}/move")
async def move(
    request: Request,
    session: Session,
    viewer: Staff,
    booking_id: RecordId,
    helpdesk_id: FormText = "",
    starts_at: FormText = "",
    start: FormText = "",
    back: BackForm = "",
) -> Response:
    back = local_path(back, AGENDA)
    entry = await _entry(session, booking_id)
    told = entry.citizen.telegram_chat_id is not None
    when = read_instant(starts_at)
    place = read_id(helpdesk_id)
    if when is None or place is None:
        return await _move_page(
            request, session, viewer, booking_id, helpdesk_id=place, start=day_or_none(start),
            back=back, chosen=starts_at, problem="choose_slot", status=400,
        )  # fmt: skip
    try:
        await booking.move_booking(
            session=session,
            settings=settings_of(request),
            booking_id=booking_id,
            helpdesk_id=place,
            starts_at=when,
            by=CancelledBy.STAFF,
            actor=viewer.actor,
        )
    except BookingError as exc:
        status = 409 if isinstance(exc, SlotTaken | IllegalTransition) else 400
        return await _move_page(
            request, session, viewer, booking_id, helpdesk_id=place, start=day_or_none(start),
            back=back, chosen=starts_at, problem=problem_key(exc), status=status,
        )  # fmt: skip
    return RedirectResponse(with_notice(back, "moved" if told else "moved_call"), status_code=303)
