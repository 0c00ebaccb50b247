"""Per-chat ordering with cross-chat concurrency, and the webhook's secret check."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from telegram import Update
from telegram.ext import Application, CommandHandler, TypeHandler

from bot.inbox import Inbox
from bot.processor import ChatOrderedProcessor
from bot.replies import Reply, Send
from bot.turn import Turn, turn
from bot.webhook import SECRET_HEADER, webhook_route
from shared.db import Database
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.bot.fake_telegram import FakeTelegram, texts


async def test_one_chat_in_order_other_chats_concurrently(
    bot_app: Application, fake: FakeTelegram
) -> None:  # type: ignore[type-arg]
    processor = ChatOrderedProcessor(max_concurrent_updates=64)
    log: list[tuple[int, int, str]] = []

    async def slow(update: Update, step: int) -> None:
        chat = update.effective_chat
        assert chat is not None
        log.append((chat.id, step, "start"))
        # Later updates of a chat are faster: without ordering they would overtake.
        await asyncio.sleep(0.05 * (3 - step))
        log.append((chat.id, step, "end"))

    users = [TelegramUser(bot_app, fake, 500 + n) for n in range(10)]
    jobs = []
    started = time.perf_counter()
    for step in range(3):
        for user in users:
            update = user.text_update(f"message {step}")
            jobs.append(processor.process_update(update, slow(update, step)))
    await asyncio.gather(*jobs)
    elapsed = time.perf_counter() - started

    for user in users:
        mine = [(step, what) for chat, step, what in log if chat == user.user["id"]]
        assert mine == [
            (0, "start"),
            (0, "end"),
            (1, "start"),
            (1, "end"),
            (2, "start"),
            (2, "end"),
        ]
    # 10 chats x (0.15 + 0.10 + 0.05) s run side by side: about 0.3 s, not 3 s.
    assert elapsed < 1.5
    assert processor._locks == {}  # nothing kept once the chats are idle


async def test_updates_through_the_application_keep_chat_order(
    bot_app: Application, fake: FakeTelegram
) -> None:  # type: ignore[type-arg]
    seen: list[str] = []

    async def record(update: Update, _context: object) -> None:
        assert update.message is not None and update.message.text is not None
        await asyncio.sleep(0.01 if update.message.text.endswith("1") else 0.03)
        seen.append(update.message.text)

    bot_app.add_handler(TypeHandler(Update, record), group=-1)
    user = TelegramUser(bot_app, fake, 600)
    await bot_app.start()
    try:
        for n in range(3):
            await bot_app.update_queue.put(user.text_update(f"/noop {n}"))
        await asyncio.wait_for(bot_app.update_queue.join(), 5)
    finally:
        await bot_app.stop()
    assert seen == ["/noop 0", "/noop 1", "/noop 2"]


async def test_no_per_chat_bookkeeping_is_kept_without_a_persistence(
    bot_app: Application, fake: FakeTelegram
) -> None:  # type: ignore[type-arg]
    """PTB notes every chat and user for a persistence to save; the bot has none to empty them."""
    assert bot_app.persistence is None
    users = [TelegramUser(bot_app, fake, 700 + n) for n in range(50)]
    await bot_app.start()
    try:
        for user in users:
            await bot_app.process_update(user.text_update("/start"))
            await bot_app.update_queue.put(user.text_update("/start"))
        await asyncio.wait_for(bot_app.update_queue.join(), 10)
    finally:
        await bot_app.stop()
    assert len(fake.sent("sendMessage")) == 2 * len(users)
    assert bot_app._chat_ids_to_be_updated_in_persistence == set()
    assert bot_app._user_ids_to_be_updated_in_persistence == set()


async def test_the_transaction_is_let_go_before_the_replies_are_sent(
    bot_app: Application, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[type-arg]
    """Replies wait on Telegram and the rate limiter: they must not keep the session alive."""
    held: list[weakref.ref[Any]] = []

    @turn
    async def hold(turn_: Turn) -> list[Reply]:
        assert turn_.citizen is not None
        held.extend([weakref.ref(turn_.session), weakref.ref(turn_.citizen)])
        return [Send("one"), Send("two")]

    handlers = bot_app.handlers[0]
    bot_app.add_handler(CommandHandler("hold", hold))
    handlers.insert(0, handlers.pop())  # before the fallback for unknown commands
    alive_when_sent: list[list[bool]] = []
    send = fake.do_request

    async def watching(*args: Any, **kwargs: Any) -> tuple[int, bytes]:
        if held:
            gc.collect()
            alive_when_sent.append([ref() is not None for ref in held])
        return await send(*args, **kwargs)

    user = TelegramUser(bot_app, fake, 800)
    await user.press("consent:yes:it")
    monkeypatch.setattr(fake, "do_request", watching)
    assert "two" in texts(await user.say("/hold"))
    assert alive_when_sent == [[False, False], [False, False]]


async def test_webhook_checks_the_secret(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    secret = "a-very-secret-webhook-token"
    inbox = Inbox(bot_app, database=database)
    web = Starlette(routes=[webhook_route(bot_app, inbox, path="/telegram/webhook", secret=secret)])
    user = TelegramUser(bot_app, fake, 700)
    update = user.text_update("/aiuto").to_dict()
    await bot_app.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=web), base_url="http://t"
        ) as client:
            missing = await client.post("/telegram/webhook", json=update)
            wrong = await client.post(
                "/telegram/webhook", json=update, headers={SECRET_HEADER: "nope"}
            )
            assert (missing.status_code, wrong.status_code) == (403, 403)
            await asyncio.sleep(0.05)
            assert fake.sent("sendMessage") == []
            garbage = await client.post(
                "/telegram/webhook", content=b"{not json", headers={SECRET_HEADER: secret}
            )
            assert garbage.status_code == 400
            right = await client.post(
                "/telegram/webhook", json=update, headers={SECRET_HEADER: secret}
            )
            assert right.status_code == 200
            await asyncio.wait_for(bot_app.update_queue.join(), 5)
    finally:
        await bot_app.stop()
    assert "349 152 8955" in texts(fake.sent("sendMessage"))
