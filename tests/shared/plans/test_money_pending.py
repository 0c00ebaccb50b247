"""What submitted plans will ask of each fund (`shared.plans.money.pending_by_fund`)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.funds import service as funds
from shared.funds.models import Payee, PaymentMethod
from shared.plans import money
from shared.plans import service as plans
from shared.plans.form import SupportInput
from shared.plans.models import PlanSupport, SupportState
from shared.settings import Settings
from shared.staff.models import Role
from tests.shared.cases.builders import NOW, make_staff, member
from tests.shared.plans.builders import (
    People,
    admitted_case,
    as_input,
    complete_input,
    emergency,
    job_search,
    make_fund,
    make_people,
    plan_with,
)

LATER = NOW + timedelta(days=2)


@pytest.fixture
async def people(session: AsyncSession) -> People:
    return await make_people(session)


async def _plan(
    session: AsyncSession,
    settings: Settings,
    people: People,
    *supports: SupportInput,
    submit: bool = True,
) -> int:
    """A case whose plan holds `supports` (and a job search), submitted unless told not."""
    case = await admitted_case(session, settings, people.worker)
    await plan_with(session, settings, people.worker, case, complete_input(*supports, job_search()))
    if submit:
        await plans.submit_plan(session=session, case_id=case.id, staff=people.worker, now=NOW)
    return case.id


async def test_no_plans_nothing_pending(session: AsyncSession) -> None:
    await make_fund(session, cents=1_000_00)
    assert await money.pending_by_fund(session=session) == {}


async def test_submitted_plans_count_per_fund_drafts_and_approved_plans_do_not(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    energy = await make_fund(session, cents=10_000_00)
    rent = await make_fund(session, cents=10_000_00, name="Fondo affitti")
    # 300 € × 3 months from the first fund, 150 € × 2 from the second, in one plan.
    await _plan(
        session, settings, people,
        emergency(fund_id=energy.id), emergency(fund_id=rent.id, monthly="150", months="2"),
    )  # fmt: skip
    await _plan(session, settings, people, emergency(fund_id=energy.id, monthly="100"))
    await _plan(session, settings, people, emergency(fund_id=energy.id), submit=False)
    approved = await _plan(session, settings, people, emergency(fund_id=rent.id, monthly="500"))
    await plans.approve_plan(session=session, case_id=approved, staff=people.boss, now=LATER)

    assert await money.pending_by_fund(session=session) == {
        energy.id: 900_00 + 300_00,
        rent.id: 300_00,
    }


async def test_a_cancelled_support_asks_for_nothing(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    fund = await make_fund(session, cents=10_000_00)
    await _plan(session, settings, people, emergency(fund_id=fund.id))
    # Saving a cancelled support zeroes its amount; even a row that kept one counts nothing.
    await session.execute(update(PlanSupport).values(state=SupportState.CANCELLED.value))
    assert await money.pending_by_fund(session=session) == {}


async def test_a_plan_sent_back_asks_only_for_what_is_not_committed_yet(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    fund = await make_fund(session, cents=10_000_00)
    case_id = await _plan(session, settings, people, emergency(fund_id=fund.id))
    await plans.approve_plan(session=session, case_id=case_id, staff=people.boss, now=LATER)
    rows = await plans.get_plan(session=session, case_id=case_id, staff=people.worker)
    support = rows.supports[0]
    # Part of the committed money is paid already: committed "paid or not" still counts it.
    await funds.record_payment(
        session=session, fund_id=fund.id, support_id=support.id, plan_id=rows.plan.id,
        amount_cents=300_00, paid_on=date(2027, 1, 5), paid_to=Payee.LANDLORD,
        method=PaymentMethod.BANK_TRANSFER, actor="staff:carla",
    )  # fmt: skip
    current = as_input(rows)
    higher = emergency(fund_id=fund.id, monthly="400", id=support.id)
    result = await plans.save_plan(
        session=session, case_id=case_id,
        data=dataclasses.replace(current, supports=(higher, *current.supports[1:])),
        staff=people.worker, settings=settings, now=LATER,
    )  # fmt: skip
    assert result.sent_back

    # 400 € × 3 now, 900 € of it committed (300 € of those paid): 300 € to commit.
    assert await money.pending_by_fund(session=session) == {fund.id: 300_00}
    await plans.approve_plan(session=session, case_id=case_id, staff=people.boss, now=LATER)
    assert await money.pending_by_fund(session=session) == {}
    [balance] = await funds.balances(session=session)
    assert (balance.committed_cents, balance.paid_cents) == (900_00, 300_00)


async def test_the_overview_warns_when_pending_passes_what_is_left(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    short = await make_fund(session, cents=500_00, name="Fondo piccolo")
    ample = await make_fund(session, cents=5_000_00)
    await _plan(session, settings, people, emergency(fund_id=short.id))
    await _plan(session, settings, people, emergency(fund_id=ample.id))
    overview = {o.balance.name: o for o in await money.fund_overview(session=session)}
    assert overview["Fondo piccolo"].pending_cents == 900_00
    assert overview["Fondo piccolo"].short_of_pending
    assert overview["Doniamo Energia"].pending_cents == 900_00
    assert not overview["Doniamo Energia"].short_of_pending


async def test_pending_is_one_statement_however_many_plans(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        people = People(
            member(await make_staff(session, "giulia")),
            member(await make_staff(session, "carla", Role.COORDINATORE)),
        )
        fund = await make_fund(session, cents=100_000_00)
        for _ in range(4):
            await _plan(session, settings, people, emergency(fund_id=fund.id))
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with database.transaction() as session:
            pending = await money.pending_by_fund(session=session)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert pending == {fund.id: 4 * 900_00}
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    assert "GROUP BY" in selects[0].upper()
