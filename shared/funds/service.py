"""Funds and their ledger: deposits, commitments on approval, payments, releases (SPEC 5).

Every function takes the caller's session and never commits: the request that calls it
owns the transaction. A raised `FundError` means nothing was written by that call.

No euro is committed or paid twice, whatever the concurrency, on both databases:

- a commitment is one guarded UPDATE of the fund row (`... WHERE left >= amount`). When
  two approvals race for the last euros, the second waits for the first's row lock and
  finds nothing to update: PostgreSQL re-checks the condition on the row as the first
  left it, and SQLite's write transactions (BEGIN IMMEDIATE) run one after the other;
- a payment or a release is bounded by what one intervention has committed and not yet
  paid, which only the ledger knows. They lock the fund row first (`FOR UPDATE`; on
  SQLite the transaction already holds the database lock) and read the ledger after, so
  whoever comes second reads what the first wrote;
- the fund's CHECK constraints (nothing negative, committed + paid <= deposited) hold the
  totals whatever a caller does.

A caller moving money in several funds in one transaction (a plan approval) should go in
order of fund id: two PostgreSQL transactions locking the same fund rows in opposite
orders deadlock, and one of them is aborted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.db import utcnow
from shared.funds.errors import (
    AmountOutOfRange,
    FieldMissing,
    FundExhausted,
    FundInactive,
    FundNameTaken,
    FundNotFound,
    PaymentExceedsCommitment,
    ReleaseExceedsCommitment,
    TextTooLong,
)
from shared.funds.models import Fund, FundMovement, MovementKind, Payee, PaymentMethod
from shared.money import MAX_CENTS

# Longest texts staff may write, as their columns hold them.
MAX_NAME = 120
MAX_FUNDER = 120
MAX_NOTE = 500
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# A support's movements, for its plan page: a monthly payment over years stays far below.
MAX_SUPPORT_MOVEMENTS = 500

# What is left in a fund, as SQL (the rule of `Fund.left_cents`).
_left = Fund.deposited_cents - Fund.committed_cents - Fund.paid_cents


@dataclass(frozen=True)
class FundBalance:
    """Where one fund stands, in cents."""

    fund_id: int
    name: str
    funder: str
    active: bool
    deposited_cents: int
    # Reserved by approved plans and not yet paid.
    committed_cents: int
    paid_cents: int

    @property
    def left_cents(self) -> int:
        return self.deposited_cents - self.committed_cents - self.paid_cents


@dataclass(frozen=True)
class MovementPage:
    movements: list[FundMovement]
    # Pass as `before_id` to get the next, older page; None on the last page.
    older: int | None


def _text(field: str, value: str, max_length: int, *, required: bool) -> str:
    value = value.strip()
    if required and not value:
        raise FieldMissing(field)
    if len(value) > max_length:
        raise TextTooLong(field, max_length)
    return value


def _amount(amount_cents: int) -> int:
    if not 1 <= amount_cents <= MAX_CENTS:
        raise AmountOutOfRange(amount_cents, MAX_CENTS)
    return amount_cents


async def _record(
    session: AsyncSession, actor: str, action: str, fund_id: int, details: dict[str, Any]
) -> None:
    """Every change to a fund or its money goes in the audit log under the fund."""
    await audit.record(
        session=session,
        actor=actor,
        action=action,
        object_type="fund",
        object_id=str(fund_id),
        details=details,
    )


async def _move(
    session: AsyncSession, fund_id: int, totals: dict[str, Any], *guards: ColumnElement[bool]
) -> bool:
    """Change the fund's running totals if `guards` hold; False when no row matched."""
    statement = (
        update(Fund)
        .where(Fund.id == fund_id, *guards)
        .values(totals)
        .returning(Fund.id)
        # Evaluating the guards in Python on a loaded Fund would read its stale totals.
        .execution_options(synchronize_session="fetch")
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def _add_movement(session: AsyncSession, movement: FundMovement) -> FundMovement:
    session.add(movement)
    await session.flush()
    return movement


async def _lock_fund(session: AsyncSession, fund_id: int) -> None:
    """Hold the fund's row until the transaction ends (SQLite renders no FOR UPDATE)."""
    locked = await session.scalar(select(Fund.id).where(Fund.id == fund_id).with_for_update())
    if locked is None:
        raise FundNotFound(fund_id)


async def _add_support_movement(
    session: AsyncSession,
    *,
    kind: MovementKind,
    action: str,
    fund_id: int,
    support_id: int,
    plan_id: int | None,
    amount: int,
    actor: str,
    now: datetime | None,
    note: str,
    columns: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> FundMovement:
    """Write a movement of an intervention's money and audit it under the fund.

    `columns` are the movement's further fields, `details` what the audit adds about them.
    """
    movement = await _add_movement(
        session,
        FundMovement(
            fund_id=fund_id,
            kind=kind.value,
            amount_cents=amount,
            support_id=support_id,
            plan_id=plan_id,
            note=note,
            actor=actor[:80],
            at=now or utcnow(),
            **(columns or {}),
        ),
    )
    await _record(
        session,
        actor,
        action,
        fund_id,
        {
            "movement_id": movement.id,
            "support_id": support_id,
            "plan_id": plan_id,
            "amount_cents": amount,
            **(details or {}),
        },
    )
    return movement


async def _draw_on_commitment(
    session: AsyncSession,
    *,
    fund_id: int,
    support_id: int,
    amount: int,
    refusal: type[PaymentExceedsCommitment | ReleaseExceedsCommitment],
    totals: dict[str, Any],
) -> None:
    """Take `amount` off what the intervention has committed and not yet paid in the fund.

    More than that raises `refusal`. The fund's row is locked before the ledger is read,
    so that a payment or release racing this one reads what this one wrote.
    """
    await _lock_fund(session, fund_id)
    outstanding = await outstanding_for_support(
        session=session, support_id=support_id, fund_id=fund_id
    )
    if amount > outstanding:
        raise refusal(fund_id, support_id, outstanding, amount)
    # The ledger says the fund holds at least this much committed; the CHECK agrees or fails.
    await _move(session, fund_id, totals)


async def _support_totals(
    session: AsyncSession, support_id: int, fund_id: int | None
) -> tuple[int, int]:
    """A support's commitments less releases (paid or not), and its payments.

    In one fund, or in all when `fund_id` is None.
    """
    amount, kind = FundMovement.amount_cents, FundMovement.kind
    committed = case(
        (kind == MovementKind.COMMITMENT.value, amount),
        (kind == MovementKind.RELEASE.value, -amount),
        else_=0,
    )
    paid = case((kind == MovementKind.PAYMENT.value, amount), else_=0)
    query = select(func.coalesce(func.sum(committed), 0), func.coalesce(func.sum(paid), 0)).where(
        FundMovement.support_id == support_id
    )
    if fund_id is not None:
        query = query.where(FundMovement.fund_id == fund_id)
    row = (await session.execute(query)).one()
    # PostgreSQL sums BIGINTs as NUMERIC (a Decimal here).
    return int(row[0]), int(row[1])


async def get_fund(*, session: AsyncSession, fund_id: int) -> Fund:
    """The fund, or `FundNotFound`."""
    fund = await session.get(Fund, fund_id)
    if fund is None:
        raise FundNotFound(fund_id)
    return fund


async def _check_name_free(session: AsyncSession, name: str, fund_id: int | None) -> None:
    query = select(Fund.id).where(func.lower(Fund.name) == name.lower())
    if fund_id is not None:
        query = query.where(Fund.id != fund_id)
    if await session.scalar(query.limit(1)) is not None:
        raise FundNameTaken(name)


async def _flush_named(session: AsyncSession, fund: Fund) -> None:
    """Flush a new or renamed fund; the unique name decides between two at the same time."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # The name was checked free (ignoring case) just before: only a fund created or
        # renamed at the same moment can have taken it since.
        raise FundNameTaken(fund.name) from None


async def create_fund(
    *, session: AsyncSession, name: str, funder: str, actor: str, now: datetime | None = None
) -> Fund:
    """Open a fund for a funder's money; it starts empty (money comes in as deposits)."""
    name = _text("name", name, MAX_NAME, required=True)
    funder = _text("funder", funder, MAX_FUNDER, required=True)
    await _check_name_free(session, name, None)
    fund = Fund(
        name=name,
        funder=funder,
        active=True,
        created_at=now or utcnow(),
        deposited_cents=0,
        committed_cents=0,
        paid_cents=0,
    )
    session.add(fund)
    await _flush_named(session, fund)
    await _record(session, actor, "fund.create", fund.id, {"name": name, "funder": funder})
    return fund


async def update_fund(
    *, session: AsyncSession, fund_id: int, name: str, funder: str, active: bool, actor: str
) -> Fund:
    """Rename a fund, change its funder, or close it to (or reopen it for) new commitments.

    An inactive fund keeps its money: what it committed can still be paid or released,
    and deposits are still taken.
    """
    fund = await get_fund(session=session, fund_id=fund_id)
    name = _text("name", name, MAX_NAME, required=True)
    funder = _text("funder", funder, MAX_FUNDER, required=True)
    changes: dict[str, Any] = {}
    if name != fund.name:
        await _check_name_free(session, name, fund.id)
        changes["name"] = name
    if funder != fund.funder:
        changes["funder"] = funder
    if active != fund.active:
        changes["active"] = active
    if not changes:
        return fund
    fund.name, fund.funder, fund.active = name, funder, active
    await _flush_named(session, fund)
    await _record(session, actor, "fund.update", fund.id, changes)
    return fund


async def deposit(
    *,
    session: AsyncSession,
    fund_id: int,
    amount_cents: int,
    actor: str,
    now: datetime | None = None,
    note: str = "",
) -> FundMovement:
    """Record money the funder put into the fund."""
    amount = _amount(amount_cents)
    note = _text("note", note, MAX_NOTE, required=False)
    if not await _move(session, fund_id, {"deposited_cents": Fund.deposited_cents + amount}):
        raise FundNotFound(fund_id)
    movement = await _add_movement(
        session,
        FundMovement(
            fund_id=fund_id,
            kind=MovementKind.DEPOSIT.value,
            amount_cents=amount,
            note=note,
            actor=actor[:80],
            at=now or utcnow(),
        ),
    )
    await _record(
        session,
        actor,
        "fund.deposit",
        fund_id,
        {"movement_id": movement.id, "amount_cents": amount},
    )
    return movement


async def commit_funds(
    *,
    session: AsyncSession,
    fund_id: int,
    support_id: int,
    plan_id: int | None,
    amount_cents: int,
    actor: str,
    now: datetime | None = None,
    note: str = "",
) -> FundMovement:
    """Reserve money of the fund for an intervention of an approved plan.

    Raises `FundExhausted` (with the fund's name and what is left) when it doesn't fit,
    `FundInactive` when the fund takes no new commitments.
    """
    amount = _amount(amount_cents)
    note = _text("note", note, MAX_NOTE, required=False)
    committed = await _move(
        session,
        fund_id,
        {"committed_cents": Fund.committed_cents + amount},
        Fund.active.is_(True),
        _left >= amount,
    )
    if not committed:
        # Read after the refusal: the figures a racing approval just left.
        refused = (
            await session.execute(select(Fund.name, Fund.active, _left).where(Fund.id == fund_id))
        ).one_or_none()
        if refused is None:
            raise FundNotFound(fund_id)
        name, active, left = refused
        if not active:
            raise FundInactive(fund_id, name)
        raise FundExhausted(fund_id, name, int(left), amount)
    return await _add_support_movement(
        session,
        kind=MovementKind.COMMITMENT,
        action="fund.commit",
        fund_id=fund_id,
        support_id=support_id,
        plan_id=plan_id,
        amount=amount,
        actor=actor,
        now=now,
        note=note,
    )


async def release_funds(
    *,
    session: AsyncSession,
    fund_id: int,
    support_id: int,
    plan_id: int | None,
    amount_cents: int,
    actor: str,
    now: datetime | None = None,
    note: str = "",
) -> FundMovement:
    """Give back to the fund money committed to an intervention (cancelled, or lowered).

    At most what the intervention has committed and not yet paid (`outstanding_for_support`);
    more raises `ReleaseExceedsCommitment`. To cancel, release all of it.
    """
    amount = _amount(amount_cents)
    note = _text("note", note, MAX_NOTE, required=False)
    await _draw_on_commitment(
        session,
        fund_id=fund_id,
        support_id=support_id,
        amount=amount,
        refusal=ReleaseExceedsCommitment,
        totals={"committed_cents": Fund.committed_cents - amount},
    )
    return await _add_support_movement(
        session,
        kind=MovementKind.RELEASE,
        action="fund.release",
        fund_id=fund_id,
        support_id=support_id,
        plan_id=plan_id,
        amount=amount,
        actor=actor,
        now=now,
        note=note,
    )


async def record_payment(
    *,
    session: AsyncSession,
    fund_id: int,
    support_id: int,
    plan_id: int | None,
    amount_cents: int,
    paid_on: date,
    paid_to: Payee,
    method: PaymentMethod,
    actor: str,
    now: datetime | None = None,
    note: str = "",
) -> FundMovement:
    """Record money paid for an intervention, to the citizen or directly to a landlord or utility.

    The payment turns committed money into paid money: at most what the intervention has
    committed and not yet paid, or `PaymentExceedsCommitment`.
    """
    amount = _amount(amount_cents)
    note = _text("note", note, MAX_NOTE, required=False)
    payee, how = Payee(paid_to), PaymentMethod(method)
    await _draw_on_commitment(
        session,
        fund_id=fund_id,
        support_id=support_id,
        amount=amount,
        refusal=PaymentExceedsCommitment,
        totals={
            "committed_cents": Fund.committed_cents - amount,
            "paid_cents": Fund.paid_cents + amount,
        },
    )
    return await _add_support_movement(
        session,
        kind=MovementKind.PAYMENT,
        action="fund.payment",
        fund_id=fund_id,
        support_id=support_id,
        plan_id=plan_id,
        amount=amount,
        actor=actor,
        now=now,
        note=note,
        columns={"paid_on": paid_on, "paid_to": payee.value, "method": how.value},
        details={"paid_on": paid_on.isoformat(), "paid_to": payee.value, "method": how.value},
    )


async def committed_for_support(
    *, session: AsyncSession, support_id: int, fund_id: int | None = None
) -> int:
    """Cents committed to an intervention, paid or not: its commitments less its releases.

    Once its plan is approved this is the intervention's amount; what of it is still to be
    paid is `outstanding_for_support`. From one fund, or from all.
    """
    committed, _paid = await _support_totals(session, support_id, fund_id)
    return committed


async def outstanding_for_support(
    *, session: AsyncSession, support_id: int, fund_id: int | None = None
) -> int:
    """Cents committed to an intervention and not yet paid: what it may still pay or release.

    The intervention's share of the fund's `committed_cents`. From one fund, or from all.
    """
    committed, paid = await _support_totals(session, support_id, fund_id)
    return committed - paid


async def paid_for_support(
    *, session: AsyncSession, support_id: int, fund_id: int | None = None
) -> int:
    """Cents paid for an intervention (from one fund, or from all)."""
    _committed, paid = await _support_totals(session, support_id, fund_id)
    return paid


async def balances(*, session: AsyncSession) -> list[FundBalance]:
    """Every fund with what was deposited, committed, paid and is left; open funds first."""
    rows = await session.execute(
        select(
            Fund.id,
            Fund.name,
            Fund.funder,
            Fund.active,
            Fund.deposited_cents,
            Fund.committed_cents,
            Fund.paid_cents,
        ).order_by(Fund.active.desc(), Fund.name, Fund.id)
    )
    return [FundBalance(*row) for row in rows]


async def movements(
    *,
    session: AsyncSession,
    fund_id: int,
    before_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> MovementPage:
    """A fund's movements, newest first, older than movement `before_id` when given."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    query = select(FundMovement).where(FundMovement.fund_id == fund_id)
    if before_id is not None:
        query = query.where(FundMovement.id < before_id)
    # One row more than shown tells whether an older page exists.
    rows = list(await session.scalars(query.order_by(FundMovement.id.desc()).limit(limit + 1)))
    shown = rows[:limit]
    return MovementPage(movements=shown, older=shown[-1].id if len(rows) > limit else None)


async def support_movements(*, session: AsyncSession, support_id: int) -> list[FundMovement]:
    """An intervention's commitments, payments and releases, oldest first."""
    return list(
        await session.scalars(
            select(FundMovement)
            .where(FundMovement.support_id == support_id)
            .order_by(FundMovement.id)
            .limit(MAX_SUPPORT_MOVEMENTS)
        )
    )
