from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.citizens.models import Citizen
from shared.db import Database
from shared.outbox import service as outbox
from shared.outbox.models import MessageState, OutboxMessage

T0 = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
_telegram_ids = count(1000)


async def make_citizen(session: AsyncSession) -> Citizen:
    telegram_id = next(_telegram_ids)
    citizen = Citizen(telegram_user_id=telegram_id, telegram_chat_id=telegram_id, language="it")
    session.add(citizen)
    await session.flush()
    return citizen


async def queue(
    session: AsyncSession,
    citizen: Citizen,
    key: str,
    *,
    due_at: datetime = T0,
    subject: str | None = None,
) -> OutboxMessage:
    message = await outbox.enqueue(
        session=session,
        kind="reminder",
        citizen_id=citizen.id,
        due_at=due_at,
        idempotency_key=key,
        payload={"key": key},
        subject=subject,
    )
    assert message is not None
    return message


async def states(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(OutboxMessage.idempotency_key, OutboxMessage.state))
    return {key: state for key, state in rows}


async def claim_one(session: AsyncSession, worker: str, now: datetime) -> OutboxMessage:
    [message] = await outbox.claim_due(session=session, worker=worker, now=now, limit=1)
    return message


class Extreme(random.Random):
    """Always draws one end of the jitter interval."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


# Queueing and withdrawing


async def test_enqueue_same_key_twice_queues_one_message(database: Database) -> None:
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        first = await queue(session, citizen, "booking:1:reminder")
        assert first.state == MessageState.PENDING
        assert first.attempts == 0
        assert first.payload == {"key": "booking:1:reminder"}
        assert first.created_at.tzinfo is UTC
        again = await outbox.enqueue(
            session=session,
            kind="reminder",
            citizen_id=citizen.id,
            due_at=T0,
            idempotency_key="booking:1:reminder",
        )
        assert again is None
    # A later unit of work (e.g. the booking confirmed twice) is a no-op as well.
    async with database.transaction() as session:
        later = await outbox.enqueue(
            session=session,
            kind="other",
            citizen_id=citizen.id,
            due_at=T0 + timedelta(days=1),
            idempotency_key="booking:1:reminder",
        )
        assert later is None
        rows = (await session.scalars(select(OutboxMessage))).all()
        assert [(m.id, m.kind, m.due_at) for m in rows] == [(first.id, "reminder", T0)]


async def test_enqueue_all_queues_as_enqueue_would_each(session: AsyncSession) -> None:
    citizen, blocked = await make_citizen(session), await make_citizen(session)
    blocked.unreachable = True
    await queue(session, citizen, "booking:1:day_before")

    def new(key: str, hours: int) -> outbox.NewMessage:
        return outbox.NewMessage("reminder", T0 + timedelta(hours=hours), key, {"n": hours}, "b:1")

    messages = [new("booking:1:day_before", 1), new("booking:1:hours_before", 2)]
    # The key already queued is skipped; the other one is queued like `enqueue` would.
    assert await outbox.enqueue_all(session=session, citizen_id=citizen.id, messages=messages) == 1
    assert await outbox.enqueue_all(session=session, citizen_id=blocked.id, messages=messages) == 0
    assert await outbox.enqueue_all(session=session, citizen_id=citizen.id, messages=[]) == 0
    rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert [(m.idempotency_key, m.citizen_id, m.due_at, m.payload) for m in rows] == [
        ("booking:1:day_before", citizen.id, T0, {"key": "booking:1:day_before"}),
        ("booking:1:hours_before", citizen.id, T0 + timedelta(hours=2), {"n": 2}),
    ]
    added = rows[1]
    assert (added.kind, added.subject, added.state, added.attempts) == (
        "reminder",
        "b:1",
        MessageState.PENDING,
        0,
    )
    assert added.created_at.tzinfo is UTC


async def test_cancel_pending_withdraws_only_pending_messages_of_the_subject(
    session: AsyncSession,
) -> None:
    citizen = await make_citizen(session)
    await queue(session, citizen, "sent", subject="booking:1", due_at=T0 - timedelta(hours=2))
    await queue(session, citizen, "sending", subject="booking:1", due_at=T0 - timedelta(hours=1))
    await queue(session, citizen, "pending-a", subject="booking:1")
    await queue(session, citizen, "pending-b", subject="booking:1", due_at=T0 + timedelta(days=1))
    await queue(session, citizen, "other-booking", subject="booking:2")
    sent = await claim_one(session, "w1", T0 - timedelta(hours=2))
    assert await outbox.mark_sent(session=session, message_id=sent.id, worker="w1", now=T0)
    await claim_one(session, "w1", T0 - timedelta(hours=1))

    assert await outbox.cancel_pending(session=session, subject="booking:1") == 2

    assert await states(session) == {
        "sent": "sent",
        "sending": "sending",
        "pending-a": "cancelled",
        "pending-b": "cancelled",
        "other-booking": "pending",
    }
    assert await outbox.cancel_pending(session=session, subject="booking:1") == 0


# Claiming


async def test_claim_takes_due_messages_oldest_first_up_to_the_limit(
    session: AsyncSession,
) -> None:
    # One citizen each: a citizen's own messages wait for each other (see below).
    # Queued out of order, so that the id order is not the due order.
    for key, due_at in (
        ("c", T0 - timedelta(minutes=1)),
        ("a", T0 - timedelta(minutes=3)),
        ("future", T0 + timedelta(seconds=1)),
        ("b", T0 - timedelta(minutes=2)),
        ("now", T0),
    ):
        await queue(session, await make_citizen(session), key, due_at=due_at)

    first = await outbox.claim_due(session=session, worker="w1", now=T0, limit=2)
    assert [m.idempotency_key for m in first] == ["a", "b"]
    for message in first:
        assert message.state == MessageState.SENDING
        assert message.claimed_by == "w1"
        assert message.claimed_until == T0 + timedelta(minutes=2)

    rest = await outbox.claim_due(
        session=session, worker="w2", now=T0, limit=10, lease=timedelta(seconds=30)
    )
    assert [m.idempotency_key for m in rest] == ["c", "now"]
    assert {m.claimed_until for m in rest} == {T0 + timedelta(seconds=30)}
    assert await outbox.claim_due(session=session, worker="w3", now=T0) == []
    assert await states(session) == {
        "a": "sending",
        "b": "sending",
        "c": "sending",
        "now": "sending",
        "future": "pending",
    }


async def test_a_citizens_messages_wait_while_an_earlier_one_is_being_sent(
    session: AsyncSession,
) -> None:
    citizen, other = await make_citizen(session), await make_citizen(session)
    first = await queue(session, citizen, "first", due_at=T0 - timedelta(minutes=2))
    await queue(session, citizen, "second", due_at=T0 - timedelta(minutes=1))
    await queue(session, citizen, "third")
    # Queued earlier but due later: a message is placed by when it is due.
    await queue(session, citizen, "tomorrow", due_at=T0 + timedelta(days=1))
    await queue(session, other, "other")

    assert await claim_one(session, "w1", T0) is first
    # While w1 sends the first, the citizen's next ones are nobody's; others' are.
    taken = await outbox.claim_due(session=session, worker="w2", now=T0)
    assert [m.idempotency_key for m in taken] == ["other"]
    assert await outbox.mark_sent(session=session, message_id=first.id, worker="w1", now=T0)
    taken = await outbox.claim_due(session=session, worker="w2", now=T0)
    assert [m.idempotency_key for m in taken] == ["second", "third"]


async def test_a_citizens_messages_wait_for_an_earlier_one_to_be_retried(
    session: AsyncSession,
) -> None:
    citizen, other = await make_citizen(session), await make_citizen(session)
    refused = await queue(session, citizen, "refused", due_at=T0 - timedelta(minutes=1))
    waiting = await queue(session, citizen, "waiting")
    await claim_one(session, "w1", T0)
    await outbox.mark_retry(
        session=session,
        message_id=refused.id,
        worker="w1",
        now=T0,
        error="RetryAfter",
        retry_after=3,
    )
    # Queued while the refused one waits, due at once: it waits too (it was queued later).
    await queue(session, citizen, "news", due_at=T0 + timedelta(seconds=1))
    await queue(session, other, "other", due_at=T0 + timedelta(seconds=1))
    # The refused message keeps its place (and its due time); the retry time is its own.
    assert refused.due_at == T0 - timedelta(minutes=1)
    assert refused.retry_at == T0 + timedelta(seconds=3)

    later = T0 + timedelta(seconds=2)
    taken = await outbox.claim_due(session=session, worker="w1", now=later)
    assert [m.idempotency_key for m in taken] == ["other"]
    assert waiting.state == MessageState.PENDING
    # The dispatcher is not woken for the messages that wait: only when the refused one may go.
    assert await outbox.next_due_at(session=session, now=later) == T0 + timedelta(seconds=3)
    taken = await outbox.claim_due(session=session, worker="w1", now=T0 + timedelta(seconds=3))
    assert [m.idempotency_key for m in taken] == ["refused", "waiting", "news"]


async def test_released_messages_go_back_untried(session: AsyncSession) -> None:
    citizen = await make_citizen(session)
    await queue(session, citizen, "a")
    held = await queue(session, citizen, "b")
    await outbox.claim_due(session=session, worker="w1", now=T0)
    assert await outbox.release(session=session, message_ids=[held.id], worker="nobody") == 0
    assert await outbox.release(session=session, message_ids=[held.id], worker="w1") == 1
    assert (held.state, held.attempts, held.claimed_by, held.claimed_until) == (
        "pending",
        0,
        None,
        None,
    )
    assert held.retry_at is None
    assert held.due_at == T0


async def test_claim_returns_objects_with_the_new_state_already_in_the_session(
    session: AsyncSession,
) -> None:
    citizen = await make_citizen(session)
    message = await queue(session, citizen, "a")
    [claimed] = await outbox.claim_due(session=session, worker="w1", now=T0)
    assert claimed is message
    assert message.state == MessageState.SENDING
    assert message.claimed_by == "w1"


async def test_live_lease_is_not_retaken_an_expired_one_is(database: Database) -> None:
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        message = await queue(session, citizen, "a")
        await claim_one(session, "w1", T0)
    # Still inside w1's lease, even at its last instant.
    async with database.transaction() as session:
        for now in (T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)):
            assert await outbox.claim_due(session=session, worker="w2", now=now) == []
    # w1 died mid-send: once its lease lapses another worker takes the message over.
    later = T0 + timedelta(minutes=2, seconds=1)
    async with database.transaction() as session:
        taken = await claim_one(session, "w2", later)
        assert taken.id == message.id
        assert taken.claimed_by == "w2"
        assert taken.claimed_until == later + timedelta(minutes=2)
        assert await outbox.claim_due(session=session, worker="w3", now=later) == []


async def test_a_message_whose_sender_keeps_dying_is_given_up(database: Database) -> None:
    """Each lapsed lease is an attempt; the last one fails the message, and no one takes it."""
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        message = await queue(session, citizen, "poison")
        other = await queue(session, citizen, "fine", due_at=T0 + timedelta(hours=1))
    now = T0
    for attempt in range(outbox.MAX_ATTEMPTS):
        async with database.transaction() as session:
            taken = await outbox.claim_due(session=session, worker=f"w{attempt}", now=now)
            assert [m.id for m in taken] == [message.id]
            assert taken[0].attempts == attempt
        now += timedelta(minutes=3)  # the worker died: its lease lapses
    async with database.transaction() as session:
        taken = await outbox.claim_due(session=session, worker="last", now=T0 + timedelta(hours=2))
        assert [m.id for m in taken] == [other.id]
        row = await session.get_one(OutboxMessage, message.id)
        assert (row.state, row.attempts, row.claimed_by) == ("failed", outbox.MAX_ATTEMPTS, None)
        assert row.last_error == outbox.SENDER_STOPPED


# Reporting outcomes


async def test_worker_whose_lease_was_taken_over_cannot_report(database: Database) -> None:
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        message = await queue(session, citizen, "a")
        await claim_one(session, "w1", T0)
    later = T0 + timedelta(minutes=5)
    async with database.transaction() as session:
        await claim_one(session, "w2", later)
    async with database.transaction() as session:
        for worker in ("w1", "nobody"):
            assert not await outbox.mark_sent(
                session=session, message_id=message.id, worker=worker, now=later
            )
            assert not await outbox.mark_failed(
                session=session, message_id=message.id, worker=worker, now=later, error="bad"
            )
            retried = await outbox.mark_retry(
                session=session, message_id=message.id, worker=worker, now=later, error="timeout"
            )
            assert retried is None
        row = await session.get_one(OutboxMessage, message.id)
        # w1's lapsed lease counted as an attempt (it never reported); nothing else did.
        assert (row.state, row.claimed_by, row.attempts, row.last_error) == (
            "sending",
            "w2",
            1,
            None,
        )

        assert await outbox.mark_sent(
            session=session, message_id=message.id, worker="w2", now=later
        )
        assert (row.state, row.sent_at, row.claimed_by, row.claimed_until) == (
            "sent",
            later,
            None,
            None,
        )
        # Reporting twice is refused as well: the claim was released.
        assert not await outbox.mark_sent(
            session=session, message_id=message.id, worker="w2", now=later
        )


async def test_a_pending_message_cannot_be_reported(session: AsyncSession) -> None:
    citizen = await make_citizen(session)
    message = await queue(session, citizen, "a")
    assert not await outbox.mark_sent(session=session, message_id=message.id, worker="w1", now=T0)
    assert message.state == MessageState.PENDING


async def test_mark_failed_gives_up_at_once(session: AsyncSession) -> None:
    citizen = await make_citizen(session)
    message = await queue(session, citizen, "a")
    await claim_one(session, "w1", T0)
    assert await outbox.mark_failed(
        session=session, message_id=message.id, worker="w1", now=T0, error="unknown template"
    )
    assert (message.state, message.attempts, message.last_error, message.claimed_by) == (
        "failed",
        1,
        "unknown template",
        None,
    )
    assert await outbox.claim_due(session=session, worker="w1", now=T0 + timedelta(days=1)) == []


# Retries


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 960), (7, 1920), (8, 3600), (40, 3600)],
)
def test_backoff_doubles_from_30_seconds_up_to_one_hour(attempts: int, seconds: int) -> None:
    low = outbox.backoff_delay(attempts, rng=Extreme(high=False))
    high = outbox.backoff_delay(attempts, rng=Extreme(high=True))
    assert low == timedelta(seconds=seconds * 0.9)
    assert high == min(timedelta(seconds=seconds * 1.1), timedelta(hours=1))
    rng = random.Random(attempts)
    for _ in range(50):
        assert low <= outbox.backoff_delay(attempts, rng=rng) <= high


def test_backoff_jitter_spreads_the_delays() -> None:
    rng = random.Random(7)
    delays = {outbox.backoff_delay(3, rng=rng) for _ in range(20)}
    assert len(delays) > 10
    with pytest.raises(ValueError, match="at least once"):
        outbox.backoff_delay(0)


async def test_retries_back_off_then_give_up_after_max_attempts(session: AsyncSession) -> None:
    citizen = await make_citizen(session)
    message = await queue(session, citizen, "a")
    now = T0
    delays = []
    for attempt in range(1, outbox.MAX_ATTEMPTS):
        await claim_one(session, "w1", now)
        retried = await outbox.mark_retry(
            session=session, message_id=message.id, worker="w1", now=now, error=f"timeout {attempt}"
        )
        assert retried is message
        assert (message.state, message.attempts, message.last_error) == (
            "pending",
            attempt,
            f"timeout {attempt}",
        )
        assert (message.claimed_by, message.claimed_until) == (None, None)
        assert message.due_at == T0  # its place in the queue
        assert message.retry_at is not None
        delay = message.retry_at - now
        delays.append(delay)
        expected = timedelta(seconds=30 * 2 ** (attempt - 1))
        assert expected * 0.9 <= delay <= expected * 1.1
        # Not before its time.
        assert await outbox.claim_due(session=session, worker="w1", now=now + delay * 0.99) == []
        now = message.retry_at
    assert delays == sorted(delays)

    await claim_one(session, "w1", now)
    given_up = await outbox.mark_retry(
        session=session, message_id=message.id, worker="w1", now=now, error="x" * 2000
    )
    assert given_up is message
    assert (message.state, message.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert message.last_error is not None
    assert len(message.last_error) == outbox.ERROR_MAX_CHARS
    assert await outbox.claim_due(session=session, worker="w1", now=now + timedelta(days=1)) == []


async def test_retry_after_is_honoured_exactly_and_counts_as_an_attempt(
    session: AsyncSession,
) -> None:
    citizen = await make_citizen(session)
    message = await queue(session, citizen, "a")
    await claim_one(session, "w1", T0)
    await outbox.mark_retry(
        session=session,
        message_id=message.id,
        worker="w1",
        now=T0,
        error="RetryAfter",
        retry_after=17.5,
    )
    assert message.retry_at == T0 + timedelta(seconds=17.5)
    assert (message.state, message.attempts, message.due_at) == ("pending", 1, T0)
    assert (
        await outbox.claim_due(session=session, worker="w1", now=T0 + timedelta(seconds=17)) == []
    )
    assert await claim_one(session, "w1", T0 + timedelta(seconds=17.5)) is message


# Citizens who blocked the bot


async def test_unreachable_citizen_is_flagged_and_their_messages_stopped(
    database: Database,
) -> None:
    async with database.transaction() as session:
        blocked = await make_citizen(session)
        other = await make_citizen(session)
        await queue(session, blocked, "sent", due_at=T0 - timedelta(hours=2))
        await queue(session, blocked, "sending", due_at=T0 - timedelta(hours=1))
        await queue(session, blocked, "pending", due_at=T0 + timedelta(days=1))
        await queue(session, blocked, "cancelled", subject="booking:9")
        await queue(session, other, "other")
        sent = await claim_one(session, "w1", T0 - timedelta(hours=2))
        await outbox.mark_sent(session=session, message_id=sent.id, worker="w1", now=T0)
        await outbox.cancel_pending(session=session, subject="booking:9")
        sending = await claim_one(session, "w1", T0 - timedelta(hours=1))

    async with database.transaction() as session:
        stopped = await outbox.mark_citizen_unreachable(
            session=session, citizen_id=blocked.id, now=T0, error="Forbidden: bot was blocked"
        )
        assert stopped == 2
        assert await states(session) == {
            "sent": "sent",
            "sending": "failed",
            "pending": "failed",
            "cancelled": "cancelled",
            "other": "pending",
        }
        row = await session.get_one(OutboxMessage, sending.id)
        assert (row.last_error, row.claimed_by) == ("Forbidden: bot was blocked", None)
        # The worker that was sending learns its claim is gone.
        assert not await outbox.mark_sent(
            session=session, message_id=sending.id, worker="w1", now=T0
        )

    async with database.transaction() as session:
        citizen = await session.get_one(Citizen, blocked.id)
        assert citizen.unreachable is True
        assert (await session.get_one(Citizen, other.id)).unreachable is False
        refused = await outbox.enqueue(
            session=session,
            kind="reminder",
            citizen_id=blocked.id,
            due_at=T0,
            idempotency_key="new",
        )
        assert refused is None
        assert await queue(session, other, "new") is not None


# Dispatcher helpers


async def test_pending_count_and_next_due_at(session: AsyncSession) -> None:
    assert await outbox.pending_count(session=session, now=T0) == 0
    assert await outbox.next_due_at(session=session, now=T0) is None
    for key, due_at in (
        ("past", T0 - timedelta(minutes=5)),
        ("now", T0),
        ("later", T0 + timedelta(minutes=5)),
    ):
        await queue(session, await make_citizen(session), key, due_at=due_at)
    assert await outbox.pending_count(session=session, now=T0) == 2
    assert await outbox.next_due_at(session=session, now=T0) == T0 - timedelta(minutes=5)

    await claim_one(session, "w1", T0)
    assert await outbox.pending_count(session=session, now=T0) == 1
    assert await outbox.next_due_at(session=session, now=T0) == T0
    await claim_one(session, "w1", T0)
    assert await outbox.pending_count(session=session, now=T0) == 0
    assert await outbox.next_due_at(session=session, now=T0) == T0 + timedelta(minutes=5)


# Concurrency

MESSAGES = 300
BATCH = 7


async def _fill_queue(database: Database, messages: int) -> set[int]:
    async with database.transaction() as session:
        citizens = [await make_citizen(session) for _ in range(10)]
        ids = set()
        for n in range(messages):
            message = await queue(
                session, citizens[n % 10], f"m{n}", due_at=T0 - timedelta(seconds=n % 17)
            )
            ids.add(message.id)
    return ids


class _Crowd:
    """Who has claimed so far; set once a second worker has a batch."""

    def __init__(self) -> None:
        self.claimers: set[str] = set()
        self.two = asyncio.Event()
        # Every claimed id, in the order the claims were committed.
        self.order: list[int] = []

    def claimed(self, worker: str) -> None:
        self.claimers.add(worker)
        if len(self.claimers) >= 2:
            self.two.set()


async def _work(database: Database, worker: str, claims: Counter[int], crowd: _Crowd) -> int:
    """Claim and send until the queue is empty; returns how many messages it sent."""
    sent = 0
    while True:
        async with database.transaction() as session:
            batch = await outbox.claim_due(session=session, worker=worker, now=T0, limit=BATCH)
            ids = [message.id for message in batch]
            # Nothing to claim may mean that the rest wait for messages another worker is
            # sending (a citizen's messages go in order): done only once none is left.
            left = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.state.in_(("pending", "sending")))
            )
        if not ids:
            if not left:
                return sent
            await asyncio.sleep(0.005)
            continue
        assert len(ids) <= BATCH
        claims.update(ids)
        crowd.order.extend(ids)
        crowd.claimed(worker)
        # "Sending", with the claim committed. Until a second worker holds a batch, keep
        # sending: a bare yield is not enough on SQLite, whose waiting connections poll for
        # the lock and can miss every window the first worker leaves them.
        # If nobody else could claim meanwhile, the assertion in _run_workers says so.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(crowd.two.wait(), timeout=5)
        async with database.transaction() as session:
            for message_id in ids:
                assert await outbox.mark_sent(
                    session=session, message_id=message_id, worker=worker, now=T0
                )
        sent += len(ids)


async def _run_workers(databases: list[Database], ids: set[int], workers: int) -> None:
    claims: Counter[int] = Counter()
    crowd = _Crowd()
    names = [f"worker-{n}" for n in range(workers)]
    counts = await asyncio.gather(
        *(_work(databases[n % len(databases)], name, claims, crowd) for n, name in enumerate(names))
    )
    print("messages sent per worker:", dict(zip(names, counts, strict=True)))
    assert set(claims) == ids
    assert [message_id for message_id, times in claims.items() if times != 1] == []
    assert sum(counts) == len(ids)
    assert crowd.two.is_set(), "no second worker could claim while the first was sending"
    async with databases[0].transaction(read_only=True) as session:
        rows = await session.execute(select(OutboxMessage.state, OutboxMessage.claimed_by))
        assert Counter(tuple(row) for row in rows) == {("sent", None): len(ids)}
        queued = (await session.execute(select(OutboxMessage))).scalars().all()
    # However the workers interleaved, each citizen's messages were taken in their order.
    place = {m.id: (m.due_at, m.id) for m in queued}
    for citizen_id in {m.citizen_id for m in queued}:
        taken = [
            i for i in crowd.order if i in {m.id for m in queued if m.citizen_id == citizen_id}
        ]
        assert taken == sorted(taken, key=place.__getitem__)


async def test_concurrent_claimers_never_get_the_same_message(database: Database) -> None:
    ids = await _fill_queue(database, MESSAGES)
    await _run_workers([database], ids, workers=4)


@pytest.mark.postgres_only
async def test_claimers_in_two_processes_never_get_the_same_message(database: Database) -> None:
    ids = await _fill_queue(database, MESSAGES)
    # Two engines with their own pools: as far as PostgreSQL can tell, two processes.
    other = Database(database.url)
    try:
        await _run_workers([database, other], ids, workers=6)
    finally:
        await other.dispose()


@pytest.mark.postgres_only
async def test_claim_skips_rows_locked_by_an_open_claim(database: Database) -> None:
    ids = await _fill_queue(database, 10)
    async with database.transaction() as first:
        mine = await outbox.claim_due(session=first, worker="w1", now=T0, limit=4)
        # While the first claim is uncommitted, a second one neither waits nor overlaps.
        async with asyncio.timeout(5), database.transaction() as second:
            theirs = await outbox.claim_due(session=second, worker="w2", now=T0, limit=100)
    assert len(mine) == 4
    assert len(theirs) == 6
    assert {m.id for m in mine} | {m.id for m in theirs} == ids


@pytest.mark.postgres_only
async def test_claim_does_not_overtake_a_citizens_message_being_claimed(
    database: Database,
) -> None:
    """Two claims at once: the second can't see the first's claim yet, so it leaves the
    citizen alone rather than take their next message past the first."""
    async with database.transaction() as session:
        citizen, other = await make_citizen(session), await make_citizen(session)
        first = await queue(session, citizen, "first", due_at=T0 - timedelta(minutes=1))
        await queue(session, citizen, "second")
        await queue(session, other, "other")
    async with database.transaction() as claiming:
        assert (await claim_one(claiming, "w1", T0 - timedelta(seconds=30))).id == first.id
        async with asyncio.timeout(5), database.transaction() as second:
            theirs = await outbox.claim_due(session=second, worker="w2", now=T0)
    assert [m.idempotency_key for m in theirs] == ["other"]
