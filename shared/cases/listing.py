"""The case list: filters, search (see `shared.cases.search`) and keyset pagination.

The list is read in one statement per page; searches are recorded in the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, false, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from shared.audit import service as audit
from shared.booking.models import Booking, Helpdesk
from shared.cases import access
from shared.cases.errors import InvalidCursor, InvalidInput
from shared.cases.models import Case, CaseNamePrefix, CaseState, Interview
from shared.cases.search import MAX_QUERY, Search, parse_search
from shared.citizens.models import Citizen
from shared.figures import deadlines
from shared.i18n import N_
from shared.limits import DAY_OUT_OF_RANGE, DAY_RANGE, is_plausible_day
from shared.settings import Settings
from shared.staff.models import StaffUser

PAGE_SIZE = 25


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
    # A deadline of the figures page (`shared.figures.deadlines`: "interview" or "plan")
    # falling from `due_from` to `due_to` (either open).
    due: str | None = None
    due_from: date | None = None
    due_to: date | None = None

    @property
    def active(self) -> bool:
        return self != CaseFilters()


ASSIGNED_FILTERS = ("me", "none")
DUE_FILTERS = (deadlines.Deadline.INTERVIEW.value, deadlines.Deadline.PLAN.value)


def parse_filters(raw: Mapping[str, str]) -> CaseFilters:
    """Filters from the list's query string; `InvalidInput` names the fields that are wrong."""
    errors: dict[str, str] = {}
    params: dict[str, Mapping[str, object]] = {}

    def pick(name: str) -> str:
        return (raw.get(name) or "").strip()

    if len(pick("q")) > MAX_QUERY:
        errors["q"] = N_("This text is too long: at most {max_length} characters.")
        params["q"] = {"max_length": MAX_QUERY}
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
    for name in ("from", "to", "due_from", "due_to"):
        days[name] = None
        if pick(name):
            try:
                found = date.fromisoformat(pick(name))
            except ValueError:
                errors[name] = N_("Write a date like 2026-03-31.")
                continue
            if is_plausible_day(found):
                days[name] = found
            else:
                errors[name] = DAY_OUT_OF_RANGE
                params[name] = DAY_RANGE
    if days["from"] and days["to"] and days["from"] > days["to"]:
        errors["to"] = N_("The end date is before the start date.")
    if pick("assigned") not in ("", *ASSIGNED_FILTERS):
        errors["assigned"] = N_("Choose one of the options.")
    if pick("due") not in ("", *DUE_FILTERS):
        errors["due"] = N_("Choose one of the options.")
    if errors:
        raise InvalidInput(errors, params)
    return CaseFilters(
        text=pick("q"),
        state=state,
        urgent=urgent,
        helpdesk_id=helpdesk_id,
        appointment_from=days["from"],
        appointment_to=days["to"],
        assigned=pick("assigned") or None,
        due=pick("due") or None,
        due_from=days["due_from"],
        due_to=days["due_to"],
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
    at_column: Any, id_column: Any, position: tuple[Any, Any], *, downwards: bool
) -> ColumnElement[bool]:
    """Rows strictly past `position` (a time and an id, or parameters bound to them) when
    walking the (at, id) order down (or up).

    The plain range lets any planner seek the index; the OR settles equal times.
    """
    at, case_id = position
    if downwards:
        return and_(at_column <= at, or_(at_column < at, id_column < case_id))
    return and_(at_column >= at, or_(at_column > at, id_column > case_id))


def _walk(column: Any, *, downwards: bool) -> Any:
    return column.desc() if downwards else column.asc()


def _filter_conditions(
    staff: access.StaffMember, filters: CaseFilters, settings: Settings
) -> list[ColumnElement[bool]]:
    """Visibility and filters, on the case's own columns (each has an index to lean on)."""
    conditions = [access.visible_to(staff)]
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
    if filters.due == deadlines.Deadline.INTERVIEW.value:
        conditions.append(deadlines.interview_due(settings, filters.due_from, filters.due_to))
    elif filters.due == deadlines.Deadline.PLAN.value:
        conditions.append(deadlines.plan_due(settings, filters.due_from, filters.due_to))
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
    staff: access.StaffMember,
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
            # Not the text: it is a name, a phone number or a booking code.
            details={"by_text": True, "results": len(rows)},
        )
    return page
