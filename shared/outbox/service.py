"""Queue messages for citizens; the bot claims and delivers them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.outbox.models import MessageState, OutboxMessage


async def enqueue(
    *,
    session: AsyncSession,
    kind: str,
    citizen_id: int,
    due_at: datetime,
    idempotency_key: str,
    payload: dict[str, Any] | None = None,
    subject: str | None = None,
) -> OutboxMessage | None:
    """Queue one message; returns None when a message with this key was already queued."""
    existing = await session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return None
    message = OutboxMessage(
        kind=kind,
        citizen_id=citizen_id,
        payload=payload or {},
        idempotency_key=idempotency_key,
        subject=subject,
        due_at=due_at,
        state=MessageState.PENDING.value,
    )
    session.add(message)
    await session.flush()
    return message


async def cancel_pending(*, session: AsyncSession, subject: str) -> int:
    """Withdraw the unsent messages about `subject` (e.g. reminders of a cancelled booking)."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.subject == subject, OutboxMessage.state == MessageState.PENDING.value)
        .values(state=MessageState.CANCELLED.value)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
