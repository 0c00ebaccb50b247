"""Cases and interviews: the hooks that open and move cases, the staff's reads and changes.

Every function takes the caller's session and never commits; a raised `CaseError`
means nothing was written by that call. Every change, and every read of a case by
staff (SPEC J8), is recorded with `shared.audit.service.record` under
`object_type="case"`. States and transitions are described in `shared.cases.models`.

Who may do what (SPEC section 6): a coordinatore sees and works on every case; an
operatore sees the cases assigned to them and the unassigned ones, and a case they
interview becomes theirs. Only a coordinatore overrides eligibility and assigns cases
to others; an operatore may take an unassigned case, or give back their own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from shared.audit import service as audit
from shared.audit.models import AuditEvent
from shared.booking.models import Booking, BookingState, Helpdesk
from shared.cases import interview as interview_form
from shared.cases.errors import (
    CaseNotFound,
    CaseNotVisible,
    IllegalTransition,
    InvalidCursor,
    InvalidInput,
    NotAllowed,
)
from shared.cases.models import Case, CaseNamePrefix, CaseState, Interview, Outcome
from shared.cases.search import Search, index_names, parse_search
from shared.citizens.models import Citizen
from shared.db import UTCDateTime
from shared.i18n import N_
from shared.intake import questionnaire
from shared.intake.models import Intake, IntakeState
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from shared.staff.models import Role, StaffUser

PAGE_SIZE = 25
MAX_REASON = 2000
MAX_REFERRED_TO = 200
MAX_OVERRIDE_REASON = 500
MIN_REASON = 3
# How much history a case page shows (the newest first).
TIMELINE_EVENTS = 100
TIMELINE_MESSAGES = 50
BOOKING_HISTORY = 50
DUPLICATES_SHOWN = 20
ASSIGNABLE_SHOWN = 500
# Actions that don't belong in a case's story: reads and searches are only for the audit log.
_QUIET_ACTIONS = ("case.read", "case.search")
# Draft interviews can be written until the outcome is recorded.
_DRAFT_STATES = (CaseState.NEW.value, CaseState.BOOKED.value, CaseState.CHECKED_IN.value)
_ASSIGNABLE_ROLES = (Role.OPERATORE.value, Role.COORDINATORE.value)
# Booked and checked-in cases close through their booking or their interview's outcome.
_CLOSABLE_STATES = (CaseState.NEW.value, CaseState.INTERVIEWED.value)


@dataclass(frozen=True, slots=True)
class StaffMember:
    """Who is acting on cases: plain values the dashboard takes from its signed-in viewer."""

    user_id: int
    role: Role
    actor: str

    @property
    def sees_all(self) -> bool:
        return self.role is Role.COORDINATORE


def can_see(staff: StaffMember, assigned_to_id: int | None) -> bool:
    """Coordinators see every case; case workers their own and the unassigned ones."""
    if staff.role is Role.COORDINATORE:
        return True
    return staff.role is Role.OPERATORE and assigned_to_id in (None, staff.user_id)


def _visible_to(staff: StaffMember) -> ColumnElement[bool]:
    if staff.role is Role.COORDINATORE:
        return true()
    if staff.role is Role.OPERATORE:
        return or_(Case.assigned_to_id == staff.user_id, Case.assigned_to_id.is_(None))
    return false()


# --- opening cases, and the hooks called by the intake and booking services ---------------


async def open_case_of(*, session: AsyncSession, citizen_id: int) -> Case | None:
    """The citizen's open case, if any (there is at most one)."""
    return await session.scalar(
        select(Case)
        .where(Case.citizen_id == citizen_id, Case.state != CaseState.CLOSED.value)
        .with_for_update()
    )


