from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """One thing that happened; rows are never updated or deleted (triggers enforce it).

    Each row carries the hash of the one before it and a hash of its own content with that
    link (`shared.audit.chain`), so an edited, deleted or reordered row breaks the chain.
    Only pruning (`service.prune_before`) deletes, behind a checkpoint.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_object", "object_type", "object_id"),
        Index("ix_audit_event_at", "at"),
        # One successor per event: two writers chaining onto the same row can't both commit.
        Index("ix_audit_event_prev_hash", "prev_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Hex SHA-256: the previous event's `row_hash` (the checkpoint's, or zeros, for the first).
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """The events pruned from the start of the log: where the chain now starts.

    The first event kept links to `last_hash`, the hash of event `through_id`, the last one
    pruned; `pruned` events went this time, `total` since the log began. Insert-only.
    """

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    # Events recorded before this moment were pruned.
    before: Mapped[datetime] = mapped_column(UTCDateTime())
    through_id: Mapped[int]
    pruned: Mapped[int]
    total: Mapped[int]
    last_hash: Mapped[str] = mapped_column(String(64))
