"""Money per fund (SPEC J6): deposited, committed, paid, left, and how long it lasts.

What is left is the funds ledger's own (`shared.funds.service.balances`, `FundBalance.
left_cents`: deposited − committed − paid). The pace is how fast "left" went down over
the last `PACE_WEEKS` weeks before `now`: the money committed in those weeks minus the
money released (per week). That is how fast committed + paid grew; a payment only turns
committed money into paid money and leaves "left" where it was, so it is not added again.

Weeks of runway: left ÷ pace; None when nothing was committed in those weeks (at this
pace the fund does not run out). A fund still open to commitments with fewer weeks than
`settings.fund_runway_warning_weeks` is flagged. Funds are the program's, not a
helpdesk's, and are read as they stand now: the period and the helpdesk don't apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.figures.period import Period
from shared.funds import service as ledger
from shared.funds.models import Fund, FundMovement, MovementKind
from shared.settings import Settings

PACE_WEEKS = 8


@dataclass(frozen=True, slots=True)
class FundRunway:
    fund_id: int
    name: str
    funder: str
    active: bool
    deposited_cents: int
    committed_cents: int
    paid_cents: int
    left_cents: int
    # Net commitments per week over the last PACE_WEEKS weeks (cents, may be fractional).
    weekly_pace_cents: float
    # None: nothing committed lately, the fund does not run out at this pace.
    weeks_left: float | None
    warning: bool


def runway(left_cents: int, weekly_pace_cents: float) -> float | None:
    """Weeks `left_cents` lasts at `weekly_pace_cents` a week (None: it does not run out)."""
    if left_cents <= 0:
        return 0.0
    if weekly_pace_cents <= 0:
        return None
    return left_cents / weekly_pace_cents


async def funds(
    *,
    session: AsyncSession,
    settings: Settings,
    period: Period | None = None,
    helpdesk_id: int | None = None,
    now: datetime,
) -> tuple[FundRunway, ...]:
    """Every fund's figures and runway, open funds first; one statement.

    The ledger's balances as `ledger.balances` reads them, each fund joined to what was
    committed and released in the last `PACE_WEEKS` weeks (one GROUP BY of the ledger).
    """
    del period, helpdesk_id
    committed = FundMovement.kind == MovementKind.COMMITMENT.value
    pace = (
        select(
            FundMovement.fund_id.label("fund_id"),
            func.sum(
                case((committed, FundMovement.amount_cents), else_=-FundMovement.amount_cents)
            ).label("net"),
        )
        .where(
            FundMovement.kind.in_((MovementKind.COMMITMENT.value, MovementKind.RELEASE.value)),
            FundMovement.at >= now - timedelta(weeks=PACE_WEEKS),
            FundMovement.at <= now,
        )
        .group_by(FundMovement.fund_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Fund.id, Fund.name, Fund.funder, Fund.active, Fund.deposited_cents,
            Fund.committed_cents, Fund.paid_cents, func.coalesce(pace.c.net, 0),
        )
        .outerjoin(pace, pace.c.fund_id == Fund.id)
        .order_by(Fund.active.desc(), Fund.name, Fund.id)
    )  # fmt: skip
    found = []
    for *balance, net in rows:
        b = ledger.FundBalance(*balance)
        pace_cents = max(int(net), 0) / PACE_WEEKS
        weeks = runway(b.left_cents, pace_cents)
        found.append(
            FundRunway(
                fund_id=b.fund_id, name=b.name, funder=b.funder, active=b.active,
                deposited_cents=b.deposited_cents, committed_cents=b.committed_cents,
                paid_cents=b.paid_cents, left_cents=b.left_cents,
                weekly_pace_cents=pace_cents, weeks_left=weeks,
                warning=b.active and weeks is not None
                and weeks < settings.fund_runway_warning_weeks,
            )
        )  # fmt: skip
    return tuple(found)
