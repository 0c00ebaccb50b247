"""Booking on Telegram: helpdesk, day, time, confirm; see, move or cancel; the waitlist (J2, J3).

The flow keeps no state in the bot: the choices made so far travel in the buttons' data
(`hd:<helpdesk>`, `day:<helpdesk>:<yyyymmdd>`, `tm:<helpdesk>:<epoch>`,
`bk:<helpdesk>:<epoch>`, and `days:<helpdesk>:<page>` for more days). While a booking is
being moved, its id rides along as one extra last argument (`bk:3:1767339000:42`).

Button data can be forged or stale, so every step asks the services again: the helpdesk
must exist and take bookings, the day must still have free places, the time must be one
of the free slots, the booking must be the citizen's own; the final `book_slot`,
`move_booking`, `cancel_booking`, `accept_offer` decide for good. Each of those calls
runs in a savepoint: a refusal leaves nothing behind, and every `BookingError` becomes a
specific, friendly reply with fresh choices where there are some.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot import texts
from bot.callbacks import Callback, Cb, encode, parse
from bot.replies import Document, Edit, Reply, Send
from bot.turn import Turn, turn
from shared.audit import service as audit
from shared.booking import availability, hours, waitlist
from shared.booking import service as booking_service
from shared.booking.availability import FreeSlot
from shared.booking.calendar import booking_ics
from shared.booking.errors import (
    AlreadyBooked,
    AlreadyWaiting,
    BookingError,
    BookingNotFound,
    CitizenNotFound,
    HelpdeskInactive,
    HelpdeskNotFound,
    IllegalTransition,
    InvalidSchedule,
    NoOffer,
    OfferExpired,
    OverlappingRules,
    SlotInPast,
    SlotNotOffered,
    SlotsAvailable,
    SlotTaken,
    SlotTooFar,
    SlotTooSoon,
)
from shared.booking.models import Booking, BookingState, Helpdesk, WaitlistState
from shared.booking.service import CancelledBy
from shared.i18n import N_, Translator
from shared.intake import service as intake_service
from shared.intake.models import Intake, IntakeState
from shared.program import WHAT_TO_BRING

# Ids are 32-bit on PostgreSQL: a bigger forged number must not even reach a query.
MAX_ID = 2**31 - 1
DAYS_PER_PAGE = 8
DAYS_PER_ROW = 2
TIMES_PER_ROW = 4

Screen = tuple[str, InlineKeyboardMarkup | None]
Rows = list[list[tuple[str, str]]]


WRITE_START = N_("Write /start to begin.")

# One reply per refusal of the booking services, by `BookingError.code`.
ERROR_TEXTS: dict[str, str] = {
    HelpdeskNotFound.code: N_("That helpdesk is not taking bookings right now."),
    HelpdeskInactive.code: N_("That helpdesk is not taking bookings right now."),
    CitizenNotFound.code: WRITE_START,
    BookingNotFound.code: N_("I can't find that appointment among yours."),
    SlotNotOffered.code: N_("That time is not one of the free times."),
    SlotInPast.code: N_("That time has already passed."),
    SlotTooSoon.code: N_("That time is too close to now to be booked."),
    SlotTooFar.code: N_("That time is too far ahead: you can book up to {days} days ahead."),
    SlotTaken.code: N_("Sorry, that place was just taken by someone else."),
    AlreadyBooked.code: N_("You already have an appointment."),
    IllegalTransition.code: N_(
        "This appointment can't be changed any more: it was cancelled, or it has already started."
    ),
    # Staff-side refusals (opening hours): never expected here, still never a stack trace.
    InvalidSchedule.code: N_("Sorry, that can't be done right now."),
    OverlappingRules.code: N_("Sorry, that can't be done right now."),
    AlreadyWaiting.code: N_(
        "You are already on the waitlist: we'll write to you as soon as a place frees up."
    ),
    SlotsAvailable.code: N_("Good news: there are free places now!"),
    NoOffer.code: N_("This offer is no longer open."),
    OfferExpired.code: N_(
        "Sorry, the time to accept this place has run out: it went to the next person waiting."
    ),
    BookingError.code: N_("Sorry, that can't be done right now."),
}


def _refusal(turn_: Turn, code: str) -> str:
    """The reply for a refusal `code` (a `BookingError.code`), in the citizen's language."""
    message = ERROR_TEXTS.get(code, ERROR_TEXTS[BookingError.code])
    return turn_.t(message, days=turn_.settings.booking_horizon_days)


def _error_text(turn_: Turn, error: BookingError) -> str:
    return _refusal(turn_, error.code)


# --- small helpers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Moving:
    """The booking being moved: plain values, safe after any savepoint rollback."""

    id: int
    helpdesk_id: int
    starts_at: datetime

    @classmethod
    def of(cls, booking: Booking) -> Moving:
        return cls(booking.id, booking.helpdesk_id, booking.starts_at)


def _extra(moving: Moving | None) -> tuple[int, ...]:
    """The trailing callback argument that keeps a move going through the steps."""
    return () if moving is None else (moving.id,)


def _keyboard(rows: Rows) -> InlineKeyboardMarkup | None:
    rows = [row for row in rows if row]
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


def _chunks(items: Sequence[tuple[str, str]], size: int) -> Rows:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


def _local(turn_: Turn, moment: datetime) -> datetime:
    return moment.astimezone(turn_.settings.tz)


