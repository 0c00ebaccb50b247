"""Queue messages for citizens; the bot claims and delivers them.

Delivery is at-least-once: a worker claims due messages for a lease, sends them, then
reports the outcome. A worker that dies mid-send gives its messages back when the lease
lapses, so a citizen may (rarely) receive a message twice but never loses one. A lapsed
lease counts as an attempt: a message that brings its sender down every time is given
up after `MAX_ATTEMPTS`, like one that fails every time, instead of being taken again
forever.

Every outcome is a guarded UPDATE: it applies only while the message is still `sending`
and claimed by the reporting worker, so a worker whose lease was taken over can't
overwrite the new owner's result.

A citizen's messages go out in order, by due time then id: a message is claimed only
with every earlier live message of its citizen (in the same batch, or already gone). One
that is being sent, or waits to be tried again after a refusal, holds back the
citizen's later ones, and only theirs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, case, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shared.audit import service as audit
from shared.citizens.models import Citizen
from shared.db import is_postgresql, upsert_insert
from shared.outbox.models import MessageState, OutboxMessage

# The last failure gives up: a message is tried at most this many times.
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
BACKOFF_JITTER = 0.10
ERROR_MAX_CHARS = 500

_LIVE_STATES = (MessageState.PENDING.value, MessageState.SENDING.value)
SENDER_STOPPED = "the sender stopped during delivery (its lease lapsed) too many times"


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
    """Queue one message; None if this key was already queued or the citizen is unreachable."""
    if await _unreachable(session, citizen_id):
        return None
    new = NewMessage(kind, due_at, idempotency_key, payload or {}, subject)
    return await session.scalar(_insert(session, citizen_id, [new]).returning(OutboxMessage))


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message for `enqueue_all`; the fields are `enqueue`'s."""

    kind: str
    due_at: datetime
    idempotency_key: str
    payload: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None


async def enqueue_all(
    *,
    session: AsyncSession,
    citizen_id: int,
    messages: Sequence[NewMessage],
    unreachable: bool | None = None,
) -> int:
    """Queue several messages for one citizen, as `enqueue` would each; how many were new.

    Two statements whatever their number: the citizen's reachability, one INSERT.
    `unreachable`: the citizen's flag as the caller read it in this transaction (then
    only the INSERT); None reads it.
    """
    if not messages:
        return 0
    if unreachable is None:
        unreachable = await _unreachable(session, citizen_id)
    if unreachable:
        return 0
    inserted = await session.scalars(
        _insert(session, citizen_id, messages).returning(OutboxMessage.id)
    )
    return len(inserted.all())


async def _unreachable(session: AsyncSession, citizen_id: int) -> bool:
    return bool(await session.scalar(select(Citizen.unreachable).where(Citizen.id == citizen_id)))


def _insert(
    session: AsyncSession, citizen_id: int, messages: Sequence[NewMessage]
) -> postgresql.Insert | sqlite.Insert:
    # ON CONFLICT DO NOTHING rather than check-then-insert: on PostgreSQL two transactions
    # queueing the same key would otherwise both pass the check, and the loser's
    # IntegrityError would abort the caller's whole unit of work (e.g. the booking).
    rows = [
        {
            "kind": m.kind,
            "citizen_id": citizen_id,
            "payload": m.payload,
            "idempotency_key": m.idempotency_key,
            "subject": m.subject,
            "due_at": m.due_at,
            "state": MessageState.PENDING.value,
        }
        for m in messages
    ]
    return (
        upsert_insert(session, OutboxMessage)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[OutboxMessage.idempotency_key])
    )


