"""Retention (SPEC J8): personal data kept no longer than the program needs it.

The rules, each with its period in the settings (`shared.settings`, docs/privacy.md):

- unfinished questionnaires: their answers are deleted `intake_expiry_days` after the
  last answer. The rule is `shared.intake.service.expire_stale`, the sweep housekeeping
  runs every minute; retention runs it too, so that `ripartire retention run` applies
  it where no instance is running, and usually finds nothing left;
- audit events: kept `retention_audit_days` (at least 183, the Garante's six months for
  administrators' logs), then pruned by `shared.audit.service.prune_before`, whose
  checkpoint keeps what is left verifiable by `ripartire audit verify`.

`plan_retention` counts what the rules would remove now (the dry run, which changes
nothing); `run_retention` removes it and records one audit event with the counts;
`run_daily` is the running process's daily run, once per local day whatever the number
of instances (`RetentionRun`'s claim).

Each rule works in transactions of its own, so a long run never holds SQLite's write
lock, or PostgreSQL's audit-chain lock, for more than one batch. Every transaction takes
`LOCK_KEY` first on PostgreSQL (SQLite's `BEGIN IMMEDIATE` already serialises writers),
so two runs at once (a daily run and the command line) never pick the same rows.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.db import Database, is_postgresql, upsert_insert
from shared.intake import service as intake
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


@dataclass(frozen=True, slots=True)
class RetentionCounts:
    """What each rule removes (or, in a dry run, would remove)."""

    questionnaires: int = 0
    audit_events: int = 0


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Each rule's limit at one moment: older than these, data goes."""

    questionnaire_age: timedelta
    audit_before: datetime

    @classmethod
    def at(cls, settings: Settings, now: datetime) -> Cutoffs:
        return cls(
            questionnaire_age=timedelta(days=settings.intake_expiry_days),
            audit_before=now - timedelta(days=settings.retention_audit_days),
        )


async def plan_retention(
    *, session: AsyncSession, settings: Settings, now: datetime
) -> RetentionCounts:
    """Count what each rule would remove at `now`, changing nothing (the dry run)."""
    cutoffs = Cutoffs.at(settings, now)
    return RetentionCounts(
        questionnaires=await intake.count_stale(
            session=session, now=now, max_age=cutoffs.questionnaire_age
        ),
        audit_events=await audit.count_prunable(session=session, before=cutoffs.audit_before),
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
    # The log first: what the other rules record while they run is never pruned with it.
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
    return RetentionCounts(
        questionnaires=len(questionnaires),
        audit_events=pruned.pruned if pruned is not None else 0,
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
