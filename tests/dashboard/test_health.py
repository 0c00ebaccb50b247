from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from dashboard.app import create_app
from shared import migrate
from shared.db import Database
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role
from tests.conftest import DatabaseFactory
from tests.disks import fill, read_only_file, small_disk


async def test_healthz_ok_with_database_up(database: Database, settings: Settings) -> None:
    app = create_app(settings=settings, database=database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_503_with_database_unreachable(settings: Settings) -> None:
    unreachable = Database("postgresql+asyncpg://nobody@127.0.0.1:9/nowhere")
    app = create_app(settings=settings, database=unreachable)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            response = await c.get("/healthz")
    finally:
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


# --- "writable": a database that answers reads but saves nothing is not healthy --------

PASSWORD = "correct horse battery staple"


async def healthz(database: Database, settings: Settings) -> httpx.Response:
    app = create_app(settings=settings, database=database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get("/healthz")


async def save_a_staff_user(database: Database) -> None:
    """What signing in and every other change needs: a committed write."""
    async with database.transaction() as session:
        await staff.add_user(session=session, username="anna", password=PASSWORD, role=Role.ADMIN)


async def migrated_file(path: Path) -> Path:
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()
    return path


@pytest.mark.sqlite_only
@pytest.mark.parametrize("how", ["read-only file", "mode=ro", "query_only"])
async def test_healthz_503_with_a_read_only_sqlite_file(
    tmp_path: Path, settings: Settings, how: str
) -> None:
    path = await migrated_file(tmp_path / "rw" / "ripartire.db")
    with ExitStack() as stack:
        if how == "mode=ro":
            url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
        else:
            if how == "read-only file":
                stack.enter_context(read_only_file(path))
            url = f"sqlite+aiosqlite:///{path}"
        database = Database(url)
        if how == "query_only":

            @event.listens_for(database.engine.sync_engine, "connect")
            def _query_only(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.cursor().execute("PRAGMA query_only = ON")

        try:
            assert await database.ping()  # reads work: why the old check said 200
            with pytest.raises(OperationalError, match="readonly"):
                await save_a_staff_user(database)
            response = await healthz(database, settings)
        finally:
            await database.dispose()
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "not writable"}


@pytest.mark.sqlite_only
async def test_healthz_503_with_the_sqlite_disk_full(tmp_path: Path, settings: Settings) -> None:
    with small_disk(tmp_path / "disk", size="4m") as disk:
        database = Database(f"sqlite+aiosqlite:///{disk / 'ripartire.db'}")
        try:
            await migrate.upgrade(database)
            assert (await healthz(database, settings)).status_code == 200
            fill(disk)
            with pytest.raises(OperationalError, match="full"):
                await save_a_staff_user(database)
            response = await healthz(database, settings)
        finally:
            await database.dispose()
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "not writable"}


@pytest.mark.postgres_only
async def test_healthz_503_with_postgresql_read_only(
    database_factory: DatabaseFactory, settings: Settings
) -> None:
    url = await database_factory.create()
    setup = Database(url)
    try:
        await migrate.upgrade(setup)
        async with setup.engine.begin() as connection:
            name = make_url(url).database
            await connection.execute(
                text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            )
    finally:
        await setup.dispose()
    database = Database(url)  # new connections take the database's setting
    try:
        assert await database.ping()
        with pytest.raises(DBAPIError, match="read-only transaction"):
            await save_a_staff_user(database)
        response = await healthz(database, settings)
    finally:
        await database.dispose()
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "not writable"}