async def cancel_pending(*, session: AsyncSession, subject: str) -> int:
    """Withdraw the unsent messages about `subject` (e.g. reminders of a cancelled booking)."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.subject == subject, OutboxMessage.state == MessageState.PENDING.value)
        .values(state=MessageState.CANCELLED.value),
        execution_options={"synchronize_session": "fetch"},
    )
    return _rowcount(result)


def _ready(message: type[OutboxMessage], now: datetime) -> ColumnElement[bool]:
    """The message itself may be sent now: due and not waiting for a retry, or its
    sender died (the lease lapsed)."""
    return and_(
        message.due_at <= now,
        or_(
            and_(
                message.state == MessageState.PENDING.value,
                or_(message.retry_at.is_(None), message.retry_at <= now),
            ),
            and_(message.state == MessageState.SENDING.value, message.claimed_until < now),
        ),
    )


def _held(now: datetime) -> ColumnElement[bool]:
    """An earlier live message of the same citizen can't go now (it is being sent, or
    waits for a retry): this one waits for it."""
    earlier = aliased(OutboxMessage)
    return exists().where(
        earlier.citizen_id == OutboxMessage.citizen_id,
        earlier.state.in_(_LIVE_STATES),
        or_(
            earlier.due_at < OutboxMessage.due_at,
            and_(earlier.due_at == OutboxMessage.due_at, earlier.id < OutboxMessage.id),
        ),
        ~_ready(earlier, now),
    )


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(_ready(OutboxMessage, now), ~_held(now))


async def claim_due(
    *,
    session: AsyncSession,
    worker: str,
    now: datetime,
    limit: int = 20,
    lease: timedelta = timedelta(minutes=2),
) -> list[OutboxMessage]:
    """Take up to `limit` due messages for `worker` to send, oldest first, for one lease.

    A citizen's messages come in their order, and only while no earlier one of theirs is
    being sent or waiting for a retry (see the module docstring).
    """
    if limit < 1:
        return []
    if lease <= timedelta(0):
        raise ValueError("the lease must be positive")
    # The previous claimer died mid-send: its lease has lapsed.
    lapsed = and_(
        OutboxMessage.state == MessageState.SENDING.value, OutboxMessage.claimed_until < now
    )
    await session.execute(
        update(OutboxMessage)
        .where(lapsed, OutboxMessage.attempts >= MAX_ATTEMPTS - 1)
        .values(
            state=MessageState.FAILED.value,
            attempts=OutboxMessage.attempts + 1,
            claimed_by=None,
            claimed_until=None,
            last_error=SENDER_STOPPED,
        ),
        execution_options={"synchronize_session": False},
    )
    claimable = _claimable(now)
    candidates = (
        select(OutboxMessage.id)
        .where(claimable)
        .order_by(OutboxMessage.due_at, OutboxMessage.id)
        .limit(limit)
    )
    if is_postgresql(session):
        # Two claims at once can't see each other's uncommitted claims: each would take a
        # citizen's next message while the other sends the one before it. So a claim first
        # locks the citizens it will serve (those with a message to claim, the longest
        # waiting first), skipping those another claim holds, then picks their messages in
        # a new statement, which (READ COMMITTED) sees every claim committed before the
        # lock was granted. NO KEY UPDATE: queueing a message (a foreign key to the
        # citizen) doesn't wait for it.
        first_due = (
            select(func.min(OutboxMessage.due_at))
            .where(
                OutboxMessage.citizen_id == Citizen.id,
                OutboxMessage.state.in_(_LIVE_STATES),
            )
            .scalar_subquery()
        )
        citizen_ids = list(
            await session.scalars(
                select(Citizen.id)
                .where(Citizen.id.in_(select(OutboxMessage.citizen_id).where(claimable)))
                .order_by(first_due, Citizen.id)
                .limit(limit)
                .with_for_update(skip_locked=True, key_share=True)
            )
        )
        if not citizen_ids:
            return []
        # A row locked by another writer (withdrawing it, say) is skipped rather than waited
        # for: a claim that never waits on a lock can't deadlock with that writer, who may
        # be waiting for this claim's lock on the citizen (an erasure deletes the citizen).
        candidates = candidates.where(OutboxMessage.citizen_id.in_(citizen_ids)).with_for_update(
            skip_locked=True
        )
    # MATERIALIZED: as a plain `IN (subquery)` PostgreSQL may run the locking subquery
    # again for each row it updates, and since rows this statement already updated are
    # skipped, every run yields a new one and the batch grows past `limit`.
    batch = candidates.cte("outbox_batch").prefix_with("MATERIALIZED", dialect="postgresql")
    # On SQLite the write transaction holds the database lock (BEGIN IMMEDIATE), so the
    # candidates can't change under us; the repeated `claimable` guard keeps the UPDATE
    # correct on its own either way (it sees the rows as they were before the statement,
    # so a citizen's messages in one batch don't hold each other back).
    claimed = await session.scalars(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(select(batch.c.id)), claimable)
        .values(
            state=MessageState.SENDING.value,
            claimed_by=worker,
            claimed_until=now + lease,
            # A lapsed lease was an attempt that never reported.
            attempts=OutboxMessage.attempts
            + case((OutboxMessage.state == MessageState.SENDING.value, 1), else_=0),
        )
        .returning(OutboxMessage),
        execution_options={"synchronize_session": False, "populate_existing": True},
    )
    # RETURNING has no defined order.
    return sorted(claimed, key=lambda message: (message.due_at, message.id))


async def release(*, session: AsyncSession, message_ids: Sequence[int], worker: str) -> int:
    """Give back claimed messages untried (an earlier one of their citizen must go first):
    pending again, no attempt counted. Returns how many `worker` still held."""
    if not message_ids:
        return 0
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(message_ids),
            OutboxMessage.state == MessageState.SENDING.value,
            OutboxMessage.claimed_by == worker,
        )
        .values(state=MessageState.PENDING.value, claimed_by=None, claimed_until=None),
        execution_options={"synchronize_session": "fetch"},
    )
    return _rowcount(result)


async def mark_sent(*, session: AsyncSession, message_id: int, worker: str, now: datetime) -> bool:
    """Record that `worker` delivered the message; False if its claim was lost meanwhile."""
    message = await _apply_if_claimed(
        session=session,
        message_id=message_id,
        worker=worker,
        values={"state": MessageState.SENT.value, "sent_at": now},
    )
    return message is not None


async def mark_retry(
    *,
    session: AsyncSession,
    message_id: int,
    worker: str,
    now: datetime,
    error: str,
    retry_after: float | None = None,
) -> OutboxMessage | None:
    """Put the message back in the queue after a transient failure, or give up on it.

    `retry_after` is the delay the server asked for (Telegram's RetryAfter): it is used
    exactly, without jitter, and still counts as an attempt so that a message can't be
    retried forever. After `MAX_ATTEMPTS` attempts the message is `failed`. The delay
    sets `retry_at`; `due_at` stays, so the message keeps its place before the
    citizen's later messages. Returns the updated message, or None if `worker` no
    longer holds the claim.
    """
    attempts = await session.scalar(
        select(OutboxMessage.attempts).where(_claimed_by(message_id, worker))
    )
    if attempts is None:
        return None
    attempts += 1
    values: dict[str, Any] = {"attempts": attempts, "last_error": _truncate(error)}
    if attempts >= MAX_ATTEMPTS:
        values["state"] = MessageState.FAILED.value
    else:
        if retry_after is not None:
            delay = timedelta(seconds=max(retry_after, 0.0))
        else:
            delay = backoff_delay(attempts)
        values["state"] = MessageState.PENDING.value
        values["retry_at"] = now + delay
    # Guarding on the attempts we read as well makes the read-then-write safe even where
    # the row isn't locked between the two statements.
    return await _apply_if_claimed(
        session=session,
        message_id=message_id,
        worker=worker,
        values=values,
        guard=OutboxMessage.attempts == attempts - 1,
    )


async def mark_failed(
    *, session: AsyncSession, message_id: int, worker: str, now: datetime, error: str
) -> bool:
    """Give up on the message at once (it can never be sent, e.g. it can't be rendered)."""
    message = await _apply_if_claimed(
        session=session,
        message_id=message_id,
        worker=worker,
        values={
            "state": MessageState.FAILED.value,
            "attempts": OutboxMessage.attempts + 1,
            "last_error": _truncate(error),
        },
    )
    return message is not None


async def mark_withdrawn(
    *, session: AsyncSession, message_id: int, worker: str, now: datetime, reason: str
) -> bool:
    """Withdraw a claimed message that no longer applies (e.g. its booking was cancelled).

    The claimed counterpart of `cancel_pending`: a message claimed while its subject
    changed (a reminder claimed just before the booking was cancelled) ends `cancelled`,
    not `failed`, since nothing went wrong with its delivery. `reason` is kept in
    `last_error`; the attempts are left as they were. False if the claim was lost.
    """
    message = await _apply_if_claimed(
        session=session,
        message_id=message_id,
        worker=worker,
        values={"state": MessageState.CANCELLED.value, "last_error": _truncate(reason)},
    )
    return message is not None


async def mark_citizen_unreachable(
    *,
    session: AsyncSession,
    citizen_id: int,
    now: datetime,
    error: str,
    message_id: int | None = None,
) -> int:
    """Flag a citizen who blocked the bot and stop their queued messages; returns how many.

    `message_id`: the message whose sending was refused, which counts that attempt (the
    others were never tried). Recorded, so that the case page shows why messages to them
    stopped; any update from them clears the flag
    (`shared.citizens.service.mark_reachable`).
    """
    flagged = await session.execute(
        update(Citizen)
        .where(Citizen.id == citizen_id, Citizen.unreachable.is_(False))
        .values(unreachable=True, updated_at=now),
        execution_options={"synchronize_session": "fetch"},
    )
    if _rowcount(flagged):
        await audit.record(
            session=session,
            actor="telegram",
            action="citizen.unreachable",
            object_type="citizen",
            object_id=str(citizen_id),
        )
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.citizen_id == citizen_id, OutboxMessage.state.in_(_LIVE_STATES))
        .values(
            state=MessageState.FAILED.value,
            attempts=OutboxMessage.attempts + case((OutboxMessage.id == message_id, 1), else_=0),
            last_error=_truncate(error),
            claimed_by=None,
            claimed_until=None,
        ),
        execution_options={"synchronize_session": "fetch"},
    )
    return _rowcount(result)


