"""Record audit events inside the caller's transaction, chained (`shared.audit.chain`).

Events name people and things by id (`citizen:12`, object "booking" 34); their details
hold codes, ids, counts and dates, never names, contacts, answers, booking codes or text
someone typed: the log outlives an erasure (SPEC J8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm import attributes as orm_attributes

from shared.audit import chain, hashing
from shared.audit.models import AuditCheckpoint, AuditEvent
from shared.db import is_postgresql, utcnow

# Built once, on the table: a Core INSERT costs a fraction of an ORM flush (or of an
# ORM-enabled insert), and an event is written on every case read.
_EVENTS = AuditEvent.metadata.tables[AuditEvent.__tablename__]
_INSERT = insert(_EVENTS)
# The one way past PostgreSQL's append-only trigger (migration 0021): this setting, local
# to the transaction, with a checkpoint covering the rows deleted.
_PRUNING = "ripartire.audit_prune"


@dataclass(frozen=True, slots=True)
class Event:
    """One event for `record_many`; the fields are `record`'s."""

    actor: str
    action: str
    object_type: str
    object_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _row(event: Event, at: datetime) -> dict[str, Any]:
    return {
        "at": at,
        "actor": event.actor[:80],
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "details": hashing.plain_details(event.details),
    }


async def record(
    *,
    session: AsyncSession,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one event; it commits or rolls back with the change it describes."""
    await record_many(
        session=session, events=[Event(actor, action, object_type, object_id, details or {})]
    )


async def record_many(*, session: AsyncSession, events: Sequence[Event]) -> None:
    """Append several events in one INSERT, in their order (e.g. a booking's and its case's)."""
    if not events:
        return
    at = utcnow()
    rows = list(hashing.link((_row(e, at) for e in events), await chain.head(session)))
    # One multi-row VALUES, not an executemany: one statement on both databases, and the
    # ids handed out in the rows' order, the chain's.
    if len(rows) == 1:
        await session.execute(_INSERT, rows[0])
    else:
        await session.execute(_INSERT.values(rows))


@event.listens_for(Session, "before_flush")
def _chain_added_events(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    """Events added to a session as objects (tests, loaders) are chained like the others,
    in the order they were added: the order the flush inserts them in."""
    added = [o for o in session.new if isinstance(o, AuditEvent)]
    if not added:
        return
    added.sort(key=lambda o: orm_attributes.instance_state(o).insert_order or 0)
    at = utcnow()
    prev_hash = chain.head_in_flush(session)
    for added_event in added:
        added_event.at = added_event.at or at
        added_event.actor = added_event.actor[:80]
        added_event.details = hashing.plain_details(added_event.details)
        row = {f: getattr(added_event, f) for f in hashing.FIELDS}
        added_event.prev_hash = prev_hash
        added_event.row_hash = prev_hash = hashing.content_hash(row, prev_hash)


# --- pruning (retention) -----------------------------------------------------------------


async def count_prunable(*, session: AsyncSession, before: datetime) -> int:
    """How many events `prune_before` would delete now (retention's dry run)."""
    found = await _prunable_end(session, before)
    if found is None:
        return 0
    return await session.scalar(select(func.count()).where(_EVENTS.c.id <= found[0])) or 0


async def _prunable_end(session: AsyncSession, before: datetime) -> tuple[int, str] | None:
    """The id and hash of the last event of the prefix recorded before `before`, if any."""
    events = _EVENTS
    first_kept = await session.scalar(select(func.min(events.c.id)).where(events.c.at >= before))
    last = select(events.c.id, events.c.row_hash).order_by(events.c.id.desc()).limit(1)
    if first_kept is not None:
        last = last.where(events.c.id < first_kept)
    found = (await session.execute(last)).first()
    return None if found is None else (found[0], found[1])


@dataclass(frozen=True, slots=True)
class Pruned:
    checkpoint_id: int
    through_id: int
    pruned: int


async def prune_before(
    *, session: AsyncSession, before: datetime, actor: str, now: datetime | None = None
) -> Pruned | None:
    """Delete the events recorded before `before` and keep the rest verifiable (retention).

    The only deletion the log allows: a checkpoint row keeps the last pruned event's hash
    (the first event kept links to it) and the counts, and an `audit.prune` event, chained
    like any other, says who pruned what; the append-only triggers let a row go only when
    a checkpoint covers it (and, on PostgreSQL, only while this function's setting is on).
    The events pruned are a prefix by id: none recorded at or after `before` goes.
    Returns None when nothing is that old.
    """
    now = now or utcnow()
    await chain.head(session)  # the chain's lock: no event is appended meanwhile
    events = _EVENTS
    found = await _prunable_end(session, before)
    if found is None:
        return None
    through_id, last_hash = found
    count = await session.scalar(select(func.count()).where(events.c.id <= through_id)) or 0
    earlier = await session.scalar(
        select(AuditCheckpoint.total).order_by(AuditCheckpoint.id.desc()).limit(1)
    )
    checkpoint = AuditCheckpoint(
        at=now, actor=actor[:80], before=before, through_id=through_id, pruned=count,
        total=(earlier or 0) + count, last_hash=last_hash,
    )  # fmt: skip
    session.add(checkpoint)
    await session.flush()
    await record(
        session=session, actor=actor, action="audit.prune", object_type="audit_checkpoint",
        object_id=str(checkpoint.id),
        details={"before": before.isoformat(), "through_id": through_id, "pruned": count,
                 "last_hash": last_hash},
    )  # fmt: skip
    if is_postgresql(session):
        await session.execute(text("SELECT set_config(:name, 'on', true)"), {"name": _PRUNING})
    await session.execute(delete(events).where(events.c.id <= through_id))
    if is_postgresql(session):
        await session.execute(text("SELECT set_config(:name, 'off', true)"), {"name": _PRUNING})
    return Pruned(checkpoint.id, through_id, count)
