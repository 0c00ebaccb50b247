from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime, utcnow


class MessageState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"
    # Given up: too many failures, or the citizen can't be reached (blocked the bot).
    FAILED = "failed"


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'cancelled', 'failed')", name="state"
        ),
        Index("ix_outbox_message_due", "state", "due_at"),
        Index("ix_outbox_message_subject", "subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Same key, same message: queueing it again is a no-op.
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    # What the message is about (e.g. "booking:42"), so its pending messages can be withdrawn.
    subject: Mapped[str | None] = mapped_column(String(60))
    # When the message is meant to go out; with the id, its place in the citizen's queue
    # (a citizen's messages go out in this order, each waiting for the ones before it).
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # After a refusal or a failure: not tried again before this time. The message keeps
    # its due time, hence its place, and the citizen's later messages wait for it.
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(10), default=MessageState.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # A claim is a lease: a worker that dies mid-send gives the message back when it lapses.
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
