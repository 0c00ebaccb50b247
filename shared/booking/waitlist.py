"""The waitlist: for when nothing is free within the horizon (SPEC section 4).

Its offers are also how staff offer a citizen a place (`shared.booking.offers`): an
entry with `offered_by` set, accepted, declined and lapsing as the waitlist's own. One
with `replaces_booking_id` moves that booking when accepted (`accept_offer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.booking import availability, handoff, hours, messages, moderation, places
from shared.booking import service as booking_service
from shared.booking.errors import (
    AlreadyBooked,
    AlreadyWaiting,
    NoOffer,
    OfferExpired,
    SlotsAvailable,
)
from shared.booking.models import (
    Booking,
    BookingState,
    Helpdesk,
    Slot,
    WaitlistEntry,
    WaitlistState,
)
from shared.cases import service as cases
from shared.citizens.models import Citizen
from shared.citizens.standing import Booked, Offered, Waiting
from shared.db import utcnow
from shared.outbox import service as outbox
from shared.settings import Settings

OPEN_STATES = (WaitlistState.WAITING.value, WaitlistState.OFFERED.value)


async def open_entry(*, session: AsyncSession, citizen_id: int) -> WaitlistEntry | None:
    """The citizen's waiting or offered entry, if any."""
    return await session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.citizen_id == citizen_id, WaitlistEntry.state.in_(OPEN_STATES)
        )
    )


@dataclass(frozen=True, slots=True)
class OpenEntry:
    """The citizen's waiting or offered entry and, while its offer is open, the place held."""

    entry: WaitlistEntry
    held: booking_service.HeldPlace | None


async def open_entry_and_offer(
    *, session: AsyncSession, citizen_id: int, now: datetime | None = None
) -> OpenEntry | None:
    """`open_entry` and `booking.held_place` in one query (what the bot shows a citizen)."""
    now = now or utcnow()
    row = (
        await session.execute(
            select(WaitlistEntry, Slot, Helpdesk)
            .outerjoin(Slot, Slot.id == WaitlistEntry.offered_slot_id)
            .outerjoin(Helpdesk, Helpdesk.id == Slot.helpdesk_id)
            .where(WaitlistEntry.citizen_id == citizen_id, WaitlistEntry.state.in_(OPEN_STATES))
        )
    ).first()
    if row is None:
        return None
    entry, slot, helpdesk = row
    expires_at = entry.offer_expires_at
    if (
        entry.state != WaitlistState.OFFERED.value
        or expires_at is None
        or expires_at <= now
        or slot is None
        or helpdesk is None
    ):
        return OpenEntry(entry, None)
    held = booking_service.HeldPlace(entry.id, helpdesk, slot.starts_at, slot.ends_at, expires_at)
    return OpenEntry(entry, held)


async def join_waitlist(
    *,
    session: AsyncSession,
    settings: Settings,
    citizen_id: int,
    helpdesk_id: int | None = None,
    now: datetime | None = None,
) -> WaitlistEntry:
    """Put a citizen on the waitlist; only when no slot is free within the horizon.

    Only a citizen whose standing allows booking (`booking.standing_to_book`), who holds
    no booking and doesn't wait already.
    """
    now = now or utcnow()
    standing = await booking_service.standing_to_book(
        session=session, settings=settings, citizen_id=citizen_id, now=now
    )
    citizen = await session.get(Citizen, citizen_id)  # read with the standing
    assert citizen is not None
    if helpdesk_id is not None:
        await hours.get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    if isinstance(standing, Booked):
        raise AlreadyBooked("You already have an active booking.")
    if isinstance(standing, Offered | Waiting):
        raise AlreadyWaiting("You are already on the waitlist.")
    # Places kept for urgent citizens are not free for the others: they may wait.
    free = await availability.list_free_slots(
        session=session, settings=settings, now=now, helpdesk_id=helpdesk_id, urgent=citizen.urgent
    )
    if free:
        raise SlotsAvailable("There are free slots: book one of them.")
    entry = WaitlistEntry(
        citizen_id=citizen_id,
        helpdesk_id=helpdesk_id,
        urgent=citizen.urgent,
        state=WaitlistState.WAITING.value,
        created_at=now,
    )
    session.add(entry)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise AlreadyWaiting("You are already on the waitlist.") from None
    await audit.record(
        session=session,
        actor=f"citizen:{citizen_id}",
        action="waitlist.join",
        object_type="waitlist_entry",
        object_id=str(entry.id),
    )
    return entry


async def leave_waitlist(
    *, session: AsyncSession, settings: Settings, citizen_id: int, now: datetime | None = None
) -> None:
    """Take a citizen off the waitlist, passing on any place held for them."""
    await handoff.withdraw(
        session=session, settings=settings, citizen_id=citizen_id, now=now or utcnow()
    )


async def _offered_entry(
    session: AsyncSession, entry_id: int, citizen_id: int, now: datetime
) -> WaitlistEntry:
    entry = await session.get(WaitlistEntry, entry_id)
    if (
        entry is None
        or entry.citizen_id != citizen_id
        or entry.state != WaitlistState.OFFERED.value
        or entry.offered_slot_id is None
        or entry.offer_expires_at is None
    ):
        raise NoOffer("There is no open offer.")
    if entry.offer_expires_at <= now:
        raise OfferExpired("The offer has expired.")
    return entry


