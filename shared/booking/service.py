"""Helpdesks and their hours, free slots, and the life of a booking (SPEC section 4).

Every function takes the caller's session and never commits: the bot update or the
HTTP request that calls it owns the transaction. A raised `BookingError` means nothing
was written by that call.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Date,
    Integer,
    String,
    Time,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from shared.audit import service as audit
from shared.booking import handoff, messages, places
from shared.booking.errors import (
    AlreadyBooked,
    BookingError,
    BookingNotFound,
    CitizenNotFound,
    HelpdeskInactive,
    HelpdeskNotFound,
    IllegalTransition,
    InvalidSchedule,
    OverlappingRules,
    SlotInPast,
    SlotNotOffered,
    SlotTooFar,
    SlotTooSoon,
)
from shared.booking.models import (
    Booking,
    BookingState,
    Closure,
    ExtraOpening,
    Helpdesk,
    OpeningRule,
    Slot,
    WaitlistEntry,
    WaitlistState,
)
from shared.booking.schedule import DayClosure, DayHours, SlotTime, WeeklyHours, generate_slots
from shared.cases import service as cases
from shared.citizens.models import Citizen
from shared.db import UTCDateTime, utcnow
from shared.outbox import service as outbox
from shared.settings import Settings

MIN_SLOT_MINUTES, MAX_SLOT_MINUTES = 5, 480
MAX_PLACES = 100
# Staff may check a citizen in this long before the appointment.
CHECK_IN_EARLY = timedelta(hours=1)


class CancelledBy(StrEnum):
    CITIZEN = "citizen"
    STAFF = "staff"


@dataclass(frozen=True, slots=True)
class FreeSlot:
    helpdesk_id: int
    starts_at: datetime
    ends_at: datetime
    capacity: int
    taken: int

    @property
    def places_left(self) -> int:
        return self.capacity - self.taken


# --- helpdesks and hours -------------------------------------------------------------


async def create_helpdesk(
    *, session: AsyncSession, name: str, address: str, directions: str = "", actor: str
) -> Helpdesk:
    """Open a new helpdesk (sportello) where citizens can book interviews."""
    name, address = name.strip(), address.strip()
    if not name or not address:
        raise InvalidSchedule("A helpdesk needs a name and an address.")
    helpdesk = Helpdesk(name=name[:120], address=address[:200], directions=directions.strip())
    session.add(helpdesk)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="helpdesk.create",
        object_type="helpdesk",
        object_id=str(helpdesk.id),
        details={"name": helpdesk.name},
    )
    return helpdesk


async def get_helpdesk(*, session: AsyncSession, helpdesk_id: int) -> Helpdesk:
    helpdesk = await session.get(Helpdesk, helpdesk_id)
    if helpdesk is None:
        raise HelpdeskNotFound(f"No helpdesk {helpdesk_id}.")
    return helpdesk


async def list_helpdesks(*, session: AsyncSession, active_only: bool = True) -> list[Helpdesk]:
    query = select(Helpdesk).order_by(Helpdesk.name)
    if active_only:
        query = query.where(Helpdesk.active.is_(True))
    return list((await session.scalars(query)).all())


async def set_helpdesk_active(
    *, session: AsyncSession, helpdesk_id: int, active: bool, actor: str
) -> Helpdesk:
    """Open or close a helpdesk to new bookings (existing bookings stay)."""
    helpdesk = await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    helpdesk.active = active
    await audit.record(
        session=session,
        actor=actor,
        action="helpdesk.activate" if active else "helpdesk.deactivate",
        object_type="helpdesk",
        object_id=str(helpdesk_id),
    )
    return helpdesk


def _check_hours(opens_at: time, closes_at: time, slot_minutes: int, places: int) -> None:
    if opens_at >= closes_at:
        raise InvalidSchedule("The closing time must be after the opening time.")
    if not MIN_SLOT_MINUTES <= slot_minutes <= MAX_SLOT_MINUTES:
        raise InvalidSchedule(
            f"A slot lasts between {MIN_SLOT_MINUTES} and {MAX_SLOT_MINUTES} minutes."
        )
    span = datetime.combine(date.min, closes_at) - datetime.combine(date.min, opens_at)
    if span < timedelta(minutes=slot_minutes):
        raise InvalidSchedule("The opening hours are shorter than one slot.")
    if not 1 <= places <= MAX_PLACES:
        raise InvalidSchedule(f"A slot has between 1 and {MAX_PLACES} places.")


async def add_opening_rule(
    *,
    session: AsyncSession,
    helpdesk_id: int,
    weekday: int,
    opens_at: time,
    closes_at: time,
    slot_minutes: int,
    places: int,
    valid_from: date,
    valid_until: date | None = None,
    actor: str,
) -> OpeningRule:
    """Add weekly opening hours; refused if they overlap hours of the same helpdesk."""
    await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    if not 0 <= weekday <= 6:
        raise InvalidSchedule("The weekday is 0 (Monday) to 6 (Sunday).")
    _check_hours(opens_at, closes_at, slot_minutes, places)
    if valid_until is not None and valid_until < valid_from:
        raise InvalidSchedule("The end of validity must not be before its start.")
    clash = await session.scalar(
        select(OpeningRule.id).where(
            OpeningRule.helpdesk_id == helpdesk_id,
            OpeningRule.weekday == weekday,
            OpeningRule.opens_at < closes_at,
            opens_at < OpeningRule.closes_at,
            or_(OpeningRule.valid_until.is_(None), OpeningRule.valid_until >= valid_from),
            true() if valid_until is None else OpeningRule.valid_from <= valid_until,
        )
    )
    if clash is not None:
        raise OverlappingRules("These hours overlap other opening hours of the same helpdesk.")
    rule = OpeningRule(
        helpdesk_id=helpdesk_id,
        weekday=weekday,
        opens_at=opens_at,
        closes_at=closes_at,
        slot_minutes=slot_minutes,
        places=places,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    session.add(rule)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="opening_rule.create",
        object_type="helpdesk",
        object_id=str(helpdesk_id),
        details={
            "rule_id": rule.id,
            "weekday": weekday,
            "from": str(opens_at),
            "to": str(closes_at),
        },
    )
    return rule


async def add_extra_opening(
    *,
    session: AsyncSession,
    helpdesk_id: int,
    day: date,
    opens_at: time,
    closes_at: time,
    slot_minutes: int,
    places: int,
    note: str = "",
    actor: str,
) -> ExtraOpening:
    """Open a helpdesk on one date outside its weekly hours."""
    await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    _check_hours(opens_at, closes_at, slot_minutes, places)
    opening = ExtraOpening(
        helpdesk_id=helpdesk_id,
        day=day,
        opens_at=opens_at,
        closes_at=closes_at,
        slot_minutes=slot_minutes,
        places=places,
        note=note.strip()[:200],
    )
    session.add(opening)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="extra_opening.create",
        object_type="helpdesk",
        object_id=str(helpdesk_id),
        details={"day": day.isoformat(), "from": str(opens_at), "to": str(closes_at)},
    )
    return opening


async def add_closure(
    *,
    session: AsyncSession,
    settings: Settings,
    helpdesk_id: int,
    day: date,
    starts_at: time | None = None,
    ends_at: time | None = None,
    reason: str = "",
    actor: str,
) -> tuple[Closure, list[Booking]]:
    """Close a day (or some hours of it); returns the bookings staff must now move or cancel."""
    await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    if (starts_at is None) != (ends_at is None):
        raise InvalidSchedule("Give both the start and the end of the closure, or neither.")
    if starts_at is not None and ends_at is not None and starts_at >= ends_at:
        raise InvalidSchedule("The end of the closure must be after its start.")
    closure = Closure(
        helpdesk_id=helpdesk_id,
        day=day,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.strip()[:200],
    )
    session.add(closure)
    await session.flush()
    affected = await bookings_in_closure(session=session, settings=settings, closure=closure)
    await audit.record(
        session=session,
        actor=actor,
        action="closure.create",
        object_type="helpdesk",
        object_id=str(helpdesk_id),
        details={
            "day": day.isoformat(),
            "reason": closure.reason,
            "affected_bookings": [b.id for b in affected],
        },
    )
    return closure, affected


async def bookings_in_closure(
    *, session: AsyncSession, settings: Settings, closure: Closure
) -> list[Booking]:
    """Active bookings that fall inside a closure."""
    start = time.min if closure.starts_at is None else closure.starts_at
    day_start = datetime.combine(closure.day, start, tzinfo=settings.tz)
    if closure.ends_at is None:
        day_end = datetime.combine(closure.day + timedelta(days=1), time.min, tzinfo=settings.tz)
    else:
        day_end = datetime.combine(closure.day, closure.ends_at, tzinfo=settings.tz)
    result = await session.scalars(
        select(Booking)
        .where(
            Booking.helpdesk_id == closure.helpdesk_id,
            Booking.state == BookingState.BOOKED.value,
            Booking.starts_at < day_end,
            Booking.ends_at > day_start,
        )
        .order_by(Booking.starts_at)
    )
    return list(result.all())


# --- availability --------------------------------------------------------------------


def _schedule_query(
    helpdesk_id: int | None, first_day: date, last_day: date, since: datetime, until: datetime
) -> CompoundSelect[Any]:
    """One UNION ALL statement: rules, extra openings, closures and occupied slots."""

    def typed_null(type_: type[TypeEngine[Any]]) -> ColumnElement[Any]:
        return cast(null(), type_())

    def for_helpdesk(column: Any) -> ColumnElement[bool]:
        return true() if helpdesk_id is None else column == helpdesk_id

    rules = (
        select(
            literal_column("'rule'", String).label("kind"),
            OpeningRule.helpdesk_id.label("helpdesk_id"),
            OpeningRule.weekday.label("weekday"),
            OpeningRule.valid_from.label("day_from"),
            OpeningRule.valid_until.label("day_until"),
            OpeningRule.opens_at.label("time_from"),
            OpeningRule.closes_at.label("time_to"),
            OpeningRule.slot_minutes.label("minutes"),
            OpeningRule.places.label("places"),
            typed_null(UTCDateTime).label("starts_at"),
            typed_null(Integer).label("taken"),
        )
        .join(Helpdesk, Helpdesk.id == OpeningRule.helpdesk_id)
        .where(
            Helpdesk.active.is_(True),
            for_helpdesk(OpeningRule.helpdesk_id),
            OpeningRule.valid_from <= last_day,
            or_(OpeningRule.valid_until.is_(None), OpeningRule.valid_until >= first_day),
        )
    )
    extra = (
        select(
            literal_column("'extra'", String),
            ExtraOpening.helpdesk_id,
            typed_null(Integer),
            ExtraOpening.day,
            ExtraOpening.day,
            ExtraOpening.opens_at,
            ExtraOpening.closes_at,
            ExtraOpening.slot_minutes,
            ExtraOpening.places,
            typed_null(UTCDateTime),
            typed_null(Integer),
        )
        .join(Helpdesk, Helpdesk.id == ExtraOpening.helpdesk_id)
        .where(
            Helpdesk.active.is_(True),
            for_helpdesk(ExtraOpening.helpdesk_id),
            ExtraOpening.day.between(first_day, last_day),
        )
    )
    closures = select(
        literal_column("'closure'", String),
        Closure.helpdesk_id,
        typed_null(Integer),
        Closure.day,
        Closure.day,
        Closure.starts_at,
        Closure.ends_at,
        typed_null(Integer),
        typed_null(Integer),
        typed_null(UTCDateTime),
        typed_null(Integer),
    ).where(for_helpdesk(Closure.helpdesk_id), Closure.day.between(first_day, last_day))
    occupied = select(
        literal_column("'slot'", String),
        Slot.helpdesk_id,
        typed_null(Integer),
        typed_null(Date),
        typed_null(Date),
        typed_null(Time),
        typed_null(Time),
        typed_null(Integer),
        Slot.capacity,
        Slot.starts_at,
        Slot.taken,
    ).where(
        for_helpdesk(Slot.helpdesk_id),
        Slot.starts_at >= since,
        Slot.starts_at < until,
        Slot.taken > 0,
    )
    return union_all(rules, extra, closures, occupied)


async def _slots_with_usage(
    session: AsyncSession,
    settings: Settings,
    helpdesk_id: int | None,
    since: datetime,
    until: datetime,
) -> list[FreeSlot]:
    """Every offered slot starting in [since, until) with its places taken; one SQL statement."""
    tz = settings.tz
    first_day = since.astimezone(tz).date()
    last_day = until.astimezone(tz).date()
    rows = (
        await session.execute(_schedule_query(helpdesk_id, first_day, last_day, since, until))
    ).all()
    weekly: list[WeeklyHours] = []
    extra: list[DayHours] = []
    closures: list[DayClosure] = []
    taken: dict[tuple[int, datetime], int] = {}
    for row in rows:
        if row.kind == "rule":
            weekly.append(
                WeeklyHours(
                    row.helpdesk_id, row.weekday, row.time_from, row.time_to,
                    row.minutes, row.places, row.day_from, row.day_until,
                )
            )  # fmt: skip
        elif row.kind == "extra":
            extra.append(
                DayHours(
                    row.helpdesk_id, row.day_from, row.time_from, row.time_to,
                    row.minutes, row.places,
                )
            )  # fmt: skip
        elif row.kind == "closure":
            closures.append(DayClosure(row.helpdesk_id, row.day_from, row.time_from, row.time_to))
        else:
            taken[row.helpdesk_id, row.starts_at] = row.taken
    slots = generate_slots(
        weekly=weekly, extra=extra, closures=closures, first_day=first_day, last_day=last_day, tz=tz
    )
    return [
        FreeSlot(
            s.helpdesk_id,
            s.starts_at,
            s.ends_at,
            s.capacity,
            taken.get((s.helpdesk_id, s.starts_at), 0),
        )
        for s in slots
        if since <= s.starts_at < until
    ]


def booking_window(settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """The earliest and (exclusive) latest start a citizen may book now."""
    return (
        now + timedelta(minutes=settings.booking_min_notice_minutes),
        now + timedelta(days=settings.booking_horizon_days),
    )


async def list_free_slots(
    *,
    session: AsyncSession,
    settings: Settings,
    now: datetime | None = None,
    helpdesk_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[FreeSlot]:
    """Slots a citizen can book now, earliest first, within the notice and the horizon."""
    earliest, latest = booking_window(settings, now or utcnow())
    since = earliest if since is None else max(since, earliest)
    until = latest if until is None else min(until, latest)
    if since >= until:
        return []
    slots = await _slots_with_usage(session, settings, helpdesk_id, since, until)
    return [s for s in slots if s.places_left > 0]


async def _offered_slot(
    session: AsyncSession, settings: Settings, helpdesk_id: int, starts_at: datetime
) -> FreeSlot:
    """The slot of the helpdesk's hours that starts exactly at `starts_at`."""
    day = starts_at.astimezone(settings.tz).date()
    day_start = datetime.combine(day, time.min, tzinfo=settings.tz)
    day_end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=settings.tz)
    for slot in await _slots_with_usage(session, settings, helpdesk_id, day_start, day_end):
        if slot.starts_at == starts_at:
            return slot
    raise SlotNotOffered("The helpdesk has no slot at that time.")


