"""The intervention plan: objectives, the citizen's commitments, supports, team, history;
and the keys from the funds' ledger to the supports and plans its money is for.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("next_review_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("return_comment", sa.Text(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_on", sa.Date(), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("outcome_notes", sa.Text(), nullable=True),
        sa.Column("income_trend", sa.String(length=8), nullable=True),
        sa.Column("debts_trend", sa.String(length=8), nullable=True),
        sa.Column("urgent_expenses_trend", sa.String(length=8), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('employed', 'internship_started', 'self_employment_restarted', 'referred', 'dropped_out', 'other')",
            name=op.f("ck_plan_outcome"),
        ),
        sa.CheckConstraint(
            "state IN ('draft', 'submitted', 'approved', 'returned', 'active', 'closed')",
            name=op.f("ck_plan_state"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_plan_version")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_file.id"],
            name=op.f("fk_plan_case_id_case_file"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["staff_user.id"],
            name=op.f("fk_plan_owner_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan")),
        sa.UniqueConstraint("case_id", name=op.f("uq_plan_case_id")),
    )
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.create_index("ix_plan_next_review", ["next_review_on", "id"], unique=False)
        batch_op.create_index("ix_plan_owner_state", ["owner_id", "state", "id"], unique=False)
        batch_op.create_index(
            "ix_plan_state_submitted", ["state", "submitted_at", "id"], unique=False
        )

    op.create_table(
        "plan_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("what", sa.String(length=20), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("material", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plan.id"], name=op.f("fk_plan_change_plan_id_plan"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_change")),
    )
    with op.batch_alter_table("plan_change", schema=None) as batch_op:
        batch_op.create_index("ix_plan_change_plan", ["plan_id", "id"], unique=False)

    op.create_table(
        "plan_commitment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("what", sa.String(length=500), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan.id"],
            name=op.f("fk_plan_commitment_plan_id_plan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_commitment")),
    )
    with op.batch_alter_table("plan_commitment", schema=None) as batch_op:
        batch_op.create_index("ix_plan_commitment_plan", ["plan_id", "position"], unique=False)

    op.create_table(
        "plan_objective",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("objective", sa.String(length=500), nullable=False),
        sa.Column("expected_result", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan.id"],
            name=op.f("fk_plan_objective_plan_id_plan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_objective")),
    )
    with op.batch_alter_table("plan_objective", schema=None) as batch_op:
        batch_op.create_index("ix_plan_objective_plan", ["plan_id", "position"], unique=False)

    op.create_table(
        "plan_support",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("responsible_id", sa.Integer(), nullable=True),
        sa.Column("organisation", sa.String(length=40), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("fund_id", sa.Integer(), nullable=True),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "state IN ('proposed', 'active', 'completed', 'cancelled')",
            name=op.f("ck_plan_support_state"),
        ),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_plan_support_amount")),
        sa.CheckConstraint(
            "ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on",
            name=op.f("ck_plan_support_dates"),
        ),
        sa.ForeignKeyConstraint(
            ["fund_id"], ["fund.id"], name=op.f("fk_plan_support_fund_id_fund"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plan.id"], name=op.f("fk_plan_support_plan_id_plan"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["responsible_id"],
            ["staff_user.id"],
            name=op.f("fk_plan_support_responsible_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_support")),
    )
    with op.batch_alter_table("plan_support", schema=None) as batch_op:
        batch_op.create_index("ix_plan_support_kind_state", ["kind", "state"], unique=False)
        batch_op.create_index("ix_plan_support_plan", ["plan_id", "position"], unique=False)

    op.create_table(
        "plan_team_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=True),
        sa.Column("organisation", sa.String(length=40), nullable=True),
        sa.Column("role", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan.id"],
            name=op.f("fk_plan_team_member_plan_id_plan"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_user.id"],
            name=op.f("fk_plan_team_member_staff_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_team_member")),
    )
    with op.batch_alter_table("plan_team_member", schema=None) as batch_op:
        batch_op.create_index("ix_plan_team_member_plan", ["plan_id", "position"], unique=False)

    with op.batch_alter_table("fund_movement", schema=None) as batch_op:
        batch_op.create_index("ix_fund_movement_plan", ["plan_id", "id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_fund_movement_support_id_plan_support"),
            "plan_support",
            ["support_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_fund_movement_plan_id_plan"),
            "plan",
            ["plan_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    with op.batch_alter_table("fund_movement", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_fund_movement_plan_id_plan"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_fund_movement_support_id_plan_support"), type_="foreignkey"
        )
        batch_op.drop_index("ix_fund_movement_plan")

    with op.batch_alter_table("plan_team_member", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_team_member_plan")

    op.drop_table("plan_team_member")
    with op.batch_alter_table("plan_support", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_support_plan")
        batch_op.drop_index("ix_plan_support_kind_state")

    op.drop_table("plan_support")
    with op.batch_alter_table("plan_objective", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_objective_plan")

    op.drop_table("plan_objective")
    with op.batch_alter_table("plan_commitment", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_commitment_plan")

    op.drop_table("plan_commitment")
    with op.batch_alter_table("plan_change", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_change_plan")

    op.drop_table("plan_change")
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_state_submitted")
        batch_op.drop_index("ix_plan_owner_state")
        batch_op.drop_index("ix_plan_next_review")

    op.drop_table("plan")
