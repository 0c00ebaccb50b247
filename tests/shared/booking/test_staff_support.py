"""Booking queries and small services for the staff dashboard: agenda, helpdesk edits,
ending and removing hours, closures and extra openings, bookings left outside the hours."""

from __future__ import annotations

from datetime import date, time

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.booking import agenda, hours
from shared.booking import service as booking
from shared.booking.agenda import AgendaEntry
from shared.booking.errors import (
    BookingNotFound,
    HelpdeskNotFound,
    InvalidSchedule,
    ScheduleItemNotFound,
)
from shared.booking.models import Booking, Helpdesk, OpeningRule
from shared.booking.service import CancelledBy
from shared.citizens.models import Citizen
from shared.db import Database
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

# Monday 7 December 2026, 08:00 in Cernusco.
NOW = rome(2026, 12, 7, 8)


async def _book(
    session: AsyncSession, settings: Settings, citizen: Citizen, helpdesk: Helpdesk, at: object
) -> Booking:
    return await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=at, actor="test", now=NOW,  # type: ignore[arg-type]
    )  # fmt: skip


async def _actions(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


# --- agenda --------------------------------------------------------------------------


async def test_agenda_is_one_statement_with_citizens_in_any_state(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        north = await make_helpdesk(session, name="Nord", places=2)
        south = await make_helpdesk(session, name="Sud")
        late = await _book(
            session,
            settings,
            await make_citizen(session, name="Tardi"),
            north,
            rome(2026, 12, 8, 11),
        )
        early = await _book(
            session,
            settings,
            await make_citizen(session, name="Presto", urgent=True),
            north,
            rome(2026, 12, 8, 9),
        )
        gone = await _book(
            session, settings, await make_citizen(session, name="Via"), north, rome(2026, 12, 8, 9)
        )
        await booking.cancel_booking(
            session=session, settings=settings, booking_id=gone.id, by=CancelledBy.STAFF,
            actor="test", now=NOW,
        )  # fmt: skip
        await _book(
            session,
            settings,
            await make_citizen(session, name="Altrove"),
            south,
            rome(2026, 12, 8, 9),
        )
        await _book(
            session,
            settings,
            await make_citizen(session, name="Domani"),
            north,
            rome(2026, 12, 9, 9),
        )
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with database.transaction(read_only=True) as session:
            entries = await agenda.lines_between(
                session=session, since=rome(2026, 12, 8), until=rome(2026, 12, 9),
                helpdesk_id=north.id,
            )  # fmt: skip
            names = [(e.citizen_name, e.urgent, e.state) for e in entries]
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert names == [
        ("Presto", True, "booked"),
        ("Via", False, "cancelled_by_staff"),
        ("Tardi", False, "booked"),
    ]
    assert [e.id for e in entries] == [early.id, gone.id, late.id]
    async with database.transaction() as session:
        everywhere = await agenda.lines_between(
            session=session, since=rome(2026, 12, 8), until=rome(2026, 12, 9)
        )
    assert len(everywhere) == 4


async def test_one_entry_and_citizens_for_bookings(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, places=2)
    first = await _book(
        session, settings, await make_citizen(session, name="Uno"), helpdesk, rome(2026, 12, 8, 10)
    )
    second = await _book(
        session, settings, await make_citizen(session, name="Due"), helpdesk, rome(2026, 12, 8, 9)
    )
    entry = await agenda.entry(session=session, booking_id=first.id)
    assert (entry.booking.id, entry.citizen.name) == (first.id, "Uno")
    with pytest.raises(BookingNotFound):
        await agenda.entry(session=session, booking_id=999_999)
    line = await agenda.line(session=session, booking_id=first.id)
    assert (line.id, line.code, line.citizen_name, line.state) == (
        first.id, first.code, "Uno", "booked",
    )  # fmt: skip
    with pytest.raises(BookingNotFound):
        await agenda.line(session=session, booking_id=999_999)
    paired = await agenda.with_citizens(session=session, bookings=[first, second])
    assert [(e.booking.id, e.citizen.name) for e in paired] == [
        (first.id, "Uno"),
        (second.id, "Due"),
    ]
    assert await agenda.with_citizens(session=session, bookings=[]) == []


# --- helpdesks -----------------------------------------------------------------------


async def test_update_helpdesk(session: AsyncSession) -> None:
    helpdesk = await make_helpdesk(session, name="Centro")
    await make_helpdesk(session, name="Villa Fiorita")
    updated = await hours.update_helpdesk(
        session=session, helpdesk_id=helpdesk.id, name="  Centro civico ",
        address=" Piazza Matteotti 1 ", directions=" Secondo piano ", actor="staff:coord",
    )  # fmt: skip
    assert (updated.name, updated.address, updated.directions) == (
        "Centro civico", "Piazza Matteotti 1", "Secondo piano",
    )  # fmt: skip
    # Its own name (in any letter case) is not a clash.
    await hours.update_helpdesk(
        session=session, helpdesk_id=helpdesk.id, name="CENTRO CIVICO",
        address="Piazza Matteotti 1", actor="staff:coord",
    )  # fmt: skip
    with pytest.raises(InvalidSchedule, match="Another helpdesk already has this name"):
        await hours.update_helpdesk(
            session=session, helpdesk_id=helpdesk.id, name="villa fiorita", address="x",
            actor="staff:coord",
        )  # fmt: skip
    with pytest.raises(InvalidSchedule, match="needs a name and an address"):
        await hours.update_helpdesk(
            session=session,
            helpdesk_id=helpdesk.id,
            name="Centro",
            address="  ",
            actor="staff:coord",
        )
    with pytest.raises(HelpdeskNotFound):
        await hours.update_helpdesk(
            session=session, helpdesk_id=999_999, name="a", address="b", actor="staff:coord"
        )
    with pytest.raises(InvalidSchedule):
        await hours.ensure_helpdesk_name_free(session=session, name=" Villa FIORITA ")
    await hours.ensure_helpdesk_name_free(session=session, name="Sportello Nuovo")
    assert (await _actions(session)).count("helpdesk.update") == 2


# --- weekly hours --------------------------------------------------------------------


async def test_list_end_and_delete_opening_rules(session: AsyncSession) -> None:
    helpdesk = await make_helpdesk(session, weekdays=(2, 0), valid_from=date(2026, 1, 1))
    monday, wednesday = await hours.list_opening_rules(session=session, helpdesk_id=helpdesk.id)
    assert (monday.weekday, wednesday.weekday) == (0, 2)

    with pytest.raises(InvalidSchedule, match="delete them instead"):
        await hours.end_opening_rule(
            session=session, rule_id=monday.id, last_day=date(2025, 12, 31), actor="test"
        )
    ended = await hours.end_opening_rule(
        session=session, rule_id=monday.id, last_day=date(2026, 12, 31), actor="test"
    )
    assert ended.valid_until == date(2026, 12, 31)
    # Ending can only shorten: lengthening could overlap later hours.
    with pytest.raises(InvalidSchedule, match="already end before"):
        await hours.end_opening_rule(
            session=session, rule_id=monday.id, last_day=date(2027, 1, 31), actor="test"
        )
    await hours.end_opening_rule(
        session=session, rule_id=monday.id, last_day=date(2026, 12, 31), actor="test"
    )
    assert (
        await hours.delete_opening_rule(session=session, rule_id=wednesday.id, actor="test")
        == helpdesk.id
    )
    assert await session.get(OpeningRule, wednesday.id) is None
    with pytest.raises(ScheduleItemNotFound):
        await hours.delete_opening_rule(session=session, rule_id=wednesday.id, actor="test")
    with pytest.raises(ScheduleItemNotFound):
        await hours.end_opening_rule(
            session=session, rule_id=999_999, last_day=date(2026, 12, 31), actor="test"
        )
    actions = await _actions(session)
    assert actions.count("opening_rule.end") == 2
    assert actions.count("opening_rule.delete") == 1


# --- closures and extra openings -----------------------------------------------------


async def test_closures_and_extra_openings(session: AsyncSession, settings: Settings) -> None:
    helpdesk = await make_helpdesk(session, places=2)
    inside = await _book(
        session,
        settings,
        await make_citizen(session, name="Dentro"),
        helpdesk,
        rome(2026, 12, 9, 10),
    )
    await _book(
        session, settings, await make_citizen(session, name="Fuori"), helpdesk, rome(2026, 12, 9, 9)
    )
    old, _ = await hours.add_closure(
        session=session, settings=settings, helpdesk_id=helpdesk.id, day=date(2026, 12, 1),
        actor="test",
    )  # fmt: skip
    closure, affected = await hours.add_closure(
        session=session, settings=settings, helpdesk_id=helpdesk.id, day=date(2026, 12, 9),
        starts_at=time(10), ends_at=time(11), reason="Riunione", actor="test",
    )  # fmt: skip
    assert [b.id for b in affected] == [inside.id]
    assert [c.id for c in await hours.list_closures(session=session, helpdesk_id=helpdesk.id)] == [
        old.id, closure.id,
    ]  # fmt: skip
    upcoming = await hours.list_closures(
        session=session, helpdesk_id=helpdesk.id, since=date(2026, 12, 7)
    )
    assert [c.id for c in upcoming] == [closure.id]

    found, entries = await hours.closure_bookings(
        session=session, settings=settings, closure_id=closure.id
    )
    assert found.id == closure.id
    assert [(e.booking.id, e.citizen.name) for e in entries] == [(inside.id, "Dentro")]
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=inside.id, by=CancelledBy.STAFF,
        actor="test", now=NOW,
    )  # fmt: skip
    _, entries = await hours.closure_bookings(
        session=session, settings=settings, closure_id=closure.id
    )
    assert entries == []

    assert (
        await hours.delete_closure(session=session, closure_id=closure.id, actor="test")
        == helpdesk.id
    )
    with pytest.raises(ScheduleItemNotFound):
        await hours.get_closure(session=session, closure_id=closure.id)
    with pytest.raises(ScheduleItemNotFound):
        await hours.closure_bookings(session=session, settings=settings, closure_id=closure.id)

    saturday = await hours.add_extra_opening(
        session=session, helpdesk_id=helpdesk.id, day=date(2026, 12, 12), opens_at=time(9),
        closes_at=time(10), slot_minutes=30, places=1, actor="test",
    )  # fmt: skip
    listed = await hours.list_extra_openings(
        session=session, helpdesk_id=helpdesk.id, since=date(2026, 12, 12)
    )
    assert [o.id for o in listed] == [saturday.id]
    assert (
        await hours.list_extra_openings(
            session=session, helpdesk_id=helpdesk.id, since=date(2026, 12, 13)
        )
        == []
    )
    assert (
        await hours.delete_extra_opening(session=session, opening_id=saturday.id, actor="test")
        == helpdesk.id
    )
    with pytest.raises(ScheduleItemNotFound):
        await hours.delete_extra_opening(session=session, opening_id=saturday.id, actor="test")
    actions = await _actions(session)
    assert "closure.delete" in actions
    assert "extra_opening.delete" in actions


# --- bookings left outside the hours -------------------------------------------------


async def test_stranded_bookings_follow_every_change_of_hours(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, places=3)
    tuesday = await _book(
        session,
        settings,
        await make_citizen(session, name="Martedì"),
        helpdesk,
        rome(2026, 12, 8, 9),
    )
    wednesday = await _book(
        session,
        settings,
        await make_citizen(session, name="Mercoledì"),
        helpdesk,
        rome(2026, 12, 9, 11),
    )
    saturday_opening = await hours.add_extra_opening(
        session=session, helpdesk_id=helpdesk.id, day=date(2026, 12, 12), opens_at=time(9),
        closes_at=time(10), slot_minutes=30, places=1, actor="test",
    )  # fmt: skip
    saturday = await _book(
        session,
        settings,
        await make_citizen(session, name="Sabato"),
        helpdesk,
        rome(2026, 12, 12, 9),
    )
    cancelled = await _book(
        session,
        settings,
        await make_citizen(session, name="Annullato"),
        helpdesk,
        rome(2026, 12, 8, 9),
    )
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=cancelled.id, by=CancelledBy.STAFF,
        actor="test", now=NOW,
    )  # fmt: skip

    async def stranded() -> list[AgendaEntry]:
        return await hours.stranded_bookings(
            session=session, settings=settings, helpdesk_id=helpdesk.id, now=NOW
        )

    assert await stranded() == []

    # Wednesday's hours end on the 8th: the booking of the 9th is left outside.
    rules = await hours.list_opening_rules(session=session, helpdesk_id=helpdesk.id)
    (wednesday_rule,) = [r for r in rules if r.weekday == 2]
    await hours.end_opening_rule(
        session=session, rule_id=wednesday_rule.id, last_day=date(2026, 12, 8), actor="test"
    )
    assert [e.booking.id for e in await stranded()] == [wednesday.id]

    # Withdrawing Saturday's opening strands its booking too; a closure strands Tuesday's.
    await hours.delete_extra_opening(session=session, opening_id=saturday_opening.id, actor="test")
    await hours.add_closure(
        session=session, settings=settings, helpdesk_id=helpdesk.id, day=date(2026, 12, 8),
        starts_at=time(9), ends_at=time(9, 30), actor="test",
    )  # fmt: skip
    entries = await stranded()
    assert [(e.booking.id, e.citizen.name) for e in entries] == [
        (tuesday.id, "Martedì"), (wednesday.id, "Mercoledì"), (saturday.id, "Sabato"),
    ]  # fmt: skip
    # Past appointments are history, not work to do.
    later = await hours.stranded_bookings(
        session=session, settings=settings, helpdesk_id=helpdesk.id, now=rome(2026, 12, 10)
    )
    assert [e.booking.id for e in later] == [saturday.id]


async def test_an_inactive_helpdesk_keeps_its_bookings_in_hours(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    await _book(session, settings, await make_citizen(session), helpdesk, rome(2026, 12, 8, 9))
    await hours.set_helpdesk_active(
        session=session, helpdesk_id=helpdesk.id, active=False, actor="test"
    )
    assert (
        await hours.stranded_bookings(
            session=session, settings=settings, helpdesk_id=helpdesk.id, now=NOW
        )
        == []
    )
