"""The bot's clock in tests: a fixed instant the test chooses, moved only when it says so."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from tests.factories import ROME

# A Wednesday morning in Rome, before the helpdesks open, far from a change of the clocks:
# the journeys see the same day, hour and free places whenever the suite runs.
MORNING = datetime(2027, 3, 10, 8, 0, tzinfo=ROME)


class FixedClock:
    """A clock for `build_application(clock=...)`: `clock()` is now."""

    def __init__(self, now: datetime = MORNING) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class VirtualTimer:
    """Monotonic seconds for `bot.pacing.Timer` that pass only when someone sleeps: a sleep
    until a moment moves the time on to it at once (if it is not past already), so two
    tasks sleeping side by side don't add up their sleeps, and one may wake later than it
    asked (as on a busy machine), never sooner. What a test measures by it is what the
    code meant to do, whatever the machine's load."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> float:
        return self.seconds

    async def sleep(self, seconds: float) -> None:
        self.seconds = max(self.seconds, self.seconds + seconds)
        await asyncio.sleep(0)


def most_in_one_second(times: list[float]) -> int:
    """The most of `times` within any half-open second [t, t + 1)."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0 - 1e-9:
            start += 1
        most = max(most, end - start + 1)
    return most
