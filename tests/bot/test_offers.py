"""A coordinator offers an urgent citizen an earlier place; the citizen answers on Telegram
with one tap, through the real PTB stack: the offer delivered by the outbox, accepted (a
move), declined (the appointment stays), lapsed, and the accept racing the lapse."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from telegram.ext import Application

from bot.delivery import OutboxDispatcher
from shared.booking import offers, waitlist
from shared.booking import service as booking
from shared.booking.models import Booking, Slot, WaitlistEntry
from shared.citizens.models import Citizen
from shared.db import Database
from shared.settings import Settings
from tests.bot.clock import MORNING, FixedClock
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.bot.fake_telegram import FakeTelegram, buttons, texts
from tests.factories import ROME, make_citizen, make_helpdesk

TODAY = MORNING.astimezone(ROME).date()
LATER = datetime.combine(TODAY + timedelta(days=5), time(11), tzinfo=ROME)
EARLIER = datetime.combine(TODAY + timedelta(days=1), time(9, 30), tzinfo=ROME)
USER = 520


async def _offered(database: Database, settings: Settings) -> tuple[int, int, int]:
    """An urgent citizen booked in five days; a coordinator offers tomorrow at 9:30:
    (citizen id, booking id, entry id)."""
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(
            session, name="Sportello Comune", weekdays=tuple(range(7)), valid_from=TODAY
        )
        citizen = await make_citizen(session, urgent=True, name="Anna Bianchi")
        citizen.telegram_user_id = citizen.telegram_chat_id = USER
        made = await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
            starts_at=LATER, actor="test", now=MORNING,
        )  # fmt: skip
        entry = await offers.offer_earlier_place(
            session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk.id,
            starts_at=EARLIER, actor="staff:coord", now=MORNING,
        )  # fmt: skip
        return citizen.id, made.id, entry.id


async def _deliver(app: Application, database: Database, settings: Settings, at: datetime) -> int:  # type: ignore[type-arg]
    sender = OutboxDispatcher(
        bot=app.bot, database=database, settings=settings, worker="w", per_chat_interval=0.0,
        clock=lambda: at.astimezone(UTC),
    )  # fmt: skip
    return await sender.run_once()


async def _bookings(database: Database, citizen_id: int) -> list[Booking]:
    async with database.transaction(read_only=True) as session:
        query = select(Booking).where(Booking.citizen_id == citizen_id).order_by(Booking.id)
        return list((await session.scalars(query)).all())


async def test_the_offer_arrives_and_one_tap_moves_the_appointment(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    citizen_id, booking_id, entry_id = await _offered(database, bot_settings)
    assert await _deliver(bot_app, database, bot_settings, MORNING) == 1
    [offer] = fake.sent("sendMessage")
    assert offer.params["chat_id"] == USER
    assert "Si è liberato un posto prima" in offer.text
    assert "giovedì 11 marzo 2027" in offer.text and "09:30" in offer.text  # the earlier place
    assert "Il tuo appuntamento attuale" in offer.text and "lunedì 15 marzo 2027" in offer.text
    assert "fino alle <b>08:30</b>" in offer.text  # held for the waitlist's 30 minutes
    assert offer.buttons == [
        ("✅ Sì, spostalo lì", f"oa:{entry_id}"),
        ("✖️ No, tengo il mio", f"od:{entry_id}"),
    ]

    anna = TelegramUser(bot_app, fake, USER)
    calls = await anna.press(f"oa:{entry_id}")
    assert "Il tuo colloquio Ripartire è stato spostato" in texts(calls)
    old, new = await _bookings(database, citizen_id)
    assert (old.id, old.state, old.cancel_reason) == (booking_id, "cancelled_by_citizen", "moved")
    assert (new.state, new.starts_at, new.moved_from_id) == ("booked", EARLIER, booking_id)
    assert new.code in texts(calls)
    # Pressed again: the offer is closed, the appointment is shown.
    calls = await anna.press(f"oa:{entry_id}")
    assert "Questa proposta non è più disponibile" in texts(calls)
    assert new.code in texts(calls)


async def test_declining_keeps_the_appointment_and_frees_the_place(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    citizen_id, booking_id, entry_id = await _offered(database, bot_settings)
    anna = TelegramUser(bot_app, fake, USER)
    calls = await anna.press(f"od:{entry_id}")
    assert "il tuo appuntamento resta com'è" in texts(calls)
    [kept] = await _bookings(database, citizen_id)
    assert (kept.id, kept.state, kept.starts_at) == (booking_id, "booked", LATER)
    assert kept.code in texts(calls)
    assert [d for _, d in buttons(calls)] == [f"mv:{booking_id}", f"cx:{booking_id}"]
    async with database.transaction(read_only=True) as session:
        held = await session.scalar(select(Slot.taken).where(Slot.starts_at == EARLIER))
    assert held == 0


async def test_a_lapsed_offer_is_told_and_the_appointment_stays(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    clock: FixedClock,
) -> None:
    citizen_id, booking_id, entry_id = await _offered(database, bot_settings)
    lapsed_at = MORNING + timedelta(minutes=bot_settings.waitlist_hold_minutes)
    async with database.transaction() as session:
        assert await waitlist.expire_offers(session=session, settings=bot_settings, now=lapsed_at)
    # The offer, queued before, is withdrawn; the note that it lapsed goes out.
    assert await _deliver(bot_app, database, bot_settings, lapsed_at) == 2
    [note] = fake.sent("sendMessage")
    assert "non abbiamo ricevuto la tua risposta in tempo" in note.text
    assert "Il tuo appuntamento resta com'è" in note.text
    clock.set(lapsed_at)
    calls = await TelegramUser(bot_app, fake, USER).press(f"oa:{entry_id}")
    assert "Questa proposta non è più disponibile" in texts(calls)
    [kept] = await _bookings(database, citizen_id)
    assert (kept.id, kept.state) == (booking_id, "booked")


async def test_the_tap_racing_the_lapse_has_one_outcome(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    clock: FixedClock,
) -> None:
    citizen_id, booking_id, entry_id = await _offered(database, bot_settings)
    expires = MORNING + timedelta(minutes=bot_settings.waitlist_hold_minutes)
    clock.set(expires - timedelta(seconds=1))  # the tap, just in time

    async def lapse() -> int:
        async with database.transaction() as session:
            return await waitlist.expire_offers(
                session=session, settings=bot_settings, now=expires + timedelta(seconds=1)
            )

    calls, expired = await asyncio.gather(
        TelegramUser(bot_app, fake, USER).press(f"oa:{entry_id}"), lapse()
    )
    found = await _bookings(database, citizen_id)
    active = [b for b in found if b.state == "booked"]
    async with database.transaction(read_only=True) as session:
        entry = await session.get(WaitlistEntry, entry_id)
        assert entry is not None
        taken = (await session.scalars(select(Slot.taken).order_by(Slot.starts_at))).all()
        citizen = await session.get(Citizen, citizen_id)
        assert citizen is not None
    assert len(active) == 1 and sum(taken) == 1  # one appointment, one place: never two
    if entry.state == "accepted":
        assert expired == 0
        assert active[0].starts_at == EARLIER and active[0].moved_from_id == booking_id
        assert "è stato spostato" in texts(calls)
    else:
        assert (entry.state, expired) == ("expired", 1)
        assert active[0].id == booking_id
        assert "spostato" not in texts(calls)
