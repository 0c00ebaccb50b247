"""Periodic chores of a running instance: lapsed offers, requests nobody handled in time,
stale questionnaires, old update ids, and once a day the retention rules.

Every `ripartire run` process starts the loop; with several instances on one database,
the one holding the "housekeeping" lease (`shared.leases`) runs each round, and the
others skip it. Each chore is idempotent and runs in its own transaction besides, so two
instances running them at once (a lease lost to a slow round, clocks apart) do no harm.
Retention runs in the first round of each local day; the day's claim
(`shared.privacy.retention.run_daily`) keeps a second instance from running it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from shared.booking import moderation, waitlist
from shared.booking.messages import MessageKind
from shared.citizens import service as citizens
from shared.citizens.models import Citizen
from shared.db import Database
from shared.intake import service as intake
from shared.leases import service as leases
from shared.outbox import service as outbox
from shared.privacy import retention
from shared.privacy.retention import RetentionCounts
from shared.runtime import Component
from shared.settings import Settings

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0
LEASE_NAME = "housekeeping"
# The instance running the rounds keeps them while it renews the lease each round; one
# that died hands them over after this long. Longer than a round (a first retention
# over years of data takes minutes): a round outliving it may meet another instance's.
LEASE_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class ChoresDone:
    expired_offers: int
    expiry_reminders: int
    expired_intakes: int
    # Requests at a moderated helpdesk not confirmed or declined in time.
    expired_requests: int = 0
    # What the day's retention removed, in the round that ran it (None in the others).
    retention: RetentionCounts | None = None


async def run_chores(*, database: Database, settings: Settings, now: datetime) -> ChoresDone:
    """Run every chore once."""
    max_age = timedelta(days=settings.intake_expiry_days)
    async with database.transaction() as session:
        expired_offers = await waitlist.expire_offers(session=session, settings=settings, now=now)
    async with database.transaction() as session:
        expired_requests = await moderation.expire_requests(
            session=session, settings=settings, now=now
        )
    async with database.transaction() as session:
        reminders = await intake.due_expiry_reminders(
            session=session,
            now=now,
            max_age=max_age,
            remind_before=timedelta(days=settings.intake_reminder_days_before),
        )
        for stale in reminders:
            chat = await session.scalar(
                select(Citizen.telegram_chat_id).where(Citizen.id == stale.citizen_id)
            )
            if chat is None:
                continue
            await outbox.enqueue(
                session=session,
                kind=MessageKind.INTAKE_EXPIRY_REMINDER.value,
                citizen_id=stale.citizen_id,
                due_at=now,
                idempotency_key=f"intake:{stale.id}:reminder:{stale.updated_at.isoformat()}",
                payload={"expires_at": (stale.updated_at + max_age).isoformat()},
            )
    async with database.transaction() as session:
        expired_intakes = await intake.expire_stale(
            session=session, now=now, max_age=max_age, tz=settings.tz
        )
        await citizens.forget_processed_updates(session=session, now=now)
    # Last: the questionnaires above expire on time, not a day late in retention's count.
    retained = await retention.run_daily(database=database, settings=settings, now=now)
    return ChoresDone(
        expired_offers=expired_offers,
        expiry_reminders=len(reminders),
        expired_intakes=len(expired_intakes),
        expired_requests=expired_requests,
        retention=retained,
    )


def housekeeping_component(
    *, settings: Settings, database: Database, interval: float = INTERVAL_SECONDS
) -> Component:
    """The chores as a component of the `ripartire run` process, every `interval` seconds
    when this instance holds the lease."""
    holder = leases.new_holder()

    async def round_(now: datetime) -> None:
        done = await run_chores(database=database, settings=settings, now=now)
        if (
            done.expired_offers
            or done.expired_intakes
            or done.expiry_reminders
            or done.expired_requests
            or done.retention is not None
        ):
            log.info("housekeeping: %s", done)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        stop = asyncio.Event()
        loop = leases.periodic(
            database=database, name=LEASE_NAME, holder=holder, interval=interval,
            ttl=LEASE_TTL, job=round_, stop=stop,
        )  # fmt: skip
        task = asyncio.create_task(
            loop,
            name="housekeeping",
        )
        try:
            yield
        finally:
            stop.set()
            await task

    return Component(name="housekeeping", lifespan=lifespan)
