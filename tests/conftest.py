"""Test fixtures: one migrated database per run, on SQLite or PostgreSQL.

`RIPARTIRE_TEST_DATABASE=postgresql` runs the suite on a fresh PostgreSQL database
created for the run and dropped after it. A missing PostgreSQL (or browser) skips its
tests on a developer machine but fails the run under `CI=true`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from shared import crypto, migrate
from shared.db import Database
from shared.schema import metadata
from shared.settings import Settings

BACKEND = os.environ.get("RIPARTIRE_TEST_DATABASE", "sqlite")
# The statements a transaction that records audit events spends on the end of the audit
# chain (shared.audit.chain): one reads it, and on PostgreSQL one more takes the lock that
# keeps two writers off the same end. For the statement budgets' tests.
AUDIT_CHAIN_HEAD = 2 if BACKEND == "postgresql" else 1
IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "RIPARTIRE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)

# The run's key of the encrypted columns (shared.crypto), as RIPARTIRE_DATA_KEY would give.
DATA_KEY = Fernet.generate_key().decode()

if BACKEND not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"RIPARTIRE_TEST_DATABASE must be sqlite or postgresql, not {BACKEND}")


def missing_component(reason: str) -> None:
    """Skip on a developer machine; fail under CI, where every suite must really run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing component is a failure, not a skip)")
    pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (not skip) the tests that belong to the other backend's run."""
    other = "sqlite_only" if BACKEND == "postgresql" else "postgres_only"
    deselected = [item for item in items if other in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if other not in item.keywords]


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_connection() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        missing_component(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
        raise


class DatabaseFactory:
    """Creates empty databases of the backend under test and removes them at the end."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._postgres: list[str] = []

    async def create(self) -> str:
        name = f"ripartire_test_{secrets.token_hex(6)}"
        if BACKEND == "sqlite":
            return f"sqlite+aiosqlite:///{self._tmp / name}.db"
        admin = await _admin_connection()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self._postgres.append(name)
        return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        if not self._postgres:
            return
        admin = await _admin_connection()
        try:
            for name in self._postgres:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
async def database_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    await factory.drop_all()


@pytest.fixture(scope="session")
async def migrated_database(database_factory: DatabaseFactory) -> AsyncIterator[Database]:
    database = Database(await database_factory.create(), cipher=crypto.DataCipher([DATA_KEY]))
    await migrate.upgrade(database)
    yield database
    await database.dispose()


# The append-only tables: their SQLite triggers are dropped and restored around a wipe.
_APPEND_ONLY = text(
    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
    "AND tbl_name IN ('audit_event', 'audit_checkpoint')"
)


async def _empty_tables(database: Database) -> None:
    tables = [t.name for t in metadata.sorted_tables]
    async with database.transaction() as session:
        if database.is_sqlite:
            triggers = (await session.execute(_APPEND_ONLY)).all()
            for name, _sql in triggers:
                await session.execute(text(f'DROP TRIGGER "{name}"'))
            for table in reversed(tables):
                await session.execute(text(f'DELETE FROM "{table}"'))
            for _name, sql in triggers:
                await session.execute(text(sql))
        else:
            # TRUNCATE does not fire row-level DELETE triggers.
            names = ", ".join(f'"{t}"' for t in tables)
            await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def database(migrated_database: Database) -> AsyncIterator[Database]:
    """The run's migrated database, emptied before each test."""
    await _empty_tables(migrated_database)
    return migrated_database


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    """A unit of work committed at the end of the test (like a request's)."""
    async with database.transaction() as session:
        yield session


@pytest.fixture
def settings(database: Database) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url=database.url, secret_key="x" * 40, data_key=DATA_KEY, _env_file=None
    )


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RIPARTIRE_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RIPARTIRE_"):
            monkeypatch.delenv(name)
    return