# --- bookings ------------------------------------------------------------------------


async def _bookable_slot(
    session: AsyncSession, settings: Settings, helpdesk_id: int, starts_at: datetime, now: datetime
) -> FreeSlot:
    helpdesk = await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    if not helpdesk.active:
        raise HelpdeskInactive("This helpdesk is not taking bookings.")
    if starts_at.tzinfo is None:
        raise SlotNotOffered("A slot time must carry its time zone.")
    earliest, latest = booking_window(settings, now)
    if starts_at <= now:
        raise SlotInPast("That time has already passed.")
    if starts_at < earliest:
        raise SlotTooSoon("That time is too close to now.")
    if starts_at >= latest:
        raise SlotTooFar("That time is too far ahead.")
    return await _offered_slot(session, settings, helpdesk_id, starts_at)


async def _citizen(session: AsyncSession, citizen_id: int) -> Citizen:
    citizen = await session.get(Citizen, citizen_id)
    if citizen is None:
        raise CitizenNotFound(f"No citizen {citizen_id}.")
    return citizen


async def active_booking(*, session: AsyncSession, citizen_id: int) -> Booking | None:
    """The citizen's current booking, if any."""
    return await session.scalar(
        select(Booking).where(
            Booking.citizen_id == citizen_id, Booking.state == BookingState.BOOKED.value
        )
    )


