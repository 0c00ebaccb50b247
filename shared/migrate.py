"""Alembic driven from Python: the migrations live in `shared/migrations`."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from shared.db import Database
from shared.schema import metadata

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to `revision` (the newest by default)."""
    async with database.engine.begin() as connection:
        await connection.run_sync(lambda c: command.upgrade(alembic_config(c), revision))


async def downgrade(database: Database, revision: str) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c), revision))


async def current_revision(database: Database) -> str | None:
    async with database.engine.connect() as connection:
        return await connection.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision()
        )


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@cache
def code_head() -> str | None:
    """The head of the migrations this process was installed with (read once: ~30 ms)."""
    return head_revision()


async def schema_differences(database: Database) -> list[Any]:
    """What autogenerate would write: empty when the models match the migrations."""
    async with database.engine.connect() as connection:
        return await connection.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), metadata
            )
        )


async def new_revision(database: Database, message: str) -> None:
    """Write a new migration from the difference between the models and `database`."""
    async with database.engine.begin() as connection:
        await connection.run_sync(
            lambda c: command.revision(alembic_config(c), message=message, autogenerate=True)
        )
