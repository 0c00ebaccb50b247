"""After a no-show: one message offering to book again, once per case, the day after at
10:00 (program time), withdrawn at delivery if the citizen has booked again meanwhile."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery import Claimed, Outgoing, Withdrawn, render
from shared.booking import service as booking
from shared.booking.messages import NO_SHOW_FOLLOW_UP_HOUR
from shared.booking.models import Booking
from shared.outbox import service as outbox
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 6, 5, 10)  # Friday
TUESDAY_9 = rome(2026, 6, 9, 9, 30)
RECORDED = rome(2026, 6, 9, 11)  # the no-show, marked on the day
FOLLOW_UP = rome(2026, 6, 10, NO_SHOW_FOLLOW_UP_HOUR)  # Wednesday, 10:00 in Rome


async def _book(
    session: AsyncSession, settings: Settings, citizen_id: int, helpdesk_id: int,
    starts_at: datetime, now: datetime = NOW,
) -> Booking:  # fmt: skip
    return await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen_id, helpdesk_id=helpdesk_id,
        starts_at=starts_at, actor="test", now=now,
    )  # fmt: skip


async def _follow_ups(session: AsyncSession, citizen_id: int) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(
        OutboxMessage.citizen_id == citizen_id, OutboxMessage.kind == "rebook_after_no_show"
    )
    return list((await session.scalars(query.order_by(OutboxMessage.id))).all())


async def _deliver(
    session: AsyncSession, settings: Settings, at: datetime
) -> list[Outgoing | Withdrawn | object]:
    """What the dispatcher would do at `at` with every due message (claimed, rendered)."""
    claimed = await outbox.claim_due(session=session, worker="test", now=at, limit=50)
    return [
        await render(session=session, settings=settings, message=Claimed.of(m), now=at)
        for m in claimed
        if m.kind == "rebook_after_no_show"
    ]


async def test_the_offer_goes_out_once_the_day_after_at_ten(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, places=5)
    citizen = await make_citizen(session)
    missed = await _book(session, settings, citizen.id, helpdesk.id, TUESDAY_9)
    await booking.mark_no_show(
        session=session, settings=settings, booking_id=missed.id, actor="staff:op", now=RECORDED
    )
    [follow_up] = await _follow_ups(session, citizen.id)
    assert follow_up.due_at == FOLLOW_UP
    assert follow_up.payload["booking_id"] == missed.id
    # Not the evening of the no-show...
    assert await _deliver(session, settings, rome(2026, 6, 9, 20)) == []
    # ...but the next morning at ten, in the citizen's language.
    [sent] = await _deliver(session, settings, FOLLOW_UP)
    assert isinstance(sent, Outgoing)
    assert "Non ti abbiamo visto" in sent.text and "/prenotazione" in sent.text
    await outbox.mark_sent(session=session, message_id=follow_up.id, worker="test", now=FOLLOW_UP)

    # A second no-show in the same case: no second message.
    again = await _book(
        session, settings, citizen.id, helpdesk.id, rome(2026, 6, 16, 9, 30), now=FOLLOW_UP
    )
    await booking.mark_no_show(
        session=session, settings=settings, booking_id=again.id, actor="staff:op",
        now=rome(2026, 6, 16, 11),
    )  # fmt: skip
    assert len(await _follow_ups(session, citizen.id)) == 1


async def test_not_sent_when_the_citizen_has_booked_again(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, places=5)
    citizen = await make_citizen(session)
    missed = await _book(session, settings, citizen.id, helpdesk.id, TUESDAY_9)
    await booking.mark_no_show(
        session=session, settings=settings, booking_id=missed.id, actor="staff:op", now=RECORDED
    )
    # Booked again that afternoon, for the next morning at 9:30, and came: by ten the
    # offer to book again would be nonsense, whatever became of the new booking.
    rebooked = await _book(
        session,
        settings,
        citizen.id,
        helpdesk.id,
        rome(2026, 6, 10, 9, 30),
        now=rome(2026, 6, 9, 15),
    )
    await booking.mark_attended(
        session=session, booking_id=rebooked.id, actor="staff:op", now=rome(2026, 6, 10, 9, 35)
    )
    [withdrawn] = await _deliver(session, settings, FOLLOW_UP)
    assert isinstance(withdrawn, Withdrawn)
    assert "booked again" in withdrawn.reason


async def test_recorded_late_it_goes_out_the_next_morning_still(
    session: AsyncSession, settings: Settings
) -> None:
    """Marked a no-show at 23:30: the message waits for ten the next day, not the night."""
    helpdesk = await make_helpdesk(session, places=5)
    citizen = await make_citizen(session)
    missed = await _book(session, settings, citizen.id, helpdesk.id, TUESDAY_9)
    late = rome(2026, 6, 9, 23, 30)
    await booking.mark_no_show(
        session=session, settings=settings, booking_id=missed.id, actor="staff:op", now=late
    )
    [follow_up] = await _follow_ups(session, citizen.id)
    assert follow_up.due_at == FOLLOW_UP
    assert follow_up.due_at - late < timedelta(hours=11)
