"""The audit log's hash chain: verify finds an edited, deleted or reordered event, the
triggers refuse UPDATE and DELETE, two writers never fork it, pruning keeps it whole."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import TextClause, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from shared import migrate
from shared.audit import chain
from shared.audit import service as audit
from shared.audit.chain import Break
from shared.audit.hashing import GENESIS, link
from shared.audit.models import AuditCheckpoint, AuditEvent
from shared.db import Database
from tests.audit_tampering import tamper
from tests.conftest import BACKEND, DatabaseFactory

START = datetime(2026, 6, 1, 9, tzinfo=UTC)
EVENTS = AuditEvent.metadata.tables[AuditEvent.__tablename__]


async def _record(database: Database, n: int, *, prefix: str = "test.event") -> None:
    async with database.transaction() as session:
        for i in range(n):
            await audit.record(
                session=session, actor=f"staff:{i}", action=f"{prefix}.{i}", object_type="case",
                object_id=str(i), details={"n": i, "when": "2026-12-02", "ok": i % 2 == 0},
            )  # fmt: skip


async def _verify(database: Database) -> chain.Verdict:
    async with database.transaction(read_only=True) as session:
        return await chain.verify(session)


async def _ids(database: Database) -> list[int]:
    async with database.transaction(read_only=True) as session:
        return list(await session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))


async def _run(database: Database, statements: Sequence[TextClause]) -> None:
    async with database.transaction() as session:
        for statement in statements:
            await session.execute(statement)


async def test_events_recorded_every_way_make_one_chain(database: Database) -> None:
    await _record(database, 3)
    async with database.transaction() as session:
        made = audit.Event("citizen:1", "booking.create", "booking", "7", {"moved_from": None})
        followed = audit.Event("citizen:1", "case.booking", "case", "3", {"booking_id": 7})
        await audit.record_many(session=session, events=[made, followed])
        # Added as an object (tests and loaders do): chained at the flush.
        odd: dict[object, str] = {1: "a"}
        session.add(AuditEvent(actor="t", action="test.orm", object_type="x", details=odd))
    verdict = await _verify(database)
    assert (verdict.ok, verdict.events, verdict.checkpoint) == (True, 6, None)
    async with database.transaction(read_only=True) as session:
        events = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert events[0].prev_hash == GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.row_hash for e in events[:-1]]
    assert verdict.head == events[-1].row_hash
    assert events[-1].details == {"1": "a"}  # as JSON keeps it: the hash is of that


async def test_verify_finds_an_edited_event(database: Database) -> None:
    await _record(database, 5)
    third = (await _ids(database))[2]
    await tamper(database, [f"UPDATE audit_event SET actor = 'staff:nobody' WHERE id = {third}"])
    verdict = await _verify(database)
    assert (verdict.ok, verdict.broken_at, verdict.reason, verdict.events) == (
        False, third, Break.EDITED, 2,
    )  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        "details = '{\"n\": 9}'",
        "object_id = NULL",
        "action = 'case.read'",
        # A second later (SQLite keeps the time as text).
        "at = datetime(at, '+1 second')"
        if BACKEND == "sqlite"
        else "at = at + INTERVAL '1 second'",
    ],
)
async def test_verify_finds_any_field_edited(database: Database, change: str) -> None:
    await _record(database, 3)
    ids = await _ids(database)
    await tamper(database, [f"UPDATE audit_event SET {change} WHERE id = {ids[1]}"])
    verdict = await _verify(database)
    assert (verdict.broken_at, verdict.reason) == (ids[1], Break.EDITED)


async def test_verify_finds_a_deleted_event(database: Database) -> None:
    await _record(database, 5)
    ids = await _ids(database)
    await tamper(database, [f"DELETE FROM audit_event WHERE id = {ids[1]}"])
    verdict = await _verify(database)
    # The event after the gap no longer follows the one before it.
    assert (verdict.broken_at, verdict.reason, verdict.events) == (ids[2], Break.UNLINKED, 1)


async def test_verify_finds_the_first_event_deleted(database: Database) -> None:
    await _record(database, 3)
    ids = await _ids(database)
    await tamper(database, [f"DELETE FROM audit_event WHERE id = {ids[0]}"])
    assert (await _verify(database)).broken_at == ids[1]


async def test_verify_finds_reordered_events(database: Database) -> None:
    await _record(database, 5)
    ids = await _ids(database)
    a, b = ids[1], ids[3]
    # Rows 2 and 4 trade places, hashes and all (ids are the order).
    await tamper(
        database,
        [
            f"UPDATE audit_event SET id = -1 WHERE id = {a}",
            f"UPDATE audit_event SET id = {a} WHERE id = {b}",
            f"UPDATE audit_event SET id = {b} WHERE id = -1",
        ],
    )
    verdict = await _verify(database)
    assert (verdict.broken_at, verdict.reason) == (a, Break.UNLINKED)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET actor = 'forger'",
        "UPDATE audit_event SET row_hash = prev_hash",
        "DELETE FROM audit_event",
        "UPDATE audit_checkpoint SET last_hash = 'x'",
        "DELETE FROM audit_checkpoint",
    ],
)
async def test_the_triggers_refuse_update_and_delete(database: Database, statement: str) -> None:
    await _record(database, 3)
    async with database.transaction() as session:
        await audit.prune_before(session=session, before=datetime.now(UTC), actor="test")
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.transaction() as session:
            await session.execute(text(statement))
    assert (await _verify(database)).ok


async def test_a_delete_of_events_no_checkpoint_covers_is_refused(database: Database) -> None:
    await _record(database, 4)
    async with database.transaction() as session:
        done = await audit.prune_before(session=session, before=datetime.now(UTC), actor="test")
    assert done is not None
    await _record(database, 2)
    # Past the checkpoint: refused (on PostgreSQL even with the prune's setting on).
    statements = [text(f"DELETE FROM audit_event WHERE id > {done.through_id}")]
    if not database.is_sqlite:
        statements.insert(0, text("SELECT set_config('ripartire.audit_prune', 'on', true)"))
    with pytest.raises(DBAPIError, match="append-only"):
        await _run(database, statements)


@pytest.mark.postgres_only
async def test_postgresql_refuses_a_covered_delete_outside_the_prune(database: Database) -> None:
    async with database.transaction() as session:
        for at in (START, START + timedelta(days=1)):
            session.add(AuditEvent(at=at, actor="t", action="test.old", object_type="x"))
    # A checkpoint written by hand covers event 1, but the prune's setting isn't on.
    async with database.transaction() as session:
        session.add(
            AuditCheckpoint(actor="t", before=START, through_id=10**9, pruned=0, total=0,
                            last_hash=GENESIS)
        )  # fmt: skip
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.transaction() as session:
            await session.execute(text("DELETE FROM audit_event"))


async def test_pruning_keeps_the_chain_verifiable(database: Database) -> None:
    async with database.transaction() as session:
        for day in range(10):
            session.add(
                AuditEvent(at=START + timedelta(days=day), actor="t", action=f"test.day.{day}",
                           object_type="x", details={"day": day})
            )  # fmt: skip
    ids = await _ids(database)
    cutoff = START + timedelta(days=6)
    async with database.transaction() as session:
        done = await audit.prune_before(session=session, before=cutoff, actor="retention")
    assert done is not None
    assert (done.through_id, done.pruned) == (ids[5], 6)
    async with database.transaction(read_only=True) as session:
        left = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        checkpoint = await session.scalar(select(AuditCheckpoint))
    # Nothing recorded at or after the cut-off went; the prune itself is the last event.
    assert [e.action for e in left] == [*(f"test.day.{d}" for d in range(6, 10)), "audit.prune"]
    assert checkpoint is not None
    assert (checkpoint.through_id, checkpoint.pruned, checkpoint.total) == (ids[5], 6, 6)
    assert left[0].prev_hash == checkpoint.last_hash
    assert left[-1].actor == "retention" and left[-1].object_id == str(checkpoint.id)
    verdict = await _verify(database)
    assert (verdict.ok, verdict.events, verdict.checkpoint.id) == (True, 5, checkpoint.id)  # type: ignore[union-attr]

    # The log goes on after the checkpoint, and a second prune takes the first's place.
    await _record(database, 2)
    async with database.transaction() as session:
        again = await audit.prune_before(
            session=session, before=datetime.now(UTC) + timedelta(days=1), actor="retention"
        )
    assert again is not None and again.pruned == 5 + 2
    async with database.transaction(read_only=True) as session:
        totals = list(
            await session.scalars(select(AuditCheckpoint.total).order_by(AuditCheckpoint.id))
        )
    assert totals == [6, 13]
    verdict = await _verify(database)
    assert (verdict.ok, verdict.events) == (True, 1)  # the second prune's own event


async def test_nothing_old_enough_prunes_nothing(database: Database) -> None:
    await _record(database, 2)
    async with database.transaction() as session:
        assert await audit.prune_before(session=session, before=START, actor="t") is None
        assert await session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 0


async def test_verify_finds_a_checkpoint_without_its_prune_event(database: Database) -> None:
    async with database.transaction() as session:
        for day in range(3):
            session.add(
                AuditEvent(at=START + timedelta(days=day), actor="t", action="test.x", object_type="x")
            )  # fmt: skip
    ids = await _ids(database)
    async with database.transaction() as session:
        done = await audit.prune_before(
            session=session, before=START + timedelta(days=1), actor="t"
        )
    assert done is not None
    last_id = (await _ids(database))[-1]
    # Deleting the prune's event (the last) leaves a chain that holds: the checkpoint tells.
    await tamper(database, [f"DELETE FROM audit_event WHERE id = {last_id}"])
    verdict = await _verify(database)
    assert (verdict.reason, verdict.events) == (Break.CHECKPOINT, len(ids) - 1)


async def test_concurrent_writers_never_fork_the_chain(database: Database) -> None:
    """Each writer records, waits while holding its transaction open, records again: the
    others must wait for it rather than chain onto the same event."""

    async def writer(n: int) -> None:
        async with database.transaction() as session:
            await audit.record(session=session, actor=f"w{n}", action="test.a", object_type="x")
            await asyncio.sleep(0.05)
            await audit.record_many(
                session=session,
                events=[audit.Event(f"w{n}", "test.b", "x"), audit.Event(f"w{n}", "test.c", "x")],
            )

    await asyncio.gather(*(writer(n) for n in range(6)))
    verdict = await _verify(database)
    assert (verdict.ok, verdict.events) == (True, 18)
    async with database.transaction(read_only=True) as session:
        actors = list(await session.scalars(select(AuditEvent.actor).order_by(AuditEvent.id)))
    # Each writer's events are together: the chain's end was its own until it committed.
    assert [actors[i] for i in range(0, 18, 3)] == [actors[i + 2] for i in range(0, 18, 3)]


@pytest.mark.postgres_only
async def test_a_fork_is_refused_even_without_the_lock(database: Database) -> None:
    """The unique index on prev_hash: a second event after the same one can't commit."""
    await _record(database, 1)
    async with database.transaction(read_only=True) as session:
        head = await session.scalar(select(AuditEvent.row_hash))
    assert head is not None
    row = {"at": START, "actor": "t", "action": "test.fork", "object_type": "x",
           "object_id": None, "details": {}}  # fmt: skip
    async with database.transaction() as session:
        await session.execute(insert(EVENTS), list(link([row], head)))
    other = list(link([{**row, "actor": "u"}], head))
    with pytest.raises(DBAPIError, match="ix_audit_event_prev_hash"):
        async with database.transaction() as session:
            await session.execute(insert(EVENTS), other)


