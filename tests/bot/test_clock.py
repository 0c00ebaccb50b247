"""The bot handles every update at the instant its clock says (`build_application(clock=...)`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from telegram.ext import Application

from shared.citizens.models import Citizen
from shared.db import Database
from shared.intake import questionnaire as q
from shared.settings import Settings
from tests.bot.clock import MORNING, FixedClock
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.bot.fake_telegram import FakeTelegram, texts
from tests.factories import ROME


async def consented_at(database: Database, user_id: int) -> datetime | None:
    async with database.transaction(read_only=True) as session:
        citizen = await session.scalar(select(Citizen).where(Citizen.telegram_user_id == user_id))
        assert citizen is not None
        return citizen.consented_at


async def test_the_bot_runs_at_the_instant_of_its_clock(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    clock: FixedClock,
) -> None:
    assert clock() == MORNING
    maria = TelegramUser(bot_app, fake, 501)
    await maria.press("consent:yes:it")
    assert await consented_at(database, 501) == MORNING
    assert "10/03/2027" in texts(await maria.say("/privacy"))


async def test_the_future_is_after_the_clocks_month(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    clock: FixedClock,
    bot_settings: Settings,
) -> None:
    # On 31 January 2027 at 23:30 in Rome (22:30 UTC), February 2027 has not come yet…
    clock.set(datetime(2027, 1, 31, 23, 30, tzinfo=ROME))
    maria = TelegramUser(bot_app, fake, 502)
    await maria.press("consent:yes:it")
    await maria.press("ans:residence:yes")
    await maria.press("ans:situation:job_loss")
    calls = await maria.say("02/2027")
    future = q.reask_text(q.step("since"), "future", "it", settings=bot_settings)
    assert future in texts(calls)
    # …and an hour later, on 1 February in Rome (still 31 January in UTC), it has.
    clock.advance(hours=1)
    calls = await maria.say("02/2027")
    assert future not in texts(calls)
    assert "pandemia" in texts(calls)