async def book_slot(
    *,
    session: AsyncSession,
    settings: Settings,
    citizen_id: int,
    helpdesk_id: int,
    starts_at: datetime,
    actor: str,
    now: datetime | None = None,
    moved_from_id: int | None = None,
    confirm_by_message: bool = False,
) -> Booking:
    """Book one place of a slot for a citizen; raises `SlotTaken` if someone was faster.

    `confirm_by_message` queues a confirmation for the citizen's chat: for bookings made
    by staff on their behalf (the bot confirms its own bookings in the conversation).
    """
    now = now or utcnow()
    citizen = await _citizen(session, citizen_id)
    offered = await _bookable_slot(session, settings, helpdesk_id, starts_at, now)
    if moved_from_id is None and await active_booking(session=session, citizen_id=citizen_id):
        raise AlreadyBooked("You already have an active booking.")
    booking = await places.book_place(
        session=session,
        citizen_id=citizen_id,
        slot=SlotTime(offered.starts_at, offered.helpdesk_id, offered.ends_at, offered.capacity),
        actor=actor,
        moved_from_id=moved_from_id,
    )
    # Booked by other means: waiting (or a held place) is no longer needed.
    await handoff.withdraw(session=session, settings=settings, citizen_id=citizen_id, now=now)
    await messages.queue_reminders(
        session=session, settings=settings, citizen=citizen, booking=booking, now=now
    )
    if confirm_by_message:
        await messages.notify_booking(
            session=session,
            citizen=citizen,
            booking=booking,
            kind=messages.MessageKind.BOOKING_CONFIRMED,
            now=now,
        )
    await audit.record(
        session=session,
        actor=actor,
        action="booking.create",
        object_type="booking",
        object_id=str(booking.id),
        details={"citizen_id": citizen_id, "code": booking.code, "moved_from": moved_from_id},
    )
    await cases.on_booking_changed(session=session, booking=booking, now=now)
    return booking


