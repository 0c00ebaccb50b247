"""Record audit events inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.db import utcnow


async def record(
    *,
    session: AsyncSession,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event; it commits or rolls back with the change it describes."""
    event = AuditEvent(
        at=utcnow(),
        actor=actor[:80],
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=details or {},
    )
    session.add(event)
    await session.flush()
    return event
