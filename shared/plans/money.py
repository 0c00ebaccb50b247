"""The plans' money as the funds see it: what submitted plans will ask for, each fund's
ledger with the case its money went to, and payments recorded against one intervention.

`shared.funds` keeps the money and knows nothing of plans; this module reads both, so
the coordinators' funds pages and the payment form ask one function each.

What a submitted plan will take from a fund when it is approved is, for each of its
supports (not cancelled), its amount less what that support already has committed, paid
or not: a plan an approved material change sent back to the coordinators has part of its
money committed already, and approving it commits only the rest (as
`service.approve_plan` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ScalarSelect, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.funds import service as funds
from shared.funds.models import Fund, FundMovement, MovementKind, Payee, PaymentMethod
from shared.plans.errors import PlanError
from shared.plans.models import Plan, PlanState, PlanSupport, SupportState
from shared.staff.models import StaffUser

STAFF_ACTOR = "staff:"


class SupportNotFound(PlanError):
    code = "support_not_found"

    def __init__(self, support_id: int) -> None:
        super().__init__(f"No support {support_id}.")
        self.support_id = support_id


class SupportWithoutFund(PlanError):
    """The support is not paid from a fund (it costs the program nothing, or has none yet)."""

    code = "support_without_fund"

    def __init__(self, support_id: int) -> None:
        super().__init__(f"Support {support_id} has no fund.")
        self.support_id = support_id


class PaidInFuture(PlanError):
    """A payment is recorded once the money went out: its day can't be after today."""

    code = "paid_in_future"

    def __init__(self, paid_on: date, today: date) -> None:
        super().__init__(f"Paid on {paid_on.isoformat()}, after today ({today.isoformat()}).")
        self.paid_on = paid_on
        self.today = today


# --- what submitted plans will ask for ---------------------------------------------------


def _committed_to_support() -> ScalarSelect[Any]:
    """A support's commitments less its releases (paid or not), for the support in the row."""
    amount, kind = FundMovement.amount_cents, FundMovement.kind
    signed = case(
        (kind == MovementKind.COMMITMENT.value, amount),
        (kind == MovementKind.RELEASE.value, -amount),
        else_=0,
    )
    return (
        select(func.coalesce(func.sum(signed), 0))
        .where(FundMovement.support_id == PlanSupport.id)
        .correlate(PlanSupport)
        .scalar_subquery()
    )


async def pending_by_fund(*, session: AsyncSession) -> dict[int, int]:
    """Per fund, the cents the submitted plans will commit when approved (funds with none
    are left out).

    One aggregate statement: the submitted plans (the approvals queue's index), their
    supports, and each support's ledger rows (by the ledger's support index).
    """
    needed = PlanSupport.amount_cents - _committed_to_support()
    pending = func.sum(case((needed > 0, needed), else_=0))
    rows = await session.execute(
        select(PlanSupport.fund_id, pending)
        .join(Plan, Plan.id == PlanSupport.plan_id)
        .where(
            Plan.state == PlanState.SUBMITTED.value,
            PlanSupport.state != SupportState.CANCELLED.value,
            PlanSupport.fund_id.is_not(None),
        )
        .group_by(PlanSupport.fund_id)
    )
    # PostgreSQL sums BIGINTs as NUMERIC (a Decimal here).
    return {int(fund_id): int(cents) for fund_id, cents in rows if fund_id and cents}


@dataclass(frozen=True)
class FundOverview:
    """Where a fund stands, and what the plans waiting for approval will ask of it."""

    balance: funds.FundBalance
    pending_cents: int

    @property
    def short_of_pending(self) -> bool:
        """Approving every submitted plan would take more than is left: some will be refused."""
        return self.pending_cents > self.balance.left_cents


async def fund_overview(*, session: AsyncSession) -> list[FundOverview]:
    """Every fund with its figures and what is pending in submitted plans; open funds first."""
    balances = await funds.balances(session=session)
    pending = await pending_by_fund(session=session)
    return [FundOverview(balance, pending.get(balance.fund_id, 0)) for balance in balances]


# --- a fund's ledger ---------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRow:
    movement: FundMovement
    # The case whose plan the money is for (None for deposits), and the support's kind.
    case_id: int | None
    support_kind: str | None
    # Who recorded it: the staff member's name, or the actor as recorded.
    who: str


@dataclass(frozen=True)
class Ledger:
    fund: Fund
    pending_cents: int
    rows: list[LedgerRow]
    # Pass as `before_id` for the next, older page; None on the last page.
    older: int | None


def who_of(actor: str, names: dict[str, str]) -> str:
    """A movement's actor ("staff:anna") as staff read it: the name of the account."""
    if actor.startswith(STAFF_ACTOR):
        username = actor.removeprefix(STAFF_ACTOR)
        return names.get(username, username)
    return actor


