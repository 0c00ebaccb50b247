"""Bookings: SQLite's partial index of the urgent citizens' bookings says `citizen_urgent = 1`.

Migration 0020's index `ix_booking_urgent_state_starts_at` is partial, `WHERE
citizen_urgent`. SQLAlchemy writes the board's filter on SQLite as `booking.citizen_urgent
= 1`, and SQLite uses a partial index only when the query's own terms match the index's
condition as written: it never used this one. Each state's capped count of the urgent
bookings read the state's whole index with a lookup of each booking instead (10.5 ms at
100k bookings against 0.4 with the index; docs/benchmarks.md, "Bookings board"). On SQLite
the index is made again with the condition as the queries write it; PostgreSQL, which
writes and proves the plain column, keeps its index.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_booking_urgent_state_starts_at"


def _remake(condition: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index(_INDEX, table_name="booking")
    op.create_index(
        _INDEX, "booking", ["state", "starts_at", "id"], sqlite_where=sa.text(condition)
    )


def upgrade() -> None:
    _remake("citizen_urgent = 1")


def downgrade() -> None:
    _remake("citizen_urgent")
