"""Citizens, helpdesks and opening hours, slots, bookings, waitlist and outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 18:42:26.631361
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "citizen",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=True),
        sa.Column("telegram_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("fiscal_code", sa.String(length=16), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("unreachable", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('telegram', 'phone', 'walk_in')", name=op.f("ck_citizen_channel")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen")),
        sa.UniqueConstraint("telegram_user_id", name=op.f("uq_citizen_telegram_user_id")),
    )
    op.create_index("ix_citizen_fiscal_code", "citizen", ["fiscal_code"], unique=False)
    op.create_index("ix_citizen_phone", "citizen", ["phone"], unique=False)

    op.create_table(
        "helpdesk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("directions", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_helpdesk")),
        sa.UniqueConstraint("name", name=op.f("uq_helpdesk_name")),
    )
    op.create_table(
        "closure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("helpdesk_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.Time(), nullable=True),
        sa.Column("ends_at", sa.Time(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "(starts_at IS NULL AND ends_at IS NULL) OR (starts_at IS NOT NULL AND ends_at IS NOT NULL AND starts_at < ends_at)",
            name=op.f("ck_closure_hours"),
        ),
        sa.ForeignKeyConstraint(
            ["helpdesk_id"],
            ["helpdesk.id"],
            name=op.f("fk_closure_helpdesk_id_helpdesk"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_closure")),
    )
    op.create_index("ix_closure_helpdesk_day", "closure", ["helpdesk_id", "day"], unique=False)

    op.create_table(
        "extra_opening",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("helpdesk_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("opens_at", sa.Time(), nullable=False),
        sa.Column("closes_at", sa.Time(), nullable=False),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("places", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.CheckConstraint("opens_at < closes_at", name=op.f("ck_extra_opening_hours")),
        sa.CheckConstraint("places BETWEEN 1 AND 100", name=op.f("ck_extra_opening_places")),
        sa.CheckConstraint(
            "slot_minutes BETWEEN 5 AND 480", name=op.f("ck_extra_opening_slot_minutes")
        ),
        sa.ForeignKeyConstraint(
            ["helpdesk_id"],
            ["helpdesk.id"],
            name=op.f("fk_extra_opening_helpdesk_id_helpdesk"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extra_opening")),
    )
    op.create_index(
        "ix_extra_opening_helpdesk_day", "extra_opening", ["helpdesk_id", "day"], unique=False
    )

    op.create_table(
        "opening_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("helpdesk_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("opens_at", sa.Time(), nullable=False),
        sa.Column("closes_at", sa.Time(), nullable=False),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("places", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.CheckConstraint("opens_at < closes_at", name=op.f("ck_opening_rule_hours")),
        sa.CheckConstraint("places BETWEEN 1 AND 100", name=op.f("ck_opening_rule_places")),
        sa.CheckConstraint(
            "slot_minutes BETWEEN 5 AND 480", name=op.f("ck_opening_rule_slot_minutes")
        ),
        sa.CheckConstraint(
            "valid_until IS NULL OR valid_from <= valid_until",
            name=op.f("ck_opening_rule_validity"),
        ),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_opening_rule_weekday")),
        sa.ForeignKeyConstraint(
            ["helpdesk_id"],
            ["helpdesk.id"],
            name=op.f("fk_opening_rule_helpdesk_id_helpdesk"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opening_rule")),
    )
    op.create_index(
        "ix_opening_rule_helpdesk", "opening_rule", ["helpdesk_id", "weekday"], unique=False
    )

    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.String(length=60), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=80), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'cancelled', 'failed')",
            name=op.f("ck_outbox_message_state"),
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizen.id"],
            name=op.f("fk_outbox_message_citizen_id_citizen"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_message_idempotency_key")),
    )
    op.create_index("ix_outbox_message_due", "outbox_message", ["state", "due_at"], unique=False)
    op.create_index("ix_outbox_message_subject", "outbox_message", ["subject"], unique=False)

    op.create_table(
        "slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("helpdesk_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.CheckConstraint("taken <= capacity", name=op.f("ck_slot_not_overfilled")),
        sa.CheckConstraint("taken >= 0", name=op.f("ck_slot_taken_not_negative")),
        sa.ForeignKeyConstraint(
            ["helpdesk_id"],
            ["helpdesk.id"],
            name=op.f("fk_slot_helpdesk_id_helpdesk"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot")),
        sa.UniqueConstraint("helpdesk_id", "starts_at", name=op.f("uq_slot_helpdesk_id_starts_at")),
    )
    op.create_table(
        "booking",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("helpdesk_id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=80), nullable=True),
        sa.Column("cancel_reason", sa.String(length=200), nullable=True),
        sa.Column("moved_from_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "state IN ('booked', 'attended', 'no_show', 'cancelled_by_citizen', 'cancelled_by_staff')",
            name=op.f("ck_booking_state"),
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizen.id"],
            name=op.f("fk_booking_citizen_id_citizen"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["helpdesk_id"], ["helpdesk.id"], name=op.f("fk_booking_helpdesk_id_helpdesk")
        ),
        sa.ForeignKeyConstraint(
            ["moved_from_id"], ["booking.id"], name=op.f("fk_booking_moved_from_id_booking")
        ),
        sa.ForeignKeyConstraint(["slot_id"], ["slot.id"], name=op.f("fk_booking_slot_id_slot")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking")),
        sa.UniqueConstraint("code", name=op.f("uq_booking_code")),
    )
    op.create_index(
        "ix_booking_helpdesk_starts_at", "booking", ["helpdesk_id", "starts_at"], unique=False
    )
    op.create_index("ix_booking_slot", "booking", ["slot_id"], unique=False)
    op.create_index(
        "uq_booking_one_active_per_citizen",
        "booking",
        ["citizen_id"],
        unique=True,
        sqlite_where=sa.text("state = 'booked'"),
        postgresql_where=sa.text("state = 'booked'"),
    )

    op.create_table(
        "waitlist_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("helpdesk_id", sa.Integer(), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offered_slot_id", sa.Integer(), nullable=True),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "state IN ('waiting', 'offered', 'accepted', 'expired', 'declined', 'left')",
            name=op.f("ck_waitlist_entry_state"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_waitlist_entry_booking_id_booking")
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizen.id"],
            name=op.f("fk_waitlist_entry_citizen_id_citizen"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["helpdesk_id"], ["helpdesk.id"], name=op.f("fk_waitlist_entry_helpdesk_id_helpdesk")
        ),
        sa.ForeignKeyConstraint(
            ["offered_slot_id"], ["slot.id"], name=op.f("fk_waitlist_entry_offered_slot_id_slot")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entry")),
    )
    op.create_index(
        "ix_waitlist_entry_queue", "waitlist_entry", ["state", "urgent", "created_at"], unique=False
    )
    op.create_index(
        "uq_waitlist_one_open_per_citizen",
        "waitlist_entry",
        ["citizen_id"],
        unique=True,
        sqlite_where=sa.text("state IN ('waiting', 'offered')"),
        postgresql_where=sa.text("state IN ('waiting', 'offered')"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_waitlist_one_open_per_citizen",
        table_name="waitlist_entry",
        sqlite_where=sa.text("state IN ('waiting', 'offered')"),
        postgresql_where=sa.text("state IN ('waiting', 'offered')"),
    )
    op.drop_index("ix_waitlist_entry_queue", table_name="waitlist_entry")

    op.drop_table("waitlist_entry")
    op.drop_index(
        "uq_booking_one_active_per_citizen",
        table_name="booking",
        sqlite_where=sa.text("state = 'booked'"),
        postgresql_where=sa.text("state = 'booked'"),
    )
    op.drop_index("ix_booking_slot", table_name="booking")
    op.drop_index("ix_booking_helpdesk_starts_at", table_name="booking")

    op.drop_table("booking")
    op.drop_table("slot")
    op.drop_index("ix_outbox_message_subject", table_name="outbox_message")
    op.drop_index("ix_outbox_message_due", table_name="outbox_message")

    op.drop_table("outbox_message")
    op.drop_index("ix_opening_rule_helpdesk", table_name="opening_rule")

    op.drop_table("opening_rule")
    op.drop_index("ix_extra_opening_helpdesk_day", table_name="extra_opening")

    op.drop_table("extra_opening")
    op.drop_index("ix_closure_helpdesk_day", table_name="closure")

    op.drop_table("closure")
    op.drop_table("helpdesk")
    op.drop_index("ix_citizen_phone", table_name="citizen")
    op.drop_index("ix_citizen_fiscal_code", table_name="citizen")

    op.drop_table("citizen")
