"""Retention with an injected clock: each rule at its boundary, the dry run, the audit of
each run, and the daily run once per day with two engines racing on one database."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from shared.audit import chain
from shared.audit.models import AuditCheckpoint, AuditEvent
from shared.db import Database
from shared.intake import service as intake
from shared.intake.models import Intake, IntakeState
from shared.privacy import retention
from shared.privacy.models import RetentionRun
from shared.schema import metadata
from shared.settings import Settings
from tests.factories import make_citizen, rome

NOW = rome(2026, 12, 7, 8)
DAY = timedelta(days=1)


async def _row_counts(database: Database) -> dict[str, int]:
    async with database.transaction(read_only=True) as session:
        return {
            t.name: await session.scalar(select(func.count()).select_from(t)) or 0
            for t in metadata.sorted_tables
        }


async def _questionnaire(database: Database, *, last_answer: datetime) -> int:
    """A citizen's questionnaire left unfinished at `last_answer`; the citizen's id."""
    async with database.transaction() as session:
        citizen = await make_citizen(session, eligible=None)
        await intake.start_intake(session=session, citizen_id=citizen.id, now=last_answer)
        return citizen.id


async def _old_events(database: Database, *ats: datetime) -> None:
    """Audit events recorded at `ats`, in that order (the log is pruned as a prefix)."""
    async with database.transaction() as session:
        for n, at in enumerate(ats):
            session.add(
                AuditEvent(at=at, actor="staff:1", action="case.read", object_type="case",
                           object_id=str(n), details={"page": "detail"})
            )  # fmt: skip


async def _events(database: Database, action: str) -> list[AuditEvent]:
    async with database.transaction(read_only=True) as session:
        return list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


async def _run(
    database: Database, settings: Settings, now: datetime = NOW, *, dry_run: bool = False
) -> retention.RetentionCounts:
    return await retention.run_retention(
        database=database, settings=settings, now=now, actor="cli", dry_run=dry_run
    )


async def _verdict(database: Database) -> chain.Verdict:
    async with database.transaction(read_only=True) as session:
        return await chain.verify(session)


# --- each rule at its boundary -----------------------------------------------------------


async def test_unfinished_questionnaires_go_after_their_period(
    database: Database, settings: Settings
) -> None:
    period = settings.intake_expiry_days * DAY
    kept = await _questionnaire(database, last_answer=NOW - period + DAY)
    gone = await _questionnaire(database, last_answer=NOW - period - DAY)
    assert (await _run(database, settings, dry_run=True)).questionnaires == 1
    assert (await _run(database, settings)).questionnaires == 1
    async with database.transaction(read_only=True) as session:
        found = await session.execute(select(Intake.citizen_id, Intake.state, Intake.answers))
        stored = {citizen: (state, answers) for citizen, state, answers in found}
    assert stored[gone] == (IntakeState.EXPIRED.value, {})
    assert stored[kept][0] == IntakeState.IN_PROGRESS.value
    # The day after, the kept one's period is over too.
    assert (await _run(database, settings, NOW + 2 * DAY)).questionnaires == 1


async def test_audit_events_are_pruned_after_their_period_and_the_log_still_verifies(
    database: Database, settings: Settings
) -> None:
    period = settings.retention_audit_days * DAY
    await _old_events(database, NOW - period - 2 * DAY, NOW - period - DAY, NOW - period + DAY)
    assert (await _run(database, settings, dry_run=True)).audit_events == 2
    assert (await _run(database, settings)).audit_events == 2
    async with database.transaction(read_only=True) as session:
        kept = list(await session.scalars(select(AuditEvent.at).order_by(AuditEvent.id)))
        checkpoint = await session.scalar(select(AuditCheckpoint))
    # The one a day inside its period, the prune's own event and the run's.
    assert kept[0] == NOW - period + DAY and len(kept) == 3
    assert checkpoint is not None and checkpoint.pruned == 2
    verdict = await _verdict(database)
    assert verdict.ok and verdict.events == 3
    assert (await _run(database, settings)).audit_events == 0
    assert (await _run(database, settings, NOW + 2 * DAY)).audit_events == 1
    assert (await _verdict(database)).ok


@pytest.mark.parametrize(("days", "pruned"), [(183, 1), (400, 0)])
async def test_the_audit_period_is_the_setting(
    database: Database, settings: Settings, days: int, pruned: int
) -> None:
    settings = settings.model_copy(update={"retention_audit_days": days})
    await _old_events(database, NOW - 190 * DAY)
    assert (await _run(database, settings, dry_run=True)).audit_events == pruned


# --- the dry run and the record of a run -------------------------------------------------


async def test_the_dry_run_counts_what_the_run_removes_and_changes_nothing(
    database: Database, settings: Settings
) -> None:
    await _old_events(database, NOW - (settings.retention_audit_days + 1) * DAY)
    for _ in range(2):
        await _questionnaire(database, last_answer=NOW - (settings.intake_expiry_days + 1) * DAY)
    await _questionnaire(database, last_answer=NOW)
    before = await _row_counts(database)

    planned = await _run(database, settings, dry_run=True)
    assert await _row_counts(database) == before
    assert planned == retention.RetentionCounts(questionnaires=2, audit_events=1)
    assert await _events(database, retention.RUN_ACTION) == []

    assert await _run(database, settings) == planned
    assert await _row_counts(database) != before
    assert await _run(database, settings, dry_run=True) == retention.RetentionCounts()


async def test_each_run_is_audited_with_its_counts_only(
    database: Database, settings: Settings
) -> None:
    await _questionnaire(database, last_answer=NOW - (settings.intake_expiry_days + 1) * DAY)
    counts = await _run(database, settings)
    await _run(database, settings)
    events = await _events(database, retention.RUN_ACTION)
    assert [(e.actor, e.object_type, e.object_id, e.details) for e in events] == [
        ("cli", "retention", None, dataclasses.asdict(counts)),
        ("cli", "retention", None, dataclasses.asdict(retention.RetentionCounts())),
    ]
    assert counts.questionnaires == 1


# --- once a day --------------------------------------------------------------------------


async def test_the_daily_run_runs_once_per_local_day(
    database: Database, settings: Settings
) -> None:
    await _questionnaire(database, last_answer=NOW - (settings.intake_expiry_days + 1) * DAY)
    first = await retention.run_daily(database=database, settings=settings, now=NOW)
    assert first == retention.RetentionCounts(questionnaires=1)
    later_that_day = rome(2026, 12, 7, 23, 59)
    assert (
        await retention.run_daily(database=database, settings=settings, now=later_that_day) is None
    )
    # Midnight in Rome is still the 7th in UTC: the local day decides.
    next_day = rome(2026, 12, 8, 0, 1)
    assert await retention.run_daily(database=database, settings=settings, now=next_day) == (
        retention.RetentionCounts()
    )
    events = await _events(database, retention.RUN_ACTION)
    assert [e.actor for e in events] == [retention.DAILY_ACTOR] * 2
    async with database.transaction(read_only=True) as session:
        runs = list(await session.scalars(select(RetentionRun).order_by(RetentionRun.day)))
    assert [(r.day.isoformat(), r.finished_at) for r in runs] == [
        ("2026-12-07", NOW), ("2026-12-08", next_day)
    ]  # fmt: skip


@pytest.fixture
async def second_engine(database: Database) -> AsyncIterator[Database]:
    """Another engine on the same database, as a second instance would have."""
    other = Database(database.url, cipher=database.cipher)
    yield other
    await other.dispose()


async def test_two_instances_racing_run_each_day_once(
    database: Database, settings: Settings, second_engine: Database
) -> None:
    for n in range(4):
        await _questionnaire(
            database, last_answer=NOW - (settings.intake_expiry_days + 1 - n) * DAY
        )
    ran = []
    for day in range(4):
        now = NOW + day * DAY
        results = await asyncio.gather(
            retention.run_daily(database=database, settings=settings, now=now),
            retention.run_daily(database=second_engine, settings=settings, now=now),
        )
        done = [r for r in results if r is not None]
        assert len(done) == 1, (day, results)
        ran.append(done[0].questionnaires)
    # Each day's questionnaire went once, by whichever instance won the day.
    assert ran == [1, 1, 1, 1]
    assert len(await _events(database, retention.RUN_ACTION)) == 4


async def test_a_failed_daily_run_gives_the_day_back(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = retention._apply

    async def failing(*args: object) -> retention.RetentionCounts:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(retention, "_apply", failing)
    with pytest.raises(ConnectionError):
        await retention.run_daily(database=database, settings=settings, now=NOW)
    monkeypatch.setattr(retention, "_apply", real_apply)
    a_minute_later = NOW + timedelta(minutes=1)
    done = await retention.run_daily(database=database, settings=settings, now=a_minute_later)
    assert done == retention.RetentionCounts()
    assert (
        await retention.run_daily(database=database, settings=settings, now=a_minute_later) is None
    )


async def test_a_day_claimed_by_a_process_that_died_is_run_when_its_lease_lapses(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        session.add(
            RetentionRun(day=NOW.date(), claimed_at=NOW, claimed_until=NOW + retention.CLAIM_LEASE)
        )
    before_lapse = NOW + retention.CLAIM_LEASE - timedelta(minutes=1)
    assert await retention.run_daily(database=database, settings=settings, now=before_lapse) is None
    after = NOW + retention.CLAIM_LEASE
    assert await retention.run_daily(database=database, settings=settings, now=after) is not None
    assert len(await _events(database, retention.RUN_ACTION)) == 1
