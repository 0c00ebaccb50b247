"""Record audit events inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.db import utcnow

# Built once, on the table: a Core INSERT costs a fraction of an ORM flush (or of an
# ORM-enabled insert), and an event is written on every case read.
_INSERT = insert(AuditEvent.metadata.tables[AuditEvent.__tablename__])


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
    await session.execute(
        _INSERT,
        {
            "at": utcnow(),
            "actor": actor[:80],
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "details": details or {},
        },
    )
