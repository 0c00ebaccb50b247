"""The database stops answering for a while: the citizen's updates are kept, in order, and
nobody is told that something was saved when it wasn't."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from telegram import Update
from telegram.ext import Application

from bot import turn
from shared.citizens.models import Citizen
from shared.db import Database
from shared.intake import questionnaire as q
from shared.intake.models import Intake
from shared.settings import Settings
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.bot.fake_telegram import FakeTelegram, texts
from tests.bot.outage import Outage

USER_ID = 5151
FALSE_COMFORT = "Niente di quello che hai scritto è perso"


async def _intake(database: Database) -> Intake:
    async with database.transaction(read_only=True) as session:
        found = await session.scalar(
            select(Intake).join(Citizen).where(Citizen.telegram_user_id == USER_ID)
        )
        assert found is not None
        return found


async def _during_outage(
    app: Application,  # type: ignore[type-arg]
    outage: Outage,
    updates: list[Update],
    seconds: float,
) -> None:
    """Queue `updates` the way polling does while the database is down for `seconds`."""
    await outage.begin()
    await app.start()
    try:
        for update in updates:
            await app.update_queue.put(update)
        await asyncio.sleep(seconds)
        assert outage.refused > 0  # the bot did try, and the database did refuse
        outage.end()
        await asyncio.wait_for(app.update_queue.join(), 30)
        # The last update leaves the queue when it starts: wait for its handling too.
        await asyncio.wait_for(_idle(app), 30)
    finally:
        await app.stop()


async def _idle(app: Application) -> None:  # type: ignore[type-arg]
    while app.update_processor.current_concurrent_updates:
        await asyncio.sleep(0.02)


async def test_updates_sent_while_the_database_is_down_are_handled_in_order_after_it(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    outage: Outage,
) -> None:
    user = TelegramUser(bot_app, fake, USER_ID)
    await user.press("consent:yes:it")  # the first question: residence
    fake.clear()

    answers = [user.press_update("ans:residence:yes"), user.press_update("ans:situation:job_loss")]
    await _during_outage(bot_app, outage, answers, seconds=2.0)

    # Both answers were kept and taken in the order they were given.
    found = await _intake(database)
    assert found.answers == {"residence": "yes", "situation": "job_loss"}
    assert found.current_step == "since"
    said = texts(fake.calls)
    assert q.question_text(q.step("since"), "it", settings=bot_settings) in said
    assert FALSE_COMFORT not in said
    assert "non è stato salvato" not in said


async def test_when_the_database_stays_down_the_citizen_is_asked_to_send_it_again(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    outage: Outage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(turn, "STORE_PATIENCE_SECONDS", 1.0)
    user = TelegramUser(bot_app, fake, USER_ID)
    await user.press("consent:yes:it")
    fake.clear()

    await _during_outage(bot_app, outage, [user.press_update("ans:residence:yes")], seconds=2.5)

    said = texts(fake.calls)
    assert FALSE_COMFORT not in said
    assert "non è stato salvato" in said
    assert "invialo di nuovo" in said.lower()
    assert "331 693 8049" in said  # /aiuto needs the database too: the contacts are given
    assert (await _intake(database)).answers == {}

    # And so it is: sent again once the database answers, it is taken.
    await user.press("ans:residence:yes")
    assert (await _intake(database)).answers == {"residence": "yes"}
