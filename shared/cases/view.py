"""One case as staff see it: the case page and the interview page.

Every read of a case by staff is recorded (SPEC J8). The page is read in a handful of
statements built once per shape: the case row, then its related rows in one UNION ALL.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from shared.audit import phrases
from shared.audit.models import AuditEvent
from shared.booking.models import Booking, Helpdesk
from shared.cases import access
from shared.cases import interview as interview_form
from shared.cases.errors import CaseNotFound, CaseNotVisible
from shared.cases.models import CLOSABLE_STATES, DRAFT_STATES, Case, CaseState, Interview
from shared.citizens.models import Citizen
from shared.db import UTCDateTime
from shared.intake import questionnaire
from shared.intake.models import Intake
from shared.outbox.models import OutboxMessage
from shared.staff.models import Role, StaffUser

# How much history a case page shows (the newest first).
TIMELINE_EVENTS = 100
TIMELINE_MESSAGES = 50
BOOKING_HISTORY = 50
DUPLICATES_SHOWN = 20
ASSIGNABLE_SHOWN = 500
# Actions that don't belong in a case's story: reads and searches are only for the audit log.
# Reads are in the audit log, not in the timeline of what happened.
_QUIET_ACTIONS = ("case.read", "case.search", "plan.read", "plan.scan_read")


@dataclass(frozen=True, slots=True)
class BookingLine:
    id: int
    code: str
    state: str
    starts_at: datetime
    closed_at: datetime | None
    helpdesk: str | None
    cancel_reason: str | None
    moved_from_id: int | None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """An audit event (`kind="event"`) or a message to the citizen (`kind="message"`)."""

    kind: str
    at: datetime
    # The audit action or the message kind.
    what: str
    # Who did it (events) or the message's state (messages).
    who: str
    details: dict[str, Any]
    # What an event says to people (`shared.audit.phrases`); None for messages.
    sentence: phrases.Sentence | None = None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Another citizen with the same phone or fiscal code: perhaps the same person.

    When their latest case is one the viewer may not see (another case worker's), neither
    the case nor the name is given: only that there is one, for a coordinator to check.
    """

    citizen_id: int
    name: str | None
    same_phone: bool
    same_fiscal_code: bool
    case_id: int | None
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class CaseLink:
    """Another case of the same citizen; `visible`: the viewer may open it."""

    id: int
    state: str
    opened_at: datetime
    closed_at: datetime | None
    visible: bool


@dataclass(frozen=True, slots=True)
class StaffChoice:
    id: int
    display_name: str
    role: str


@dataclass(frozen=True, slots=True)
class CaseDetail:
    case: Case
    citizen: Citizen
    interview: Interview | None
    assigned_to: str | None
    intake_state: str | None
    intake_answers: dict[str, Any]
    bookings: list[BookingLine] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    other_cases: list[CaseLink] = field(default_factory=list)
    # Whom a coordinator may assign the case to (empty for case workers).
    assignable: list[StaffChoice] = field(default_factory=list)
    # Who is looking: what they may do on the page follows from it.
    staff: access.StaffMember | None = None

    @property
    def is_open(self) -> bool:
        return self.case.state != CaseState.CLOSED.value

    @property
    def may_assign(self) -> bool:
        """A coordinator assigns an open case to anyone."""
        return self.staff is not None and self.staff.sees_all and self.is_open

    @property
    def may_take(self) -> bool:
        """A case worker takes an unassigned open case for themself."""
        return (
            self.staff is not None
            and self.staff.role is Role.OPERATORE
            and self.case.assigned_to_id is None
            and self.is_open
        )

    @property
    def may_give_back(self) -> bool:
        return (
            self.staff is not None
            and self.case.assigned_to_id == self.staff.user_id
            and self.is_open
            and not self.staff.sees_all
        )

    @property
    def may_decide_eligibility(self) -> bool:
        return self.staff is not None and self.staff.sees_all and self.is_open

    @property
    def may_close(self) -> bool:
        return self.case.state in CLOSABLE_STATES

    def prescreening(self, language: str) -> list[tuple[str, str]]:
        """(question title, answer) of the pre-screening, labelled by the questionnaire."""
        return questionnaire.summary(self.intake_answers, language)


