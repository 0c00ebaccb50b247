"""The outbox's pacing (`bot.pacing`): evenly spaced sends, at most the rate in any second,
and the rate shared by the live dispatchers on one database. Time is virtual
(`VirtualTimer`): the spacing asserted is the spacing meant, whatever the machine's load."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest

from bot.pacing import Pacer, RateShare, Share, constant
from shared.db import Database
from shared.leases import service as leases
from tests.bot.clock import VirtualTimer, most_in_one_second
from tests.factories import rome

NOW = rome(2026, 12, 3, 15)


async def _send(pacer: Pacer, timer: VirtualTimer, sent: list[float], took: float = 0.0) -> None:
    async with pacer.slot():
        sent.append(timer.now())
        if took:
            await timer.sleep(took)


async def test_sends_are_evenly_spaced_from_the_first() -> None:
    timer = VirtualTimer()
    pacer = Pacer(constant(30.0), timer=timer)
    sent: list[float] = []
    for _ in range(90):
        await _send(pacer, timer, sent)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) == pytest.approx(1 / 30)
    # No burst at the start: 30 in the first second, not a bucket's worth plus 30.
    assert most_in_one_second(sent) == 30
    assert sent[-1] - sent[0] == pytest.approx(89 / 30)


async def test_no_burst_after_a_pause() -> None:
    timer = VirtualTimer()
    pacer = Pacer(constant(10.0), timer=timer)
    sent: list[float] = []
    for _ in range(5):
        await _send(pacer, timer, sent)
    await timer.sleep(30.0)  # idle: nothing saved up for later
    after = len(sent)
    for _ in range(20):
        await _send(pacer, timer, sent)
    resumed = sent[after:]
    assert min(b - a for a, b in itertools.pairwise(resumed)) == pytest.approx(0.1)
    assert most_in_one_second(sent) == 10


async def test_a_send_counts_until_its_request_returns() -> None:
    """Ten at once whose requests each take a while: Telegram may see each at any moment
    until it returns, and still no more than the rate within a second."""
    timer = VirtualTimer()
    pacer = Pacer(constant(10.0), timer=timer)
    started: list[float] = []
    returned: list[float] = []

    async def slow() -> None:
        async with pacer.slot():
            started.append(timer.now())
            await timer.sleep(0.7)
            returned.append(timer.now())

    await asyncio.gather(*(slow() for _ in range(40)))
    assert len(started) == 40
    # Any moment of each request: the first and the last are the extremes.
    assert most_in_one_second(started) <= 10
    assert most_in_one_second(returned) <= 10


async def test_the_share_may_change_and_hold_the_sends_back() -> None:
    timer = VirtualTimer()
    shares = [Share(20.0)]

    async def share() -> Share:
        return shares[-1]

    pacer = Pacer(share, timer=timer)
    sent: list[float] = []
    for _ in range(20):
        await _send(pacer, timer, sent)
    shares.append(Share(5.0, not_before=timer.now() + 3.0))
    held = timer.now()
    for _ in range(10):
        await _send(pacer, timer, sent)
    assert sent[20] >= held + 3.0
    assert most_in_one_second(sent[20:]) == 5


# --- the share of each dispatcher ------------------------------------------------------


@pytest.fixture
async def other(database: Database) -> AsyncIterator[Callable[[], Awaitable[Database]]]:
    """Another instance's engine (its own pool) on the same database."""
    engines: list[Database] = []

    async def make() -> Database:
        engines.append(Database(database.url, cipher=database.cipher))
        return engines[-1]

    yield make
    for engine in engines:
        await engine.dispose()


def _share(database: Database, holder: str, timer: VirtualTimer) -> RateShare:
    return RateShare(database=database, holder=holder, overall=30.0, timer=timer, clock=lambda: NOW)


async def test_the_overall_rate_is_divided_among_the_live_dispatchers(
    database: Database, other: Callable[[], Awaitable[Database]]
) -> None:
    timer = VirtualTimer()
    first = _share(database, "host:1", timer)
    assert await first() == Share(30.0)
    second = _share(await other(), "host:2", timer)
    joined = await second()
    # The newcomer waits until the first has counted it, and that second has gone by.
    assert joined == Share(15.0, not_before=timer.now() + 2.0)
    assert (await first()).rate == 30.0  # counted less than a second ago
    await timer.sleep(1.0)
    assert (await first()).rate == 15.0
    # One leaving gives its part back at the others' next count, once the second it may
    # have sent in has gone by.
    await second.leave()
    await timer.sleep(1.0)
    assert (await first()).rate == 15.0
    await timer.sleep(0.5)
    assert (await first()).rate == 15.0
    await timer.sleep(0.5)
    assert await first() == Share(30.0)
    async with database.transaction(read_only=True) as session:
        assert await leases.count_members(session=session, group="outbox-dispatcher", now=NOW) == 1


async def test_a_dispatcher_that_sends_nothing_gives_its_part_back(database: Database) -> None:
    timer = VirtualTimer()
    moments = [NOW]
    busy = RateShare(
        database=database, holder="busy", overall=30.0, timer=timer, clock=lambda: moments[-1]
    )
    idle = RateShare(
        database=database, holder="idle", overall=30.0, timer=timer, clock=lambda: moments[-1]
    )
    await idle()
    assert (await busy()).rate == 15.0
    # The busy one renews its lease as it sends; the idle one's lapses.
    for _ in range(3):  # the idle one's lease (15 s) has lapsed at the third
        moments.append(moments[-1] + timedelta(seconds=5))
        await timer.sleep(5.0)
        share = await busy()
    assert share.rate == 15.0  # lapsed, counted gone: its part is taken in a second
    await timer.sleep(1.0)
    assert (await busy()).rate == 30.0


async def test_when_counting_fails_the_last_count_holds(
    database: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    timer = VirtualTimer()
    await _share(database, "other", timer)()
    mine = _share(database, "mine", timer)
    assert (await mine()).rate == 15.0

    async def unavailable(**_kwargs: object) -> int:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(leases, "count_members", unavailable)
    monkeypatch.setattr(leases, "join", unavailable)
    caplog.set_level(logging.INFO, logger="bot.pacing")
    for _ in range(3):
        await timer.sleep(1.0)
        assert (await mine()).rate == 15.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once, not at every count
    assert "ConnectionError" in warnings[0].getMessage()


async def test_before_any_count_a_dispatcher_takes_the_full_rate(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(**_kwargs: object) -> int:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(leases, "join", unavailable)
    assert await _share(database, "alone", VirtualTimer())() == Share(30.0)