async def test_the_migration_chains_and_cleans_the_events_already_recorded(
    database_factory: DatabaseFactory,
) -> None:
    database = Database(await database_factory.create())
    try:
        await migrate.upgrade(database, "0020")
        old = [
            ("citizen:1", "booking.create", "booking", "5", '{"citizen_id": 1, "code": "K7M2QX", "moved_from": null}'),
            ("staff:anna", "booking.cancel", "booking", "5", '{"by": "staff", "reason": "Maria ha chiamato"}'),
            ("citizen:1", "booking.cancel", "booking", "6", '{"by": "citizen", "reason": "moved"}'),
            ("staff:anna", "case.search", "case", None, '{"text": "rossi", "results": 2}'),
            ("anonymous", "staff.login_failed", "staff_user", None, '{"username": "anna"}'),
            ("anonymous", "staff.login_failed", "staff_user", None, '{"username": "nessuno"}'),
            ("staff:anna", "case.close", "case", "3", '{"from": "new", "reason": "trasferita a Roma"}'),
        ]  # fmt: skip
        async with database.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO staff_user (username, display_name, role, password_hash, active, "
                    "created_at) VALUES ('anna', 'Anna', 'coordinatore', 'x', true, :at)"
                ),
                {"at": START.replace(tzinfo=None) if BACKEND == "sqlite" else START},
            )
            for actor, action, kind, object_id, details in old:
                await session.execute(
                    text(
                        "INSERT INTO audit_event (at, actor, action, object_type, object_id, "
                        "details) VALUES (:at, :actor, :action, :kind, :object_id, :details)"
                    ),
                    {"at": START.replace(tzinfo=None) if BACKEND == "sqlite" else START,
                     "actor": actor, "action": action, "kind": kind, "object_id": object_id,
                     "details": details},
                )  # fmt: skip
        await migrate.upgrade(database)
        verdict = await _verify(database)
        assert (verdict.ok, verdict.events) == (True, len(old))
        async with database.transaction(read_only=True) as session:
            events = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
            anna = await session.scalar(text("SELECT id FROM staff_user"))
        assert [e.details for e in events] == [
            {"citizen_id": 1, "moved_from": None},
            {"by": "staff", "reason": None},
            {"by": "citizen", "reason": "moved"},
            {"by_text": True, "results": 2},
            {},
            {},
            {"from": "new"},
        ]
        assert [e.object_id for e in events[4:6]] == [str(anna), None]
        assert await migrate.schema_differences(database) == []
        # New events chain onto the migrated ones.
        await _record(database, 2)
        assert (await _verify(database)).events == len(old) + 2
        await migrate.downgrade(database, "0020")
        await migrate.upgrade(database)
        assert (await _verify(database)).ok
    finally:
        await database.dispose()
