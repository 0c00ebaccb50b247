"""The screening tally: anonymous counts of questionnaires wiped by the expiry sweep or
erased with their citizen, so the figures' drop-off per question and reasons stay the
same after (`shared.intake.tally`). A new table only: no citizen, no answer.

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
# The chain is 0015 -> 0018 -> 0016 on main; 0017 is not used there.
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "screening_tally",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('stopped', 'erased', 'ruled_out', 'reason')",
            name=op.f("ck_screening_tally_kind"),
        ),
        sa.CheckConstraint("n > 0", name=op.f("ck_screening_tally_n_positive")),
        sa.PrimaryKeyConstraint("day", "kind", "key", name=op.f("pk_screening_tally")),
    )


def downgrade() -> None:
    op.drop_table("screening_tally")
