"""/start, language, consent and refusal, help commands, private chats only."""

from __future__ import annotations

import time

from sqlalchemy import func, select
from telegram.ext import Application

from shared.citizens.models import Citizen, ConsentRefusal
from shared.db import Database
from shared.privacy import notice
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.bot.fake_telegram import FakeTelegram, ScriptedError, buttons, texts


async def test_start_offers_languages_then_notice(bot_app: Application, fake: FakeTelegram) -> None:  # type: ignore[type-arg]
    maria = TelegramUser(bot_app, fake, 111)
    calls = await maria.say("/start")
    assert "Scegli la lingua" in texts(calls)
    assert ("🇮🇹 Italiano", "lang:it") in buttons(calls)
    calls = await maria.press("lang:it")
    assert "Ripartire" in texts(calls)
    assert "Sei d'accordo" in texts(calls)
    assert "In breve" in texts(calls)
    assert [b[1] for b in buttons(calls)] == ["consent:yes:it", "notice:it", "consent:no:it"]
    english = await TelegramUser(bot_app, fake, 112, language="en").press("lang:en")
    assert "Do you agree" in texts(english)


async def test_refusal_stores_nothing_but_the_refusal(
    bot_app: Application, fake: FakeTelegram, database: Database
) -> None:  # type: ignore[type-arg]
    maria = TelegramUser(bot_app, fake, 113)
    await maria.say("/start")
    await maria.press("lang:it")
    calls = await maria.press("consent:no:it")
    assert "331 693 8049" in texts(calls)
    assert "lavorint@cris.it" in texts(calls)
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(Citizen)) == 0
        refusals = (await session.scalars(select(ConsentRefusal))).all()
        assert len(refusals) == 1
        assert refusals[0].notice_version


async def test_consent_is_recorded_with_notice_version(
    bot_app: Application, fake: FakeTelegram, database: Database
) -> None:  # type: ignore[type-arg]
    maria = TelegramUser(bot_app, fake, 114)
    await maria.press("consent:yes:en")
    async with database.transaction(read_only=True) as session:
        citizen = await session.scalar(select(Citizen))
        assert citizen is not None
        assert (citizen.telegram_user_id, citizen.language, citizen.consent_version) == (
            114,
            "en",
            notice.VERSION,
        )
        assert citizen.consented_at is not None


async def test_group_chats_are_refused(
    bot_app: Application, fake: FakeTelegram, database: Database
) -> None:  # type: ignore[type-arg]
    maria = TelegramUser(bot_app, fake, 115)
    maria.chat = {"id": -100, "type": "group", "title": "Friends"}
    calls = await maria.process(maria.text_update("/start"))
    assert "chat privata" in texts(fake.sent("sendMessage"))
    assert calls is not None
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(Citizen)) == 0


async def test_duplicate_update_is_handled_once(bot_app: Application, fake: FakeTelegram) -> None:  # type: ignore[type-arg]
    maria = TelegramUser(bot_app, fake, 116)
    update = maria.text_update("/aiuto")
    first = await maria.process(update)
    again = await maria.process(update)
    assert len(first) == 1
    assert again == []


async def test_help_and_privacy(bot_app: Application, fake: FakeTelegram) -> None:  # type: ignore[type-arg]
    maria = TelegramUser(bot_app, fake, 117)
    help_text = texts(await maria.say("/aiuto"))
    assert "349 152 8955" in help_text and "/miei_dati" in help_text
    assert "Ripartire" in texts(await maria.say("/privacy"))
    assert "Scegli la lingua" in texts(await maria.say("/lingua"))
    assert "Scrivi /start" in texts(await maria.say("ciao"))
    assert "non è più valido" in str([c.params for c in await maria.press("forged:1")])


async def test_a_reply_refused_by_flood_control_is_sent_after_the_wait(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
) -> None:
    fake.fail_next("sendMessage", ScriptedError(429, "Too Many Requests: retry after 1", 1))
    maria = TelegramUser(bot_app, fake, 118)
    started = time.monotonic()
    calls = await maria.say("/aiuto")
    assert time.monotonic() - started >= 0.9
    assert "349 152 8955" in texts(calls)
    assert len(fake.sent("sendMessage")) == 1


async def test_a_reply_is_not_held_for_a_long_flood_wait(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
) -> None:
    fake.fail_next("sendMessage", ScriptedError(429, "Too Many Requests: retry after 600", 600))
    maria = TelegramUser(bot_app, fake, 119)
    started = time.monotonic()
    await maria.say("/aiuto")
    assert time.monotonic() - started < 5
    assert fake.sent("sendMessage") == []
