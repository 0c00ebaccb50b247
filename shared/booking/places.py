"""The places of a slot: taken, given back and turned into bookings, race-free on both databases.

The `slot` row is created at the first booking of a slot. Taking a place is one
conditional upsert (`INSERT ... ON CONFLICT DO UPDATE ... WHERE taken < capacity`), so
the database itself decides who gets the last place; `taken <= capacity` is also a
CHECK constraint, and the one-active-booking-per-citizen rule a partial unique index.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shared.booking.errors import AlreadyBooked, SlotTaken
from shared.booking.models import REPEATED_NO_SHOWS, Booking, BookingState, Slot
from shared.booking.schedule import SlotTime
from shared.citizens.models import Citizen
from shared.db import upsert_insert

# No look-alikes (0/O/Q, 1/I/L, 2/Z, 5/S, 6/G, 8/B): easy to read out on the phone.
CODE_ALPHABET = "ACDEFHJKMNPRTUVWXY3479"
CODE_LENGTH = 6


def new_booking_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


async def _unused_code(session: AsyncSession) -> str:
    while True:
        code = new_booking_code()
        if await session.scalar(select(Booking.id).where(Booking.code == code)) is None:
            return code


async def take_place(*, session: AsyncSession, slot: SlotTime) -> int:
    """Take one place of `slot` and return the slot row's id, or raise `SlotTaken`."""
    values = upsert_insert(session, Slot).values(
        helpdesk_id=slot.helpdesk_id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        capacity=slot.capacity,
        taken=1,
    )
    upsert = values.on_conflict_do_update(
        index_elements=[Slot.helpdesk_id, Slot.starts_at],
        set_={"taken": Slot.taken + 1, "capacity": values.excluded.capacity},
        where=Slot.taken < values.excluded.capacity,
    ).returning(Slot.id)
    slot_id = (await session.execute(upsert)).scalar_one_or_none()
    if slot_id is None:
        raise SlotTaken("That place was just taken.")
    return int(slot_id)


async def release_place(*, session: AsyncSession, slot_id: int) -> None:
    """Give one place of the slot back."""
    await session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.taken > 0).values(taken=Slot.taken - 1)
    )


async def insert_booking(
    *,
    session: AsyncSession,
    citizen_id: int,
    helpdesk_id: int,
    slot_id: int,
    starts_at: datetime,
    ends_at: datetime,
    actor: str,
    moved_from_id: int | None = None,
    code: str | None = None,
) -> Booking:
    """Turn a place already taken (or held) into an active booking.

    `code`: a new booking code not checked yet (the caller retries in a savepoint if it
    clashes: `AlreadyBooked` is raised then too); by default one checked unused.
    """
    booking = Booking(
        code=code if code is not None else await _unused_code(session),
        citizen_id=citizen_id,
        helpdesk_id=helpdesk_id,
        slot_id=slot_id,
        starts_at=starts_at,
        ends_at=ends_at,
        state=BookingState.BOOKED.value,
        created_by=actor,
        moved_from_id=moved_from_id,
        # Read by the INSERT itself: no statement more, and the citizen's value of now.
        citizen_urgent=select(Citizen.urgent).where(Citizen.id == citizen_id).scalar_subquery(),
        citizen_repeated_no_shows=_repeated_no_shows(citizen_id),
    )
    session.add(booking)
    try:
        await session.flush()
    except IntegrityError:
        # The one-active-booking index (or, with a `code` not checked, the code's).
        raise AlreadyBooked("You already have an active booking.") from None
    return booking


async def follow_urgency(*, session: AsyncSession, citizen_id: int, urgent: bool) -> None:
    """Keep the citizen's bookings' `citizen_urgent` equal to their new `urgent` (the one
    other place that writes it is `insert_booking`). One statement; none of the bookings
    is loaded."""
    await session.execute(
        update(Booking)
        .where(Booking.citizen_id == citizen_id, Booking.citizen_urgent != urgent)
        .values(citizen_urgent=urgent)
    )


def _repeated_no_shows(citizen_id: int) -> Any:
    """Whether the citizen has missed `REPEATED_NO_SHOWS` appointments or more, as a
    subquery (the partial no-show index `ix_booking_no_show_citizen`)."""
    missed = aliased(Booking, name="missed")
    return (
        select(func.count() >= REPEATED_NO_SHOWS)
        .select_from(missed)
        .where(missed.citizen_id == citizen_id, missed.state == BookingState.NO_SHOW.value)
        .scalar_subquery()
    )


async def follow_no_shows(*, session: AsyncSession, citizen_id: int) -> None:
    """After a no-show: mark every booking of the citizen as a repeated no-show's once they
    have missed `REPEATED_NO_SHOWS` appointments (the one other place that writes it is
    `insert_booking`). One statement; none of the bookings is loaded."""
    await session.execute(
        update(Booking)
        .where(
            Booking.citizen_id == citizen_id,
            Booking.citizen_repeated_no_shows.is_(False),
            _repeated_no_shows(citizen_id),
        )
        .values(citizen_repeated_no_shows=True)
        .execution_options(synchronize_session=False)
    )


async def book_place(
    *, session: AsyncSession, citizen_id: int, slot: SlotTime, actor: str, moved_from_id: int | None
) -> Booking:
    """Take a place and book it in one savepoint: either both happen or neither.

    The booking code is not looked up first: the unique index catches a clash (one in a
    hundred million), and the savepoint lets it be tried again with another code.
    """
    for _ in range(CODE_ATTEMPTS):
        code = new_booking_code()
        try:
            async with session.begin_nested():
                slot_id = await take_place(session=session, slot=slot)
                return await insert_booking(
                    session=session,
                    citizen_id=citizen_id,
                    helpdesk_id=slot.helpdesk_id,
                    slot_id=slot_id,
                    starts_at=slot.starts_at,
                    ends_at=slot.ends_at,
                    actor=actor,
                    moved_from_id=moved_from_id,
                    code=code,
                )
        except AlreadyBooked:
            if await session.scalar(select(Booking.id).where(Booking.code == code)) is None:
                raise
    raise RuntimeError(f"no unused booking code in {CODE_ATTEMPTS} attempts")


# Tries of a new code after a clash: a second clash in a row is already astronomically rare.
CODE_ATTEMPTS = 5
