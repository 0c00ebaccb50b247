"""Waitlist entries: a place offered by staff (an earlier place for an urgent citizen).

A coordinator's offer is a waitlist entry in state `offered`, held and answered like the
waitlist's own. `offered_by` names who made it (null: the waitlist's own offer of a freed
place) and `replaces_booking_id` the booking that accepting it moves to the offered place
(null: it becomes a booking of its own). Only columns are added: on SQLite a table
rebuild would drop `waitlist_entry`.

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: on SQLite batch mode rebuilds the table.
    op.add_column("waitlist_entry", sa.Column("offered_by", sa.String(length=80), nullable=True))
    # The foreign key inline, in one ADD COLUMN both databases take (alembic would add
    # it as a separate constraint, which SQLite can't ALTER in).
    op.execute(
        "ALTER TABLE waitlist_entry ADD COLUMN replaces_booking_id INTEGER "
        "CONSTRAINT fk_waitlist_entry_replaces_booking_id_booking REFERENCES booking (id)"
    )


def downgrade() -> None:
    # Native DROP COLUMN on both (SQLite 3.35+): batch mode would rebuild the table.
    for column in ("replaces_booking_id", "offered_by"):
        op.execute(f"ALTER TABLE waitlist_entry DROP COLUMN {column}")
