"""The plans list: the coordinators' approval queue and every plan, filtered, in pages.

- The queue (`state=submitted`) is oldest first: the plan waiting longest comes first,
  with how long it has waited.
- Any other list is the most recently changed first.

Filters: state, case worker (the plan's owner), intervention type. Pages are keyset
pages (`after` a cursor), so page 50 costs what page 1 does; a page is three statements
whatever the number of plans: the rows, their supports' kinds, and one more row to know
whether a next page exists is read with the rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases import access
from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.i18n import N_
from shared.limits import MAX_ID
from shared.plans import catalog
from shared.plans.errors import InvalidInput
from shared.plans.models import Plan, PlanState, PlanSupport, SupportState
from shared.staff.models import StaffUser

PAGE_SIZE = 25
CHOOSE = N_("Choose one of the options.")
BAD_CURSOR = N_("This page link is not valid any more: start again from the first page.")
# A page link: the microseconds since the epoch of the last row's time, and its id.
_CURSOR = re.compile(r"^(\d{1,17})-(\d{1,10})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PlanFilters:
    state: PlanState | None = None
    owner_id: int | None = None
    kind: catalog.Kind | None = None

    @property
    def is_queue(self) -> bool:
        return self.state is PlanState.SUBMITTED


def parse_filters(raw: Mapping[str, str]) -> PlanFilters:
    """Filters from the list's query string; `InvalidInput` names each wrong one."""
    errors: dict[str, str] = {}
    state = owner = kind = None
    value = (raw.get("state") or "").strip()
    if value:
        try:
            state = PlanState(value)
        except ValueError:
            errors["state"] = CHOOSE
    value = (raw.get("owner") or "").strip()
    if value:
        if value.isdigit() and 1 <= int(value) <= MAX_ID:
            owner = int(value)
        else:
            errors["owner"] = CHOOSE
    value = (raw.get("kind") or "").strip()
    if value:
        try:
            kind = catalog.Kind(value)
        except ValueError:
            errors["kind"] = CHOOSE
    if errors:
        raise InvalidInput(errors)
    return PlanFilters(state=state, owner_id=owner, kind=kind)


@dataclass(frozen=True, slots=True)
class PlanRow:
    plan_id: int
    case_id: int
    state: str
    citizen_name: str | None
    owner_name: str | None
    submitted_at: datetime | None
    updated_at: datetime
    next_review_on: date | None
    kinds: tuple[str, ...]
    amount_cents: int


@dataclass(frozen=True, slots=True)
class PlanPage:
    rows: tuple[PlanRow, ...]
    next_cursor: str | None


def _encode(at: datetime, plan_id: int) -> str:
    return f"{(at - _EPOCH) // timedelta(microseconds=1)}-{plan_id}"


def _decode(cursor: str) -> tuple[datetime, int]:
    match = _CURSOR.fullmatch(cursor)
    if match is None or int(match[2]) > MAX_ID:
        raise InvalidInput({"after": BAD_CURSOR})
    # At most 17 digits: a few thousand years, well inside `datetime`.
    return _EPOCH + timedelta(microseconds=int(match[1])), int(match[2])


