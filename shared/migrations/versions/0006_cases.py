"""Cases, interviews and the name index of the case search; bookings and messages by citizen.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "state != 'closed'"


def upgrade() -> None:
    op.create_table(
        "case_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=True),
        sa.Column("eligibility_override", sa.Boolean(), nullable=True),
        sa.Column("override_reason", sa.String(length=500), nullable=True),
        sa.Column("override_by", sa.String(length=80), nullable=True),
        sa.Column("override_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assigned_to_id", sa.Integer(), nullable=True),
        sa.Column("previous_case_id", sa.Integer(), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("helpdesk_id", sa.Integer(), nullable=True),
        sa.Column("appointment_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("no_shows", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "state IN ('new', 'booked', 'checked_in', 'interviewed', 'closed')",
            name=op.f("ck_case_file_state"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_to_id"],
            ["staff_user.id"],
            name=op.f("fk_case_file_assigned_to_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["booking.id"],
            name=op.f("fk_case_file_booking_id_booking"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizen.id"],
            name=op.f("fk_case_file_citizen_id_citizen"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["helpdesk_id"],
            ["helpdesk.id"],
            name=op.f("fk_case_file_helpdesk_id_helpdesk"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["previous_case_id"],
            ["case_file.id"],
            name=op.f("fk_case_file_previous_case_id_case_file"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_file")),
    )
    op.create_index(
        "uq_case_file_one_open_per_citizen",
        "case_file",
        ["citizen_id"],
        unique=True,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    op.create_index("ix_case_file_citizen", "case_file", ["citizen_id"])
    op.create_index("ix_case_file_opened", "case_file", ["opened_at", "id"])
    op.create_index("ix_case_file_state_opened", "case_file", ["state", "opened_at", "id"])
    op.create_index(
        "ix_case_file_assigned_opened", "case_file", ["assigned_to_id", "opened_at", "id"]
    )
    op.create_index("ix_case_file_urgent_opened", "case_file", ["urgent", "opened_at", "id"])
    op.create_index("ix_case_file_appointment", "case_file", ["appointment_at", "id"])
    op.create_index(
        "ix_case_file_helpdesk_appointment", "case_file", ["helpdesk_id", "appointment_at", "id"]
    )

    op.create_table(
        "interview",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=True),
        sa.Column("referred_to", sa.String(length=200), nullable=True),
        sa.Column("interviewer_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('admitted', 'not_admitted', 'referred')",
            name=op.f("ck_interview_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_file.id"],
            name=op.f("fk_interview_case_id_case_file"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["interviewer_id"],
            ["staff_user.id"],
            name=op.f("fk_interview_interviewer_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interview")),
        sa.UniqueConstraint("case_id", name=op.f("uq_interview_case_id")),
    )

    op.create_table(
        "case_name_prefix",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=20), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_file.id"],
            name=op.f("fk_case_name_prefix_case_id_case_file"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "prefix", name=op.f("pk_case_name_prefix")),
    )
    op.create_index(
        "ix_case_name_prefix_order", "case_name_prefix", ["prefix", "opened_at", "case_id"]
    )

    op.create_index("ix_booking_citizen", "booking", ["citizen_id"])
    op.create_index("ix_outbox_message_citizen", "outbox_message", ["citizen_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_message_citizen", table_name="outbox_message")
    op.drop_index("ix_booking_citizen", table_name="booking")
    op.drop_index("ix_case_name_prefix_order", table_name="case_name_prefix")
    op.drop_table("case_name_prefix")
    op.drop_table("interview")
    for index in (
        "ix_case_file_helpdesk_appointment",
        "ix_case_file_appointment",
        "ix_case_file_urgent_opened",
        "ix_case_file_assigned_opened",
        "ix_case_file_state_opened",
        "ix_case_file_opened",
        "ix_case_file_citizen",
        "uq_case_file_one_open_per_citizen",
    ):
        op.drop_index(index, table_name="case_file")
    op.drop_table("case_file")