def _day_bounds(turn_: Turn, day: date) -> tuple[datetime, datetime]:
    tz = turn_.settings.tz
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def _day_label(t: Translator, day: date) -> str:
    """A short day for a button: "mer 9 dicembre", "Wed 9 December"."""
    return format_date(day, "EEE d MMMM", locale=t.language)


def _long_day(t: Translator, day: date) -> str:
    return format_date(day, "EEEE d MMMM y", locale=t.language)


def _clock(turn_: Turn, moment: datetime) -> str:
    return _local(turn_, moment).strftime("%H:%M")


def _when(turn_: Turn, moment: datetime) -> str:
    """Day and time in the program's time zone: "lunedì 7 dicembre 2026 alle 09:30"."""
    return turn_.t(
        "{day} at {time}",
        day=_long_day(turn_.t, _local(turn_, moment).date()),
        time=_clock(turn_, moment),
    )


def _place(helpdesk: Helpdesk, *, with_directions: bool = False) -> str:
    lines = [f"📍 <b>{html.escape(helpdesk.name)}</b>", html.escape(helpdesk.address)]
    if with_directions and helpdesk.directions.strip():
        lines.append(f"🧭 {html.escape(helpdesk.directions.strip())}")
    return "\n".join(lines)


def _bring(t: Translator) -> str:
    items = "\n".join(f"• {t(item)}" for item in WHAT_TO_BRING)
    return t("<b>Please bring:</b>") + "\n" + items


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _from_epoch(value: int | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_day(value: str) -> date | None:
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _arg(callback: Callback, index: int) -> str:
    return callback.args[index] if index < len(callback.args) else ""


def _id(callback: Callback | None, index: int) -> int | None:
    """A database id from the callback, or None (a forged huge number included)."""
    value = callback.int_arg(index) if callback is not None else None
    return value if value is not None and 0 < value <= MAX_ID else None


def _show(turn_: Turn, screen: Screen) -> Reply:
    """Replace the message whose button was pressed; after a command, send a new one."""
    text, keyboard = screen
    if turn_.update.callback_query is not None:
        return Edit(text, keyboard)
    return Send(text, keyboard)


def _book_button(t: Translator) -> Rows:
    return [[(t("📅 Book an interview"), encode(Cb.HELPDESKS))]]


@asynccontextmanager
async def _all_or_nothing(session: AsyncSession) -> AsyncIterator[None]:
    """Run a service call in a savepoint: if it refuses, nothing it did stays behind.

    Neither in the database nor in the session: objects a service refreshed inside the
    savepoint (a booking being moved reads "cancelled") are expired, so they are read
    again from the database, where the rollback left them as they were.
    """
    try:
        async with session.begin_nested():
            yield
    except BookingError:
        session.expire_all()
        raise


# --- who may book ----------------------------------------------------------------------


def _citizen_id(turn_: Turn) -> int | None:
    citizen = turn_.citizen
    if citizen is None or citizen.consent_version is None:
        return None
    return citizen.id


async def _booking_refusal(turn_: Turn, citizen_id: int) -> str | None:
    """Why this citizen can't book (yet), or None: booking needs a completed, eligible intake."""
    found = await intake_service.get_intake(session=turn_.session, citizen_id=citizen_id)
    return _intake_refusal(turn_, found)


def _intake_refusal(turn_: Turn, intake: Intake | None) -> str | None:
    """`_booking_refusal` for an intake this update has already read."""
    t = turn_.t
    if intake is None or intake.state != IntakeState.COMPLETED:
        return t("To book an interview, first answer a few questions: write /start.")
    if not intake.eligible:
        return t(
            "From your answers, Ripartire can't book an interview for you. "
            "If you think this is a mistake, talk to us:\n{contacts}",
            contacts=texts.contacts(t),
        )
    return None


async def _owned_active(turn_: Turn, citizen_id: int, booking_id: int | None) -> Booking | None:
    """The citizen's own booking with that id, if it is still active."""
    if booking_id is None:
        return None
    try:
        found = await booking_service.get_booking(
            session=turn_.session, booking_id=booking_id, citizen_id=citizen_id
        )
    except BookingNotFound:
        return None
    return found if found.state == BookingState.BOOKED else None


def _not_yours(turn_: Turn) -> str:
    return _join(
        turn_.t("I can't find that appointment among yours, or it is no longer active."),
        turn_.t("Write /prenotazione to see your appointment."),
    )


@dataclass(frozen=True, slots=True)
class Flow:
    citizen_id: int
    moving: Moving | None


async def _flow(turn_: Turn, callback: Callback | None, index: int) -> Flow | list[Reply]:
    """Who is choosing a slot, and for what: a new booking (eligible citizens) or a move.

    A move carries the id of the booking being moved at `index` of the callback's arguments.
    """
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [_show(turn_, (turn_.t(WRITE_START), None))]
    if callback is not None and _arg(callback, index):
        moved = await _owned_active(turn_, citizen_id, _id(callback, index))
        if moved is None:
            return [_show(turn_, (_not_yours(turn_), None))]
        return Flow(citizen_id, Moving.of(moved))
    refusal = await _booking_refusal(turn_, citizen_id)
    if refusal is not None:
        return [_show(turn_, (refusal, None))]
    return Flow(citizen_id, None)


# --- the screens of the flow -------------------------------------------------------------


async def _free(
    turn_: Turn,
    moving: Moving | None,
    *,
    helpdesk_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[FreeSlot]:
    """Free slots now; while moving, without the citizen's own slot."""
    slots = await availability.list_free_slots(
        session=turn_.session,
        settings=turn_.settings,
        now=turn_.now,
        helpdesk_id=helpdesk_id,
        since=since,
        until=until,
    )
    if moving is None:
        return slots
    return [
        s
        for s in slots
        if not (s.helpdesk_id == moving.helpdesk_id and s.starts_at == moving.starts_at)
    ]


@dataclass(frozen=True, slots=True)
class Places:
    """The free slots now, of every helpdesk, and the active helpdesks that have some.

    Read once per update and handed from screen to screen: the start screen, the days of
    a helpdesk and its "another helpdesk" button all show the same availability.
    """

    slots: list[FreeSlot]
    helpdesks: list[Helpdesk]

    def of(self, helpdesk: Helpdesk) -> list[FreeSlot]:
        return [s for s in self.slots if s.helpdesk_id == helpdesk.id]


async def _places(turn_: Turn, moving: Moving | None) -> Places:
    slots = await _free(turn_, moving)
    if not slots:
        return Places(slots, [])
    free_ids = {s.helpdesk_id for s in slots}
    active = await hours.list_helpdesks(session=turn_.session)
    return Places(slots, [h for h in active if h.id in free_ids])


async def _start_screen(
    turn_: Turn, flow: Flow, note: str = "", places: Places | None = None
) -> Screen:
    """The first step: the helpdesks with free places (skipped when only one has some)."""
    t = turn_.t
    if places is None:
        places = await _places(turn_, flow.moving)
    helpdesks = places.helpdesks
    if not helpdesks:
        return await _nothing_free_screen(turn_, flow, note)
    if len(helpdesks) == 1:
        return await _days_screen(turn_, flow, helpdesks[0], 0, note, places)
    lines = [t("Where would you like to have your interview?")]
    for helpdesk in helpdesks:
        lines.append(_place(helpdesk))
    rows = [[(f"📍 {h.name}", encode(Cb.HELPDESK, h.id, *_extra(flow.moving)))] for h in helpdesks]
    return _join(note, "\n\n".join(lines)), _keyboard(rows)


async def _nothing_free_screen(turn_: Turn, flow: Flow, note: str) -> Screen:
    t = turn_.t
    days = turn_.settings.booking_horizon_days
    if flow.moving is not None:
        return (
            _join(
                note,
                t(
                    "There are no other free times in the next {days} days right now. "
                    "Your appointment stays as it is.",
                    days=days,
                ),
            ),
            None,
        )
    return (
        _join(
            note,
            t("😔 There are no free places in the next {days} days right now.", days=days),
            t(
                "Do you want to join the waitlist? When a place frees up we'll write to you "
                "here, and we'll hold it for you for {minutes} minutes.",
                minutes=turn_.settings.waitlist_hold_minutes,
            ),
            t("You can also call us:\n{contacts}", contacts=texts.contacts(t)),
        ),
        _keyboard([[(t("🔔 Yes, put me on the waitlist"), encode(Cb.WAITLIST_JOIN))]]),
    )


async def _days_screen(
    turn_: Turn,
    flow: Flow,
    helpdesk: Helpdesk,
    page: int,
    note: str = "",
    places: Places | None = None,
) -> Screen:
    """The days with free places at a helpdesk, a page at a time."""
    t = turn_.t
    extra = _extra(flow.moving)
    if places is None:
        places = await _places(turn_, flow.moving)
    days = sorted({_local(turn_, s.starts_at).date() for s in places.of(helpdesk)})
    if not days:
        gone = t("There are no free places left at {name}.", name=html.escape(helpdesk.name))
        return await _start_screen(turn_, flow, _join(note, gone), places)
    pages = (len(days) + DAYS_PER_PAGE - 1) // DAYS_PER_PAGE
    page = min(max(page, 0), pages - 1)
    shown = days[page * DAYS_PER_PAGE : (page + 1) * DAYS_PER_PAGE]
    rows = _chunks(
        [
            (_day_label(t, d), encode(Cb.DAY, helpdesk.id, d.strftime("%Y%m%d"), *extra))
            for d in shown
        ],
        DAYS_PER_ROW,
    )
    navigation = []
    if page > 0:
        navigation.append((t("◀ Earlier days"), encode(Cb.DAYS, helpdesk.id, page - 1, *extra)))
    if page < pages - 1:
        navigation.append((t("More days ▶"), encode(Cb.DAYS, helpdesk.id, page + 1, *extra)))
    rows.append(navigation)
    if len(places.helpdesks) > 1:
        rows.append([(t("↩️ Another helpdesk"), encode(Cb.HELPDESKS, *extra))])
    text = _join(note, _place(helpdesk), t("Choose a day:"))
    return text, _keyboard(rows)


async def _times_screen(
    turn_: Turn, flow: Flow, helpdesk: Helpdesk, day: date, note: str = ""
) -> Screen:
    """The free times of one day; if none is left, the days again."""
    t = turn_.t
    extra = _extra(flow.moving)
    since, until = _day_bounds(turn_, day)
    slots = await _free(turn_, flow.moving, helpdesk_id=helpdesk.id, since=since, until=until)
    if not slots:
        full = t("There are no free places left on {day}.", day=_long_day(t, day))
        return await _days_screen(turn_, flow, helpdesk, 0, _join(note, full))
    rows = _chunks(
        [
            (_clock(turn_, s.starts_at), encode(Cb.TIME, helpdesk.id, _epoch(s.starts_at), *extra))
            for s in slots
        ],
        TIMES_PER_ROW,
    )
    rows.append([(t("↩️ Another day"), encode(Cb.DAYS, helpdesk.id, 0, *extra))])
    text = _join(
        note,
        f"{_place(helpdesk)}\n📅 {_long_day(t, day)}",
        t("Choose a time:"),
    )
    return text, _keyboard(rows)


async def _confirm_screen(
    turn_: Turn, flow: Flow, helpdesk: Helpdesk, starts_at: datetime
) -> Screen:
    t = turn_.t
    extra = _extra(flow.moving)
    day = _local(turn_, starts_at).strftime("%Y%m%d")
    choice = f"📅 {_when(turn_, starts_at)}\n{_place(helpdesk)}"
    if flow.moving is None:
        text = _join(t("Please check, then confirm:"), choice)
        confirm = t("✅ Confirm")
    else:
        old = await hours.get_helpdesk(session=turn_.session, helpdesk_id=flow.moving.helpdesk_id)
        moved_from = t(
            "<b>From:</b> {when}, {name}",
            when=_when(turn_, flow.moving.starts_at),
            name=html.escape(old.name),
        )
        text = _join(t("Move your appointment?"), moved_from, t("<b>To:</b>") + "\n" + choice)
        confirm = t("✅ Move it here")
    rows = [
        [(confirm, encode(Cb.BOOK, helpdesk.id, _epoch(starts_at), *extra))],
        [(t("↩️ Another time"), encode(Cb.DAY, helpdesk.id, day, *extra))],
    ]
    return text, _keyboard(rows)


# --- bookings, offers and the waitlist as messages ----------------------------------------


async def _booking_details(
    turn_: Turn, booking: Booking, helpdesk: Helpdesk | None = None
) -> tuple[str, Helpdesk]:
    """The booking's day, time, place and code; `helpdesk` if the update has already read it."""
    if helpdesk is None or helpdesk.id != booking.helpdesk_id:
        helpdesk = await hours.get_helpdesk(session=turn_.session, helpdesk_id=booking.helpdesk_id)
    text = "\n".join(
        [
            f"📅 {_when(turn_, booking.starts_at)}",
            _place(helpdesk, with_directions=True),
            turn_.t("🔖 Booking code: <b>{code}</b>", code=html.escape(booking.code)),
        ]
    )
    return text, helpdesk


async def _booking_screen(turn_: Turn, booking: Booking, note: str = "") -> Screen:
    """The citizen's active booking with "Move" and "Cancel"."""
    t = turn_.t
    details, _ = await _booking_details(turn_, booking)
    text = _join(note, t("<b>Your appointment</b>") + "\n" + details, _bring(t))
    rows = [
        [
            (t("🔁 Move"), encode(Cb.MOVE, booking.id)),
            (t("❌ Cancel"), encode(Cb.CANCEL, booking.id)),
        ]
    ]
    return text, _keyboard(rows)


async def _confirmation(
    turn_: Turn, booking: Booking, heading: str, helpdesk: Helpdesk | None = None
) -> list[Reply]:
    """What the citizen keeps: date, time, place, what to bring, the code and an .ics file."""
    t = turn_.t
    details, helpdesk = await _booking_details(turn_, booking, helpdesk)
    text = _join(
        heading,
        details,
        _bring(t),
        t("We'll remind you the day before and a few hours before."),
        t("To move it write /sposta, to cancel it /annulla."),
    )
    description = "\n".join(
        [
            t("Ripartire interview. Booking code: {code}", code=booking.code),
            t("Please bring:"),
            *(f"- {t(item)}" for item in WHAT_TO_BRING),
        ]
    )
    ics = booking_ics(
        booking=booking,
        helpdesk=helpdesk,
        settings=turn_.settings,
        summary=t("Ripartire interview"),
        description=description,
        stamp=turn_.now,
    )
    return [
        _show(turn_, (text, None)),
        Document(
            f"ripartire-{booking.code}.ics",
            ics,
            t("📆 Add the appointment to your calendar."),
        ),
    ]


def _offer_screen(turn_: Turn, held: booking_service.HeldPlace) -> Screen:
    t = turn_.t
    if _local(turn_, held.expires_at).date() == _local(turn_, turn_.now).date():
        hold = t(
            "We're holding it for you until {time}. Do you want it?",
            time=_clock(turn_, held.expires_at),
        )
    else:
        hold = t(
            "We're holding it for you until {when}. Do you want it?",
            when=_when(turn_, held.expires_at),
        )
    text = _join(
        t("🎉 <b>A place has freed up for you!</b>"),
        f"📅 {_when(turn_, held.starts_at)}\n{_place(held.helpdesk)}",
        hold,
    )
    rows = [
        [(t("✅ Yes, book it"), encode(Cb.OFFER_ACCEPT, held.entry_id))],
        [(t("❌ No, thanks"), encode(Cb.OFFER_DECLINE, held.entry_id))],
    ]
    return text, _keyboard(rows)


def _waiting_text(turn_: Turn) -> str:
    return turn_.t(
        "🔔 You are on the waitlist: we'll write to you here as soon as a place frees up. "
        "We'll hold it for you for {minutes} minutes, so answer as soon as you can.",
        minutes=turn_.settings.waitlist_hold_minutes,
    )


async def _where_you_stand(turn_: Turn, citizen_id: int, note: str = "") -> Screen | None:
    """The active booking, an open offer, or the waitlist; None when there is none of them."""
    session = turn_.session
    active = await booking_service.active_booking(session=session, citizen_id=citizen_id)
    if active is not None:
        return await _booking_screen(turn_, active, note)
    found = await waitlist.open_entry_and_offer(
        session=session, citizen_id=citizen_id, now=turn_.now
    )
    if found is None:
        return None
    if found.held is not None:
        text, keyboard = _offer_screen(turn_, found.held)
        return _join(note, text), keyboard
    if found.entry.state == WaitlistState.WAITING:
        return _join(note, _waiting_text(turn_)), None
    # An offer whose hold lapsed a moment ago: the housekeeping job is passing it on.
    lapsed = turn_.t("Write /prenotazione again in a minute to look for another time.")
    return _join(note, _refusal(turn_, OfferExpired.code), lapsed), None


async def _next_step(
    turn_: Turn, citizen_id: int, note: str = "", *, may_book: bool = False
) -> Screen:
    """Where the citizen stands or, when they can book, fresh choices (or the waitlist).

    `may_book`: this update has already found the citizen's intake completed and eligible.
    """
    found = await _where_you_stand(turn_, citizen_id, note)
    if found is not None:
        return found
    refusal = None if may_book else await _booking_refusal(turn_, citizen_id)
    if refusal is not None:
        return _join(note, refusal), None
    return await _start_screen(turn_, Flow(citizen_id, None), note)


# --- entry point from the questionnaire ------------------------------------------------


async def after_intake(turn_: Turn, *, intake: Intake | None = None) -> list[Reply]:
    """An eligible citizen finished the questionnaire: their booking, offer, or the first step.

    `intake`: the citizen's intake, when the questionnaire has just read it.
    """
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [Send(turn_.t(WRITE_START))]
    if intake is None:
        intake = await intake_service.get_intake(session=turn_.session, citizen_id=citizen_id)
    refusal = _intake_refusal(turn_, intake)
    if refusal is not None:
        return [Send(refusal)]
    text, keyboard = await _next_step(turn_, citizen_id, may_book=True)
    return [Send(text, keyboard)]


# --- commands --------------------------------------------------------------------------


async def _nothing_booked(turn_: Turn, citizen_id: int, opening: str) -> Screen:
    refusal = await _booking_refusal(turn_, citizen_id)
    if refusal is not None:
        return _join(opening, refusal), None
    return opening, _keyboard(_book_button(turn_.t))


@turn
async def on_my_booking(turn_: Turn) -> list[Reply]:
    """/prenotazione: the active booking (or offer, or waitlist), else how to book."""
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [_show(turn_, (turn_.t(WRITE_START), None))]
    found = await _where_you_stand(turn_, citizen_id)
    if found is None:
        found = await _nothing_booked(turn_, citizen_id, turn_.t("You have no appointment booked."))
    return [_show(turn_, found)]


@turn
async def on_move_command(turn_: Turn) -> list[Reply]:
    """/sposta: choose a new time for the active booking."""
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [Send(turn_.t(WRITE_START))]
    active = await booking_service.active_booking(session=turn_.session, citizen_id=citizen_id)
    if active is None:
        text, keyboard = await _nothing_booked(
            turn_, citizen_id, turn_.t("You have no appointment to move.")
        )
        return [Send(text, keyboard)]
    return [Send(*await _move_start(turn_, citizen_id, active))]


async def _move_start(turn_: Turn, citizen_id: int, active: Booking) -> Screen:
    details, _ = await _booking_details(turn_, active)
    note = turn_.t("<b>Your appointment now</b>") + "\n" + details
    return await _start_screen(turn_, Flow(citizen_id, Moving.of(active)), note)


@turn
async def on_cancel_command(turn_: Turn) -> list[Reply]:
    """/annulla: ask before cancelling the active booking."""
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [Send(turn_.t(WRITE_START))]
    active = await booking_service.active_booking(session=turn_.session, citizen_id=citizen_id)
    if active is None:
        text, keyboard = await _nothing_booked(
            turn_, citizen_id, turn_.t("You have no appointment to cancel.")
        )
        return [Send(text, keyboard)]
    return [Send(*await _cancel_question(turn_, active))]


async def _cancel_question(turn_: Turn, active: Booking) -> Screen:
    t = turn_.t
    details, _ = await _booking_details(turn_, active)
    rows = [
        [(t("Yes, cancel it"), encode(Cb.CANCEL_CONFIRM, active.id))],
        [(t("No, keep my appointment"), encode(Cb.NOOP))],
    ]
    return _join(t("Do you really want to cancel this appointment?"), details), _keyboard(rows)


# --- buttons of the booking flow -------------------------------------------------------


@turn
async def on_helpdesks(turn_: Turn) -> list[Reply]:
    """`hds[:<booking>]`: start (again) from the choice of helpdesk."""
    callback = parse(turn_.callback_data)
    flow = await _flow(turn_, callback, 0)
    if isinstance(flow, list):
        return flow
    if flow.moving is None:
        found = await _where_you_stand(turn_, flow.citizen_id)
        if found is not None:
            return [_show(turn_, found)]
    return [_show(turn_, await _start_screen(turn_, flow))]


async def _bookable_helpdesk(turn_: Turn, helpdesk_id: int | None) -> Helpdesk | None:
    if helpdesk_id is None:
        return None
    try:
        helpdesk = await hours.get_helpdesk(session=turn_.session, helpdesk_id=helpdesk_id)
    except HelpdeskNotFound:
        return None
    return helpdesk if helpdesk.active else None


async def _unknown_helpdesk(turn_: Turn, flow: Flow) -> list[Reply]:
    note = _refusal(turn_, HelpdeskInactive.code)
    return [_show(turn_, await _start_screen(turn_, flow, note))]


@turn
async def on_helpdesk(turn_: Turn) -> list[Reply]:
    """`hd:<helpdesk>[:<booking>]`: the days of that helpdesk."""
    callback = parse(turn_.callback_data)
    assert callback is not None  # the handler's pattern
    flow = await _flow(turn_, callback, 1)
    if isinstance(flow, list):
        return flow
    helpdesk = await _bookable_helpdesk(turn_, _id(callback, 0))
    if helpdesk is None:
        return await _unknown_helpdesk(turn_, flow)
    return [_show(turn_, await _days_screen(turn_, flow, helpdesk, 0))]


@turn
async def on_days(turn_: Turn) -> list[Reply]:
    """`days:<helpdesk>:<page>[:<booking>]`: another page of days."""
    callback = parse(turn_.callback_data)
    assert callback is not None
    flow = await _flow(turn_, callback, 2)
    if isinstance(flow, list):
        return flow
    helpdesk = await _bookable_helpdesk(turn_, _id(callback, 0))
    if helpdesk is None:
        return await _unknown_helpdesk(turn_, flow)
    page = callback.int_arg(1) or 0
    return [_show(turn_, await _days_screen(turn_, flow, helpdesk, page))]


@turn
async def on_day(turn_: Turn) -> list[Reply]:
    """`day:<helpdesk>:<yyyymmdd>[:<booking>]`: the free times of that day."""
    callback = parse(turn_.callback_data)
    assert callback is not None
    flow = await _flow(turn_, callback, 2)
    if isinstance(flow, list):
        return flow
    helpdesk = await _bookable_helpdesk(turn_, _id(callback, 0))
    if helpdesk is None:
        return await _unknown_helpdesk(turn_, flow)
    day = _parse_day(_arg(callback, 1))
    if day is None:
        note = turn_.t("That day is not available. Choose another one:")
        return [_show(turn_, await _days_screen(turn_, flow, helpdesk, 0, note))]
    return [_show(turn_, await _times_screen(turn_, flow, helpdesk, day))]


@turn
async def on_time(turn_: Turn) -> list[Reply]:
    """`tm:<helpdesk>:<epoch>[:<booking>]`: check the time is free, then ask to confirm."""
    callback = parse(turn_.callback_data)
    assert callback is not None
    flow = await _flow(turn_, callback, 2)
    if isinstance(flow, list):
        return flow
    helpdesk = await _bookable_helpdesk(turn_, _id(callback, 0))
    if helpdesk is None:
        return await _unknown_helpdesk(turn_, flow)
    starts_at = _from_epoch(callback.int_arg(1))
    if starts_at is None:
        note = _refusal(turn_, SlotNotOffered.code)
        return [_show(turn_, await _days_screen(turn_, flow, helpdesk, 0, note))]
    day = _local(turn_, starts_at).date()
    since, until = _day_bounds(turn_, day)
    free = await _free(turn_, flow.moving, helpdesk_id=helpdesk.id, since=since, until=until)
    if not any(s.starts_at == starts_at for s in free):
        note = turn_.t("That time is not free. Choose another one:")
        return [_show(turn_, await _times_screen(turn_, flow, helpdesk, day, note))]
    return [_show(turn_, await _confirm_screen(turn_, flow, helpdesk, starts_at))]


@turn
async def on_book(turn_: Turn) -> list[Reply]:
    """`bk:<helpdesk>:<epoch>[:<booking>]`: book (or move to) that slot, if it is still free."""
    callback = parse(turn_.callback_data)
    assert callback is not None
    flow = await _flow(turn_, callback, 2)
    if isinstance(flow, list):
        return flow
    helpdesk_id, starts_at = _id(callback, 0), _from_epoch(callback.int_arg(1))
    if helpdesk_id is None or starts_at is None:
        note = _refusal(turn_, SlotNotOffered.code)
        return [_show(turn_, await _start_screen(turn_, flow, note))]
    actor = f"citizen:{flow.citizen_id}"
    session = turn_.session
    # Read here and kept referenced, so that `book_slot` finds it in the session (whose
    # identity map forgets what nothing references) and the confirmation shows it.
    helpdesk = await _bookable_helpdesk(turn_, helpdesk_id)
    try:
        async with _all_or_nothing(session):
            if flow.moving is None:
                booked = await booking_service.book_slot(
                    session=session,
                    settings=turn_.settings,
                    citizen_id=flow.citizen_id,
                    helpdesk_id=helpdesk_id,
                    starts_at=starts_at,
                    actor=actor,
                    now=turn_.now,
                )
            else:
                booked = await booking_service.move_booking(
                    session=session,
                    settings=turn_.settings,
                    booking_id=flow.moving.id,
                    helpdesk_id=helpdesk_id,
                    starts_at=starts_at,
                    by=CancelledBy.CITIZEN,
                    actor=actor,
                    citizen_id=flow.citizen_id,
                    now=turn_.now,
                )
    except BookingError as error:
        return [
            _show(turn_, await _after_refused_booking(turn_, flow, helpdesk_id, starts_at, error))
        ]
    heading = (
        turn_.t("✅ <b>Done: your appointment is booked.</b>")
        if flow.moving is None
        else turn_.t("✅ <b>Done: your appointment has been moved.</b>")
    )
    return await _confirmation(turn_, booked, heading, helpdesk)


async def _after_refused_booking(
    turn_: Turn, flow: Flow, helpdesk_id: int, starts_at: datetime, error: BookingError
) -> Screen:
    """Say why the slot could not be had, and offer fresh choices where they make sense."""
    note = _error_text(turn_, error)
    if isinstance(error, AlreadyBooked):
        return await _next_step(turn_, flow.citizen_id, note)
    if isinstance(error, BookingNotFound):
        return _not_yours(turn_), None
    if isinstance(error, IllegalTransition) or (
        flow.moving is not None
        and await _owned_active(turn_, flow.citizen_id, flow.moving.id) is None
    ):
        # The booking being moved was cancelled or has started meanwhile: nothing to move.
        return _join(note, turn_.t("Write /prenotazione to see where you stand.")), None
    if isinstance(error, HelpdeskNotFound | HelpdeskInactive):
        return await _start_screen(turn_, flow, note)
    helpdesk = await _bookable_helpdesk(turn_, helpdesk_id)
    if helpdesk is None:
        return await _start_screen(turn_, flow, note)
    if isinstance(error, SlotTaken):
        day = _local(turn_, starts_at).date()
        return await _times_screen(turn_, flow, helpdesk, day, note)
    return await _days_screen(turn_, flow, helpdesk, 0, note)


# --- buttons on a booking: move, cancel, "I'll be there" ---------------------------------


async def _own_booking_from_button(turn_: Turn) -> tuple[int, Booking] | list[Reply]:
    """The citizen and the active booking named by the pressed button, or the refusal."""
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [Send(turn_.t(WRITE_START))]
    booking_id = _id(parse(turn_.callback_data), 0)
    found = await _owned_active(turn_, citizen_id, booking_id)
    if found is None:
        return [Send(_not_yours(turn_))]
    return citizen_id, found


@turn
async def on_move(turn_: Turn) -> list[Reply]:
    """`mv:<booking>` (from /prenotazione or a reminder): choose a new time."""
    owned = await _own_booking_from_button(turn_)
    if isinstance(owned, list):
        return owned
    citizen_id, active = owned
    return [Send(*await _move_start(turn_, citizen_id, active))]


@turn
async def on_cancel(turn_: Turn) -> list[Reply]:
    """`cx:<booking>`: ask before cancelling."""
    owned = await _own_booking_from_button(turn_)
    if isinstance(owned, list):
        return owned
    return [Send(*await _cancel_question(turn_, owned[1]))]


@turn
async def on_cancel_confirmed(turn_: Turn) -> list[Reply]:
    """`cxok:<booking>`: cancel it; the place is freed (or offered to the waitlist)."""
    t = turn_.t
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [Edit(t(WRITE_START))]
    booking_id = _id(parse(turn_.callback_data), 0)
    if booking_id is None:
        return [Edit(_not_yours(turn_))]
    try:
        async with _all_or_nothing(turn_.session):
            await booking_service.cancel_booking(
                session=turn_.session,
                settings=turn_.settings,
                booking_id=booking_id,
                by=CancelledBy.CITIZEN,
                actor=f"citizen:{citizen_id}",
                citizen_id=citizen_id,
                now=turn_.now,
            )
    except BookingNotFound:
        return [Edit(_not_yours(turn_))]
    except BookingError as error:
        return [
            Edit(_join(_error_text(turn_, error), t("Write /prenotazione to see where you stand.")))
        ]
    done = t(
        "Your appointment is cancelled. Thank you for letting us know: "
        "the place is free again for someone else."
    )
    text, keyboard = await _nothing_booked(
        turn_, citizen_id, _join(done, t("If you want, you can book a new one."))
    )
    return [Edit(text, keyboard)]


@turn
async def on_attending(turn_: Turn) -> list[Reply]:
    """`here:<booking>` from a reminder: thank the citizen and note it for the staff."""
    owned = await _own_booking_from_button(turn_)
    if isinstance(owned, list):
        return owned
    citizen_id, active = owned
    await audit.record(
        session=turn_.session,
        actor=f"citizen:{citizen_id}",
        action="booking.attendance_confirmed",
        object_type="booking",
        object_id=str(active.id),
    )
    details, _ = await _booking_details(turn_, active)
    return [Send(_join(turn_.t("🙏 Thank you! We're expecting you:"), details))]


# --- the waitlist and its offers ---------------------------------------------------------


@turn
async def on_join_waitlist(turn_: Turn) -> list[Reply]:
    """`wl`: wait for a place when nothing is free within the horizon."""
    flow = await _flow(turn_, None, 0)
    if isinstance(flow, list):
        return flow
    try:
        async with _all_or_nothing(turn_.session):
            await waitlist.join_waitlist(
                session=turn_.session,
                settings=turn_.settings,
                citizen_id=flow.citizen_id,
                now=turn_.now,
            )
    except SlotsAvailable as error:
        return [Edit(*await _start_screen(turn_, flow, _error_text(turn_, error)))]
    except (AlreadyBooked, AlreadyWaiting) as error:
        return [Edit(*await _next_step(turn_, flow.citizen_id, _error_text(turn_, error)))]
    except BookingError as error:
        return [Edit(_error_text(turn_, error))]
    return [Edit(_waiting_text(turn_))]


@turn
async def on_accept_offer(turn_: Turn) -> list[Reply]:
    """`oa:<entry>`: take the place held for the citizen."""
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [Edit(turn_.t(WRITE_START))]
    entry_id = _id(parse(turn_.callback_data), 0)
    try:
        if entry_id is None:
            raise NoOffer("No offer in the button.")
        async with _all_or_nothing(turn_.session):
            booked = await waitlist.accept_offer(
                session=turn_.session,
                settings=turn_.settings,
                entry_id=entry_id,
                citizen_id=citizen_id,
                now=turn_.now,
            )
    except (NoOffer, OfferExpired, AlreadyBooked) as error:
        return [Edit(*await _next_step(turn_, citizen_id, _error_text(turn_, error)))]
    except BookingError as error:
        return [Edit(_error_text(turn_, error))]
    return await _confirmation(
        turn_, booked, turn_.t("✅ <b>Done: your appointment is booked.</b>")
    )


@turn
async def on_decline_offer(turn_: Turn) -> list[Reply]:
    """`od:<entry>`: the place goes to the next person waiting."""
    t = turn_.t
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [Edit(t(WRITE_START))]
    entry_id = _id(parse(turn_.callback_data), 0)
    try:
        if entry_id is None:
            raise NoOffer("No offer in the button.")
        async with _all_or_nothing(turn_.session):
            await waitlist.decline_offer(
                session=turn_.session,
                settings=turn_.settings,
                entry_id=entry_id,
                citizen_id=citizen_id,
                now=turn_.now,
            )
    except (NoOffer, OfferExpired) as error:
        return [Edit(*await _next_step(turn_, citizen_id, _error_text(turn_, error)))]
    except BookingError as error:
        return [Edit(_error_text(turn_, error))]
    text, keyboard = await _nothing_booked(
        turn_,
        citizen_id,
        t("All right: the place goes to the next person waiting, and you are off the waitlist."),
    )
    return [Edit(text, keyboard)]


# --- registration ----------------------------------------------------------------------


def _pattern(kind: Cb, args: Iterable[str] = ()) -> str:
    """The exact shape of a callback: `kind`, then the given arguments (regexes)."""
    return "^" + ":".join([kind.value, *args]) + "$"


ID = r"\d{1,10}"
EPOCH = r"\d{1,12}"
OPTIONAL_BOOKING = rf"(?::{ID})?"


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    message = filters.UpdateType.MESSAGE
    return [
        CommandHandler("prenotazione", on_my_booking, filters=message),
        CommandHandler("sposta", on_move_command, filters=message),
        CommandHandler("annulla", on_cancel_command, filters=message),
        CallbackQueryHandler(on_my_booking, pattern=_pattern(Cb.MY_BOOKING)),
        CallbackQueryHandler(on_helpdesks, pattern=rf"^{Cb.HELPDESKS}{OPTIONAL_BOOKING}$"),
        CallbackQueryHandler(on_helpdesk, pattern=rf"^{Cb.HELPDESK}:{ID}{OPTIONAL_BOOKING}$"),
        CallbackQueryHandler(on_days, pattern=rf"^{Cb.DAYS}:{ID}:\d{{1,4}}{OPTIONAL_BOOKING}$"),
        CallbackQueryHandler(on_day, pattern=rf"^{Cb.DAY}:{ID}:\d{{8}}{OPTIONAL_BOOKING}$"),
        CallbackQueryHandler(on_time, pattern=rf"^{Cb.TIME}:{ID}:{EPOCH}{OPTIONAL_BOOKING}$"),
        CallbackQueryHandler(on_book, pattern=rf"^{Cb.BOOK}:{ID}:{EPOCH}{OPTIONAL_BOOKING}$"),
        CallbackQueryHandler(on_move, pattern=_pattern(Cb.MOVE, [ID])),
        CallbackQueryHandler(on_cancel, pattern=_pattern(Cb.CANCEL, [ID])),
        CallbackQueryHandler(on_cancel_confirmed, pattern=_pattern(Cb.CANCEL_CONFIRM, [ID])),
        CallbackQueryHandler(on_attending, pattern=_pattern(Cb.ATTENDING, [ID])),
        CallbackQueryHandler(on_join_waitlist, pattern=_pattern(Cb.WAITLIST_JOIN)),
        CallbackQueryHandler(on_accept_offer, pattern=_pattern(Cb.OFFER_ACCEPT, [ID])),
        CallbackQueryHandler(on_decline_offer, pattern=_pattern(Cb.OFFER_DECLINE, [ID])),
    ]
