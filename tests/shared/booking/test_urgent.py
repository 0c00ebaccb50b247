"""Places kept for urgent citizens until the day before (urgent_places_per_day)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashboard.slot_picker import pick_slot
from shared.booking import availability, hours, waitlist
from shared.booking import service as booking
from shared.booking.availability import FreeSlot, first_kept_day, kept_places
from shared.booking.errors import BookingError, SlotTaken
from shared.booking.models import Booking
from shared.db import Database
from shared.i18n import Translator
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 12, 7, 8)  # Monday
WEDNESDAY = date(2026, 12, 9)
NINE, HALF_PAST, TEN = rome(2026, 12, 9, 9), rome(2026, 12, 9, 9, 30), rome(2026, 12, 9, 10)


def _slot(taken: int, capacity: int = 1) -> FreeSlot:
    return FreeSlot(1, NINE, HALF_PAST, capacity, taken)


# --- the rule, pure ------------------------------------------------------------------------


def test_a_day_keeps_the_setting_minus_the_urgent_bookings_never_more_than_is_free() -> None:
    free_three = [_slot(0), _slot(0), _slot(0, capacity=2), _slot(1)]
    assert kept_places(slots=free_three, urgent_booked=0, per_day=2) == (4, 2)
    assert kept_places(slots=free_three, urgent_booked=1, per_day=2) == (4, 1)
    assert kept_places(slots=free_three, urgent_booked=5, per_day=2) == (4, 0)
    assert kept_places(slots=[_slot(1), _slot(0)], urgent_booked=0, per_day=3) == (1, 1)
    assert kept_places(slots=[_slot(1)], urgent_booked=0, per_day=3) == (0, 0)


def test_places_are_kept_until_midnight_of_the_day_before(settings: Settings) -> None:
    keeping = settings.model_copy(update={"urgent_places_per_day": 1})
    assert first_kept_day(settings, NOW) is None  # the default keeps none
    assert first_kept_day(keeping, NOW) == WEDNESDAY
    assert first_kept_day(keeping, rome(2026, 12, 7, 23, 59)) == WEDNESDAY
    # From 00:00 of Tuesday, Wednesday's places are anyone's.
    assert first_kept_day(keeping, rome(2026, 12, 8)) == date(2026, 12, 10)
    # In the program's time zone: 23:30 UTC on Monday is already Tuesday in Rome.
    assert first_kept_day(keeping, datetime.fromisoformat("2026-12-07T23:30:00+00:00")) == date(
        2026, 12, 10
    )


# --- through the booking service -----------------------------------------------------------


@pytest.fixture
def keeping(settings: Settings) -> Settings:
    return settings.model_copy(update={"urgent_places_per_day": 1})


async def _wednesday_helpdesk(
    session: AsyncSession, places: int = 1, name: str = "Sportello"
) -> int:
    """Open only on Wednesday 9 December, 09:00-10:30: three slots of `places` places."""
    helpdesk = await make_helpdesk(session, weekdays=(), name=name)
    await hours.add_extra_opening(
        session=session, helpdesk_id=helpdesk.id, day=WEDNESDAY, opens_at=NINE.time(),
        closes_at=rome(2026, 12, 9, 10, 30).time(), slot_minutes=30, places=places, actor="t",
    )  # fmt: skip
    return helpdesk.id


async def _book(
    session: AsyncSession, settings: Settings, citizen_id: int, helpdesk_id: int,
    starts_at: datetime, now: datetime = NOW,
) -> Booking:  # fmt: skip
    return await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen_id, helpdesk_id=helpdesk_id,
        starts_at=starts_at, actor="staff:op", now=now,
    )  # fmt: skip


async def _free(session: AsyncSession, settings: Settings, urgent: bool | None) -> list[datetime]:
    found = await availability.list_free_slots(
        session=session, settings=settings, now=NOW, urgent=urgent
    )
    return [s.starts_at for s in found]


async def test_the_kept_place_is_neither_shown_nor_booked_by_a_citizen_not_urgent(
    session: AsyncSession, keeping: Settings
) -> None:
    helpdesk_id = await _wednesday_helpdesk(session)
    a, b, c = [await make_citizen(session) for _ in range(3)]
    await _book(session, keeping, a.id, helpdesk_id, NINE)
    await _book(session, keeping, b.id, helpdesk_id, HALF_PAST)
    # One place left, and it is kept: hidden from the others, refused if forged.
    assert await _free(session, keeping, urgent=False) == []
    assert await _free(session, keeping, urgent=True) == [TEN]
    assert await _free(session, keeping, urgent=None) == [TEN]
    with pytest.raises(SlotTaken):
        await _book(session, keeping, c.id, helpdesk_id, TEN)
    assert await session.scalar(select(func.count()).select_from(Booking)) == 2
    # Nothing is free for them: they may wait for a place.
    entry = await waitlist.join_waitlist(
        session=session, settings=keeping, citizen_id=c.id, now=NOW
    )
    assert entry.state == "waiting"
    urgent = await make_citizen(session, urgent=True)
    assert (await _book(session, keeping, urgent.id, helpdesk_id, TEN)).state == "booked"


async def test_urgent_bookings_use_up_the_kept_places(
    session: AsyncSession, keeping: Settings
) -> None:
    helpdesk_id = await _wednesday_helpdesk(session)
    urgent = await make_citizen(session, urgent=True)
    await _book(session, keeping, urgent.id, helpdesk_id, NINE)
    # The day kept one place and an urgent citizen took it: the two left are anyone's.
    assert await _free(session, keeping, urgent=False) == [HALF_PAST, TEN]
    for starts_at in (HALF_PAST, TEN):
        citizen = await make_citizen(session)
        await _book(session, keeping, citizen.id, helpdesk_id, starts_at)


async def test_from_the_day_before_anyone_may_take_the_kept_places(
    session: AsyncSession, keeping: Settings
) -> None:
    helpdesk_id = await _wednesday_helpdesk(session)
    a, b, c = [await make_citizen(session) for _ in range(3)]
    await _book(session, keeping, a.id, helpdesk_id, NINE)
    await _book(session, keeping, b.id, helpdesk_id, HALF_PAST)
    tuesday = rome(2026, 12, 8)
    with pytest.raises(SlotTaken):
        await _book(session, keeping, c.id, helpdesk_id, TEN, now=tuesday - timedelta(minutes=1))
    free = await availability.list_free_slots(
        session=session, settings=keeping, now=tuesday, urgent=False
    )
    assert [s.starts_at for s in free] == [TEN]
    assert (await _book(session, keeping, c.id, helpdesk_id, TEN, now=tuesday)).state == "booked"


async def test_a_move_by_a_citizen_not_urgent_is_refused_the_kept_place(
    session: AsyncSession, keeping: Settings
) -> None:
    helpdesk_id = await _wednesday_helpdesk(session)
    a, b = await make_citizen(session), await make_citizen(session)
    await _book(session, keeping, a.id, helpdesk_id, NINE)
    moved = await _book(session, keeping, b.id, helpdesk_id, HALF_PAST)
    # B moves within the day: their own place is freed first, so one stays unkept.
    made = await booking.move_booking(
        session=session, settings=keeping, booking_id=moved.id, helpdesk_id=helpdesk_id,
        starts_at=TEN, by=booking.CancelledBy.CITIZEN, actor="c", citizen_id=b.id, now=NOW,
    )  # fmt: skip
    assert made.starts_at == TEN


async def _attempt(database: Database, settings: Settings, citizen_id: int, helpdesk_id: int, starts_at: datetime) -> str:  # fmt: skip
    try:
        async with database.transaction() as session:
            await _book(session, settings, citizen_id, helpdesk_id, starts_at)
    except BookingError as exc:
        return type(exc).__name__
    return "booked"


async def test_racing_for_the_last_unkept_place_keeps_the_kept_one(
    database: Database, keeping: Settings
) -> None:
    """Three citizens not urgent race for a day of three places, one kept: two get one."""
    for round_ in range(5):
        async with database.transaction() as session:
            helpdesk_id = await _wednesday_helpdesk(session, name=f"Sportello {round_}")
            citizens = [await make_citizen(session) for _ in range(3)]
        outcomes = Counter(
            await asyncio.gather(
                *(
                    _attempt(database, keeping, c.id, helpdesk_id, at)
                    for c, at in zip(citizens, (NINE, HALF_PAST, TEN), strict=True)
                )
            )
        )
        assert outcomes == Counter({"booked": 2, SlotTaken.__name__: 1})
        async with database.transaction(read_only=True) as session:
            booked = await session.scalar(
                select(func.count()).select_from(Booking).where(Booking.helpdesk_id == helpdesk_id)
            )
        assert booked == 2


async def test_the_staff_pickers_offer_a_kept_place_only_to_an_urgent_citizen(
    session: AsyncSession, keeping: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the staff see to book (intake, plan review) follows the citizen's urgency, as
    `book_slot` will: a kept place is not offered to someone it would be refused to."""
    monkeypatch.setattr("shared.booking.availability.utcnow", lambda: NOW)
    helpdesk_id = await _wednesday_helpdesk(session)
    for starts_at in (NINE, HALF_PAST):
        await _book(session, keeping, (await make_citizen(session)).id, helpdesk_id, starts_at)

    async def offered(urgent: bool) -> list[datetime]:
        picker = await pick_slot(
            session=session, settings=keeping, t=Translator("it"), helpdesk_id=helpdesk_id,
            day="", offer=True, urgent=urgent,
        )  # fmt: skip
        return [s.starts_at for slots in picker.days.values() for s in slots]

    assert await offered(urgent=False) == []
    assert await offered(urgent=True) == [TEN]
