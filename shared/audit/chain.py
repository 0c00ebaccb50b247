"""The audit log's hash chain: each event holds the hash of the one before it.

Each event's `row_hash` covers its content and `prev_hash` (`shared.audit.hashing`). The
first event links to zeros, or, once the start of the log has been pruned, to the last
pruned event's hash, which the latest checkpoint keeps. Editing an event changes its
hash; deleting or reordering events breaks a link: `verify` reports the first event that
doesn't hold.

What it doesn't show: whoever can write the table and knows this scheme can rebuild the
whole chain, and removing events from the end leaves a shorter chain that holds. The
hash of the last event (`Verdict.head`) noted somewhere else (a ticket, an e-mail) makes
both visible at the next verify.

Appending is serialised so that two writers never chain onto the same event: SQLite's
write transactions already take the database's lock up front (`BEGIN IMMEDIATE`,
`shared.db`); PostgreSQL takes a transaction-level advisory lock before reading the last
event, held until the transaction ends. A unique index on `prev_hash` refuses a fork
anyway. The price on PostgreSQL: from its first event to its commit, a transaction keeps
every other writer of events waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from shared.audit.hashing import FIELDS, GENESIS, content_hash
from shared.audit.models import AuditCheckpoint, AuditEvent

# The action of the event a prune writes (its checkpoint is the event's object; the
# service writes it as a literal, for the phrases' test).
PRUNE_ACTION = "audit.prune"
# PostgreSQL's advisory lock of the chain's end: b"ripaudit" as a bigint.
LOCK_KEY = int.from_bytes(b"ripaudit", "big")
_LOCK = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=LOCK_KEY)
_EVENTS = AuditEvent.metadata.tables[AuditEvent.__tablename__]
# The hash to link to in one statement: the last event's, or with none left (a new log,
# or all pruned) the last checkpoint's.
_HEAD = select(
    func.coalesce(
        select(_EVENTS.c.row_hash).order_by(_EVENTS.c.id.desc()).limit(1).scalar_subquery(),
        select(AuditCheckpoint.last_hash)
        .order_by(AuditCheckpoint.id.desc())
        .limit(1)
        .scalar_subquery(),
    )
)


async def head(session: AsyncSession) -> str:
    """Lock the end of the chain for this transaction and return the hash to link to."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_LOCK)
    found: str | None = await session.scalar(_HEAD)
    return found or GENESIS


def head_in_flush(session: Session) -> str:
    """`head` for a flush that inserts events added to the session (sync: inside it)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK)
    found: str | None = session.scalar(_HEAD)
    return found or GENESIS


# --- verification ------------------------------------------------------------------------


class Break(StrEnum):
    """Why an event doesn't hold."""

    # Its content isn't what its hash says: the event was changed.
    EDITED = "edited"
    # It doesn't link to the event before it: one was deleted, added or moved in between.
    UNLINKED = "unlinked"
    # It is older than the checkpoint, which says it was pruned.
    PRUNED = "pruned"
    # The latest checkpoint has no prune event of its own in the chain.
    CHECKPOINT = "checkpoint"


@dataclass(frozen=True, slots=True)
class Verdict:
    # Events checked (those after the checkpoint).
    events: int
    # The hash of the last event checked: note it to notice a shortened log later.
    head: str
    checkpoint: AuditCheckpoint | None = None
    # The first event that doesn't hold (the checkpoint's id for a CHECKPOINT break).
    broken_at: int | None = None
    reason: Break | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


_BATCH = 1000


async def verify(session: AsyncSession) -> Verdict:
    """Walk the chain from the latest checkpoint (or the start) to the last event."""
    checkpoint = await session.scalar(
        select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
    )
    expected = checkpoint.last_hash if checkpoint is not None else GENESIS
    through = checkpoint.through_id if checkpoint is not None else 0
    prune_seen = checkpoint is None
    count = 0
    columns = [_EVENTS.c.id, *(_EVENTS.c[f] for f in FIELDS), _EVENTS.c.prev_hash]
    query = select(*columns, _EVENTS.c.row_hash).order_by(_EVENTS.c.id)
    # One statement, streamed: one snapshot of the log, however long it is.
    result = await session.stream(query.execution_options(yield_per=_BATCH))
    async for row in result.mappings():
        if row["id"] <= through:
            return Verdict(count, expected, checkpoint, row["id"], Break.PRUNED)
        if row["prev_hash"] != expected:
            return Verdict(count, expected, checkpoint, row["id"], Break.UNLINKED)
        if content_hash(row, expected) != row["row_hash"]:
            return Verdict(count, expected, checkpoint, row["id"], Break.EDITED)
        if not prune_seen and _proves(row, checkpoint):
            prune_seen = True
        expected = row["row_hash"]
        count += 1
    if not prune_seen:
        assert checkpoint is not None
        return Verdict(count, expected, checkpoint, checkpoint.id, Break.CHECKPOINT)
    return Verdict(count, expected, checkpoint)


def _proves(row: Mapping[Any, Any], checkpoint: AuditCheckpoint | None) -> bool:
    """The row is the prune event that wrote `checkpoint`."""
    if checkpoint is None or row["action"] != PRUNE_ACTION:
        return False
    details = row["details"] or {}
    return row["object_id"] == str(checkpoint.id) and details.get("last_hash") == (
        checkpoint.last_hash
    )
