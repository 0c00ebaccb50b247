"""Mixed load on the SQLite default: citizens through the bot while staff browse the dashboard.

One SQLite database with the dashboard benchmark's 1k cases (`bench_dashboard.load`) and the
bot benchmark's helpdesk with free places (`bench_bot.open_helpdesk`). In one process and
one event loop, as `ripartire run` serves both: 30 citizens each go through the whole
journey (intake, then a booking) on the bot as `build_application` makes it, on the fake
Telegram transport (`Application.process_update`, one citizen's updates in order, the
citizens at once), pausing THINK seconds (0.5-1.5 x, seeded) before each update; meanwhile
10 staff, each a browser-like client signed in through `/login` on the product's app,
cycle through the agenda (the day with bookings), the case list and a case page, pausing
the same. Three runs, each with 30 new citizens, in turn (the order reversed every other
round), three rounds with `--quick`, five without, after a warm-up run of 5 citizens:

- alone: the citizens, no staff;
- mixed: citizens and staff, as the dashboard is (a staff session is touched at most once a
  minute, so a GET of the agenda or the list is a read transaction: on SQLite no lock);
- mixed, touch per request: the same with the old behaviour switched back on in this
  process (every request a write transaction, `BEGIN IMMEDIATE`, that touches its session).

A case page stays a write in both: reading a case is audited.

Measured: each update's time through `process_update` (the bot's reply time, the fake
transport answering at once): p50 and p95 per run, the median over the rounds; the staff
pages' times; the transactions begun (SQLite's BEGIN IMMEDIATE, a write, waits there
for the write lock; a plain BEGIN takes none) and the time spent in them; errors: "database is locked" anywhere (logged by the bot or the app, or raised
to a client), other failed requests, the bot's apologies; every citizen must end booked.
Targets: no "database is locked"; the bot's p95 under mixed load <= 2 x its p95 alone.
SQLite only (the lock it takes up front is what is measured).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event, func, select
from telegram import Update

from dashboard import deps
from shared.booking.models import Booking, BookingState
from shared.citizens.models import Citizen
from shared.db import Database, utcnow
from shared.settings import Settings
from shared.staff import sessions
from shared.staff.models import Role
from tests.bench import bench_bot, bench_dashboard
from tests.bench._support import Backend, Databases, Options, table, verdict
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.bot.fake_telegram import FakeTelegram

TITLE = "Mixed load on SQLite"

CASES = 1_000
CITIZENS = 30
STAFF = 10
THINK = 2.0  # seconds before each update and each page, x 0.5-1.5
SEED = 20261203
MAX_P95_RATIO = 2.0
RUNS = ("alone", "mixed", "mixed, touch per request")
PAGES = ("agenda", "list", "case")
LOCKED = "database is locked"


def rounds(options: Options) -> int:
    return 3 if options.quick else 5


@contextmanager
def touch_per_request() -> Iterator[None]:
    """The dashboard as it was: every request's unit of work a write transaction (on SQLite
    `BEGIN IMMEDIATE`, the write lock up front) that touches its session."""
    only_reads, interval = deps.only_reads, sessions.TOUCH_INTERVAL
    deps.only_reads = lambda _request: False  # type: ignore[assignment]
    sessions.TOUCH_INTERVAL = timedelta(0)
    try:
        yield
    finally:
        deps.only_reads, sessions.TOUCH_INTERVAL = only_reads, interval


class Failures(logging.Handler):
    """Counts the errors logged anywhere, and those that are "database is locked" (only
    counts: a record's message may hold data)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors = 0
        self.locked = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.errors += 1
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and LOCKED in str(error):
            self.locked += 1


@dataclass
class Run:
    name: str
    replies: list[float] = field(default_factory=list)  # seconds per update
    pages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failed_pages: Counter[str] = field(default_factory=Counter)
    locked: int = 0  # "database is locked": logged or raised
    logged_errors: int = 0
    apologies: int = 0
    booked: int = 0
    seconds: float = 0.0
    # BEGIN IMMEDIATE (a write transaction, waiting for the write lock) and BEGIN (a read).
    begins: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def p(self, share: float) -> float:
        """The `share` quantile of the reply times, in ms."""
        cut = statistics.quantiles(self.replies, n=100, method="inclusive")
        return cut[round(share * 100) - 1] * 1000


@dataclass
class Site:
    database: Database
    bot: bench_bot.App
    fake: FakeTelegram
    setup: bench_bot.Setup
    clients: list[httpx.AsyncClient]
    urls: dict[str, list[str]]


async def open_site(stack: AsyncExitStack, databases: Databases) -> Site:
    database = await databases.create()
    settings = Settings(database_url=database.url, _env_file=None)
    now = utcnow()
    today = now.astimezone(settings.tz).date()
    users, helpdesks = await bench_dashboard.create_staff_and_helpdesks(database)
    forms = bench_dashboard.questionnaires(settings, today)
    workers = {users[u]: u for u, _, role in bench_dashboard.STAFF_USERS if role is Role.OPERATORE}
    plan = bench_dashboard.Planner(
        CASES, now=now, tz=settings.tz, helpdesks=helpdesks, workers=workers,
        coordinator="staff:coordinatore1", forms=forms,
    ).plan()  # fmt: skip
    await bench_dashboard.load(database, plan, settings, forms, now)
    requests = bench_dashboard._requests(
        plan, users[bench_dashboard.VIEWER], today, random.Random(SEED)
    )
    urls = {page: [r.url for r in requests[page]] for page in PAGES}
    app = bench_dashboard.bench_app(settings, database)
    clients = [
        await stack.enter_async_context(bench_dashboard.signed_in(app, bench_dashboard.VIEWER))
        for _ in range(STAFF)
    ]
    setup = await bench_bot.open_helpdesk(database)
    fake = FakeTelegram()
    bot = await bench_bot.new_bot(database, fake)
    stack.push_async_callback(bot.shutdown)
    return Site(database, bot, fake, setup, clients, urls)


async def citizen(site: Site, updates: list[Update], rng: random.Random, run: Run) -> None:
    for update in updates:
        await asyncio.sleep(THINK * rng.uniform(0.5, 1.5))
        started = time.perf_counter()
        await site.bot.process_update(update)
        run.replies.append(time.perf_counter() - started)


async def staff_member(
    site: Site, client: httpx.AsyncClient, number: int, stop: asyncio.Event, run: Run
) -> None:
    rng = random.Random(SEED + number)
    turn = number
    while not stop.is_set():
        for page in PAGES:
            pool = site.urls[page]
            url = pool[turn % len(pool)]
            started = time.perf_counter()
            try:
                response = await client.get(url)
            except Exception as exc:  # counted: the run goes on
                run.failed_pages[f"{page}: {exc.__class__.__name__}"] += 1
                run.locked += LOCKED in str(exc)
            else:
                run.pages[page].append(time.perf_counter() - started)
                if response.status_code != 200:
                    run.failed_pages[f"{page}: {response.status_code}"] += 1
            await asyncio.sleep(THINK * rng.uniform(0.5, 1.5))
        turn += 1


def journeys(site: Site, user_ids: list[int]) -> list[list[Update]]:
    """Each citizen's updates, built before the run (a journey of its own slot)."""
    steps = site.setup.journeys_for(len(user_ids))
    found = []
    for user_id, own in zip(user_ids, steps, strict=True):
        user = TelegramUser(site.bot, site.fake, user_id)
        found.append(
            [user.text_update(v) if how == "say" else user.press_update(v) for how, v in own]
        )
    return found


async def booked(database: Database, user_ids: list[int]) -> int:
    async with database.transaction(read_only=True) as session:
        found = await session.scalar(
            select(func.count(Booking.id))
            .join(Citizen, Citizen.id == Booking.citizen_id)
            .where(
                Citizen.telegram_user_id.in_(user_ids), Booking.state == BookingState.BOOKED.value
            )
        )
    return int(found or 0)


class Begins:
    """Times the BEGIN statements of a database: SQLite's BEGIN IMMEDIATE waits there for
    the write lock (the busy timeout), a plain BEGIN takes none."""

    def __init__(self, database: Database, run: Run) -> None:
        self.engine = database.engine.sync_engine
        self.run = run

    def _before(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            conn.info["bench_begin"] = (statement, time.perf_counter())

    def _after(self, conn: Any, *_args: Any) -> None:
        begun = conn.info.pop("bench_begin", None)
        if begun is not None:
            self.run.begins[begun[0]].append(time.perf_counter() - begun[1])

    def __enter__(self) -> Begins:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc_info: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


async def one_run(site: Site, name: str, number: int, citizens: int = CITIZENS) -> Run:
    run = Run(name)
    user_ids = site.setup.ids.take(citizens)
    updates = journeys(site, user_ids)
    site.fake.clear()
    failures = Failures()
    logging.getLogger().addHandler(failures)
    stop = asyncio.Event()
    with Begins(site.database, run):
        staff = (
            []
            if name == "alone"
            else [
                asyncio.create_task(staff_member(site, client, n, stop, run))
                for n, client in enumerate(site.clients)
            ]
        )
        started = time.perf_counter()
        try:
            await asyncio.gather(
                *(
                    citizen(site, own, random.Random(SEED * 31 + number * 1000 + n), run)
                    for n, own in enumerate(updates)
                )
            )
        finally:
            run.seconds = time.perf_counter() - started
            stop.set()
            await asyncio.gather(*staff)
            logging.getLogger().removeHandler(failures)
    run.locked += failures.locked
    run.logged_errors = failures.errors
    run.apologies = sum(1 for call in site.fake.calls if bench_bot.APOLOGY in call.text)
    run.booked = await booked(site.database, user_ids)
    return run


@asynccontextmanager
async def behaviour(name: str) -> AsyncIterator[None]:
    if name == "mixed, touch per request":
        with touch_per_request():
            yield
    else:
        yield


def _ms(seconds: list[float], share: float) -> float:
    if len(seconds) < 2:
        return float("nan")
    return statistics.quantiles(seconds, n=100, method="inclusive")[round(share * 100) - 1] * 1000


def report(found: dict[str, list[Run]], load: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    before, after = load
    print(
        f"load average at start {before[0]:.2f} {before[1]:.2f} {before[2]:.2f},"
        f" at end {after[0]:.2f} {after[1]:.2f} {after[2]:.2f} (cpus: {os.cpu_count()})"
    )
    p50 = {name: statistics.median(r.p(0.50) for r in runs) for name, runs in found.items()}
    p95 = {name: statistics.median(r.p(0.95) for r in runs) for name, runs in found.items()}
    rows = []
    for name, runs in found.items():
        pages = sum(len(v) for r in runs for v in r.pages.values())
        rows.append(
            [
                name,
                str(len(runs)),
                f"{statistics.median(len(r.replies) for r in runs):.0f}",
                f"{p50[name]:.1f}",
                f"{p95[name]:.1f}",
                " ".join(f"{r.p(0.95):.1f}" for r in runs),
                f"{p95[name] / p95['alone']:.2f}",
                str(pages),
                str(sum(r.locked for r in runs)),
                str(sum(sum(r.failed_pages.values()) for r in runs)),
                str(sum(r.logged_errors for r in runs)),
                str(sum(r.apologies for r in runs)),
            ]
        )
    print(
        table(
            ["run", "rounds", "updates", "p50 ms", "p95 ms", "p95 each round", "p95 / alone",
             "pages", "locked", "failed pages", "logged errors", "apologies"],
            rows,
        )
    )  # fmt: skip
    print("staff pages, ms (p50 / p95 over every round):")
    page_rows = []
    for name, runs in found.items():
        if name == "alone":
            continue
        cells = [name]
        for page in PAGES:
            times = [t for r in runs for t in r.pages[page]]
            cells.append(f"{_ms(times, 0.5):.1f} / {_ms(times, 0.95):.1f} ({len(times)})")
        page_rows.append(cells)
    print(table(["run", *PAGES], page_rows))
    print("transactions begun, per run (median), and the wait in SQLite's BEGIN, ms (p50 / p95):")
    begin_rows = []
    for name, runs in found.items():
        cells = [name]
        for statement in ("BEGIN IMMEDIATE", "BEGIN"):
            waits = [t for r in runs for t in r.begins[statement]]
            count = statistics.median(len(r.begins[statement]) for r in runs)
            cells.append(f"{count:.0f}: {_ms(waits, 0.5):.2f} / {_ms(waits, 0.95):.2f}")
        total = statistics.median(sum(r.begins["BEGIN IMMEDIATE"]) for r in runs)
        cells.append(f"{total:.1f}")
        begin_rows.append(cells)
    print(
        table(["run", "write (BEGIN IMMEDIATE)", "read (BEGIN)", "s waiting for the lock"],
              begin_rows)
    )  # fmt: skip
    failed = Counter[str]()
    for runs in found.values():
        for r in runs:
            failed.update(r.failed_pages)
    if failed:
        print("failed pages: " + ", ".join(f"{k} x{v}" for k, v in sorted(failed.items())))
    print()

    def target(label: str, value: str, goal: str, ok: bool) -> None:
        print(f"{label:<58}{value:>8}  (target {goal})  {verdict(ok)}")

    for name in RUNS:
        locked = sum(r.locked for r in found[name])
        target(f'"database is locked", {name}:', str(locked), "0", locked == 0)
    for name in RUNS[1:]:
        ratio = p95[name] / p95["alone"]
        target(
            f"bot reply p95, {name} / alone:",
            f"{ratio:.2f}",
            f"<= {MAX_P95_RATIO:g}",
            ratio <= MAX_P95_RATIO,
        )
    print(
        f"  (information: p95 with the touch per request / with the touch once a minute"
        f" {p95[RUNS[2]] / p95[RUNS[1]]:.2f}; p50 {p50[RUNS[2]] / p50[RUNS[1]]:.2f})"
    )


async def run(databases: Databases, options: Options) -> None:
    if databases.backend is not Backend.SQLITE:
        print("SQLite only: PostgreSQL takes no lock up front for a transaction")
        return
    load_before = os.getloadavg()
    async with AsyncExitStack() as stack:
        site = await open_site(stack, databases)
        print(
            f"{CASES:,} cases; {CITIZENS} citizens x {len(bench_bot.INTAKE) + 3}"
            f" updates on the bot, {STAFF} staff on {', '.join(PAGES)}; pauses of"
            f" {THINK * 0.5:g}-{THINK * 1.5:g} s; {rounds(options)} rounds of {len(RUNS)} runs\n"
        )
        # Warm-up: a few journeys and pages, not measured.
        async with behaviour("mixed"):
            await one_run(site, "mixed", -1, citizens=5)
        found: dict[str, list[Run]] = {name: [] for name in RUNS}
        for number in range(rounds(options)):
            order = RUNS if number % 2 == 0 else tuple(reversed(RUNS))
            for name in order:
                async with behaviour(name):
                    done = await one_run(site, name, number)
                if done.booked != CITIZENS:
                    raise AssertionError(f"{name}: {done.booked} of {CITIZENS} citizens booked")
                found[name].append(done)
                print(
                    f"  round {number + 1}, {name}: p95 {done.p(0.95):.1f} ms,"
                    f" {done.seconds:.0f} s, load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    report(found, (load_before, os.getloadavg()))
