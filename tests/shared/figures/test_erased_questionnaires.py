"""The questionnaire's figures are the same after the expiry sweep wipes the abandoned
questionnaires and after citizens erase themselves (SPEC J8: erasure keeps anonymous
counts), on the small program of `dataset`, both databases."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.citizens import service as citizens
from shared.citizens.models import Citizen
from shared.figures.period import Period
from shared.figures.screening import Screening, screening
from shared.intake import service as intake
from shared.intake.models import Intake, IntakeState, ScreeningTally
from shared.settings import Settings
from tests.shared.figures.dataset import NOW, PERIOD, build


def _kept(found: Screening) -> tuple[object, ...]:
    """What must not change: everything but which of them are still open."""
    return (
        found.started, found.completed, found.unplaced, found.questions, found.ruled_out,
        found.reasons, found.unfinished + found.expired,
    )  # fmt: skip


async def _citizen_named(session: AsyncSession, name: str) -> Citizen:
    citizen = await session.scalar(select(Citizen).where(Citizen.name == name))
    assert citizen is not None
    return citizen


async def test_the_figures_count_the_same_after_expiry_and_erasure(
    session: AsyncSession, settings: Settings
) -> None:
    await build(session)
    before = await screening(session=session, settings=settings, period=PERIOD, now=NOW)
    # C6 and C7 at the household, C8 in the summary, C10 at the first question; C4 and C5
    # ruled out (not resident; situation not covered); C9 expired before the tally was kept.
    assert (before.unfinished, before.expired, before.ruled_out) == (4, 1, 2)
    assert dict((q.position, q.stopped) for q in before.questions)["household"] == 2

    # C10 erases themselves at the first question; the sweep wipes the other open ones.
    erased = [await _citizen_named(session, "Cittadino 10")]
    await citizens.erase(session=session, settings=settings, citizen=erased[0], now=NOW)
    wiped = await intake.expire_stale(
        session=session, now=NOW, max_age=timedelta(days=1), tz=settings.tz
    )
    assert len(wiped) == 3
    after_expiry = await screening(session=session, settings=settings, period=PERIOD, now=NOW)
    assert _kept(after_expiry) == _kept(before)
    assert (after_expiry.unfinished, after_expiry.expired) == (0, 5)

    # The two ruled out, and one whose questionnaire had expired, erase themselves.
    for name in ("Cittadino 4", "Cittadino 5", "Cittadino 7"):
        erased.append(await _citizen_named(session, name))
        await citizens.erase(session=session, settings=settings, citizen=erased[-1], now=NOW)
    # The questionnaires stay, emptied, in their citizens' anonymous tombstones (the
    # funnel counts who completed one).
    assert await session.scalar(select(func.count()).select_from(Intake)) == 11
    kept = await session.execute(
        select(Intake.state, Intake.answers, Intake.history, Intake.current_step).where(
            Intake.citizen_id.in_([c.id for c in erased])
        )
    )
    assert sorted(tuple(row) for row in kept) == [
        ("completed", {}, [], None), ("completed", {}, [], None),
        ("expired", {}, [], None), ("expired", {}, [], None),
    ]  # fmt: skip
    after_erasure = await screening(session=session, settings=settings, period=PERIOD, now=NOW)
    assert _kept(after_erasure) == _kept(before)
    assert (after_erasure.unfinished, after_erasure.expired) == (0, 5)

    # Counted by the day each questionnaire was started: the year before has only C11's.
    elsewhere = Period(date(2026, 1, 1), date(2026, 12, 31))
    found = await screening(session=session, settings=settings, period=elsewhere, now=NOW)
    assert (found.started, found.completed, found.expired, found.ruled_out) == (1, 1, 0, 0)
    assert all(q.stopped == 0 for q in found.questions)


async def test_the_tally_knows_no_citizen(session: AsyncSession, settings: Settings) -> None:
    await build(session)
    await intake.expire_stale(session=session, now=NOW, max_age=timedelta(days=1), tz=settings.tz)
    columns = {column.key for column in inspect(ScreeningTally).columns}
    assert columns == {"day", "kind", "key", "n"}
    rows = {
        (row.day, row.kind, row.key): row.n for row in await session.scalars(select(ScreeningTally))
    }
    # C6 and C7 started on 20 and 21 February, C8 on the 22nd, C10 on 1 March.
    assert rows == {
        (date(2027, 2, 20), "stopped", "household"): 1,
        (date(2027, 2, 21), "stopped", "household"): 1,
        (date(2027, 2, 22), "stopped", "summary"): 1,
        (date(2027, 3, 1), "stopped", "residence"): 1,
    }
    # Wiping again counts nothing twice.
    assert (
        await intake.expire_stale(
            session=session, now=NOW + timedelta(days=9), max_age=timedelta(days=1), tz=settings.tz
        )
        == []
    )
    assert await session.scalar(select(func.sum(ScreeningTally.n))) == 4
    still = await session.scalar(
        select(func.count()).where(Intake.state == IntakeState.EXPIRED.value)
    )
    assert still == 5
