"""Bookings: the citizen's urgency on each booking, indexed for the board.

The board's urgent filter counted each state's bookings by looking up every booking's
citizen (a quarter of the citizens are urgent in a program like this one: there are no
"few urgent citizens" to start from), 43-70 ms at 100k bookings against 3-8 for the other
filters (docs/benchmarks.md, "Bookings board"). `booking.citizen_urgent` is kept equal to
`citizen.urgent` by the services (`shared.booking.places`), so that the counts and the
rows walk a partial index of the urgent citizens' bookings instead. The citizen's index of
migration 0016 served only that filter and goes.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_URGENT = sa.text("citizen_urgent")
_CITIZEN_URGENT = sa.text("urgent")


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: on SQLite batch mode rebuilds the table.
    op.add_column(
        "booking",
        sa.Column("citizen_urgent", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(
        "UPDATE booking SET citizen_urgent = ("
        "SELECT citizen.urgent FROM citizen WHERE citizen.id = booking.citizen_id)"
    )
    op.create_index(
        "ix_booking_urgent_state_starts_at",
        "booking",
        ["state", "starts_at", "id"],
        sqlite_where=_URGENT,
        postgresql_where=_URGENT,
    )
    op.drop_index("ix_citizen_urgent", table_name="citizen")


def downgrade() -> None:
    op.create_index(
        "ix_citizen_urgent",
        "citizen",
        ["id"],
        sqlite_where=_CITIZEN_URGENT,
        postgresql_where=_CITIZEN_URGENT,
    )
    op.drop_index("ix_booking_urgent_state_starts_at", table_name="booking")
    # Native DROP COLUMN on both (SQLite 3.35+): batch mode would rebuild the table.
    op.execute("ALTER TABLE booking DROP COLUMN citizen_urgent")
