from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime, utcnow


class InboundUpdate(Base):
    """A Telegram update received and not yet handled to the end.

    Kept before Telegram is told it arrived (the next `getUpdates` offset, the webhook's
    200), deleted once handled: a crash in between loses nothing. Its `id` is the order
    in which it was received, which is the order of its chat's updates.
    """

    __tablename__ = "inbound_update"

    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    # None for the rare update without a chat (none of the kinds the bot asks for).
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    # The update as Telegram sent it. Short-lived: deleted once handled.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
