"""Every figure of the page at once (`figures`): one call for the route, nine statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared.figures.bookings import Bookings, bookings
from shared.figures.deadlines import Deadlines, deadlines
from shared.figures.funds import FundRunway, funds
from shared.figures.funnel import Funnel, funnel
from shared.figures.interventions import Interventions, interventions
from shared.figures.outcomes import Outcomes, outcomes
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
    return Figures(
        period=period,
        helpdesk_id=helpdesk_id,
        funnel=await funnel(**args),  # type: ignore[arg-type]
        screening=await screening(**args),  # type: ignore[arg-type]
        bookings=await bookings(**args),  # type: ignore[arg-type]
        deadlines=await deadlines(**args),  # type: ignore[arg-type]
        interventions=await interventions(**args),  # type: ignore[arg-type]
        funds=await funds(**args),  # type: ignore[arg-type]
        outcomes=await outcomes(**args),  # type: ignore[arg-type]
    )