async def _staff_names(session: AsyncSession, actors: set[str]) -> dict[str, str]:
    usernames = {a.removeprefix(STAFF_ACTOR) for a in actors if a.startswith(STAFF_ACTOR)}
    if not usernames:
        return {}
    rows = await session.execute(
        select(StaffUser.username, StaffUser.display_name).where(StaffUser.username.in_(usernames))
    )
    return {username: name for username, name in rows}


async def fund_ledger(
    *, session: AsyncSession, fund_id: int, before_id: int | None = None
) -> Ledger:
    """The fund and one page of its ledger, newest first, each row with the case its money
    is for and who recorded it; `FundNotFound` for an unknown fund."""
    fund = await funds.get_fund(session=session, fund_id=fund_id)
    page = await funds.movements(session=session, fund_id=fund_id, before_id=before_id)
    support_ids = {m.support_id for m in page.movements if m.support_id is not None}
    supports: dict[int, tuple[str, int]] = {}
    if support_ids:
        found = await session.execute(
            select(PlanSupport.id, PlanSupport.kind, Plan.case_id)
            .join(Plan, Plan.id == PlanSupport.plan_id)
            .where(PlanSupport.id.in_(support_ids))
        )
        supports = {support_id: (kind, case_id) for support_id, kind, case_id in found}
    names = await _staff_names(session, {m.actor for m in page.movements})
    rows = []
    for movement in page.movements:
        kind, case_id = supports.get(movement.support_id or 0, (None, None))
        rows.append(LedgerRow(movement, case_id, kind, who_of(movement.actor, names)))
    pending = (await pending_by_fund(session=session)).get(fund_id, 0)
    return Ledger(fund, pending, rows, page.older)


# --- payments of one intervention --------------------------------------------------------


@dataclass(frozen=True)
class SupportMoney:
    """One intervention's money: its fund, what it has committed, paid and still to pay."""

    support: PlanSupport
    case_id: int
    plan_state: str
    fund: Fund | None
    committed_cents: int
    paid_cents: int
    movements: list[FundMovement]
    # Who recorded each movement, by actor.
    who: dict[str, str]

    @property
    def outstanding_cents(self) -> int:
        """Committed and not yet paid: the most a payment can be."""
        return self.committed_cents - self.paid_cents


async def _support(session: AsyncSession, support_id: int) -> tuple[PlanSupport, Plan]:
    found = (
        await session.execute(
            select(PlanSupport, Plan)
            .join(Plan, Plan.id == PlanSupport.plan_id)
            .where(PlanSupport.id == support_id)
        )
    ).one_or_none()
    if found is None:
        raise SupportNotFound(support_id)
    return found[0], found[1]


async def support_money(*, session: AsyncSession, support_id: int) -> SupportMoney:
    """An intervention's fund, what it committed and paid there, and its commitments,
    payments and releases, for its payments page; `SupportNotFound` for an unknown one."""
    support, plan = await _support(session, support_id)
    fund = await session.get(Fund, support.fund_id) if support.fund_id is not None else None
    movements = await funds.support_movements(session=session, support_id=support_id)
    # What it may still pay is the ledger's rule, in the fund it is paid from.
    committed = paid = 0
    if fund is not None:
        outstanding = await funds.outstanding_for_support(
            session=session, support_id=support_id, fund_id=fund.id
        )
        paid = await funds.paid_for_support(session=session, support_id=support_id, fund_id=fund.id)
        committed = outstanding + paid
    names = await _staff_names(session, {m.actor for m in movements})
    return SupportMoney(
        support=support,
        case_id=plan.case_id,
        plan_state=plan.state,
        fund=fund,
        committed_cents=committed,
        paid_cents=paid,
        movements=movements,
        who={m.actor: who_of(m.actor, names) for m in movements},
    )


async def record_support_payment(
    *,
    session: AsyncSession,
    support_id: int,
    amount_cents: int,
    paid_on: date,
    paid_to: Payee,
    method: PaymentMethod,
    actor: str,
    today: date,
    now: datetime | None = None,
    note: str = "",
) -> tuple[FundMovement, int]:
    """Record money paid for an intervention from its fund; the movement and the case
    whose plan it belongs to.

    At most what the intervention has committed and not yet paid in its fund
    (`PaymentExceedsCommitment`, from the funds' ledger under the fund's row lock);
    `SupportWithoutFund` when it is paid from none, `PaidInFuture` for a day after `today`.
    """
    support, plan = await _support(session, support_id)
    if support.fund_id is None:
        raise SupportWithoutFund(support_id)
    if paid_on > today:
        raise PaidInFuture(paid_on, today)
    movement = await funds.record_payment(
        session=session,
        fund_id=support.fund_id,
        support_id=support.id,
        plan_id=plan.id,
        amount_cents=amount_cents,
        paid_on=paid_on,
        paid_to=paid_to,
        method=method,
        actor=actor,
        now=now,
        note=note,
    )
    return movement, plan.case_id
