"""A freed place goes to the first waiting citizen (urgent first, then oldest) or back to the pool.

While an offer is open the place stays counted in `slot.taken`: it is held, so nobody
else can book it until the offer is accepted, declined or expires.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import messages, places
from shared.booking.models import Slot, WaitlistEntry, WaitlistState
from shared.citizens.models import Citizen
from shared.db import is_postgresql
from shared.settings import Settings


async def _next_waiting(session: AsyncSession, helpdesk_id: int) -> WaitlistEntry | None:
    query = (
        select(WaitlistEntry)
        .where(
            WaitlistEntry.state == WaitlistState.WAITING.value,
            or_(WaitlistEntry.helpdesk_id.is_(None), WaitlistEntry.helpdesk_id == helpdesk_id),
        )
        .order_by(WaitlistEntry.urgent.desc(), WaitlistEntry.created_at, WaitlistEntry.id)
        .limit(1)
    )
    if is_postgresql(session):
        # Two processes freeing places at once offer them to two different citizens.
        query = query.with_for_update(skip_locked=True)
    return await session.scalar(query)


async def pass_on_place(
    *, session: AsyncSession, settings: Settings, slot_id: int, now: datetime
) -> WaitlistEntry | None:
    """Offer a freed place of `slot_id` to the next waiting citizen, or release it."""
    slot = await session.get(Slot, slot_id)
    if slot is None:
        return None
    notice = timedelta(minutes=settings.booking_min_notice_minutes)
    entry = (
        await _next_waiting(session, slot.helpdesk_id) if slot.starts_at > now + notice else None
    )
    if entry is None:
        await places.release_place(session=session, slot_id=slot_id)
        return None
    entry.state = WaitlistState.OFFERED.value
    entry.offered_slot_id = slot_id
    entry.offer_expires_at = now + timedelta(minutes=settings.waitlist_hold_minutes)
    await session.flush()
    citizen = await session.get(Citizen, entry.citizen_id)
    if citizen is not None:
        await messages.notify_waitlist(
            session=session,
            citizen=citizen,
            entry_id=entry.id,
            slot_id=slot_id,
            kind=messages.MessageKind.WAITLIST_OFFER,
            now=now,
        )
    return entry


async def withdraw(
    *, session: AsyncSession, settings: Settings, citizen_id: int, now: datetime
) -> WaitlistEntry | None:
    """Take the citizen off the waitlist (they left, or booked otherwise); pass on a held place."""
    entry = await session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.citizen_id == citizen_id,
            WaitlistEntry.state.in_((WaitlistState.WAITING.value, WaitlistState.OFFERED.value)),
        )
    )
    if entry is None:
        return None
    held = entry.offered_slot_id if entry.state == WaitlistState.OFFERED.value else None
    entry.state = WaitlistState.LEFT.value
    await session.flush()
    if held is not None:
        await pass_on_place(session=session, settings=settings, slot_id=held, now=now)
    return entry