async def get_booking(
    *, session: AsyncSession, booking_id: int, citizen_id: int | None = None
) -> Booking:
    """A booking by id; with `citizen_id`, only if it is that citizen's (else not found)."""
    booking = await session.get(Booking, booking_id)
    if booking is None or (citizen_id is not None and booking.citizen_id != citizen_id):
        raise BookingNotFound(f"No booking {booking_id}.")
    return booking


async def find_booking_by_code(*, session: AsyncSession, code: str) -> Booking | None:
    normalised = "".join(code.split()).upper()
    return await session.scalar(select(Booking).where(Booking.code == normalised))


async def _close(
    session: AsyncSession,
    booking: Booking,
    state: BookingState,
    actor: str,
    now: datetime,
    reason: str | None,
) -> None:
    """Move an active booking to a final state, guarded so two callers can't both do it."""
    result = await session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.state == BookingState.BOOKED.value)
        .values(state=state.value, closed_at=now, closed_by=actor, cancel_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise IllegalTransition(f"The booking is {booking.state}, not booked.")
    await session.refresh(booking)


async def cancel_booking(
    *,
    session: AsyncSession,
    settings: Settings,
    booking_id: int,
    by: CancelledBy,
    actor: str,
    reason: str | None = None,
    citizen_id: int | None = None,
    now: datetime | None = None,
    notify: bool = True,
) -> Booking:
    """Cancel a booking and free its place (offered first to the waitlist)."""
    now = now or utcnow()
    booking = await get_booking(session=session, booking_id=booking_id, citizen_id=citizen_id)
    if by is CancelledBy.CITIZEN and booking.starts_at <= now:
        raise IllegalTransition("The appointment has already started.")
    state = (
        BookingState.CANCELLED_BY_CITIZEN
        if by is CancelledBy.CITIZEN
        else BookingState.CANCELLED_BY_STAFF
    )
    await _close(session, booking, state, actor, now, (reason or "").strip()[:200] or None)
    await handoff.pass_on_place(
        session=session, settings=settings, slot_id=booking.slot_id, now=now
    )
    await outbox.cancel_pending(session=session, subject=messages.subject(booking))
    if by is CancelledBy.STAFF and notify:
        await messages.notify_booking(
            session=session,
            citizen=await _citizen(session, booking.citizen_id),
            booking=booking,
            kind=messages.MessageKind.BOOKING_CANCELLED,
            now=now,
        )
    await audit.record(
        session=session,
        actor=actor,
        action="booking.cancel",
        object_type="booking",
        object_id=str(booking.id),
        details={"by": by.value, "reason": booking.cancel_reason},
    )
    await cases.on_booking_changed(session=session, booking=booking, now=now)
    return booking


async def move_booking(
    *,
    session: AsyncSession,
    settings: Settings,
    booking_id: int,
    helpdesk_id: int,
    starts_at: datetime,
    by: CancelledBy,
    actor: str,
    citizen_id: int | None = None,
    now: datetime | None = None,
) -> Booking:
    """Move a booking to another slot: the old one is cancelled and linked to the new one.

    If the new slot can't be had, the old booking stays as it was.
    """
    now = now or utcnow()
    try:
        async with session.begin_nested():
            old = await cancel_booking(
                session=session,
                settings=settings,
                booking_id=booking_id,
                by=by,
                actor=actor,
                reason="moved",
                citizen_id=citizen_id,
                now=now,
                notify=False,
            )
            new = await book_slot(
                session=session,
                settings=settings,
                citizen_id=old.citizen_id,
                helpdesk_id=helpdesk_id,
                starts_at=starts_at,
                actor=actor,
                now=now,
                moved_from_id=old.id,
            )
    except BookingError:
        # The savepoint rolled back in the database; make the session forget what it saw.
        stale = await session.get(Booking, booking_id)
        if stale is not None:
            await session.refresh(stale)
        raise
    if by is CancelledBy.STAFF:
        await messages.notify_booking(
            session=session,
            citizen=await _citizen(session, new.citizen_id),
            booking=new,
            kind=messages.MessageKind.BOOKING_MOVED,
            now=now,
        )
    return new


async def mark_attended(
    *, session: AsyncSession, booking_id: int, actor: str, now: datetime | None = None
) -> Booking:
    """Check a citizen in at the helpdesk."""
    now = now or utcnow()
    booking = await get_booking(session=session, booking_id=booking_id)
    if now < booking.starts_at - CHECK_IN_EARLY:
        raise IllegalTransition("Check-in opens one hour before the appointment.")
    await _close(session, booking, BookingState.ATTENDED, actor, now, None)
    await outbox.cancel_pending(session=session, subject=messages.subject(booking))
    await audit.record(
        session=session, actor=actor, action="booking.attended", object_type="booking",
        object_id=str(booking.id),
    )  # fmt: skip
    await cases.on_booking_changed(session=session, booking=booking, now=now)
    return booking


async def mark_no_show(
    *, session: AsyncSession, booking_id: int, actor: str, now: datetime | None = None
) -> Booking:
    """Record that the citizen did not come; the first time, they are offered a new booking."""
    now = now or utcnow()
    booking = await get_booking(session=session, booking_id=booking_id)
    if now < booking.starts_at:
        raise IllegalTransition("A no-show can only be recorded after the appointment starts.")
    await _close(session, booking, BookingState.NO_SHOW, actor, now, None)
    earlier = await session.scalar(
        select(Booking.id).where(
            Booking.citizen_id == booking.citizen_id,
            Booking.state == BookingState.NO_SHOW.value,
            Booking.id != booking.id,
        )
    )
    if earlier is None:
        await messages.notify_booking(
            session=session,
            citizen=await _citizen(session, booking.citizen_id),
            booking=booking,
            kind=messages.MessageKind.REBOOK_AFTER_NO_SHOW,
            now=now,
        )
    await audit.record(
        session=session, actor=actor, action="booking.no_show", object_type="booking",
        object_id=str(booking.id),
    )  # fmt: skip
    await cases.on_booking_changed(session=session, booking=booking, now=now)
    return booking


async def bookings_between(
    *, session: AsyncSession, since: datetime, until: datetime, helpdesk_id: int | None = None
) -> list[Booking]:
    """Bookings (any state) starting in [since, until), for agendas."""
    query = select(Booking).where(and_(Booking.starts_at >= since, Booking.starts_at < until))
    if helpdesk_id is not None:
        query = query.where(Booking.helpdesk_id == helpdesk_id)
    return list((await session.scalars(query.order_by(Booking.starts_at, Booking.id))).all())


# --- read-only helpers for the Telegram bot ------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldPlace:
    """A place held for a waiting citizen by an open waitlist offer."""

    entry_id: int
    helpdesk: Helpdesk
    starts_at: datetime
    ends_at: datetime
    expires_at: datetime


async def held_place(
    *, session: AsyncSession, citizen_id: int, now: datetime | None = None
) -> HeldPlace | None:
    """The place offered to the citizen from the waitlist, if the offer is open and not lapsed.

    Read-only: accepting or declining is `waitlist.accept_offer` / `decline_offer`.
    """
    now = now or utcnow()
    row = (
        await session.execute(
            select(WaitlistEntry, Slot, Helpdesk)
            .join(Slot, Slot.id == WaitlistEntry.offered_slot_id)
            .join(Helpdesk, Helpdesk.id == Slot.helpdesk_id)
            .where(
                WaitlistEntry.citizen_id == citizen_id,
                WaitlistEntry.state == WaitlistState.OFFERED.value,
                WaitlistEntry.offer_expires_at > now,
            )
        )
    ).first()
    if row is None:
        return None
    entry, slot, helpdesk = row
    assert entry.offer_expires_at is not None  # guaranteed by the comparison above
    return HeldPlace(entry.id, helpdesk, slot.starts_at, slot.ends_at, entry.offer_expires_at)


# --- read-only queries and small services for the staff dashboard ---------------------


class ScheduleItemNotFound(BookingError):
    """No such opening rule, closure or extra opening."""

    code = "schedule_item_not_found"


@dataclass(frozen=True, slots=True)
class AgendaEntry:
    """A booking with the citizen who holds it, as staff see it in agendas."""

    booking: Booking
    citizen: Citizen


def _entries(rows: Any) -> list[AgendaEntry]:
    return [AgendaEntry(booking, citizen) for booking, citizen in rows]


@dataclass(frozen=True, slots=True)
class AgendaLine:
    """One row of an agenda: the booking and what staff need to know of its citizen."""

    id: int
    code: str
    helpdesk_id: int
    starts_at: datetime
    ends_at: datetime
    state: str
    cancel_reason: str | None
    citizen_name: str | None
    urgent: bool
    channel: str


_AGENDA_COLUMNS = (
    Booking.id, Booking.code, Booking.helpdesk_id, Booking.starts_at, Booking.ends_at,
    Booking.state, Booking.cancel_reason, Citizen.name, Citizen.urgent, Citizen.channel,
)  # fmt: skip


def _agenda_lines(*conditions: Any) -> Any:
    return (
        select(*_AGENDA_COLUMNS)
        .join(Citizen, Citizen.id == Booking.citizen_id)
        .where(*conditions)
        .order_by(Booking.starts_at, Booking.id)
    )


@functools.cache
def _agenda_statement(one_helpdesk: bool) -> Any:
    """Built once per shape. Without a helpdesk, the helpdesks' ids are still named: the
    index on (helpdesk_id, starts_at) is then walked per helpdesk, not read whole."""
    return _agenda_lines(
        Booking.starts_at >= bindparam("since", type_=UTCDateTime),
        Booking.starts_at < bindparam("until", type_=UTCDateTime),
        Booking.helpdesk_id == bindparam("helpdesk_id")
        if one_helpdesk
        else Booking.helpdesk_id.in_(select(Helpdesk.id)),
    )


async def agenda(
    *, session: AsyncSession, since: datetime, until: datetime, helpdesk_id: int | None = None
) -> list[AgendaLine]:
    """Bookings (any state) starting in [since, until) with their citizens, in one statement."""
    parameters: dict[str, Any] = {"since": since, "until": until}
    if helpdesk_id is not None:
        parameters["helpdesk_id"] = helpdesk_id
    rows = await session.execute(_agenda_statement(helpdesk_id is not None), parameters)
    return [AgendaLine(*row) for row in rows]


async def agenda_line(*, session: AsyncSession, booking_id: int) -> AgendaLine:
    """One agenda row, in one statement."""
    row = (await session.execute(_agenda_lines(Booking.id == booking_id))).first()
    if row is None:
        raise BookingNotFound(f"No booking {booking_id}.")
    return AgendaLine(*row)


async def agenda_entry(*, session: AsyncSession, booking_id: int) -> AgendaEntry:
    """One booking with its citizen, in one statement."""
    row = (
        await session.execute(
            select(Booking, Citizen)
            .join(Citizen, Citizen.id == Booking.citizen_id)
            .where(Booking.id == booking_id)
        )
    ).first()
    if row is None:
        raise BookingNotFound(f"No booking {booking_id}.")
    return AgendaEntry(row[0], row[1])


async def with_citizens(*, session: AsyncSession, bookings: list[Booking]) -> list[AgendaEntry]:
    """The given bookings with their citizens (one statement), in the same order."""
    if not bookings:
        return []
    ids = {b.citizen_id for b in bookings}
    citizens = {c.id: c for c in await session.scalars(select(Citizen).where(Citizen.id.in_(ids)))}
    return [AgendaEntry(b, citizens[b.citizen_id]) for b in bookings]


async def ensure_helpdesk_name_free(
    *, session: AsyncSession, name: str, helpdesk_id: int | None = None
) -> None:
    """Refuse a helpdesk name already used by another one (letter case aside)."""
    query = select(Helpdesk.id).where(func.lower(Helpdesk.name) == name.strip()[:120].lower())
    if helpdesk_id is not None:
        query = query.where(Helpdesk.id != helpdesk_id)
    if await session.scalar(query) is not None:
        raise InvalidSchedule("Another helpdesk already has this name.")


async def update_helpdesk(
    *,
    session: AsyncSession,
    helpdesk_id: int,
    name: str,
    address: str,
    directions: str = "",
    actor: str,
) -> Helpdesk:
    """Change a helpdesk's name, address or directions (what citizens are told)."""
    helpdesk = await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    name, address = name.strip(), address.strip()
    if not name or not address:
        raise InvalidSchedule("A helpdesk needs a name and an address.")
    await ensure_helpdesk_name_free(session=session, name=name, helpdesk_id=helpdesk_id)
    before = {"name": helpdesk.name, "address": helpdesk.address}
    helpdesk.name, helpdesk.address = name[:120], address[:200]
    helpdesk.directions = directions.strip()
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="helpdesk.update",
        object_type="helpdesk",
        object_id=str(helpdesk_id),
        details={"before": before, "name": helpdesk.name, "address": helpdesk.address},
    )
    return helpdesk


