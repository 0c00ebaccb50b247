"""What `/metrics` reports, in the Prometheus text format (prometheus_client).

Two kinds of figures, and the help of each metric says which it is:

- this process's counters and histograms (updates handled, messages sent): each instance
  serves its own, from its start; with several instances behind a proxy, scrape each
  one and sum (`sum by (...)`), as Prometheus does with any counter;
- the database's gauges (inbox and outbox backlogs, bookings today), read at scrape time with
  bounded statements: the same on every instance, so take one (`max`), never the sum.

No label carries personal data: labels are outcomes, reason codes and booking states,
never an id, a name or an error text.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from shared.booking.models import Booking, BookingState
from shared.inbox.models import InboundUpdate
from shared.outbox.models import MessageState, OutboxMessage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PER_INSTANCE = "Per instance (sum over instances)."
DATABASE_WIDE = "Read from the database at scrape time: the same on every instance."

# This process's metrics: a registry of our own, with the process's CPU, memory and
# file descriptors (prometheus_client's standard collectors) besides.
REGISTRY = CollectorRegistry()
for _standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_standard)

UPDATE_SECONDS = Histogram(
    "ripartire_bot_update_seconds",
    f"Telegram updates handled and their handling time, from receipt to the last reply "
    f"sent. {PER_INSTANCE}",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
OUTBOX_SENT = Counter(
    "ripartire_outbox_sent",
    f"Outbox messages delivered on Telegram. {PER_INSTANCE}",
    registry=REGISTRY,
)
OUTBOX_NOT_SENT = Counter(
    "ripartire_outbox_not_sent",
    "Outbox delivery attempts that did not send, by outcome (retry: tried again later; "
    "failed: given up; unreachable: the citizen blocked the bot; withdrawn: no longer "
    f"applies) and reason code. {PER_INSTANCE}",
    ["outcome", "reason"],
    registry=REGISTRY,
)
PERIODIC_ROUNDS = Counter(
    "ripartire_periodic_rounds",
    "Rounds of the periodic jobs (housekeeping, figures-refresh) by outcome (ran: this "
    "instance had the job's lease and ran it; skipped: another instance has it; failed: "
    f"the round raised). Summed over instances, ran counts each round once. {PER_INSTANCE}",
    ["job", "outcome"],
    registry=REGISTRY,
)

# The backlog is counted up to this many messages (a bounded statement): more reads as this.
BACKLOG_CAP = 10_000

P = ParamSpec("P")
R = TypeVar("R")


def timed_update(
    callback: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Observe each call of a Telegram update's callback in `UPDATE_SECONDS`."""

    @functools.wraps(callback)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        start = time.perf_counter()
        try:
            return await callback(*args, **kwargs)
        finally:
            UPDATE_SECONDS.observe(time.perf_counter() - start)

    return timed


@dataclass(frozen=True)
class DatabaseFigures:
    outbox_backlog: int  # due and not sent yet (pending or being sent), capped
    outbox_oldest_seconds: float  # how long the oldest of them has been due; 0 when none
    inbox_backlog: int  # updates received and not handled to the end yet, capped
    inbox_oldest_seconds: float  # how long ago the oldest of them was received; 0 when none
    bookings_made_today: dict[str, int]  # by state, bookings created today
    appointments_today: dict[str, int]  # by state, bookings whose appointment is today


async def database_figures(
    *, session: AsyncSession, now: datetime, tz: ZoneInfo
) -> DatabaseFigures:
    """The database's gauges, each from one bounded statement (indexes on the filters)."""
    live = OutboxMessage.state.in_((MessageState.PENDING.value, MessageState.SENDING.value))
    due = select(OutboxMessage.id).where(live, OutboxMessage.due_at <= now).limit(BACKLOG_CAP)
    backlog = await session.scalar(select(func.count()).select_from(due.subquery()))
    oldest = await session.scalar(
        select(func.min(OutboxMessage.due_at)).where(live, OutboxMessage.due_at <= now)
    )
    kept = select(InboundUpdate.id).limit(BACKLOG_CAP)
    inbox = await session.scalar(select(func.count()).select_from(kept.subquery()))
    # The first received is the first by id (the primary key's order).
    first = await session.scalar(
        select(InboundUpdate.received_at).order_by(InboundUpdate.id).limit(1)
    )
    start = datetime.combine(now.astimezone(tz).date(), clock_time(), tzinfo=tz)
    # The day's bounds in UTC (a day of a DST change has 23 or 25 hours).
    end = datetime.combine(start.date() + timedelta(days=1), clock_time(), tzinfo=tz)
    return DatabaseFigures(
        outbox_backlog=int(backlog or 0),
        outbox_oldest_seconds=_age(now, oldest),
        inbox_backlog=int(inbox or 0),
        inbox_oldest_seconds=_age(now, first),
        bookings_made_today=await _by_state(session, Booking.created_at, start, end),
        appointments_today=await _by_state(session, Booking.starts_at, start, end),
    )


def _age(now: datetime, since: datetime | None) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


async def _by_state(
    session: AsyncSession, column: InstrumentedAttribute[datetime], start: datetime, end: datetime
) -> dict[str, int]:
    rows = await session.execute(
        select(Booking.state, func.count())
        .where(column >= start, column < end)
        .group_by(Booking.state)
    )
    counts = dict.fromkeys((s.value for s in BookingState), 0)
    counts.update({state: int(count) for state, count in rows})
    return counts


class _Figures(Collector):
    def __init__(self, figures: DatabaseFigures) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        found = self._figures
        yield GaugeMetricFamily(
            "ripartire_outbox_backlog",
            f"Outbox messages due and not sent yet (counted up to {BACKLOG_CAP}). {DATABASE_WIDE}",
            value=found.outbox_backlog,
        )
        yield GaugeMetricFamily(
            "ripartire_outbox_oldest_due_seconds",
            f"How long the oldest unsent due outbox message has been due (0: none). "
            f"{DATABASE_WIDE}",
            value=found.outbox_oldest_seconds,
        )
        yield GaugeMetricFamily(
            "ripartire_inbox_backlog",
            f"Telegram updates received and not handled to the end yet, those in hand "
            f"included (counted up to {BACKLOG_CAP}). {DATABASE_WIDE}",
            value=found.inbox_backlog,
        )
        yield GaugeMetricFamily(
            "ripartire_inbox_oldest_seconds",
            f"How long ago the oldest update not yet handled was received (0: none). "
            f"{DATABASE_WIDE}",
            value=found.inbox_oldest_seconds,
        )
        for name, what, counts in (
            ("ripartire_bookings_made_today", "Bookings made today", found.bookings_made_today),
            ("ripartire_appointments_today", "Appointments today", found.appointments_today),
        ):
            family = GaugeMetricFamily(
                name,
                f"{what} (the helpdesks' time zone), by the booking's state. {DATABASE_WIDE}",
                labels=["state"],
            )
            for state, count in counts.items():
                family.add_metric([state], count)
            yield family


def exposition(figures: DatabaseFigures) -> bytes:
    """This process's metrics and the database's figures, in the Prometheus text format."""
    database = CollectorRegistry()
    database.register(_Figures(figures))
    return generate_latest(REGISTRY) + generate_latest(database)