def _typed_null(type_: type[TypeEngine[Any]]) -> ColumnElement[Any]:
    return cast(null(), type_())


def _part(
    kind: str,
    id_: Any,
    *,
    at: Any = None,
    at2: Any = None,
    texts: Sequence[Any] = (),
    number: Any = None,
    details: Any = None,
) -> list[Any]:
    """The columns of one part of the related-rows UNION ALL, typed NULLs where it has none.

    Columns: kind, id, at, at2, text1..text4, number, details.
    """
    padded = [*texts, *(None for _ in range(4 - len(texts)))]
    columns: list[tuple[str, Any, type[TypeEngine[Any]]]] = [
        ("at", at, UTCDateTime),
        ("at2", at2, UTCDateTime),
        *((f"text{n}", text, String) for n, text in enumerate(padded, start=1)),
        ("number", number, Integer),
        ("details", details, JSON),
    ]
    return [
        literal_column(f"'{kind}'", String).label("kind"),
        id_.label("id"),
        *(
            (_typed_null(type_) if value is None else value).label(name)
            for name, value, type_ in columns
        ),
    ]


@functools.cache
def _case_row_statement() -> Any:
    """The case with its citizen, interview, assignee and questionnaire (built once)."""
    assigned = aliased(StaffUser)
    return (
        select(Case, Citizen, Interview, assigned.display_name, Intake.state, Intake.answers)
        .join(Citizen, Citizen.id == Case.citizen_id)
        .outerjoin(Interview, Interview.case_id == Case.id)
        .outerjoin(assigned, assigned.id == Case.assigned_to_id)
        .outerjoin(Intake, Intake.citizen_id == Case.citizen_id)
        .where(Case.id == bindparam("case_id"))
    )


async def _case_row(
    session: AsyncSession, case_id: int, staff: access.StaffMember
) -> tuple[Case, Citizen, Interview | None, str | None, str | None, dict[str, Any]]:
    """The case with its citizen, interview, assignee and questionnaire: one statement."""
    row = (await session.execute(_case_row_statement(), {"case_id": case_id})).first()
    if row is None:
        raise CaseNotFound(f"No case {case_id}.")
    case, citizen, interview, assigned_to, intake_state, answers = row
    if not access.can_see(staff, case.assigned_to_id):
        raise CaseNotVisible(f"Case {case_id} is not visible to {staff.actor}.")
    return case, citizen, interview, assigned_to, intake_state, dict(answers or {})