async def list_opening_rules(*, session: AsyncSession, helpdesk_id: int) -> list[OpeningRule]:
    """A helpdesk's weekly hours, past and future, by weekday and time."""
    result = await session.scalars(
        select(OpeningRule)
        .where(OpeningRule.helpdesk_id == helpdesk_id)
        .order_by(OpeningRule.weekday, OpeningRule.opens_at, OpeningRule.valid_from, OpeningRule.id)
    )
    return list(result.all())


async def get_opening_rule(*, session: AsyncSession, rule_id: int) -> OpeningRule:
    rule = await session.get(OpeningRule, rule_id)
    if rule is None:
        raise ScheduleItemNotFound(f"No opening rule {rule_id}.")
    return rule


async def end_opening_rule(
    *, session: AsyncSession, rule_id: int, last_day: date, actor: str
) -> OpeningRule:
    """Stop weekly hours after `last_day`; bookings left outside are in `stranded_bookings`."""
    rule = await get_opening_rule(session=session, rule_id=rule_id)
    if last_day < rule.valid_from:
        raise InvalidSchedule(
            "The last day can't be before these hours start: delete them instead."
        )
    if rule.valid_until is not None and last_day > rule.valid_until:
        raise InvalidSchedule("These hours already end before that day.")
    rule.valid_until = last_day
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="opening_rule.end",
        object_type="helpdesk",
        object_id=str(rule.helpdesk_id),
        details={"rule_id": rule.id, "last_day": last_day.isoformat()},
    )
    return rule


