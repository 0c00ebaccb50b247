"""The pre-screening questionnaire's state: one intake per citizen.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "intake",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("current_step", sa.String(length=40), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expiry_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("eligible", sa.Boolean(), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "state IN ('in_progress', 'summary', 'completed', 'expired')",
            name=op.f("ck_intake_state"),
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizen.id"],
            name=op.f("fk_intake_citizen_id_citizen"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake")),
        sa.UniqueConstraint("citizen_id", name=op.f("uq_intake_citizen_id")),
    )
    op.create_index("ix_intake_state_updated_at", "intake", ["state", "updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_intake_state_updated_at", table_name="intake")
    op.drop_table("intake")
