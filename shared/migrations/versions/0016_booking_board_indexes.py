"""Bookings: indexes for the coordinators' bookings board (`shared.booking.board`).

The board orders every booking by appointment or by booking time, with or without a state
(its tabs), narrows to a moderation state, finds the citizens with repeated no-shows and
the urgent citizens; each has an index, so that a page and its counts are index walks at any
number of bookings (docs/benchmarks.md, "Bookings board"). Only indexes are added.

Revision ID: 0016
Revises: 0018
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
# 0018 is on main before this one (0017 is not yet): the chain stays one line.
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MODERATED = sa.text("moderation IS NOT NULL")
_NO_SHOW = sa.text("state = 'no_show'")
_URGENT = sa.text("urgent")


def upgrade() -> None:
    op.create_index("ix_booking_starts_at", "booking", ["starts_at", "id"])
    op.create_index("ix_booking_created_at", "booking", ["created_at", "id"])
    op.create_index("ix_booking_state_starts_at", "booking", ["state", "starts_at", "id"])
    op.create_index("ix_booking_state_created_at", "booking", ["state", "created_at", "id"])
    op.create_index(
        "ix_booking_moderation_starts_at",
        "booking",
        ["moderation", "starts_at", "id"],
        sqlite_where=_MODERATED,
        postgresql_where=_MODERATED,
    )
    op.create_index(
        "ix_booking_no_show_citizen",
        "booking",
        ["citizen_id"],
        sqlite_where=_NO_SHOW,
        postgresql_where=_NO_SHOW,
    )
    # The urgent citizens, for the board's urgent filter: PostgreSQL reads these few index
    # entries instead of the whole citizen table for each state's count.
    op.create_index(
        "ix_citizen_urgent", "citizen", ["id"], sqlite_where=_URGENT, postgresql_where=_URGENT
    )


def downgrade() -> None:
    op.drop_index("ix_citizen_urgent", table_name="citizen")
    for name in (
        "ix_booking_no_show_citizen",
        "ix_booking_moderation_starts_at",
        "ix_booking_state_created_at",
        "ix_booking_state_starts_at",
        "ix_booking_created_at",
        "ix_booking_starts_at",
    ):
        op.drop_index(name, table_name="booking")
