"""Moderation per helpdesk: a citizen's choice as a request, confirmed, declined or expired."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import housekeeping
from shared.audit.models import AuditEvent
from shared.booking import moderation, waitlist
from shared.booking import service as booking
from shared.booking.errors import BookingError, TextTooLong
from shared.booking.messages import MessageKind
from shared.booking.models import Booking, BookingState, Helpdesk, Moderation, Slot
from shared.booking.moderation import ReasonRequired, RequestNotPending
from shared.booking.service import CancelledBy
from shared.db import Database
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from tests.factories import ROME, make_citizen, make_helpdesk, rome

# Monday 7 December 2026, 08:00; Tuesday 8 is a public holiday (Immacolata Concezione).
NOW = rome(2026, 12, 7, 8)
FRIDAY_10 = rome(2026, 12, 11, 10)
WEDNESDAY_9 = rome(2026, 12, 9, 9)


async def _moderated(session: AsyncSession, *, places: int = 1) -> Helpdesk:
    helpdesk = await make_helpdesk(session, places=places)
    return await moderation.set_moderated(
        session=session, helpdesk_id=helpdesk.id, moderated=True, actor="staff:coord"
    )


async def _request(
    session: AsyncSession, settings: Settings, helpdesk: Helpdesk, starts_at: datetime = FRIDAY_10
) -> Booking:
    citizen = await make_citizen(session)
    return await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=starts_at, actor=f"citizen:{citizen.id}", now=NOW, by_citizen=True,
    )  # fmt: skip


async def _kinds(session: AsyncSession, booking_id: int) -> list[str]:
    rows = await session.scalars(
        select(OutboxMessage.kind)
        .where(OutboxMessage.subject == f"booking:{booking_id}")
        .where(OutboxMessage.state == "pending")
        .order_by(OutboxMessage.id)
    )
    return list(rows)


async def _actions(session: AsyncSession, booking_id: int) -> list[str]:
    rows = await session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.object_type == "booking", AuditEvent.object_id == str(booking_id))
        .order_by(AuditEvent.id)
    )
    return list(rows)


async def _taken(session: AsyncSession, booking_: Booking) -> int:
    return int(await session.scalar(select(Slot.taken).where(Slot.id == booking_.slot_id)) or 0)


# --- working days ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("made", "expires"),
    [
        # Monday, Tuesday 8 December a holiday: Wednesday and Thursday count.
        (rome(2026, 12, 7, 8), rome(2026, 12, 10, 8)),
        # Friday evening: Monday and Tuesday.
        (rome(2026, 12, 11, 17), rome(2026, 12, 15, 17)),
        # Saturday: Monday is the first working day.
        (rome(2026, 12, 12, 10), rome(2026, 12, 15, 10)),
        # Christmas Eve (Thursday): 25 and 26 are holidays, then the weekend.
        (rome(2026, 12, 24, 11), rome(2026, 12, 29, 11)),
        # Holy Thursday 2027: Good Friday is a working day, Easter Monday is not.
        (rome(2027, 3, 25, 9), rome(2027, 3, 30, 9)),
        # Across the clock change (28 March 2027): the same wall-clock time.
        (rome(2027, 3, 26, 9), rome(2027, 3, 31, 9)),
    ],
)
def test_requests_expire_in_working_days(made: datetime, expires: datetime) -> None:
    found = moderation.add_working_days(made, 2, ROME)
    assert found == expires
    assert found.astimezone(ROME).hour == made.hour


def test_expiry_never_later_than_the_notice_before_the_appointment(settings: Settings) -> None:
    soon = moderation.request_expiry(settings=settings, now=NOW, starts_at=WEDNESDAY_9)
    assert soon == WEDNESDAY_9 - timedelta(minutes=settings.booking_min_notice_minutes)
    later = moderation.request_expiry(settings=settings, now=NOW, starts_at=FRIDAY_10)
    assert later == rome(2026, 12, 10, 8)
    # Made at the last moment: the coordinators still get the notice's two hours.
    last_moment = moderation.request_expiry(
        settings=settings, now=NOW, starts_at=NOW + timedelta(hours=2)
    )
    assert last_moment == NOW + timedelta(hours=2)


# --- who makes a request -----------------------------------------------------------------


async def test_a_citizens_choice_at_a_moderated_helpdesk_is_a_request(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await _moderated(session)
    made = await _request(session, settings, helpdesk)
    assert made.state == BookingState.BOOKED.value
    assert made.moderation == Moderation.PENDING.value
    assert made.request_expires_at == rome(2026, 12, 10, 8)
    assert made.moderated_by is None
    # The request holds its place; its reminders wait for the confirmation.
    assert await _taken(session, made) == 1
    assert await _kinds(session, made.id) == []
    assert moderation.is_pending(made)


async def test_staff_bookings_at_a_moderated_helpdesk_are_confirmed_at_once(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await _moderated(session)
    citizen = await make_citizen(session)
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=FRIDAY_10, actor="staff:anna", now=NOW, confirm_by_message=True,
    )  # fmt: skip
    assert made.moderation == Moderation.CONFIRMED.value
    assert made.moderated_by == "staff:anna"
    assert made.moderated_at == NOW
    assert made.request_expires_at is None
    kinds = await _kinds(session, made.id)
    assert MessageKind.BOOKING_CONFIRMED.value in kinds
    assert MessageKind.REMINDER_DAY_BEFORE.value in kinds


async def test_unmoderated_helpdesks_make_plain_bookings(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    made = await _request(session, settings, helpdesk)
    assert made.moderation is None
    assert made.request_expires_at is None
    assert MessageKind.REMINDER_DAY_BEFORE.value in await _kinds(session, made.id)


# --- confirm -----------------------------------------------------------------------------


async def test_confirming_keeps_the_place_queues_the_card_and_the_reminders(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await _moderated(session)
    made = await _request(session, settings, helpdesk)
    later = NOW + timedelta(hours=3)
    confirmed = await moderation.confirm_request(
        session=session, settings=settings, booking_id=made.id, actor="staff:coord", now=later
    )
    assert confirmed.state == BookingState.BOOKED.value
    assert confirmed.moderation == Moderation.CONFIRMED.value
    assert (confirmed.moderated_by, confirmed.moderated_at) == ("staff:coord", later)
    assert await _taken(session, made) == 1
    assert await _kinds(session, made.id) == [
        MessageKind.REMINDER_DAY_BEFORE.value,
        MessageKind.REMINDER_HOURS_BEFORE.value,
        MessageKind.REQUEST_CONFIRMED.value,
    ]
    assert "booking.request_confirmed" in await _actions(session, made.id)
    with pytest.raises(RequestNotPending) as refused:
        await moderation.confirm_request(
            session=session, settings=settings, booking_id=made.id, actor="staff:other", now=later
        )
    assert refused.value.moderation == Moderation.CONFIRMED.value
    assert refused.value.code == "request_not_pending"


async def test_a_plain_booking_is_not_a_request_to_confirm(
    session: AsyncSession, settings: Settings
) -> None:
    made = await _request(session, settings, await make_helpdesk(session))
    with pytest.raises(RequestNotPending):
        await moderation.confirm_request(
            session=session, settings=settings, booking_id=made.id, actor="staff:coord", now=NOW
        )


# --- decline -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "error"), [("", ReasonRequired), ("   ", ReasonRequired), ("x" * 201, TextTooLong)]
)
async def test_a_decline_needs_a_short_reason_and_changes_nothing_without(
    session: AsyncSession, settings: Settings, reason: str, error: type[BookingError]
) -> None:
    helpdesk = await _moderated(session)
    made = await _request(session, settings, helpdesk)
    with pytest.raises(error) as refused:
        await moderation.decline_request(
            session=session, settings=settings, booking_id=made.id, actor="staff:coord",
            reason=reason, now=NOW,
        )  # fmt: skip
    assert refused.value.code in ("reason_required", "text_too_long")
    await session.refresh(made)
    assert moderation.is_pending(made)
    assert await _taken(session, made) == 1


async def test_declining_frees_the_place_for_the_waitlist_and_tells_the_citizen(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await _moderated(session)
    made = await _request(session, settings, helpdesk)
    # Every other place is taken: a second citizen waits.
    others = await booking.bookings_between(session=session, since=NOW, until=NOW)
    assert others == []
    waiting = await make_citizen(session, name="Luca Bianchi")
    entry = await _wait_for_any_place(session, settings, helpdesk, waiting.id)
    declined = await moderation.decline_request(
        session=session, settings=settings, booking_id=made.id, actor="staff:coord",
        reason="  Lo sportello è chiuso per formazione  ", now=NOW,
    )  # fmt: skip
    assert declined.state == BookingState.CANCELLED_BY_STAFF.value
    assert declined.moderation == Moderation.DECLINED.value
    assert declined.cancel_reason == "Lo sportello è chiuso per formazione"
    assert declined.closed_by == declined.moderated_by == "staff:coord"
    assert await _kinds(session, made.id) == [MessageKind.REQUEST_DECLINED.value]
    assert "booking.request_declined" in await _actions(session, made.id)
    # The freed place went to the waiting citizen, held for them.
    await session.refresh(entry)
    assert entry.state == "offered"
    assert entry.offered_slot_id == made.slot_id
    assert await _taken(session, made) == 1


async def test_a_waitlist_place_taken_at_a_moderated_helpdesk_is_a_request(
    session: AsyncSession, settings: Settings
) -> None:
    """The waitlist offers a freed place by itself: taking it is the citizen's choice, so at
    a moderated helpdesk it is a request like any other (no reminders until confirmed)."""
    helpdesk = await _moderated(session)
    made = await _request(session, settings, helpdesk)
    waiting = await make_citizen(session, name="Luca Bianchi")
    entry = await _wait_for_any_place(session, settings, helpdesk, waiting.id)
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=made.id, by=CancelledBy.CITIZEN,
        actor="citizen:x", citizen_id=made.citizen_id, now=NOW,
    )  # fmt: skip
    await session.refresh(entry)
    assert entry.state == "offered"
    taken = await waitlist.accept_offer(
        session=session, settings=settings, entry_id=entry.id, citizen_id=waiting.id, now=NOW
    )
    assert taken.moderation == Moderation.PENDING.value
    assert moderation.is_pending(taken) and taken.request_expires_at is not None
    assert await _kinds(session, taken.id) == []


async def _wait_for_any_place(
    session: AsyncSession, settings: Settings, helpdesk: Helpdesk, citizen_id: int
) -> object:
    """Fill every free place (so the waitlist opens) and put the citizen on it."""
    from shared.booking import availability

    for slot in await availability.list_free_slots(session=session, settings=settings, now=NOW):
        filler = await make_citizen(session, telegram=False)
        await booking.book_slot(
            session=session, settings=settings, citizen_id=filler.id,
            helpdesk_id=slot.helpdesk_id, starts_at=slot.starts_at, actor="staff:fill", now=NOW,
        )  # fmt: skip
    return await waitlist.join_waitlist(
        session=session, settings=settings, citizen_id=citizen_id, now=NOW
    )


# --- expire ------------------------------------------------------------------------------


async def test_expiry_frees_the_place_once_and_tells_the_citizen(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await _moderated(session)
    made = await _request(session, settings, helpdesk)
    assert made.request_expires_at is not None
    just_before = made.request_expires_at - timedelta(seconds=1)
    assert (
        await moderation.expire_requests(session=session, settings=settings, now=just_before) == 0
    )
    at = made.request_expires_at
    assert await moderation.expire_requests(session=session, settings=settings, now=at) == 1
    assert await moderation.expire_requests(session=session, settings=settings, now=at) == 0
    await session.refresh(made)
    assert made.state == BookingState.CANCELLED_BY_STAFF.value
    assert made.moderation == Moderation.EXPIRED.value
    assert made.moderated_by == moderation.EXPIRY_ACTOR
    assert await _taken(session, made) == 0
    assert await _kinds(session, made.id) == [MessageKind.REQUEST_EXPIRED.value]
    assert "booking.request_expired" in await _actions(session, made.id)
    with pytest.raises(RequestNotPending) as refused:
        await moderation.confirm_request(
            session=session, settings=settings, booking_id=made.id, actor="staff:coord", now=at
        )
    assert refused.value.moderation == Moderation.EXPIRED.value
    expired = await moderation.recently_expired(session=session, now=at + timedelta(days=6))
    assert [line.booking_id for line in expired] == [made.id]
    assert await moderation.recently_expired(session=session, now=at + timedelta(days=8)) == []


async def test_the_queue_lists_pending_requests_oldest_first(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await _moderated(session, places=3)
    first = await _request(session, settings, helpdesk)
    second = await _request(session, settings, helpdesk)
    plain = await _request(session, settings, await make_helpdesk(session, name="Altro"))
    second.created_at = NOW - timedelta(hours=1)  # waited longer
    await session.flush()
    lines = await moderation.pending_requests(session=session)
    assert [line.booking_id for line in lines] == [second.id, first.id]
    assert plain.id not in [line.booking_id for line in lines]
    assert lines[0].citizen_name == "Maria Rossi"
    assert lines[0].case_id is not None  # booking opened the citizen's case


# --- ended otherwise ---------------------------------------------------------------------


async def test_a_request_cancelled_or_moved_by_the_citizen_is_withdrawn(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await _moderated(session, places=2)
    made = await _request(session, settings, helpdesk)
    moved = await booking.move_booking(
        session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk.id,
        starts_at=FRIDAY_10 + timedelta(minutes=30), by=CancelledBy.CITIZEN,
        actor=f"citizen:{made.citizen_id}", citizen_id=made.citizen_id, now=NOW,
    )  # fmt: skip
    await session.refresh(made)
    assert made.moderation == Moderation.WITHDRAWN.value
    assert moved.moderation == Moderation.PENDING.value
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=moved.id, by=CancelledBy.CITIZEN,
        actor=f"citizen:{made.citizen_id}", citizen_id=made.citizen_id, now=NOW,
    )  # fmt: skip
    assert moved.moderation == Moderation.WITHDRAWN.value
    assert await moderation.pending_requests(session=session) == []


async def test_a_staff_move_of_a_request_confirms_the_new_booking(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await _moderated(session, places=2)
    made = await _request(session, settings, helpdesk)
    moved = await booking.move_booking(
        session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk.id,
        starts_at=FRIDAY_10 + timedelta(minutes=30), by=CancelledBy.STAFF, actor="staff:anna",
        now=NOW,
    )  # fmt: skip
    assert moved.moderation == Moderation.CONFIRMED.value
    assert moved.moderated_by == "staff:anna"


# --- races: exactly one outcome on both databases ----------------------------------------


async def _confirm(database: Database, settings: Settings, booking_id: int, at: datetime) -> str:
    try:
        async with database.transaction() as session:
            await moderation.confirm_request(
                session=session, settings=settings, booking_id=booking_id, actor="staff:c",
                now=at,
            )  # fmt: skip
    except RequestNotPending:
        return "refused"
    return "confirmed"


async def _expire(database: Database, settings: Settings, at: datetime) -> str:
    async with database.transaction() as session:
        done = await moderation.expire_requests(session=session, settings=settings, now=at)
    return "expired" if done else "nothing"


async def test_a_confirmation_racing_the_expiry_has_exactly_one_outcome(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await _moderated(session, places=10)
    outcomes: Counter[str] = Counter()
    for minute in range(10):
        async with database.transaction() as session:
            made = await _request(session, settings, helpdesk, FRIDAY_10 + timedelta(minutes=0))
            booking_id, expires_at = made.id, made.request_expires_at
        assert expires_at is not None
        at = expires_at + timedelta(minutes=minute)
        results = await asyncio.gather(
            _confirm(database, settings, booking_id, at), _expire(database, settings, at)
        )
        assert sorted(results) in (["confirmed", "nothing"], ["expired", "refused"]), results
        outcomes[results[0]] += 1
        async with database.transaction(read_only=True) as session:
            found = await session.get(Booking, booking_id)
            assert found is not None
            taken = await session.scalar(select(Slot.taken).where(Slot.id == found.slot_id))
            if results[0] == "confirmed":
                assert (found.moderation, found.state) == ("confirmed", "booked")
            else:
                assert (found.moderation, found.state) == ("expired", "cancelled_by_staff")
            messages = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.subject == f"booking:{booking_id}",
                    OutboxMessage.kind.in_(
                        [MessageKind.REQUEST_CONFIRMED.value, MessageKind.REQUEST_EXPIRED.value]
                    ),
                )
            )
            assert messages == 1
        # Every confirmed request still holds its place, every expired one gave it back.
        assert taken == outcomes["confirmed"]
    print(f"\nconfirm vs expiry on {database.engine.dialect.name}: {dict(outcomes)}")


async def test_two_instances_expire_each_request_once(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await _moderated(session, places=5)
        made = [await _request(session, settings, helpdesk) for _ in range(5)]
    at = max(m.request_expires_at for m in made if m.request_expires_at is not None)
    done = await asyncio.gather(
        *(housekeeping.run_chores(database=database, settings=settings, now=at) for _ in range(2))
    )
    assert sum(d.expired_requests for d in done) == 5
    async with database.transaction(read_only=True) as session:
        told = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == MessageKind.REQUEST_EXPIRED.value)
        )
        assert told == 5
        assert await session.scalar(select(func.sum(Slot.taken))) == 0
