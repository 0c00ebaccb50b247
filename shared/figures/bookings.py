"""Bookings (SPEC J6): appointments per helpdesk and week, no-shows, cancellations by who.

Counted over the bookings whose appointment (`Booking.starts_at`) falls in the period,
each week Monday to Sunday in the program's time zone:

- per helpdesk and week: the appointments not cancelled (booked, attended, no-show);
- the no-show rate: no-shows over the appointments whose outcome is recorded
  (attended + no-show);
- cancellations by who: the citizen, the staff, and at a moderated helpdesk a request
  a coordinator declined or that expired unanswered. A move is a cancellation and a new
  booking (SPEC section 4): the cancelled one counts here as cancelled by whoever moved
  it, and `moves` says how many new bookings replaced another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, String, cast, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking.models import Booking, BookingState, Moderation
from shared.figures.period import Period, share, week_index
from shared.settings import Settings

HELD = (BookingState.BOOKED.value, BookingState.ATTENDED.value, BookingState.NO_SHOW.value)
# Who cancelled, in the order the page shows them.
CANCELLED_BY = ("citizen", "staff", "request_declined", "request_expired")


@dataclass(frozen=True, slots=True)
class HelpdeskWeek:
    helpdesk_id: int
    week: date  # its Monday
    appointments: int


@dataclass(frozen=True, slots=True)
class Bookings:
    weeks: tuple[date, ...]
    per_helpdesk_week: tuple[HelpdeskWeek, ...]
    # Every booking of the period by state (`BookingState` values).
    by_state: tuple[tuple[str, int], ...]
    attended: int
    no_shows: int
    cancelled: tuple[tuple[str, int], ...]
    moves: int

    @property
    def no_show_rate(self) -> float | None:
        return share(self.no_shows, self.attended + self.no_shows)

    def appointments(self, helpdesk_id: int, week: date) -> int:
        return next(
            (r.appointments for r in self.per_helpdesk_week
             if r.helpdesk_id == helpdesk_id and r.week == week),
            0,
        )  # fmt: skip

    @property
    def helpdesk_ids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(r.helpdesk_id for r in self.per_helpdesk_week))


def _who(state: str, moderation: str | None) -> str:
    if moderation == Moderation.DECLINED.value:
        return "request_declined"
    if moderation == Moderation.EXPIRED.value:
        return "request_expired"
    return "citizen" if state == BookingState.CANCELLED_BY_CITIZEN.value else "staff"


async def bookings(
    *,
    session: AsyncSession,
    settings: Settings,
    period: Period,
    helpdesk_id: int | None = None,
    now: datetime,
) -> Bookings:
    """The period's bookings per helpdesk and week, by state and by who cancelled; one statement."""
    del now
    tz = settings.tz
    mondays = period.weeks()
    where = [period.within(Booking.starts_at, tz)]
    if helpdesk_id is not None:
        where.append(Booking.helpdesk_id == helpdesk_id)
    week = week_index(Booking.starts_at, mondays, tz)
    no_text = cast(null(), String)
    no_number = cast(null(), Integer)
    per_week = (
        select(
            literal("week").label("what"),
            Booking.helpdesk_id.label("helpdesk_id"),
            week.label("week"),
            no_text.label("state"),
            no_text.label("moderation"),
            func.count().label("n"),
        )
        .where(*where, Booking.state.in_(HELD))
        .group_by(Booking.helpdesk_id, week)
    )
    per_state = (
        select(
            literal("state"), no_number, no_number, Booking.state, Booking.moderation,
            func.count(),
        )
        .where(*where)
        .group_by(Booking.state, Booking.moderation)
    )  # fmt: skip
    moved = select(literal("moves"), no_number, no_number, no_text, no_text, func.count()).where(
        *where, Booking.moved_from_id.is_not(None)
    )
    rows: list[Any] = list((await session.execute(union_all(per_week, per_state, moved))).all())

    per_helpdesk_week = []
    by_state = dict.fromkeys((s.value for s in BookingState), 0)
    cancelled = dict.fromkeys(CANCELLED_BY, 0)
    moves = 0
    for what, helpdesk, index, state, moderation, n in rows:
        n = int(n)
        if what == "week":
            per_helpdesk_week.append(HelpdeskWeek(int(helpdesk), mondays[int(index)], n))
        elif what == "state":
            by_state[state] = by_state.get(state, 0) + n
            if state not in HELD:
                cancelled[_who(state, moderation)] += n
        else:
            moves = n
    per_helpdesk_week.sort(key=lambda r: (r.helpdesk_id, r.week))
    return Bookings(
        weeks=mondays,
        per_helpdesk_week=tuple(per_helpdesk_week),
        by_state=tuple(by_state.items()),
        attended=by_state[BookingState.ATTENDED.value],
        no_shows=by_state[BookingState.NO_SHOW.value],
        cancelled=tuple(cancelled.items()),
        moves=moves,
    )
