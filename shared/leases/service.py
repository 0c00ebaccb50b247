"""A database lease, so that one instance of several runs each round of a periodic job.

`acquire` is one upsert: it takes a job's lease when nobody has it or it has expired, or
renews it for the instance that has it, and says whether this instance has it now. Two
instances asking at once are serialised by the row (PostgreSQL's ON CONFLICT locks it;
SQLite's writers take the lock up front): exactly one gets it. `release` gives it back,
so that another instance takes over at its next round instead of after `ttl`.

`periodic` is the loop of a job that every `ripartire run` process starts: each round it
asks for the lease and runs the job only if it has it.

A group (`join`, `count_members`, `leave`) is the other use of the table: every instance
holds a lease of its own, named after the group and itself, so that each can count the
live ones, e.g. to take its part of a limit they share (`bot.pacing`). Joins are
serialised (PostgreSQL: an advisory lock per group; SQLite: the write lock), so of two
instances joining at once the second counts the first.

Times are each instance's clock: instances whose clocks differ by more than a lease's
slack could both run a round, which the jobs using it tolerate (each is idempotent; the
lease saves the work, it is not what keeps the data right).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import metrics
from shared.db import Database, is_postgresql, upsert_insert, utcnow
from shared.leases.models import Lease

log = logging.getLogger(__name__)

# A periodic job's round, given the moment it starts.
Job = Callable[[datetime], Awaitable[object]]


def new_holder() -> str:
    """A name for this instance, unique among the instances on one database."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


async def acquire(
    *, session: AsyncSession, name: str, holder: str, ttl: timedelta, now: datetime
) -> bool:
    """Take or renew the lease `name` for `holder` until `now + ttl`; True if it has it."""
    values = upsert_insert(session, Lease).values(
        name=name, holder=holder, acquired_at=now, expires_at=now + ttl
    )
    statement = values.on_conflict_do_update(
        index_elements=[Lease.name],
        set_={
            "holder": values.excluded.holder,
            "acquired_at": values.excluded.acquired_at,
            "expires_at": values.excluded.expires_at,
        },
        where=or_(Lease.expires_at <= now, Lease.holder == holder),
    ).returning(Lease.holder)
    # No row comes back when another holder's lease stands (the update's WHERE is false).
    return (await session.scalar(statement)) == holder


async def release(*, session: AsyncSession, name: str, holder: str) -> bool:
    """Give the lease `name` back if `holder` has it; True if it had it."""
    result = await session.execute(
        delete(Lease).where(Lease.name == name, Lease.holder == holder).returning(Lease.name)
    )
    return result.first() is not None


@dataclass(frozen=True, slots=True)
class Membership:
    """What `join` found: the group's live members (this one included), and whether this
    one was already among them (its lease still stood) or has just come (or come back)."""

    members: int
    was_member: bool


def member_name(group: str, holder: str) -> str:
    """The lease of `holder` in `group`: the group's name, then a digest of the holder's
    (names are at most 64 characters, a holder's up to 128)."""
    return f"{group}:{hashlib.sha256(holder.encode()).hexdigest()[:16]}"


def _members(group: str, now: datetime) -> Select[int]:
    return (
        select(func.count())
        .select_from(Lease)
        .where(Lease.name.startswith(f"{group}:", autoescape=True), Lease.expires_at > now)
    )


async def join(
    *, session: AsyncSession, group: str, holder: str, ttl: timedelta, now: datetime
) -> Membership:
    """Take or renew `holder`'s lease in `group` until `now + ttl`, and count the group."""
    name = member_name(group, holder)
    if is_postgresql(session):
        # Two joins at once would each count before the other's row is committed.
        key = int.from_bytes(hashlib.sha256(group.encode()).digest()[:8], "big", signed=True)
        await session.execute(select(func.pg_advisory_xact_lock(key)))
    was_member = (
        await session.scalar(select(Lease.name).where(Lease.name == name, Lease.expires_at > now))
    ) is not None
    await acquire(session=session, name=name, holder=holder[:128], ttl=ttl, now=now)
    members = await session.scalar(_members(group, now))
    return Membership(members=max(int(members or 0), 1), was_member=was_member)


async def count_members(*, session: AsyncSession, group: str, now: datetime) -> int:
    """How many members of `group` hold a lease that stands at `now`."""
    return int(await session.scalar(_members(group, now)) or 0)


async def leave(*, session: AsyncSession, group: str, holder: str) -> bool:
    """Give back `holder`'s lease in `group`; True if it had one."""
    return await release(session=session, name=member_name(group, holder), holder=holder[:128])


async def periodic(
    *,
    database: Database,
    name: str,
    holder: str,
    interval: float,
    ttl: timedelta,
    job: Job,
    stop: asyncio.Event,
) -> None:
    """Until `stop`: every `interval` seconds, run `job(now)` if `holder` has the lease
    `name` (asked for and renewed each round); at the end give the lease back.

    A failed round (the database down, the job raising) is logged and the next one tries
    again: a database hiccup must not end the loop."""
    try:
        while not stop.is_set():
            now = utcnow()
            try:
                async with database.transaction() as session:
                    mine = await acquire(
                        session=session, name=name, holder=holder, ttl=ttl, now=now
                    )
                if mine:
                    await job(now)
                metrics.PERIODIC_ROUNDS.labels(job=name, outcome="ran" if mine else "skipped").inc()
            except Exception:
                metrics.PERIODIC_ROUNDS.labels(job=name, outcome="failed").inc()
                log.exception("periodic job %s: round failed", name)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        try:
            async with database.transaction() as session:
                await release(session=session, name=name, holder=holder)
        except Exception:
            # Not given back: another instance takes it once it expires.
            log.warning("periodic job %s: lease not released", name)
