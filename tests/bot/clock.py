"""The bot's clock in tests: a fixed instant the test chooses, moved only when it says so."""

from __future__ import annotations

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
