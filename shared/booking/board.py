"""The coordinators' bookings board: every booking across helpdesks, filtered, counted per
state, sorted, in keyset pages (SPEC J6, issue 12).

A page is two statements whatever the number of bookings: the rows (each with its citizen,
the citizen's latest case and the pre-screening essentials) and the counts per state.

- The rows are a keyset page, with the cases list's cursors (`shared.cases.listing`): an
  index walk of one page, on the first page as on the thousandth.
- The counts work as tabs: they ignore the state filter, and each state is counted up to
  `COUNT_LIMIT` (more shows as "1000+"), so counting costs the same with 1k bookings as
  with 100k. With no dates chosen the board starts from today: the upcoming bookings,
  which the booking horizon bounds whatever the size of the history.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    bindparam,
    func,
    literal,
    not_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from shared.booking.models import Booking, BookingState, Moderation
from shared.cases.errors import InvalidInput
from shared.cases.listing import _beyond, _Order, _walk, decode_cursor, encode_cursor
from shared.cases.models import Case
from shared.citizens.models import Channel, Citizen
from shared.i18n import N_
from shared.intake.models import Intake
from shared.limits import DAY_OUT_OF_RANGE, DAY_RANGE, MAX_ID, is_plausible_day
from shared.settings import Settings

PAGE_SIZE = 50
# Each state is counted up to this many bookings; beyond, the board shows "1000+".
COUNT_LIMIT = 1000
# The most rows one export holds.
EXPORT_LIMIT = 50_000

CHOOSE = N_("Choose one of the options.")
BAD_DAY = N_("Write a date like 31/12/2026.")
NO_SHOW = BookingState.NO_SHOW.value
# The state written into the statement, not bound: a partial index (`state = 'no_show'`)
# serves a query only if the query says so in its text.
_NO_SHOW_TEXT = literal(NO_SHOW, String, literal_execute=True)


class Sort(StrEnum):
    APPOINTMENT = "appointment"
    APPOINTMENT_DESC = "-appointment"
    BOOKED = "booked"
    BOOKED_DESC = "-booked"


class Eligibility(StrEnum):
    """The outcome as staff act on it: the coordinator's decision first (`Case.is_eligible`)."""

    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    # A coordinator decided over the questionnaire (either way).
    OVERRIDDEN = "overridden"


# `Booking.moderation` is null at helpdesks without moderation: the filter's "none".
NO_MODERATION = "none"

SORTS = {
    Sort.APPOINTMENT: N_("Appointment, soonest first"),
    Sort.APPOINTMENT_DESC: N_("Appointment, latest first"),
    Sort.BOOKED: N_("Booked, oldest first"),
    Sort.BOOKED_DESC: N_("Booked, newest first"),
}
ELIGIBILITY = {
    Eligibility.ELIGIBLE: N_("Eligible"),
    Eligibility.NOT_ELIGIBLE: N_("Not eligible"),
    Eligibility.OVERRIDDEN: N_("Decided by a coordinator"),
}
CHANNELS = {
    Channel.TELEGRAM.value: N_("Telegram (bot)"),
    Channel.PHONE.value: N_("Phone"),
    Channel.WALK_IN.value: N_("Walk-in"),
}
MODERATION = {
    NO_MODERATION: N_("Not moderated"),
    Moderation.PENDING.value: N_("Request to confirm"),
    Moderation.CONFIRMED.value: N_("Request confirmed"),
    Moderation.DECLINED.value: N_("Request declined"),
    Moderation.EXPIRED.value: N_("Request expired"),
    "withdrawn": N_("Request withdrawn"),
}


@dataclass(frozen=True, slots=True)
class BoardFilters:
    """What the board is narrowed to; days are the program's local days, both included."""

    state: BookingState | None = None
    day_from: date | None = None
    day_to: date | None = None
    helpdesk_id: int | None = None
    urgent: bool | None = None
    eligibility: Eligibility | None = None
    channel: Channel | None = None
    # A `Moderation` value, or `NO_MODERATION`.
    moderation: str | None = None
    repeated_no_shows: bool = False
    sort: Sort = Sort.APPOINTMENT

    def described(self) -> dict[str, Any]:
        """The filters as plain values (for the audit log: no personal data in them)."""
        return {
            "state": self.state.value if self.state else None,
            "from": self.day_from.isoformat() if self.day_from else None,
            "to": self.day_to.isoformat() if self.day_to else None,
            "helpdesk_id": self.helpdesk_id,
            "urgent": self.urgent,
            "eligibility": self.eligibility.value if self.eligibility else None,
            "channel": self.channel.value if self.channel else None,
            "moderation": self.moderation,
            "repeated_no_shows": self.repeated_no_shows,
            "sort": self.sort.value,
        }