async def pending_count(*, session: AsyncSession, now: datetime) -> int:
    """How many pending messages are due now (not waiting for a retry)."""
    count = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.state == MessageState.PENDING.value, _ready(OutboxMessage, now))
    )
    return int(count or 0)


async def next_due_at(*, session: AsyncSession, now: datetime) -> datetime | None:
    """When a pending message may next be claimed (possibly in the past), None if none may.

    Messages held back by an earlier one of their citizen don't count: they go with it,
    at its time (or when its sender reports, which no time can tell).
    """
    ready_at = func.coalesce(OutboxMessage.retry_at, OutboxMessage.due_at)
    pending = OutboxMessage.state == MessageState.PENDING.value
    waiting = await session.scalar(
        select(func.min(OutboxMessage.due_at)).where(pending, _claimable(now))
    )
    if waiting is not None:
        return waiting
    return await session.scalar(select(func.min(ready_at)).where(pending, ready_at > now))


def backoff_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the `attempts`-th failure: 30 s doubling, at most 1 hour, ±10%.

    The jitter spreads out the retries of messages that failed together (e.g. during a
    Telegram outage); the cap applies after the jitter, so no delay exceeds one hour.
    """
    if attempts < 1:
        raise ValueError("backoff is for a message that failed at least once")
    # Past 2**7 the cap applies anyway; bounding the exponent keeps the number small.
    base = min(BACKOFF_BASE * (1 << min(attempts - 1, 16)), BACKOFF_CAP)
    uniform = rng.uniform if rng is not None else random.uniform
    # Jitter is not a secret: the module-level generator is good enough.
    factor: float = uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)
    return min(base * factor, BACKOFF_CAP)


def _claimed_by(message_id: int, worker: str) -> ColumnElement[bool]:
    return and_(
        OutboxMessage.id == message_id,
        OutboxMessage.state == MessageState.SENDING.value,
        OutboxMessage.claimed_by == worker,
    )


async def _apply_if_claimed(
    *,
    session: AsyncSession,
    message_id: int,
    worker: str,
    values: dict[str, Any],
    guard: ColumnElement[bool] | None = None,
) -> OutboxMessage | None:
    """Apply `values` and release the claim, only while `worker` still holds it."""
    statement: Update = update(OutboxMessage).where(_claimed_by(message_id, worker))
    if guard is not None:
        statement = statement.where(guard)
    return await session.scalar(
        statement.values(claimed_by=None, claimed_until=None, **values).returning(OutboxMessage),
        execution_options={"synchronize_session": False, "populate_existing": True},
    )


def _truncate(error: str) -> str:
    return error if len(error) <= ERROR_MAX_CHARS else error[: ERROR_MAX_CHARS - 1] + "…"


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
