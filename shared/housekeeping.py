"""Periodic chores of a running instance: lapsed waitlist offers (and, later, stale intakes).

Each chore is idempotent and runs in its own transaction, so two instances running
them at once do no harm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime

from shared.booking import waitlist
from shared.db import Database, utcnow
from shared.runtime import Component
from shared.settings import Settings

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class ChoresDone:
    expired_offers: int


async def run_chores(*, database: Database, settings: Settings, now: datetime) -> ChoresDone:
    """Run every chore once."""
    async with database.transaction() as session:
        expired = await waitlist.expire_offers(session=session, settings=settings, now=now)
    return ChoresDone(expired_offers=expired)


async def _loop(database: Database, settings: Settings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            done = await run_chores(database=database, settings=settings, now=utcnow())
            if done.expired_offers:
                log.info("housekeeping: %d waitlist offers expired", done.expired_offers)
        except Exception:
            # A database hiccup must not kill the loop; the next round tries again.
            log.exception("housekeeping round failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), INTERVAL_SECONDS)


def housekeeping_component(*, settings: Settings, database: Database) -> Component:
    """The chores as a component of the `ripartire run` process."""

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(_loop(database, settings, stop), name="housekeeping")
        try:
            yield
        finally:
            stop.set()
            await task

    return Component(name="housekeeping", lifespan=lifespan)