FIELDS = (
    "state", "from", "to", "helpdesk", "urgent", "eligibility", "channel", "moderation",
    "no_shows", "sort",
)  # fmt: skip


def parse_filters(raw: Mapping[str, str | None], *, today: date) -> BoardFilters:
    """Filters from the board's query string; `InvalidInput` names each wrong field.

    `from` absent (not sent at all) is today: the board opens on the upcoming bookings;
    sent empty, it is no lower bound.
    """
    errors: dict[str, str] = {}
    params: dict[str, Mapping[str, object]] = {}

    def pick(name: str) -> str:
        return (raw.get(name) or "").strip()

    def choice(name: str, kind: Any) -> Any:
        if not pick(name):
            return None
        try:
            return kind(pick(name))
        except ValueError:
            errors[name] = CHOOSE
            return None

    state = choice("state", BookingState)
    eligibility = choice("eligibility", Eligibility)
    channel = choice("channel", Channel)
    sort = choice("sort", Sort) or Sort.APPOINTMENT
    urgent = {"": None, "yes": True, "no": False}.get(pick("urgent"))
    if pick("urgent") not in ("", "yes", "no"):
        errors["urgent"] = CHOOSE
    moderation = pick("moderation") or None
    if moderation is not None and moderation not in MODERATION:
        errors["moderation"] = CHOOSE
        moderation = None
    if pick("no_shows") not in ("", "repeated"):
        errors["no_shows"] = CHOOSE
    helpdesk_id = None
    if pick("helpdesk"):
        value = pick("helpdesk")
        if value.isdecimal() and len(value) <= len(str(MAX_ID)) and 1 <= int(value) <= MAX_ID:
            helpdesk_id = int(value)
        else:
            errors["helpdesk"] = CHOOSE
    days: dict[str, date | None] = {}
    for name in ("from", "to"):
        days[name] = None
        value = pick(name)
        if not value:
            continue
        try:
            if "/" in value:
                found = datetime.strptime(value, "%d/%m/%Y").date()  # noqa: DTZ007 - a plain date
            else:
                found = date.fromisoformat(value)
        except ValueError:
            errors[name] = BAD_DAY
            continue
        if is_plausible_day(found):
            days[name] = found
        else:
            errors[name] = DAY_OUT_OF_RANGE
            params[name] = DAY_RANGE
    if raw.get("from") is None:
        days["from"] = today
    if days["from"] and days["to"] and days["from"] > days["to"]:
        errors["to"] = N_("The end date is before the start date.")
    if errors:
        raise InvalidInput(errors, params)
    return BoardFilters(
        state=state,
        day_from=days["from"],
        day_to=days["to"],
        helpdesk_id=helpdesk_id,
        urgent=urgent,
        eligibility=eligibility,
        channel=channel,
        moderation=moderation,
        repeated_no_shows=pick("no_shows") == "repeated",
        sort=sort,
    )


def query_of(filters: BoardFilters) -> dict[str, str]:
    """The board's query string for `filters` (links: tabs, sorting, pages)."""
    return {
        "state": filters.state.value if filters.state else "",
        "from": filters.day_from.isoformat() if filters.day_from else "",
        "to": filters.day_to.isoformat() if filters.day_to else "",
        "helpdesk": str(filters.helpdesk_id) if filters.helpdesk_id else "",
        "urgent": {True: "yes", False: "no", None: ""}[filters.urgent],
        "eligibility": filters.eligibility.value if filters.eligibility else "",
        "channel": filters.channel.value if filters.channel else "",
        "moderation": filters.moderation or "",
        "no_shows": "repeated" if filters.repeated_no_shows else "",
        "sort": filters.sort.value,
    }


@dataclass(frozen=True, slots=True)
class BoardRow:
    """One booking as the board shows it, with what a coordinator needs of its citizen."""

    id: int
    code: str
    helpdesk_id: int
    starts_at: datetime
    booked_at: datetime
    state: str
    moderation: str | None
    citizen_id: int
    name: str | None
    phone: str | None
    channel: str
    urgent: bool
    # Told nothing on Telegram: no chat (phone, walk-in), or the citizen blocked the bot.
    on_telegram: bool
    unreachable: bool
    # The citizen's latest case (the one staff open), if any.
    case_id: int | None
    # `Case.is_eligible`: the coordinator's decision first; None without a questionnaire.
    eligible: bool | None
    overridden: bool
    # The pre-screening's answers to these steps, as stored (see `questionnaire.labels`).
    household: Any
    needs: Any
    no_shows: int

    @property
    def active(self) -> bool:
        return self.state == BookingState.BOOKED.value

    @property
    def reachable(self) -> bool:
        """A message in the outbox will reach the citizen."""
        return self.on_telegram and not self.unreachable