async def _open(
    session: AsyncSession,
    *,
    citizen: Citizen,
    eligible: bool | None,
    urgent: bool,
    actor: str,
    now: datetime,
) -> Case:
    """A new case for a citizen with none open, linked to their last closed one."""
    previous = await session.scalar(
        select(func.max(Case.id)).where(
            Case.citizen_id == citizen.id, Case.state == CaseState.CLOSED.value
        )
    )
    case = Case(
        citizen_id=citizen.id,
        state=CaseState.NEW.value,
        urgent=urgent,
        eligible=eligible,
        previous_case_id=previous,
        opened_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(case)
            await session.flush()
    except IntegrityError:
        # Opened by a concurrent transaction a moment ago: use that one.
        found = await open_case_of(session=session, citizen_id=citizen.id)
        if found is None:
            raise
        return found
    await index_names(session=session, citizen_id=citizen.id, name=citizen.name)
    await _record(
        session,
        actor,
        "case.open",
        case,
        {"citizen_id": citizen.id, "eligible": eligible, "urgent": urgent, "previous": previous},
    )
    return case


async def on_intake_confirmed(
    *,
    session: AsyncSession,
    citizen_id: int,
    eligible: bool,
    urgent: bool,
    now: datetime,
    actor: str | None = None,
) -> Case:
    """The citizen confirmed the pre-screening: open their case, or update the open one.

    Ineligible citizens get a case too: staff see it and may override the outcome (J2).
    A citizen whose earlier case is closed gets a new one linked to it.
    """
    actor = actor or f"citizen:{citizen_id}"
    citizen = await session.get(Citizen, citizen_id)
    if citizen is None:
        raise CaseNotFound(f"No citizen {citizen_id}.")
    case = await open_case_of(session=session, citizen_id=citizen_id)
    if case is None:
        return await _open(
            session, citizen=citizen, eligible=eligible, urgent=urgent, actor=actor, now=now
        )
    before = {"eligible": case.eligible, "urgent": case.urgent}
    case.eligible = eligible
    case.urgent = urgent
    case.updated_at = now
    await session.flush()
    await index_names(session=session, citizen_id=citizen_id, name=citizen.name)
    await _record(
        session,
        actor,
        "case.intake",
        case,
        {"before": before, "eligible": eligible, "urgent": urgent},
    )
    return case


async def on_booking_changed(
    *, session: AsyncSession, booking: Booking, now: datetime
) -> Case | None:
    """Make the citizen's case follow their booking (called by the booking services).

    booked: the case is booked (opened first if the citizen had none: a booking made by
    staff without a questionnaire) and shows the appointment; attended: checked in;
    cancelled: back to new if it was waiting for this appointment, which it no longer
    shows; no-show: back to new, the no-show counted and the missed appointment still
    shown. Once interviewed, bookings (follow-ups) only update the appointment shown. A
    booking that is not the case's current appointment changes nothing.
    """
    state = BookingState(booking.state)
    actor = booking.closed_by or booking.created_by
    case = await open_case_of(session=session, citizen_id=booking.citizen_id)
    if state is BookingState.BOOKED:
        if case is None:
            citizen = await session.get(Citizen, booking.citizen_id)
            assert citizen is not None  # a foreign key of the booking
            eligible = await session.scalar(
                select(Intake.eligible).where(
                    Intake.citizen_id == citizen.id, Intake.state == IntakeState.COMPLETED.value
                )
            )
            case = await _open(
                session,
                citizen=citizen,
                eligible=eligible,
                urgent=citizen.urgent,
                actor=actor,
                now=now,
            )
        before = case.state
        case.booking_id = booking.id
        case.helpdesk_id = booking.helpdesk_id
        case.appointment_at = booking.starts_at
        if case.state == CaseState.NEW.value:
            case.state = CaseState.BOOKED.value
    elif case is None or case.booking_id != booking.id:
        return case
    else:
        before = case.state
        if state is BookingState.ATTENDED:
            if case.state == CaseState.BOOKED.value:
                case.state = CaseState.CHECKED_IN.value
        elif state is BookingState.NO_SHOW:
            case.no_shows += 1
            if case.state == CaseState.BOOKED.value:
                case.state = CaseState.NEW.value
        elif booking.cancel_reason == "moved":
            # `move_booking` books the new slot next, in the same transaction.
            return case
        else:
            # A cancelled appointment is no appointment: the case waits for a new one.
            if case.state == CaseState.BOOKED.value:
                case.state = CaseState.NEW.value
            case.booking_id = case.helpdesk_id = case.appointment_at = None
    case.updated_at = now
    await session.flush()
    await _record(
        session,
        actor,
        "case.booking",
        case,
        {
            "booking_id": booking.id,
            "code": booking.code,
            "booking_state": state.value,
            "from": before,
            "to": case.state,
        },
    )
    return case


# --- the list ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseFilters:
    """What the case list is narrowed to; dates are local days, both ends included."""

    text: str = ""
    state: CaseState | None = None
    urgent: bool | None = None
    helpdesk_id: int | None = None
    appointment_from: date | None = None
    appointment_to: date | None = None
    # "me": assigned to the viewer; "none": unassigned.
    assigned: str | None = None

    @property
    def active(self) -> bool:
        return self != CaseFilters()


ASSIGNED_FILTERS = ("me", "none")


def parse_filters(raw: Mapping[str, str]) -> CaseFilters:
    """Filters from the list's query string; `InvalidInput` names the fields that are wrong."""
    errors: dict[str, str] = {}

    def pick(name: str) -> str:
        return (raw.get(name) or "").strip()

    state: CaseState | None = None
    if pick("state"):
        try:
            state = CaseState(pick("state"))
        except ValueError:
            errors["state"] = N_("Choose one of the options.")
    urgent = {"": None, "yes": True, "no": False}.get(pick("urgent"))
    if pick("urgent") not in ("", "yes", "no"):
        errors["urgent"] = N_("Choose one of the options.")
    helpdesk_id = None
    if pick("helpdesk"):
        if pick("helpdesk").isdecimal() and len(pick("helpdesk")) < 10:
            helpdesk_id = int(pick("helpdesk"))
        else:
            errors["helpdesk"] = N_("Choose one of the options.")
    days: dict[str, date | None] = {}
    for name in ("from", "to"):
        days[name] = None
        if pick(name):
            try:
                days[name] = date.fromisoformat(pick(name))
            except ValueError:
                errors[name] = N_("Write a date like 2026-03-31.")
    if days["from"] and days["to"] and days["from"] > days["to"]:
        errors["to"] = N_("The end date is before the start date.")
    if pick("assigned") not in ("", *ASSIGNED_FILTERS):
        errors["assigned"] = N_("Choose one of the options.")
    if errors:
        raise InvalidInput(errors)
    return CaseFilters(
        text=pick("q")[:100],
        state=state,
        urgent=urgent,
        helpdesk_id=helpdesk_id,
        appointment_from=days["from"],
        appointment_to=days["to"],
        assigned=pick("assigned") or None,
    )


@dataclass(frozen=True, slots=True)
class CaseRow:
    id: int
    state: str
    outcome: str | None
    urgent: bool
    eligible: bool | None
    citizen_id: int
    name: str | None
    phone: str | None
    appointment_at: datetime | None
    helpdesk: str | None
    assigned_to: str | None
    opened_at: datetime
    no_shows: int


@dataclass(frozen=True, slots=True)
class CasePage:
    rows: list[CaseRow]
    # Cursors for the links: `after=next_cursor` (the following page), `before=previous_cursor`.
    next_cursor: str | None
    previous_cursor: str | None


@dataclass(frozen=True, slots=True)
class _Order:
    """The list's order: newest opened first, or, when filtering by appointment dates, the
    soonest appointment first (then each page is an index range, whatever the date range).
    """

    tag: str
    descending: bool

    def key(self, table: Any = Case) -> Any:
        return table.appointment_at if self.tag == "a" else table.opened_at

    def value(self, row: CaseRow) -> datetime:
        value = row.appointment_at if self.tag == "a" else row.opened_at
        assert value is not None  # the appointment filter excludes cases without one
        return value


_BY_OPENING = _Order("o", descending=True)
_BY_APPOINTMENT = _Order("a", descending=False)
_CURSOR = re.compile(r"([oa])(\d{20})\.(\d{1,18})")


def encode_cursor(order: _Order, at: datetime, case_id: int) -> str:
    """A position in the list's order, for a page link: "o20261207070000000000.42"."""
    return f"{order.tag}{at.astimezone(UTC):%Y%m%d%H%M%S%f}.{case_id}"


def decode_cursor(cursor: str, order: _Order) -> tuple[datetime, int]:
    """The position a page link points at; `InvalidCursor` if it was not made for this order."""
    match = _CURSOR.fullmatch(cursor)
    if match is None or match[1] != order.tag:
        raise InvalidCursor(cursor[:40])
    try:
        at = datetime.strptime(match[2], "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidCursor(cursor[:40]) from None
    return at, int(match[3])


def _beyond(
    at_column: Any, id_column: Any, position: tuple[datetime, int], *, downwards: bool
) -> ColumnElement[bool]:
    """Rows strictly past `position` when walking the (at, id) order down (or up).

    The plain range lets any planner seek the index; the OR settles equal times.
    """
    at, case_id = position
    if downwards:
        return and_(at_column <= at, or_(at_column < at, id_column < case_id))
    return and_(at_column >= at, or_(at_column > at, id_column > case_id))


def _walk(column: Any, *, downwards: bool) -> Any:
    return column.desc() if downwards else column.asc()


def _filter_conditions(
    staff: StaffMember, filters: CaseFilters, settings: Settings
) -> list[ColumnElement[bool]]:
    """Visibility and filters, on the case's own columns (each has an index to lean on)."""
    conditions = [_visible_to(staff)]
    if filters.state is not None:
        conditions.append(Case.state == filters.state.value)
    if filters.urgent is not None:
        conditions.append(Case.urgent.is_(filters.urgent))
    if filters.helpdesk_id is not None:
        conditions.append(Case.helpdesk_id == filters.helpdesk_id)
    if filters.appointment_from is not None:
        conditions.append(Case.appointment_at >= _day_start(filters.appointment_from, settings))
    if filters.appointment_to is not None:
        end = _day_start(filters.appointment_to + timedelta(days=1), settings)
        conditions.append(Case.appointment_at < end)
    if filters.assigned == "me":
        conditions.append(Case.assigned_to_id == staff.user_id)
    elif filters.assigned == "none":
        conditions.append(Case.assigned_to_id.is_(None))
    return conditions


def _reading_queries(
    search: Search,
    conditions: list[ColumnElement[bool]],
    order: _Order,
    position: tuple[datetime, int] | None,
    downwards: bool,
    limit: int,
) -> list[Any]:
    """One small ordered query per reading of the search text, each at most `limit` rows.

    Their union holds the page whatever reading matched: a common name costs one page of
    an index walk (the name index carries the case's opening time, so it is walked in the
    list's order), a phone number or a code a handful of rows.
    """

    def ordered(query: Any, at_column: Any, id_column: Any) -> Any:
        if position is not None:
            query = query.where(_beyond(at_column, id_column, position, downwards=downwards))
        return query.order_by(
            _walk(at_column, downwards=downwards), _walk(id_column, downwards=downwards)
        ).limit(limit)

    queries = []
    lookup = search.name_terms()
    if lookup is not None:
        leading, others = lookup
        # A probe per candidate case, in the walk's order. Not EXISTS: PostgreSQL turns that
        # into a join, and may plan it as a hash join over every case.
        also = [
            select(literal(1))
            .where(CaseNamePrefix.case_id == Case.id, CaseNamePrefix.prefix == term)
            .limit(1)
            .scalar_subquery()
            .is_not(None)
            for term in others
        ]
        if order is _BY_OPENING:
            driver = aliased(CaseNamePrefix)
            queries.append(
                ordered(
                    select(driver.case_id.label("id"))
                    .join(Case, Case.id == driver.case_id)
                    .where(driver.prefix == leading, *also, *conditions),
                    driver.opened_at,
                    driver.case_id,
                )
            )
        else:
            named = select(CaseNamePrefix.case_id).where(CaseNamePrefix.prefix == leading)
            queries.append(
                ordered(
                    select(Case.id.label("id")).where(Case.id.in_(named), *also, *conditions),
                    order.key(),
                    Case.id,
                )
            )
    citizens = []
    if search.phone:
        citizens.append(select(Citizen.id).where(Citizen.phone == search.phone))
    if search.fiscal_code:
        citizens.append(select(Citizen.id).where(Citizen.fiscal_code == search.fiscal_code))
    if search.booking_code:
        citizens.append(select(Booking.citizen_id).where(Booking.code == search.booking_code))
    for found in citizens:
        queries.append(
            ordered(
                select(Case.id.label("id")).where(Case.citizen_id.in_(found), *conditions),
                order.key(),
                Case.id,
            )
        )
    return queries


def _day_start(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time.min, tzinfo=settings.tz)


async def list_cases(
    *,
    session: AsyncSession,
    settings: Settings,
    staff: StaffMember,
    filters: CaseFilters,
    after: str | None = None,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> CasePage:
    """One page of the cases the staff member may see, in one SQL statement.

    Newest opened first; with an appointment date filter, soonest appointment first.
    Keyset pagination: `after` gives the page following a cursor, `before` the page
    preceding it; a page costs the same on the first page and the thousandth, with 1k
    cases or 100k. A search text is recorded in the audit log (who looked for whom).
    """
    order = (
        _BY_APPOINTMENT
        if filters.appointment_from is not None or filters.appointment_to is not None
        else _BY_OPENING
    )
    backwards = before is not None and after is None
    cursor = before if backwards else after
    position = decode_cursor(cursor, order) if cursor is not None else None
    # Walking down the (at, id) order: forwards when newest first, backwards when soonest first.
    downwards = order.descending != backwards
    conditions = _filter_conditions(staff, filters, settings)
    if filters.text:
        readings = _reading_queries(
            parse_search(filters.text), conditions, order, position, downwards, limit + 1
        )
        if readings:
            found = union_all(*(select(*query.subquery().c) for query in readings))
            conditions = [Case.id.in_(select(found.subquery().c.id))]
        else:
            conditions = [false()]
    if position is not None:
        conditions.append(_beyond(order.key(), Case.id, position, downwards=downwards))
    assigned = aliased(StaffUser)
    query = (
        select(
            Case.id,
            Case.state,
            Interview.outcome,
            Case.urgent,
            Case.eligible,
            Case.eligibility_override,
            Case.citizen_id,
            Citizen.name,
            Citizen.phone,
            Case.appointment_at,
            Helpdesk.name.label("helpdesk"),
            assigned.display_name.label("assigned_to"),
            Case.opened_at,
            Case.no_shows,
        )
        .join(Citizen, Citizen.id == Case.citizen_id)
        .outerjoin(Interview, Interview.case_id == Case.id)
        .outerjoin(Helpdesk, Helpdesk.id == Case.helpdesk_id)
        .outerjoin(assigned, assigned.id == Case.assigned_to_id)
        .where(*conditions)
        .order_by(_walk(order.key(), downwards=downwards), _walk(Case.id, downwards=downwards))
        .limit(limit + 1)
    )
    fetched = (await session.execute(query)).all()
    more = len(fetched) > limit
    rows = [
        CaseRow(
            id=r.id,
            state=r.state,
            outcome=r.outcome,
            urgent=r.urgent,
            eligible=r.eligibility_override if r.eligibility_override is not None else r.eligible,
            citizen_id=r.citizen_id,
            name=r.name,
            phone=r.phone,
            appointment_at=r.appointment_at,
            helpdesk=r.helpdesk,
            assigned_to=r.assigned_to,
            opened_at=r.opened_at,
            no_shows=r.no_shows,
        )
        for r in fetched[:limit]
    ]
    if backwards:
        rows.reverse()

    def cursor_of(row: CaseRow) -> str:
        return encode_cursor(order, order.value(row), row.id)

    # Going back, the page before exists if more rows were found; going on, if we came
    # from one. Going on, the next page exists if more rows were found; going back, always.
    has_previous = more if backwards else position is not None
    has_next = True if backwards else more
    page = CasePage(
        rows,
        next_cursor=cursor_of(rows[-1]) if rows and has_next else None,
        previous_cursor=cursor_of(rows[0]) if rows and has_previous else None,
    )
    if filters.text:
        await audit.record(
            session=session,
            actor=staff.actor,
            action="case.search",
            object_type="case",
            details={"text": filters.text, "results": len(rows)},
        )
    return page


# --- one case ----------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Another citizen with the same phone or fiscal code: perhaps the same person."""

    citizen_id: int
    name: str | None
    same_phone: bool
    same_fiscal_code: bool
    case_id: int | None


@dataclass(frozen=True, slots=True)
class CaseLink:
    id: int
    state: str
    opened_at: datetime
    closed_at: datetime | None


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
    staff: StaffMember | None = None

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
        return self.case.state in _CLOSABLE_STATES

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
    session: AsyncSession, case_id: int, staff: StaffMember
) -> tuple[Case, Citizen, Interview | None, str | None, str | None, dict[str, Any]]:
    """The case with its citizen, interview, assignee and questionnaire: one statement."""
    row = (await session.execute(_case_row_statement(), {"case_id": case_id})).first()
    if row is None:
        raise CaseNotFound(f"No case {case_id}.")
    case, citizen, interview, assigned_to, intake_state, answers = row
    if not can_see(staff, case.assigned_to_id):
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
                texts=(AuditEvent.action, AuditEvent.actor),
                details=AuditEvent.details,
            )
        )
        .where(
            AuditEvent.object_type == object_type,
            condition,
            AuditEvent.action.not_in(_QUIET_ACTIONS),
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
        select(*_part("case", Case.id, at=Case.opened_at, at2=Case.closed_at, texts=(Case.state,)))
        .where(Case.citizen_id == citizen_id, Case.id != bindparam("case_id", type_=Integer))
        .order_by(Case.opened_at.desc())
        .limit(BOOKING_HISTORY),
        # A NULL phone or fiscal code compares as unknown: it matches nobody.
        select(
            *_part(
                "duplicate",
                Citizen.id,
                at=Citizen.created_at,
                texts=(Citizen.name, Citizen.phone, Citizen.fiscal_code),
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
            .where(StaffUser.active.is_(True), StaffUser.role.in_(_ASSIGNABLE_ROLES))
            .order_by(StaffUser.display_name)
            .limit(ASSIGNABLE_SHOWN)
        )
    # SQLite accepts ORDER BY and LIMIT in a compound's parts only inside subqueries.
    return union_all(*(select(*part.subquery().c) for part in parts))


async def get_case_detail(
    *, session: AsyncSession, case_id: int, staff: StaffMember, now: datetime
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
    events: list[tuple[datetime, int, TimelineEntry]] = []
    for row in related.all():
        kind, id_, at, at2, text1, text2, text3, text4, number, details = tuple(row)
        if kind == "booking":
            detail.bookings.append(BookingLine(id_, text1, text2, at, at2, text3, text4, number))
        elif kind == "event":
            entry = TimelineEntry("event", at, text1, text2, dict(details or {}))
            events.append((at, id_, entry))
        elif kind == "message":
            detail.timeline.append(
                TimelineEntry("message", at2 or at, text1, text2, {"due_at": at, "sent_at": at2})
            )
        elif kind == "case":
            detail.other_cases.append(CaseLink(id_, text1, at, at2))
        elif kind == "duplicate":
            detail.duplicates.append(
                Duplicate(
                    citizen_id=id_,
                    name=text1,
                    same_phone=bool(citizen.phone) and text2 == citizen.phone,
                    same_fiscal_code=bool(citizen.fiscal_code) and text3 == citizen.fiscal_code,
                    case_id=number,
                )
            )
        elif kind == "staff":
            detail.assignable.append(StaffChoice(id_, text1, text2))
    # The newest events of the three timeline parts together, as one ordered, limited list.
    events.sort(key=lambda e: (e[0], e[1]), reverse=True)
    detail.timeline.extend(entry for _, _, entry in events[:TIMELINE_EVENTS])
    detail.bookings.sort(key=lambda b: (b.starts_at, b.id), reverse=True)
    detail.timeline.sort(key=lambda e: e.at, reverse=True)
    detail.other_cases.sort(key=lambda c: (c.opened_at, c.id), reverse=True)
    await _record(session, staff.actor, "case.read", case, {"page": "detail"})
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
        return self.case.state in _DRAFT_STATES

    @property
    def can_record_outcome(self) -> bool:
        return self.case.state == CaseState.CHECKED_IN.value


async def get_interview(
    *, session: AsyncSession, case_id: int, staff: StaffMember, now: datetime
) -> InterviewPage:
    """The interview of a case (a new one prefilled from the pre-screening); the read is audited."""
    case, citizen, interview, _assigned, _state, answers = await _case_row(session, case_id, staff)
    await _record(session, staff.actor, "case.read", case, {"page": "interview"})
    if interview is None:
        return InterviewPage(case, citizen, None, interview_form.prefill(answers), True)
    return InterviewPage(case, citizen, interview, interview_form.load(interview.answers), False)


# --- changes ------------------------------------------------------------------------------


async def _record(
    session: AsyncSession, actor: str, action: str, case: Case, details: dict[str, Any]
) -> None:
    await audit.record(
        session=session,
        actor=actor,
        action=action,
        object_type="case",
        object_id=str(case.id),
        details=details,
    )


async def _case_for_change(session: AsyncSession, case_id: int, staff: StaffMember) -> Case:
    """The case, locked for this transaction, if the staff member may work on it."""
    case = await session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if case is None:
        raise CaseNotFound(f"No case {case_id}.")
    if not can_see(staff, case.assigned_to_id):
        raise CaseNotVisible(f"Case {case_id} is not visible to {staff.actor}.")
    return case


async def _take_if_unassigned(
    session: AsyncSession, case: Case, staff: StaffMember, now: datetime
) -> None:
    """A case worker who works on an unassigned case takes it (it becomes one of theirs)."""
    if case.assigned_to_id is None and staff.role is Role.OPERATORE:
        case.assigned_to_id = staff.user_id
        case.updated_at = now
        await _record(
            session, staff.actor, "case.assign", case, {"from": None, "to": staff.user_id}
        )


async def assign_case(
    *,
    session: AsyncSession,
    case_id: int,
    assignee_id: int | None,
    staff: StaffMember,
    now: datetime,
) -> Case:
    """Give a case to a case worker (or to nobody).

    Coordinators assign any open case to any active case worker or coordinator; a case
    worker may only take an unassigned case for themself or give back their own.
    """
    case = await _case_for_change(session, case_id, staff)
    if case.state == CaseState.CLOSED.value:
        raise IllegalTransition(N_("A closed case can't be reassigned."), state=case.state)
    if staff.role is not Role.COORDINATORE:
        taking = assignee_id == staff.user_id and case.assigned_to_id is None
        giving_back = assignee_id is None and case.assigned_to_id == staff.user_id
        if not (taking or giving_back):
            raise NotAllowed("Case workers may only take unassigned cases or give back their own.")
    elif assignee_id is not None:
        assignee = await session.get(StaffUser, assignee_id)
        if assignee is None or not assignee.active or assignee.role not in _ASSIGNABLE_ROLES:
            raise InvalidInput({"assignee": N_("Choose an active case worker.")})
    if case.assigned_to_id == assignee_id:
        return case
    before = case.assigned_to_id
    case.assigned_to_id = assignee_id
    case.updated_at = now
    await session.flush()
    await _record(session, staff.actor, "case.assign", case, {"from": before, "to": assignee_id})
    return case


async def _interview_of(session: AsyncSession, case: Case, now: datetime) -> Interview:
    """The case's interview, created from the pre-screening answers the first time."""
    interview = await session.scalar(select(Interview).where(Interview.case_id == case.id))
    if interview is None:
        answers = await session.scalar(
            select(Intake.answers).where(Intake.citizen_id == case.citizen_id)
        )
        interview = Interview(
            case_id=case.id,
            answers=interview_form.prefill(answers or {}).model_dump(mode="json"),
            started_at=now,
            updated_at=now,
        )
        session.add(interview)
    return interview


async def save_interview(
    *,
    session: AsyncSession,
    case_id: int,
    fields: Mapping[str, Sequence[str]],
    staff: StaffMember,
    now: datetime,
) -> Interview:
    """Save the interview form as a draft (any part of it; it can be completed later).

    `fields` are the submitted form fields ("section.field" → values); malformed values
    raise `InvalidInput` and nothing is saved.
    """
    form = interview_form.parse_form(fields)
    case = await _case_for_change(session, case_id, staff)
    _require_draft(case)
    interview = await _interview_of(session, case, now)
    interview.answers = form.model_dump(mode="json")
    interview.interviewer_id = staff.user_id
    interview.updated_at = now
    case.updated_at = now
    await _take_if_unassigned(session, case, staff, now)
    await session.flush()
    await _record(session, staff.actor, "case.interview", case, {"interview_id": interview.id})
    return interview


def _require_draft(case: Case) -> None:
    if case.state not in _DRAFT_STATES:
        raise IllegalTransition(
            N_("The outcome is recorded: the interview can no longer be changed."),
            state=case.state,
        )


def _check_outcome(outcome: str, reason: str, referred_to: str) -> Outcome:
    errors: dict[str, str] = {}
    params: dict[str, dict[str, object]] = {}
    try:
        chosen = Outcome(outcome)
    except ValueError:
        raise InvalidInput({"outcome": N_("Choose an outcome.")}) from None
    if chosen is Outcome.NOT_ADMITTED and len(reason) < MIN_REASON:
        errors["reason"] = N_("Write why the candidate is not admitted.")
    if chosen is Outcome.REFERRED and len(referred_to) < MIN_REASON:
        errors["referred_to"] = N_("Write which service the candidate is referred to.")
    if len(reason) > MAX_REASON:
        errors["reason"] = N_("This text is too long: at most {max_length} characters.")
        params["reason"] = {"max_length": MAX_REASON}
    if len(referred_to) > MAX_REFERRED_TO:
        errors["referred_to"] = N_("This text is too long: at most {max_length} characters.")
        params["referred_to"] = {"max_length": MAX_REFERRED_TO}
    if errors:
        raise InvalidInput(errors, params)
    return chosen


async def record_outcome(
    *,
    session: AsyncSession,
    case_id: int,
    outcome: str,
    reason: str = "",
    referred_to: str = "",
    fields: Mapping[str, Sequence[str]] | None = None,
    staff: StaffMember,
    now: datetime,
) -> Case:
    """Record the interview's outcome: admitted (the plan comes next), not admitted (with
    the reason) or referred (to whom); the last two close the case.

    Only for a checked-in candidate. `fields`, when given, are the interview form submitted
    with the outcome and are saved with it; errors of both are raised together.
    """
    reason, referred_to = reason.strip(), referred_to.strip()
    errors: dict[str, str] = {}
    params: dict[str, dict[str, object]] = {}
    form = None
    try:
        form = interview_form.parse_form(fields) if fields is not None else None
    except InvalidInput as exc:
        errors |= exc.errors
        params |= exc.params
    try:
        chosen = _check_outcome(outcome, reason, referred_to)
    except InvalidInput as exc:
        errors |= exc.errors
        params |= exc.params
    if errors:
        raise InvalidInput(errors, params)
    case = await _case_for_change(session, case_id, staff)
    if case.state != CaseState.CHECKED_IN.value:
        raise IllegalTransition(
            N_("The outcome can be recorded once the candidate is checked in, and only once."),
            state=case.state,
        )
    interview = await _interview_of(session, case, now)
    if form is not None:
        interview.answers = form.model_dump(mode="json")
    interview.outcome = chosen.value
    interview.outcome_reason = reason or None
    interview.referred_to = referred_to if chosen is Outcome.REFERRED else None
    interview.interviewer_id = staff.user_id
    interview.updated_at = interview.completed_at = now
    await _take_if_unassigned(session, case, staff, now)
    if chosen is Outcome.ADMITTED:
        case.state = CaseState.INTERVIEWED.value
    else:
        case.state = CaseState.CLOSED.value
        case.closed_at = now
        case.close_reason = chosen.value
    case.updated_at = now
    await session.flush()
    await _record(
        session,
        staff.actor,
        "case.outcome",
        case,
        {
            "outcome": chosen.value,
            "reason": interview.outcome_reason,
            "referred_to": interview.referred_to,
        },
    )
    return case


async def override_eligibility(
    *,
    session: AsyncSession,
    case_id: int,
    eligible: bool | None,
    reason: str,
    staff: StaffMember,
    now: datetime,
) -> Case:
    """A coordinator decides eligibility over the questionnaire's outcome (None: no override).

    The reason is required when deciding; the questionnaire's own outcome stays visible.
    """
    if staff.role is not Role.COORDINATORE:
        raise NotAllowed("Only coordinators decide eligibility.")
    reason = reason.strip()
    if eligible is not None and len(reason) < MIN_REASON:
        raise InvalidInput({"reason": N_("Write the reason for this decision.")})
    if len(reason) > MAX_OVERRIDE_REASON:
        raise InvalidInput(
            {"reason": N_("This text is too long: at most {max_length} characters.")},
            {"reason": {"max_length": MAX_OVERRIDE_REASON}},
        )
    case = await _case_for_change(session, case_id, staff)
    if case.state == CaseState.CLOSED.value:
        raise IllegalTransition(N_("The case is closed."), state=case.state)
    before = case.eligibility_override
    deciding = eligible is not None
    case.eligibility_override = eligible
    case.override_reason = reason if deciding else None
    case.override_by = staff.actor if deciding else None
    case.override_at = now if deciding else None
    case.updated_at = now
    await session.flush()
    await _record(
        session,
        staff.actor,
        "case.eligibility",
        case,
        {
            "from": before,
            "to": eligible,
            "reason": case.override_reason,
            "questionnaire": case.eligible,
        },
    )
    return case


async def close_case(
    *, session: AsyncSession, case_id: int, reason: str, staff: StaffMember, now: datetime
) -> Case:
    """Close a case whose path ended without an interview outcome (new) or after it
    (interviewed: the plan is over). Booked and checked-in cases can't be closed: cancel
    the booking, or record the outcome, first.
    """
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise InvalidInput({"close_reason": N_("Write why the case is closed.")})
    if len(reason) > MAX_OVERRIDE_REASON:
        raise InvalidInput(
            {"close_reason": N_("This text is too long: at most {max_length} characters.")},
            {"close_reason": {"max_length": MAX_OVERRIDE_REASON}},
        )
    case = await _case_for_change(session, case_id, staff)
    if case.state == CaseState.BOOKED.value:
        raise IllegalTransition(N_("Cancel the booking before closing the case."), state=case.state)
    if case.state == CaseState.CHECKED_IN.value:
        raise IllegalTransition(
            N_("Record the interview's outcome before closing the case."), state=case.state
        )
    if case.state == CaseState.CLOSED.value:
        raise IllegalTransition(N_("The case is closed."), state=case.state)
    before = case.state
    case.state = CaseState.CLOSED.value
    case.closed_at = case.updated_at = now
    case.close_reason = reason
    await session.flush()
    await _record(session, staff.actor, "case.close", case, {"from": before, "reason": reason})
    return case
