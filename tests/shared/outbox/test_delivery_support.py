"""Outbox helpers the bot's dispatcher needs beyond the queue itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from shared.db import Database
from shared.outbox import service as outbox
from shared.outbox.models import MessageState, OutboxMessage
from tests.shared.outbox.test_service import claim_one, make_citizen, queue

T0 = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


async def _message(database: Database, message_id: int) -> OutboxMessage:
    async with database.transaction(read_only=True) as session:
        found = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
        assert found is not None
        return found


async def test_withdrawn_message_is_cancelled_with_its_reason_and_released(
    database: Database,
) -> None:
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        message = await queue(session, citizen, "booking:1:reminder", subject="booking:1")
        await claim_one(session, "w1", T0)

    async with database.transaction() as session:
        assert await outbox.mark_withdrawn(
            session=session,
            message_id=message.id,
            worker="w1",
            now=T0,
            reason="booking 1 is cancelled_by_citizen",
        )

    withdrawn = await _message(database, message.id)
    assert withdrawn.state == MessageState.CANCELLED
    assert withdrawn.last_error == "booking 1 is cancelled_by_citizen"
    assert withdrawn.attempts == 0  # nothing went wrong with the delivery
    assert (withdrawn.claimed_by, withdrawn.claimed_until, withdrawn.sent_at) == (None, None, None)
    # Cancelled is final: it is never claimed again, and doesn't count as due.
    async with database.transaction() as session:
        later = T0 + timedelta(hours=1)
        assert await outbox.claim_due(session=session, worker="w2", now=later) == []
        assert await outbox.next_due_at(session=session, now=later) is None


async def test_only_the_worker_holding_the_claim_can_withdraw(database: Database) -> None:
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        message = await queue(session, citizen, "a")
        await claim_one(session, "w1", T0)

    async with database.transaction() as session:
        assert not await outbox.mark_withdrawn(
            session=session, message_id=message.id, worker="w2", now=T0, reason="x"
        )
    # w1's lease lapsed and w2 took over: w1 can no longer withdraw it, w2 sends it.
    later = T0 + timedelta(minutes=3)
    async with database.transaction() as session:
        await claim_one(session, "w2", later)
        assert not await outbox.mark_withdrawn(
            session=session, message_id=message.id, worker="w1", now=later, reason="x"
        )
        assert await outbox.mark_sent(
            session=session, message_id=message.id, worker="w2", now=later
        )
    async with database.transaction() as session:
        assert not await outbox.mark_withdrawn(
            session=session, message_id=message.id, worker="w2", now=later, reason="x"
        )
    assert (await _message(database, message.id)).state == MessageState.SENT


async def test_a_pending_message_is_not_withdrawn_by_the_claimed_variant(
    database: Database,
) -> None:
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        message = await queue(session, citizen, "a")
        assert not await outbox.mark_withdrawn(
            session=session, message_id=message.id, worker="w1", now=T0, reason="x"
        )
    assert (await _message(database, message.id)).state == MessageState.PENDING