@dataclass(frozen=True, slots=True)
class Count:
    state: str
    count: int
    # More than `COUNT_LIMIT`: `count` is the limit.
    more: bool


@dataclass(frozen=True, slots=True)
class BoardPage:
    rows: list[BoardRow]
    counts: list[Count]
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def total(self) -> Count:
        return Count(
            "",
            sum(c.count for c in self.counts),
            any(c.more for c in self.counts),
        )


def _order(sort: Sort) -> _Order:
    # The cases list's cursor tags: "a" a time of appointment, "o" one of booking.
    tag = "a" if sort in (Sort.APPOINTMENT, Sort.APPOINTMENT_DESC) else "o"
    return _Order(tag, descending=sort in (Sort.APPOINTMENT_DESC, Sort.BOOKED_DESC))


def _key(sort: Sort) -> Any:
    return (
        Booking.starts_at
        if sort in (Sort.APPOINTMENT, Sort.APPOINTMENT_DESC)
        else Booking.created_at
    )


# The subqueries that don't depend on the filters are built once: an `aliased()` entity
# computes its column collection on first use, which made building a page's statements
# cost more than running them (10 ms against 3, docs/benchmarks.md).
_CASE = aliased(Case, name="latest_case")
_MISSED = aliased(Booking, name="missed")
# The citizen's latest case (the one staff open).
_LATEST_CASE = (
    select(func.max(_CASE.id))
    .where(_CASE.citizen_id == Booking.citizen_id)
    .correlate(Booking)
    .scalar_subquery()
)
# The row's citizen's no-shows.
_NO_SHOWS_OF_CITIZEN = (
    select(func.count())
    .select_from(_MISSED)
    .where(_MISSED.citizen_id == Booking.citizen_id, _MISSED.state == _NO_SHOW_TEXT)
    .correlate(Booking)
    .scalar_subquery()
)


def _day_start(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time.min, tzinfo=settings.tz)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What makes the filters' SQL differ; their values are bound. The statements are built
    once per shape (`_counts_for`, `_rows_for`): building the counts' five capped
    subqueries took longer than running them (docs/benchmarks.md, "Bookings board")."""

    day_from: bool = False
    day_to: bool = False
    helpdesk: bool = False
    # None, `NO_MODERATION`, or `_BOUND` (one moderation state, bound).
    moderation: str | None = None
    repeated: bool = False
    urgent: bool | None = None
    channel: bool = False
    eligibility: Eligibility | None = None


_BOUND = "bound"


def _shape_of(filters: BoardFilters, settings: Settings) -> tuple[_Shape, dict[str, Any]]:
    """The filters but the state as a statement's shape and the values to bind to it."""
    values: dict[str, Any] = {}
    if filters.day_from is not None:
        values["day_from"] = _day_start(filters.day_from, settings)
    if filters.day_to is not None:
        values["day_to"] = _day_start(filters.day_to + timedelta(days=1), settings)
    if filters.helpdesk_id is not None:
        values["helpdesk_id"] = filters.helpdesk_id
    moderation = filters.moderation
    if moderation is not None and moderation != NO_MODERATION:
        values["moderation"] = moderation
        moderation = _BOUND
    if filters.channel is not None:
        values["channel"] = filters.channel.value
    shape = _Shape(
        day_from=filters.day_from is not None,
        day_to=filters.day_to is not None,
        helpdesk=filters.helpdesk_id is not None,
        moderation=moderation,
        repeated=filters.repeated_no_shows,
        urgent=filters.urgent,
        channel=filters.channel is not None,
        eligibility=filters.eligibility,
    )
    return shape, values


