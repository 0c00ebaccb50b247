"""What the booking engine tells citizens, queued in the outbox (delivered by the bot)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from enum import StrEnum

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
