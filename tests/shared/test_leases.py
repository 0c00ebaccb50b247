"""The periodic jobs' lease (`shared.leases`): one instance of several has it at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from shared import housekeeping, metrics
from shared.db import Database
from shared.figures import cache
from shared.leases import service as leases
from shared.leases.models import Lease
from shared.runtime import Component
from shared.settings import Settings
from tests.factories import rome

NOW = rome(2026, 12, 7, 8)
TTL = timedelta(minutes=1)


@pytest.fixture
async def other(database: Database) -> AsyncIterator[Database]:
    """A second engine (its own pool) on the same database: another instance."""
    second = Database(database.url, cipher=database.cipher)
    yield second
    await second.dispose()


async def _acquire(database: Database, holder: str, now: datetime, name: str = "job") -> bool:
    async with database.transaction() as session:
        return await leases.acquire(session=session, name=name, holder=holder, ttl=TTL, now=now)


async def _holder(database: Database, name: str = "job") -> str | None:
    async with database.transaction(read_only=True) as session:
        return await session.scalar(select(Lease.holder).where(Lease.name == name))


async def test_two_instances_racing_exactly_one_wins(database: Database, other: Database) -> None:
    for round_ in range(5):
        name = f"job-{round_}"
        won = await asyncio.gather(
            _acquire(database, "a", NOW, name), _acquire(other, "b", NOW, name)
        )
        assert sorted(won) == [False, True]
        assert await _holder(database, name) == ("a" if won[0] else "b")
        # The loser keeps losing while the lease stands; the winner renews it.
        winner, loser = ("a", "b") if won[0] else ("b", "a")
        later = NOW + TTL / 2
        assert not await _acquire(other, loser, later, name)
        assert await _acquire(database, winner, later, name)


async def test_a_renewed_lease_lasts_from_the_renewal(database: Database) -> None:
    assert await _acquire(database, "a", NOW)
    assert await _acquire(database, "a", NOW + TTL * 0.9)
    # Past the first lease's end, within the renewed one's.
    assert not await _acquire(database, "b", NOW + TTL * 1.5)
    assert await _acquire(database, "b", NOW + TTL * 1.9 + timedelta(seconds=1))


async def test_an_expired_lease_is_handed_over(database: Database, other: Database) -> None:
    assert await _acquire(database, "a", NOW)
    assert not await _acquire(other, "b", NOW + TTL - timedelta(seconds=1))
    assert await _acquire(other, "b", NOW + TTL)
    assert await _holder(database) == "b"
    # The first holder, back late, does not take it back while b's stands.
    assert not await _acquire(database, "a", NOW + TTL + timedelta(seconds=1))


async def test_release_hands_it_over_at_once(database: Database, other: Database) -> None:
    assert await _acquire(database, "a", NOW)
    async with other.transaction() as session:
        # Only its holder gives it back.
        assert not await leases.release(session=session, name="job", holder="b")
    assert not await _acquire(other, "b", NOW)
    async with database.transaction() as session:
        assert await leases.release(session=session, name="job", holder="a")
    assert await _holder(database) is None
    assert await _acquire(other, "b", NOW)


async def _join(
    database: Database, holder: str, now: datetime, group: str = "senders"
) -> leases.Membership:
    async with database.transaction() as session:
        return await leases.join(session=session, group=group, holder=holder, ttl=TTL, now=now)


async def _members(database: Database, now: datetime, group: str = "senders") -> int:
    async with database.transaction(read_only=True) as session:
        return await leases.count_members(session=session, group=group, now=now)


async def test_a_group_counts_its_live_members(database: Database) -> None:
    assert await _join(database, "a", NOW) == leases.Membership(members=1, was_member=False)
    assert await _join(database, "b", NOW) == leases.Membership(members=2, was_member=False)
    # A renewal is not a new member; another group, or a periodic job's lease, don't count.
    assert await _join(database, "a", NOW + TTL / 2) == leases.Membership(2, was_member=True)
    assert await _join(database, "a", NOW, group="senders_other") == leases.Membership(1, False)
    assert await _acquire(database, "c", NOW, name="senders")
    assert await _members(database, NOW + TTL / 2) == 2
    # b's lease lapses; a's renewed one stands. a long gone comes back as a new member.
    assert await _members(database, NOW + TTL) == 1
    assert await _join(database, "a", NOW + TTL * 3) == leases.Membership(1, was_member=False)
    async with database.transaction() as session:
        assert await leases.leave(session=session, group="senders", holder="a")
        assert not await leases.leave(session=session, group="senders", holder="a")
    assert await _members(database, NOW + TTL * 3) == 0


async def test_of_two_joining_at_once_the_second_counts_the_first(
    database: Database, other: Database
) -> None:
    for round_ in range(5):
        group = f"senders-{round_}"
        joined = await asyncio.gather(
            _join(database, "a", NOW, group), _join(other, "b", NOW, group)
        )
        assert sorted(m.members for m in joined) == [1, 2]


def test_a_members_lease_name_fits_the_column() -> None:
    name = leases.member_name("outbox-dispatcher", "h" * 300)
    assert len(name) <= 64
    assert name != leases.member_name("outbox-dispatcher", "h" * 299)


async def test_periodic_runs_each_round_on_one_instance_then_hands_over(
    database: Database, other: Database
) -> None:
    runs: list[str] = []

    def job_of(holder: str) -> leases.Job:
        async def job(_now: datetime) -> None:
            runs.append(holder)

        return job

    stops = {"a": asyncio.Event(), "b": asyncio.Event()}
    engines = {"a": database, "b": other}
    loops = {
        holder: asyncio.create_task(
            leases.periodic(
                database=engines[holder],
                name="job",
                holder=holder,
                interval=0.02,
                ttl=TTL,
                job=job_of(holder),
                stop=stops[holder],
            )
        )
        for holder in engines
    }
    async with asyncio.timeout(30):
        while len(runs) < 10:
            await asyncio.sleep(0.01)
    first = runs[0]
    assert set(runs) == {first}, "one instance ran every round while both were running"
    stops[first].set()
    await loops[first]
    # Given back on stopping: the other takes the next round, not a minute later.
    second = "b" if first == "a" else "a"
    async with asyncio.timeout(30):
        while second not in runs:
            await asyncio.sleep(0.01)
    assert await _holder(database) == second
    stops[second].set()
    await loops[second]
    assert await _holder(database) is None


def _rounds(job: str, outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "ripartire_periodic_rounds_total", {"job": job, "outcome": outcome}
    )
    return value or 0.0


def _no_charts(_figures: object, _language: str, _names: object) -> dict[str, str]:
    return {}


@pytest.mark.parametrize("job", [housekeeping.LEASE_NAME, cache.LEASE_NAME])
async def test_two_components_run_each_round_once(
    database: Database, other: Database, settings: Settings, job: str
) -> None:
    """`ripartire run`'s housekeeping and figures refresh, two instances on one database."""

    def component(engine: Database) -> Component:
        if job == housekeeping.LEASE_NAME:
            return housekeeping.housekeeping_component(settings=settings, database=engine)
        return cache.figures_cache_component(settings=settings, database=engine, draw=_no_charts)

    ran, skipped = _rounds(job, "ran"), _rounds(job, "skipped")
    one, two = component(database), component(other)
    # Each component's first round comes at its start, the next a minute later.
    async with one.lifespan(), two.lifespan():
        async with asyncio.timeout(60):
            while _rounds(job, "ran") + _rounds(job, "skipped") < ran + skipped + 2:
                await asyncio.sleep(0.01)
        assert (_rounds(job, "ran") - ran, _rounds(job, "skipped") - skipped) == (1, 1)
        assert await _holder(database, job) is not None
    assert _rounds(job, "failed") == 0
    # Given back as they stop.
    assert await _holder(database, job) is None
