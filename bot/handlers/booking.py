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

Handlers are adapters: parse the button, read or call the service, and hand the data to
a screen of `bot.screens.booking` (pure: text and buttons); what the citizen keeps of a
booking is the card of `bot.screens.card`, the same the outbox sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.callbacks import Callback, Cb, parse
from bot.replies import Document, Edit, Reply, Send
from bot.screens import booking as screens
from bot.screens import offers as offer_screens
from bot.screens.booking import (
    ERROR_TEXTS,
    SEE_WHERE_YOU_STAND,
    WRITE_START,
    Moving,
    NotYet,
    Places,
)
from bot.screens.card import CardEvent, booking_card
from bot.screens.common import Screen, View, join
from bot.turn import Turn, turn
from shared.audit import service as audit
from shared.booking import availability, hours, moderation, waitlist
from shared.booking import service as booking_service
from shared.booking.availability import FreeSlot
from shared.booking.errors import (
    AlreadyBooked,
    AlreadyWaiting,
    BookingError,
    BookingNotFound,
    HelpdeskInactive,
    HelpdeskNotFound,
    IllegalTransition,
    NoOffer,
    NotAllowedToBook,
    OfferExpired,
    SlotNotOffered,
    SlotsAvailable,
    SlotTaken,
)
from shared.booking.models import Booking, BookingState, Helpdesk
from shared.booking.service import CancelledBy
from shared.citizens.standing import Booked, NotEligible, Standing, citizen_standing
from shared.intake.models import Intake
from shared.limits import is_record_id

__all__ = ["ERROR_TEXTS", "after_intake", "handlers"]

# --- small helpers ---------------------------------------------------------------------


def _view(turn_: Turn) -> View:
    return View.of(turn_.t, turn_.settings, turn_.now)


def _refusal(turn_: Turn, code: str) -> str:
    return screens.refusal(_view(turn_), code)


def _refused(turn_: Turn, error: BookingError) -> str:
    """The reply for a refusal; one of the standing's is told from the standing itself."""
    if isinstance(error, NotAllowedToBook) and isinstance(error.standing, NotYet):
        return screens.not_yet_text(_view(turn_), error.standing)
    return _refusal(turn_, error.code)


def _local_day(turn_: Turn, moment: datetime) -> date:
    return moment.astimezone(turn_.settings.tz).date()


def _day_bounds(turn_: Turn, day: date) -> tuple[datetime, datetime]:
    tz = turn_.settings.tz
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


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
    # Ids are 32-bit on PostgreSQL: a bigger forged number must not even reach a query.
    value = callback.int_arg(index) if callback is not None else None
    return value if value is not None and is_record_id(value) else None


def _show(turn_: Turn, screen: Screen) -> Reply:
    """Replace the message whose button was pressed; after a command, send a new one."""
    text, keyboard = screen
    if turn_.update.callback_query is not None:
        return Edit(text, keyboard)
    return Send(text, keyboard)


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


async def _standing(turn_: Turn) -> Standing | None:
    """Where the citizen stands (one statement); None for someone never seen (no citizen).

    The one rule of `shared.citizens.standing`: each update asks it once and hands it to
    the screens, instead of reading the intake, the booking and the waitlist itself.
    """
    if turn_.citizen is None:
        return None
    return await citizen_standing(
        session=turn_.session,
        settings=turn_.settings,
        citizen_id=_citizen_id_of(turn_),
        now=turn_.now,
    )


@dataclass(frozen=True, slots=True)
class Flow:
    citizen_id: int
    moving: Moving | None
    standing: Standing


async def _flow(turn_: Turn, callback: Callback | None, index: int) -> Flow | list[Reply]:
    """Who is choosing a slot, and for what: a new booking (eligible citizens) or a move.

    A move carries the id of the booking being moved at `index` of the callback's
    arguments: it must be the citizen's active booking. A citizen who already holds a
    booking is shown it instead of choosing a second one.
    """
    standing = await _standing(turn_)
    if standing is None:
        return [_show(turn_, (turn_.t(WRITE_START), None))]
    citizen_id = _citizen_id_of(turn_)
    view = _view(turn_)
    if isinstance(standing, NotYet):
        return [_show(turn_, (screens.not_yet_text(view, standing), None))]
    if callback is not None and _arg(callback, index):
        moved = _active_with_id(standing, _id(callback, index))
        if moved is None:
            return [_show(turn_, (screens.not_yours_text(view), None))]
        return Flow(citizen_id, Moving.of(moved), standing)
    if isinstance(standing, Booked):
        note = _refusal(turn_, AlreadyBooked.code)
        return [
            _show(turn_, screens.booking_screen(view, standing.booking, standing.helpdesk, note))
        ]
    return Flow(citizen_id, None, standing)


