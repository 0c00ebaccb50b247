"""A staff session's use is written down at most once a minute, so reading a page is a read.

The idle rule (`shared.staff.sessions.resume`): refused once `now - last_seen_at > idle`,
where `last_seen_at` is the last recorded use; a use is recorded when the last recorded
one is a minute old or more (`TOUCH_INTERVAL`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, text

from shared.db import Database
from shared.settings import Settings
from shared.staff.models import StaffSession
from shared.staff.sessions import TOUCH_INTERVAL
from tests.dashboard.conftest import login, statements_of

SIGNED_IN = datetime(2027, 2, 3, 9, 0, tzinfo=UTC)
WRITES = ("INSERT", "UPDATE", "DELETE")
TICK = timedelta(microseconds=1)


class Clock:
    """The dashboard's clock for sign-in and sessions, moved by the tests."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock(SIGNED_IN)
    monkeypatch.setattr("dashboard.deps.utcnow", found)
    monkeypatch.setattr("dashboard.routes.auth.utcnow", found)
    return found


@pytest.fixture
async def signed_in(client: httpx.AsyncClient, clock: Clock) -> httpx.AsyncClient:
    assert (await login(client, "operatore")).status_code == 303
    return client


async def last_seen(database: Database) -> datetime:
    async with database.transaction(read_only=True) as session:
        found = await session.scalar(select(StaffSession.last_seen_at))
    assert found is not None
    return found


async def page(client: httpx.AsyncClient, path: str = "/password") -> int:
    return (await client.get(path)).status_code


async def test_the_session_is_touched_once_a_minute_not_per_request(
    signed_in: httpx.AsyncClient, clock: Clock, database: Database
) -> None:
    touches = 0
    # Every 20 seconds for three minutes and a bit: 10 pages, 3 touches.
    for seconds in range(20, 201, 20):
        clock.now = SIGNED_IN + timedelta(seconds=seconds)
        response, statements = await statements_of(database, lambda: signed_in.get("/agenda"))
        assert response.status_code == 200
        touches += sum(1 for sql in statements if sql.startswith("UPDATE STAFF_SESSION"))
    assert touches == 3
    assert await last_seen(database) == SIGNED_IN + timedelta(seconds=180)


async def test_a_touch_is_due_a_full_minute_after_the_last(
    signed_in: httpx.AsyncClient, clock: Clock, database: Database
) -> None:
    clock.now = SIGNED_IN + TOUCH_INTERVAL - TICK
    assert await page(signed_in) == 200
    assert await last_seen(database) == SIGNED_IN
    clock.now = SIGNED_IN + TOUCH_INTERVAL
    assert await page(signed_in) == 200
    assert await last_seen(database) == SIGNED_IN + TOUCH_INTERVAL


async def test_idle_for_exactly_the_limit_is_accepted_and_a_moment_more_refused(
    signed_in: httpx.AsyncClient, clock: Clock, settings: Settings
) -> None:
    idle = timedelta(minutes=settings.session_idle_minutes)
    clock.now = SIGNED_IN + idle
    assert await page(signed_in) == 200  # and touched
    clock.now = SIGNED_IN + idle + idle + TICK
    assert await page(signed_in) == 303


async def test_an_unrecorded_use_does_not_extend_the_session(
    signed_in: httpx.AsyncClient, clock: Clock, settings: Settings
) -> None:
    """The one-minute granularity: a use less than a minute after the recorded one is not
    recorded, so the session lapses up to a minute before `idle` after the real last use."""
    idle = timedelta(minutes=settings.session_idle_minutes)
    clock.now = SIGNED_IN + TOUCH_INTERVAL - TICK
    assert await page(signed_in) == 200
    clock.now = SIGNED_IN + idle + TICK  # idle - 59.999999 s after the last use
    assert await page(signed_in) == 303


async def test_a_recorded_use_extends_the_session_by_the_whole_limit(
    signed_in: httpx.AsyncClient, clock: Clock, settings: Settings
) -> None:
    idle = timedelta(minutes=settings.session_idle_minutes)
    clock.now = SIGNED_IN + TOUCH_INTERVAL
    assert await page(signed_in) == 200
    clock.now = SIGNED_IN + TOUCH_INTERVAL + idle
    assert await page(signed_in) == 200
    clock.now = SIGNED_IN + TOUCH_INTERVAL + idle + idle + TICK
    assert await page(signed_in) == 303


async def test_a_get_with_a_fresh_touch_writes_nothing(
    signed_in: httpx.AsyncClient, clock: Clock, database: Database
) -> None:
    clock.now = SIGNED_IN + timedelta(seconds=30)
    for path in ("/password", "/agenda", "/cases"):
        response, statements = await statements_of(database, lambda path=path: signed_in.get(path))
        assert response.status_code == 200, path
        assert [sql for sql in statements if sql.startswith(WRITES)] == [], path


async def test_a_get_is_answered_while_another_connection_holds_the_write_lock(
    signed_in: httpx.AsyncClient, clock: Clock, database: Database
) -> None:
    """SQLite: another connection's `BEGIN IMMEDIATE`; PostgreSQL: a lock on the session
    table that lets reads through and holds every write. Before, the GET's own write (the
    touch, and on SQLite its `BEGIN IMMEDIATE`) waited for the lock's end."""
    clock.now = SIGNED_IN + timedelta(seconds=30)
    async with database.transaction() as holder:
        if database.is_sqlite:
            await holder.execute(text("SELECT 1"))  # its BEGIN IMMEDIATE takes the lock
        else:
            await holder.execute(text("LOCK TABLE staff_session IN EXCLUSIVE MODE"))
        async with asyncio.timeout(5):
            for path in ("/password", "/agenda", "/cases"):
                assert await page(signed_in, path) == 200, path
