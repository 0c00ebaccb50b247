"""`GET /readyz`: ready when the database answers and its migrations are the code's head."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from alembic.script import ScriptDirectory

from dashboard.app import create_app
from shared import migrate
from shared.db import Database
from shared.settings import Settings
from tests.conftest import DatabaseFactory


async def readyz(database: Database, settings: Settings) -> httpx.Response:
    app = create_app(settings=settings, database=database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get("/readyz")


@pytest.fixture
async def fresh(database_factory: DatabaseFactory) -> AsyncIterator[Database]:
    database = Database(await database_factory.create())
    try:
        yield database
    finally:
        await database.dispose()


async def test_ready_with_the_migrations_at_head(database: Database, settings: Settings) -> None:
    response = await readyz(database, settings)
    assert response.status_code == 200
    head = migrate.head_revision()
    assert head is not None
    assert response.json() == {"status": "ok", "database": "ok", "migrations": head}


async def test_not_ready_one_migration_behind(fresh: Database, settings: Settings) -> None:
    head = migrate.head_revision()
    assert head is not None
    behind = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(head).down_revision
    assert isinstance(behind, str)
    await migrate.upgrade(fresh, behind)
    response = await readyz(fresh, settings)
    assert response.status_code == 503
    assert response.json() == {
        "status": "error", "reason": "migrations not at head", "revision": behind, "head": head,
    }  # fmt: skip
    # `/healthz` says alive all the same: the database answers and takes writes.
    app = create_app(settings=settings, database=fresh)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/healthz")).status_code == 200
    await migrate.upgrade(fresh)
    assert (await readyz(fresh, settings)).status_code == 200


async def test_not_ready_on_a_database_never_migrated(fresh: Database, settings: Settings) -> None:
    response = await readyz(fresh, settings)
    assert response.status_code == 503
    assert response.json() == {
        "status": "error", "reason": "migrations not at head", "revision": None,
        "head": migrate.head_revision(),
    }  # fmt: skip


async def test_not_ready_with_the_database_unreachable(settings: Settings) -> None:
    unreachable = Database("postgresql+asyncpg://nobody@127.0.0.1:9/nowhere")
    try:
        response = await readyz(unreachable, settings)
    finally:
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.json() == {"status": "error", "reason": "database unreachable"}
