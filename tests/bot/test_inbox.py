"""The durable inbox: every update is stored before Telegram is told it arrived (the next
getUpdates offset, the webhook's 200), handled from there once, and forgotten after;
updates still stored at start are handled first."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import select
from telegram.ext import Application

from bot.component import create_component
from bot.inbox import Inbox
from bot.webhook import SECRET_HEADER, webhook_route
from dashboard.app import create_app
from shared.citizens.models import ProcessedUpdate
from shared.db import Database
from shared.inbox import service as inbox
from shared.inbox.models import InboundUpdate
from shared.settings import Settings
from tests.bot.clock import MORNING
from tests.bot.fake_bot_api import FakeBotApiServer
from tests.bot.fake_telegram import TOKEN, FakeTelegram, texts

HELP = "349 152 8955"  # in /aiuto's answer
USER_ID = 4343


def _settings(database: Database, api_url: str, **extra: object) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url=database.url, secret_key="k" * 40, telegram_token=TOKEN,
        telegram_api_url=api_url, _env_file=None, **extra,
    )  # fmt: skip


def _update(update_id: int, text: str, user_id: int = USER_ID) -> dict[str, object]:
    user = {"id": user_id, "is_bot": False, "first_name": "Ada", "language_code": "it"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": int(time.time()), "text": text,
            "chat": {"id": user_id, "type": "private"}, "from": user,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        },
    }  # fmt: skip


async def _until(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def _kept(database: Database) -> list[int]:
    async with database.transaction(read_only=True) as session:
        return list(await session.scalars(select(InboundUpdate.update_id)))


async def _handled(database: Database) -> list[int]:
    async with database.transaction(read_only=True) as session:
        return list(await session.scalars(select(ProcessedUpdate.update_id)))


def _sent(server: FakeBotApiServer) -> list[str]:
    return [params["text"] for method, params in server.calls if method == "sendMessage"]


async def test_polling_stores_each_batch_before_asking_for_the_next(database: Database) -> None:
    server = FakeBotApiServer()
    # What was stored (or already handled) each time an offset confirmed earlier updates.
    confirmed_unsaved: list[int] = []

    async def on_get_updates(offset: int) -> None:
        saved = set(await _kept(database)) | set(await _handled(database))
        pushed = [u["update_id"] for u in server.updates]
        confirmed_unsaved.extend(i for i in pushed if i < offset and i not in saved)  # type: ignore[operator]

    server.on_get_updates = on_get_updates
    async with server.running():
        component = create_component(
            settings=_settings(database, f"http://127.0.0.1:{server.port}"), database=database
        )
        assert component is not None
        async with component.lifespan():
            await _until(lambda: "getUpdates" in server.methods())
            for n in range(1, 6):
                server.push(_update(n, "/aiuto", user_id=USER_ID + n))
            await _until(lambda: len(_sent(server)) == 5)
            # Handled updates are forgotten (in batches, within a second or so).
            deadline = time.monotonic() + 5
            while await _kept(database) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
    assert confirmed_unsaved == []
    assert all(HELP in text for text in _sent(server))
    assert sorted(await _handled(database)) == [1, 2, 3, 4, 5]
    assert await _kept(database) == []


async def test_updates_stored_before_a_stop_are_handled_at_the_next_start(
    database: Database,
) -> None:
    async with database.transaction() as session:
        await inbox.keep(
            session=session,
            updates=[
                inbox.Received(update_id=41, chat_id=USER_ID, payload=_update(41, "/aiuto")),
                inbox.Received(update_id=42, chat_id=USER_ID, payload=_update(42, "/privacy")),
            ],
            now=MORNING,
        )
    server = FakeBotApiServer()
    async with server.running():
        component = create_component(
            settings=_settings(database, f"http://127.0.0.1:{server.port}"), database=database
        )
        assert component is not None
        async with component.lifespan():
            await _until(lambda: len(_sent(server)) >= 2)
    first, second = _sent(server)[:2]
    assert HELP in first  # in the order received
    assert "privacy" in second.lower()
    assert sorted(await _handled(database)) == [41, 42]
    assert await _kept(database) == []


async def test_an_update_stored_and_handled_but_not_forgotten_is_not_handled_again(
    database: Database,
) -> None:
    """The process died between the turn's commit and forgetting the update."""
    async with database.transaction() as session:
        await inbox.keep(
            session=session,
            updates=[inbox.Received(update_id=51, chat_id=USER_ID, payload=_update(51, "/aiuto"))],
            now=MORNING,
        )
        session.add(ProcessedUpdate(update_id=51, processed_at=MORNING))
    server = FakeBotApiServer()
    async with server.running():
        component = create_component(
            settings=_settings(database, f"http://127.0.0.1:{server.port}"), database=database
        )
        assert component is not None
        async with component.lifespan():
            await _until(lambda: "getUpdates" in server.methods())
            await asyncio.sleep(0.3)
    assert _sent(server) == []
    assert await _kept(database) == []


async def test_the_webhook_answers_once_the_update_is_stored(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    secret = "a-very-secret-webhook-token"
    received = Inbox(bot_app, database=database)
    web = create_app(
        settings=_settings(database, "http://127.0.0.1:9"), database=database, components=[]
    )
    web.router.routes.append(
        webhook_route(bot_app, received, path="/telegram/webhook", secret=secret)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web), base_url="http://t"
    ) as client:
        # The bot isn't taking updates yet: the 200 means stored, not handled.
        for n in (61, 62):
            answer = await client.post(
                "/telegram/webhook", json=_update(n, "/aiuto"), headers={SECRET_HEADER: secret}
            )
            assert answer.status_code == 200
        assert await _kept(database) == [61, 62]
        # Telegram sends one again (our 200 got lost): stored and queued once.
        again = await client.post(
            "/telegram/webhook", json=_update(61, "/aiuto"), headers={SECRET_HEADER: secret}
        )
        assert again.status_code == 200
    assert bot_app.update_queue.qsize() == 2
    await bot_app.start()
    try:
        await asyncio.wait_for(bot_app.update_queue.join(), 5)
    finally:
        await bot_app.stop()
    await received.forget_handled()
    assert texts(fake.sent("sendMessage")).count(HELP) == 2
    assert await _kept(database) == []
