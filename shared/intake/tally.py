"""Anonymous counts kept when a questionnaire is wiped or deleted (SPEC J8).

The figures' drop-off per question reads where each questionnaire stands; the expiry
sweep (`service.expire_stale`) wipes an abandoned one, question and all, and a citizen's
erasure (`shared.privacy.erasure`) wipes theirs. Before either, what the screening
figures counted of it and will no longer find in it is added to `ScreeningTally`, in the
same transaction: the question an unfinished one stood at, and, for one the rules ruled
out, that it was and why. `shared.figures.screening` adds these counts to the
questionnaires' own, so the figures are the same before and after.

Erasures used to delete the questionnaire with its citizen, and counted its state
(`TallyKind.ERASED`); those counts stay in the tally. Since the erasure keeps the row
as part of the citizen's anonymous tombstone (its state and dates: the funnel counts
who completed it), nothing is added under ERASED any more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import upsert_insert
from shared.intake.models import UNFINISHED, Intake, IntakeState, ScreeningTally, TallyKind
from shared.intake.questionnaire import ELIGIBILITY_RULES, assess

if TYPE_CHECKING:
    from shared.settings import Settings

# Where a questionnaire in the summary stands: every question answered, not confirmed.
SUMMARY = "summary"
# The answers the eligibility rules read (the figures decide the reasons on these only).
RULE_STEPS = tuple(dict.fromkeys(rule.step_key for rule in ELIGIBILITY_RULES))

Counts = Counter[tuple[date, str, str]]


def position(intake: Intake) -> str:
    """The question an unfinished questionnaire stands at (SUMMARY after the last)."""
    if intake.state == IntakeState.SUMMARY:
        return SUMMARY
    return intake.current_step or ""


def _day(intake: Intake, tz: ZoneInfo) -> date:
    return intake.started_at.astimezone(tz).date()


def reasons(answers: Mapping[str, Any], settings: Settings) -> tuple[str, ...]:
    """Why the rules ruled out a completed questionnaire, from the answers they read."""
    given: dict[str, str] = {
        key: answers[key] for key in RULE_STEPS if isinstance(answers.get(key), str)
    }
    return assess(given, settings).reason_keys


async def add(*, session: AsyncSession, counts: Counts) -> None:
    """Add `counts` ((day, kind, key) -> n) to the tally, one upsert per row."""
    for (day, kind, key), n in sorted(counts.items()):
        if n <= 0:
            continue
        insert = upsert_insert(session, ScreeningTally).values(day=day, kind=kind, key=key, n=n)
        await session.execute(
            insert.on_conflict_do_update(
                index_elements=[ScreeningTally.day, ScreeningTally.kind, ScreeningTally.key],
                set_={"n": ScreeningTally.n + insert.excluded.n},
            )
        )


async def on_expiry(*, session: AsyncSession, intakes: Iterable[Intake], tz: ZoneInfo) -> None:
    """Count where these unfinished questionnaires stood, before the sweep wipes them."""
    counts: Counts = Counter()
    for intake in intakes:
        if intake.state in UNFINISHED:
            counts[_day(intake, tz), TallyKind.STOPPED.value, position(intake)] += 1
    await add(session=session, counts=counts)


async def on_erasure(*, session: AsyncSession, intake: Intake, settings: Settings) -> None:
    """Count what the figures read of a questionnaire whose answers an erasure wipes.

    The erasure keeps the row with its state and dates (`shared.privacy.erasure`): an
    unfinished one is wiped as the expiry sweep wipes it, and counted the same way, at
    the question it stood at; a completed one the rules ruled out stops saying so (the
    figures would decide its reasons on answers that are gone), and is counted here as
    ruled out, with its reasons. An expired one was counted when it expired; an
    eligible completed one still counts as it is.
    """
    day = _day(intake, settings.tz)
    counts: Counts = Counter()
    if intake.state in UNFINISHED:
        counts[day, TallyKind.STOPPED.value, position(intake)] += 1
    elif intake.state == IntakeState.COMPLETED and intake.eligible is False:
        counts[day, TallyKind.RULED_OUT.value, ""] += 1
        for reason in reasons(intake.answers, settings):
            counts[day, TallyKind.REASON.value, reason] += 1
    await add(session=session, counts=counts)
