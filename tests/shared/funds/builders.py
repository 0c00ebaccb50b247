"""Funds with money in them, the supports they pay for, and what their ledger adds up to."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases.models import Case, CaseState
from shared.citizens.models import Channel, Citizen
from shared.funds import service as funds
from shared.funds.models import Fund, FundMovement, MovementKind
from shared.plans.catalog import Kind
from shared.plans.models import Plan, PlanSupport
from tests.factories import rome

# Monday 7 December 2026, 10:00 in Cernusco.
NOW = rome(2026, 12, 7, 10)
_numbers = itertools.count(1)


async def make_fund(
    session: AsyncSession,
    *,
    name: str | None = None,
    funder: str = "Fondazione Cariplo",
    deposited_cents: int = 0,
) -> Fund:
    fund = await funds.create_fund(
        session=session,
        name=name or f"Fondo {next(_numbers)}",
        funder=funder,
        actor="staff:coordinatore",
        now=NOW,
    )
    if deposited_cents:
        await funds.deposit(
            session=session,
            fund_id=fund.id,
            amount_cents=deposited_cents,
            actor="staff:coordinatore",
            now=NOW,
        )
    return fund


@dataclass(frozen=True)
class SupportRef:
    """A plan's intervention, as the ledger refers to it."""

    plan_id: int
    support_id: int


async def make_supports(
    session: AsyncSession, count: int = 1, *, separate_plans: bool = False
) -> list[SupportRef]:
    """`count` emergency supports, in one plan or each in its own, in creation order.

    Only the rows their keys need (citizen, admitted case, plan, support), a few flushes
    whatever the count: the ledger reads no plan's or support's state, so both keep their
    defaults.
    """
    plans = count if separate_plans else 1
    citizens = [Citizen(channel=Channel.WALK_IN.value, name="Maria Rossi") for _ in range(plans)]
    session.add_all(citizens)
    await session.flush()
    cases = [Case(citizen_id=c.id, state=CaseState.INTERVIEWED.value) for c in citizens]
    session.add_all(cases)
    await session.flush()
    plan_rows = [Plan(case_id=case.id) for case in cases]
    session.add_all(plan_rows)
    await session.flush()
    supports = [
        PlanSupport(
            plan_id=plan_rows[n if separate_plans else 0].id,
            position=0 if separate_plans else n,
            kind=Kind.EMERGENCY_SUPPORT.value,
        )
        for n in range(count)
    ]
    session.add_all(supports)
    await session.flush()
    return [SupportRef(plan_id=s.plan_id, support_id=s.id) for s in supports]


@dataclass(frozen=True)
class LedgerTotals:
    deposited_cents: int
    committed_cents: int
    paid_cents: int


async def ledger_totals(session: AsyncSession, fund_id: int) -> LedgerTotals:
    """The fund's totals recomputed from its ledger rows, to hold the running totals to."""
    sums = dict(
        (
            await session.execute(
                select(FundMovement.kind, func.sum(FundMovement.amount_cents))
                .where(FundMovement.fund_id == fund_id)
                .group_by(FundMovement.kind)
            )
        ).all()
    )
    total = {kind: int(sums.get(kind.value, 0)) for kind in MovementKind}
    return LedgerTotals(
        deposited_cents=total[MovementKind.DEPOSIT],
        committed_cents=total[MovementKind.COMMITMENT]
        - total[MovementKind.RELEASE]
        - total[MovementKind.PAYMENT],
        paid_cents=total[MovementKind.PAYMENT],
    )


async def stored_totals(session: AsyncSession, fund_id: int) -> LedgerTotals:
    """The running totals as the fund row holds them now (not as a loaded object remembers)."""
    row = (
        await session.execute(
            select(Fund.deposited_cents, Fund.committed_cents, Fund.paid_cents).where(
                Fund.id == fund_id
            )
        )
    ).one()
    return LedgerTotals(*(int(value) for value in row))
