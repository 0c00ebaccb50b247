"""Changing the audit log behind its triggers' back, as someone with the database's own
rights could: what `audit verify` must notice."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text

from shared.db import Database


async def tamper(database: Database, statements: Sequence[str]) -> None:
    """Run `statements` on the audit log with its triggers out of the way, as someone with
    the database's own rights could."""
    async with database.transaction() as session:
        if database.is_sqlite:
            triggers = (
                await session.execute(
                    text(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                        "AND tbl_name = 'audit_event'"
                    )
                )
            ).all()
            for name, _sql in triggers:
                await session.execute(text(f"DROP TRIGGER {name}"))
            for statement in statements:
                await session.execute(text(statement))
            for _name, sql in triggers:
                await session.execute(text(sql))
        else:
            await session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
            for statement in statements:
                await session.execute(text(statement))
            await session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
