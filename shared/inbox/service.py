"""Keep incoming updates, list those still to handle, forget the handled ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.citizens.models import ProcessedUpdate
from shared.db import upsert_insert
from shared.inbox.models import InboundUpdate


@dataclass(frozen=True)
class Received:
    update_id: int
    chat_id: int | None
    payload: dict[str, Any]


async def keep(*, session: AsyncSession, updates: Sequence[Received], now: datetime) -> set[int]:
    """Store the updates in the order given, in one statement; the ids not already kept."""
    if not updates:
        return set()
    kept = await session.scalars(
        upsert_insert(session, InboundUpdate)
        .values(
            [
                {
                    "update_id": u.update_id,
                    "chat_id": u.chat_id,
                    "payload": u.payload,
                    "received_at": now,
                }
                for u in updates
            ]
        )
        .on_conflict_do_nothing(index_elements=[InboundUpdate.update_id])
        .returning(InboundUpdate.update_id)
    )
    return set(kept)


async def pending(*, session: AsyncSession) -> list[InboundUpdate]:
    """The kept updates still to handle, in the order received.

    One whose turn committed (its id is in `processed_update`, written in the turn's
    transaction) but which the process died before forgetting is forgotten now.
    """
    await session.execute(
        delete(InboundUpdate).where(InboundUpdate.update_id.in_(select(ProcessedUpdate.update_id)))
    )
    found = await session.scalars(select(InboundUpdate).order_by(InboundUpdate.id))
    return list(found)


async def forget(*, session: AsyncSession, update_ids: Sequence[int]) -> int:
    """Delete handled updates; how many were still kept."""
    if not update_ids:
        return 0
    result = await session.execute(
        delete(InboundUpdate).where(InboundUpdate.update_id.in_(update_ids))
    )
    return int(getattr(result, "rowcount", 0) or 0)
