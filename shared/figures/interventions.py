"""Interventions (SPEC J6): the supports of the plans approved in the period, by type and
state (`shared.plans.catalog` types, `SupportState` states), as they stand now."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, cast, func, literal, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases.models import Case
from shared.figures.period import Period
from shared.plans.catalog import CATALOG
from shared.plans.models import Plan, PlanSupport, SupportState
from shared.settings import Settings

STATES = tuple(s.value for s in SupportState)


@dataclass(frozen=True, slots=True)
class KindCounts:
    kind: str
    # (state, how many), in `STATES` order.
    states: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.states)

    def count(self, state: str) -> int:
        return dict(self.states).get(state, 0)


@dataclass(frozen=True, slots=True)
class Interventions:
    # One per type of the catalog, in its order (then any type no longer in it).
    kinds: tuple[KindCounts, ...]

    @property
    def total(self) -> int:
        return sum(k.total for k in self.kinds)


# The first column of this group's rows (`statement`), which `service.figures` reads in
# one UNION with the outcomes'.
ROWS = "support"


def statement(
    *, settings: Settings, period: Period, helpdesk_id: int | None
) -> Select[*tuple[Any, ...]]:
    """The supports by type and state: rows of (ROWS, kind, state, -, -, how many), in the
    shape `outcomes.statement` has too."""
    no_text = cast(null(), String)
    query: Select[*tuple[Any, ...]] = (
        select(
            literal(ROWS).label("what"), PlanSupport.kind, PlanSupport.state, no_text, no_text,
            func.count(),
        )
        .join(Plan, Plan.id == PlanSupport.plan_id)
        .where(period.within(Plan.approved_at, settings.tz))
        .group_by(PlanSupport.kind, PlanSupport.state)
    )  # fmt: skip
    if helpdesk_id is not None:
        query = query.join(Case, Case.id == Plan.case_id).where(Case.helpdesk_id == helpdesk_id)
    return query


def read(rows: Iterable[Sequence[Any]]) -> Interventions:
    """The figures from `statement`'s rows (others, of another group, are passed over)."""
    found: dict[str, dict[str, int]] = {kind.value: {} for kind in CATALOG}
    for what, kind, state, _, _, n in rows:
        if what == ROWS:
            found.setdefault(kind, {})[state] = int(n)
    return Interventions(
        tuple(
            KindCounts(kind, tuple((state, counts.get(state, 0)) for state in STATES))
            for kind, counts in found.items()
        )
    )


async def interventions(
    *,
    session: AsyncSession,
    settings: Settings,
    period: Period,
    helpdesk_id: int | None = None,
    now: datetime,
) -> Interventions:
    """Supports of the plans first approved in the period, by type and state; one statement."""
    del now
    query = statement(settings=settings, period=period, helpdesk_id=helpdesk_id)
    return read((await session.execute(query)).all())