def _conditions(shape: _Shape) -> tuple[list[ColumnElement[bool]], set[str]]:
    """The shape's conditions on the booking and (named in the set) the tables joined."""
    conditions: list[ColumnElement[bool]] = []
    joins: set[str] = set()
    if shape.day_from:
        conditions.append(Booking.starts_at >= bindparam("day_from"))
    if shape.day_to:
        conditions.append(Booking.starts_at < bindparam("day_to"))
    if shape.helpdesk:
        conditions.append(Booking.helpdesk_id == bindparam("helpdesk_id"))
    if shape.moderation == NO_MODERATION:
        conditions.append(Booking.moderation.is_(None))
    elif shape.moderation == _BOUND:
        conditions.append(Booking.moderation == bindparam("moderation"))
    # The booking's copies of what is known of its citizen, plain (not `IS true`): both
    # databases then walk the partial indexes `ix_booking_urgent_state_starts_at` and
    # `ix_booking_repeated_state_starts_at`, whose conditions are written as each of them
    # writes these (SQLite `= 1`; migrations 0025 and 0027;
    # tests/shared/booking/test_board_plans.py).
    if shape.repeated:
        conditions.append(Booking.citizen_repeated_no_shows.expression)
    if shape.urgent is not None:
        urgent = Booking.citizen_urgent.expression
        conditions.append(urgent if shape.urgent else not_(urgent))
    if shape.channel:
        joins.add("citizen")
        conditions.append(Citizen.channel == bindparam("channel"))
    if shape.eligibility is not None:
        joins.add("case")
        decided = func.coalesce(Case.eligibility_override, Case.eligible)
        if shape.eligibility is Eligibility.ELIGIBLE:
            conditions.append(decided == true())
        elif shape.eligibility is Eligibility.NOT_ELIGIBLE:
            conditions.append(decided == literal(False))
        else:
            conditions.append(Case.eligibility_override.is_not(None))
    return conditions, joins


def _joined(query: Select[Any], joins: set[str]) -> Select[Any]:
    if "citizen" in joins:
        query = query.join(Citizen, Citizen.id == Booking.citizen_id)
    if "case" in joins:
        query = query.join(Case, Case.id == _LATEST_CASE)
    return query


@functools.lru_cache(maxsize=256)
def _counts_for(shape: _Shape) -> Any:
    """Per state, the filtered bookings up to `COUNT_LIMIT` + 1, in one UNION ALL."""
    conditions, joins = _conditions(shape)
    parts = []
    for state in BookingState:
        capped = (
            _joined(select(Booking.id), joins)
            .where(Booking.state == state.value, *conditions)
            .limit(COUNT_LIMIT + 1)
            .subquery()
        )
        parts.append(
            select(literal(state.value, String).label("state"), func.count().label("n"))
            .select_from(capped)
        )  # fmt: skip
    return union_all(*parts)


_ROW_COLUMNS = (
    Booking.id, Booking.code, Booking.helpdesk_id, Booking.starts_at, Booking.created_at,
    Booking.state, Booking.moderation, Booking.citizen_id, Citizen.name, Citizen.phone,
    Citizen.channel, Citizen.urgent, Citizen.telegram_chat_id.is_not(None),
    Citizen.unreachable, Case.id, Case.eligible, Case.eligibility_override,
    Intake.answers["household"], Intake.answers["needs"],
)  # fmt: skip


@functools.lru_cache(maxsize=256)
def _rows_for(
    shape: _Shape, *, state: bool, by_ids: bool, sort: Sort, after: bool, downwards: bool
) -> Any:
    """A keyset page of rows. Bound besides the shape's values: `state`, `booking_ids`,
    `after_at` and `after_id` (the position walked from), `limit`."""
    conditions, joins = _conditions(shape)
    if state:
        conditions.append(Booking.state == bindparam("state"))
    if by_ids:
        conditions.append(Booking.id.in_(bindparam("booking_ids", expanding=True)))
    key = _key(sort)
    if after:
        position: tuple[Any, Any] = (bindparam("after_at"), bindparam("after_id"))
        conditions.append(_beyond(key, Booking.id, position, downwards=downwards))
    order = (_walk(key, downwards=downwards), _walk(Booking.id, downwards=downwards))
    if shape.repeated:
        # The repeated no-shows' bookings are few enough (~6% at 100k) that SQLite reads
        # their whole partial index and sorts rather than walk the appointments in order:
        # the page's ids first, so that only its rows are joined to their citizen, case
        # and questionnaire (all ~5,300 of them were, before the sort: 35 ms).
        page = (
            _joined(select(Booking.id), joins)
            .where(*conditions)
            .order_by(*order)
            .limit(bindparam("limit", type_=Integer))
            .correlate(None)
        )
        conditions = [Booking.id.in_(page.scalar_subquery())]
    return (
        select(*_ROW_COLUMNS, _NO_SHOWS_OF_CITIZEN)
        .join(Citizen, Citizen.id == Booking.citizen_id)
        .outerjoin(Case, Case.id == _LATEST_CASE)
        .outerjoin(Intake, Intake.citizen_id == Booking.citizen_id)
        .where(*conditions)
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer))
    )


