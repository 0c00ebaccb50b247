"""Funds and their ledger: deposits, commitments, payments and releases, in integer cents.

`support_id` and `plan_id` are plain integers for now: the plans' migration adds their
foreign keys.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fund",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("funder", sa.String(length=120), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deposited_cents", sa.BigInteger(), nullable=False),
        sa.Column("committed_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("deposited_cents >= 0", name=op.f("ck_fund_deposited_not_negative")),
        sa.CheckConstraint("committed_cents >= 0", name=op.f("ck_fund_committed_not_negative")),
        sa.CheckConstraint("paid_cents >= 0", name=op.f("ck_fund_paid_not_negative")),
        sa.CheckConstraint(
            "committed_cents + paid_cents <= deposited_cents", name=op.f("ck_fund_not_overspent")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fund")),
        sa.UniqueConstraint("name", name=op.f("uq_fund_name")),
    )
    op.create_table(
        "fund_movement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fund_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("support_id", sa.Integer(), nullable=True),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("paid_to", sa.String(length=12), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('deposit', 'commitment', 'payment', 'release')",
            name=op.f("ck_fund_movement_kind"),
        ),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_fund_movement_amount_positive")),
        sa.CheckConstraint(
            "(kind = 'deposit' AND support_id IS NULL AND plan_id IS NULL) OR "
            "(kind != 'deposit' AND support_id IS NOT NULL)",
            name=op.f("ck_fund_movement_support"),
        ),
        sa.CheckConstraint(
            "(kind = 'payment' AND paid_on IS NOT NULL AND paid_to IS NOT NULL "
            "AND method IS NOT NULL) OR "
            "(kind != 'payment' AND paid_on IS NULL AND paid_to IS NULL AND method IS NULL)",
            name=op.f("ck_fund_movement_payment_details"),
        ),
        sa.CheckConstraint(
            "paid_to IS NULL OR paid_to IN ('citizen', 'landlord', 'utility', 'other')",
            name=op.f("ck_fund_movement_paid_to"),
        ),
        sa.CheckConstraint(
            "method IS NULL OR method IN "
            "('bank_transfer', 'cash', 'voucher', 'direct_debit', 'other')",
            name=op.f("ck_fund_movement_method"),
        ),
        sa.ForeignKeyConstraint(
            ["fund_id"], ["fund.id"], name=op.f("fk_fund_movement_fund_id_fund")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fund_movement")),
    )
    op.create_index("ix_fund_movement_fund", "fund_movement", ["fund_id", "id"], unique=False)
    op.create_index("ix_fund_movement_support", "fund_movement", ["support_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_fund_movement_support", table_name="fund_movement")
    op.drop_index("ix_fund_movement_fund", table_name="fund_movement")
    op.drop_table("fund_movement")
    op.drop_table("fund")
