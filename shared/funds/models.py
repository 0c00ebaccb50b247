"""A fund and the ledger of every euro cent that moves in or out of it.

How money moves (`MovementKind`), each movement one `FundMovement` row:

    deposit ──▶ deposited
                   │ commitment (a plan is approved)
                   ▼
                committed ──payment (staff record it)──▶ paid
                   │ release (intervention cancelled, or its amount lowered)
                   ▼
                back to what is left

What is left = deposited − committed − paid, where "committed" is what approved plans
have reserved and not yet paid. The ledger is the record; the fund row keeps the three
running totals beside it, so that the database itself can refuse a commitment that doesn't
fit (one guarded UPDATE of this row, see `service.commit_funds`) and the CHECK constraints
below hold whatever the concurrency.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime, utcnow


class MovementKind(StrEnum):
    DEPOSIT = "deposit"
    COMMITMENT = "commitment"
    PAYMENT = "payment"
    RELEASE = "release"


class Payee(StrEnum):
    """Who received a payment: the citizen, or directly their landlord or utility."""

    CITIZEN = "citizen"
    LANDLORD = "landlord"
    UTILITY = "utility"
    OTHER = "other"


class PaymentMethod(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    CASH = "cash"
    VOUCHER = "voucher"
    DIRECT_DEBIT = "direct_debit"
    OTHER = "other"


class Fund(Base):
    """Money a funder gave the programme, and how much of it is committed and paid."""

    __tablename__ = "fund"
    __table_args__ = (
        CheckConstraint("deposited_cents >= 0", name="deposited_not_negative"),
        CheckConstraint("committed_cents >= 0", name="committed_not_negative"),
        CheckConstraint("paid_cents >= 0", name="paid_not_negative"),
        CheckConstraint("committed_cents + paid_cents <= deposited_cents", name="not_overspent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    funder: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Totals of the ledger, kept in step by the service in the same statement as each
    # movement's check. BIGINT: a fund's totals may pass PostgreSQL's 32-bit INTEGER.
    deposited_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    committed_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)

    @property
    def left_cents(self) -> int:
        return self.deposited_cents - self.committed_cents - self.paid_cents


class FundMovement(Base):
    """One movement of money; rows are only ever added (a mistake is corrected by another)."""

    __tablename__ = "fund_movement"
    __table_args__ = (
        CheckConstraint("kind IN ('deposit', 'commitment', 'payment', 'release')", name="kind"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        # Deposits come from the funder; everything else is for one intervention of a plan.
        CheckConstraint(
            "(kind = 'deposit' AND support_id IS NULL AND plan_id IS NULL) OR "
            "(kind != 'deposit' AND support_id IS NOT NULL)",
            name="support",
        ),
        CheckConstraint(
            "(kind = 'payment' AND paid_on IS NOT NULL AND paid_to IS NOT NULL "
            "AND method IS NOT NULL) OR "
            "(kind != 'payment' AND paid_on IS NULL AND paid_to IS NULL AND method IS NULL)",
            name="payment_details",
        ),
        CheckConstraint(
            "paid_to IS NULL OR paid_to IN ('citizen', 'landlord', 'utility', 'other')",
            name="paid_to",
        ),
        CheckConstraint(
            "method IS NULL OR method IN "
            "('bank_transfer', 'cash', 'voucher', 'direct_debit', 'other')",
            name="method",
        ),
        # Ids grow with time: "a fund's movements, newest first" is a backward scan of
        # (fund_id, id), and the keyset page starts below the last id shown.
        Index("ix_fund_movement_fund", "fund_id", "id"),
        Index("ix_fund_movement_support", "support_id", "id"),
        Index("ix_fund_movement_plan", "plan_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("fund.id"))
    kind: Mapped[str] = mapped_column(String(12))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    # The plan's intervention and the plan the money is for. Money that moved stays in the
    # books: a support or plan with movements can't be deleted.
    support_id: Mapped[int | None] = mapped_column(
        ForeignKey("plan_support.id", ondelete="RESTRICT")
    )
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plan.id", ondelete="RESTRICT"))
    # Payments only: the day the money went out, to whom and how.
    paid_on: Mapped[date | None] = mapped_column(Date)
    paid_to: Mapped[str | None] = mapped_column(String(12))
    method: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
