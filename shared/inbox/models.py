from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.crypto import EncryptedJSON
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
    # The update as Telegram sent it (what the citizen wrote: encrypted). Short-lived:
    # deleted once handled.
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboundReply(Base):
    """The replies of a handled update, kept until they are sent.

    Written in the transaction of the update's state change, sent right after its commit,
    deleted with the update once sent: after a crash in between they are sent at the next
    start. The pressed button's message and callback query are kept to edit and answer.
    """

    __tablename__ = "outbound_reply"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    query_id: Mapped[str | None] = mapped_column(String(80))
    # What the citizen is told (their own data, a copy of it as a file): encrypted.
    replies: Mapped[list[dict[str, Any]]] = mapped_column(EncryptedJSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
