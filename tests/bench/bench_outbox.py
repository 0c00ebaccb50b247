"""Outbox drain rate under Telegram's 30 messages/s limit, with one dispatcher and two.

PostgreSQL only (two instances need it). A fresh database with MESSAGES citizens, each
with an unfinished questionnaire and its expiry reminder queued (due now): the message
`bot.delivery.OutboxDispatcher` renders with one read and sends as one sendMessage. Each
dispatcher runs as in `ripartire run` (`bot.component.run_bot`): the bot's `Bot` from
`bot.application.build_application`, the dispatcher with its defaults (batch 30,
`overall_rate` 30/s: the limit, shared by the live dispatchers, `bot.pacing`; 1 s per
chat) and its own engine and pool, each in a process of its own (multiprocessing,
spawn), talking HTTP to a fake Bot API server in this process (`tests.bot.fake_bot_api`)
that answers every call and records when each sendMessage arrived and for which chat.
The dispatchers start together (a barrier, once each bot is initialised) and stop when
nothing is left to send; the runs alternate one and two dispatchers, each on new messages.

Measured per run: the drain rate (messages / seconds from the barrier to the last send,
so the first claim's latency counts), the steady rate (first to last send), the most
sends Telegram saw in any one second (a sliding window), and duplicates (sends beyond
the first per message, counted at the fake). Medians over the runs. Targets: drain rate
>= 27 messages/s, 0 duplicates; and, what the limit is for, at most 30 sends in any
second across the dispatchers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.synchronize import Barrier

from cryptography.fernet import Fernet
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse

from shared import crypto
from shared.citizens.models import Citizen
from shared.db import Database, utcnow
from shared.intake import service as intake
from shared.outbox import service as outbox
from shared.outbox.models import MessageState, OutboxMessage
from shared.settings import Settings
from tests.bench._support import Backend, Databases, Options, git_revision, table, verdict
from tests.bot.clock import most_in_one_second
from tests.bot.fake_bot_api import FakeBotApiServer
from tests.bot.fake_telegram import TOKEN

TITLE = "Outbox drain under the 30 messages/s limit"
MESSAGES = 240
TELEGRAM_LIMIT = 30
TARGET_RATE = 27.0


class CountingTelegram(FakeBotApiServer):
    """The fake Bot API server, keeping each sendMessage's arrival time and chat."""

    def __init__(self) -> None:
        super().__init__()
        self.sends: list[tuple[float, int]] = []

    async def _handle(self, request: Request) -> JSONResponse:
        if request.path_params["method"] == "sendMessage":
            form = await request.form()
            chat = form.get("chat_id")
            if chat is None:
                chat = (await request.json()).get("chat_id")
            self.sends.append((time.monotonic(), int(str(chat))))
        return await super()._handle(request)


def _settings(url: str, key: str, api: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url=url,
        secret_key="x" * 40,
        data_key=key,
        telegram_token=TOKEN,
        telegram_api_url=api,
        _env_file=None,
    )


def _dispatch(url: str, key: str, api: str, worker: str, barrier: Barrier) -> None:
    """A dispatcher's process: until nothing is pending or claimed."""
    asyncio.run(_dispatching(url, key, api, worker, barrier))


async def _dispatching(url: str, key: str, api: str, worker: str, barrier: Barrier) -> None:
    from bot.application import build_application
    from bot.delivery import OutboxDispatcher

    database = Database(url, cipher=crypto.DataCipher([key]))
    settings = _settings(url, key, api)
    application = build_application(settings=settings, database=database)
    await application.initialize()
    dispatcher = OutboxDispatcher(
        bot=application.bot, database=database, settings=settings, worker=worker
    )
    await asyncio.to_thread(barrier.wait)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        while await _left(database):
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
        await application.shutdown()
        await database.dispose()


async def _left(database: Database) -> int:
    async with database.transaction(read_only=True) as session:
        waiting = (MessageState.PENDING.value, MessageState.SENDING.value)
        return (
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.state.in_(waiting))
            )
            or 0
        )


async def _citizens(database: Database, count: int) -> list[int]:
    now = utcnow()
    async with database.transaction() as session:
        citizens = [
            Citizen(
                telegram_user_id=40_000_000 + n,
                telegram_chat_id=40_000_000 + n,
                name=f"Bench {n}",
                language="it",
            )
            for n in range(count)
        ]
        session.add_all(citizens)
        await session.flush()
        for citizen in citizens:
            await intake.start_intake(session=session, citizen_id=citizen.id, now=now)
        return [c.id for c in citizens]


