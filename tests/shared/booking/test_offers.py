"""Staff offer a citizen a place (an earlier one for an urgent citizen): held, accepted as a
move, declined or lapsed leaving the booking as it was; the race accept vs lapse."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import offers, waitlist
from shared.booking import service as booking
from shared.booking.errors import (
    AlreadyBooked,
    BookingError,
    IllegalTransition,
    NoOffer,
    OfferExpired,
    SlotNotOffered,
    SlotTaken,
)
from shared.booking.models import Booking, Slot, WaitlistEntry
from shared.db import Database
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 12, 7, 8)  # a Monday
LATER = rome(2026, 12, 11, 10)  # Friday
EARLIER = rome(2026, 12, 9, 9)  # Wednesday


async def _urgent_booked(
    session: AsyncSession, settings: Settings, name: str = "Sportello Comune"
) -> tuple[int, int, Booking]:
    """An urgent citizen booked on Friday at a helpdesk of one place per slot: (helpdesk
    id, citizen id, booking)."""
    helpdesk = await make_helpdesk(session, name=name)
    citizen = await make_citizen(session, urgent=True)
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=LATER, actor="test", now=NOW,
    )  # fmt: skip
    return helpdesk.id, citizen.id, made


async def _kinds(session: AsyncSession, citizen_id: int) -> list[str]:
    query = select(OutboxMessage.kind).where(OutboxMessage.citizen_id == citizen_id)
    return list((await session.scalars(query.order_by(OutboxMessage.id))).all())


async def _taken(session: AsyncSession, helpdesk_id: int, starts_at: object) -> int:
    found = await session.scalar(
        select(Slot.taken).where(Slot.helpdesk_id == helpdesk_id, Slot.starts_at == starts_at)
    )
    return int(found or 0)


async def test_an_earlier_place_is_held_and_accepting_moves_the_booking(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk_id, citizen_id, made = await _urgent_booked(session, settings)
    places = await offers.earlier_places(
        session=session, settings=settings, booking_id=made.id, now=NOW
    )
    assert places.places and all(p.starts_at < LATER for p in places.places)
    assert places.offer is None
    entry = await offers.offer_earlier_place(
        session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk_id,
        starts_at=EARLIER, actor="staff:coord", now=NOW,
    )  # fmt: skip
    assert (entry.state, entry.offered_by, entry.replaces_booking_id) == (
        "offered", "staff:coord", made.id,
    )  # fmt: skip
    assert entry.offer_expires_at == NOW + timedelta(minutes=settings.waitlist_hold_minutes)
    # The place is held: nobody else can book it.
    assert await _taken(session, helpdesk_id, EARLIER) == 1
    other = await make_citizen(session)
    with pytest.raises(SlotTaken):
        await booking.book_slot(
            session=session, settings=settings, citizen_id=other.id, helpdesk_id=helpdesk_id,
            starts_at=EARLIER, actor="test", now=NOW,
        )  # fmt: skip
    assert "place_offer" in await _kinds(session, citizen_id)
    shown = await offers.earlier_places(
        session=session, settings=settings, booking_id=made.id, now=NOW
    )
    assert shown.offer is not None and shown.offer.starts_at == EARLIER

    moved = await waitlist.accept_offer(
        session=session, settings=settings, entry_id=entry.id, citizen_id=citizen_id,
        now=NOW + timedelta(minutes=5),
    )  # fmt: skip
    await session.refresh(made)
    assert (made.state, made.cancel_reason) == ("cancelled_by_citizen", "moved")
    assert (moved.state, moved.starts_at, moved.moved_from_id) == ("booked", EARLIER, made.id)
    # The held place became the booking; the later one is free again.
    assert await _taken(session, helpdesk_id, EARLIER) == 1
    assert await _taken(session, helpdesk_id, LATER) == 0
    await session.refresh(entry)
    assert (entry.state, entry.booking_id) == ("accepted", moved.id)


@pytest.mark.parametrize("answer", ["decline", "lapse"])
async def test_declining_or_lapsing_frees_the_place_and_keeps_the_booking(
    session: AsyncSession, settings: Settings, answer: str
) -> None:
    helpdesk_id, citizen_id, made = await _urgent_booked(session, settings)
    entry = await offers.offer_earlier_place(
        session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk_id,
        starts_at=EARLIER, actor="staff:coord", now=NOW,
    )  # fmt: skip
    hold = timedelta(minutes=settings.waitlist_hold_minutes)
    if answer == "decline":
        await waitlist.decline_offer(
            session=session, settings=settings, entry_id=entry.id, citizen_id=citizen_id, now=NOW
        )
    else:
        assert await waitlist.expire_offers(session=session, settings=settings, now=NOW + hold) == 1
        assert "place_offer_expired" in await _kinds(session, citizen_id)
        assert "waitlist_offer_expired" not in await _kinds(session, citizen_id)
    await session.refresh(entry)
    assert entry.state == ("declined" if answer == "decline" else "expired")
    await session.refresh(made)
    assert (made.state, made.starts_at) == ("booked", LATER)
    assert await _taken(session, helpdesk_id, EARLIER) == 0
    with pytest.raises(NoOffer):
        await waitlist.accept_offer(
            session=session, settings=settings, entry_id=entry.id, citizen_id=citizen_id,
            now=NOW + hold,
        )  # fmt: skip
    # Answered: another offer may be made.
    again = await offers.offer_earlier_place(
        session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk_id,
        starts_at=EARLIER, actor="staff:coord", now=NOW + hold,
    )  # fmt: skip
    assert again.id != entry.id


async def test_refusals_write_nothing(session: AsyncSession, settings: Settings) -> None:
    helpdesk_id, citizen_id, made = await _urgent_booked(session, settings)
    calm = await make_citizen(session)
    calm_booking = await booking.book_slot(
        session=session, settings=settings, citizen_id=calm.id, helpdesk_id=helpdesk_id,
        starts_at=rome(2026, 12, 11, 11), actor="test", now=NOW,
    )  # fmt: skip

    async def offer(booking_id: int, starts_at: object = EARLIER) -> WaitlistEntry:
        return await offers.offer_earlier_place(
            session=session, settings=settings, booking_id=booking_id, helpdesk_id=helpdesk_id,
            starts_at=starts_at, actor="staff:coord", now=NOW,  # type: ignore[arg-type]
        )  # fmt: skip

    with pytest.raises(offers.NotUrgent):
        await offer(calm_booking.id)
    with pytest.raises(SlotNotOffered):  # not earlier
        await offer(made.id, rome(2026, 12, 11, 11, 30))
    with pytest.raises(SlotNotOffered):  # not one of the helpdesk's times
        await offer(made.id, rome(2026, 12, 9, 9, 10))
    first = await offer(made.id)
    with pytest.raises(offers.OfferOpen):
        await offer(made.id, rome(2026, 12, 9, 10))
    # The generic offer: a citizen with a booking needs one to replace.
    with pytest.raises(AlreadyBooked):
        await offers.offer_place(
            session=session, settings=settings, citizen_id=calm.id, helpdesk_id=helpdesk_id,
            starts_at=rome(2026, 12, 10, 9), actor="staff:coord", now=NOW,
        )  # fmt: skip
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=calm_booking.id,
        by=booking.CancelledBy.STAFF, actor="staff", now=NOW,
    )  # fmt: skip
    with pytest.raises(IllegalTransition):
        await offers.offer_place(
            session=session, settings=settings, citizen_id=calm.id, helpdesk_id=helpdesk_id,
            starts_at=rome(2026, 12, 10, 9), actor="staff:coord", now=NOW,
            replaces_booking_id=calm_booking.id,
        )  # fmt: skip
    entries = (await session.scalars(select(WaitlistEntry))).all()
    assert [e.id for e in entries] == [first.id]
    assert await _taken(session, helpdesk_id, rome(2026, 12, 9, 10)) == 0
    assert citizen_id


async def test_a_proposed_place_without_a_booking_becomes_one(
    session: AsyncSession, settings: Settings
) -> None:
    """What a declined request's coordinator proposes: a place of its own, not a move."""
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session)
    entry = await offers.offer_place(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=EARLIER, actor="staff:coord", now=NOW,
    )  # fmt: skip
    made = await waitlist.accept_offer(
        session=session, settings=settings, entry_id=entry.id, citizen_id=citizen.id, now=NOW
    )
    assert (made.starts_at, made.moved_from_id, made.state) == (EARLIER, None, "booked")