async def list_plans(
    *,
    session: AsyncSession,
    filters: PlanFilters,
    staff: access.StaffMember,
    after: str | None = None,
    limit: int = PAGE_SIZE,
) -> PlanPage:
    """A page of the plans `staff` may see, as `filters` narrows them."""
    order_column = Plan.submitted_at if filters.is_queue else Plan.updated_at
    query = (
        select(
            Plan.id,
            Plan.case_id,
            Plan.state,
            Citizen.name,
            StaffUser.display_name,
            Plan.submitted_at,
            Plan.updated_at,
            Plan.next_review_on,
            order_column,
        )
        .join(Case, Case.id == Plan.case_id)
        .join(Citizen, Citizen.id == Case.citizen_id)
        .outerjoin(StaffUser, StaffUser.id == Plan.owner_id)
        .where(access.visible_to(staff))
    )
    if filters.state is not None:
        query = query.where(Plan.state == filters.state.value)
    if filters.owner_id is not None:
        query = query.where(Plan.owner_id == filters.owner_id)
    if filters.kind is not None:
        query = query.where(
            exists().where(
                PlanSupport.plan_id == Plan.id,
                PlanSupport.kind == filters.kind.value,
                PlanSupport.state != SupportState.CANCELLED.value,
            )
        )
    if after is not None:
        at, plan_id = _decode(after)
        # The plain bound on the time first, as the cases list has it, so that any planner
        # seeks the index; with the OR alone a deep page took 269 ms of SQL on SQLite at
        # 100k plans (docs/benchmarks.md).
        if filters.is_queue:
            query = query.where(order_column >= at, or_(order_column > at, Plan.id > plan_id))
        else:
            query = query.where(order_column <= at, or_(order_column < at, Plan.id < plan_id))
    if filters.is_queue:
        query = query.order_by(order_column.asc(), Plan.id.asc())
    else:
        query = query.order_by(order_column.desc(), Plan.id.desc())
    found = (await session.execute(query.limit(limit + 1))).all()
    page, more = found[:limit], len(found) > limit
    ids = [row[0] for row in page]
    kinds: dict[int, list[str]] = {plan_id: [] for plan_id in ids}
    amounts: dict[int, int] = dict.fromkeys(ids, 0)
    if ids:
        supports = await session.execute(
            select(PlanSupport.plan_id, PlanSupport.kind, PlanSupport.amount_cents)
            .where(PlanSupport.plan_id.in_(ids), PlanSupport.state != SupportState.CANCELLED.value)
            .order_by(PlanSupport.plan_id, PlanSupport.position)
        )
        for plan_id, kind, cents in supports.all():
            if kind not in kinds[plan_id]:
                kinds[plan_id].append(kind)
            amounts[plan_id] += cents
    rows = tuple(
        PlanRow(
            plan_id=row[0], case_id=row[1], state=row[2], citizen_name=row[3],
            owner_name=row[4], submitted_at=row[5], updated_at=row[6], next_review_on=row[7],
            kinds=tuple(kinds[row[0]]), amount_cents=amounts[row[0]],
        )
        for row in page
    )  # fmt: skip
    if not (page and more):
        return PlanPage(rows, None)
    last = page[-1]
    # Submitted plans always have `submitted_at`; the fallback only satisfies the types.
    return PlanPage(rows, _encode(last[8] or last[6], last[0]))


async def plan_owners(*, session: AsyncSession) -> tuple[tuple[int, str], ...]:
    """(id, name) of everyone who can own a plan (case workers and coordinators), by name:
    the list's "case worker" filter."""
    found = await session.execute(
        select(StaffUser.id, StaffUser.display_name)
        .where(StaffUser.role.in_(access.ASSIGNABLE_ROLES))
        .order_by(StaffUser.display_name)
    )
    return tuple((i, name) for i, name in found.all())


# --- reviews due -------------------------------------------------------------------------

# "Due soon": within a week, as Primero's tasks are "upcoming" (PLAN-PRACTICE.md).
REVIEW_SOON_DAYS = 7
# More active plans than one person or the whole program reviews in a fortnight.
MAX_DUE = 200


@dataclass(frozen=True, slots=True)
class DueReview:
    plan_id: int
    case_id: int
    citizen_name: str | None
    owner_name: str | None
    next_review_on: date
    # Days from today to the review: 0 today, negative when it is overdue by that many.
    days_left: int

    @property
    def overdue(self) -> bool:
        return self.days_left < 0


async def plans_due_for_review(
    *,
    session: AsyncSession,
    staff: access.StaffMember,
    today: date,
    within_days: int = REVIEW_SOON_DAYS,
    limit: int = MAX_DUE,
) -> tuple[DueReview, ...]:
    """The active plans whose review is overdue or due within `within_days` of `today`:
    a case worker's own plans, every plan for a coordinator (none for an administrator);
    overdue first, the longest overdue first, then the soonest. One statement."""
    if not 0 <= within_days <= 366 or not 1 <= limit <= 1000:
        raise ValueError("within_days must be 0..366 and limit 1..1000")
    query = (
        select(Plan.id, Plan.case_id, Citizen.name, StaffUser.display_name, Plan.next_review_on)
        .join(Case, Case.id == Plan.case_id)
        .join(Citizen, Citizen.id == Case.citizen_id)
        .outerjoin(StaffUser, StaffUser.id == Plan.owner_id)
        .where(
            Plan.state == PlanState.ACTIVE.value,
            Plan.next_review_on.is_not(None),
            Plan.next_review_on <= today + timedelta(days=within_days),
            access.visible_to(staff),
        )
        .order_by(Plan.next_review_on.asc(), Plan.id.asc())
        .limit(limit)
    )
    if not staff.sees_all:
        query = query.where(Plan.owner_id == staff.user_id)
    due = []
    for plan_id, case_id, citizen, owner, review_on in (await session.execute(query)).all():
        assert review_on is not None  # the query's own condition
        due.append(
            DueReview(
                plan_id=plan_id, case_id=case_id, citizen_name=citizen, owner_name=owner,
                next_review_on=review_on, days_left=(review_on - today).days,
            )
        )  # fmt: skip
    return tuple(due)
