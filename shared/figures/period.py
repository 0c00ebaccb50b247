"""The period the figures look at, and the SQL pieces every figure group shares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shared.db import is_postgresql

# Two years of weeks is what a weekly chart can still show; the program runs for less.
MAX_PERIOD_DAYS = 2 * 366
# The page's default: the last twelve months, today included.
DEFAULT_MONTHS = 12


class PeriodTooLong(ValueError):
    """More than MAX_PERIOD_DAYS from the first day to the last."""


class PeriodReversed(ValueError):
    """The last day comes before the first."""


@dataclass(frozen=True, slots=True)
class Period:
    """Local days of the program's time zone, `first` to `last`, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise PeriodReversed(f"{self.last} is before {self.first}")
        if (self.last - self.first).days + 1 > MAX_PERIOD_DAYS:
            raise PeriodTooLong(f"more than {MAX_PERIOD_DAYS} days")

    @classmethod
    def last_months(cls, today: date, months: int = DEFAULT_MONTHS) -> Period:
        """From the day after the same day `months` months ago, to today."""
        year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
        month += 1
        # 31 March minus one month is the last day of February.
        day = min(today.day, _month_length(year, month))
        return cls(date(year, month, day) + timedelta(days=1), today)

    def start(self, tz: ZoneInfo) -> datetime:
        """The instant the first day begins."""
        return datetime.combine(self.first, time.min, tzinfo=tz)

    def end(self, tz: ZoneInfo) -> datetime:
        """The instant after the last day (excluded)."""
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=tz)

    def within(self, column: Any, tz: ZoneInfo) -> ColumnElement[bool]:
        """`column` (an instant) falls on one of the period's days."""
        return and_(column >= self.start(tz), column < self.end(tz))

    def weeks(self) -> tuple[date, ...]:
        """The Mondays of the weeks the period touches, the first one's on or before `first`."""
        monday = self.first - timedelta(days=self.first.weekday())
        found = []
        while monday <= self.last:
            found.append(monday)
            monday += timedelta(days=7)
        return tuple(found)


def _month_length(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def week_index(column: Any, mondays: Sequence[date], tz: ZoneInfo) -> ColumnElement[int]:
    """The position in `mondays` of the local week `column` (an instant) falls in.

    A CASE over the weeks' starts, each computed here in the program's time zone, so a
    week is Monday 00:00 to Monday 00:00 local time whatever the database's own time zone
    handling (SQLite has none) and across the changes of the clocks. Instants before the
    first week count in it, after the last in the last: callers filter by the period.
    """
    starts = [datetime.combine(monday, time.min, tzinfo=tz) for monday in mondays[1:]]
    if not starts:
        return cast(0, Integer)
    return case(
        *((column < start, index) for index, start in enumerate(starts)),
        else_=len(starts),
    )


def days_between(session: AsyncSession, later: Any, earlier: Any) -> ColumnElement[int]:
    """Whole days from `earlier` to `later` (two instants), in SQL: the fraction of a day
    is dropped (towards zero) on both databases."""
    if is_postgresql(session):
        return cast(func.trunc(func.extract("epoch", later - earlier) / 86400), Integer)
    # SQLite keeps instants as UTC text; julianday() reads them as days.
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


def median(histogram: Iterable[tuple[int, int]]) -> float | None:
    """The median of values given as (value, how many times): None when there are none.

    An even count gives the mean of the two middle values, as statistics.median does.
    """
    counts = sorted((value, n) for value, n in histogram if n > 0)
    total = sum(n for _, n in counts)
    if total == 0:
        return None
    wanted = (total - 1) // 2, total // 2
    found: list[int] = []
    seen = 0
    for value, n in counts:
        for position in wanted:
            if seen <= position < seen + n:
                found.append(value)
        seen += n
    return (found[0] + found[1]) / 2


def share(part: int, whole: int) -> float | None:
    """`part` out of `whole` as a fraction, None when `whole` is zero."""
    return part / whole if whole else None