async def _answer(
    database: Database, settings: Settings, entry_id: int, citizen_id: int, how: str
) -> str:
    at = NOW + timedelta(minutes=settings.waitlist_hold_minutes) - timedelta(seconds=1)
    try:
        async with database.transaction() as session:
            if how == "accept":
                await waitlist.accept_offer(
                    session=session, settings=settings, entry_id=entry_id,
                    citizen_id=citizen_id, now=at,
                )  # fmt: skip
            else:
                # The expiry job's clock runs a little ahead of the citizen's tap.
                expired = await waitlist.expire_offers(
                    session=session, settings=settings, now=at + timedelta(seconds=2)
                )
                return f"expired:{expired}"
    except (NoOffer, OfferExpired) as exc:
        return type(exc).__name__
    except BookingError as exc:  # pragma: no cover - would be a bug
        return f"error:{exc.code}"
    return "accepted"


async def test_accept_racing_the_lapse_has_one_outcome(
    database: Database, settings: Settings
) -> None:
    for round_ in range(8):
        async with database.transaction() as session:
            helpdesk_id, citizen_id, made = await _urgent_booked(
                session, settings, name=f"Sportello {round_}"
            )
            entry = await offers.offer_earlier_place(
                session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk_id,
                starts_at=EARLIER, actor="staff:coord", now=NOW,
            )  # fmt: skip
            entry_id, booking_id = entry.id, made.id
        outcomes = await asyncio.gather(
            _answer(database, settings, entry_id, citizen_id, "accept"),
            _answer(database, settings, entry_id, citizen_id, "expire"),
        )
        async with database.transaction(read_only=True) as session:
            entry_state = await session.scalar(
                select(WaitlistEntry.state).where(WaitlistEntry.id == entry_id)
            )
            active = (
                await session.scalars(
                    select(Booking).where(
                        Booking.citizen_id == citizen_id, Booking.state == "booked"
                    )
                )
            ).all()
            held = await session.scalar(
                select(func.sum(Slot.taken)).where(Slot.helpdesk_id == helpdesk_id)
            )
        assert len(active) == 1 and held == 1  # one booking, one place: never both or none
        if entry_state == "accepted":
            assert outcomes[0] == "accepted" and outcomes[1] == "expired:0"
            assert active[0].starts_at == EARLIER and active[0].moved_from_id == booking_id
        else:
            assert entry_state == "expired"
            assert outcomes[0] in ("NoOffer", "OfferExpired") and outcomes[1] == "expired:1"
            assert active[0].id == booking_id
