"""A moderated helpdesk on Telegram, through the real PTB stack: the citizen's choice is a
request ("Richiesta inviata", never "confermato"), then confirmed, declined or expired.

On the bot's fixed clock (`tests.bot.clock.MORNING`, a Wednesday morning in Rome).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from telegram.ext import Application

from bot.delivery import OutboxDispatcher
from shared import housekeeping
from shared.booking import moderation
from shared.booking.models import Booking, Moderation
from shared.citizens import service as citizens
from shared.db import Database
from shared.intake import service as intake
from shared.settings import Settings
from tests.bot.clock import MORNING
from tests.bot.fake_telegram import Call, FakeTelegram, buttons, texts
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.factories import ROME, make_helpdesk

ANSWERS = [
    ("residence", "yes"),
    ("situation", "job_loss"),
    ("since", "marzo 2021"),
    ("pandemic_related", "yes"),
    ("household", "2 0"),
    ("benefits", "naspi"),
    ("needs", "job_search"),
    ("urgent", "no"),
    ("name", "Maria Rossi"),
    ("phone", "331 693 8049"),
]


async def _citizen(database: Database, settings: Settings, user_id: int) -> int:
    """A citizen who consented on Telegram and completed an eligible questionnaire."""
    async with database.transaction() as session:
        citizen = await citizens.give_consent(
            session=session, telegram_user_id=user_id, chat_id=user_id, language="it", now=MORNING
        )
        await intake.start_intake(session=session, citizen_id=citizen.id, now=MORNING)
        for key, raw in ANSWERS:
            await intake.record_answer(
                session=session, citizen_id=citizen.id, step_key=key, raw=raw, now=MORNING,
                settings=settings,
            )  # fmt: skip
        for optional in ("email", "fiscal_code"):
            await intake.skip_step(
                session=session, citizen_id=citizen.id, step_key=optional, now=MORNING
            )
        await intake.confirm(session=session, citizen_id=citizen.id, now=MORNING, settings=settings)
        return citizen.id


async def _moderated_helpdesk(database: Database) -> int:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(
            session, weekdays=tuple(range(7)), valid_from=MORNING.astimezone(ROME).date(), places=3
        )
        await moderation.set_moderated(
            session=session, helpdesk_id=helpdesk.id, moderated=True, actor="staff:coord"
        )
        return helpdesk.id


def _data(calls: list[Call], prefix: str) -> list[str]:
    return [d for _, d in buttons(calls) if d.startswith(prefix)]


async def _request(user: TelegramUser) -> list[Call]:
    """Book through the bot: the helpdesk's first day and time, then the confirmation."""
    days = await user.press("hds")
    times = await user.press(_data(days, "day:")[0])
    confirm = await user.press(_data(times, "tm:")[0])
    assert "la tua scelta sarà inviata come richiesta" in texts(confirm)
    assert ("📨 Invia la richiesta", _data(confirm, "bk:")[0]) in buttons(confirm)
    return await user.press(_data(confirm, "bk:")[0])


async def _booking_of(database: Database, citizen_id: int) -> Booking:
    async with database.transaction(read_only=True) as session:
        found = await session.scalar(
            select(Booking).where(Booking.citizen_id == citizen_id).order_by(Booking.id.desc())
        )
        assert found is not None
        return found


def _sender(
    app: Application, database: Database, settings: Settings, at: datetime
) -> OutboxDispatcher:  # type: ignore[type-arg]
    return OutboxDispatcher(
        bot=app.bot, database=database, settings=settings, worker="test",
        per_chat_interval=0.0, clock=lambda: at,
    )  # fmt: skip


def _sent(fake: FakeTelegram) -> list[Call]:
    return [c for c in fake.calls if c.method == "sendMessage"]


async def test_a_request_is_sent_never_confirmed_until_a_coordinator_confirms(
    bot_app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    await _moderated_helpdesk(database)
    citizen_id = await _citizen(database, bot_settings, 601)
    maria = TelegramUser(bot_app, fake, 601)

    calls = await _request(maria)
    text = texts(calls)
    assert "Richiesta inviata:</b> ti confermeremo l'appuntamento" in text
    assert "confermato" not in text and "prenotato" not in text
    assert "il posto resta riservato a te" in text
    assert [c.method for c in calls].count("sendDocument") == 0  # the file comes with it
    request = await _booking_of(database, citizen_id)
    assert request.moderation == Moderation.PENDING.value
    assert request.code in text

    # /prenotazione shows a request as a request.
    calls = await maria.say("/prenotazione")
    assert "La tua richiesta di appuntamento" in texts(calls)
    assert "in attesa della conferma" in texts(calls)
    assert "confermato" not in texts(calls)
    # Nothing is queued for the citizen while it waits (no reminders either).
    assert await _sender(bot_app, database, bot_settings, MORNING).run_once() == 0

    async with database.transaction() as session:
        await moderation.confirm_request(
            session=session, settings=bot_settings, booking_id=request.id, actor="staff:coord",
            now=MORNING,
        )  # fmt: skip
    fake.calls.clear()
    assert await _sender(bot_app, database, bot_settings, MORNING).run_once() == 1
    [card] = _sent(fake)
    assert int(card.params["chat_id"]) == 601
    assert card.text.startswith("✅ <b>Il tuo colloquio Ripartire è confermato.</b>")
    assert "Il personale dello sportello ha accettato la tua richiesta." in card.text
    assert request.code in card.text and "documento d'identità" in card.text
    assert [c.method for c in fake.calls].count("sendDocument") == 1
    calls = await maria.say("/prenotazione")
    assert "<b>Il tuo appuntamento</b>" in texts(calls)


async def test_a_declined_request_tells_the_reason_and_offers_to_choose_again(
    bot_app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    await _moderated_helpdesk(database)
    citizen_id = await _citizen(database, bot_settings, 602)
    luca = TelegramUser(bot_app, fake, 602)
    await _request(luca)
    request = await _booking_of(database, citizen_id)
    async with database.transaction() as session:
        await moderation.decline_request(
            session=session, settings=bot_settings, booking_id=request.id, actor="staff:coord",
            reason="Quel giorno lo sportello è chiuso <tutto il giorno>", now=MORNING,
        )  # fmt: skip
    fake.calls.clear()
    assert await _sender(bot_app, database, bot_settings, MORNING).run_once() == 1
    [told] = _sent(fake)
    assert "lo sportello non ha potuto confermare la tua richiesta" in told.text
    assert "Motivo: Quel giorno lo sportello è chiuso &lt;tutto il giorno&gt;" in told.text
    assert told.buttons == [("📅 Prenota un colloquio", "hds")]
    # The button starts the booking steps again.
    assert _data(await luca.press("hds"), "day:")


async def test_an_expired_request_frees_the_place_and_offers_to_choose_again(
    bot_app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    await _moderated_helpdesk(database)
    citizen_id = await _citizen(database, bot_settings, 603)
    anna = TelegramUser(bot_app, fake, 603)
    await _request(anna)
    request = await _booking_of(database, citizen_id)
    assert request.request_expires_at is not None
    at = request.request_expires_at + timedelta(minutes=1)
    done = await housekeeping.run_chores(database=database, settings=bot_settings, now=at)
    assert done.expired_requests == 1
    fake.calls.clear()
    assert await _sender(bot_app, database, bot_settings, at).run_once() == 1
    [told] = _sent(fake)
    assert "non è stata confermata in tempo" in told.text
    assert "il posto è di nuovo libero" in told.text
    assert told.buttons == [("📅 Prenota un colloquio", "hds")]
    assert (await _booking_of(database, citizen_id)).moderation == Moderation.EXPIRED.value
