from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime, utcnow


class IntakeState(StrEnum):
    IN_PROGRESS = "in_progress"
    # Every step answered: the citizen checks the answers and confirms or changes one.
    SUMMARY = "summary"
    COMPLETED = "completed"
    # Left unfinished too long: the answers were deleted.
    EXPIRED = "expired"


UNFINISHED = (IntakeState.IN_PROGRESS.value, IntakeState.SUMMARY.value)


class Intake(Base):
    """One citizen's pre-screening questionnaire: where they are, and what they answered."""

    __tablename__ = "intake"
    __table_args__ = (
        CheckConstraint(
            "state IN ('in_progress', 'summary', 'completed', 'expired')", name="state"
        ),
        # The expiry sweep looks for unfinished intakes by age.
        Index("ix_intake_state_updated_at", "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[str] = mapped_column(String(12), default=IntakeState.IN_PROGRESS.value)
    # The step being asked; null in the summary and after it.
    current_step: Mapped[str | None] = mapped_column(String(40))
    # Step key -> normalised answer (None: an optional step skipped).
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Keys of the answered steps in the order they were answered, for "go back".
    history: Mapped[list[str]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expiry_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Null until the citizen confirms the summary.
    eligible: Mapped[bool | None] = mapped_column()
    urgent: Mapped[bool] = mapped_column(default=False)
