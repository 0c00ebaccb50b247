"""On the demo's data every chart of `/figures` has something to show (several months of
history, `shared.figures.demo`), whatever day the demo starts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shared import demo
from shared.db import utcnow
from shared.figures import service
from shared.figures.bookings import CANCELLED_BY
from shared.figures.interventions import STATES
from shared.figures.period import Period
from shared.plans.catalog import CATALOG
from shared.plans.models import PlanOutcome
from shared.settings import Settings


async def test_every_figure_has_data_on_the_demo(session: AsyncSession, settings: Settings) -> None:
    await demo.seed(session=session, settings=settings)
    now = utcnow()
    period = Period.last_months(now.astimezone(settings.tz).date())
    found = await service.figures(session=session, settings=settings, period=period, now=now)

    funnel = found.funnel
    assert all(stage.count for stage in funnel.stages), funnel.stages
    assert funnel.consent_refusals > 0
    assert funnel.median_days_to_interview is not None
    assert funnel.median_days_interview_to_plan is not None

    screening = found.screening
    # Abandoned at many questions, still open and wiped by the expiry sweep (counted on).
    assert sum(1 for q in screening.questions if q.stopped) >= 8, screening.questions
    assert screening.unfinished > 0 and screening.expired > 0
    assert all(n > 0 for _, n in screening.reasons), screening.reasons

    bookings = found.bookings
    # Every helpdesk, over several months of weeks.
    assert len(bookings.helpdesk_ids) == 3
    assert len({row.week for row in bookings.per_helpdesk_week}) >= 12
    assert bookings.attended > 0 and bookings.no_shows > 0
    cancelled = dict(bookings.cancelled)
    assert set(cancelled) == set(CANCELLED_BY)
    assert cancelled["citizen"] > 0 and cancelled["staff"] > 0

    for row in found.deadlines.rows:
        assert row.overdue + row.soon > 0, row

    kinds = {k.kind: k for k in found.interventions.kinds}
    assert set(kinds) == set(CATALOG)
    assert all(k.total > 0 for k in kinds.values())
    assert all(any(k.count(state) for k in kinds.values()) for state in STATES)

    assert len(found.funds) == 2
    assert all(f.deposited_cents and f.paid_cents and f.committed_cents for f in found.funds)
    assert all(f.weeks_left is not None for f in found.funds)
    assert any(f.warning for f in found.funds) and not all(f.warning for f in found.funds)

    outcomes = found.outcomes
    assert all(n > 0 for _, n in outcomes.by_outcome), outcomes.by_outcome
    assert {o for o, _ in outcomes.by_outcome} == {o.value for o in PlanOutcome}
    assert 0 < outcomes.improved < outcomes.checked == outcomes.closed
