from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from telegram.ext import Application

from bot.application import build_application
from bot.turn import Clock
from shared.db import Database
from shared.settings import Settings
from tests.bot.clock import FixedClock
from tests.bot.fake_telegram import TOKEN, FakeTelegram
from tests.bot.outage import Outage


@pytest.fixture
def bot_settings(database: Database) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url=database.url,
        secret_key="x" * 40,
        telegram_token=TOKEN,
        telegram_api_url="http://127.0.0.1:9/fake",
        _env_file=None,
    )


@pytest.fixture
def fake() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
def clock() -> FixedClock:
    """The bot's clock: a fixed weekday morning in Rome (`tests.bot.clock.MORNING`).

    A test moves it (`clock.set`, `clock.advance`) or a module overrides the fixture.
    """
    return FixedClock()


@pytest.fixture
async def bot_app(
    bot_settings: Settings, database: Database, fake: FakeTelegram, clock: Clock
) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    app = build_application(settings=bot_settings, database=database, request=fake, clock=clock)
    await app.initialize()
    yield app
    await app.shutdown()


@pytest.fixture
def outage(database: Database) -> Iterator[Outage]:
    found = Outage(database)
    yield found
    found.end()
    found.remove()
