"""Pace the outbox's sends within Telegram's overall limit (~30 messages/s), however many
instances send.

`Pacer` lets the sends out evenly spaced, `1 / rate` apart, and never more than `rate`
within any one second: the first second of a drain and the one after a pause included
(a bucket that fills while idle would let a whole second's worth out at once). A send
counts from the moment it is let out until its request has returned, so a slow request
can't make a later second look emptier than Telegram saw it.

`RateShare` gives each dispatcher its part: the overall rate divided by the live
dispatchers on the database, each of which holds a lease in the group `GROUP`
(`shared.leases.service.join`). The count is read at most once per `refresh` seconds,
and only while sending (no query per message). A dispatcher that joins while others are
live waits `refresh` plus one second before its first send: by then every other one has
counted it (each counts again before sending once its count is `refresh` old), and the
sends they let out at their old share have left the one-second window. One that has
nothing to send gives its lease back (`leave`; one whose process died lets it lapse,
`ttl`), and the others take its part one second after they count it gone (its last
sends may still be in that second). If the count can't be read, a dispatcher keeps the
last one it read (alone, the full rate, before its first): it can't claim messages
meanwhile, so at most the ones in hand go out at that share.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.db import Database
from shared.leases import service as leases

log = logging.getLogger(__name__)

# The leases of the live dispatchers (`shared.leases`).
GROUP = "outbox-dispatcher"
# Telegram's limit is per second.
WINDOW = 1.0


class Timer(Protocol):
    """Monotonic seconds, and a way to wait for them (a test's may be virtual)."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopTimer:
    """The event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Share:
    """Sends a second this dispatcher may make, and not before when (`Timer` seconds)."""

    rate: float
    not_before: float = -math.inf


def constant(rate: float) -> Callable[[], Awaitable[Share]]:
    """The share of a dispatcher that counts no one else."""
    share = Share(rate)

    async def current() -> Share:
        return share

    return current


class Pacer:
    """Sends evenly spaced at the share's rate, at most that many within any second."""

    def __init__(self, share: Callable[[], Awaitable[Share]], *, timer: Timer) -> None:
        self._share = share
        self._timer = timer
        self._lock = asyncio.Lock()
        self._next = -math.inf
        self._in_flight = 0
        # When the sends of the last second returned, oldest first.
        self._returned: deque[float] = deque()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for the turn of one send, to be made in the block."""
        async with self._lock:
            while True:
                share = await self._share()
                now = self._timer.now()
                wait = self._wait(share, now)
                if wait <= 0:
                    break
                await self._timer.sleep(wait)
            interval = 1 / share.rate
            if now - self._next > interval:
                # After a pause: spaced from this one.
                self._next = now + interval
            else:
                # A send let out a little late is made up for by at most half an interval:
                # sends never come closer than that, and the window caps every second.
                self._next = max(self._next + interval, now + interval / 2)
            self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._returned.append(self._timer.now())

    def _wait(self, share: Share, now: float) -> float:
        """Seconds until a send may go, at `share` (0 or less: now)."""
        returned = self._returned
        while returned and returned[0] <= now - WINDOW:
            returned.popleft()
        interval = 1 / share.rate
        limit = max(1, math.floor(share.rate * WINDOW + 1e-9))
        wait = max(share.not_before - now, self._next - now)
        over = len(returned) + self._in_flight - limit
        if over >= 0:
            # The send must wait until enough of the last second's have left it.
            wait = max(wait, returned[over] + WINDOW - now if over < len(returned) else interval)
        return wait


class RateShare:
    """This dispatcher's part of `overall`: divided by the live dispatchers (see above)."""

    def __init__(
        self,
        *,
        database: Database,
        holder: str,
        overall: float,
        timer: Timer,
        clock: Callable[[], datetime],
        refresh: float = 1.0,
        renew: float = 5.0,
        ttl: timedelta = timedelta(seconds=15),
    ) -> None:
        if not 0 < refresh < renew < ttl.total_seconds():
            raise ValueError("refresh < renew < ttl, all positive")
        self.database = database
        self.holder = holder
        self.overall = overall
        self._timer = timer
        self._clock = clock
        self._refresh = refresh
        self._renew = renew
        self._ttl = ttl
        self._members = 1
        # Fewer members counted, and from when their parts may be taken (see `_count`).
        self._fewer: tuple[int, float] | None = None
        self._not_before = -math.inf
        self._counted_until = -math.inf
        self._renew_at = -math.inf
        self._failing = False
        self._joined = False

    @property
    def members(self) -> int:
        """The live dispatchers as last counted (1 before the first count)."""
        return self._members

    async def __call__(self) -> Share:
        """The share now; counts (and renews this one's lease) when due."""
        now = self._timer.now()
        if now >= self._counted_until:
            # From before the query: its snapshot is no older than that.
            self._counted_until = now + self._refresh
            await self._count(now)
        if self._fewer is not None and self._timer.now() >= self._fewer[1]:
            self._members, self._fewer = self._fewer[0], None
        return Share(self.overall / self._members, self._not_before)

    async def _count(self, now: float) -> None:
        try:
            if now >= self._renew_at:
                async with self.database.transaction() as session:
                    found = await leases.join(
                        session=session,
                        group=GROUP,
                        holder=self.holder,
                        ttl=self._ttl,
                        now=self._clock(),
                    )
                self._renew_at = now + self._renew
                self._joined = True
                if not found.was_member and found.members > 1:
                    # The others are still sending at a share that leaves us out.
                    self._not_before = self._timer.now() + self._refresh + WINDOW
                members = found.members
            else:
                async with self.database.transaction(read_only=True) as session:
                    members = await leases.count_members(
                        session=session, group=GROUP, now=self._clock()
                    )
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "outbox: the live dispatchers could not be counted (%s); sending at "
                    "1/%d of the overall rate meanwhile",
                    type(exc).__name__,
                    self._members,
                )
            self._failing = True
            return
        if self._failing:
            log.info("outbox: the live dispatchers are counted again: %d", members)
        self._failing = False
        members = max(members, 1)
        if members < self._members:
            # Those that left may have sent within the last second: their parts are taken
            # once it has gone by.
            if self._fewer is None or self._fewer[0] != members:
                self._fewer = (members, self._timer.now() + WINDOW)
            return
        if members != self._members:
            log.info(
                "outbox: %d dispatcher(s) live, each sends %.1f/s", members, self.overall / members
            )
        self._members, self._fewer = members, None

    async def leave(self) -> None:
        """Give back this dispatcher's lease, so the others take its part at once."""
        if not self._joined:
            return
        try:
            async with self.database.transaction() as session:
                await leases.leave(session=session, group=GROUP, holder=self.holder)
        except Exception as exc:
            # The others take its part when it lapses.
            log.warning("outbox: the dispatcher's lease not given back (%s)", type(exc).__name__)
        self._joined = False
        self._renew_at = -math.inf
        self._counted_until = -math.inf
