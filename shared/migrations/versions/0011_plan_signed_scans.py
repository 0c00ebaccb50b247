"""Plans: the scan of the paper the citizen signed, kept in the database with its version.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_signed_scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=20), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=80), nullable=False),
        sa.CheckConstraint(
            "media_type IN ('application/pdf', 'image/jpeg', 'image/png')",
            name=op.f("ck_plan_signed_scan_type"),
        ),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_plan_signed_scan_size")),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan.id"],
            name=op.f("fk_plan_signed_scan_plan_id_plan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_signed_scan")),
    )
    with op.batch_alter_table("plan_signed_scan", schema=None) as batch_op:
        batch_op.create_index("ix_plan_signed_scan_plan", ["plan_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("plan_signed_scan", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_signed_scan_plan")
    op.drop_table("plan_signed_scan")
