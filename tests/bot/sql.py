"""Counting the SQL statements an update sends (SQLite's BEGIN left out)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from shared.db import Database


@contextmanager
def counting(database: Database) -> Iterator[list[str]]:
    """The statements sent inside the block, whitespace folded."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        folded = re.sub(r"\s+", " ", statement).strip()
        if not folded.upper().startswith("BEGIN"):
            seen.append(folded)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
