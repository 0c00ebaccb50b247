"""Consent on citizens, anonymous refusals, and Telegram updates already handled.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("citizen") as batch:
        batch.add_column(sa.Column("consent_version", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("consented_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "consent_refusal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_version", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_refusal")),
    )
    op.create_table(
        "processed_update",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_processed_update")),
    )


def downgrade() -> None:
    op.drop_table("processed_update")
    op.drop_table("consent_refusal")
    with op.batch_alter_table("citizen") as batch:
        batch.drop_column("consented_at")
        batch.drop_column("consent_version")
