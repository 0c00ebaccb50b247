"""Waitlist: urgent first then oldest, holds that expire, offers passed to the next citizen."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import hours, waitlist
from shared.booking import service as booking
from shared.booking.errors import (
    AlreadyBooked,
    AlreadyWaiting,
    NoOffer,
    OfferExpired,
    SlotsAvailable,
    SlotTaken,
)
from shared.booking.models import Booking, Slot, WaitlistEntry
from shared.booking.service import CancelledBy
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 12, 7, 8)


async def _full_helpdesk(session: AsyncSession, settings: Settings) -> tuple[int, list[Booking]]:
    """A helpdesk open only on Wednesday 9 December, 09:00-10:00, two slots of one place, both booked."""
    helpdesk = await make_helpdesk(session, weekdays=())
    await hours.add_extra_opening(
        session=session, helpdesk_id=helpdesk.id, day=date(2026, 12, 9), opens_at=rome(2026, 12, 9, 9).time(),
        closes_at=rome(2026, 12, 9, 10).time(), slot_minutes=30, places=1, actor="t",
    )  # fmt: skip
    bookings = []
    for start in (rome(2026, 12, 9, 9), rome(2026, 12, 9, 9, 30)):
        citizen = await make_citizen(session)
        bookings.append(
            await booking.book_slot(
                session=session,
                settings=settings,
                citizen_id=citizen.id,
                helpdesk_id=helpdesk.id,
                starts_at=start,
                actor="t",
                now=NOW,
            )
        )
    return helpdesk.id, bookings


async def _offers(session: AsyncSession) -> list[OutboxMessage]:
    return list(
        (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "waitlist_offer")
                .order_by(OutboxMessage.id)
            )
        ).all()
    )


async def test_join_only_when_nothing_is_free(session: AsyncSession, settings: Settings) -> None:
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session)
    with pytest.raises(SlotsAvailable):
        await waitlist.join_waitlist(
            session=session, settings=settings, citizen_id=citizen.id, now=NOW
        )
    assert (await session.scalars(select(WaitlistEntry))).all() == []
    assert helpdesk.id


async def test_offer_order_urgent_first_then_oldest(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk_id, (first_booking, _) = await _full_helpdesk(session, settings)
    old = await make_citizen(session, name="Old")
    newer_urgent = await make_citizen(session, name="Urgent", urgent=True)
    newest = await make_citizen(session, name="Newest")
    for minutes, citizen in enumerate((old, newer_urgent, newest)):
        await waitlist.join_waitlist(
            session=session,
            settings=settings,
            citizen_id=citizen.id,
            now=NOW + timedelta(minutes=minutes),
        )
    with pytest.raises(AlreadyWaiting):
        await waitlist.join_waitlist(session=session, settings=settings, citizen_id=old.id, now=NOW)

    await booking.cancel_booking(
        session=session, settings=settings, booking_id=first_booking.id, by=CancelledBy.CITIZEN,
        actor="c", now=NOW,
    )  # fmt: skip
    offers = await _offers(session)
    assert [m.citizen_id for m in offers] == [newer_urgent.id]
    # the place is held: nobody else can book it meanwhile
    slot = await session.get(Slot, first_booking.slot_id)
    assert slot is not None and slot.taken == 1
    outsider = await make_citizen(session)
    with pytest.raises(SlotTaken):
        await booking.book_slot(
            session=session, settings=settings, citizen_id=outsider.id, helpdesk_id=helpdesk_id,
            starts_at=first_booking.starts_at, actor="c", now=NOW,
        )  # fmt: skip

    entry = await waitlist.open_entry(session=session, citizen_id=newer_urgent.id)
    assert entry is not None
    made = await waitlist.accept_offer(
        session=session, settings=settings, entry_id=entry.id, citizen_id=newer_urgent.id,
        now=NOW + timedelta(minutes=10),
    )  # fmt: skip
    assert made.slot_id == first_booking.slot_id and made.citizen_id == newer_urgent.id
    await session.refresh(slot)
    assert slot.taken == 1  # the held place became the booking, not a second place


async def test_hold_expiry_passes_to_next(session: AsyncSession, settings: Settings) -> None:
    _, (first_booking, second_booking) = await _full_helpdesk(session, settings)
    a, b = await make_citizen(session), await make_citizen(session)
    await waitlist.join_waitlist(session=session, settings=settings, citizen_id=a.id, now=NOW)
    await waitlist.join_waitlist(
        session=session, settings=settings, citizen_id=b.id, now=NOW + timedelta(seconds=1)
    )
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=first_booking.id, by=CancelledBy.STAFF,
        actor="s", now=NOW,
    )  # fmt: skip
    entry_a = await waitlist.open_entry(session=session, citizen_id=a.id)
    assert entry_a is not None and entry_a.state == "offered"

    hold = timedelta(minutes=settings.waitlist_hold_minutes)
    assert (
        await waitlist.expire_offers(
            session=session, settings=settings, now=NOW + hold - timedelta(seconds=1)
        )
        == 0
    )
    assert await waitlist.expire_offers(session=session, settings=settings, now=NOW + hold) == 1
    await session.refresh(entry_a)
    assert entry_a.state == "expired"
    with pytest.raises(NoOffer):
        await waitlist.accept_offer(
            session=session, settings=settings, entry_id=entry_a.id, citizen_id=a.id, now=NOW + hold
        )
    entry_b = await waitlist.open_entry(session=session, citizen_id=b.id)
    assert entry_b is not None and entry_b.state == "offered"
    assert [m.citizen_id for m in await _offers(session)] == [a.id, b.id]
    kinds = (
        await session.scalars(select(OutboxMessage.kind).where(OutboxMessage.citizen_id == a.id))
    ).all()
    assert "waitlist_offer_expired" in kinds

    # B answers too late: the offer expired even if the job hasn't run yet
    late = NOW + hold * 2 + timedelta(seconds=1)
    with pytest.raises(OfferExpired):
        await waitlist.accept_offer(
            session=session, settings=settings, entry_id=entry_b.id, citizen_id=b.id, now=late
        )
    # nobody left: the place goes back to the pool
    assert await waitlist.expire_offers(session=session, settings=settings, now=late) == 1
    slot = await session.get(Slot, first_booking.slot_id)
    assert slot is not None and slot.taken == 0
    assert second_booking.state == "booked"


async def test_decline_passes_on_and_foreign_entry_is_refused(
    session: AsyncSession, settings: Settings
) -> None:
    _, (first_booking, _) = await _full_helpdesk(session, settings)
    a, b = await make_citizen(session), await make_citizen(session)
    await waitlist.join_waitlist(session=session, settings=settings, citizen_id=a.id, now=NOW)
    await waitlist.join_waitlist(
        session=session, settings=settings, citizen_id=b.id, now=NOW + timedelta(seconds=1)
    )
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=first_booking.id, by=CancelledBy.CITIZEN,
        actor="c", now=NOW,
    )  # fmt: skip
    entry_a = await waitlist.open_entry(session=session, citizen_id=a.id)
    assert entry_a is not None
    with pytest.raises(NoOffer):  # B can't accept A's offer (forged callback data)
        await waitlist.accept_offer(
            session=session, settings=settings, entry_id=entry_a.id, citizen_id=b.id, now=NOW
        )
    await waitlist.decline_offer(
        session=session, settings=settings, entry_id=entry_a.id, citizen_id=a.id, now=NOW
    )
    entry_b = await waitlist.open_entry(session=session, citizen_id=b.id)
    assert entry_b is not None and entry_b.state == "offered"
    made = await waitlist.accept_offer(
        session=session, settings=settings, entry_id=entry_b.id, citizen_id=b.id, now=NOW
    )
    assert made.state == "booked"
    with pytest.raises(AlreadyBooked):
        await waitlist.join_waitlist(session=session, settings=settings, citizen_id=b.id, now=NOW)


async def test_leaving_with_an_offer_passes_it_on(
    session: AsyncSession, settings: Settings
) -> None:
    _, (first_booking, _) = await _full_helpdesk(session, settings)
    a = await make_citizen(session)
    await waitlist.join_waitlist(session=session, settings=settings, citizen_id=a.id, now=NOW)
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=first_booking.id, by=CancelledBy.CITIZEN,
        actor="c", now=NOW,
    )  # fmt: skip
    await waitlist.leave_waitlist(session=session, settings=settings, citizen_id=a.id, now=NOW)
    assert await waitlist.open_entry(session=session, citizen_id=a.id) is None
    slot = await session.get(Slot, first_booking.slot_id)
    assert slot is not None and slot.taken == 0


async def test_booking_otherwise_takes_the_citizen_off_the_waitlist(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk_id, (first_booking, _) = await _full_helpdesk(session, settings)
    a, b = await make_citizen(session), await make_citizen(session)
    await waitlist.join_waitlist(session=session, settings=settings, citizen_id=a.id, now=NOW)
    await waitlist.join_waitlist(
        session=session, settings=settings, citizen_id=b.id, now=NOW + timedelta(seconds=1)
    )
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=first_booking.id, by=CancelledBy.CITIZEN,
        actor="c", now=NOW,
    )  # fmt: skip
    # A's offer is open; staff open an extra slot and book A there instead.
    await hours.add_extra_opening(
        session=session, helpdesk_id=helpdesk_id, day=date(2026, 12, 10), opens_at=rome(2026, 12, 10, 9).time(),
        closes_at=rome(2026, 12, 10, 9, 30).time(), slot_minutes=30, places=1, actor="t",
    )  # fmt: skip
    await booking.book_slot(
        session=session, settings=settings, citizen_id=a.id, helpdesk_id=helpdesk_id,
        starts_at=rome(2026, 12, 10, 9), actor="staff", now=NOW,
    )  # fmt: skip
    assert await waitlist.open_entry(session=session, citizen_id=a.id) is None
    entry_b = await waitlist.open_entry(session=session, citizen_id=b.id)
    assert entry_b is not None
    assert entry_b.state == "offered"  # the place held for A went on to B
    assert entry_b.offered_slot_id == first_booking.slot_id


async def test_failed_move_leaves_the_session_truthful(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk_id, (first_booking, second_booking) = await _full_helpdesk(session, settings)
    with pytest.raises(SlotTaken):
        await booking.move_booking(
            session=session, settings=settings, booking_id=first_booking.id, helpdesk_id=helpdesk_id,
            starts_at=second_booking.starts_at, by=CancelledBy.CITIZEN, actor="c", now=NOW,
        )  # fmt: skip
    assert first_booking.state == "booked"
