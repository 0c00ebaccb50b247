"""Bookings: whether the citizen has missed two appointments or more, on each booking,
indexed for the board.

The board's "repeated no-shows" filter found those citizens first (a GROUP BY of every
no-show) and then their bookings by citizen, all of them sorted and counted at each page:
both grow with the citizens who ever missed twice (~1,700 citizens and ~5,300 bookings at
100k bookings: the page took 3.2 times as long as at 1k on SQLite, docs/benchmarks.md,
"Bookings board"). `booking.citizen_repeated_no_shows` is set by the services
(`shared.booking.places`) when a booking is made and when a no-show is recorded, so that
the counts and the rows walk a partial index like the urgent citizens' (migration 0020).
A no-show is final: the flag is never cleared.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_booking_repeated_state_starts_at"
# As each database writes the board's filter: a partial index serves SQLite only when
# the query says the same (migration 0025).
_SQLITE = sa.text("citizen_repeated_no_shows = 1")
_POSTGRESQL = sa.text("citizen_repeated_no_shows")


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: on SQLite batch mode rebuilds the table.
    op.add_column(
        "booking",
        sa.Column(
            "citizen_repeated_no_shows", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )
    op.execute(
        "UPDATE booking SET citizen_repeated_no_shows = true WHERE citizen_id IN ("
        "SELECT missed.citizen_id FROM booking AS missed WHERE missed.state = 'no_show' "
        # 2: `shared.booking.models.REPEATED_NO_SHOWS` as of this migration.
        "GROUP BY missed.citizen_id HAVING count(*) >= 2)"
    )
    op.create_index(
        _INDEX,
        "booking",
        ["state", "starts_at", "id"],
        sqlite_where=_SQLITE,
        postgresql_where=_POSTGRESQL,
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="booking")
    # Native DROP COLUMN on both (SQLite 3.35+): batch mode would rebuild the table.
    op.execute("ALTER TABLE booking DROP COLUMN citizen_repeated_no_shows")
