"""Concurrent bookings never over-fill a slot nor give a citizen two bookings (both databases)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

from sqlalchemy import func, select

from shared.booking import service as booking
from shared.booking.errors import AlreadyBooked, BookingError, SlotTaken
from shared.booking.models import Booking, Slot
from shared.db import Database
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 12, 7, 8)
SLOT = rome(2026, 12, 9, 10)


async def _attempt(
    database: Database, settings: Settings, citizen_id: int, helpdesk_id: int, starts_at: datetime
) -> str:
    try:
        async with database.transaction() as session:
            await booking.book_slot(
                session=session, settings=settings, citizen_id=citizen_id,
                helpdesk_id=helpdesk_id, starts_at=starts_at, actor="race", now=NOW,
            )  # fmt: skip
    except BookingError as exc:
        return type(exc).__name__
    return "booked"


async def _race(
    database: Database, settings: Settings, contenders: int, places: int
) -> Counter[str]:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, places=places)
        citizens = [await make_citizen(session) for _ in range(contenders)]
    outcomes = Counter(
        await asyncio.gather(
            *(_attempt(database, settings, c.id, helpdesk.id, SLOT) for c in citizens)
        )
    )
    print(
        f"\n{contenders} contenders for {places} place(s) on {database.engine.dialect.name}: {dict(outcomes)}"
    )
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(Booking)) == places
        assert await session.scalar(select(Slot.taken)) == places
    return outcomes


async def test_200_contenders_for_one_place(database: Database, settings: Settings) -> None:
    outcomes = await _race(database, settings, contenders=200, places=1)
    assert outcomes == Counter({"booked": 1, SlotTaken.__name__: 199})


async def test_50_contenders_for_three_places(database: Database, settings: Settings) -> None:
    outcomes = await _race(database, settings, contenders=50, places=3)
    assert outcomes == Counter({"booked": 3, SlotTaken.__name__: 47})


async def test_same_citizen_racing_for_two_slots(database: Database, settings: Settings) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, places=5)
        citizen = await make_citizen(session)
    starts = [
        rome(2026, 12, 9, 9),
        rome(2026, 12, 9, 9, 30),
        rome(2026, 12, 10, 9),
        rome(2026, 12, 10, 11),
    ]
    rounds = 10
    for _ in range(rounds):
        outcomes = Counter(
            await asyncio.gather(
                *(_attempt(database, settings, citizen.id, helpdesk.id, s) for s in starts * 5)
            )
        )
        assert outcomes["booked"] == 1
        assert outcomes[AlreadyBooked.__name__] == len(starts) * 5 - 1
        async with database.transaction() as session:
            active = await booking.active_booking(session=session, citizen_id=citizen.id)
            assert active is not None
            await booking.cancel_booking(
                session=session, settings=settings, booking_id=active.id,
                by=booking.CancelledBy.CITIZEN, actor="race", now=NOW,
            )  # fmt: skip
    print(
        f"\nsame citizen, {len(starts) * 5} parallel attempts x {rounds} rounds: 1 booking each round"
    )
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(select(func.sum(Slot.taken))) == 0
