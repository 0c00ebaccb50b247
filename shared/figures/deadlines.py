"""Deadlines of the path (SPEC J6): interviews, plans and reviews due soon or overdue.

- an eligible case is interviewed within `settings.interview_due_days` of becoming
  eligible: the questionnaire's confirmation (the case's opening) or, when a coordinator
  admitted a case the questionnaire ruled out, that decision (`override_at`); it is due
  while no outcome is recorded (the case is new, booked or checked in);
- an admitted case has its plan approved within `settings.plan_due_days` of the
  interview's outcome; due while no plan of the case was ever approved;
- an active plan is reviewed on its `next_review_on` (every `plan_review_days`).

"Overdue": the due day is before today. "Due within a week": today or one of the six
days after it, as the list of reviews due (`shared.plans.listing.REVIEW_SOON_DAYS`) says.
The conditions here are the ones the case list filters by (`shared.cases.listing`,
`?due=interview&due_from=…&due_to=…`), so a count on the figures page and the list it
links to can't disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shared.cases.models import DRAFT_STATES, Case, CaseState, Interview, Outcome
from shared.figures.period import Period
from shared.plans.listing import REVIEW_SOON_DAYS
from shared.plans.models import Plan, PlanState
from shared.settings import Settings


class Deadline(StrEnum):
    INTERVIEW = "interview"
    PLAN = "plan"
    REVIEW = "review"


def _start(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time.min, tzinfo=settings.tz)


def _instant_due(
    instant: Any, days: int, first: date | None, last: date | None, settings: Settings
) -> list[ColumnElement[bool]]:
    """`instant` + `days` falls on a local day from `first` to `last` (either open)."""
    conditions = []
    if first is not None:
        conditions.append(instant >= _start(first - timedelta(days=days), settings))
    if last is not None:
        conditions.append(instant < _start(last - timedelta(days=days - 1), settings))
    return conditions


def eligible_since() -> Any:
    """When the case became eligible: a coordinator's admission, else its opening."""
    return case((Case.eligibility_override.is_(True), Case.override_at), else_=Case.opened_at)


def interview_due(settings: Settings, first: date | None, last: date | None) -> ColumnElement[bool]:
    """Cases (of `case_file`) whose interview is due from `first` to `last`."""
    return and_(
        func.coalesce(Case.eligibility_override, Case.eligible).is_(True),
        Case.state.in_(DRAFT_STATES),
        *_instant_due(eligible_since(), settings.interview_due_days, first, last, settings),
    )


def plan_due(settings: Settings, first: date | None, last: date | None) -> ColumnElement[bool]:
    """Cases (of `case_file`) whose plan is due for approval from `first` to `last`."""
    interviewed = select(Interview.case_id).where(
        Interview.outcome == Outcome.ADMITTED.value,
        *_instant_due(Interview.completed_at, settings.plan_due_days, first, last, settings),
    )
    approved = exists().where(Plan.case_id == Case.id, Plan.approved_at.is_not(None))
    return and_(Case.state == CaseState.INTERVIEWED.value, Case.id.in_(interviewed), ~approved)


def review_due(first: date | None, last: date | None) -> ColumnElement[bool]:
    """Plans (of `plan`) whose review is due from `first` to `last`."""
    conditions = [Plan.state == PlanState.ACTIVE.value, Plan.next_review_on.is_not(None)]
    if first is not None:
        conditions.append(Plan.next_review_on >= first)
    if last is not None:
        conditions.append(Plan.next_review_on <= last)
    return and_(*conditions)


def windows(today: date) -> dict[str, tuple[date | None, date]]:
    """The two windows a deadline is counted in: overdue, and due within a week."""
    return {
        "overdue": (None, today - timedelta(days=1)),
        "soon": (today, today + timedelta(days=REVIEW_SOON_DAYS - 1)),
    }


@dataclass(frozen=True, slots=True)
class DeadlineCount:
    deadline: Deadline
    overdue: int
    soon: int
    # The windows, for the links to the list of those cases.
    overdue_to: date
    soon_from: date
    soon_to: date


@dataclass(frozen=True, slots=True)
class Deadlines:
    rows: tuple[DeadlineCount, ...]

    def of(self, deadline: Deadline) -> DeadlineCount:
        return next(row for row in self.rows if row.deadline is deadline)


async def deadlines(
    *,
    session: AsyncSession,
    settings: Settings,
    period: Period | None = None,
    helpdesk_id: int | None = None,
    now: datetime,
) -> Deadlines:
    """Interviews, plans and reviews overdue and due within a week, as of `now`; one statement.

    Deadlines are about today, not about the period (`period` is accepted for the common
    signature and ignored). With a helpdesk, only the cases whose (last) appointment is
    there count.
    """
    del period
    today = now.astimezone(settings.tz).date()
    spans = windows(today)
    where_helpdesk = [Case.helpdesk_id == helpdesk_id] if helpdesk_id is not None else []

    def count_cases(condition: ColumnElement[bool]) -> Any:
        return (
            select(func.count()).select_from(Case).where(condition, *where_helpdesk)
        ).scalar_subquery()

    def count_plans(condition: ColumnElement[bool]) -> Any:
        query = select(func.count()).select_from(Plan).where(condition)
        if helpdesk_id is not None:
            query = query.join(Case, Case.id == Plan.case_id).where(*where_helpdesk)
        return query.scalar_subquery()

    columns = []
    for name, (first, last) in spans.items():
        columns += [
            count_cases(interview_due(settings, first, last)).label(f"interview_{name}"),
            count_cases(plan_due(settings, first, last)).label(f"plan_{name}"),
            count_plans(review_due(first, last)).label(f"review_{name}"),
        ]
    row = (await session.execute(select(*columns))).one()._mapping
    soon_from, soon_to = spans["soon"]
    overdue_to = spans["overdue"][1]
    assert soon_from is not None
    return Deadlines(
        tuple(
            DeadlineCount(
                deadline=deadline,
                overdue=int(row[f"{deadline.value}_overdue"]),
                soon=int(row[f"{deadline.value}_soon"]),
                overdue_to=overdue_to,
                soon_from=soon_from,
                soon_to=soon_to,
            )
            for deadline in Deadline
        )
    )
