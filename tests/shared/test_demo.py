from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import demo
from shared.booking import availability, moderation
from shared.booking.models import Booking, Closure, Helpdesk, Slot, WaitlistEntry
from shared.cases import access
from shared.citizens.models import Citizen
from shared.db import utcnow
from shared.funds import service as funds
from shared.funds.errors import FundExhausted
from shared.funds.models import FundMovement, MovementKind
from shared.plans import service as plans
from shared.plans.catalog import Kind
from shared.plans.demo import BANCO, CARIPLO
from shared.plans.models import Plan, PlanState, PlanSupport
from shared.settings import Settings
from shared.staff.models import Role, StaffUser


async def test_demo_data_covers_every_area(session: AsyncSession, settings: Settings) -> None:
    logins = await demo.seed(session=session, settings=settings)
    assert {login.role.value for login in logins} == {"operatore", "coordinatore", "admin"}
    assert await session.scalar(select(func.count()).select_from(StaffUser)) == len(logins)
    assert await session.scalar(select(func.count()).select_from(Helpdesk)) == 3
    assert await session.scalar(select(func.count()).select_from(Closure)) >= 3
    assert await session.scalar(select(func.count()).select_from(Booking)) >= 3
    free = await availability.list_free_slots(session=session, settings=settings)
    assert len({slot.helpdesk_id for slot in free}) == 3


async def test_demo_has_a_moderated_helpdesk_with_requests(
    session: AsyncSession, settings: Settings
) -> None:
    await demo.seed(session=session, settings=settings)
    now = utcnow()
    [moderated] = (await session.scalars(select(Helpdesk).where(Helpdesk.moderated))).all()
    pending = await moderation.pending_requests(session=session)
    assert len(pending) >= 2
    assert {line.helpdesk_id for line in pending} == {moderated.id}
    assert all(line.request_expires_at and line.request_expires_at > now for line in pending)
    # One about to expire; the queue's order is how long each has waited.
    assert any(
        line.request_expires_at and line.request_expires_at < now + timedelta(hours=2)
        for line in pending
    )
    assert [line.created_at for line in pending] == sorted(line.created_at for line in pending)
    [expired] = await moderation.recently_expired(session=session, now=now)
    assert expired.helpdesk_id == moderated.id and expired.phone
    # Its place was freed.
    assert (
        await session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.id == expired.booking_id, Booking.state == "booked")
        )
        == 0
    )


