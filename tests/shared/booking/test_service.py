"""Booking service: availability, booking, cancel, move, attendance, closures, bad input."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.booking import availability, hours
from shared.booking import service as booking
from shared.booking.calendar import booking_ics
from shared.booking.errors import (
    AlreadyBooked,
    BookingNotFound,
    CitizenNotFound,
    HelpdeskInactive,
    HelpdeskNotFound,
    IllegalTransition,
    InvalidSchedule,
    OverlappingRules,
    SlotInPast,
    SlotNotOffered,
    SlotTaken,
    SlotTooFar,
    SlotTooSoon,
)
from shared.booking.models import Booking, BookingState, OpeningRule, Slot
from shared.booking.places import CODE_ALPHABET, CODE_LENGTH
from shared.booking.service import CancelledBy
from shared.db import Database
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from tests.factories import ROME, make_citizen, make_helpdesk, rome

# Monday 7 December 2026, 08:00 in Cernusco.
NOW = rome(2026, 12, 7, 8)
TUESDAY_9 = rome(2026, 12, 8, 9)


async def _count(session: AsyncSession, model: type[object]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_free_slots_honour_notice_and_horizon(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    slots = await availability.list_free_slots(session=session, settings=settings, now=NOW)
    # 08:00 + 2 h notice: today's 09:00, 09:30 are too soon, 10:00 is the first.
    assert slots[0].starts_at == rome(2026, 12, 7, 10).astimezone(slots[0].starts_at.tzinfo)
    assert all(s.starts_at < NOW + timedelta(days=30) for s in slots)
    assert slots[-1].starts_at.astimezone(ROME).date() == date(2027, 1, 5)
    assert all(s.helpdesk_id == helpdesk.id and s.places_left == 1 for s in slots)
    assert [s.starts_at for s in slots] == sorted(s.starts_at for s in slots)


async def test_availability_is_one_sql_statement(database: Database, settings: Settings) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        citizen = await make_citizen(session)
        await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id,
            helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
        )  # fmt: skip
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with database.transaction(read_only=True) as session:
            slots = await availability.list_free_slots(session=session, settings=settings, now=NOW)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert TUESDAY_9 not in [s.starts_at for s in slots]


async def test_book_takes_a_place_and_queues_reminders(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, places=2)
    citizen = await make_citizen(session)
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor=f"citizen:{citizen.id}", now=NOW,
    )  # fmt: skip
    assert made.state == BookingState.BOOKED
    assert len(made.code) == CODE_LENGTH and set(made.code) <= set(CODE_ALPHABET)
    assert made.ends_at - made.starts_at == timedelta(minutes=30)
    slot = await session.get(Slot, made.slot_id)
    assert slot is not None and (slot.taken, slot.capacity) == (1, 2)
    free = await availability.list_free_slots(session=session, settings=settings, now=NOW)
    assert next(s for s in free if s.starts_at == TUESDAY_9).places_left == 1
    reminders = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.due_at))).all()
    assert [(m.kind, m.due_at.astimezone(ROME)) for m in reminders] == [
        ("reminder_day_before", rome(2026, 12, 7, 18)),
        ("reminder_hours_before", rome(2026, 12, 8, 6)),
    ]
    assert await booking.find_booking_by_code(session=session, code=made.code.lower()) == made


async def test_staff_booking_confirms_through_the_outbox(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session)
    await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="staff:anna", now=NOW,
        confirm_by_message=True,
    )  # fmt: skip
    kinds = set((await session.scalars(select(OutboxMessage.kind))).all())
    assert "booking_confirmed" in kinds


@pytest.mark.parametrize(
    ("starts_at", "error"),
    [
        (rome(2026, 12, 4, 9), SlotInPast),
        (rome(2026, 12, 7, 9, 30), SlotTooSoon),
        (rome(2027, 1, 12, 9), SlotTooFar),
        (rome(2026, 12, 8, 9, 10), SlotNotOffered),  # not a slot boundary: forged time
        (rome(2026, 12, 12, 9), SlotNotOffered),  # Saturday: closed
        (rome(2026, 12, 8, 12), SlotNotOffered),  # after closing
    ],
)
async def test_bad_slots_are_refused_and_nothing_is_written(
    database: Database, settings: Settings, starts_at: object, error: type[Exception]
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        citizen = await make_citizen(session)
    with pytest.raises(error):
        async with database.transaction() as session:
            await booking.book_slot(
                session=session, settings=settings, citizen_id=citizen.id,
                helpdesk_id=helpdesk.id, starts_at=starts_at, actor="test", now=NOW,  # type: ignore[arg-type]
            )  # fmt: skip
    async with database.transaction(read_only=True) as session:
        assert await _count(session, Booking) == 0
        assert await _count(session, Slot) == 0
        assert await _count(session, OutboxMessage) == 0


async def test_unknown_ids_and_inactive_helpdesk(session: AsyncSession, settings: Settings) -> None:
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session)
    with pytest.raises(HelpdeskNotFound):
        await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id,
            helpdesk_id=9999, starts_at=TUESDAY_9, actor="test", now=NOW,
        )  # fmt: skip
    with pytest.raises(CitizenNotFound):
        await booking.book_slot(
            session=session, settings=settings, citizen_id=9999,
            helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
        )  # fmt: skip
    with pytest.raises(BookingNotFound):
        await booking.cancel_booking(
            session=session, settings=settings, booking_id=9999, by=CancelledBy.STAFF, actor="t"
        )
    await hours.set_helpdesk_active(
        session=session, helpdesk_id=helpdesk.id, active=False, actor="t"
    )
    with pytest.raises(HelpdeskInactive):
        await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id,
            helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
        )  # fmt: skip
    assert await availability.list_free_slots(session=session, settings=settings, now=NOW) == []
    assert await _count(session, Booking) == 0


async def test_one_active_booking_per_citizen(session: AsyncSession, settings: Settings) -> None:
    helpdesk = await make_helpdesk(session, places=3)
    citizen = await make_citizen(session)
    await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    with pytest.raises(AlreadyBooked):
        await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id,
            helpdesk_id=helpdesk.id, starts_at=TUESDAY_9 + timedelta(minutes=30),
            actor="test", now=NOW,
        )  # fmt: skip
    assert await _count(session, Booking) == 1


async def test_full_slot_raises_slot_taken(session: AsyncSession, settings: Settings) -> None:
    helpdesk = await make_helpdesk(session, places=1)
    first, second = await make_citizen(session), await make_citizen(session)
    await booking.book_slot(
        session=session, settings=settings, citizen_id=first.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    with pytest.raises(SlotTaken):
        await booking.book_slot(
            session=session, settings=settings, citizen_id=second.id,
            helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
        )  # fmt: skip
    # the session is still usable after the refusal (savepoint rolled back)
    assert await _count(session, Booking) == 1


async def test_cancel_frees_the_place_and_withdraws_reminders(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session)
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    other = await make_citizen(session)
    with pytest.raises(BookingNotFound):  # not theirs: looks like it doesn't exist
        await booking.cancel_booking(
            session=session, settings=settings, booking_id=made.id, by=CancelledBy.CITIZEN,
            actor="citizen", citizen_id=other.id, now=NOW,
        )  # fmt: skip
    cancelled = await booking.cancel_booking(
        session=session, settings=settings, booking_id=made.id, by=CancelledBy.CITIZEN,
        actor="citizen", citizen_id=citizen.id, now=NOW,
    )  # fmt: skip
    assert cancelled.state == BookingState.CANCELLED_BY_CITIZEN
    slot = await session.get(Slot, made.slot_id)
    assert slot is not None and slot.taken == 0
    states = set((await session.scalars(select(OutboxMessage.state))).all())
    assert states == {"cancelled"}
    with pytest.raises(IllegalTransition):
        await booking.cancel_booking(
            session=session, settings=settings, booking_id=made.id, by=CancelledBy.STAFF,
            actor="staff", now=NOW,
        )  # fmt: skip


async def test_staff_cancel_tells_the_citizen(session: AsyncSession, settings: Settings) -> None:
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session)
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=made.id, by=CancelledBy.STAFF,
        actor="staff:anna", reason="Operatrice malata", now=NOW,
    )  # fmt: skip
    pending = (
        await session.scalars(select(OutboxMessage.kind).where(OutboxMessage.state == "pending"))
    ).all()
    assert pending == ["booking_cancelled"]


async def test_move_links_and_keeps_old_booking_when_new_slot_is_taken(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen, rival = await make_citizen(session), await make_citizen(session)
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    taken_slot = TUESDAY_9 + timedelta(minutes=30)
    await booking.book_slot(
        session=session, settings=settings, citizen_id=rival.id,
        helpdesk_id=helpdesk.id, starts_at=taken_slot, actor="test", now=NOW,
    )  # fmt: skip
    with pytest.raises(SlotTaken):
        await booking.move_booking(
            session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk.id,
            starts_at=taken_slot, by=CancelledBy.CITIZEN, actor="c", citizen_id=citizen.id, now=NOW,
        )  # fmt: skip
    await session.refresh(made)
    assert made.state == BookingState.BOOKED
    moved = await booking.move_booking(
        session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk.id,
        starts_at=TUESDAY_9 + timedelta(hours=1), by=CancelledBy.STAFF, actor="staff:anna", now=NOW,
    )  # fmt: skip
    await session.refresh(made)
    assert made.state == BookingState.CANCELLED_BY_STAFF and made.cancel_reason == "moved"
    assert moved.moved_from_id == made.id and moved.state == BookingState.BOOKED
    old_slot = await session.get(Slot, made.slot_id)
    assert old_slot is not None and old_slot.taken == 0
    kinds = (
        await session.scalars(select(OutboxMessage.kind).where(OutboxMessage.state == "pending"))
    ).all()
    assert "booking_moved" in kinds and "booking_cancelled" not in kinds


async def test_attended_and_no_show_transitions(session: AsyncSession, settings: Settings) -> None:
    helpdesk = await make_helpdesk(session, places=2)
    first, second = await make_citizen(session), await make_citizen(session)
    a = await booking.book_slot(
        session=session, settings=settings, citizen_id=first.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    b = await booking.book_slot(
        session=session, settings=settings, citizen_id=second.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    with pytest.raises(IllegalTransition):  # the day before: too early to check in
        await booking.mark_attended(session=session, booking_id=a.id, actor="op", now=NOW)
    with pytest.raises(IllegalTransition):
        await booking.mark_no_show(session=session, booking_id=b.id, actor="op", now=NOW)
    on_the_day = TUESDAY_9 - timedelta(minutes=10)
    assert (
        await booking.mark_attended(session=session, booking_id=a.id, actor="op", now=on_the_day)
    ).state == "attended"
    later = TUESDAY_9 + timedelta(minutes=40)
    assert (
        await booking.mark_no_show(session=session, booking_id=b.id, actor="op", now=later)
    ).state == "no_show"
    for mark in (booking.mark_attended, booking.mark_no_show):
        with pytest.raises(IllegalTransition):
            await mark(session=session, booking_id=a.id, actor="op", now=later)
    rebook = (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "rebook_after_no_show")
        )
    ).all()
    assert [m.citizen_id for m in rebook] == [second.id]
    actions = (await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all()
    assert "booking.attended" in actions and "booking.no_show" in actions


async def test_closing_a_day_returns_its_bookings(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, places=2)
    citizens = [await make_citizen(session) for _ in range(3)]
    for citizen, start in zip(
        citizens, (TUESDAY_9, TUESDAY_9, TUESDAY_9 + timedelta(hours=2)), strict=True
    ):
        await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id,
            helpdesk_id=helpdesk.id, starts_at=start, actor="test", now=NOW,
        )  # fmt: skip
    _, affected = await hours.add_closure(
        session=session, settings=settings, helpdesk_id=helpdesk.id, day=date(2026, 12, 8),
        starts_at=time(8), ends_at=time(10), reason="Assemblea sindacale", actor="coord",
    )  # fmt: skip
    assert sorted(b.citizen_id for b in affected) == sorted(c.id for c in citizens[:2])
    assert all(b.state == BookingState.BOOKED for b in affected)  # nothing dropped
    _, whole_day = await hours.add_closure(
        session=session, settings=settings, helpdesk_id=helpdesk.id, day=date(2026, 12, 8),
        reason="Immacolata", actor="coord",
    )  # fmt: skip
    assert len(whole_day) == 3
    free = await availability.list_free_slots(session=session, settings=settings, now=NOW)
    assert all(s.starts_at.astimezone(ROME).date() != date(2026, 12, 8) for s in free)


async def test_bad_schedules_are_refused_and_nothing_is_written(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, weekdays=(0,))
    rules_before = await _count(session, OpeningRule)
    cases = [
        dict(weekday=1, opens_at=time(12), closes_at=time(9), slot_minutes=30, places=1),
        dict(weekday=1, opens_at=time(9), closes_at=time(9, 20), slot_minutes=30, places=1),
        dict(weekday=1, opens_at=time(9), closes_at=time(12), slot_minutes=2, places=1),
        dict(weekday=1, opens_at=time(9), closes_at=time(12), slot_minutes=30, places=0),
        dict(weekday=7, opens_at=time(9), closes_at=time(12), slot_minutes=30, places=1),
    ]
    for case in cases:
        with pytest.raises(InvalidSchedule):
            await hours.add_opening_rule(
                session=session, helpdesk_id=helpdesk.id, valid_from=date(2026, 1, 1), actor="c",
                **case,  # type: ignore[arg-type]
            )  # fmt: skip
    with pytest.raises(OverlappingRules):
        await hours.add_opening_rule(
            session=session, helpdesk_id=helpdesk.id, weekday=0, opens_at=time(11),
            closes_at=time(14), slot_minutes=30, places=1, valid_from=date(2026, 6, 1), actor="c",
        )  # fmt: skip
    with pytest.raises(InvalidSchedule):
        await hours.add_opening_rule(
            session=session, helpdesk_id=helpdesk.id, weekday=2, opens_at=time(9),
            closes_at=time(12), slot_minutes=30, places=1, valid_from=date(2026, 6, 1),
            valid_until=date(2026, 5, 1), actor="c",
        )  # fmt: skip
    with pytest.raises(InvalidSchedule):
        await hours.add_closure(
            session=session, settings=settings, helpdesk_id=helpdesk.id, day=date(2026, 12, 8),
            starts_at=time(11), ends_at=time(10), actor="c",
        )  # fmt: skip
    with pytest.raises(HelpdeskNotFound):
        await hours.add_closure(
            session=session, settings=settings, helpdesk_id=424242, day=date(2026, 12, 8), actor="c"
        )
    assert await _count(session, OpeningRule) == rules_before
    # afternoon hours on the same weekday don't overlap the morning: accepted
    await hours.add_opening_rule(
        session=session, helpdesk_id=helpdesk.id, weekday=0, opens_at=time(14),
        closes_at=time(17), slot_minutes=30, places=1, valid_from=date(2026, 1, 1), actor="c",
    )  # fmt: skip


async def test_ics_file(session: AsyncSession, settings: Settings) -> None:
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session)
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    raw = booking_ics(
        booking=made, helpdesk=helpdesk, settings=settings, summary="Colloquio Ripartire",
        description=f"Codice {made.code}", stamp=NOW,
    )  # fmt: skip
    assert b"TZID=Europe/Rome" in raw and b"BEGIN:VTIMEZONE" in raw
    event_ = Calendar.from_ical(raw).walk("VEVENT")[0]
    assert event_.decoded("dtstart") == TUESDAY_9
    assert event_.decoded("dtstart").tzinfo.key == "Europe/Rome"  # type: ignore[union-attr]
    assert "Via Roma 1" in str(event_.get("location"))
    assert made.code in str(event_.get("description"))
