"""The board's bulk actions: each citizen placed or left as they were, told exactly once
through the outbox, and the ones the outbox can't reach listed for a phone call."""

from __future__ import annotations

from collections import Counter
from datetime import date, time

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.booking import bulk
from shared.booking.bulk import Refusal, Unreachable
from shared.booking.messages import MessageKind
from shared.booking.models import Booking, BookingState
from shared.cases.errors import InvalidInput
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from tests.factories import ROME, make_helpdesk
from tests.shared.booking.board_data import NOW, board_data

THURSDAY = date(2026, 12, 10)


async def _messages(session: AsyncSession, kind: MessageKind) -> Counter[int]:
    found = await session.scalars(
        select(OutboxMessage.citizen_id).where(OutboxMessage.kind == kind.value)
    )
    return Counter(found)


async def _booking(session: AsyncSession, booking_id: int) -> Booking:
    found = await session.get(Booking, booking_id, populate_existing=True)
    assert found is not None
    return found


async def test_bulk_move_places_who_fits_and_leaves_the_others_as_they_were(
    session: AsyncSession, settings: Settings
) -> None:
    data = await board_data(session, settings)
    # One place a day, at 09:00.
    small = await make_helpdesk(session, name="Sportello Piccolo", closes_at=time(9, 30))
    names = ("Bruno", "Anna", "Carla")
    before = {n: await _booking(session, data.bookings[n, "upcoming"]) for n in names}
    snapshot = {n: (b.state, b.starts_at, b.helpdesk_id) for n, b in before.items()}
    chosen = [data.bookings[n, "upcoming"] for n in names] + [
        data.bookings["Gina", "upcoming"], 987654,
    ]  # fmt: skip
    result = await bulk.move_bookings(
        session=session, settings=settings, booking_ids=chosen, day=THURSDAY,
        helpdesk_id=small.id, actor="staff:coordinatore", now=NOW,
    )  # fmt: skip
    # Anna is urgent: placed first, in the only place.
    assert [d.row.name for d in result.done] == ["Anna Colombo"]
    moved = result.done[0]
    assert moved.starts_at is not None and moved.starts_at.astimezone(ROME).time() == time(9)
    assert moved.helpdesk_id == small.id
    refused = {r.booking_id: r.reason for r in result.refused}
    assert refused == {
        data.bookings["Bruno", "upcoming"]: Refusal.NO_FREE_PLACE,
        data.bookings["Carla", "upcoming"]: Refusal.NO_FREE_PLACE,
        data.bookings["Gina", "upcoming"]: Refusal.NOT_ACTIVE,
        987654: Refusal.NOT_FOUND,
    }
    for name in ("Bruno", "Carla"):
        kept = await _booking(session, data.bookings[name, "upcoming"])
        assert (kept.state, kept.starts_at, kept.helpdesk_id) == snapshot[name]
    old = await _booking(session, data.bookings["Anna", "upcoming"])
    assert old.state == BookingState.CANCELLED_BY_STAFF.value
    assert result.not_told == []
    moves = await _messages(session, MessageKind.BOOKING_MOVED)
    assert moves == Counter({data.citizens["Anna"].id: 1})
    assert await _messages(session, MessageKind.BOOKING_CANCELLED) == Counter()

    # Bruno and Carla to Ronco that Thursday: both placed, both to be phoned.
    result = await bulk.move_bookings(
        session=session, settings=settings,
        booking_ids=[data.bookings["Bruno", "upcoming"], data.bookings["Carla", "upcoming"]],
        day=THURSDAY, helpdesk_id=data.ronco.id, actor="staff:coordinatore", now=NOW,
    )  # fmt: skip
    assert {d.row.name for d in result.done} == {"Bruno Ferrari", "Carla Brambilla"}
    assert {(n.row.name, n.why) for n in result.not_told} == {
        ("Bruno Ferrari", Unreachable.NO_TELEGRAM),
        ("Carla Brambilla", Unreachable.BLOCKED),
    }
    # As near to their own time of day as there is a place.
    times = {d.row.name: d.starts_at.astimezone(ROME).time() for d in result.done if d.starts_at}
    assert times == {"Bruno Ferrari": time(9, 30), "Carla Brambilla": time(10)}
    # Neither can be written to: nothing is queued for them (Anna's one message stays).
    assert await _messages(session, MessageKind.BOOKING_MOVED) == moves
    events = Counter(
        await session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("booking.%")))
    )
    assert events["booking.bulk_move"] == 2


