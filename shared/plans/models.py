"""The Individualized Intervention Plan (PII) of an admitted case, and its history.

The plan mirrors the "Patto per l'inclusione sociale": a situation summary, objectives
with their expected results, the citizen's commitments, the supports (interventions of
`shared.plans.catalog`, each with its own details) and the plan team.

    draft ──submit──▶ submitted ──approve──▶ approved ──sign──▶ active ──close──▶ closed
      ▲                  │  ▲                   │                 │
      └──── returned ◀───┘  └── material change ┴─────────────────┘

- a coordinator approves (the supports' money is committed against their funds) or
  returns the plan with a comment; a returned plan is edited and submitted again;
- recording the citizen's signature activates the plan and its proposed supports;
- after approval every change is kept in `PlanChange` (who, when, before and after); a
  material change (a new support with money, a higher amount, a longer duration) sends
  the plan back to `submitted`, to be approved again;
- closing records the outcome and the closure check of the interview's baseline.

Which states allow what is `shared.plans.lifecycle`; the rows here only hold it.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.crypto import EncryptedJSON, EncryptedText
from shared.db import Base, UTCDateTime, utcnow


class PlanState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    RETURNED = "returned"
    ACTIVE = "active"
    CLOSED = "closed"


class SupportState(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class PlanOutcome(StrEnum):
    """How the path ended (SPEC section 5)."""

    EMPLOYED = "employed"
    INTERNSHIP_STARTED = "internship_started"
    SELF_EMPLOYMENT_RESTARTED = "self_employment_restarted"
    REFERRED = "referred"
    DROPPED_OUT = "dropped_out"
    OTHER = "other"


class Trend(StrEnum):
    """The closure check: each baseline of the interview compared with the start."""

    BETTER = "better"
    SAME = "same"
    WORSE = "worse"


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Plan(Base):
    __tablename__ = "plan"
    __table_args__ = (
        CheckConstraint(_in("state", PlanState), name="state"),
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', PlanOutcome)}", name="outcome"),
        CheckConstraint("version >= 1", name="version"),
        # The coordinators' queue (submitted, oldest first) and the lists by state.
        Index("ix_plan_state_submitted", "state", "submitted_at", "id"),
        Index("ix_plan_owner_state", "owner_id", "state", "id"),
        Index("ix_plan_next_review", "next_review_on", "id"),
        # Every other list: the most recently changed first, with or without a state.
        Index("ix_plan_updated", "updated_at", "id"),
        Index("ix_plan_state_updated", "state", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # One plan per case: a citizen who comes back gets a new case, and so a new plan.
    case_id: Mapped[int] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[str] = mapped_column(String(12), default=PlanState.DRAFT.value)
    # Raised at each approval after the first: the version printed and signed.
    version: Mapped[int] = mapped_column(default=1)
    # The situation, the return comment and the outcome notes are encrypted at rest
    # (shared.crypto).
    summary: Mapped[str] = mapped_column(EncryptedText, default="")
    # The case worker who builds it (the case's assignee when it was started).
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    next_review_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The coordinator's last decision: approved or returned, with the comment.
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(80))
    return_comment: Mapped[str | None] = mapped_column(EncryptedText)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The date on the paper the citizen signed (the legal default), and when it was recorded.
    signed_on: Mapped[date | None] = mapped_column(Date)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(32))
    outcome_notes: Mapped[str | None] = mapped_column(EncryptedText)
    # The closure check (`Trend`), one per baseline of the interview.
    income_trend: Mapped[str | None] = mapped_column(String(8))
    debts_trend: Mapped[str | None] = mapped_column(String(8))
    urgent_expenses_trend: Mapped[str | None] = mapped_column(String(8))


class PlanObjective(Base):
    __tablename__ = "plan_objective"
    __table_args__ = (Index("ix_plan_objective_plan", "plan_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    objective: Mapped[str] = mapped_column(String(500))
    expected_result: Mapped[str] = mapped_column(String(500), default="")


class PlanCommitment(Base):
    """What the citizen agrees to do, by when."""

    __tablename__ = "plan_commitment"
    __table_args__ = (Index("ix_plan_commitment_plan", "plan_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    what: Mapped[str] = mapped_column(String(500))
    due_on: Mapped[date | None] = mapped_column(Date)


class PlanSupport(Base):
    """One intervention of the catalog in a plan: its details, who provides it, its money."""

    __tablename__ = "plan_support"
    __table_args__ = (
        CheckConstraint(_in("state", SupportState), name="state"),
        CheckConstraint("amount_cents >= 0", name="amount"),
        CheckConstraint(
            "ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on", name="dates"
        ),
        Index("ix_plan_support_plan", "plan_id", "position"),
        Index("ix_plan_support_kind_state", "kind", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Responsible: a case worker, or one of the program's organisations.
    responsible_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    organisation: Mapped[str | None] = mapped_column(String(40))
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(12), default=SupportState.PROPOSED.value)
    fund_id: Mapped[int | None] = mapped_column(ForeignKey("fund.id", ondelete="RESTRICT"))
    # What the support takes from its fund (`catalog.amount_cents`), kept with the details.
    amount_cents: Mapped[int] = mapped_column(default=0)


class PlanTeamMember(Base):
    """Who works on the plan: staff of the municipality or of a partner, with their part."""

    __tablename__ = "plan_team_member"
    __table_args__ = (Index("ix_plan_team_member_plan", "plan_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    # Someone without an account (a partner's psychologist, a tutor): name and organisation.
    name: Mapped[str | None] = mapped_column(String(120))
    organisation: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(120), default="")


class PlanChange(Base):
    """One change to a plan after its first approval, or one step of its life."""

    __tablename__ = "plan_change"
    __table_args__ = (Index("ix_plan_change_plan", "plan_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    # "summary", "objective", "commitment", "support", "team", or a transition ("approve").
    what: Mapped[str] = mapped_column(String(20))
    item_id: Mapped[int | None] = mapped_column()
    # Encrypted at rest (shared.crypto): they copy the situation and the return comment.
    before: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    # It sent the approved plan back to the coordinator.
    material: Mapped[bool] = mapped_column(default=False)


class PlanAcknowledgement(Base):
    """The citizen tapped "I've read it" under the Telegram summary of their active plan.

    Not a signature (that is `Plan.signed_on`, on paper): a note that they read what the
    summary told them. `content_hash` is `shared.plans.messages.PlanSummary.content_hash`,
    over the version's commitments and supports in no language, so the plan page can tell
    whether what was read is still what the plan says. One row per version and content:
    a second tap on the same summary records nothing new.
    """

    __tablename__ = "plan_acknowledgement"
    __table_args__ = (
        UniqueConstraint("plan_id", "version", "content_hash"),
        CheckConstraint("version >= 1", name="version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    # SHA-256, hex.
    content_hash: Mapped[str] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SignedScan(Base):
    """The scan of the paper the citizen signed (PDF, JPEG or PNG), kept with the plan.

    Stored in the database, so backups and erasure treat it like the rest of the plan;
    its type is what its content says (`shared.plans.scans`), never what the upload claims.
    """

    __tablename__ = "plan_signed_scan"
    __table_args__ = (
        CheckConstraint(
            "media_type IN ('application/pdf', 'image/jpeg', 'image/png')", name="type"
        ),
        CheckConstraint("size_bytes > 0", name="size"),
        Index("ix_plan_signed_scan_plan", "plan_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    # The plan's version the paper shows.
    version: Mapped[int] = mapped_column()
    media_type: Mapped[str] = mapped_column(String(20))
    size_bytes: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(80))


class ReviewStatus(StrEnum):
    """How far one objective or commitment had come at a review."""

    DONE = "done"
    IN_PROGRESS = "in_progress"
    NOT_DONE = "not_done"


class PlanReview(Base):
    """A monitoring meeting of an active plan (the PaIS "piano incontri"): the day it was
    held, how far each objective and commitment had come, notes, and the next review.

    `progress` maps "objective:<id>" and "commitment:<id>" to {"status": a `ReviewStatus`
    value, "note": ..., "text": what the row said that day}. The text is kept because the
    plan's rows can change or go after the meeting, and the review must still say what was
    reviewed. Recording a review moves `Plan.next_review_on` to `next_review_on`.
    """

    __tablename__ = "plan_review"
    __table_args__ = (
        CheckConstraint("next_review_on > held_on", name="next_after_held"),
        Index("ix_plan_review_plan", "plan_id", "held_on", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    held_on: Mapped[date] = mapped_column(Date)
    # Encrypted at rest (shared.crypto): the notes, and each item's note in the progress.
    progress: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)
    notes: Mapped[str] = mapped_column(EncryptedText, default="")
    next_review_on: Mapped[date] = mapped_column(Date)
    actor: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
