"""Outcomes at closure (SPEC J6): how the plans closed in the period ended, and the share
"improved on the starting condition" the funders ask for.

The closure check compares three baselines of the interview with the start: income,
debts and urgent expenses, each better, the same or worse (`Trend`). A closed plan
**improved on the starting condition** when at least one of the three is better and
none is worse (`improved`): better income with the same debts counts, better income with
worse debts does not. The share is over the plans closed in the period with the check
recorded (closing a plan records it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases.models import Case
from shared.figures.period import Period, share
from shared.plans.models import Plan, PlanOutcome, PlanState, Trend
from shared.settings import Settings

BASELINES = ("income", "debts", "urgent_expenses")
TRENDS = tuple(t.value for t in Trend)


def improved(trends: tuple[str | None, ...]) -> bool:
    """At least one baseline better and none worse (a missing one is neither)."""
    return Trend.BETTER.value in trends and Trend.WORSE.value not in trends


@dataclass(frozen=True, slots=True)
class Outcomes:
    closed: int
    # (outcome, how many), in `PlanOutcome` order.
    by_outcome: tuple[tuple[str, int], ...]
    # (baseline, ((trend, how many), ...)), in BASELINES and TRENDS order.
    by_baseline: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    checked: int
    improved: int

    @property
    def improved_share(self) -> float | None:
        return share(self.improved, self.checked)


# The first column of this group's rows (`statement`), read in one UNION with the
# interventions' (`service.figures`).
ROWS = "closed"


def statement(
    *, settings: Settings, period: Period, helpdesk_id: int | None
) -> Select[*tuple[Any, ...]]:
    """The closed plans by outcome and closure check: rows of (ROWS, outcome, income,
    debts, urgent expenses, how many), in the shape `interventions.statement` has too."""
    query: Select[*tuple[Any, ...]] = (
        select(
            literal(ROWS).label("what"), Plan.outcome, Plan.income_trend, Plan.debts_trend,
            Plan.urgent_expenses_trend, func.count(),
        )
        .where(Plan.state == PlanState.CLOSED.value, period.within(Plan.closed_at, settings.tz))
        .group_by(
            Plan.outcome, Plan.income_trend, Plan.debts_trend, Plan.urgent_expenses_trend
        )
    )  # fmt: skip
    if helpdesk_id is not None:
        query = query.join(Case, Case.id == Plan.case_id).where(Case.helpdesk_id == helpdesk_id)
    return query


def read(rows: Iterable[Sequence[Any]]) -> Outcomes:
    """The figures from `statement`'s rows (others, of another group, are passed over)."""
    by_outcome = dict.fromkeys((o.value for o in PlanOutcome), 0)
    by_baseline = {b: dict.fromkeys(TRENDS, 0) for b in BASELINES}
    closed = checked = better = 0
    for what, outcome, income, debts, urgent, count in rows:
        if what != ROWS:
            continue
        n = int(count)
        closed += n
        if outcome is not None:
            by_outcome[outcome] = by_outcome.get(outcome, 0) + n
        trends = (income, debts, urgent)
        for baseline, trend in zip(BASELINES, trends, strict=True):
            if trend in by_baseline[baseline]:
                by_baseline[baseline][trend] += n
        if any(trend is not None for trend in trends):
            checked += n
            if improved(trends):
                better += n
    return Outcomes(
        closed=closed,
        by_outcome=tuple(by_outcome.items()),
        by_baseline=tuple((b, tuple(counts.items())) for b, counts in by_baseline.items()),
        checked=checked,
        improved=better,
    )


async def outcomes(
    *,
    session: AsyncSession,
    settings: Settings,
    period: Period,
    helpdesk_id: int | None = None,
    now: datetime,
) -> Outcomes:
    """The plans closed in the period by outcome and closure check; one statement."""
    del now
    query = statement(settings=settings, period=period, helpdesk_id=helpdesk_id)
    return read((await session.execute(query)).all())