async def delete_opening_rule(*, session: AsyncSession, rule_id: int, actor: str) -> int:
    """Remove weekly hours altogether; returns the helpdesk's id."""
    rule = await get_opening_rule(session=session, rule_id=rule_id)
    helpdesk_id = rule.helpdesk_id
    details = {
        "rule_id": rule.id,
        "weekday": rule.weekday,
        "from": str(rule.opens_at),
        "to": str(rule.closes_at),
        "valid_from": rule.valid_from.isoformat(),
    }
    await session.delete(rule)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="opening_rule.delete",
        object_type="helpdesk",
        object_id=str(helpdesk_id),
        details=details,
    )
    return helpdesk_id


async def list_closures(
    *, session: AsyncSession, helpdesk_id: int, since: date | None = None
) -> list[Closure]:
    """A helpdesk's closures, by day (from `since` on, if given)."""
    query = select(Closure).where(Closure.helpdesk_id == helpdesk_id)
    if since is not None:
        query = query.where(Closure.day >= since)
    result = await session.scalars(query.order_by(Closure.day, Closure.starts_at, Closure.id))
    return list(result.all())


async def get_closure(*, session: AsyncSession, closure_id: int) -> Closure:
    closure = await session.get(Closure, closure_id)
    if closure is None:
        raise ScheduleItemNotFound(f"No closure {closure_id}.")
    return closure


