from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String
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


class TallyKind(StrEnum):
    # Key: the question (a step key, or "summary") an abandoned questionnaire stood at
    # when the expiry sweep or its citizen's erasure wiped it.
    STOPPED = "stopped"
    # Key: the state of a questionnaire deleted with its citizen (SPEC J8).
    ERASED = "erased"
    # Key: "" (how many of the erased ones the rules had ruled out), or the rule's reason
    # (a questionnaire may fail more than one).
    RULED_OUT = "ruled_out"
    REASON = "reason"


class ScreeningTally(Base):
    """Anonymous counts of questionnaires that are no longer what they were in `intake`.

    The expiry sweep wipes an abandoned questionnaire and an erasure deletes it; what the
    figures counted of it is added here, in the same transaction, so the figures stay the
    same. No citizen and no answer: the local day the questionnaire was started (the
    figures count by it), what is counted, a key and how many.
    """

    __tablename__ = "screening_tally"
    __table_args__ = (
        CheckConstraint("kind IN ('stopped', 'erased', 'ruled_out', 'reason')", name="kind"),
        CheckConstraint("n > 0", name="n_positive"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    n: Mapped[int] = mapped_column()
