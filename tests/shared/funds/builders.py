"""Funds with money in them, and what their ledger adds up to, for the funds tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.funds import service as funds
from shared.funds.models import Fund, FundMovement, MovementKind
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
