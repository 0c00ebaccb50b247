"""Free slots: the helpdesks' hours minus closures and taken places, in one statement.

Places kept for urgent citizens (SPEC section 4, `Settings.urgent_places_per_day`): each
helpdesk keeps that many places of each day for urgent citizens until the day before;
from 00:00 of the day before (program time zone) anyone may take them. The kept places
are a number per day, not particular slots: a citizen who is not urgent may book a slot
of a day only while the day has more free places than it still keeps, and the day keeps
the setting's number minus the places urgent citizens already booked there (their active
bookings). Urgent citizens see and book every free place.

What is guaranteed, whatever the concurrency:

- a slot is never over-filled (the conditional upsert of `places.take_place`, and the
  CHECK constraint): the urgency rule only ever refuses more;
- the kept places are exact too. SQLite runs write transactions one after the other
  (BEGIN IMMEDIATE); on PostgreSQL a booking by a citizen who is not urgent, on a day
  that still keeps places, first takes a transaction-scoped advisory lock on that
  helpdesk and day (`_lock_day`), so two such bookings can't both see the day's last
  unkept place. Urgent bookings take no lock: they use up a kept place each (the places
  left to the others stay the same), and once none is kept the slot's own guarantee is
  all that matters. A place held by an open waitlist offer counts as taken, and as an
  urgent citizen's only once they accept it (so the rule errs on keeping one more).

Not judged here: a place freed while citizens wait goes to the first in line, urgent
first (`handoff.pass_on_place`), whatever the day still keeps; the waitlist only has
citizens when nothing was free for them, so this is the one way a kept place can reach a
citizen who is not urgent (when no urgent citizen waits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Date,
    Integer,
    Select,
    String,
    Time,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from shared.booking.errors import (
    HelpdeskInactive,
    HelpdeskNotFound,
    SlotInPast,
    SlotNotOffered,
    SlotTaken,
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
)
from shared.booking.schedule import DayClosure, DayHours, WeeklyHours, generate_slots
from shared.db import UTCDateTime, is_postgresql, utcnow
from shared.settings import Settings


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


def _schedule_query(
    helpdesk_id: int | None,
    first_day: date,
    last_day: date,
    since: datetime,
    until: datetime,
    urgent_since: datetime | None = None,
) -> CompoundSelect[Any]:
    """One UNION ALL statement: rules, extra openings, closures and occupied slots; with
    `urgent_since`, the urgent citizens' active bookings per slot from then on too."""

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
    parts: list[Select[Any]] = [rules, extra, closures, occupied]
    if urgent_since is not None and urgent_since < until:
        parts.append(
            select(
                literal_column("'urgent'", String),
                Booking.helpdesk_id,
                typed_null(Integer),
                typed_null(Date),
                typed_null(Date),
                typed_null(Time),
                typed_null(Time),
                typed_null(Integer),
                typed_null(Integer),
                Booking.starts_at,
                cast(func.count(), Integer),
            )
            .where(
                for_helpdesk(Booking.helpdesk_id),
                Booking.state == BookingState.BOOKED.value,
                Booking.citizen_urgent.is_(True),
                Booking.starts_at >= urgent_since,
                Booking.starts_at < until,
            )
            .group_by(Booking.helpdesk_id, Booking.starts_at)
        )
    return union_all(*parts)


@dataclass(frozen=True, slots=True)
class _Usage:
    """Every offered slot in a stretch of time with its places taken, and the places urgent
    citizens booked per helpdesk and day (read only for the days that keep places)."""

    slots: list[FreeSlot]
    urgent_booked: dict[tuple[int, date], int]


