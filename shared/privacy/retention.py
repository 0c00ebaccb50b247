"""Retention (SPEC J8): personal data kept no longer than the program needs it.

The rules, each with its period in the settings (`shared.settings`, docs/privacy.md), in
the order a run applies them:

- audit events: kept `retention_audit_days` (at least 183, the Garante's six months for
  administrators' logs), then pruned by `shared.audit.service.prune_before`, whose
  checkpoint keeps what is left verifiable by `ripartire audit verify`. First, so that
  what the other rules record is never pruned with it;
- unfinished questionnaires: their answers are deleted `intake_expiry_days` after the
  last answer. The rule is `shared.intake.service.expire_stale`, the sweep housekeeping
  runs every minute; retention runs it too, so that `ripartire retention run` applies
  it where no instance is running (a running one leaves it nothing to do);
- closed cases: anonymised `retention_closed_case_days` after closing
  (`shared.privacy.erasure.anonymise_case`: the interview, the plan's texts and its
  signed scans; a case already anonymised is not taken again);
- candidates who never booked (no booking ever, not even one cancelled) and have been
  inactive for `retention_never_booked_days`: erased (`erase_citizen`);
- citizens who booked, all of whose cases closed more than `retention_closed_case_days`
  ago and who have been inactive as long: erased too. Anonymising the cases alone would
  leave the citizen's name, contacts, questionnaire and booking codes for ever.

Inactive since a moment: nothing of theirs changed since (the citizen's record, their
questionnaire, a case, a plan, a waiting-list entry, or, for the last rule, a booking
made), and not waiting for a place. A questionnaire the sweep wiped counts from its last
answer, `intake_expiry_days` before the wipe; one still unfinished counts as wiped now,
as this run's sweep does before the erasures (so the dry run's counts are the run's).

`plan_retention` counts what the rules would remove now (the dry run, which changes
nothing); `run_retention` removes it and records one audit event with the counts only;
`run_daily` is the running process's daily run, once per local day whatever the number
of instances (`RetentionRun`'s claim).

Each rule works in transactions of its own, in batches of `BATCH` rows, so a run never
holds SQLite's write lock, or PostgreSQL's audit-chain lock, for more than one batch.
Every transaction takes `LOCK_KEY` first on PostgreSQL (SQLite's `BEGIN IMMEDIATE`
already serialises writers), so two runs at once (a daily run and the command line)
never pick the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.booking.models import Booking, WaitlistEntry, WaitlistState
from shared.cases.models import Case, CaseState
from shared.citizens.models import Citizen
from shared.db import Database, is_postgresql, upsert_insert
from shared.intake import service as intake
from shared.intake.models import UNFINISHED, Intake, IntakeState
from shared.plans.models import Plan
from shared.privacy import erasure
from shared.privacy.models import RetentionRun
from shared.settings import Settings

log = logging.getLogger(__name__)

# Who runs the daily retention (the audit's actor); the command line's is "cli".
DAILY_ACTOR = "system:retention"
RUN_ACTION = "retention.run"
# PostgreSQL's advisory lock of retention's transactions: b"ripreten" as a bigint.
LOCK_KEY = int.from_bytes(b"ripreten", "big")
_LOCK = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=LOCK_KEY)
# A daily run whose process died gives its day back after this long; a live one takes
# seconds (minutes for a first run over years of data).
CLAIM_LEASE = timedelta(hours=6)
# Cases anonymised, or citizens erased, per transaction.
BATCH = 25
_OPEN_WAIT = (WaitlistState.WAITING.value, WaitlistState.OFFERED.value)


@dataclass(frozen=True, slots=True)
class RetentionCounts:
    """What each rule removes (or, in a dry run, would remove), in the order it runs."""

    audit_events: int = 0
    questionnaires: int = 0
    closed_cases: int = 0
    never_booked: int = 0
    past_candidates: int = 0


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Each rule's limit at one moment: older than these, data goes."""

    now: datetime
    audit_before: datetime
    questionnaire_age: timedelta
    closed_before: datetime
    never_booked_before: datetime

    @classmethod
    def at(cls, settings: Settings, now: datetime) -> Cutoffs:
        return cls(
            now=now,
            audit_before=now - timedelta(days=settings.retention_audit_days),
            questionnaire_age=timedelta(days=settings.intake_expiry_days),
            closed_before=now - timedelta(days=settings.retention_closed_case_days),
            never_booked_before=now - timedelta(days=settings.retention_never_booked_days),
        )


