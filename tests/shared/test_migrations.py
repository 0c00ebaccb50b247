from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from shared import migrate
from shared.audit import service as audit
from shared.db import Database
from shared.schema import metadata
from tests.conftest import DatabaseFactory


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_from_empty_and_downgrade_back(database_factory: DatabaseFactory) -> None:
    database = Database(await database_factory.create())
    try:
        assert await _tables(database) == set()
        await migrate.upgrade(database)
        assert await migrate.current_revision(database) == migrate.head_revision()
        assert {t.name for t in metadata.sorted_tables} <= await _tables(database)
        await migrate.downgrade(database, "base")
        assert await _tables(database) <= {"alembic_version"}
        # and up again, so downgrades leave nothing behind that blocks a new upgrade
        await migrate.upgrade(database)
        assert await migrate.current_revision(database) == migrate.head_revision()
    finally:
        await database.dispose()


async def test_models_match_migrations(migrated_database: Database) -> None:
    assert await migrate.schema_differences(migrated_database) == []


async def test_audit_log_is_append_only(database: Database) -> None:
    async with database.transaction() as session:
        await audit.record(session=session, actor="test", action="x", object_type="y")
    for statement in ("UPDATE audit_event SET actor = 'forger'", "DELETE FROM audit_event"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.transaction() as session:
                await session.execute(text(statement))


@pytest.mark.sqlite_only
async def test_sqlite_is_configured_for_a_server(database: Database) -> None:
    async with database.transaction(read_only=True) as session:
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await session.execute(text("PRAGMA busy_timeout"))).scalar() == 30_000


@pytest.mark.postgres_only
async def test_postgresql_plans_each_prepared_statement_for_its_values(database: Database) -> None:
    """No generic plan after five runs: a statement's best plan depends on its values (the
    bookings from today or of the whole history), docs/benchmarks.md "Bookings board"."""
    probe = text("SELECT count(*) FROM booking WHERE starts_at >= :since")
    async with database.transaction(read_only=True) as session:
        for day in range(1, 11):
            await session.execute(probe, {"since": datetime(2026, 1, day, tzinfo=UTC)})
        generic, custom = (
            await session.execute(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE statement LIKE 'SELECT count(*) FROM booking WHERE starts_at%'"
                )
            )
        ).one()
    assert (generic, custom) == (0, 10)
