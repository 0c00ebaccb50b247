"""Funds service: deposits, commitments, payments, releases, balances, pages, refusals."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.db import Database
from shared.funds import service as funds
from shared.funds.errors import (
    AmountOutOfRange,
    FieldMissing,
    FundError,
    FundExhausted,
    FundInactive,
    FundNameTaken,
    FundNotFound,
    PaymentExceedsCommitment,
    ReleaseExceedsCommitment,
    TextTooLong,
)
from shared.funds.models import Fund, FundMovement, Payee, PaymentMethod
from shared.money import MAX_CENTS
from tests.shared.funds.builders import (
    NOW,
    LedgerTotals,
    SupportRef,
    ledger_totals,
    make_fund,
    make_supports,
    stored_totals,
)

ACTOR = "staff:coordinatore"
PAID_ON = date(2026, 12, 7)


async def _count(session: AsyncSession, model: type[object]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _audit(session: AsyncSession, action: str) -> list[AuditEvent]:
    return list(
        await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


async def _commit(
    session: AsyncSession, fund_id: int, support: SupportRef, cents: int
) -> FundMovement:
    return await funds.commit_funds(
        session=session, fund_id=fund_id, support_id=support.support_id,
        plan_id=support.plan_id, amount_cents=cents, actor=ACTOR, now=NOW,
    )  # fmt: skip


async def _pay(
    session: AsyncSession,
    fund_id: int,
    support: SupportRef,
    cents: int,
    paid_to: Payee = Payee.LANDLORD,
    method: PaymentMethod = PaymentMethod.BANK_TRANSFER,
) -> FundMovement:
    return await funds.record_payment(
        session=session, fund_id=fund_id, support_id=support.support_id,
        plan_id=support.plan_id, amount_cents=cents, paid_on=PAID_ON, paid_to=paid_to,
        method=method, actor=ACTOR, now=NOW,
    )  # fmt: skip


async def _release(
    session: AsyncSession, fund_id: int, support: SupportRef, cents: int
) -> FundMovement:
    return await funds.release_funds(
        session=session, fund_id=fund_id, support_id=support.support_id,
        plan_id=support.plan_id, amount_cents=cents, actor=ACTOR, now=NOW,
    )  # fmt: skip


async def _support_figures(session: AsyncSession, support: SupportRef) -> tuple[int, int, int]:
    """What the support has committed (paid or not), still outstanding, and paid, from all funds."""
    return (
        await funds.committed_for_support(session=session, support_id=support.support_id),
        await funds.outstanding_for_support(session=session, support_id=support.support_id),
        await funds.paid_for_support(session=session, support_id=support.support_id),
    )


async def _totals(session: AsyncSession, fund_id: int) -> LedgerTotals:
    """The running totals, after checking that the ledger adds up to them."""
    stored = await stored_totals(session, fund_id)
    assert await ledger_totals(session, fund_id) == stored
    return stored


# --- funds ---------------------------------------------------------------------------------


async def test_create_fund_starts_empty_and_is_audited(session: AsyncSession) -> None:
    fund = await funds.create_fund(
        session=session, name="  Fondo Famiglia Lavoro ", funder=" Caritas Ambrosiana ",
        actor=ACTOR, now=NOW,
    )  # fmt: skip
    assert (fund.name, fund.funder, fund.active) == (
        "Fondo Famiglia Lavoro",
        "Caritas Ambrosiana",
        True,
    )
    assert fund.created_at == NOW
    assert (fund.deposited_cents, fund.committed_cents, fund.paid_cents, fund.left_cents) == (
        0,
        0,
        0,
        0,
    )
    [created] = await _audit(session, "fund.create")
    assert (created.actor, created.object_type, created.object_id) == (ACTOR, "fund", str(fund.id))
    assert created.details == {"name": "Fondo Famiglia Lavoro", "funder": "Caritas Ambrosiana"}
    assert await funds.get_fund(session=session, fund_id=fund.id) is fund


async def test_fund_names_are_required_bounded_and_unique(session: AsyncSession) -> None:
    await make_fund(session, name="Doniamo Energia")
    cases: list[tuple[str, str, type[FieldMissing | TextTooLong], str]] = [
        ("  ", "Cariplo", FieldMissing, "name"),
        ("Fondo", "", FieldMissing, "funder"),
        ("x" * (funds.MAX_NAME + 1), "Cariplo", TextTooLong, "name"),
        ("Fondo", "x" * (funds.MAX_FUNDER + 1), TextTooLong, "funder"),
    ]
    for name, funder, error, field in cases:
        with pytest.raises(error) as raised:
            await funds.create_fund(session=session, name=name, funder=funder, actor=ACTOR)
        assert isinstance(raised.value, FieldMissing | TextTooLong)
        assert raised.value.field == field
    with pytest.raises(TextTooLong) as too_long:
        await funds.create_fund(session=session, name="x" * 121, funder="y", actor=ACTOR)
    assert (too_long.value.code, too_long.value.max_length) == ("text_too_long", funds.MAX_NAME)
    with pytest.raises(FundNameTaken) as taken:
        await funds.create_fund(
            session=session, name="doniamo energia", funder="Banco", actor=ACTOR
        )
    assert (taken.value.code, taken.value.name) == ("fund_name_taken", "doniamo energia")
    assert await _count(session, Fund) == 1
    assert len(await _audit(session, "fund.create")) == 1


async def test_update_fund_renames_and_closes_it(session: AsyncSession) -> None:
    fund = await make_fund(session, name="Fondo A", deposited_cents=10_000)
    other = await make_fund(session, name="Fondo B")
    updated = await funds.update_fund(
        session=session, fund_id=fund.id, name="Fondo San Giuseppe", funder="Diocesi",
        active=False, actor=ACTOR,
    )  # fmt: skip
    assert (updated.name, updated.funder, updated.active) == (
        "Fondo San Giuseppe",
        "Diocesi",
        False,
    )
    [change] = await _audit(session, "fund.update")
    assert change.details == {"name": "Fondo San Giuseppe", "funder": "Diocesi", "active": False}
    # The same values again change nothing and record nothing.
    await funds.update_fund(
        session=session, fund_id=fund.id, name="Fondo San Giuseppe", funder="Diocesi",
        active=False, actor=ACTOR,
    )  # fmt: skip
    assert len(await _audit(session, "fund.update")) == 1
    with pytest.raises(FundNameTaken):
        await funds.update_fund(
            session=session, fund_id=other.id, name="FONDO SAN GIUSEPPE", funder="x",
            active=True, actor=ACTOR,
        )  # fmt: skip
    with pytest.raises(FundNotFound) as missing:
        await funds.update_fund(
            session=session, fund_id=999_999, name="x", funder="y", active=True, actor=ACTOR
        )
    assert (missing.value.code, missing.value.fund_id) == ("fund_not_found", 999_999)


# --- deposits and commitments ----------------------------------------------------------------


async def test_deposit_adds_a_ledger_row_and_raises_the_total(session: AsyncSession) -> None:
    fund = await make_fund(session)
    first = await funds.deposit(
        session=session, fund_id=fund.id, amount_cents=14_000_000, actor=ACTOR, now=NOW,
        note=" Bonifico Cariplo ",
    )  # fmt: skip
    await funds.deposit(session=session, fund_id=fund.id, amount_cents=1, actor=ACTOR, now=NOW)
    assert (first.kind, first.amount_cents, first.note, first.at) == (
        "deposit",
        14_000_000,
        "Bonifico Cariplo",
        NOW,
    )
    assert (first.support_id, first.plan_id, first.paid_on, first.paid_to, first.method) == (
        None,
    ) * 5
    assert await _totals(session, fund.id) == LedgerTotals(14_000_001, 0, 0)
    # The loaded fund sees the new totals too (the guarded update refreshed it).
    assert fund.deposited_cents == 14_000_001
    events = await _audit(session, "fund.deposit")
    assert [e.details for e in events] == [
        {"movement_id": first.id, "amount_cents": 14_000_000},
        {"movement_id": first.id + 1, "amount_cents": 1},
    ]


@pytest.mark.parametrize("cents", [0, -1, -500, MAX_CENTS + 1])
async def test_amounts_must_be_positive_and_bounded(session: AsyncSession, cents: int) -> None:
    fund = await make_fund(session, deposited_cents=1000)
    [support] = await make_supports(session)
    await _commit(session, fund.id, support, 500)
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: funds.deposit(session=session, fund_id=fund.id, amount_cents=cents, actor=ACTOR),
        lambda: _commit(session, fund.id, support, cents),
        lambda: _release(session, fund.id, support, cents),
        lambda: _pay(session, fund.id, support, cents),
    ]
    for attempt in attempts:
        with pytest.raises(AmountOutOfRange) as raised:
            await attempt()
        assert (raised.value.code, raised.value.amount_cents) == ("amount_out_of_range", cents)
        assert raised.value.max_cents == MAX_CENTS
    assert await _totals(session, fund.id) == LedgerTotals(1000, 500, 0)
    assert await _count(session, FundMovement) == 2


async def test_unknown_fund_is_refused_everywhere(session: AsyncSession) -> None:
    missing = 424_242
    # A real support: the fund is the only thing these calls can't find.
    [support] = await make_supports(session)
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: funds.get_fund(session=session, fund_id=missing),
        lambda: funds.deposit(session=session, fund_id=missing, amount_cents=100, actor=ACTOR),
        lambda: _commit(session, missing, support, 100),
        lambda: _release(session, missing, support, 100),
        lambda: _pay(session, missing, support, 100),
    ]
    for attempt in attempts:
        with pytest.raises(FundNotFound) as raised:
            await attempt()
        assert raised.value.fund_id == missing
    assert await _count(session, FundMovement) == 0


async def test_commitment_fits_to_the_last_cent(session: AsyncSession) -> None:
    fund = await make_fund(session, deposited_cents=100_000)
    # Two supports of one plan.
    first_support, second_support = await make_supports(session, 2)
    made = await _commit(session, fund.id, first_support, 60_000)
    await _commit(session, fund.id, second_support, 40_000)
    assert (made.kind, made.support_id, made.plan_id, made.amount_cents) == (
        "commitment",
        first_support.support_id,
        first_support.plan_id,
        60_000,
    )
    assert await _totals(session, fund.id) == LedgerTotals(100_000, 100_000, 0)
    assert fund.left_cents == 0
    [first, _second] = await _audit(session, "fund.commit")
    assert first.details == {
        "movement_id": made.id,
        "support_id": first_support.support_id,
        "plan_id": first_support.plan_id,
        "amount_cents": 60_000,
    }


async def test_a_commitment_that_does_not_fit_names_the_fund_and_what_is_left(
    session: AsyncSession,
) -> None:
    fund = await make_fund(session, name="Doniamo Energia", deposited_cents=100_000)
    first_support, second_support = await make_supports(session, 2)
    await _commit(session, fund.id, first_support, 75_050)
    with pytest.raises(FundExhausted) as raised:
        await _commit(session, fund.id, second_support, 24_951)
    refusal = raised.value
    assert refusal.code == "fund_exhausted"
    assert (refusal.fund_id, refusal.fund_name) == (fund.id, "Doniamo Energia")
    assert (refusal.left_cents, refusal.needed_cents) == (24_950, 24_951)
    # Nothing was written by the refused call.
    assert await _totals(session, fund.id) == LedgerTotals(100_000, 75_050, 0)
    assert await _count(session, FundMovement) == 2
    assert len(await _audit(session, "fund.commit")) == 1
    # What is left still fits.
    await _commit(session, fund.id, second_support, 24_950)
    assert await _totals(session, fund.id) == LedgerTotals(100_000, 100_000, 0)


async def test_an_empty_fund_refuses_any_commitment(session: AsyncSession) -> None:
    fund = await make_fund(session)
    [support] = await make_supports(session)
    with pytest.raises(FundExhausted) as raised:
        await _commit(session, fund.id, support, 1)
    assert (raised.value.left_cents, raised.value.needed_cents) == (0, 1)


async def test_an_inactive_fund_takes_no_commitment_but_pays_what_it_committed(
    session: AsyncSession,
) -> None:
    fund = await make_fund(session, name="Fondo chiuso", deposited_cents=50_000)
    committed, refused = await make_supports(session, 2)
    await _commit(session, fund.id, committed, 20_000)
    await funds.update_fund(
        session=session, fund_id=fund.id, name=fund.name, funder=fund.funder, active=False,
        actor=ACTOR,
    )  # fmt: skip
    with pytest.raises(FundInactive) as raised:
        await _commit(session, fund.id, refused, 100)
    assert (raised.value.code, raised.value.fund_id, raised.value.fund_name) == (
        "fund_inactive", fund.id, "Fondo chiuso",
    )  # fmt: skip
    await _pay(session, fund.id, committed, 5_000)
    await _release(session, fund.id, committed, 15_000)
    await funds.deposit(session=session, fund_id=fund.id, amount_cents=100, actor=ACTOR)
    assert await _totals(session, fund.id) == LedgerTotals(50_100, 0, 5_000)


# --- payments and releases ------------------------------------------------------------------


async def test_payment_moves_committed_money_to_paid(session: AsyncSession) -> None:
    fund = await make_fund(session, deposited_cents=300_000)
    [support] = await make_supports(session)
    await _commit(session, fund.id, support, 120_000)
    left_before = fund.left_cents
    payment = await _pay(
        session, fund.id, support, 40_000, Payee.UTILITY, PaymentMethod.DIRECT_DEBIT
    )
    assert (payment.kind, payment.amount_cents, payment.support_id, payment.plan_id) == (
        "payment",
        40_000,
        support.support_id,
        support.plan_id,
    )
    assert (payment.paid_on, payment.paid_to, payment.method) == (
        PAID_ON,
        "utility",
        "direct_debit",
    )
    assert await _totals(session, fund.id) == LedgerTotals(300_000, 80_000, 40_000)
    # Paying what was committed doesn't change what is left.
    assert fund.left_cents == left_before == 180_000
    assert await _support_figures(session, support) == (120_000, 80_000, 40_000)
    [event_] = await _audit(session, "fund.payment")
    assert event_.details == {
        "movement_id": payment.id, "support_id": support.support_id, "plan_id": support.plan_id,
        "amount_cents": 40_000,
        "paid_on": "2026-12-07", "paid_to": "utility", "method": "direct_debit",
    }  # fmt: skip


async def test_payments_cannot_exceed_what_the_support_committed(session: AsyncSession) -> None:
    fund = await make_fund(session, deposited_cents=500_000)
    paid, other, uncommitted = await make_supports(session, 3)
    await _commit(session, fund.id, paid, 60_000)
    # Another support's commitment leaves room in the fund, but not in `paid`.
    await _commit(session, fund.id, other, 200_000)
    await _pay(session, fund.id, paid, 30_000, Payee.CITIZEN, PaymentMethod.CASH)
    await _pay(session, fund.id, paid, 29_999, Payee.CITIZEN, PaymentMethod.VOUCHER)
    with pytest.raises(PaymentExceedsCommitment) as raised:
        await _pay(session, fund.id, paid, 2)
    refusal = raised.value
    assert refusal.code == "payment_exceeds_commitment"
    assert (refusal.fund_id, refusal.support_id) == (fund.id, paid.support_id)
    assert (refusal.outstanding_cents, refusal.requested_cents) == (1, 2)
    await _pay(session, fund.id, paid, 1)
    with pytest.raises(PaymentExceedsCommitment) as nothing_left:
        await _pay(session, fund.id, paid, 1)
    assert nothing_left.value.outstanding_cents == 0
    # A support with no commitment can't be paid at all.
    with pytest.raises(PaymentExceedsCommitment) as never_committed:
        await _pay(session, fund.id, uncommitted, 1)
    assert never_committed.value.support_id == uncommitted.support_id
    assert await _totals(session, fund.id) == LedgerTotals(500_000, 200_000, 60_000)
    assert len(await _audit(session, "fund.payment")) == 3


async def test_a_support_is_paid_only_from_the_fund_that_committed(session: AsyncSession) -> None:
    committed_in = await make_fund(session, deposited_cents=10_000)
    other = await make_fund(session, deposited_cents=10_000)
    [support] = await make_supports(session)
    await _commit(session, committed_in.id, support, 10_000)
    with pytest.raises(PaymentExceedsCommitment) as raised:
        await _pay(session, other.id, support, 100)
    assert raised.value.fund_id == other.id
    with pytest.raises(ReleaseExceedsCommitment):
        await _release(session, other.id, support, 100)
    assert await _totals(session, other.id) == LedgerTotals(10_000, 0, 0)


async def test_release_on_a_lower_amount_and_on_cancel(session: AsyncSession) -> None:
    fund = await make_fund(session, deposited_cents=200_000)
    [support] = await make_supports(session)
    await _commit(session, fund.id, support, 150_000)
    # The plan lowers the support from 1.500 € to 1.000 €.
    lowered = await _release(session, fund.id, support, 50_000)
    assert (lowered.kind, lowered.amount_cents, lowered.support_id) == (
        "release",
        50_000,
        support.support_id,
    )
    assert await _totals(session, fund.id) == LedgerTotals(200_000, 100_000, 0)
    await _pay(session, fund.id, support, 30_000)
    # Only the unpaid part can go back: the support is cancelled after one payment.
    with pytest.raises(ReleaseExceedsCommitment) as raised:
        await _release(session, fund.id, support, 100_000)
    refusal = raised.value
    assert refusal.code == "release_exceeds_commitment"
    assert (refusal.support_id, refusal.outstanding_cents, refusal.requested_cents) == (
        support.support_id,
        70_000,
        100_000,
    )
    outstanding = await funds.outstanding_for_support(
        session=session, support_id=support.support_id, fund_id=fund.id
    )
    await _release(session, fund.id, support, outstanding)
    assert await _totals(session, fund.id) == LedgerTotals(200_000, 0, 30_000)
    assert fund.left_cents == 170_000
    assert await _support_figures(session, support) == (30_000, 0, 30_000)
    assert [e.details["amount_cents"] for e in await _audit(session, "fund.release")] == [
        50_000,
        70_000,
    ]


async def test_support_totals_across_funds(session: AsyncSession) -> None:
    first = await make_fund(session, deposited_cents=10_000)
    second = await make_fund(session, deposited_cents=10_000)
    [support] = await make_supports(session)
    # The support moved to another fund: released from the first, committed in the second.
    await _commit(session, first.id, support, 8_000)
    await _pay(session, first.id, support, 1_000)
    await _release(session, first.id, support, 7_000)
    await _commit(session, second.id, support, 5_000)
    await _pay(session, second.id, support, 2_000)
    totals = {
        (fund_id, name): await getattr(funds, f"{name}_for_support")(
            session=session, support_id=support.support_id, fund_id=fund_id
        )
        for fund_id in (first.id, second.id, None)
        for name in ("committed", "outstanding", "paid")
    }
    assert totals == {
        (first.id, "committed"): 1_000, (first.id, "outstanding"): 0, (first.id, "paid"): 1_000,
        (second.id, "committed"): 5_000, (second.id, "outstanding"): 3_000, (second.id, "paid"): 2_000,
        (None, "committed"): 6_000, (None, "outstanding"): 3_000, (None, "paid"): 3_000,
    }  # fmt: skip
    # Reading only: an id no support has is simply nothing committed.
    assert await funds.committed_for_support(session=session, support_id=404) == 0
    history = await funds.support_movements(session=session, support_id=support.support_id)
    assert [(m.fund_id, m.kind, m.amount_cents) for m in history] == [
        (first.id, "commitment", 8_000), (first.id, "payment", 1_000),
        (first.id, "release", 7_000), (second.id, "commitment", 5_000),
        (second.id, "payment", 2_000),
    ]  # fmt: skip


async def test_notes_are_kept_and_bounded(session: AsyncSession) -> None:
    fund = await make_fund(session, deposited_cents=1_000)
    [support] = await make_supports(session)
    made = await funds.commit_funds(
        session=session, fund_id=fund.id, support_id=support.support_id, plan_id=None,
        amount_cents=500,
        actor=ACTOR, now=NOW, note="Bolletta A2A di novembre",
    )  # fmt: skip
    assert (made.note, made.plan_id) == ("Bolletta A2A di novembre", None)
    with pytest.raises(TextTooLong) as raised:
        await funds.record_payment(
            session=session, fund_id=fund.id, support_id=support.support_id, plan_id=None,
            amount_cents=100,
            paid_on=PAID_ON, paid_to=Payee.OTHER, method=PaymentMethod.OTHER, actor=ACTOR,
            note="x" * (funds.MAX_NOTE + 1),
        )  # fmt: skip
    assert (raised.value.field, raised.value.max_length) == ("note", funds.MAX_NOTE)
    assert await _totals(session, fund.id) == LedgerTotals(1_000, 500, 0)


# --- reading ----------------------------------------------------------------------------------


async def test_balances_in_one_query(database: Database) -> None:
    async with database.transaction() as session:
        cariplo = await make_fund(session, name="Cariplo", deposited_cents=14_000_000)
        energia = await make_fund(session, name="Banco dell'energia", deposited_cents=3_000_000)
        closed = await make_fund(session, name="Anno 2020", deposited_cents=500)
        await make_fund(session, name="Zero")
        from_cariplo, from_energia = await make_supports(session, 2)
        await _commit(session, cariplo.id, from_cariplo, 1_200_000)
        await _pay(session, cariplo.id, from_cariplo, 200_000)
        await _commit(session, energia.id, from_energia, 30_000)
        await funds.update_fund(
            session=session, fund_id=closed.id, name=closed.name, funder=closed.funder,
            active=False, actor=ACTOR,
        )  # fmt: skip
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with database.transaction(read_only=True) as session:
            shown = await funds.balances(session=session)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert [
        (b.name, b.active, b.deposited_cents, b.committed_cents, b.paid_cents, b.left_cents)
        for b in shown
    ] == [
        ("Banco dell'energia", True, 3_000_000, 30_000, 0, 2_970_000),
        ("Cariplo", True, 14_000_000, 1_000_000, 200_000, 12_800_000),
        ("Zero", True, 0, 0, 0, 0),
        ("Anno 2020", False, 500, 0, 0, 500),
    ]
    assert shown[1].fund_id == cariplo.id and shown[1].funder == "Fondazione Cariplo"


async def test_movements_newest_first_in_keyset_pages(session: AsyncSession) -> None:
    fund = await make_fund(session, deposited_cents=1_000)
    other = await make_fund(session, deposited_cents=1_000)
    supports = await make_supports(session, 7)
    for support in supports:
        await _commit(session, fund.id, support, 10)
        await _commit(session, other.id, support, 10)
    # Newest first: the supports in the reverse of the order they were committed.
    newest_first = [s.support_id for s in reversed(supports)]
    first = await funds.movements(session=session, fund_id=fund.id, limit=3)
    assert [m.kind for m in first.movements] == ["commitment"] * 3
    assert [m.support_id for m in first.movements] == newest_first[0:3]
    assert first.older == first.movements[-1].id
    second = await funds.movements(session=session, fund_id=fund.id, before_id=first.older, limit=3)
    assert [m.support_id for m in second.movements] == newest_first[3:6]
    last = await funds.movements(session=session, fund_id=fund.id, before_id=second.older, limit=3)
    assert [(m.kind, m.support_id) for m in last.movements] == [
        ("commitment", newest_first[6]),
        ("deposit", None),
    ]
    assert last.older is None
    everything = await funds.movements(session=session, fund_id=fund.id)
    assert len(everything.movements) == 8 and everything.older is None
    assert all(m.fund_id == fund.id for m in everything.movements)
    # Out-of-range page sizes are clamped, not refused.
    assert len((await funds.movements(session=session, fund_id=fund.id, limit=0)).movements) == 1
    huge = await funds.movements(session=session, fund_id=fund.id, limit=10**9)
    assert len(huge.movements) == 8
    assert (await funds.movements(session=session, fund_id=424_242)).movements == []


# --- the database's own guarantees -------------------------------------------------------------


async def test_the_database_refuses_overspending_whatever_the_caller(database: Database) -> None:
    async with database.transaction() as session:
        fund = await make_fund(session, deposited_cents=1_000)
    overspending: list[dict[str, Any]] = [
        {"committed_cents": Fund.committed_cents + 1_001},
        {"paid_cents": 600, "committed_cents": 401},
        {"committed_cents": -1},
        {"paid_cents": -1},
        {"deposited_cents": -1},
    ]
    for totals in overspending:
        with pytest.raises(IntegrityError):
            async with database.transaction() as session:
                await session.execute(update(Fund).where(Fund.id == fund.id).values(totals))
    async with database.transaction(read_only=True) as session:
        assert await stored_totals(session, fund.id) == LedgerTotals(1_000, 0, 0)


# Stands in a row for the id of a support made with it: a row refused is refused for its
# shape, never for pointing at a support that doesn't exist.
SUPPORT = "a real support"


async def _insert_movement(database: Database, row: dict[str, object]) -> None:
    async with database.transaction() as session:
        fund = await make_fund(session)
        [support] = await make_supports(session)
        values = {k: support.support_id if v == SUPPORT else v for k, v in row.items()}
        session.add(FundMovement(fund_id=fund.id, actor=ACTOR, at=NOW, note="", **values))


@pytest.mark.parametrize(
    ("row", "constraint"),
    [
        ({"kind": "deposit", "amount_cents": 0}, "amount_positive"),
        ({"kind": "deposit", "amount_cents": -5}, "amount_positive"),
        ({"kind": "gift", "amount_cents": 5, "support_id": SUPPORT}, "kind"),
        ({"kind": "deposit", "amount_cents": 5, "support_id": SUPPORT}, "support"),
        ({"kind": "commitment", "amount_cents": 5}, "support"),
        ({"kind": "payment", "amount_cents": 5, "support_id": SUPPORT}, "payment_details"),
        (
            {"kind": "commitment", "amount_cents": 5, "support_id": SUPPORT, "paid_on": PAID_ON},
            "payment_details",
        ),
        (
            {
                "kind": "payment", "amount_cents": 5, "support_id": SUPPORT, "paid_on": PAID_ON,
                "paid_to": "neighbour", "method": "cash",
            },
            "paid_to",
        ),
        (
            {
                "kind": "payment", "amount_cents": 5, "support_id": SUPPORT, "paid_on": PAID_ON,
                "paid_to": "citizen", "method": "bitcoin",
            },
            "method",
        ),
    ],
)  # fmt: skip
async def test_the_database_refuses_malformed_movements(
    database: Database, row: dict[str, object], constraint: str
) -> None:
    with pytest.raises(IntegrityError) as raised:
        await _insert_movement(database, row)
    # The row's own flaw refused it (both databases name the CHECK), not a missing key.
    assert f"ck_fund_movement_{constraint}" in str(raised.value.orig)
    async with database.transaction(read_only=True) as session:
        assert await _count(session, FundMovement) == 0


async def test_the_database_takes_a_well_formed_movement_inserted_the_same_way(
    database: Database,
) -> None:
    """The refusals above come from each row's flaw, not from how the rows are inserted."""
    await _insert_movement(
        database,
        {
            "kind": "payment", "amount_cents": 5, "support_id": SUPPORT, "paid_on": PAID_ON,
            "paid_to": "citizen", "method": "cash",
        },
    )  # fmt: skip
    async with database.transaction(read_only=True) as session:
        assert await _count(session, FundMovement) == 1


