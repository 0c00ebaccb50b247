"""A booking code is not looked up before it is used: a clash is caught and tried again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import places
from shared.booking import service as booking
from shared.booking.errors import AlreadyBooked
from shared.booking.models import Booking, Slot
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 12, 7, 8)
TUESDAY_9 = rome(2026, 12, 8, 9)
TUESDAY_930 = rome(2026, 12, 8, 9, 30)


def codes(monkeypatch: pytest.MonkeyPatch, *given: str) -> None:
    """`new_booking_code` gives `given` in turn."""
    sequence: Iterator[str] = iter(given)
    monkeypatch.setattr(places, "new_booking_code", lambda: next(sequence))


async def test_a_code_already_used_is_replaced_and_the_place_taken_once(
    session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    helpdesk = await make_helpdesk(session, places=2)
    first, second = await make_citizen(session), await make_citizen(session)
    codes(monkeypatch, "AAAAAA", "AAAAAA", "BBBBBB")
    await booking.book_slot(
        session=session, settings=settings, citizen_id=first.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=second.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    assert made.code == "BBBBBB"
    slot = await session.get(Slot, made.slot_id)
    assert slot is not None and slot.taken == 2
    rows = (await session.execute(select(Booking.citizen_id, Booking.code))).all()
    assert sorted(rows) == sorted([(first.id, "AAAAAA"), (second.id, "BBBBBB")])


async def test_a_second_booking_is_still_refused_and_takes_no_place(
    session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    helpdesk = await make_helpdesk(session, places=2)
    citizen = await make_citizen(session)
    codes(monkeypatch, "AAAAAA", "CCCCCC")
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id,
        helpdesk_id=helpdesk.id, starts_at=TUESDAY_9, actor="test", now=NOW,
    )  # fmt: skip
    # Past the standing's check, only the one-active-booking index can refuse it.
    with pytest.raises(AlreadyBooked):
        await places.book_place(
            session=session, citizen_id=citizen.id,
            slot=places.SlotTime(TUESDAY_930, helpdesk.id, rome(2026, 12, 8, 10), 2),
            actor="test", moved_from_id=None,
        )  # fmt: skip
    assert (await session.scalars(select(Booking.code))).all() == [made.code]
    taken = (await session.execute(select(Slot.starts_at, Slot.taken))).all()
    assert [t for _, t in taken] == [1]