def _citizen_id_of(turn_: Turn) -> int:
    """The citizen's id, read without IO: after a refused service call's savepoint the
    session's objects are expired, and reading `citizen.id` would load it again."""
    assert turn_.citizen is not None  # the standing was read for them
    identity = inspect(turn_.citizen).identity
    assert identity is not None  # a row read from the database
    return int(identity[0])


def _urgent_of(turn_: Turn) -> bool | None:
    """The citizen's urgency, read without IO (as `_citizen_id_of`); None if not loaded
    (every free place is shown then, and the booking itself applies the kept places)."""
    if turn_.citizen is None:
        return None
    urgent = inspect(turn_.citizen).dict.get("urgent")
    return urgent if isinstance(urgent, bool) else None


def _active_with_id(standing: Standing, booking_id: int | None) -> Booking | None:
    """The citizen's active booking, if it is the one with that id."""
    if isinstance(standing, Booked) and standing.booking.id == booking_id:
        return standing.booking
    return None


async def _helpdesk_of(turn_: Turn, booking: Booking, known: Helpdesk | None = None) -> Helpdesk:
    """The booking's helpdesk; `known` if the update has already read it."""
    if known is not None and known.id == booking.helpdesk_id:
        return known
    return await hours.get_helpdesk(session=turn_.session, helpdesk_id=booking.helpdesk_id)


# --- the data behind the screens -------------------------------------------------------


