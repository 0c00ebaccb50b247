"""Concurrent approvals and payments never spend a cent twice (both databases).

Each contender runs in its own transaction, as two coordinators' requests would.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.funds import service as funds
from shared.funds.errors import FundError, FundExhausted, FundNameTaken, PaymentExceedsCommitment
from shared.funds.models import Fund, FundMovement, MovementKind, Payee, PaymentMethod
from tests.shared.funds.builders import (
    NOW,
    LedgerTotals,
    SupportRef,
    ledger_totals,
    make_fund,
    make_supports,
    stored_totals,
)

AMOUNT = 125_050  # 1.250,50 €


async def _attempt(database: Database, work: Callable[[AsyncSession], Awaitable[object]]) -> str:
    try:
        async with database.transaction() as session:
            await work(session)
    except FundError as exc:
        return type(exc).__name__
    return "done"


def _commitment(fund_id: int, support: SupportRef) -> Callable[[AsyncSession], Awaitable[object]]:
    return lambda session: funds.commit_funds(
        session=session, fund_id=fund_id, support_id=support.support_id, plan_id=support.plan_id,
        amount_cents=AMOUNT, actor=f"staff:coordinatore{support.plan_id}", now=NOW,
    )  # fmt: skip


def _payment(
    fund_id: int, support: SupportRef, cents: int
) -> Callable[[AsyncSession], Awaitable[object]]:
    return lambda session: funds.record_payment(
        session=session, fund_id=fund_id, support_id=support.support_id, plan_id=support.plan_id,
        amount_cents=cents,
        paid_on=date(2026, 12, 7), paid_to=Payee.LANDLORD, method=PaymentMethod.BANK_TRANSFER,
        actor="staff:operatore", now=NOW,
    )  # fmt: skip


async def _support_figures(session: AsyncSession, support: SupportRef) -> tuple[int, int]:
    """What the support still has committed and what it was paid, in cents."""
    return (
        await funds.outstanding_for_support(session=session, support_id=support.support_id),
        await funds.paid_for_support(session=session, support_id=support.support_id),
    )


async def _movements(session: AsyncSession, kind: MovementKind) -> int:
    query = select(func.count()).select_from(FundMovement).where(FundMovement.kind == kind.value)
    return int(await session.scalar(query) or 0)


async def _commitment_race(database: Database, contenders: int, fits: int) -> Counter[str]:
    async with database.transaction() as session:
        # Room for `fits` commitments and 1.250,49 € more: one cent short of another.
        fund = await make_fund(session, deposited_cents=AMOUNT * (fits + 1) - 1)
        # One plan each, as `contenders` coordinators approving different plans.
        supports = await make_supports(session, contenders, separate_plans=True)
    outcomes = Counter(
        await asyncio.gather(*(_attempt(database, _commitment(fund.id, s)) for s in supports))
    )
    print(
        f"\n{contenders} approvals for {fits} on {database.engine.dialect.name}: {dict(outcomes)}"
    )
    async with database.transaction(read_only=True) as session:
        assert await _movements(session, MovementKind.COMMITMENT) == fits
        totals = await stored_totals(session, fund.id)
        assert totals == LedgerTotals(AMOUNT * (fits + 1) - 1, AMOUNT * fits, 0)
        assert await ledger_totals(session, fund.id) == totals
    return outcomes


async def test_50_approvals_for_a_fund_that_fits_one(database: Database) -> None:
    outcomes = await _commitment_race(database, contenders=50, fits=1)
    assert outcomes == Counter({"done": 1, FundExhausted.__name__: 49})


async def test_50_approvals_for_a_fund_that_fits_three(database: Database) -> None:
    outcomes = await _commitment_race(database, contenders=50, fits=3)
    assert outcomes == Counter({"done": 3, FundExhausted.__name__: 47})


async def test_payments_racing_for_the_last_committed_euros(database: Database) -> None:
    async with database.transaction() as session:
        fund = await make_fund(session, deposited_cents=10 * AMOUNT)
        paid, other = await make_supports(session, 2)
        # `paid` has 1.250,50 € committed; `other`'s commitment keeps the fund's total
        # committed above it, so only the per-support check can stop a second payment.
        await _commitment(fund.id, paid)(session)
        await _commitment(fund.id, other)(session)
    for round_ in range(5):
        async with database.transaction() as session:
            # The same last euros each round: what a previous round paid is committed again.
            if round_:
                await _commitment(fund.id, paid)(session)
        outcomes = Counter(
            await asyncio.gather(
                _attempt(database, _payment(fund.id, paid, AMOUNT)),
                _attempt(database, _payment(fund.id, paid, AMOUNT)),
            )
        )
        assert outcomes == Counter({"done": 1, PaymentExceedsCommitment.__name__: 1})
    async with database.transaction(read_only=True) as session:
        assert await _movements(session, MovementKind.PAYMENT) == 5
        assert await _support_figures(session, paid) == (0, 5 * AMOUNT)
        # The other support's commitment was never touched.
        assert await _support_figures(session, other) == (AMOUNT, 0)
        totals = await stored_totals(session, fund.id)
        assert totals == LedgerTotals(10 * AMOUNT, AMOUNT, 5 * AMOUNT)
        assert await ledger_totals(session, fund.id) == totals


async def test_many_small_payments_never_pay_more_than_was_committed(database: Database) -> None:
    async with database.transaction() as session:
        fund = await make_fund(session, deposited_cents=AMOUNT)
        [support] = await make_supports(session)
        await _commitment(fund.id, support)(session)
    # 30 payments of 100 € for 1.250,50 € committed: 12 fit.
    outcomes = Counter(
        await asyncio.gather(
            *(_attempt(database, _payment(fund.id, support, 10_000)) for _ in range(30))
        )
    )
    assert outcomes == Counter({"done": 12, PaymentExceedsCommitment.__name__: 18})
    async with database.transaction(read_only=True) as session:
        assert await _support_figures(session, support) == (5_050, 120_000)
        assert await stored_totals(session, fund.id) == LedgerTotals(AMOUNT, 5_050, 120_000)


async def test_two_funds_created_with_the_same_name(database: Database) -> None:
    def create(funder: str) -> Callable[[AsyncSession], Awaitable[object]]:
        return lambda session: funds.create_fund(
            session=session, name="Fondo Famiglia Lavoro", funder=funder, actor="staff:c"
        )

    outcomes = Counter(
        await asyncio.gather(*(_attempt(database, create(f"Funder {n}")) for n in range(10)))
    )
    assert outcomes == Counter({"done": 1, FundNameTaken.__name__: 9})
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(Fund)) == 1
