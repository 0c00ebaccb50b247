"""The figures kept for a while (`shared.figures.cache`): one row per filter of the page
(period and helpdesk, 0 for every helpdesk), the figures as JSON, the charts drawn from
them per language, and when they were computed. A new table only: no personal data.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kept_figures",
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("helpdesk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("charts", sa.JSON(), nullable=False),
        sa.CheckConstraint("helpdesk >= 0", name=op.f("ck_kept_figures_helpdesk")),
        sa.PrimaryKeyConstraint("first_day", "last_day", "helpdesk", name=op.f("pk_kept_figures")),
    )


def downgrade() -> None:
    op.drop_table("kept_figures")
