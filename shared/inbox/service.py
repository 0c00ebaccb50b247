"""Keep incoming updates and the replies of handled ones; list what is still to do after a
restart; forget what is done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.citizens.models import ProcessedUpdate
from shared.db import upsert_insert
from shared.inbox.models import InboundUpdate, OutboundReply


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


async def keep_replies(
    *,
    session: AsyncSession,
    update_id: int,
    chat_id: int,
    message_id: int | None,
    query_id: str | None,
    replies: list[dict[str, Any]],
    now: datetime,
) -> None:
    """Keep the replies of an update, in its transaction, until they are sent."""
    await session.execute(
        insert(OutboundReply).values(
            update_id=update_id,
            chat_id=chat_id,
            message_id=message_id,
            query_id=query_id,
            replies=replies,
            created_at=now,
        )
    )


async def unsent_replies(*, session: AsyncSession) -> list[OutboundReply]:
    """The replies kept and not yet sent (or not known to be), in the order received."""
    found = await session.scalars(select(OutboundReply).order_by(OutboundReply.update_id))
    return list(found)


async def forget(*, session: AsyncSession, update_ids: Sequence[int]) -> None:
    """Delete updates handled to the end, and their replies (sent)."""
    if not update_ids:
        return
    await session.execute(delete(InboundUpdate).where(InboundUpdate.update_id.in_(update_ids)))
    await session.execute(delete(OutboundReply).where(OutboundReply.update_id.in_(update_ids)))
