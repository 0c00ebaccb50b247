"""Every figure of the page at once (`figures`): one call for the route, seven statements
(the funnel's two, the screening's, the bookings', the deadlines', the funds', and the
interventions' and outcomes' in one UNION: both count plans of the period).

`shared.figures.cache` keeps what this computes for a while, for the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import union_all
from sqlalchemy.ext.asyncio import AsyncSession

from shared.figures import interventions, outcomes
from shared.figures.bookings import Bookings, bookings
from shared.figures.deadlines import Deadlines, deadlines
from shared.figures.funds import FundRunway, funds
from shared.figures.funnel import Funnel, funnel
from shared.figures.interventions import Interventions
from shared.figures.outcomes import Outcomes
from shared.figures.period import Period
from shared.figures.screening import Screening, screening
from shared.settings import Settings


@dataclass(frozen=True, slots=True)
class Figures:
    period: Period
    helpdesk_id: int | None
    funnel: Funnel
    screening: Screening
    bookings: Bookings
    deadlines: Deadlines
    interventions: Interventions
    funds: tuple[FundRunway, ...]
    outcomes: Outcomes


async def figures(
    *,
    session: AsyncSession,
    settings: Settings,
    period: Period,
    helpdesk_id: int | None = None,
    now: datetime,
) -> Figures:
    """The figures page's numbers for the period (and helpdesk, when given), as of `now`."""
    args = {
        "session": session, "settings": settings, "period": period,
        "helpdesk_id": helpdesk_id, "now": now,
    }  # fmt: skip
    found_funnel = await funnel(**args)  # type: ignore[arg-type]
    found_screening = await screening(**args)  # type: ignore[arg-type]
    found_bookings = await bookings(**args)  # type: ignore[arg-type]
    found_deadlines = await deadlines(**args)  # type: ignore[arg-type]
    of_plans = {"settings": settings, "period": period, "helpdesk_id": helpdesk_id}
    plans = (
        await session.execute(
            union_all(interventions.statement(**of_plans), outcomes.statement(**of_plans))  # type: ignore[arg-type]
        )
    ).all()
    return Figures(
        period=period,
        helpdesk_id=helpdesk_id,
        funnel=found_funnel,
        screening=found_screening,
        bookings=found_bookings,
        deadlines=found_deadlines,
        interventions=interventions.read(plans),
        funds=await funds(**args),  # type: ignore[arg-type]
        outcomes=outcomes.read(plans),
    )
