"""Outbox: the time a refused or failed message may be tried again, apart from its due time.

A retried message keeps its `due_at`, and with it its place in its citizen's queue, so
the citizen's later messages wait for it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Before 0007 a retry moved the due time itself.
    op.execute(
        "UPDATE outbox_message SET due_at = retry_at "
        "WHERE retry_at IS NOT NULL AND retry_at > due_at AND state = 'pending'"
    )
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("retry_at")