async def _claim_offer(
    session: AsyncSession, entry: WaitlistEntry, to_state: WaitlistState
) -> None:
    """Close an offer once, even if the expiry job looks at it at the same moment."""
    result = await session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry.id, WaitlistEntry.state == WaitlistState.OFFERED.value)
        .values(state=to_state.value)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NoOffer("There is no open offer.")
    await session.refresh(entry)


async def accept_offer(
    *,
    session: AsyncSession,
    settings: Settings,
    entry_id: int,
    citizen_id: int,
    now: datetime | None = None,
) -> Booking:
    """Turn the place held for a citizen into their booking.

    A staff offer that replaces a booking still active moves it there: the old booking
    is cancelled ("moved", its place passed on) and the new one points back to it. At a
    moderated helpdesk a staff offer accepted is confirmed (the staff chose the place); a
    place the waitlist offered is a request, as the citizen's own booking would be.
    """
    now = now or utcnow()
    # Ruled out since the offer was made (a coordinator's decision): not theirs to take.
    await booking_service.standing_to_book(
        session=session, settings=settings, citizen_id=citizen_id, now=now
    )
    entry = await _offered_entry(session, entry_id, citizen_id, now)
    slot = await session.get(Slot, entry.offered_slot_id)
    assert slot is not None  # a foreign key, and slots are never deleted
    replaced = (
        await session.get(Booking, entry.replaces_booking_id)
        if entry.replaces_booking_id is not None
        else None
    )
    if replaced is not None and replaced.state != BookingState.BOOKED.value:
        replaced = None  # cancelled meanwhile: the place becomes a booking of its own
    actor = f"citizen:{citizen_id}"
    # All or nothing: an offer must not end up accepted without its booking.
    async with session.begin_nested():
        await _claim_offer(session, entry, WaitlistState.ACCEPTED)
        if replaced is not None:
            await booking_service.cancel_booking(
                session=session,
                settings=settings,
                booking_id=replaced.id,
                by=booking_service.CancelledBy.CITIZEN,
                actor=actor,
                reason="moved",
                citizen_id=citizen_id,
                now=now,
                notify=False,
            )
        booking = await places.insert_booking(
            session=session,
            citizen_id=citizen_id,
            helpdesk_id=slot.helpdesk_id,
            slot_id=slot.id,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            actor=actor,
            moved_from_id=replaced.id if replaced is not None else None,
        )
        helpdesk = await session.get(Helpdesk, slot.helpdesk_id)
        assert helpdesk is not None  # a foreign key
        # A place the staff offered is their choice; one the waitlist offered by itself,
        # the citizen's, as if they had booked it.
        decided = moderation.moderation_of_new_booking(
            helpdesk=helpdesk,
            by_citizen=entry.offered_by is None,
            actor=entry.offered_by or actor,
            settings=settings,
            now=now,
            starts_at=slot.starts_at,
        )
        if decided:
            for column, value in decided.items():
                setattr(booking, column, value)
            await session.flush()
    entry.booking_id = booking.id
    citizen = await session.get(Citizen, citizen_id)
    assert citizen is not None
    if not moderation.is_pending(booking):  # a request's reminders wait for its confirmation
        await messages.queue_reminders(
            session=session, settings=settings, citizen=citizen, booking=booking, now=now
        )
    await outbox.cancel_pending(session=session, subject=f"waitlist:{entry.id}")
    await audit.record(
        session=session,
        actor=actor,
        action="waitlist.accept",
        object_type="booking",
        object_id=str(booking.id),
        details={
            "entry_id": entry.id,
            **({"moved_from": replaced.id} if replaced is not None else {}),
        },
    )
    await cases.on_booking_changed(session=session, booking=booking, now=now)
    return booking


async def decline_offer(
    *,
    session: AsyncSession,
    settings: Settings,
    entry_id: int,
    citizen_id: int,
    now: datetime | None = None,
) -> None:
    """The citizen doesn't want the offered place: it goes to the next in line."""
    now = now or utcnow()
    entry = await _offered_entry(session, entry_id, citizen_id, now)
    slot_id = entry.offered_slot_id
    assert slot_id is not None
    await _claim_offer(session, entry, WaitlistState.DECLINED)
    await handoff.pass_on_place(session=session, settings=settings, slot_id=slot_id, now=now)


async def expire_offers(
    *, session: AsyncSession, settings: Settings, now: datetime | None = None
) -> int:
    """Close unanswered offers whose hold has lapsed and pass each place to the next citizen."""
    now = now or utcnow()
    lapsed = (
        await session.scalars(
            select(WaitlistEntry)
            .where(
                WaitlistEntry.state == WaitlistState.OFFERED.value,
                WaitlistEntry.offer_expires_at <= now,
            )
            .order_by(WaitlistEntry.offer_expires_at)
        )
    ).all()
    expired = 0
    for entry in lapsed:
        slot_id = entry.offered_slot_id
        try:
            await _claim_offer(session, entry, WaitlistState.EXPIRED)
        except NoOffer:
            continue  # answered in the meantime
        expired += 1
        citizen = await session.get(Citizen, entry.citizen_id)
        if citizen is not None and slot_id is not None:
            await messages.notify_waitlist(
                session=session,
                citizen=citizen,
                entry_id=entry.id,
                slot_id=slot_id,
                kind=(
                    messages.MessageKind.PLACE_OFFER_EXPIRED
                    if entry.offered_by is not None
                    else messages.MessageKind.WAITLIST_OFFER_EXPIRED
                ),
                now=now,
            )
        if slot_id is not None:
            await handoff.pass_on_place(
                session=session, settings=settings, slot_id=slot_id, now=now
            )
    return expired
