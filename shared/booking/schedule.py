"""Slots from weekly rules, closures and extra openings: pure, wall-clock and DST-safe.

Times in the rules are local wall-clock times in the program's time zone; the slots
come out as aware UTC datetimes. A 09:00 rule gives 09:00 local on both days when the
clocks change; a local start time that does not exist (spring forward) gives no slot,
and one that exists twice (fall back) gives one slot, at its first occurrence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    helpdesk_id: int
    weekday: int
    opens_at: time
    closes_at: time
    slot_minutes: int
    places: int
    valid_from: date
    valid_until: date | None


@dataclass(frozen=True, slots=True)
class DayHours:
    """Extra opening on one date."""

    helpdesk_id: int
    day: date
    opens_at: time
    closes_at: time
    slot_minutes: int
    places: int


@dataclass(frozen=True, slots=True)
class DayClosure:
    helpdesk_id: int
    day: date
    starts_at: time | None
    ends_at: time | None

    def covers(self, start: time, end: time) -> bool:
        if self.starts_at is None or self.ends_at is None:
            return True
        return start < self.ends_at and self.starts_at < end


@dataclass(frozen=True, slots=True, order=True)
class SlotTime:
    starts_at: datetime
    helpdesk_id: int
    ends_at: datetime
    capacity: int


def local_datetime(day: date, at: time, tz: ZoneInfo) -> datetime | None:
    """`day` at wall-clock `at` as aware UTC, or None when that local time does not exist."""
    local = datetime.combine(day, at, tzinfo=tz)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return utc


def _fixed_offset(day: date, tz: ZoneInfo) -> timedelta | None:
    """The day's UTC offset if it is the same all day long, None on a clock-change day."""
    start = datetime.combine(day, time.min, tzinfo=tz).utcoffset()
    end = datetime.combine(day, time.max, tzinfo=tz).utcoffset()
    return start if start == end else None


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _cut(
    helpdesk_id: int, day: date, opens: time, closes: time, minutes: int, places: int
) -> Iterator[tuple[time, time, int]]:
    """Wall-clock (start, end, places) of every whole slot between opens and closes."""
    step = timedelta(minutes=minutes)
    start = datetime.combine(day, opens)
    limit = datetime.combine(day, closes)
    while start + step <= limit:
        yield start.time(), (start + step).time(), places
        start += step


def generate_slots(
    *,
    weekly: Iterable[WeeklyHours],
    extra: Iterable[DayHours],
    closures: Iterable[DayClosure],
    first_day: date,
    last_day: date,
    tz: ZoneInfo,
) -> list[SlotTime]:
    """Every slot from `first_day` to `last_day` inclusive, sorted by start.

    Where a weekly rule and an extra opening give a slot at the same start, the slot
    offers the larger number of places.
    """
    by_weekday: dict[int, list[WeeklyHours]] = defaultdict(list)
    for rule in weekly:
        by_weekday[rule.weekday].append(rule)
    extra_by_day: dict[date, list[DayHours]] = defaultdict(list)
    for opening in extra:
        extra_by_day[opening.day].append(opening)
    closed: dict[tuple[int, date], list[DayClosure]] = defaultdict(list)
    for closure in closures:
        closed[closure.helpdesk_id, closure.day].append(closure)

    slots: dict[tuple[int, datetime], SlotTime] = {}
    for day in _days(first_day, last_day):
        # Converting each slot through the time zone is the slow part of a year's sweep:
        # on ordinary days one offset serves them all.
        offset = _fixed_offset(day, tz)
        pieces = [
            (r.helpdesk_id, r.opens_at, r.closes_at, r.slot_minutes, r.places)
            for r in by_weekday.get(day.weekday(), ())
            if r.valid_from <= day and (r.valid_until is None or day <= r.valid_until)
        ] + [
            (o.helpdesk_id, o.opens_at, o.closes_at, o.slot_minutes, o.places)
            for o in extra_by_day.get(day, ())
        ]
        for helpdesk_id, opens, closes, minutes, places in pieces:
            day_closures = closed.get((helpdesk_id, day), ())
            for start, end, capacity in _cut(helpdesk_id, day, opens, closes, minutes, places):
                if any(c.covers(start, end) for c in day_closures):
                    continue
                if offset is not None:
                    starts_at = datetime.combine(day, start, tzinfo=UTC) - offset
                else:
                    found = local_datetime(day, start, tz)
                    if found is None:
                        continue
                    starts_at = found
                # An interview lasts its minutes even across a clock change.
                ends_at = starts_at + timedelta(minutes=minutes)
                key = (helpdesk_id, starts_at)
                known = slots.get(key)
                if known is None or known.capacity < capacity:
                    slots[key] = SlotTime(starts_at, helpdesk_id, ends_at, capacity)
    return sorted(slots.values())
