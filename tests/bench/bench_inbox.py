"""The durable inbox and replies (issue 15): their cost on the bot's `@turn` echo.

The turn echo of `bench_bot` (the update recorded, the sender looked up, an HTML reply),
fed one update at a time, in the same run:

- without: as before issue 15, `Application.process_update` with nothing kept (the
  turn's reply row is left out for this run only);
- durable: as the bot runs now, each update stored by `bot.inbox.Inbox.receive` (one
  transaction, as a webhook call or a polled batch of one), taken from the queue by the
  `ChatOrderedProcessor`, handled by the turn keeping its replies in its transaction,
  sent, then forgotten with its replies in batches (`Inbox.run`, every 0.2 s; the last
  batch inside the timing);
- durable, polled by 10: the same, the updates stored 10 at a time (one `getUpdates`
  batch: under load, polling gets what arrived during the previous call), then handled
  one at a time.

Target: durable ≤ 1.3 × without, per update.
"""

from __future__ import annotations

import asyncio
import gc
import html
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from sqlalchemy import func, select
from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from bot import turn as turn_module
from bot.inbox import Inbox
from bot.processor import ChatOrderedProcessor
from bot.replies import Reply, Send
from bot.turn import DEPS_KEY, Deps, Turn, turn
from shared.db import Database
from shared.inbox.models import InboundUpdate, OutboundReply
from tests.bench._support import Databases, Options, table, verdict
from tests.bench.bench_bot import bot_settings
from tests.bot.fake_telegram import TOKEN, FakeTelegram
from tests.bot.fake_telegram import Citizen as TelegramUser

TITLE = "Telegram bot: durable inbox and replies"

App: TypeAlias = "Application[Any, Any, Any, Any, Any, Any]"

CHATS = 50
MESSAGES = 10  # per chat and run
MAX_RATIO = 1.3
POLLED = 10


async def turn_echo(fake: FakeTelegram, database: Database) -> App:
    @turn
    async def echo(turn_: Turn) -> list[Reply]:
        return [Send(html.escape(turn_.text))] if turn_.text else []

    builder = Application.builder().token(TOKEN).request(fake).get_updates_request(fake)
    app: App = builder.updater(None).concurrent_updates(ChatOrderedProcessor()).build()
    app.bot_data[DEPS_KEY] = Deps(settings=bot_settings(database), database=database)
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, echo))
    await app.initialize()
    return app


class Updates:
    def __init__(self, app: App, fake: FakeTelegram) -> None:
        self.users = [TelegramUser(app, fake, 700_000 + n) for n in range(CHATS)]

    def next_run(self) -> list[Update]:
        return [user.text_update(f"ciao {n}") for n in range(MESSAGES) for user in self.users]


async def _nothing_kept(**_: object) -> None:
    return None


async def without(app: App, updates: list[Update]) -> float:
    kept = turn_module.inbox.keep_replies
    turn_module.inbox.keep_replies = _nothing_kept  # type: ignore[assignment]
    try:
        gc.collect()
        started = time.perf_counter()
        for update in updates:
            await app.process_update(update)
        return time.perf_counter() - started
    finally:
        turn_module.inbox.keep_replies = kept  # type: ignore[method-assign]


async def durable(app: App, received: Inbox, updates: list[Update], batch: int = 1) -> float:
    processor = app.update_processor
    stop = asyncio.Event()
    gc.collect()
    started = time.perf_counter()
    forgetting = asyncio.create_task(received.run(stop))
    for first in range(0, len(updates), batch):
        await received.receive(updates[first : first + batch])
        while not app.update_queue.empty():
            queued = app.update_queue.get_nowait()
            await processor.process_update(queued, app.process_update(queued))
    stop.set()
    await forgetting
    return time.perf_counter() - started


async def _left(database: Database) -> int:
    async with database.transaction(read_only=True) as session:
        inbound = await session.scalar(select(func.count()).select_from(InboundUpdate))
        replies = await session.scalar(select(func.count()).select_from(OutboundReply))
    return int(inbound or 0) + int(replies or 0)


async def run(databases: Databases, options: Options) -> None:
    database = await databases.create()
    fake = FakeTelegram()
    app = await turn_echo(fake, database)
    received = Inbox(app, database=database)
    updates = Updates(app, fake)
    runs: list[tuple[str, Callable[[list[Update]], Awaitable[float]]]] = [
        ("without", lambda batch: without(app, batch)),
        ("durable", lambda batch: durable(app, received, batch)),
        ("durable, polled by 10", lambda batch: durable(app, received, batch, POLLED)),
    ]
    warmup, repetitions = (1, 5) if options.quick else (2, 11)
    seconds: dict[str, list[float]] = {name: [] for name, _ in runs}
    for repetition in range(warmup + repetitions):
        shift = repetition % len(runs)
        order = runs[shift:] + runs[:shift]
        for name, measure in order:
            fake.clear()
            batch = updates.next_run()
            elapsed = await measure(batch)
            if len(fake.sent("sendMessage")) != len(batch):
                raise AssertionError(f"{name}: not every update was answered")
            if repetition >= warmup:
                seconds[name].append(elapsed)
    if await _left(database):
        raise AssertionError("durable: handled updates or sent replies were not forgotten")
    await app.shutdown()
    count = CHATS * MESSAGES
    ms = {name: statistics.median(s) * 1000 / count for name, s in seconds.items()}
    ratio = ms["durable"] / ms["without"]
    polled = ms["durable, polled by 10"] / ms["without"]
    print(
        f"the turn echo, {count} updates per run ({CHATS} chats x {MESSAGES}), one at a "
        f"time; median of {repetitions} runs"
    )
    rows = [
        [name, f"{ms[name]:.3f}", f"{1000 / ms[name]:,.0f}", f"{ms[name] / ms['without']:.2f}"]
        for name, _ in runs
    ]
    print(table(["turn echo", "ms/update", "updates/s", "x without"], rows))
    print(f"durable / without = {ratio:.2f} (target <= {MAX_RATIO}): {verdict(ratio <= MAX_RATIO)}")
    print(
        f"durable, polled by {POLLED} / without = {polled:.2f} (target <= {MAX_RATIO}): "
        f"{verdict(polled <= MAX_RATIO)}"
    )
