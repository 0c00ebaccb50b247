"""The funnel (SPEC J6): how far the citizens who first came in the period went.

The cohort is the citizens first seen in the period (`Citizen.created_at`: a Telegram
citizen's record is made when they accept the privacy notice, a phone or walk-in one when
staff start the questionnaire for them), and each stage counts those of them who reached
it by `now`, whenever they did:

- started: the cohort, plus the privacy notices refused in the period (anonymous: a
  refusal leaves no citizen, only a count);
- consented: the cohort citizens who accepted the notice;
- completed: who confirmed the questionnaire;
- eligible: who have a case that is eligible (a coordinator's decision first);
- booked: who made a booking, whatever became of it; attended: who came to one;
- plan approved: whose case has a plan a coordinator approved; closed: whose plan was
  closed with an outcome.

An erased citizen (SPEC J8: at their request, by a coordinator or by retention) is still
counted: erasure leaves an anonymous record with the dates and states these stages read
(`shared.privacy.erasure`).

With a helpdesk, the stages before booking are not counted (`None`): nobody has chosen a
helpdesk yet then; from booking on, only the bookings and cases at that helpdesk count.

Median times, in whole days, over the same cohort: first contact (the citizen's first
record) to the interview's outcome, and the interview's outcome to the plan's first
approval. Each is read as a histogram (one row per number of days) and its median taken
here: SQLite has no percentile function, and the histogram has at most a few hundred rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, exists, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking.models import Booking, BookingState
from shared.cases.models import Case, Interview
from shared.citizens.models import Citizen, ConsentRefusal
from shared.figures.period import Period, days_between, median, share
from shared.intake.models import Intake, IntakeState
from shared.plans.models import Plan, PlanState
from shared.settings import Settings

STAGES = (
    "started",
    "consented",
    "completed",
    "eligible",
    "booked",
    "attended",
    "plan_approved",
    "closed",
)
# Not tied to a helpdesk: nobody has chosen one before booking.
BEFORE_HELPDESK = frozenset(STAGES[:4])


@dataclass(frozen=True, slots=True)
class Stage:
    key: str
    # None: not counted with a helpdesk chosen.
    count: int | None
    # This stage's count over the previous stage's, when both are counted and it isn't 0.
    conversion: float | None


@dataclass(frozen=True, slots=True)
class Funnel:
    stages: tuple[Stage, ...]
    consent_refusals: int
    # Whole days; None when nobody in the cohort got that far.
    median_days_to_interview: float | None
    median_days_interview_to_plan: float | None
    interviews_timed: int
    plans_timed: int

    def count(self, key: str) -> int | None:
        return next(stage.count for stage in self.stages if stage.key == key)


def _counting(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def funnel(
    *,
    session: AsyncSession,
    settings: Settings,
    period: Period,
    helpdesk_id: int | None = None,
    now: datetime,
) -> Funnel:
    """The funnel of the citizens first seen in the period; two statements."""
    del now  # every stage counts what happened up to the moment the page is read
    tz = settings.tz
    cohort = period.within(Citizen.created_at, tz)
    at_helpdesk = [Booking.helpdesk_id == helpdesk_id] if helpdesk_id is not None else []
    case_at_helpdesk = [Case.helpdesk_id == helpdesk_id] if helpdesk_id is not None else []

    booked = exists().where(Booking.citizen_id == Citizen.id, *at_helpdesk)
    attended = exists().where(
        Booking.citizen_id == Citizen.id,
        Booking.state == BookingState.ATTENDED.value,
        *at_helpdesk,
    )
    eligible = exists().where(
        Case.citizen_id == Citizen.id,
        func.coalesce(Case.eligibility_override, Case.eligible).is_(True),
    )

    def with_plan(*conditions: Any) -> Any:
        return exists().where(
            Case.citizen_id == Citizen.id,
            Plan.case_id == Case.id,
            *case_at_helpdesk,
            *conditions,
        )

    refusals = (
        select(func.count())
        .select_from(ConsentRefusal)
        .where(period.within(ConsentRefusal.at, tz))
        .scalar_subquery()
    )
    counts = (
        (
            await session.execute(
                select(
                    refusals.label("refusals"),
                    func.count(Citizen.id).label("cohort"),
                    func.count(Citizen.consented_at).label("consented"),
                    _counting(Intake.state == IntakeState.COMPLETED.value).label("completed"),
                    _counting(eligible).label("eligible"),
                    _counting(booked).label("booked"),
                    _counting(attended).label("attended"),
                    _counting(with_plan(Plan.approved_at.is_not(None))).label("plan_approved"),
                    _counting(with_plan(Plan.state == PlanState.CLOSED.value)).label("closed"),
                )
                .select_from(Citizen)
                .outerjoin(Intake, Intake.citizen_id == Citizen.id)
                .where(cohort)
            )
        )
        .one()
        ._mapping
    )
    raw = {
        "started": int(counts["cohort"]) + int(counts["refusals"]),
        **{key: int(counts[key]) for key in STAGES[1:]},
    }

    to_interview = days_between(session, Interview.completed_at, Citizen.created_at)
    interview_to_plan = days_between(session, Plan.approved_at, Interview.completed_at)
    first = (
        select(literal("interview").label("what"), to_interview.label("days"), func.count())
        .select_from(Interview)
        .join(Case, Case.id == Interview.case_id)
        .join(Citizen, Citizen.id == Case.citizen_id)
        .where(cohort, Interview.completed_at.is_not(None), *case_at_helpdesk)
        .group_by(to_interview)
    )
    second = (
        select(literal("plan").label("what"), interview_to_plan.label("days"), func.count())
        .select_from(Plan)
        .join(Case, Case.id == Plan.case_id)
        .join(Interview, Interview.case_id == Case.id)
        .join(Citizen, Citizen.id == Case.citizen_id)
        .where(
            cohort,
            Plan.approved_at.is_not(None),
            Interview.completed_at.is_not(None),
            *case_at_helpdesk,
        )
        .group_by(interview_to_plan)
    )
    histograms: dict[str, list[tuple[int, int]]] = {"interview": [], "plan": []}
    for what, days, n in (await session.execute(union_all(first, second))).all():
        histograms[what].append((int(days), int(n)))

    stages = []
    previous: int | None = None
    for key in STAGES:
        count = None if helpdesk_id is not None and key in BEFORE_HELPDESK else raw[key]
        conversion = share(count, previous) if count is not None and previous is not None else None
        stages.append(Stage(key, count, conversion))
        previous = count
    return Funnel(
        stages=tuple(stages),
        consent_refusals=int(counts["refusals"]),
        median_days_to_interview=median(histograms["interview"]),
        median_days_interview_to_plan=median(histograms["plan"]),
        interviews_timed=sum(n for _, n in histograms["interview"]),
        plans_timed=sum(n for _, n in histograms["plan"]),
    )
