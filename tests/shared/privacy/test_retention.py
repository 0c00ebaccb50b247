"""Retention with an injected clock: each rule at its boundary, the dry run, the audit of
each run, and the daily run once per day with two engines, and two processes, racing on
one database."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from shared.audit import chain
from shared.audit.models import AuditCheckpoint, AuditEvent
from shared.booking import service as booking
from shared.booking.models import Booking, WaitlistEntry
from shared.cases import service as cases
from shared.cases.models import Case, Interview
from shared.citizens.models import Citizen
from shared.db import Database
from shared.intake import service as intake
from shared.intake.models import Intake, IntakeState
from shared.plans import scans
from shared.plans import service as plans
from shared.plans.models import SignedScan
from shared.privacy import retention
from shared.privacy.models import RetentionRun
from shared.schema import metadata
from shared.settings import Settings
from tests.conftest import DATA_KEY
from tests.factories import make_citizen, make_helpdesk, rome
from tests.shared.cases.builders import book, checked_in, make_candidate
from tests.shared.plans.builders import (
    admitted_case,
    complete_input,
    job_search,
    make_people,
    plan_with,
)

NOW = rome(2026, 12, 7, 8)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
PDF = b"%PDF-1.4\n% a scan\n%%EOF\n"


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


async def _last_seen(database: Database, citizen_id: int, at: datetime) -> None:
    """The citizen's own record, and the bookings they made, last changed at `at` (the
    services stamp them with the real clock)."""
    async with database.transaction() as session:
        await session.execute(
            update(Citizen).where(Citizen.id == citizen_id).values(created_at=at, updated_at=at)
        )
        await session.execute(
            update(Booking).where(Booking.citizen_id == citizen_id).values(created_at=at)
        )
        await session.execute(
            update(Intake)
            .where(Intake.citizen_id == citizen_id, Intake.state == IntakeState.COMPLETED.value)
            .values(updated_at=at)
        )


async def _candidate(database: Database, *, at: datetime) -> int:
    """A candidate who confirmed the questionnaire at `at` and never booked; their id."""
    async with database.transaction() as session:
        citizen, _case = await make_candidate(session, now=at)
    await _last_seen(database, citizen.id, at)
    return citizen.id


async def _erased(database: Database) -> set[int]:
    async with database.transaction(read_only=True) as session:
        return set(await session.scalars(select(Citizen.id).where(Citizen.erased_at.is_not(None))))


async def _closed_with_a_plan(
    database: Database, settings: Settings, *, closed_at: datetime
) -> Case:
    """A candidate admitted, their plan signed with its scan kept, then closed at `closed_at`."""
    async with database.transaction() as session:
        people = await make_people(session)
        case = await admitted_case(session, settings, people.worker)
        await plan_with(session, settings, people.worker, case, complete_input(job_search()))
        await plans.submit_plan(session=session, case_id=case.id, staff=people.worker, now=NOW)
        await plans.approve_plan(session=session, case_id=case.id, staff=people.boss, now=NOW)
        await plans.record_signature(
            session=session, case_id=case.id, signed_on=NOW.date(), staff=people.worker,
            settings=settings, now=NOW + HOUR,
        )  # fmt: skip
        await scans.attach_signed_scan(
            session=session, case_id=case.id, content=PDF, staff=people.worker, now=NOW + HOUR
        )
        closure = plans.parse_closure(
            outcome="employed", income="better", debts="same", urgent_expenses="better", notes=""
        )
        await plans.close_plan(
            session=session, case_id=case.id, closure=closure, staff=people.worker, now=closed_at
        )
        await session.refresh(case)
        assert (case.state, case.closed_at) == ("closed", closed_at)
        return case


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


async def test_candidates_who_never_booked_are_erased_after_their_period(
    database: Database, settings: Settings
) -> None:
    period = settings.retention_never_booked_days * DAY
    quiet = await _candidate(database, at=NOW)
    later = await _candidate(database, at=NOW + 2 * DAY)
    # Booked once, then cancelled: they are the closed cases' rule's, not this one's.
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        citizen, _case = await make_candidate(session, now=NOW)
        made = await book(session, settings, citizen, helpdesk)
        await booking.cancel_booking(
            session=session, settings=settings, booking_id=made.id,
            by=booking.CancelledBy.CITIZEN, actor="t", now=NOW,
        )  # fmt: skip
    booked_once = citizen.id
    await _last_seen(database, booked_once, NOW)
    # Waiting for a place: not inactive, however long ago they joined.
    waiting = await _candidate(database, at=NOW)
    async with database.transaction() as session:
        session.add(WaitlistEntry(citizen_id=waiting, created_at=NOW))
    # Their questionnaire left unfinished, wiped by the sweep its period later: it counts
    # from the last answer, not from the wipe.
    abandoned = await _questionnaire(database, last_answer=NOW)
    await _last_seen(database, abandoned, NOW)
    async with database.transaction() as session:
        expiry = settings.intake_expiry_days * DAY
        wiped = await intake.expire_stale(
            session=session, now=NOW + expiry + HOUR, max_age=expiry, tz=settings.tz
        )
        assert wiped == [abandoned]

    assert (await _run(database, settings, NOW + period - DAY)).never_booked == 0
    assert await _erased(database) == set()
    assert (await _run(database, settings, NOW + period + DAY)).never_booked == 2
    assert await _erased(database) == {quiet, abandoned}
    async with database.transaction(read_only=True) as session:
        erased = await session.get(Citizen, quiet)
        assert erased is not None and (erased.name, erased.telegram_user_id) == (None, None)
    # Each counted once; the one active two days later goes two days later.
    assert (await _run(database, settings, NOW + period + 2 * DAY)).never_booked == 0
    assert (await _run(database, settings, NOW + period + 3 * DAY)).never_booked == 1
    assert await _erased(database) == {quiet, abandoned, later}
    assert booked_once not in await _erased(database)


async def test_closed_cases_are_anonymised_after_their_period_with_their_scans(
    database: Database, settings: Settings
) -> None:
    period = settings.retention_closed_case_days * DAY
    closed_at = NOW + 2 * HOUR
    case = await _closed_with_a_plan(database, settings, closed_at=closed_at)
    # The citizen wrote since: they stay, their old case goes.
    await _last_seen(database, case.citizen_id, closed_at + 30 * DAY)

    async def stored() -> tuple[Case, dict[str, object], int, Citizen]:
        async with database.transaction(read_only=True) as session:
            found = await session.get(Case, case.id)
            answers = await session.scalar(
                select(Interview.answers).where(Interview.case_id == case.id)
            )
            kept = await session.scalar(select(func.count()).select_from(SignedScan))
            citizen = await session.get(Citizen, case.citizen_id)
            assert found is not None and answers is not None and citizen is not None
            return found, answers, kept or 0, citizen

    day_before = await _run(database, settings, closed_at + period - DAY)
    assert day_before.closed_cases == 0
    kept, answers, scans_kept, _citizen = await stored()
    assert kept.anonymised_at is None and answers != {} and scans_kept == 1

    day_after = closed_at + period + DAY
    done = await _run(database, settings, day_after)
    assert (done.closed_cases, done.past_candidates) == (1, 0)
    gone, answers, scans_kept, citizen = await stored()
    assert (gone.anonymised_at, answers, scans_kept) == (day_after, {}, 0)
    assert citizen.erased_at is None and citizen.name == "Maria Rossi"
    # Anonymised once: neither taken nor counted again.
    assert (await _run(database, settings, day_after + DAY)).closed_cases == 0


async def test_a_citizen_whose_cases_all_closed_long_ago_is_erased_with_them(
    database: Database, settings: Settings
) -> None:
    period = settings.retention_closed_case_days * DAY
    closed_at = NOW + 2 * DAY
    async with database.transaction() as session:
        people = await make_people(session)
        helpdesk = await make_helpdesk(session, places=5)
        closed = []
        for name in ("Maria Rossi", "Luca Verdi"):
            citizen, case, _made = await checked_in(session, settings, helpdesk, name=name)
            await cases.record_outcome(
                session=session, case_id=case.id, outcome="not_admitted",
                reason="Non residente", staff=people.worker, now=closed_at,
            )  # fmt: skip
            closed.append(citizen.id)
        gone, back = closed
        # Luca came back: a new case, still open.
        await cases.on_intake_confirmed(
            session=session, citizen_id=back, eligible=True, urgent=False, now=closed_at
        )
    for citizen_id in closed:
        await _last_seen(database, citizen_id, closed_at)

    done = await _run(database, settings, closed_at + period - DAY)
    assert (done.closed_cases, done.past_candidates) == (0, 0)
    done = await _run(database, settings, closed_at + period + DAY)
    assert (done.closed_cases, done.past_candidates) == (2, 1)
    assert await _erased(database) == {gone}
    async with database.transaction(read_only=True) as session:
        open_case = await session.scalar(
            select(Case).where(Case.citizen_id == back, Case.state == "new")
        )
        returned = await session.get(Citizen, back)
    assert open_case is not None and open_case.anonymised_at is None
    assert returned is not None and returned.name == "Luca Verdi"


# --- the dry run and the record of a run -------------------------------------------------


async def test_the_dry_run_counts_what_the_run_removes_and_changes_nothing(
    database: Database, settings: Settings
) -> None:
    closed_at = NOW + 2 * HOUR
    run_at = closed_at + (settings.retention_closed_case_days + 1) * DAY
    await _old_events(database, run_at - (settings.retention_audit_days + 1) * DAY)
    for _ in range(2):
        await _questionnaire(database, last_answer=run_at - (settings.intake_expiry_days + 1) * DAY)
    await _questionnaire(database, last_answer=run_at)
    await _candidate(database, at=run_at - (settings.retention_never_booked_days + 1) * DAY)
    case = await _closed_with_a_plan(database, settings, closed_at=closed_at)
    await _last_seen(database, case.citizen_id, closed_at)
    before = await _row_counts(database)

    planned = await _run(database, settings, run_at, dry_run=True)
    assert await _row_counts(database) == before
    assert planned.audit_events > 0
    assert dataclasses.replace(planned, audit_events=0) == retention.RetentionCounts(
        questionnaires=2, closed_cases=1, never_booked=1, past_candidates=1
    )
    assert await _events(database, retention.RUN_ACTION) == []

    assert await _run(database, settings, run_at) == planned
    assert await _row_counts(database) != before
    # Nothing left, but the events the run recorded: they carry the real clock's time,
    # two years before this test's.
    left = await _run(database, settings, run_at, dry_run=True)
    assert dataclasses.replace(left, audit_events=0) == retention.RetentionCounts()
    assert (await _verdict(database)).ok


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


# One instance's housekeeping round at `now` (argv[2]) against the database at argv[1],
# started at the wall-clock instant argv[3] so that both processes race: prints what ran.
_INSTANCE = """
import asyncio, sys, time
from datetime import datetime
from shared import crypto
from shared.db import Database
from shared.privacy import retention
from shared.settings import Settings

