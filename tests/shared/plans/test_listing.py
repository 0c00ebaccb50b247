"""The plans list: the approval queue oldest first, filters, pages, who sees what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.plans import listing
from shared.plans import service as plans
from shared.plans.catalog import Kind
from shared.plans.errors import InvalidInput
from shared.plans.listing import PlanFilters
from shared.plans.models import PlanState
from shared.settings import Settings
from shared.staff.models import Role
from tests.shared.cases.builders import NOW, make_staff, member
from tests.shared.plans.builders import (
    admitted_case,
    complete_input,
    emergency,
    job_search,
    make_fund,
    plan_with,
)


async def test_the_queue_is_oldest_first_in_pages_and_filters_narrow_it(
    session: AsyncSession, settings: Settings
) -> None:
    giulia = member(await make_staff(session, "giulia"))
    marco = member(await make_staff(session, "marco"))
    boss = member(await make_staff(session, "carla", Role.COORDINATORE))
    fund = await make_fund(session, cents=100_000_00)
    submitted = []
    for n in range(5):
        worker = giulia if n % 2 == 0 else marco
        case = await admitted_case(session, settings, worker, name=f"Persona {n}")
        supports = (emergency(fund_id=fund.id),) if n < 3 else (job_search(),)
        await plan_with(session, settings, worker, case, complete_input(*supports))
        # Submitted one after the other, the last first in time: the queue reverses it.
        when = NOW + timedelta(hours=10 - n)
        await plans.submit_plan(session=session, case_id=case.id, staff=worker, now=when)
        submitted.append(case.id)
    draft = await admitted_case(session, settings, giulia, name="Bozza")
    await plan_with(session, settings, giulia, draft, complete_input(job_search()))

    queue = PlanFilters(state=PlanState.SUBMITTED)
    first = await listing.list_plans(session=session, filters=queue, staff=boss, limit=2)
    assert [r.case_id for r in first.rows] == submitted[::-1][:2]
    assert first.next_cursor is not None
    second = await listing.list_plans(
        session=session, filters=queue, staff=boss, after=first.next_cursor, limit=2
    )
    third = await listing.list_plans(
        session=session, filters=queue, staff=boss, after=second.next_cursor, limit=2
    )
    assert [r.case_id for r in (*first.rows, *second.rows, *third.rows)] == submitted[::-1]
    assert third.next_cursor is None
    assert first.rows[0].amount_cents == 0 and first.rows[0].kinds == ("job_search",)

    everything = await listing.list_plans(session=session, filters=PlanFilters(), staff=boss)
    assert len(everything.rows) == 6
    money = await listing.list_plans(
        session=session, filters=PlanFilters(kind=Kind.EMERGENCY_SUPPORT), staff=boss
    )
    assert {r.case_id for r in money.rows} == set(submitted[:3])
    assert all(r.amount_cents == 900_00 for r in money.rows)
    own = await listing.list_plans(
        session=session, filters=PlanFilters(owner_id=marco.user_id), staff=boss
    )
    assert {r.case_id for r in own.rows} == {submitted[1], submitted[3]}
    # A case worker sees the plans of their own cases only.
    theirs = await listing.list_plans(session=session, filters=PlanFilters(), staff=marco)
    assert {r.case_id for r in theirs.rows} == {submitted[1], submitted[3]}


@pytest.mark.parametrize(
    "raw",
    [{"state": "lost"}, {"owner": "9" * 12}, {"owner": "-1"}, {"kind": "holiday"}],
)
def test_wrong_filters_are_named(raw: dict[str, str]) -> None:
    with pytest.raises(InvalidInput) as refused:
        listing.parse_filters(raw)
    assert set(refused.value.errors) == set(raw)


@pytest.mark.parametrize("cursor", ["x", "1-", "1.5-3", "999999999999999999-1", "1-99999999999"])
async def test_a_forged_page_link_is_refused(
    session: AsyncSession, settings: Settings, cursor: str
) -> None:
    boss = member(await make_staff(session, "carla", Role.COORDINATORE))
    with pytest.raises(InvalidInput) as refused:
        await listing.list_plans(session=session, filters=PlanFilters(), staff=boss, after=cursor)
    assert refused.value.errors == {"after": listing.BAD_CURSOR}
