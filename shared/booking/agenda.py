"""The staff's agenda: bookings with the citizens who hold them, read in one statement."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shared.booking.errors import BookingNotFound
from shared.booking.models import Booking, BookingState, Helpdesk
from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.db import UTCDateTime


@dataclass(frozen=True, slots=True)
class AgendaEntry:
    """A booking with the citizen who holds it, as staff see it in agendas."""

    booking: Booking
    citizen: Citizen


def entries_of(rows: Any) -> list[AgendaEntry]:
    """Entries from (Booking, Citizen) result rows."""
    return [AgendaEntry(booking, citizen) for booking, citizen in rows]


@dataclass(frozen=True, slots=True)
class AgendaLine:
    """One row of an agenda: the booking and what staff need to know of its citizen."""

    id: int
    code: str
    helpdesk_id: int
    starts_at: datetime
    ends_at: datetime
    state: str
    cancel_reason: str | None
    citizen_name: str | None
    urgent: bool
    channel: str
    # At a moderated helpdesk, where the request stands (`Moderation`); None elsewhere.
    moderation: str | None = None
    # The citizen's latest case and whom it is assigned to (who may open it), if any.
    case_id: int | None = None
    case_assigned_to_id: int | None = None


_latest = aliased(Case)
_AGENDA_COLUMNS = (
    Booking.id, Booking.code, Booking.helpdesk_id, Booking.starts_at, Booking.ends_at,
    Booking.state, Booking.cancel_reason, Citizen.name, Citizen.urgent, Citizen.channel,
    Booking.moderation, Case.id, Case.assigned_to_id,
)  # fmt: skip


def _agenda_lines(*conditions: Any) -> Any:
    # The citizen's latest case (a citizen who came back has a new one): the one to open.
    latest_case = (
        select(func.max(_latest.id)).where(_latest.citizen_id == Booking.citizen_id)
    ).scalar_subquery()
    return (
        select(*_AGENDA_COLUMNS)
        .join(Citizen, Citizen.id == Booking.citizen_id)
        .outerjoin(Case, Case.id == latest_case)
        .where(*conditions)
        .order_by(Booking.starts_at, Booking.id)
    )


@functools.cache
def _agenda_statement(one_helpdesk: bool) -> Any:
    """Built once per shape. Without a helpdesk, the helpdesks' ids are still named: the
    index on (helpdesk_id, starts_at) is then walked per helpdesk, not read whole."""
    return _agenda_lines(
        Booking.starts_at >= bindparam("since", type_=UTCDateTime),
        Booking.starts_at < bindparam("until", type_=UTCDateTime),
        Booking.helpdesk_id == bindparam("helpdesk_id")
        if one_helpdesk
        else Booking.helpdesk_id.in_(select(Helpdesk.id)),
    )


async def lines_between(
    *, session: AsyncSession, since: datetime, until: datetime, helpdesk_id: int | None = None
) -> list[AgendaLine]:
    """Bookings (any state) starting in [since, until) with their citizens, in one statement."""
    parameters: dict[str, Any] = {"since": since, "until": until}
    if helpdesk_id is not None:
        parameters["helpdesk_id"] = helpdesk_id
    rows = await session.execute(_agenda_statement(helpdesk_id is not None), parameters)
    return [AgendaLine(*row) for row in rows]


@functools.cache
def _to_record_statement(one_helpdesk: bool) -> Any:
    """How many bookings of [since, until) are still to come or to record (built once)."""
    return select(func.count()).where(
        Booking.starts_at >= bindparam("since", type_=UTCDateTime),
        Booking.starts_at < bindparam("until", type_=UTCDateTime),
        Booking.state == BookingState.BOOKED.value,
        Booking.helpdesk_id == bindparam("helpdesk_id")
        if one_helpdesk
        else Booking.helpdesk_id.in_(select(Helpdesk.id)),
    )


async def count_to_record(
    *, session: AsyncSession, since: datetime, until: datetime, helpdesk_id: int | None = None
) -> int:
    """The agenda's "still to do": bookings starting in [since, until) still booked."""
    parameters: dict[str, Any] = {"since": since, "until": until}
    if helpdesk_id is not None:
        parameters["helpdesk_id"] = helpdesk_id
    found = await session.scalar(_to_record_statement(helpdesk_id is not None), parameters)
    return int(found or 0)


async def line(*, session: AsyncSession, booking_id: int) -> AgendaLine:
    """One agenda row, in one statement."""
    row = (await session.execute(_agenda_lines(Booking.id == booking_id))).first()
    if row is None:
        raise BookingNotFound(f"No booking {booking_id}.")
    return AgendaLine(*row)


async def entry(*, session: AsyncSession, booking_id: int) -> AgendaEntry:
    """One booking with its citizen, in one statement."""
    row = (
        await session.execute(
            select(Booking, Citizen)
            .join(Citizen, Citizen.id == Booking.citizen_id)
            .where(Booking.id == booking_id)
        )
    ).first()
    if row is None:
        raise BookingNotFound(f"No booking {booking_id}.")
    return AgendaEntry(row[0], row[1])


async def with_citizens(*, session: AsyncSession, bookings: list[Booking]) -> list[AgendaEntry]:
    """The given bookings with their citizens (one statement), in the same order."""
    if not bookings:
        return []
    ids = {b.citizen_id for b in bookings}
    citizens = {c.id: c for c in await session.scalars(select(Citizen).where(Citizen.id.in_(ids)))}
    return [AgendaEntry(b, citizens[b.citizen_id]) for b in bookings]