def _events_of(object_type: str, object_id: Any) -> Any:
    """The newest timeline events of one object (or objects): an index walk on
    `ix_audit_event_object` each, merged by the caller."""
    condition = (
        AuditEvent.object_id.in_(object_id)
        if isinstance(object_id, Select)
        else AuditEvent.object_id == object_id
    )
    return (
        select(
            *_part(
                "event",
                AuditEvent.id,
                at=AuditEvent.at,
                texts=(AuditEvent.action, AuditEvent.actor, AuditEvent.object_id),
                details=AuditEvent.details,
            )
        )
        .where(
            AuditEvent.object_type == object_type,
            condition,
            # Comparisons rather than NOT IN, whose list is expanded on every execution.
            *(AuditEvent.action != action for action in _QUIET_ACTIONS),
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(TIMELINE_EVENTS)
    )


@functools.cache
def _related_statement(with_staff: bool) -> Any:
    """Bookings, timeline, messages, other cases, duplicates and (for coordinators) staff:
    one UNION ALL, built once per shape. Parameters: `case_id`, `citizen_id`, `phone`,
    `fiscal_code`, and `case_key`, `citizen_key`: the two ids as the audit log keeps them
    (text).

    Each part keeps its own order and limit (the newest first); see `_part` for the columns.
    The timeline is three parts (the case's, the citizen's and their bookings' events), so
    that each is an index walk: one OR over the three gave PostgreSQL a plan that walked the
    whole audit log by date.
    """
    citizen_id = bindparam("citizen_id", type_=Integer)
    booking_ids = select(cast(Booking.id, String)).where(Booking.citizen_id == citizen_id)
    other = aliased(Case)
    latest_case = select(func.max(other.id)).where(other.citizen_id == Citizen.id)
    latest_assignee = (
        select(cast(other.assigned_to_id, String))
        .where(other.citizen_id == Citizen.id)
        .order_by(other.id.desc())
        .limit(1)
    )
    parts = [
        select(
            *_part(
                "booking",
                Booking.id,
                at=Booking.starts_at,
                at2=Booking.closed_at,
                texts=(Booking.code, Booking.state, Helpdesk.name, Booking.cancel_reason),
                number=Booking.moved_from_id,
            )
        )
        .outerjoin(Helpdesk, Helpdesk.id == Booking.helpdesk_id)
        .where(Booking.citizen_id == citizen_id)
        .order_by(Booking.starts_at.desc())
        .limit(BOOKING_HISTORY),
        _events_of("case", bindparam("case_key", type_=String)),
        _events_of("citizen", bindparam("citizen_key", type_=String)),
        _events_of("booking", booking_ids),
        select(
            *_part(
                "message",
                OutboxMessage.id,
                at=OutboxMessage.due_at,
                at2=OutboxMessage.sent_at,
                texts=(OutboxMessage.kind, OutboxMessage.state),
            )
        )
        .where(OutboxMessage.citizen_id == citizen_id)
        .order_by(OutboxMessage.due_at.desc())
        .limit(TIMELINE_MESSAGES),
        select(
            *_part(
                "case",
                Case.id,
                at=Case.opened_at,
                at2=Case.closed_at,
                texts=(Case.state, cast(Case.assigned_to_id, String)),
            )
        )
        .where(Case.citizen_id == citizen_id, Case.id != bindparam("case_id", type_=Integer))
        .order_by(Case.opened_at.desc())
        .limit(BOOKING_HISTORY),
        # A NULL phone or fiscal code compares as unknown: it matches nobody.
        select(
            *_part(
                "duplicate",
                Citizen.id,
                at=Citizen.created_at,
                texts=(
                    Citizen.name,
                    Citizen.phone,
                    Citizen.fiscal_code,
                    latest_assignee.scalar_subquery(),
                ),
                number=latest_case.scalar_subquery(),
            )
        )
        .where(
            Citizen.id != citizen_id,
            or_(
                Citizen.phone == bindparam("phone", type_=String),
                Citizen.fiscal_code == bindparam("fiscal_code", type_=String),
            ),
        )
        .order_by(Citizen.id)
        .limit(DUPLICATES_SHOWN),
    ]
    if with_staff:
        parts.append(
            select(
                *_part(
                    "staff",
                    StaffUser.id,
                    texts=(StaffUser.display_name, StaffUser.role, StaffUser.username),
                )
            )
            .where(StaffUser.active.is_(True), StaffUser.role.in_(access.ASSIGNABLE_ROLES))
            .order_by(StaffUser.display_name)
            .limit(ASSIGNABLE_SHOWN)
        )
    # SQLite accepts ORDER BY and LIMIT in a compound's parts only inside subqueries.
    return union_all(*(select(*part.subquery().c) for part in parts))


def _sees(staff: access.StaffMember, assigned_to: str | None) -> bool:
    """`access.can_see` for an assignee id as the related rows carry it (text)."""
    return access.can_see(staff, None if assigned_to is None else int(assigned_to))


async def get_case_detail(
    *, session: AsyncSession, case_id: int, staff: access.StaffMember, now: datetime
) -> CaseDetail:
    """Everything a case page shows, in two statements; the read is audited (SPEC J8)."""
    case, citizen, interview, assigned_to, intake_state, answers = await _case_row(
        session, case_id, staff
    )
    detail = CaseDetail(case, citizen, interview, assigned_to, intake_state, answers, staff=staff)
    parameters = {
        "case_id": case.id,
        "case_key": str(case.id),
        "citizen_id": citizen.id,
        "citizen_key": str(citizen.id),
        "phone": citizen.phone,
        "fiscal_code": citizen.fiscal_code,
    }
    related = await session.execute(_related_statement(staff.sees_all), parameters)
    events: list[tuple[datetime, int, str | None, TimelineEntry]] = []
    for row in related.all():
        kind, id_, at, at2, text1, text2, text3, text4, number, details = tuple(row)
        if kind == "booking":
            detail.bookings.append(BookingLine(id_, text1, text2, at, at2, text3, text4, number))
        elif kind == "event":
            entry = TimelineEntry("event", at, text1, text2, dict(details or {}))
            events.append((at, id_, text3, entry))
        elif kind == "message":
            detail.timeline.append(
                TimelineEntry("message", at2 or at, text1, text2, {"due_at": at, "sent_at": at2})
            )
        elif kind == "case":
            detail.other_cases.append(CaseLink(id_, text1, at, at2, _sees(staff, text2)))
        elif kind == "duplicate":
            hidden = number is not None and not _sees(staff, text4)
            detail.duplicates.append(
                Duplicate(
                    citizen_id=id_,
                    name=None if hidden else text1,
                    same_phone=bool(citizen.phone) and text2 == citizen.phone,
                    same_fiscal_code=bool(citizen.fiscal_code) and text3 == citizen.fiscal_code,
                    case_id=None if hidden else number,
                    hidden=hidden,
                )
            )
        elif kind == "staff":
            detail.assignable.append(StaffChoice(id_, text1, text2))
    # The newest events of the three timeline parts together, as one ordered, limited list.
    events.sort(key=lambda e: (e[0], e[1]), reverse=True)
    # The sentences name the appointments by their times, the assignees by their names.
    known = phrases.Known(
        starts={b.id: b.starts_at for b in detail.bookings},
        staff={
            **({case.assigned_to_id: assigned_to} if case.assigned_to_id and assigned_to else {}),
            **{s.id: s.display_name for s in detail.assignable},
        },
    )
    detail.timeline.extend(
        replace(entry, sentence=phrases.describe(entry.what, entry.details, known, object_id=key))
        for _, _, key, entry in events[:TIMELINE_EVENTS]
    )
    detail.bookings.sort(key=lambda b: (b.starts_at, b.id), reverse=True)
    detail.timeline.sort(key=lambda e: e.at, reverse=True)
    detail.other_cases.sort(key=lambda c: (c.opened_at, c.id), reverse=True)
    await access.record(session, staff.actor, "case.read", case, {"page": "detail"})
    return detail


@dataclass(frozen=True, slots=True)
class InterviewPage:
    case: Case
    citizen: Citizen
    interview: Interview | None
    form: interview_form.InterviewForm
    # True when nothing was saved yet and the form comes from the pre-screening.
    prefilled: bool

    @property
    def editable(self) -> bool:
        return self.case.state in DRAFT_STATES

    @property
    def can_record_outcome(self) -> bool:
        return self.case.state == CaseState.CHECKED_IN.value


async def get_interview(
    *, session: AsyncSession, case_id: int, staff: access.StaffMember, now: datetime
) -> InterviewPage:
    """The interview of a case (a new one prefilled from the pre-screening); the read is audited."""
    case, citizen, interview, _assigned, _state, answers = await _case_row(session, case_id, staff)
    await access.record(session, staff.actor, "case.read", case, {"page": "interview"})
    if interview is None:
        return InterviewPage(case, citizen, None, interview_form.prefill(answers), True)
    return InterviewPage(case, citizen, interview, interview_form.load(interview.answers), False)
