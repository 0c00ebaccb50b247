from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime, utcnow


class Channel(StrEnum):
    TELEGRAM = "telegram"
    PHONE = "phone"
    WALK_IN = "walk_in"


class Citizen(Base):
    __tablename__ = "citizen"
    __table_args__ = (
        CheckConstraint("channel IN ('telegram', 'phone', 'walk_in')", name="channel"),
        Index("ix_citizen_phone", "phone"),
        Index("ix_citizen_fiscal_code", "fiscal_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), default=Channel.TELEGRAM.value)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(8), default="it")
    name: Mapped[str | None] = mapped_column(String(80))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    fiscal_code: Mapped[str | None] = mapped_column(String(16))
    # The privacy notice version the citizen accepted, and when (SPEC J8).
    consent_version: Mapped[str | None] = mapped_column(String(20))
    consented_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    urgent: Mapped[bool] = mapped_column(default=False)
    # Set when Telegram answers 403 (the citizen blocked the bot): stop messaging them.
    unreachable: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Set by the erasure (`shared.privacy.erasure`): the row is an anonymous tombstone, every
    # identifying column empty, kept so that what hangs off it still counts in the figures.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConsentRefusal(Base):
    """A refused privacy notice: anonymous on purpose, it only counts refusals."""

    __tablename__ = "consent_refusal"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_version: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProcessedUpdate(Base):
    """A Telegram update already handled: a redelivered `update_id` is ignored."""

    __tablename__ = "processed_update"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
