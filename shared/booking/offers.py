"""Staff offer a citizen a place: an earlier one for an urgent citizen (SPEC section 4).

An offer is the waitlist's own mechanism (`shared.booking.waitlist`): a waitlist entry in
state `offered` whose place is held (counted in `slot.taken`) until `offer_expires_at`,
`waitlist_hold_minutes` after it was made. The citizen accepts or declines it on Telegram
with one tap (the waitlist's buttons and `waitlist.accept_offer` / `decline_offer`), and
the expiry job (`waitlist.expire_offers`) passes a lapsed one on. What makes it staff's:

- `offered_by` names who offered it (the waitlist's own offers leave it null);
- `replaces_booking_id`, when set, is the citizen's booking that accepting moves to the
  offered place (a move: the old booking cancelled, the new one linked to it). Declining
  or letting it lapse frees the held place and leaves that booking as it was. Without it
  the place becomes a booking of its own (e.g. proposed when a request is declined).

A citizen has at most one open waitlist entry (a partial unique index): one who waits is
offered the place on that entry; one with an open offer can't be offered another until
it is answered or lapses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.booking import availability, messages, places
from shared.booking import service as booking_service
from shared.booking.errors import (
    AlreadyBooked,
    BookingError,
    BookingNotFound,
    IllegalTransition,
    SlotNotOffered,
)
from shared.booking.models import (
    Booking,
    BookingState,
    WaitlistEntry,
    WaitlistState,
)
from shared.booking.schedule import SlotTime
from shared.citizens.models import Citizen
from shared.citizens.standing import Booked
from shared.settings import Settings

OPEN_STATES = (WaitlistState.WAITING.value, WaitlistState.OFFERED.value)
# Earlier places listed for a coordinator at once.
MAX_EARLIER_PLACES = 40


class OfferOpen(BookingError):
    """The citizen already has an open offer: it must be answered or lapse first."""

    code = "offer_open"


class NotUrgent(BookingError):
    """Earlier places are offered to urgent citizens only."""

    code = "not_urgent"


async def offer_place(
    *,
    session: AsyncSession,
    settings: Settings,
    citizen_id: int,
    helpdesk_id: int,
    starts_at: datetime,
    actor: str,
    now: datetime,
    replaces_booking_id: int | None = None,
) -> WaitlistEntry:
    """Hold a free place for a citizen for `waitlist_hold_minutes` and ask them on Telegram
    to accept or decline it (one tap); accepting moves `replaces_booking_id` there.

    Refused, with nothing written: a citizen who may not book (`NotAllowedToBook`), a
    booking to replace that isn't theirs (`BookingNotFound`) or no longer active
    (`IllegalTransition`), a citizen with a booking and none to replace (`AlreadyBooked`),
    the place the booking already has (`SlotNotOffered`), an open offer (`OfferOpen`), a
    place that can't be booked now or was just taken (the booking refusals).
    """
    standing = await booking_service.standing_to_book(
        session=session, settings=settings, citizen_id=citizen_id, now=now
    )
    citizen = await session.get(Citizen, citizen_id)  # read with the standing
    assert citizen is not None
    if replaces_booking_id is not None:
        replaced = await booking_service.get_booking(
            session=session, booking_id=replaces_booking_id, citizen_id=citizen_id
        )
        if replaced.state != BookingState.BOOKED.value:
            raise IllegalTransition(f"The booking is {replaced.state}, not booked.")
        if replaced.helpdesk_id == helpdesk_id and replaced.starts_at == starts_at:
            raise SlotNotOffered("That is the booking's own place.")
    elif isinstance(standing, Booked):
        raise AlreadyBooked("The citizen already has an active booking.")
    entry = await session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.citizen_id == citizen_id, WaitlistEntry.state.in_(OPEN_STATES)
        )
    )
    if entry is not None and entry.state == WaitlistState.OFFERED.value:
        raise OfferOpen("The citizen has an open offer.")
    offered = await availability.bookable_slot(
        session=session,
        settings=settings,
        helpdesk_id=helpdesk_id,
        starts_at=starts_at,
        now=now,
        urgent=citizen.urgent,
    )
    expires_at = now + timedelta(minutes=settings.waitlist_hold_minutes)
    try:
        # The hold and the entry together, or neither.
        async with session.begin_nested():
            slot_id = await places.take_place(
                session=session,
                slot=SlotTime(
                    offered.starts_at, offered.helpdesk_id, offered.ends_at, offered.capacity
                ),
            )
            if entry is None:
                entry = WaitlistEntry(
                    citizen_id=citizen_id,
                    helpdesk_id=helpdesk_id,
                    urgent=citizen.urgent,
                    created_at=now,
                )
                session.add(entry)
            entry.state = WaitlistState.OFFERED.value
            entry.offered_slot_id = slot_id
            entry.offer_expires_at = expires_at
            entry.offered_by = actor
            entry.replaces_booking_id = replaces_booking_id
            await session.flush()
    except IntegrityError:
        # Another offer for the same citizen, made at the same moment, won.
        raise OfferOpen("The citizen has an open offer.") from None
    await messages.notify_waitlist(
        session=session,
        citizen=citizen,
        entry_id=entry.id,
        slot_id=slot_id,
        kind=messages.MessageKind.PLACE_OFFER,
        now=now,
    )
    await audit.record(
        session=session,
        actor=actor,
        action="offer.make",
        object_type="waitlist_entry",
        object_id=str(entry.id),
        details={
            "citizen_id": citizen_id,
            "slot_id": slot_id,
            "replaces_booking_id": replaces_booking_id,
            "expires_at": expires_at.isoformat(),
        },
    )
    return entry


@dataclass(frozen=True, slots=True)
class EarlierPlaces:
    """What a coordinator sees to offer an urgent citizen an earlier place."""

    booking: Booking
    citizen: Citizen
    # Free places before the booking's, any helpdesk, earliest first.
    places: list[availability.FreeSlot]
    # The place held for the citizen, by staff or the waitlist, if the offer is open.
    offer: booking_service.HeldPlace | None


async def urgent_booking(*, session: AsyncSession, booking_id: int) -> tuple[Booking, Citizen]:
    """An active booking of an urgent citizen (else `BookingNotFound`, `IllegalTransition`,
    `NotUrgent`)."""
    booking = await booking_service.get_booking(session=session, booking_id=booking_id)
    citizen = await session.get(Citizen, booking.citizen_id)
    if citizen is None:  # a foreign key: erased with its bookings
        raise BookingNotFound(f"No booking {booking_id}.")
    if booking.state != BookingState.BOOKED.value:
        raise IllegalTransition(f"The booking is {booking.state}, not booked.")
    if not citizen.urgent:
        raise NotUrgent("The citizen is not urgent.")
    return booking, citizen


async def refused_booking(*, session: AsyncSession, booking_id: int) -> tuple[Booking, Citizen]:
    """A booking and its citizen, whatever their state (what a refusal page shows)."""
    booking = await booking_service.get_booking(session=session, booking_id=booking_id)
    citizen = await session.get(Citizen, booking.citizen_id)
    if citizen is None:
        raise BookingNotFound(f"No booking {booking_id}.")
    return booking, citizen


async def earlier_places(
    *, session: AsyncSession, settings: Settings, booking_id: int, now: datetime
) -> EarlierPlaces:
    """The free places earlier than an urgent citizen's booking, at any helpdesk, and the
    offer they have open, if any."""
    booking, citizen = await urgent_booking(session=session, booking_id=booking_id)
    free = await availability.list_free_slots(
        session=session, settings=settings, now=now, until=booking.starts_at, urgent=True
    )
    offer = await booking_service.held_place(session=session, citizen_id=citizen.id, now=now)
    return EarlierPlaces(booking, citizen, free[:MAX_EARLIER_PLACES], offer)


async def offer_earlier_place(
    *,
    session: AsyncSession,
    settings: Settings,
    booking_id: int,
    helpdesk_id: int,
    starts_at: datetime,
    actor: str,
    now: datetime,
) -> WaitlistEntry:
    """Offer an urgent citizen a place earlier than their booking; accepting moves it there."""
    booking, citizen = await urgent_booking(session=session, booking_id=booking_id)
    if starts_at >= booking.starts_at:
        raise SlotNotOffered("The place is not earlier than the booking.")
    return await offer_place(
        session=session,
        settings=settings,
        citizen_id=citizen.id,
        helpdesk_id=helpdesk_id,
        starts_at=starts_at,
        actor=actor,
        now=now,
        replaces_booking_id=booking.id,
    )