async def _fetch_rows(
    session: AsyncSession,
    filters: BoardFilters,
    settings: Settings,
    position: tuple[datetime, int] | None,
    downwards: bool,
    limit: int,
    booking_ids: tuple[int, ...] | None = None,
) -> list[Any]:
    shape, values = _shape_of(filters, settings)
    statement = _rows_for(
        shape, state=filters.state is not None, by_ids=booking_ids is not None,
        sort=filters.sort, after=position is not None, downwards=downwards,
    )  # fmt: skip
    if filters.state is not None:
        values["state"] = filters.state.value
    if booking_ids is not None:
        values["booking_ids"] = list(booking_ids)
    if position is not None:
        values["after_at"], values["after_id"] = position
    return list((await session.execute(statement, {**values, "limit": limit})).all())


def _row(r: Any) -> BoardRow:
    (
        id_, code, helpdesk_id, starts_at, booked_at, state, moderation, citizen_id, name,
        phone, channel, urgent, on_telegram, unreachable, case_id, eligible, override,
        household, needs, no_shows,
    ) = r  # fmt: skip
    return BoardRow(
        id=id_, code=code, helpdesk_id=helpdesk_id, starts_at=starts_at, booked_at=booked_at,
        state=state, moderation=moderation, citizen_id=citizen_id, name=name, phone=phone,
        channel=channel, urgent=bool(urgent), on_telegram=bool(on_telegram),
        unreachable=bool(unreachable), case_id=case_id,
        eligible=override if override is not None else eligible,
        overridden=override is not None, household=household, needs=needs,
        no_shows=no_shows or 0,
    )  # fmt: skip


async def count_by_state(
    *,
    session: AsyncSession,
    settings: Settings,
    filters: BoardFilters,
) -> list[Count]:
    """The filtered bookings per state (the state filter aside), in one statement."""
    shape, values = _shape_of(filters, settings)
    found = {state: n for state, n in await session.execute(_counts_for(shape), values)}
    return [
        Count(s.value, min(found.get(s.value, 0), COUNT_LIMIT), found.get(s.value, 0) > COUNT_LIMIT)
        for s in BookingState
    ]


async def list_bookings(
    *,
    session: AsyncSession,
    settings: Settings,
    filters: BoardFilters,
    after: str | None = None,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> BoardPage:
    """One page of the board and its counts per state, in two statements.

    Keyset pages as the cases list has them: `after` a cursor gives the next page,
    `before` one the previous page; `InvalidCursor` for a cursor not made for this sort.
    """
    order = _order(filters.sort)
    backwards = before is not None and after is None
    cursor = before if backwards else after
    position = decode_cursor(cursor, order) if cursor is not None else None
    downwards = order.descending != backwards
    fetched = await _fetch_rows(session, filters, settings, position, downwards, limit + 1)
    more = len(fetched) > limit
    rows = [_row(r) for r in fetched[:limit]]
    if backwards:
        rows.reverse()

    def cursor_of(row: BoardRow) -> str:
        at = row.starts_at if order.tag == "a" else row.booked_at
        return encode_cursor(order, at, row.id)

    # As in the cases list: going back, there is a page before if more rows were found;
    # going on, if we came from one; going back there is always a next one.
    has_previous = more if backwards else position is not None
    has_next = True if backwards else more
    counts = await count_by_state(session=session, settings=settings, filters=filters)
    return BoardPage(
        rows,
        counts,
        next_cursor=cursor_of(rows[-1]) if rows and has_next else None,
        previous_cursor=cursor_of(rows[0]) if rows and has_previous else None,
    )


async def rows_of(
    *, session: AsyncSession, settings: Settings, booking_ids: tuple[int, ...]
) -> list[BoardRow]:
    """The board's rows of these bookings (whatever the filters), soonest first; one statement."""
    if not booking_ids:
        return []
    fetched = await _fetch_rows(
        session, BoardFilters(), settings, None, False, len(booking_ids), booking_ids=booking_ids
    )
    return [_row(r) for r in fetched]


async def export_rows(
    *,
    session: AsyncSession,
    settings: Settings,
    filters: BoardFilters,
    limit: int = EXPORT_LIMIT,
    batch: int = 1000,
) -> tuple[list[BoardRow], bool]:
    """Every filtered row in the board's order, up to `limit` (the export), read in keyset
    batches; and whether there were more."""
    order = _order(filters.sort)
    found: list[BoardRow] = []
    position: tuple[datetime, int] | None = None
    while len(found) <= limit:
        fetched = await _fetch_rows(session, filters, settings, position, order.descending, batch)
        found += [_row(r) for r in fetched]
        if len(fetched) < batch:
            break
        last = found[-1]
        position = (last.starts_at if order.tag == "a" else last.booked_at, last.id)
    return found[:limit], len(found) > limit