async def _queue(database: Database, citizen_ids: list[int], run: int) -> None:
    now = utcnow()
    expires = (now + timedelta(days=10)).isoformat()
    async with database.transaction() as session:
        for citizen_id in citizen_ids:
            await outbox.enqueue(
                session=session, kind="intake_expiry_reminder", citizen_id=citizen_id,
                due_at=now, idempotency_key=f"bench:{run}:{citizen_id}",
                payload={"expires_at": expires},
            )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Run:
    dispatchers: int
    sent: int
    duplicates: int
    drain_rate: float
    steady_rate: float
    peak_second: int
    load: float


async def _run(database: Database, key: str, telegram: CountingTelegram, dispatchers: int) -> Run:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(dispatchers + 1)
    api = f"http://127.0.0.1:{telegram.port}"
    processes = [
        context.Process(
            target=_dispatch, args=(database.url, key, api, f"bench-{n}", barrier), daemon=True
        )
        for n in range(dispatchers)
    ]
    for process in processes:
        process.start()
    telegram.sends.clear()
    await asyncio.to_thread(barrier.wait, 300)
    released = time.monotonic()
    while any(process.is_alive() for process in processes):
        await asyncio.sleep(0.1)
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a dispatcher exited with {process.exitcode}")
    times = sorted(at for at, _ in telegram.sends)
    per_chat = Counter(chat for _, chat in telegram.sends)
    sent = len(per_chat)
    return Run(
        dispatchers=dispatchers,
        sent=sent,
        duplicates=sum(per_chat.values()) - sent,
        drain_rate=sent / (times[-1] - released),
        steady_rate=(len(times) - 1) / (times[-1] - times[0]),
        peak_second=most_in_one_second(times),
        load=os.getloadavg()[0],
    )


async def run(databases: Databases, options: Options) -> None:
    if databases.backend is not Backend.POSTGRESQL:
        print("PostgreSQL only: two dispatchers on one database need it.")
        return
    base = await databases.create()
    key = Fernet.generate_key().decode()
    database = Database(base.url, cipher=crypto.DataCipher([key]))
    rounds = 2 if options.quick else 3
    load_before = os.getloadavg()
    print(f"git {git_revision()}; {MESSAGES} messages per run, {rounds} runs each, interleaved")
    try:
        citizen_ids = await _citizens(database, MESSAGES)
        telegram = CountingTelegram()
        runs: list[Run] = []
        async with telegram.running():
            for round_ in range(rounds):
                order = (1, 2) if round_ % 2 == 0 else (2, 1)
                for dispatchers in order:
                    await _queue(database, citizen_ids, len(runs))
                    done = await _run(database, key, telegram, dispatchers)
                    runs.append(done)
                    print(
                        f"  run {len(runs)}: {dispatchers} dispatcher(s), {done.sent} sent, "
                        f"{done.drain_rate:.1f}/s, peak {done.peak_second} in 1 s, "
                        f"{done.duplicates} duplicate(s), load {done.load:.1f}"
                    )
    finally:
        await database.dispose()
    report(runs, (load_before, os.getloadavg()))


def report(runs: list[Run], loads: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    rows, verdicts = [], []
    for dispatchers in (1, 2):
        mine = [r for r in runs if r.dispatchers == dispatchers]
        drain = statistics.median(r.drain_rate for r in mine)
        steady = statistics.median(r.steady_rate for r in mine)
        peak = max(r.peak_second for r in mine)
        duplicates = sum(r.duplicates for r in mine)
        complete = all(r.sent == MESSAGES for r in mine)
        rows.append(
            [
                str(dispatchers), str(len(mine)), f"{drain:.1f}", f"{steady:.1f}", str(peak),
                str(duplicates), "yes" if complete else "NO",
            ]
        )  # fmt: skip
        verdicts.append(
            f"  {dispatchers} dispatcher(s): drain {drain:.1f}/s >= {TARGET_RATE:.0f} "
            f"{verdict(drain >= TARGET_RATE)}; duplicates {duplicates} = 0 "
            f"{verdict(duplicates == 0)}; at most {TELEGRAM_LIMIT} in any second ({peak}) "
            f"{verdict(peak <= TELEGRAM_LIMIT)}"
        )
    print()
    headers = [
        "dispatchers", "runs", "drain/s", "steady/s", "peak in 1 s", "duplicates", "all sent"
    ]  # fmt: skip
    print(table(headers, rows))
    print()
    print("\n".join(verdicts))
    before, after = loads
    print(
        f"  load average before {before[0]:.1f} {before[1]:.1f} {before[2]:.1f}, "
        f"after {after[0]:.1f} {after[1]:.1f} {after[2]:.1f}"
    )