# --- cents arithmetic ------------------------------------------------------------------------


async def test_random_movements_keep_every_cent_accounted_for(session: AsyncSession) -> None:
    """Hundreds of random movements, against a model of the fund kept here in plain ints."""
    rng = random.Random(20261207)
    fund = await make_fund(session, deposited_cents=0)
    supports = await make_supports(session, 6)
    deposited, committed, paid = 0, 0, 0
    outstanding = dict.fromkeys(supports, 0)
    paid_by_support = dict.fromkeys(supports, 0)
    refused = 0
    for _ in range(300):
        action = rng.choice(["deposit", "commit", "commit", "pay", "pay", "release"])
        support = rng.choice(supports)
        cents = rng.choice([1, 99, 100, 12_345, rng.randint(1, 500_000)])
        left = deposited - committed - paid
        if action == "deposit":
            await funds.deposit(session=session, fund_id=fund.id, amount_cents=cents, actor=ACTOR)
            deposited += cents
        elif action == "commit" and cents > left:
            with pytest.raises(FundExhausted) as exhausted:
                await _commit(session, fund.id, support, cents)
            assert exhausted.value.left_cents == left
            refused += 1
        elif action == "commit":
            await _commit(session, fund.id, support, cents)
            committed += cents
            outstanding[support] += cents
        elif cents > outstanding[support]:
            error = PaymentExceedsCommitment if action == "pay" else ReleaseExceedsCommitment
            with pytest.raises(error) as exceeded:
                await (_pay if action == "pay" else _release)(session, fund.id, support, cents)
            assert exceeded.value.outstanding_cents == outstanding[support]
            refused += 1
        elif action == "pay":
            await _pay(session, fund.id, support, cents)
            committed, paid = committed - cents, paid + cents
            outstanding[support] -= cents
            paid_by_support[support] += cents
        else:
            await _release(session, fund.id, support, cents)
            committed -= cents
            outstanding[support] -= cents
    assert refused > 0 and paid > 0
    assert await _totals(session, fund.id) == LedgerTotals(deposited, committed, paid)
    assert fund.left_cents == deposited - committed - paid >= 0
    for support in supports:
        found = (
            await funds.outstanding_for_support(session=session, support_id=support.support_id),
            await funds.paid_for_support(session=session, support_id=support.support_id),
        )
        assert found == (outstanding[support], paid_by_support[support])


def test_errors_have_distinct_codes() -> None:
    errors: list[type[FundError]] = [
        FundNotFound, FundNameTaken, FieldMissing, TextTooLong, AmountOutOfRange, FundInactive,
        FundExhausted, PaymentExceedsCommitment, ReleaseExceedsCommitment,
    ]  # fmt: skip
    assert len({e.code for e in errors}) == len(errors)