async def plan_retention(
    *, session: AsyncSession, settings: Settings, now: datetime
) -> RetentionCounts:
    """Count what each rule would remove at `now`, changing nothing (the dry run)."""
    cutoffs = Cutoffs.at(settings, now)

    async def count(query: Select[int]) -> int:
        return await session.scalar(select(func.count()).select_from(query.subquery())) or 0

    return RetentionCounts(
        audit_events=await audit.count_prunable(session=session, before=cutoffs.audit_before),
        questionnaires=await intake.count_stale(
            session=session, now=now, max_age=cutoffs.questionnaire_age
        ),
        closed_cases=await count(_closed_cases(cutoffs)),
        never_booked=await count(_never_booked(cutoffs)),
        past_candidates=await count(_past_candidates(cutoffs)),
    )


async def run_retention(
    *, database: Database, settings: Settings, now: datetime, actor: str, dry_run: bool = False
) -> RetentionCounts:
    """Apply every rule at `now` and audit the counts; with `dry_run`, only count."""
    if dry_run:
        async with database.transaction(read_only=True) as session:
            return await plan_retention(session=session, settings=settings, now=now)
    counts = await _apply(database, settings, now, actor)
    async with database.transaction() as session:
        await _lock(session)
        await _record(session, counts, actor)
    return counts


async def run_daily(
    *, database: Database, settings: Settings, now: datetime
) -> RetentionCounts | None:
    """The day's retention, if no instance has run it yet: its counts, else None.

    The day is the local one (`settings.tz`): the first housekeeping round after
    midnight, or after the start, runs it.
    """
    day = now.astimezone(settings.tz).date()
    async with database.transaction(read_only=True) as session:
        taken = await session.get(RetentionRun, day)
        if taken is not None and (taken.finished_at is not None or taken.claimed_until > now):
            return None
    async with database.transaction() as session:
        claimed = await _claim(session, day, now)
    if not claimed:
        return None
    try:
        counts = await _apply(database, settings, now, DAILY_ACTOR)
    except BaseException:
        # The next round (the next minute) tries again, here or on another instance.
        async with database.transaction() as session:
            await _give_back(session, day, claimed_at=now, now=now)
        raise
    async with database.transaction() as session:
        await _lock(session)
        await _record(session, counts, DAILY_ACTOR)
        await session.execute(
            update(RetentionRun)
            .where(RetentionRun.day == day, RetentionRun.claimed_at == now)
            .values(finished_at=now)
            .execution_options(synchronize_session=False)
        )
    return counts


# --- internals ---------------------------------------------------------------------------


async def _lock(session: AsyncSession) -> None:
    if is_postgresql(session):
        await session.execute(_LOCK)


async def _apply(
    database: Database, settings: Settings, now: datetime, actor: str
) -> RetentionCounts:
    cutoffs = Cutoffs.at(settings, now)
    async with database.transaction() as session:
        await _lock(session)
        pruned = await audit.prune_before(
            session=session, before=cutoffs.audit_before, actor=actor, now=now
        )
    async with database.transaction() as session:
        await _lock(session)
        questionnaires = await intake.expire_stale(
            session=session, now=now, max_age=cutoffs.questionnaire_age, tz=settings.tz
        )

    async def anonymise(session: AsyncSession, case_id: int) -> None:
        await erasure.anonymise_case(session=session, settings=settings, case_id=case_id, now=now)

    async def erase(session: AsyncSession, citizen_id: int) -> None:
        await erasure.erase_citizen(
            session=session, settings=settings, citizen_id=citizen_id, now=now, actor=actor
        )

    # Cases before citizens: an erasure anonymises its citizen's cases, which the dry run
    # counted as this rule's.
    closed_cases = await _in_batches(database, _closed_cases(cutoffs), Case.id, anonymise)
    never_booked = await _in_batches(database, _never_booked(cutoffs), Citizen.id, erase)
    past = await _in_batches(database, _past_candidates(cutoffs), Citizen.id, erase)
    return RetentionCounts(
        audit_events=pruned.pruned if pruned is not None else 0,
        questionnaires=len(questionnaires),
        closed_cases=closed_cases,
        never_booked=never_booked,
        past_candidates=past,
    )


async def _in_batches(
    database: Database,
    query: Select[int],
    key: Any,
    work: Callable[[AsyncSession, int], Awaitable[None]],
) -> int:
    """`work` on each row `query` finds, `BATCH` rows per transaction, in the order of
    `key` (each batch starts after the last one's: a row is never taken twice)."""
    done, after = 0, 0
    while True:
        async with database.transaction() as session:
            await _lock(session)
            found = list(await session.scalars(query.where(key > after).order_by(key).limit(BATCH)))
            for row_id in found:
                await work(session, row_id)
        done += len(found)
        if len(found) < BATCH:
            return done
        after = found[-1]


