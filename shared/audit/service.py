"""Record audit events inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.db import utcnow

# Built once, on the table: a Core INSERT costs a fraction of an ORM flush (or of an
# ORM-enabled insert), and an event is written on every case read.
_INSERT = insert(AuditEvent.metadata.tables[AuditEvent.__tablename__])


@dataclass(frozen=True, slots=True)
class Event:
    """One event for `record_many`; the fields are `record`'s."""

    actor: str
    action: str
    object_type: str
    object_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _row(event: Event, at: Any) -> dict[str, Any]:
    return {
        "at": at,
        "actor": event.actor[:80],
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "details": event.details,
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
    event = Event(actor, action, object_type, object_id, details or {})
    await session.execute(_INSERT, _row(event, utcnow()))


async def record_many(*, session: AsyncSession, events: Sequence[Event]) -> None:
    """Append several events in one INSERT, in their order (e.g. a booking's and its case's)."""
    if not events:
        return
    at = utcnow()
    # One multi-row VALUES, not an executemany: one statement on both databases.
    await session.execute(_INSERT.values([_row(event, at) for event in events]))
