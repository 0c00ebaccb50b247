"""What the booking engine tells citizens, queued in the outbox (delivered by the bot)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking.models import Booking
from shared.booking.schedule import local_datetime
from shared.citizens.models import Citizen
from shared.outbox import service as outbox
from shared.settings import Settings


class MessageKind(StrEnum):
    BOOKING_CONFIRMED = "booking_confirmed"
    REMINDER_DAY_BEFORE = "reminder_day_before"
    REMINDER_HOURS_BEFORE = "reminder_hours_before"
    BOOKING_MOVED = "booking_moved"
    BOOKING_CANCELLED = "booking_cancelled"
    REBOOK_AFTER_NO_SHOW = "rebook_after_no_show"
    WAITLIST_OFFER = "waitlist_offer"
    WAITLIST_OFFER_EXPIRED = "waitlist_offer_expired"
    # A place offered by staff (`shared.booking.offers`), and that offer lapsed.
    PLACE_OFFER = "place_offer"
    PLACE_OFFER_EXPIRED = "place_offer_expired"
    # A request at a moderated helpdesk (`shared.booking.moderation`): confirmed (the
    # booking card), declined (with the reason), expired (choose again). "Request sent"
    # is the bot's own reply to the citizen's choice, never queued.
    REQUEST_CONFIRMED = "request_confirmed"
    REQUEST_DECLINED = "request_declined"
    REQUEST_EXPIRED = "request_expired"
    # Not about a booking, but queued the same way: "your questionnaire will be erased".
    INTAKE_EXPIRY_REMINDER = "intake_expiry_reminder"


# After a no-show, the offer to book again goes out the next day at this hour (program
# time): not at once, when the helpdesk is still writing up its day and the citizen may
# still turn up late, nor at night.
NO_SHOW_FOLLOW_UP_HOUR = 10


def subject(booking: Booking) -> str:
    return f"booking:{booking.id}"


async def _queue(
    session: AsyncSession,
    citizen: Citizen,
    kind: MessageKind,
    key: str,
    due_at: datetime,
    payload: dict[str, int],
    about: str | None,
) -> None:
    # Citizens who came by phone or at the desk have no chat to write to.
    if citizen.telegram_chat_id is None:
        return
    await outbox.enqueue(
        session=session,
        kind=kind.value,
        citizen_id=citizen.id,
        due_at=due_at,
        idempotency_key=key,
        payload=payload,
        subject=about,
    )


async def queue_reminders(
    *, session: AsyncSession, settings: Settings, citizen: Citizen, booking: Booking, now: datetime
) -> None:
    """Queue the day-before and hours-before reminders that are still in the future.

    `citizen`: read in this transaction (its `unreachable` flag is not read again).
    """
    if citizen.telegram_chat_id is None:
        return  # no chat to write to, as in `_queue`
    local_day = booking.starts_at.astimezone(settings.tz).date()
    day_before = local_datetime(
        local_day - timedelta(days=1), time(settings.reminder_day_before_hour), settings.tz
    )
    hours_before = booking.starts_at - timedelta(hours=settings.reminder_hours_before)
    about = subject(booking)
    due = [
        outbox.NewMessage(
            kind=kind.value,
            due_at=at,
            idempotency_key=f"{about}:{kind.value}",
            payload={"booking_id": booking.id},
            subject=about,
        )
        for kind, at in (
            (MessageKind.REMINDER_DAY_BEFORE, day_before),
            (MessageKind.REMINDER_HOURS_BEFORE, hours_before),
        )
        if at is not None and at > now
    ]
    # Both in one INSERT; the citizen's reachability is the one the caller read with them.
    await outbox.enqueue_all(
        session=session, citizen_id=citizen.id, messages=due, unreachable=citizen.unreachable
    )


async def notify_booking(
    *, session: AsyncSession, citizen: Citizen, booking: Booking, kind: MessageKind, now: datetime
) -> None:
    """Tell the citizen at once about their booking (made, moved or cancelled by staff)."""
    await _queue(
        session,
        citizen,
        kind,
        f"{subject(booking)}:{kind.value}",
        now,
        {"booking_id": booking.id},
        subject(booking),
    )


async def notify_waitlist(
    *,
    session: AsyncSession,
    citizen: Citizen,
    entry_id: int,
    slot_id: int,
    kind: MessageKind,
    now: datetime,
) -> None:
    """Tell a waiting citizen about an offer (or that it lapsed)."""
    await _queue(
        session,
        citizen,
        kind,
        f"waitlist:{entry_id}:{slot_id}:{kind.value}",
        now,
        {"entry_id": entry_id, "slot_id": slot_id},
        f"waitlist:{entry_id}",
    )


async def offer_rebooking(
    *,
    session: AsyncSession,
    tz: ZoneInfo,
    citizen: Citizen,
    booking: Booking,
    case_id: int | None,
    now: datetime,
) -> None:
    """After a no-show: offer to book again, once per case, the next day at
    `NO_SHOW_FOLLOW_UP_HOUR` (program time `tz`).

    Once per case: the key is the case's, so a second no-show in it queues nothing (nor
    does one whose message was withdrawn). Not sent if the citizen has booked again by
    then: the dispatcher withdraws it (`bot.delivery`).
    """
    kind = MessageKind.REBOOK_AFTER_NO_SHOW
    next_day = now.astimezone(tz).date() + timedelta(days=1)
    due_at = local_datetime(next_day, time(NO_SHOW_FOLLOW_UP_HOUR), tz)
    about = f"case:{case_id}" if case_id is not None else subject(booking)
    await _queue(
        session,
        citizen,
        kind,
        f"{about}:{kind.value}",
        due_at or now,
        {"booking_id": booking.id},
        subject(booking),
    )


async def booked_again(*, session: AsyncSession, booking: Booking) -> bool:
    """The citizen has made a booking since `booking` (whatever became of it): an offer to
    book again after that one no longer applies."""
    later = await session.scalar(
        select(Booking.id)
        .where(Booking.citizen_id == booking.citizen_id, Booking.id > booking.id)
        .limit(1)
    )
    return later is not None
