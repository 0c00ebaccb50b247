"""Property: whatever the sequence of book/cancel/move/no-show, places and bookings stay consistent."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from shared.booking import service as booking
from shared.booking.errors import BookingError
from shared.booking.models import Booking, BookingState, Slot, WaitlistEntry
from shared.booking.service import CancelledBy
from shared.db import Database
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 12, 7, 8)
# Wednesday 9 December, 09:00-10:30: three slots of two places.
STARTS = [rome(2026, 12, 9, 9), rome(2026, 12, 9, 9, 30), rome(2026, 12, 9, 10)]
CITIZENS = 5
_helpdesk_names = itertools.count()

operation = st.one_of(
    st.tuples(st.just("book"), st.integers(0, CITIZENS - 1), st.integers(0, len(STARTS) - 1)),
    st.tuples(st.just("move"), st.integers(0, CITIZENS - 1), st.integers(0, len(STARTS) - 1)),
    st.tuples(st.just("cancel_citizen"), st.integers(0, CITIZENS - 1), st.just(0)),
    st.tuples(st.just("cancel_staff"), st.integers(0, CITIZENS - 1), st.just(0)),
    st.tuples(st.just("no_show"), st.integers(0, CITIZENS - 1), st.just(0)),
)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=25))
async def test_random_operations_keep_places_and_bookings_consistent(
    database: Database, settings: Settings, operations: list[tuple[str, int, int]]
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, name=f"Sportello {next(_helpdesk_names)}", places=2)
        citizens = [(await make_citizen(session)).id for _ in range(CITIZENS)]

    for name, who, where in operations:
        citizen_id = citizens[who]
        try:
            async with database.transaction() as session:
                active = await booking.active_booking(session=session, citizen_id=citizen_id)
                if name == "book":
                    await booking.book_slot(
                        session=session, settings=settings, citizen_id=citizen_id,
                        helpdesk_id=helpdesk.id, starts_at=STARTS[where], actor="p", now=NOW,
                    )  # fmt: skip
                elif active is None:
                    continue
                elif name == "move":
                    await booking.move_booking(
                        session=session, settings=settings, booking_id=active.id,
                        helpdesk_id=helpdesk.id, starts_at=STARTS[where], by=CancelledBy.CITIZEN,
                        actor="p", citizen_id=citizen_id, now=NOW,
                    )  # fmt: skip
                elif name in ("cancel_citizen", "cancel_staff"):
                    by = CancelledBy.CITIZEN if name == "cancel_citizen" else CancelledBy.STAFF
                    await booking.cancel_booking(
                        session=session, settings=settings, booking_id=active.id, by=by,
                        actor="p", now=NOW,
                    )  # fmt: skip
                else:
                    await booking.mark_no_show(
                        session=session, booking_id=active.id, actor="p",
                        now=active.starts_at + timedelta(minutes=5),
                    )  # fmt: skip
        except BookingError:
            pass

        async with database.transaction(read_only=True) as session:
            slots = (
                await session.scalars(select(Slot).where(Slot.helpdesk_id == helpdesk.id))
            ).all()
            for slot in slots:
                held = await session.scalar(
                    select(func.count()).where(
                        WaitlistEntry.offered_slot_id == slot.id, WaitlistEntry.state == "offered"
                    )
                )
                occupying = await session.scalar(
                    select(func.count()).where(
                        Booking.slot_id == slot.id,
                        Booking.state.in_(
                            [BookingState.BOOKED, BookingState.ATTENDED, BookingState.NO_SHOW]
                        ),
                    )
                )
                assert slot.taken <= slot.capacity
                assert slot.taken == (occupying or 0) + (held or 0)
            per_citizen = (
                await session.execute(
                    select(Booking.citizen_id, func.count())
                    .where(Booking.citizen_id.in_(citizens), Booking.state == BookingState.BOOKED)
                    .group_by(Booking.citizen_id)
                )
            ).all()
            assert all(count == 1 for _, count in per_citizen)
