"""Erasure keeps an anonymous tombstone (`shared.privacy.erasure`): `citizen.erased_at`
says a citizen's row has had every identifying column emptied, `case_file.anonymised_at`
that a case's interview, plan and notes have been wiped (by an erasure, or by retention
once the case has been closed for the retention period). Two nullable columns; nothing
to fill in (erasures before this deleted the citizen's rows).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: on SQLite batch mode rebuilds the table.
    op.add_column("citizen", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "case_file", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # Native DROP COLUMN on both (SQLite 3.35+): batch mode would rebuild the tables, and
    # SQLite's DROP TABLE of the old copy deletes its rows first, cascading to every
    # interview, plan and booking that hangs off them.
    op.execute("ALTER TABLE case_file DROP COLUMN anonymised_at")
    op.execute("ALTER TABLE citizen DROP COLUMN erased_at")
