"""Bookings: optional moderation per helpdesk (a citizen's choice as a request to confirm).

A moderated helpdesk's bookings start as requests: the booking holds its place as any
other (state `booked`) and `moderation` says where the request stands — pending, then
confirmed, declined or expired (the last two also cancel the booking). Unmoderated
helpdesks' bookings keep `moderation` null. The partial index serves the coordinators'
queue of requests (oldest first) and the sweep that expires them. Only columns and an
index are added: on SQLite a table rebuild would drop `booking`, which others point to.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("moderation = 'pending'")


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: on SQLite batch mode rebuilds the table.
    op.add_column(
        "helpdesk",
        sa.Column("moderated", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("booking", sa.Column("moderation", sa.String(length=10), nullable=True))
    op.add_column(
        "booking", sa.Column("request_expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("booking", sa.Column("moderated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("booking", sa.Column("moderated_by", sa.String(length=80), nullable=True))
    op.create_index(
        "ix_booking_pending_request",
        "booking",
        ["created_at"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_booking_pending_request", table_name="booking")
    # Native DROP COLUMN on both (SQLite 3.35+): batch mode would rebuild the table.
    for column in ("moderated_by", "moderated_at", "request_expires_at", "moderation"):
        op.execute(f"ALTER TABLE booking DROP COLUMN {column}")
    op.execute("ALTER TABLE helpdesk DROP COLUMN moderated")
