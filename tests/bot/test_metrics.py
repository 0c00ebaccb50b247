"""`/metrics` moves with the bot's work: messages sent or not, by reason code."""

from __future__ import annotations

from datetime import UTC

import httpx
from prometheus_client.parser import text_string_to_metric_families
from telegram.ext import Application

from bot.delivery import OutboxDispatcher
from dashboard.app import create_app
from shared.booking import service as booking_service
from shared.db import Database
from shared.settings import Settings
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.bot.fake_telegram import FakeTelegram, ScriptedError
from tests.factories import make_citizen, make_helpdesk, rome

BOOKED_AT = rome(2026, 6, 5, 10)
APPOINTMENT = rome(2026, 6, 9, 9, 30)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(database: Database, settings: Settings) -> Samples:
    app = create_app(settings=settings, database=database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def moved(before: Samples, after: Samples) -> Samples:
    """The samples of ours that changed, by how much."""
    return {
        key: value - before.get(key, 0.0)
        for key, value in after.items()
        if key[0].startswith("ripartire_") and value != before.get(key, 0.0)
    }


async def confirmation_for_a_new_citizen(
    database: Database, settings: Settings, helpdesk_id: int
) -> None:
    """A booking made by staff: its confirmation is queued for the citizen."""
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        await booking_service.book_slot(
            session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk_id,
            starts_at=APPOINTMENT, actor="staff:1", now=BOOKED_AT, confirm_by_message=True,
        )  # fmt: skip


async def test_messages_sent_and_refused_move_their_counters(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    now = BOOKED_AT.astimezone(UTC)
    sender = OutboxDispatcher(
        bot=bot_app.bot, database=database, settings=bot_settings, worker="w1",
        clock=lambda: now, per_chat_interval=0.0,
    )  # fmt: skip

    async with database.transaction() as session:
        helpdesk_id = (await make_helpdesk(session, places=30)).id
    await confirmation_for_a_new_citizen(database, bot_settings, helpdesk_id)
    before = await scrape(database, bot_settings)
    assert await sender.run_once() == 1
    changes = moved(before, await scrape(database, bot_settings))
    # (The oldest due message's age moves too, on the wall clock the route reads.)
    changes.pop(("ripartire_outbox_oldest_due_seconds", ()), None)
    assert changes == {
        ("ripartire_outbox_sent_total", ()): 1.0,
        ("ripartire_outbox_backlog", ()): -1.0,
    }

    for status, description, label in (
        (400, "Bad Request: chat not found", ("failed", "bad_request")),
        (403, "Forbidden: bot was blocked by the user", ("unreachable", "forbidden")),
        (502, "Bad Gateway", ("retry", "network")),
    ):
        await confirmation_for_a_new_citizen(database, bot_settings, helpdesk_id)
        fake.fail_next("sendMessage", ScriptedError(status, description))
        before = await scrape(database, bot_settings)
        assert await sender.run_once() == 1
        changes = moved(before, await scrape(database, bot_settings))
        key = ("ripartire_outbox_not_sent_total", (("outcome", label[0]), ("reason", label[1])))
        assert changes.get(key) == 1.0, changes
        assert ("ripartire_outbox_sent_total", ()) not in changes
        # No label names a person, a chat or what Telegram said.
        assert all(
            value in {"failed", "unreachable", "retry", "bad_request", "forbidden", "network"}
            for name, labels in changes
            for _, value in labels
        )


async def test_each_update_handled_is_counted_with_its_time(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    user = TelegramUser(bot_app, fake, 5_550_001, first_name="Ada")
    before = await scrape(database, bot_settings)
    await user.say("/start")
    await user.press("lang:it")
    after = await scrape(database, bot_settings)
    count = ("ripartire_bot_update_seconds_count", ())
    assert after[count] - before.get(count, 0.0) == 2.0
    spent = ("ripartire_bot_update_seconds_sum", ())
    assert after[spent] > before.get(spent, 0.0)
    # Every update falls in the last bucket (+Inf); each bucket counts at most them all.
    buckets = {k: v for k, v in after.items() if k[0] == "ripartire_bot_update_seconds_bucket"}
    assert buckets[("ripartire_bot_update_seconds_bucket", (("le", "+Inf"),))] == after[count]