async def _free(
    turn_: Turn,
    moving: Moving | None,
    *,
    helpdesk_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[FreeSlot]:
    """Free slots now, as the citizen's urgency lets them see them (places kept for urgent
    citizens); while moving, without the citizen's own slot."""
    slots = await availability.list_free_slots(
        session=turn_.session,
        settings=turn_.settings,
        now=turn_.now,
        helpdesk_id=helpdesk_id,
        since=since,
        until=until,
        urgent=_urgent_of(turn_),
    )
    if moving is None:
        return slots
    return [
        s
        for s in slots
        if not (s.helpdesk_id == moving.helpdesk_id and s.starts_at == moving.starts_at)
    ]


async def _places(turn_: Turn, moving: Moving | None) -> Places:
    slots = await _free(turn_, moving)
    if not slots:
        return Places(slots, [])
    free_ids = {s.helpdesk_id for s in slots}
    active = await hours.list_helpdesks(session=turn_.session)
    return Places(slots, [h for h in active if h.id in free_ids], urgent=_urgent_of(turn_) is True)


async def _start_screen(turn_: Turn, flow: Flow, note: str = "") -> Screen:
    return screens.start_screen(_view(turn_), await _places(turn_, flow.moving), flow.moving, note)


async def _days_screen(
    turn_: Turn, flow: Flow, helpdesk: Helpdesk, page: int, note: str = ""
) -> Screen:
    places = await _places(turn_, flow.moving)
    return screens.days_screen(_view(turn_), places, helpdesk, page, flow.moving, note)


async def _times_screen(
    turn_: Turn, flow: Flow, helpdesk: Helpdesk, day: date, note: str = ""
) -> Screen:
    """The free times of one day; if it can't be booked, why, and the days that can."""
    view = _view(turn_)
    if day < view.today:
        return await _days_screen(turn_, flow, helpdesk, 0, join(note, screens.past_day_note(view)))
    _, latest = availability.booking_window(turn_.settings, turn_.now)
    if day > _local_day(turn_, latest):
        far = screens.beyond_horizon_note(view)
        return await _days_screen(turn_, flow, helpdesk, 0, join(note, far))
    since, until = _day_bounds(turn_, day)
    slots = await _free(turn_, flow.moving, helpdesk_id=helpdesk.id, since=since, until=until)
    if not slots:
        full = screens.full_day_note(view, day)
        return await _days_screen(turn_, flow, helpdesk, 0, join(note, full))
    return screens.times_screen(view, helpdesk, day, slots, flow.moving, note)


async def _confirm_screen(
    turn_: Turn, flow: Flow, helpdesk: Helpdesk, starts_at: datetime
) -> Screen:
    moving_from = None
    if flow.moving is not None:
        moving_from = await hours.get_helpdesk(
            session=turn_.session, helpdesk_id=flow.moving.helpdesk_id
        )
    return screens.confirm_screen(_view(turn_), helpdesk, starts_at, flow.moving, moving_from)


def _card(turn_: Turn, booking: Booking, helpdesk: Helpdesk, event: CardEvent) -> list[Reply]:
    """What the citizen keeps: the booking card (the outbox's too) and its calendar file
    (a request at a moderated helpdesk gets its card, and the file with the confirmation)."""
    if moderation.is_pending(booking):
        event = CardEvent.REQUESTED
    card = booking_card(_view(turn_), booking, helpdesk, event)
    calendar = card.calendar
    shown: list[Reply] = [_show(turn_, (card.text, card.keyboard))]
    if calendar is not None:
        shown.append(Document(calendar.filename, calendar.data, calendar.caption))
    return shown


async def _next_step(turn_: Turn, standing: Standing, note: str = "") -> Screen:
    """Where the citizen stands or, when they can book, fresh choices (or the waitlist)."""
    found = screens.where_you_stand(_view(turn_), standing, note)
    if found is not None:
        return found
    return await _start_screen(turn_, Flow(_citizen_id_of(turn_), None, standing), note)


async def _fresh_step(turn_: Turn, note: str = "") -> Screen:
    """`_next_step` after a service changed (or refused to change) what the citizen holds."""
    standing = await _standing(turn_)
    assert standing is not None  # a citizen pressed the button
    return await _next_step(turn_, standing, note)


async def _nothing_booked(turn_: Turn, opening: str) -> Screen:
    """After a cancellation or a declined offer: how to book again, or why they can't."""
    standing = await _standing(turn_)
    assert standing is not None
    return screens.nothing_booked_screen(_view(turn_), opening, standing)


# --- entry point from the questionnaire ------------------------------------------------


async def after_intake(turn_: Turn, *, intake: Intake | None = None) -> list[Reply]:
    """An eligible citizen finished the questionnaire: their booking, offer, or the first step.

    `intake`: the citizen's intake as the questionnaire left it; the standing reads it
    again with the rest, in the one statement it takes (the session's own object).
    """
    del intake
    standing = await _standing(turn_)
    if standing is None:
        return [Send(turn_.t(WRITE_START))]
    return [Send(*await _next_step(turn_, standing))]


# --- commands --------------------------------------------------------------------------


@turn
async def on_my_booking(turn_: Turn) -> list[Reply]:
    """/prenotazione: the active booking (or offer, or waitlist), else how to book."""
    standing = await _standing(turn_)
    if standing is None:
        return [_show(turn_, (turn_.t(WRITE_START), None))]
    view = _view(turn_)
    found = screens.holding_screen(view, standing)
    if found is None:
        opening = turn_.t("You have no appointment booked.")
        found = screens.nothing_booked_screen(view, opening, standing)
    return [_show(turn_, found)]


@turn
async def on_move_command(turn_: Turn) -> list[Reply]:
    """/sposta: choose a new time for the active booking."""
    standing = await _standing(turn_)
    if standing is None:
        return [Send(turn_.t(WRITE_START))]
    if not isinstance(standing, Booked):
        opening = turn_.t("You have no appointment to move.")
        return [Send(*screens.nothing_booked_screen(_view(turn_), opening, standing))]
    return [Send(*await _move_start(turn_, standing))]


async def _move_start(turn_: Turn, standing: Booked) -> Screen:
    active = standing.booking
    note = screens.moving_note(_view(turn_), active, standing.helpdesk)
    flow = Flow(_citizen_id_of(turn_), Moving.of(active), standing)
    return await _start_screen(turn_, flow, note)


@turn
async def on_cancel_command(turn_: Turn) -> list[Reply]:
    """/annulla: ask before cancelling the active booking."""
    standing = await _standing(turn_)
    if standing is None:
        return [Send(turn_.t(WRITE_START))]
    if isinstance(standing, Booked):
        return [Send(*screens.cancel_question(_view(turn_), standing.booking, standing.helpdesk))]
    if isinstance(standing, NotEligible):
        # Ruled out after booking: the appointment can still be cancelled.
        active = await booking_service.active_booking(
            session=turn_.session, citizen_id=_citizen_id_of(turn_)
        )
        if active is not None:
            return [Send(*await _cancel_question(turn_, active))]
    opening = turn_.t("You have no appointment to cancel.")
    return [Send(*screens.nothing_booked_screen(_view(turn_), opening, standing))]


async def _cancel_question(turn_: Turn, active: Booking) -> Screen:
    return screens.cancel_question(_view(turn_), active, await _helpdesk_of(turn_, active))


# --- buttons of the booking flow -------------------------------------------------------


@turn
async def on_helpdesks(turn_: Turn) -> list[Reply]:
    """`hds[:<booking>]`: start (again) from the choice of helpdesk."""
    callback = parse(turn_.callback_data)
    if callback is None or not _arg(callback, 0):
        # Where the citizen stands comes first: the booking, an offer, the waitlist.
        standing = await _standing(turn_)
        if standing is None:
            return [_show(turn_, (turn_.t(WRITE_START), None))]
        return [_show(turn_, await _next_step(turn_, standing))]
    flow = await _flow(turn_, callback, 0)
    if isinstance(flow, list):
        return flow
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
        note = screens.unknown_day_note(_view(turn_))
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
    day = _local_day(turn_, starts_at)
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
    # identity map forgets what nothing references) and the card shows it.
    helpdesk = await _bookable_helpdesk(turn_, helpdesk_id)
    try:
        if flow.moving is None:
            # No savepoint of ours: `book_slot` refuses before it writes anything, and
            # takes the place in its own savepoint (someone faster: `SlotTaken`).
            booked = await booking_service.book_slot(
                session=session,
                settings=turn_.settings,
                citizen_id=flow.citizen_id,
                helpdesk_id=helpdesk_id,
                starts_at=starts_at,
                actor=actor,
                now=turn_.now,
                standing=flow.standing,
                by_citizen=True,
            )
        else:
            async with _all_or_nothing(session):
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
    event = CardEvent.BOOKED if flow.moving is None else CardEvent.MOVED
    return _card(turn_, booked, await _helpdesk_of(turn_, booked, helpdesk), event)


async def _after_refused_booking(
    turn_: Turn, flow: Flow, helpdesk_id: int, starts_at: datetime, error: BookingError
) -> Screen:
    """Say why the slot could not be had, and offer fresh choices where they make sense.

    The one place that maps a refusal of `book_slot` / `move_booking` to what comes next
    (its text is `screens.ERROR_TEXTS[error.code]`).
    """
    note = _refused(turn_, error)
    if isinstance(error, NotAllowedToBook):
        # The services' standing says the citizen may not book (yet): nothing to choose.
        return note, None
    if isinstance(error, AlreadyBooked):
        return await _fresh_step(turn_, note)
    if isinstance(error, BookingNotFound):
        return screens.not_yours_text(_view(turn_)), None
    if isinstance(error, IllegalTransition) or (
        flow.moving is not None
        and await _owned_active(turn_, flow.citizen_id, flow.moving.id) is None
    ):
        # The booking being moved was cancelled or has started meanwhile: nothing to move.
        return join(note, turn_.t(SEE_WHERE_YOU_STAND)), None
    if isinstance(error, HelpdeskNotFound | HelpdeskInactive):
        return await _start_screen(turn_, flow, note)
    helpdesk = await _bookable_helpdesk(turn_, helpdesk_id)
    if helpdesk is None:
        return await _start_screen(turn_, flow, note)
    if isinstance(error, SlotTaken):
        return await _times_screen(turn_, flow, helpdesk, _local_day(turn_, starts_at), note)
    return await _days_screen(turn_, flow, helpdesk, 0, note)


# --- buttons on a booking: move, cancel, "I'll be there" ---------------------------------


async def _owned_active(turn_: Turn, citizen_id: int, booking_id: int | None) -> Booking | None:
    """The citizen's own booking with that id, if it is still active (cancelling and "I'll
    be there" don't depend on the standing: a citizen ruled out may still cancel)."""
    if booking_id is None:
        return None
    try:
        found = await booking_service.get_booking(
            session=turn_.session, booking_id=booking_id, citizen_id=citizen_id
        )
    except BookingNotFound:
        return None
    return found if found.state == BookingState.BOOKED else None


def _citizen_id(turn_: Turn) -> int | None:
    citizen = turn_.citizen
    if citizen is None or citizen.consent_version is None:
        return None
    return citizen.id


async def _own_booking_from_button(turn_: Turn) -> tuple[int, Booking] | list[Reply]:
    """The citizen and the active booking named by the pressed button, or the refusal."""
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [Send(turn_.t(WRITE_START))]
    booking_id = _id(parse(turn_.callback_data), 0)
    found = await _owned_active(turn_, citizen_id, booking_id)
    if found is None:
        return [Send(screens.not_yours_text(_view(turn_)))]
    return citizen_id, found


@turn
async def on_move(turn_: Turn) -> list[Reply]:
    """`mv:<booking>` (from /prenotazione or a reminder): choose a new time."""
    standing = await _standing(turn_)
    if standing is None:
        return [Send(turn_.t(WRITE_START))]
    if isinstance(standing, NotYet):
        return [Send(screens.not_yet_text(_view(turn_), standing))]
    if _active_with_id(standing, _id(parse(turn_.callback_data), 0)) is None:
        return [Send(screens.not_yours_text(_view(turn_)))]
    assert isinstance(standing, Booked)
    return [Send(*await _move_start(turn_, standing))]


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
        return [Edit(screens.not_yours_text(_view(turn_)))]
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
        return [Edit(screens.not_yours_text(_view(turn_)))]
    except BookingError as error:
        return [Edit(join(_refusal(turn_, error.code), t(SEE_WHERE_YOU_STAND)))]
    text, keyboard = await _nothing_booked(turn_, screens.cancelled_text(_view(turn_)))
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
    helpdesk = await _helpdesk_of(turn_, active)
    return [Send(screens.attending_text(_view(turn_), active, helpdesk))]


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
        return [Edit(*await _start_screen(turn_, flow, _refusal(turn_, error.code)))]
    except (AlreadyBooked, AlreadyWaiting) as error:
        return [Edit(*await _fresh_step(turn_, _refusal(turn_, error.code)))]
    except BookingError as error:
        return [Edit(_refused(turn_, error))]
    return [Edit(screens.waiting_text(_view(turn_)))]


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
        return [Edit(*await _fresh_step(turn_, _refusal(turn_, error.code)))]
    except BookingError as error:
        return [Edit(_refused(turn_, error))]
    # A staff offer of an earlier place moves the appointment there.
    event = CardEvent.MOVED if booked.moved_from_id is not None else CardEvent.BOOKED
    return _card(turn_, booked, await _helpdesk_of(turn_, booked), event)


@turn
async def on_decline_offer(turn_: Turn) -> list[Reply]:
    """`od:<entry>`: the place goes to the next person waiting."""
    citizen_id = _citizen_id(turn_)
    if citizen_id is None:
        return [Edit(turn_.t(WRITE_START))]
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
        return [Edit(*await _fresh_step(turn_, _refusal(turn_, error.code)))]
    except BookingError as error:
        return [Edit(_refused(turn_, error))]
    standing = await _standing(turn_)
    assert standing is not None
    view = _view(turn_)
    if isinstance(standing, Booked):
        # Staff offered an earlier place: declined, the appointment stays as it was.
        note = offer_screens.declined_keeping(view)
        return [Edit(*screens.booking_screen(view, standing.booking, standing.helpdesk, note))]
    return [Edit(*screens.nothing_booked_screen(view, screens.declined_text(view), standing))]


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
