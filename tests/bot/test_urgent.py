"""Urgent first on Telegram, through the real PTB stack: an urgent citizen is offered the
soonest free days at any helpdesk before the choice of helpdesk, and the places a helpdesk
keeps for urgent citizens are neither shown nor bookable by the others."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import select
from telegram.ext import Application

from shared.booking import hours
from shared.booking.models import Booking
from shared.db import Database
from shared.settings import Settings
from tests.bot.clock import MORNING
from tests.bot.fake_telegram import TOKEN, FakeTelegram, buttons, texts
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.factories import ROME, make_citizen, make_helpdesk

TODAY = MORNING.astimezone(ROME).date()
KEPT_DAY = TODAY + timedelta(days=3)


@pytest.fixture
def bot_settings(database: Database) -> Settings:
    """The bot's settings, keeping one place per helpdesk and day for urgent citizens."""
    return Settings(  # type: ignore[call-arg]
        database_url=database.url,
        secret_key="x" * 40,
        telegram_token=TOKEN,
        telegram_api_url="http://127.0.0.1:9/fake",
        urgent_places_per_day=1,
        _env_file=None,
    )


async def _two_helpdesks(database: Database) -> tuple[int, int]:
    """ "Sportello Sud" open every day; "Sportello Nord" only on `KEPT_DAY`, 9:00-9:30, one
    place: the one place it keeps that day."""
    async with database.transaction() as session:
        south = await make_helpdesk(
            session, name="Sportello Sud", weekdays=tuple(range(7)), valid_from=TODAY
        )
        north = await make_helpdesk(session, name="Sportello Nord", weekdays=())
        await hours.add_extra_opening(
            session=session, helpdesk_id=north.id, day=KEPT_DAY, opens_at=time(9),
            closes_at=time(9, 30), slot_minutes=30, places=1, actor="test",
        )  # fmt: skip
        return south.id, north.id


async def _citizen(database: Database, user_id: int, *, urgent: bool) -> int:
    async with database.transaction() as session:
        citizen = await make_citizen(session, urgent=urgent)
        citizen.telegram_user_id = citizen.telegram_chat_id = user_id
        return citizen.id


def _days(calls: list) -> list[str]:  # type: ignore[type-arg]
    return [d for _, d in buttons(calls) if d.startswith("day:")]


async def test_an_urgent_citizen_sees_the_soonest_days_at_any_helpdesk_first(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    south, north = await _two_helpdesks(database)
    await _citizen(database, 601, urgent=True)
    calls = await TelegramUser(bot_app, fake, 601).press("hds")
    assert "i primi giorni con un posto libero, in qualsiasi sportello" in texts(calls)
    days = _days(calls)
    assert len(days) == 4
    dates = [d.split(":")[2] for d in days]
    assert dates == sorted(dates) and dates[0] == TODAY.strftime("%Y%m%d")
    # Then the helpdesks, to choose one first if they prefer.
    assert [d for _, d in buttons(calls) if d.startswith("hd:")] == [f"hd:{north}", f"hd:{south}"]
    # The kept place of Nord is theirs to take: its day opens its time.
    calls = await TelegramUser(bot_app, fake, 601).press(
        f"day:{north}:{KEPT_DAY.strftime('%Y%m%d')}"
    )
    assert [d for _, d in buttons(calls) if d.startswith("tm:")] == [
        f"tm:{north}:{int(datetime.combine(KEPT_DAY, time(9), tzinfo=ROME).timestamp())}"
    ]


async def test_a_citizen_not_urgent_neither_sees_nor_books_a_kept_place(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    south, north = await _two_helpdesks(database)
    citizen_id = await _citizen(database, 602, urgent=False)
    maria = TelegramUser(bot_app, fake, 602)
    calls = await maria.press("hds")
    # Nord's one place is kept: only Sud has places for Maria, so its days come at once.
    assert "in qualsiasi sportello" not in texts(calls)
    assert _days(calls) and all(d.startswith(f"day:{south}:") for d in _days(calls))
    calls = await maria.press(f"day:{north}:{KEPT_DAY.strftime('%Y%m%d')}")
    assert not [d for _, d in buttons(calls) if d.startswith("tm:")]
    # A forged button to book it: refused, nothing booked.
    epoch = int(datetime.combine(KEPT_DAY, time(9), tzinfo=ROME).timestamp())
    calls = await maria.press(f"bk:{north}:{epoch}")
    assert "quel posto è appena stato preso" in texts(calls)
    async with database.transaction(read_only=True) as session:
        assert (
            await session.scalars(select(Booking).where(Booking.citizen_id == citizen_id))
        ).all() == []
