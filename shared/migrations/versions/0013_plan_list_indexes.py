"""Plans: indexes for the plans list, newest change first, with or without a state.

The list orders by `updated_at`; without an index on it every page sorted all the
visible plans (docs/benchmarks.md, "Plan page and plans list").

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.create_index("ix_plan_updated", ["updated_at", "id"], unique=False)
        batch_op.create_index("ix_plan_state_updated", ["state", "updated_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_state_updated")
        batch_op.drop_index("ix_plan_updated")