async def _slots_with_usage(
    session: AsyncSession,
    settings: Settings,
    helpdesk_id: int | None,
    since: datetime,
    until: datetime,
    urgent_since: datetime | None = None,
) -> _Usage:
    """Every offered slot starting in [since, until) with its places taken; one SQL statement."""
    tz = settings.tz
    first_day = since.astimezone(tz).date()
    last_day = until.astimezone(tz).date()
    query = _schedule_query(helpdesk_id, first_day, last_day, since, until, urgent_since)
    rows = (await session.execute(query)).all()
    weekly: list[WeeklyHours] = []
    extra: list[DayHours] = []
    closures: list[DayClosure] = []
    taken: dict[tuple[int, datetime], int] = {}
    urgent_booked: dict[tuple[int, date], int] = {}
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
        elif row.kind == "urgent":
            key = (row.helpdesk_id, row.starts_at.astimezone(tz).date())
            urgent_booked[key] = urgent_booked.get(key, 0) + row.taken
        else:
            taken[row.helpdesk_id, row.starts_at] = row.taken
    slots = generate_slots(
        weekly=weekly, extra=extra, closures=closures, first_day=first_day, last_day=last_day, tz=tz
    )
    found = [
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
    return _Usage(found, urgent_booked)


# --- places kept for urgent citizens -------------------------------------------------------


def _day_start(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time.min, tzinfo=settings.tz)


def first_kept_day(settings: Settings, now: datetime) -> date | None:
    """The first day that still keeps places for urgent citizens at `now` (every later day
    does too); None when the setting keeps none.

    A day keeps them until 00:00 of the day before: the day after tomorrow and later.
    """
    if settings.urgent_places_per_day <= 0:
        return None
    return now.astimezone(settings.tz).date() + timedelta(days=2)


def kept_places(*, slots: list[FreeSlot], urgent_booked: int, per_day: int) -> tuple[int, int]:
    """One helpdesk's day: (free places, of which kept for urgent citizens).

    The rule, pure: the day keeps `per_day` places minus those urgent citizens already
    booked, never more than it has free.
    """
    free = sum(max(s.places_left, 0) for s in slots)
    return free, min(free, max(per_day - urgent_booked, 0))


def _closed_to_others(usage: _Usage, settings: Settings, first_kept: date) -> set[tuple[int, date]]:
    """The helpdesk-days (from `first_kept` on) whose free places are all kept."""
    by_day: dict[tuple[int, date], list[FreeSlot]] = {}
    for slot in usage.slots:
        day = slot.starts_at.astimezone(settings.tz).date()
        if day >= first_kept:
            by_day.setdefault((slot.helpdesk_id, day), []).append(slot)
    closed = set()
    for key, slots in by_day.items():
        free, kept = kept_places(
            slots=slots,
            urgent_booked=usage.urgent_booked.get(key, 0),
            per_day=settings.urgent_places_per_day,
        )
        if free - kept <= 0:
            closed.add(key)
    return closed


def _lock_key(helpdesk_id: int, day: date) -> int:
    """A 64-bit advisory-lock key for one helpdesk's day ("UR" in the top bits)."""
    return (0x5552 << 48) | ((helpdesk_id & 0x0FFFFFFF) << 20) | (day.toordinal() & 0xFFFFF)


async def _lock_day(session: AsyncSession, helpdesk_id: int, day: date) -> None:
    """PostgreSQL: let one booking at a time judge a kept day's places (held until commit).

    SQLite needs none: its write transactions already run one after the other.
    """
    if is_postgresql(session):
        await session.execute(select(func.pg_advisory_xact_lock(_lock_key(helpdesk_id, day))))


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
    urgent: bool | None = None,
) -> list[FreeSlot]:
    """Slots a citizen can book now, earliest first, within the notice and the horizon.

    `urgent`: the citizen's urgency. False hides the days whose free places are all kept
    for urgent citizens (see the module docstring); True and None (staff looking at every
    free place) show them.
    """
    now = now or utcnow()
    earliest, latest = booking_window(settings, now)
    since = earliest if since is None else max(since, earliest)
    until = latest if until is None else min(until, latest)
    if since >= until:
        return []
    first_kept = first_kept_day(settings, now) if urgent is False else None
    last_day = until.astimezone(settings.tz).date()
    if first_kept is None or last_day < first_kept:
        usage = await _slots_with_usage(session, settings, helpdesk_id, since, until)
        return [s for s in usage.slots if s.places_left > 0]
    # A kept day is judged on all its places: read whole days, then keep the window.
    first_day = since.astimezone(settings.tz).date()
    read_since = _day_start(first_day, settings) if first_day >= first_kept else since
    read_until = _day_start(last_day + timedelta(days=1), settings)
    usage = await _slots_with_usage(
        session,
        settings,
        helpdesk_id,
        read_since,
        read_until,
        urgent_since=max(read_since, _day_start(first_kept, settings)),
    )
    closed = _closed_to_others(usage, settings, first_kept)
    return [
        s
        for s in usage.slots
        if since <= s.starts_at < until
        and s.places_left > 0
        and (s.helpdesk_id, s.starts_at.astimezone(settings.tz).date()) not in closed
    ]


async def offered_slot(
    session: AsyncSession,
    settings: Settings,
    helpdesk_id: int,
    starts_at: datetime,
    *,
    urgent: bool | None = None,
    now: datetime | None = None,
) -> FreeSlot:
    """The slot of the helpdesk's hours that starts exactly at `starts_at`.

    `urgent` False (a citizen who is not urgent): `SlotTaken` if the day's free places
    are all kept for urgent citizens at `now`; on PostgreSQL the day is locked first (see
    the module docstring). True or None: the slot whatever the day keeps.
    """
    day = starts_at.astimezone(settings.tz).date()
    day_start = _day_start(day, settings)
    day_end = _day_start(day + timedelta(days=1), settings)
    first_kept = first_kept_day(settings, now or utcnow()) if urgent is False else None
    kept_day = first_kept is not None and day >= first_kept
    if kept_day:
        await _lock_day(session, helpdesk_id, day)
    usage = await _slots_with_usage(
        session, settings, helpdesk_id, day_start, day_end, day_start if kept_day else None
    )
    for slot in usage.slots:
        if slot.starts_at == starts_at:
            if kept_day:
                assert first_kept is not None
                if (helpdesk_id, day) in _closed_to_others(usage, settings, first_kept):
                    raise SlotTaken("The day's free places are kept for urgent citizens.")
            return slot
    raise SlotNotOffered("The helpdesk has no slot at that time.")


async def bookable_slot(
    *,
    session: AsyncSession,
    settings: Settings,
    helpdesk_id: int,
    starts_at: datetime,
    now: datetime,
    urgent: bool | None,
) -> FreeSlot:
    """The slot a citizen may take now at `starts_at`: an active helpdesk, within the notice
    and the horizon, one of its hours (kept places aside for a citizen who is not urgent).

    Whether a place is left is for `places.take_place` to decide, race-free.
    """
    helpdesk = await session.get(Helpdesk, helpdesk_id)
    if helpdesk is None:
        raise HelpdeskNotFound(f"No helpdesk {helpdesk_id}.")
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
    return await offered_slot(session, settings, helpdesk_id, starts_at, urgent=urgent, now=now)
