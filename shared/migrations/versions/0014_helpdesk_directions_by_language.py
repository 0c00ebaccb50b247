"""Helpdesks: directions in the program's other languages, next to the Italian ones.

`helpdesk.directions` stays the Italian text (what a citizen gets when their language has
none), so what staff wrote so far is kept as the Italian directions; the other languages
go in a JSON document, language → text. Only a column is added: on SQLite a table rebuild
would drop `helpdesk`, which the hours, slots and bookings point to.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: on SQLite batch mode rebuilt the table here.
    op.add_column(
        "helpdesk",
        sa.Column(
            "directions_translations", sa.JSON(), server_default=sa.text("'{}'"), nullable=False
        ),
    )


def downgrade() -> None:
    # Native DROP COLUMN on both (SQLite 3.35+): batch mode would rebuild the table.
    op.execute("ALTER TABLE helpdesk DROP COLUMN directions_translations")
