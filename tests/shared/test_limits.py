"""Texts past their limits are refused by the services, not cut short; days and ids in range."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import hours
from shared.booking import service as booking
from shared.booking.errors import TextTooLong
from shared.booking.models import Booking, Closure, ExtraOpening, Helpdesk
from shared.booking.service import CancelledBy
from shared.cases import listing
from shared.cases.errors import InvalidInput
from shared.limits import FIRST_DAY, LAST_DAY, MAX_ID, is_plausible_day, is_record_id
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 12, 7, 8)


def test_days_and_ids_in_range() -> None:
    assert is_plausible_day(FIRST_DAY) and is_plausible_day(LAST_DAY)
    assert not is_plausible_day(date(1, 1, 1)) and not is_plausible_day(date(9999, 12, 31))
    assert not is_plausible_day(datetime(9999, 12, 31, 23, 59, tzinfo=UTC))
    assert is_record_id(1) and is_record_id(MAX_ID)
    assert not is_record_id(0) and not is_record_id(MAX_ID + 1)


async def test_a_long_cancellation_reason_is_refused_and_the_booking_kept(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session)
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=rome(2026, 12, 8, 9), actor="test", now=NOW,
    )  # fmt: skip
    with pytest.raises(TextTooLong) as refused:
        await booking.cancel_booking(
            session=session, settings=settings, booking_id=made.id, by=CancelledBy.STAFF,
            actor="staff:test", reason="x" * (booking.MAX_CANCEL_REASON + 1), now=NOW,
        )  # fmt: skip
    assert (refused.value.field, refused.value.max_length) == ("reason", 200)
    assert (await session.get(Booking, made.id)).state == "booked"  # type: ignore[union-attr]
    kept = await booking.cancel_booking(
        session=session, settings=settings, booking_id=made.id, by=CancelledBy.STAFF,
        actor="staff:test", reason=" " + "x" * booking.MAX_CANCEL_REASON + " ", now=NOW,
    )  # fmt: skip
    assert kept.cancel_reason == "x" * booking.MAX_CANCEL_REASON


async def test_helpdesk_texts_past_their_limits_are_refused(
    session: AsyncSession, settings: Settings
) -> None:
    for field, texts in (
        ("name", {"name": "n" * 121}),
        ("address", {"address": "a" * 201}),
        ("directions", {"directions": "d" * 2001}),
    ):
        given = {"name": "Centro", "address": "Via Roma 1", "directions": ""} | texts
        with pytest.raises(TextTooLong) as refused:
            await hours.create_helpdesk(session=session, actor="test", **given)
        assert refused.value.field == field
    assert await session.scalar(select(func.count(Helpdesk.id))) == 0

    helpdesk = await make_helpdesk(session)
    with pytest.raises(TextTooLong):
        await hours.update_helpdesk(
            session=session, helpdesk_id=helpdesk.id, name="n" * 121, address="Via Roma 1",
            actor="test",
        )  # fmt: skip
    with pytest.raises(TextTooLong) as refused:
        await hours.add_closure(
            session=session, settings=settings, helpdesk_id=helpdesk.id, day=date(2026, 12, 24),
            reason="r" * 201, actor="test",
        )  # fmt: skip
    assert refused.value.field == "reason"
    with pytest.raises(TextTooLong) as refused:
        await hours.add_extra_opening(
            session=session, helpdesk_id=helpdesk.id, day=date(2026, 12, 26), opens_at=time(9),
            closes_at=time(10), slot_minutes=30, places=1, note="n" * 201, actor="test",
        )  # fmt: skip
    assert refused.value.field == "note"
    assert await session.scalar(select(func.count(Closure.id))) == 0
    assert await session.scalar(select(func.count(ExtraOpening.id))) == 0


def test_case_list_filters_refuse_days_out_of_range_and_long_searches() -> None:
    with pytest.raises(InvalidInput) as refused:
        listing.parse_filters({"from": "0001-01-01", "to": "9999-12-31", "q": "m" * 101})
    assert set(refused.value.errors) == {"from", "to", "q"}
    assert refused.value.params["to"] == {"first": 1900, "last": 2200}
    assert refused.value.params["q"] == {"max_length": 100}
    found = listing.parse_filters({"from": "1900-01-01", "to": "2200-12-31"})
    assert (found.appointment_from, found.appointment_to) == (FIRST_DAY, LAST_DAY)