async def closure_bookings(
    *, session: AsyncSession, settings: Settings, closure_id: int
) -> tuple[Closure, list[AgendaEntry]]:
    """A closure and the active bookings still inside it, with their citizens."""
    closure = await get_closure(session=session, closure_id=closure_id)
    inside = await bookings_in_closure(session=session, settings=settings, closure=closure)
    return closure, await with_citizens(session=session, bookings=inside)


async def delete_closure(*, session: AsyncSession, closure_id: int, actor: str) -> int:
    """Reopen what a closure closed; returns the helpdesk's id."""
    closure = await get_closure(session=session, closure_id=closure_id)
    helpdesk_id = closure.helpdesk_id
    details = {"closure_id": closure.id, "day": closure.day.isoformat(), "reason": closure.reason}
    await session.delete(closure)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="closure.delete",
        object_type="helpdesk",
        object_id=str(helpdesk_id),
        details=details,
    )
    return helpdesk_id


async def list_extra_openings(
    *, session: AsyncSession, helpdesk_id: int, since: date | None = None
) -> list[ExtraOpening]:
    """A helpdesk's one-off openings, by day (from `since` on, if given)."""
    query = select(ExtraOpening).where(ExtraOpening.helpdesk_id == helpdesk_id)
    if since is not None:
        query = query.where(ExtraOpening.day >= since)
    result = await session.scalars(
        query.order_by(ExtraOpening.day, ExtraOpening.opens_at, ExtraOpening.id)
    )
    return list(result.all())