async def test_bulk_move_refuses_what_the_single_move_refuses(
    session: AsyncSession, settings: Settings
) -> None:
    data = await board_data(session, settings)
    result = await bulk.move_bookings(
        session=session, settings=settings,
        booking_ids=[data.bookings["Elena", "upcoming"], data.bookings["Dario", "upcoming"]],
        day=None, helpdesk_id=data.ronco.id, actor="staff:coordinatore", now=NOW,
    )  # fmt: skip
    # Elena is not eligible: the booking rules don't let her book, so she is not moved;
    # Dario is already at Ronco that day.
    assert {r.booking_id: r.reason for r in result.refused} == {
        data.bookings["Elena", "upcoming"]: Refusal.NOT_ALLOWED,
        data.bookings["Dario", "upcoming"]: Refusal.ALREADY_THERE,
    }
    assert result.done == []
    with pytest.raises(InvalidInput):
        await bulk.move_bookings(
            session=session, settings=settings, booking_ids=[1], day=None, helpdesk_id=None,
            actor="x", now=NOW,
        )  # fmt: skip
    with pytest.raises(InvalidInput):
        await bulk.move_bookings(
            session=session, settings=settings, booking_ids=[], day=THURSDAY, helpdesk_id=None,
            actor="x", now=NOW,
        )  # fmt: skip


async def test_bulk_cancel_tells_each_citizen_once_with_the_message(
    session: AsyncSession, settings: Settings
) -> None:
    data = await board_data(session, settings)
    names = ("Anna", "Bruno", "Dario", "Elena", "Carla")
    chosen = [data.bookings[n, "upcoming"] for n in names]
    result = await bulk.cancel_bookings(
        session=session, settings=settings, booking_ids=chosen + chosen[:2],
        message="Sportello chiuso per un guasto all'impianto elettrico.",
        actor="staff:coordinatore", now=NOW,
    )  # fmt: skip
    assert sorted(d.row.id for d in result.done) == sorted(chosen)
    assert result.refused == []
    for booking_id in chosen:
        cancelled = await _booking(session, booking_id)
        assert cancelled.state == BookingState.CANCELLED_BY_STAFF.value
        assert cancelled.cancel_reason == "Sportello chiuso per un guasto all'impianto elettrico."
    told = await _messages(session, MessageKind.BOOKING_CANCELLED)
    assert told == Counter({data.citizens["Anna"].id: 1, data.citizens["Dario"].id: 1})
    assert {(n.row.name, n.why) for n in result.not_told} == {
        ("Bruno Ferrari", Unreachable.NO_TELEGRAM),
        ("Elena Sala", Unreachable.NO_TELEGRAM),
        ("Carla Brambilla", Unreachable.BLOCKED),
    }
    cancels = await session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "booking.cancel")
    )
    assert cancels == len(chosen) + 1  # Gina's own cancellation in the data set
    # Again: nothing is active any more, each refused on its own, nobody told twice.
    again = await bulk.cancel_bookings(
        session=session, settings=settings, booking_ids=chosen, message="Di nuovo.",
        actor="staff:coordinatore", now=NOW,
    )  # fmt: skip
    assert {r.reason for r in again.refused} == {Refusal.NOT_ACTIVE} and again.done == []
    assert await _messages(session, MessageKind.BOOKING_CANCELLED) == told


async def test_bulk_cancel_needs_a_message(session: AsyncSession, settings: Settings) -> None:
    data = await board_data(session, settings)
    for message in ("", "   ", "x" * 201):
        with pytest.raises(InvalidInput) as refused:
            await bulk.cancel_bookings(
                session=session, settings=settings,
                booking_ids=[data.bookings["Anna", "upcoming"]], message=message,
                actor="staff:coordinatore", now=NOW,
            )  # fmt: skip
        assert set(refused.value.errors) == {"message"}
    assert (await _booking(session, data.bookings["Anna", "upcoming"])).state == "booked"
