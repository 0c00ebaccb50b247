"""Read-only helpers the Telegram bot needs from the booking service."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import hours, waitlist
from shared.booking import service as booking
from shared.booking.service import CancelledBy
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 12, 7, 8)
SLOT = rome(2026, 12, 9, 9)


async def test_held_place_only_while_the_offer_is_open(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, name="Sportello Villa Fiorita", weekdays=())
    await hours.add_extra_opening(
        session=session, helpdesk_id=helpdesk.id, day=date(2026, 12, 9), opens_at=SLOT.time(),
        closes_at=(SLOT + timedelta(minutes=30)).time(), slot_minutes=30, places=1, actor="t",
    )  # fmt: skip
    holder, waiting, other = [await make_citizen(session) for _ in range(3)]
    taken = await booking.book_slot(
        session=session, settings=settings, citizen_id=holder.id, helpdesk_id=helpdesk.id,
        starts_at=SLOT, actor="t", now=NOW,
    )  # fmt: skip
    assert await booking.held_place(session=session, citizen_id=waiting.id, now=NOW) is None

    entry = await waitlist.join_waitlist(
        session=session, settings=settings, citizen_id=waiting.id, now=NOW
    )
    # Waiting is not an offer.
    assert await booking.held_place(session=session, citizen_id=waiting.id, now=NOW) is None
    found = await waitlist.open_entry_and_offer(session=session, citizen_id=waiting.id, now=NOW)
    assert found is not None and (found.entry.id, found.held) == (entry.id, None)

    await booking.cancel_booking(
        session=session, settings=settings, booking_id=taken.id, by=CancelledBy.CITIZEN,
        actor="t", now=NOW,
    )  # fmt: skip
    held = await booking.held_place(session=session, citizen_id=waiting.id, now=NOW)
    assert held is not None
    # The bot reads the entry and its offer in one query: the same place.
    found = await waitlist.open_entry_and_offer(session=session, citizen_id=waiting.id, now=NOW)
    assert found is not None and (found.entry.id, found.held) == (entry.id, held)
    lapsed = await waitlist.open_entry_and_offer(
        session=session, citizen_id=waiting.id, now=held.expires_at
    )
    assert lapsed is not None and (lapsed.entry.id, lapsed.held) == (entry.id, None)
    assert (held.entry_id, held.helpdesk.id, held.starts_at, held.ends_at) == (
        entry.id,
        helpdesk.id,
        SLOT,
        SLOT + timedelta(minutes=30),
    )
    assert held.expires_at == NOW + timedelta(minutes=settings.waitlist_hold_minutes)
    # Only the citizen it is held for sees it, and only until the hold lapses.
    assert await booking.held_place(session=session, citizen_id=other.id, now=NOW) is None
    assert (
        await booking.held_place(session=session, citizen_id=waiting.id, now=held.expires_at)
        is None
    )

    await waitlist.accept_offer(
        session=session, settings=settings, entry_id=entry.id, citizen_id=waiting.id, now=NOW
    )
    assert await booking.held_place(session=session, citizen_id=waiting.id, now=NOW) is None
    assert await waitlist.open_entry_and_offer(session=session, citizen_id=waiting.id) is None
