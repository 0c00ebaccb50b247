"""A case is one candidate's path; an interview is its structured colloquio.

How a case moves (`CaseState`), and who moves it:

    new ──booking made──▶ booked ──checked in──▶ checked_in ──outcome──▶ interviewed ──▶ closed
     ▲                      │                                    │ admitted: waits for its plan
     └──cancelled/no-show───┘                                    │ not admitted / referred:
                                                                 └──────────── closed at once

- `new`: the questionnaire is confirmed (eligible or not: staff can override) or staff
  opened it; no appointment yet. A cancelled booking or a no-show brings a case back here
  (a no-show is counted in `no_shows` and stays in the timeline).
- `booked` / `checked_in` follow the citizen's booking (the booking service calls the hook).
- `interviewed`: the outcome is `admitted`; the intervention plan (J5) continues from here.
- `closed`: the path ended (not admitted, referred, plan finished, or closed by staff from
  `new` or `interviewed`). A citizen who comes back gets a new case whose
  `previous_case_id` points to the closed one; a citizen has at most one open case.

The list page filters and orders by columns of this table only: the current or last
appointment (`appointment_at`, `helpdesk_id`, `booking_id`) is copied here by the booking
hook, so no list query has to look into the bookings.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.booking.models import Booking
from shared.crypto import EncryptedJSON
from shared.db import Base, UTCDateTime, utcnow
from shared.outbox.models import OutboxMessage


class CaseState(StrEnum):
    NEW = "new"
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    INTERVIEWED = "interviewed"
    CLOSED = "closed"


class Outcome(StrEnum):
    ADMITTED = "admitted"
    NOT_ADMITTED = "not_admitted"
    REFERRED = "referred"


OPEN_STATES = (
    CaseState.NEW.value,
    CaseState.BOOKED.value,
    CaseState.CHECKED_IN.value,
    CaseState.INTERVIEWED.value,
)
# The interview can be drafted until its outcome is recorded.
DRAFT_STATES = (CaseState.NEW.value, CaseState.BOOKED.value, CaseState.CHECKED_IN.value)
# Booked and checked-in cases close through their booking or their interview's outcome.
CLOSABLE_STATES = (CaseState.NEW.value, CaseState.INTERVIEWED.value)


class Case(Base):
    __tablename__ = "case_file"
    __table_args__ = (
        CheckConstraint(
            "state IN ('new', 'booked', 'checked_in', 'interviewed', 'closed')", name="state"
        ),
        # At most one open case per citizen, whatever the concurrency.
        Index(
            "uq_case_file_one_open_per_citizen",
            "citizen_id",
            unique=True,
            sqlite_where=text("state != 'closed'"),
            postgresql_where=text("state != 'closed'"),
        ),
        Index("ix_case_file_citizen", "citizen_id"),
        # The list's order (newest first) alone and after its usual filters.
        Index("ix_case_file_opened", "opened_at", "id"),
        Index("ix_case_file_state_opened", "state", "opened_at", "id"),
        Index("ix_case_file_assigned_opened", "assigned_to_id", "opened_at", "id"),
        Index("ix_case_file_urgent_opened", "urgent", "opened_at", "id"),
        # Filtering by appointment dates orders by the appointment.
        Index("ix_case_file_appointment", "appointment_at", "id"),
        Index("ix_case_file_helpdesk_appointment", "helpdesk_id", "appointment_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(12), default=CaseState.NEW.value)
    urgent: Mapped[bool] = mapped_column(default=False)
    # From the questionnaire; null when staff opened the case without one.
    eligible: Mapped[bool | None] = mapped_column()
    # A coordinator's decision over the questionnaire's (SPEC J2); null: none taken.
    eligibility_override: Mapped[bool | None] = mapped_column()
    override_reason: Mapped[str | None] = mapped_column(String(500))
    override_by: Mapped[str | None] = mapped_column(String(80))
    override_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assigned_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    previous_case_id: Mapped[int | None] = mapped_column(
        ForeignKey("case_file.id", ondelete="SET NULL")
    )
    # The current (or last) appointment, kept by the booking hook.
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id", ondelete="SET NULL"))
    helpdesk_id: Mapped[int | None] = mapped_column(ForeignKey("helpdesk.id", ondelete="SET NULL"))
    appointment_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    no_shows: Mapped[int] = mapped_column(default=0)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    close_reason: Mapped[str | None] = mapped_column(String(500))
    # When its personal data was wiped (`shared.privacy.erasure.anonymise_case`): by an
    # erasure, or by retention once the case has been closed for the retention period.
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_eligible(self) -> bool | None:
        """The staff override when there is one, else the questionnaire's outcome."""
        return self.eligibility_override if self.eligibility_override is not None else self.eligible


class Interview(Base):
    """The colloquio of a case: the form (`answers`, see `shared.cases.interview`) and outcome.

    The form is one JSON document validated by `InterviewForm`: it is read and written
    whole, grows with the program, and nothing filters on its fields; what is filtered
    on or decides the path (outcome, who, when) has its own columns.
    """

    __tablename__ = "interview"
    __table_args__ = (
        CheckConstraint(
            "outcome IS NULL OR outcome IN ('admitted', 'not_admitted', 'referred')",
            name="outcome",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), unique=True
    )
    # Encrypted at rest, whole: its notes, wellbeing, income and debts (shared.crypto).
    answers: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)
    outcome: Mapped[str | None] = mapped_column(String(12))
    # Why not admitted; to whom referred.
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    referred_to: Mapped[str | None] = mapped_column(String(200))
    interviewer_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the outcome was recorded; the form is final from then on.
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CaseNamePrefix(Base):
    """The terms the name of a case's citizen is found by (`shared.cases.search.name_terms`):
    prefixes of its words ("ross") and of word pairs ("maria ross").

    The case search is an index lookup (`prefix = 'maria ross'`) instead of
    `LIKE '%ross%'`, which reads every row. The case's opening time is copied here so that
    the index also gives the list's order: a page of a common name's cases is one short
    index walk, with 100k cases as with 1k, on both databases.
    """

    __tablename__ = "case_name_prefix"
    __table_args__ = (Index("ix_case_name_prefix_order", "prefix", "opened_at", "case_id"),)

    case_id: Mapped[int] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), primary_key=True
    )
    prefix: Mapped[str] = mapped_column(String(20), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())


# The case page reads a citizen's bookings and messages; neither table had an index by
# citizen (their own queries go by slot, state and subject).
Index("ix_booking_citizen", Booking.citizen_id)
Index("ix_outbox_message_citizen", OutboxMessage.citizen_id)