# --- who and what the rules take ---------------------------------------------------------


def _closed_cases(cutoffs: Cutoffs) -> Select[int]:
    return select(Case.id).where(
        Case.state == CaseState.CLOSED.value,
        Case.closed_at < cutoffs.closed_before,
        Case.anonymised_at.is_(None),
    )


def _never_booked(cutoffs: Cutoffs) -> Select[int]:
    before = cutoffs.never_booked_before
    return select(Citizen.id).where(
        Citizen.erased_at.is_(None),
        ~exists().where(Booking.citizen_id == Citizen.id),
        _inactive_since(before, cutoffs),
    )


def _past_candidates(cutoffs: Cutoffs) -> Select[int]:
    before = cutoffs.closed_before
    return select(Citizen.id).where(
        Citizen.erased_at.is_(None),
        # Those who never booked are the rule above's.
        exists().where(Booking.citizen_id == Citizen.id),
        ~exists().where(Booking.citizen_id == Citizen.id, Booking.created_at >= before),
        ~exists().where(
            Case.citizen_id == Citizen.id,
            or_(Case.state != CaseState.CLOSED.value, Case.closed_at >= before),
        ),
        _inactive_since(before, cutoffs),
    )


def _inactive_since(before: datetime, cutoffs: Cutoffs) -> ColumnElement[bool]:
    """Nothing of the citizen's changed since `before`, and they wait for no place."""
    age = cutoffs.questionnaire_age
    # An unfinished questionnaire counts from its last answer, or if the sweep wipes it
    # now, from `age` ago (as a wiped one does): recent if either is.
    unfinished_recent = true() if cutoffs.now - age >= before else Intake.updated_at >= before
    recent_questionnaire = or_(
        and_(Intake.state.in_(UNFINISHED), unfinished_recent),
        # Wiped by the sweep `age` after the last answer (its time is the wipe's).
        and_(Intake.state == IntakeState.EXPIRED.value, Intake.updated_at >= before + age),
        and_(Intake.state == IntakeState.COMPLETED.value, Intake.updated_at >= before),
    )
    return and_(
        Citizen.created_at < before,
        Citizen.updated_at < before,
        ~exists().where(Intake.citizen_id == Citizen.id, recent_questionnaire),
        ~exists().where(Case.citizen_id == Citizen.id, Case.updated_at >= before),
        ~exists().where(
            Plan.case_id == Case.id, Case.citizen_id == Citizen.id, Plan.updated_at >= before
        ),
        ~exists().where(
            WaitlistEntry.citizen_id == Citizen.id,
            or_(WaitlistEntry.created_at >= before, WaitlistEntry.state.in_(_OPEN_WAIT)),
        ),
    )


async def _record(session: AsyncSession, counts: RetentionCounts, actor: str) -> None:
    await audit.record(
        session=session,
        actor=actor,
        action="retention.run",
        object_type="retention",
        details=asdict(counts),
    )


async def _claim(session: AsyncSession, day: date, now: datetime) -> bool:
    """Take the day for this run: a first claim, or one given back or lapsed."""
    lease = {"claimed_at": now, "claimed_until": now + CLAIM_LEASE}
    inserted = await session.scalar(
        upsert_insert(session, RetentionRun)
        .values(day=day, **lease)
        .on_conflict_do_nothing(index_elements=[RetentionRun.day])
        .returning(RetentionRun.day)
    )
    if inserted is not None:
        return True
    # One UPDATE decides between instances: on PostgreSQL the loser waits for the
    # winner's row and then finds the lease taken; SQLite runs one writer at a time.
    taken = await session.execute(
        update(RetentionRun)
        .where(
            RetentionRun.day == day,
            RetentionRun.finished_at.is_(None),
            RetentionRun.claimed_until <= now,
        )
        .values(**lease)
        .execution_options(synchronize_session=False)
    )
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


async def _give_back(
    session: AsyncSession, day: date, *, claimed_at: datetime, now: datetime
) -> None:
    await session.execute(
        update(RetentionRun)
        .where(
            RetentionRun.day == day,
            RetentionRun.claimed_at == claimed_at,
            RetentionRun.finished_at.is_(None),
        )
        .values(claimed_until=now)
        .execution_options(synchronize_session=False)
    )