async def test_demo_plans_in_every_state_paid_from_two_funds(
    session: AsyncSession, settings: Settings
) -> None:
    await demo.seed(session=session, settings=settings)
    today = utcnow().astimezone(settings.tz).date()
    by_state: dict[str, list[Plan]] = defaultdict(list)
    for plan in await session.scalars(select(Plan).order_by(Plan.id)):
        by_state[plan.state].append(plan)
    assert set(by_state) == {state.value for state in PlanState}

    # The coordinators' queue has an order: its plans have waited different numbers of days.
    queue = by_state[PlanState.SUBMITTED.value]
    waited = {p.submitted_at.astimezone(settings.tz).date() for p in queue if p.submitted_at}
    assert len(queue) >= 2
    assert len(waited) == len(queue)
    assert all(p.return_comment for p in by_state[PlanState.RETURNED.value])
    assert all(p.signed_on is None for p in by_state[PlanState.APPROVED.value])
    closed = by_state[PlanState.CLOSED.value]
    assert all(p.outcome and p.income_trend and p.debts_trend for p in closed)
    assert all(p.urgent_expenses_trend for p in closed)

    # Reviews: one due within the week, one overdue.
    active = by_state[PlanState.ACTIVE.value]
    reviews = [p.next_review_on for p in active if p.next_review_on is not None]
    assert any(today <= day <= today + timedelta(days=7) for day in reviews)
    assert any(day < today for day in reviews)
    assert all(p.signed_on is not None and p.signed_on <= today for p in active)

    kinds = set(await session.scalars(select(PlanSupport.kind)))
    assert kinds == {kind.value for kind in Kind}

    # Each fund's figures are its ledger's.
    balances = {b.name: b for b in await funds.balances(session=session)}
    assert set(balances) == {CARIPLO, BANCO}
    assert balances[CARIPLO].funder == "Fondazione Cariplo"
    assert balances[BANCO].funder == "Banco dell'energia onlus"
    deposits: dict[str, int] = {}
    for balance in balances.values():
        moved: dict[str, int] = defaultdict(int)
        counted: dict[str, int] = defaultdict(int)
        for movement in await session.scalars(
            select(FundMovement).where(FundMovement.fund_id == balance.fund_id)
        ):
            moved[movement.kind] += movement.amount_cents
            counted[movement.kind] += 1
            if movement.kind == MovementKind.PAYMENT.value:
                assert movement.paid_on is not None
                assert movement.paid_on <= today
        assert counted[MovementKind.COMMITMENT.value] >= 1
        assert counted[MovementKind.PAYMENT.value] >= 2
        assert balance.deposited_cents == moved[MovementKind.DEPOSIT.value]
        assert balance.paid_cents == moved[MovementKind.PAYMENT.value]
        assert balance.committed_cents == (
            moved[MovementKind.COMMITMENT.value]
            - moved[MovementKind.RELEASE.value]
            - moved[MovementKind.PAYMENT.value]
        )
        assert balance.left_cents == (
            balance.deposited_cents - balance.committed_cents - balance.paid_cents
        )
        assert 0 < balance.left_cents < balance.deposited_cents
        deposits[balance.name] = counted[MovementKind.DEPOSIT.value]
    assert balances[CARIPLO].deposited_cents == 60_000_00
    assert deposits[CARIPLO] == 2
    paid_plans = set(
        await session.scalars(
            select(FundMovement.plan_id).where(FundMovement.kind == MovementKind.PAYMENT.value)
        )
    )
    assert {p.id for p in active} <= paid_plans

    # A plan in the queue needs more of the nearly spent fund than it has left...
    banco = balances[BANCO]
    needs = {
        plan.id: await session.scalar(
            select(func.coalesce(func.sum(PlanSupport.amount_cents), 0)).where(
                PlanSupport.plan_id == plan.id, PlanSupport.fund_id == banco.fund_id
            )
        )
        or 0
        for plan in queue
    }
    short = [(plan.case_id, needs[plan.id]) for plan in queue if needs[plan.id] > banco.left_cents]
    assert len(short) == 1
    case_id, needed = short[0]
    # ...so approving it is refused, naming the fund, and leaves it in the queue.
    coordinator = await session.scalar(
        select(StaffUser).where(StaffUser.role == Role.COORDINATORE.value)
    )
    assert coordinator is not None
    staff = access.StaffMember(coordinator.id, Role.COORDINATORE, "staff:coordinatore")
    with pytest.raises(FundExhausted) as refused:
        async with session.begin_nested():
            await plans.approve_plan(session=session, case_id=case_id, staff=staff, now=utcnow())
    assert refused.value.fund_name == BANCO
    assert refused.value.left_cents == banco.left_cents
    assert refused.value.needed_cents == needed
    still = await session.scalar(select(Plan.state).where(Plan.case_id == case_id))
    assert still == PlanState.SUBMITTED.value


async def test_demo_shows_urgent_cases_repeated_no_shows_and_an_earlier_place_offered(
    session: AsyncSession, settings: Settings
) -> None:
    await demo.seed(session=session, settings=settings)
    urgent = (await session.scalars(select(Citizen).where(Citizen.urgent.is_(True)))).all()
    assert len(urgent) >= 3
    # Someone missed two appointments (the board's "two or more no-shows").
    twice = (
        await session.execute(
            select(Booking.citizen_id)
            .where(Booking.state == "no_show")
            .group_by(Booking.citizen_id)
            .having(func.count() >= 2)
        )
    ).all()
    assert len(twice) >= 1
    # An urgent citizen has an open offer of an earlier place, which would move their booking.
    [offer] = (
        await session.scalars(select(WaitlistEntry).where(WaitlistEntry.offered_by.is_not(None)))
    ).all()
    assert offer.state == "offered" and offer.replaces_booking_id is not None
    replaced = await session.get(Booking, offer.replaces_booking_id)
    assert replaced is not None and replaced.state == "booked"
    slot = await session.get(Slot, offer.offered_slot_id)
    assert slot is not None and slot.starts_at < replaced.starts_at
    citizen = await session.get(Citizen, offer.citizen_id)
    assert citizen is not None and citizen.urgent
