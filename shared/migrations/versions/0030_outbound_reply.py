"""The durable replies (`shared.inbox.models.OutboundReply`): the replies of a handled
Telegram update, kept in the update's transaction until they are sent. A new table only;
its JSON (what the citizen is told) is encrypted.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbound_reply",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("query_id", sa.String(length=80), nullable=True),
        sa.Column("replies", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_outbound_reply")),
    )


def downgrade() -> None:
    op.drop_table("outbound_reply")
