"""Free slots: the helpdesks' hours minus closures and taken places, in one statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Date,
    Integer,
    String,
    Time,
    cast,
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

from shared.booking.errors import SlotNotOffered
from shared.booking.models import Closure, ExtraOpening, Helpdesk, OpeningRule, Slot
from shared.booking.schedule import DayClosure, DayHours, WeeklyHours, generate_slots
from shared.db import UTCDateTime, utcnow
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


async def offered_slot(
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