async def main() -> None:
    url, now, start = sys.argv[1], datetime.fromisoformat(sys.argv[2]), float(sys.argv[3])
    database = Database(url, cipher=crypto.DataCipher([sys.argv[4]]))
    settings = Settings(database_url=url, _env_file=None)
    await database.ping()  # connected before the start line
    time.sleep(max(0.0, start - time.time()))
    done = await retention.run_daily(database=database, settings=settings, now=now)
    await database.dispose()
    print("ran" if done is not None else "skipped", done.questionnaires if done else "")

asyncio.run(main())
"""


async def test_two_processes_run_the_days_retention_once(
    database: Database, settings: Settings
) -> None:
    await _questionnaire(database, last_answer=NOW - (settings.intake_expiry_days + 1) * DAY)
    start = str(time.time() + 3)
    arguments = (_INSTANCE, database.url, NOW.isoformat(), start, DATA_KEY)
    pipe = asyncio.subprocess.PIPE
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", *arguments, stdout=pipe, stderr=pipe
        )
        for _ in range(2)
    ]
    outputs = [await p.communicate() for p in processes]
    assert all(p.returncode == 0 for p in processes), [e.decode()[-2000:] for _, e in outputs]
    said = sorted(out.decode().split()[0] for out, _ in outputs)
    assert said == ["ran", "skipped"], outputs
    assert [out.decode().split() for out, _ in outputs if out.startswith(b"ran")] == [["ran", "1"]]
    assert len(await _events(database, retention.RUN_ACTION)) == 1