async def delete_extra_opening(*, session: AsyncSession, opening_id: int, actor: str) -> int:
    """Withdraw a one-off opening; returns the helpdesk's id."""
    opening = await session.get(ExtraOpening, opening_id)
    if opening is None:
        raise ScheduleItemNotFound(f"No extra opening {opening_id}.")
    helpdesk_id = opening.helpdesk_id
    details = {"opening_id": opening.id, "day": opening.day.isoformat()}
    await session.delete(opening)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="extra_opening.delete",
        object_type="helpdesk",
        object_id=str(helpdesk_id),
        details=details,
    )
    return helpdesk_id


async def stranded_bookings(
    *, session: AsyncSession, settings: Settings, helpdesk_id: int, now: datetime | None = None
) -> list[AgendaEntry]:
    """Upcoming active bookings no slot of the helpdesk's hours covers any more.

    Hours ended or removed, an extra opening withdrawn, a day closed: staff move or
    cancel each of these bookings, so none is silently dropped.
    """
    now = now or utcnow()
    rows = await session.execute(
        select(Booking, Citizen)
        .join(Citizen, Citizen.id == Booking.citizen_id)
        .where(
            Booking.helpdesk_id == helpdesk_id,
            Booking.state == BookingState.BOOKED.value,
            Booking.starts_at >= now,
        )
        .order_by(Booking.starts_at, Booking.id)
    )
    entries = _entries(rows.all())
    if not entries:
        return []
    tz = settings.tz
    first_day = entries[0].booking.starts_at.astimezone(tz).date()
    last_day = entries[-1].booking.starts_at.astimezone(tz).date()
    rules = await session.scalars(
        select(OpeningRule).where(
            OpeningRule.helpdesk_id == helpdesk_id,
            OpeningRule.valid_from <= last_day,
            or_(OpeningRule.valid_until.is_(None), OpeningRule.valid_until >= first_day),
        )
    )
    weekly = [
        WeeklyHours(
            r.helpdesk_id, r.weekday, r.opens_at, r.closes_at,
            r.slot_minutes, r.places, r.valid_from, r.valid_until,
        )
        for r in rules
    ]  # fmt: skip
    extra = [
        DayHours(o.helpdesk_id, o.day, o.opens_at, o.closes_at, o.slot_minutes, o.places)
        for o in await session.scalars(
            select(ExtraOpening).where(
                ExtraOpening.helpdesk_id == helpdesk_id,
                ExtraOpening.day.between(first_day, last_day),
            )
        )
    ]
    closures = [
        DayClosure(c.helpdesk_id, c.day, c.starts_at, c.ends_at)
        for c in await session.scalars(
            select(Closure).where(
                Closure.helpdesk_id == helpdesk_id, Closure.day.between(first_day, last_day)
            )
        )
    ]
    offered = {
        s.starts_at
        for s in generate_slots(
            weekly=weekly,
            extra=extra,
            closures=closures,
            first_day=first_day,
            last_day=last_day,
            tz=tz,
        )
    }
    return [e for e in entries if e.booking.starts_at not in offered]
