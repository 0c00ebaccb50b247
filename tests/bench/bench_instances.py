"""Two `ripartire run` instances against one: dashboard requests/s and bot updates/s.

PostgreSQL only (two instances need it). One fresh database with the dashboard
benchmark's 1k cases (`bench_dashboard.Planner`, `load`) and its staff. Two real
`ripartire run` processes, started as tests/test_instances.py starts them (each its own
port, the bot in webhook mode), talk to a fake Bot API server in a process of its own
(`tests.bot.fake_bot_api`, counting each sendMessage and when it came). Both stay up the
whole run; a round with one instance sends all the load to A (B idles: its outbox and
lease polling is counted in the CPU table), a round with two spreads it over both.

- Dashboard: CLIENTS browser-like clients, each signed in once through `/login` (a staff
  session is valid on both instances), loop without pausing over the agenda (the day
  with 20 bookings), the case list and a case page (100 in turn), client n on instance
  n mod k, for DASHBOARD_SECONDS: requests/s over the phase.
- Bot: UPDATES webhook POSTs of `/start` from as many new chats (one reply each, nothing
  stored before consent: the inbox's row, the turn's transaction, the reply, the forget),
  update n on instance n mod k, POSTERS at once as Telegram's own connections would:
  updates/s from the first POST to the last reply at the fake.

The loads come from this process; each round runs one, then two (or two, then one),
after a warm-up on both; medians over the rounds. Where the CPU went, per phase, from
/proc: each instance's process, PostgreSQL's backends of the database (by their process
title: the server's shared processes and other databases' backends are the machine's
other tenants), the fake Telegram, this process (the load), and the rest of the machine. PostgreSQL's backends of the database are sampled ten times a
second from pg_stat_activity (running, waiting on a lock, idle in a transaction the app
holds). With `--profile`, a third instance under cProfile takes one dashboard and one bot
phase alone, and its own time per package and its top functions are printed.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import multiprocessing
import os
import pstats
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from starlette.requests import Request
from starlette.responses import JSONResponse

from shared import crypto
from shared.db import Database, utcnow
from shared.settings import Settings
from shared.staff.models import Role
from tests.bench import bench_dashboard
from tests.bench._support import Backend, Databases, Options, git_revision, table
from tests.bot.fake_bot_api import FakeBotApiServer
from tests.bot.fake_telegram import TOKEN

TITLE = "Two instances on one PostgreSQL"

CASES = 1_000
SEED = 20261203
CLIENTS = 8
PAGES = ("agenda", "list", "case")
POSTERS = 16
WEBHOOK_SECRET = "bench-instances-webhook-secret"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# The benchmark's chats: below those of the loaded citizens (700_000_000 + 7 n).
FIRST_CHAT = 50_000_000
LAST_CHAT = 60_000_000
START_SECONDS = 120.0
PHASE_TIMEOUT = 180.0
SAMPLE_EVERY = 0.1  # pg_stat_activity
RIPARTIRE = shutil.which("ripartire", path=str(Path(sys.executable).parent)) or "ripartire"
TICKS = os.sysconf("SC_CLK_TCK")
# Printed per phase: who used the CPU.
CONSUMERS = ("instance A", "instance B", "postgres", "fake Telegram", "load (this process)")


def dashboard_seconds(options: Options) -> float:
    return 8.0 if options.quick else 20.0


def updates_per_phase(options: Options) -> int:
    return 300 if options.quick else 800


def rounds(options: Options) -> int:
    return 3 if options.quick else 5


# --- the fake Telegram, in a process of its own ---------------------------------------


class CountingTelegram(FakeBotApiServer):
    """The fake Bot API server, timing each sendMessage to a benchmark chat; its method
    `benchCount` answers how many came, the last one's time.monotonic() and how many
    webhooks were registered (how many bots are on)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: list[float] = []
        self.webhooks = 0

    async def _handle(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        if method == "benchCount":
            return JSONResponse(
                {"sent": len(self.sent_at), "last": max(self.sent_at, default=0.0),
                 "webhooks": self.webhooks}
            )  # fmt: skip
        response = await super()._handle(request)
        # The call just recorded is this one's (nothing awaited since); only the counts
        # are kept, a run's calls would fill the memory.
        params = self.calls[-1][1]
        self.calls.clear()
        self.paths.clear()
        if method == "setWebhook":
            self.webhooks += 1
        elif method == "sendMessage" and FIRST_CHAT <= int(params.get("chat_id", 0)) < LAST_CHAT:
            self.sent_at.append(time.monotonic())
        return response


def _telegram_process(pipe: Connection) -> None:
    asyncio.run(_telegram(pipe))


async def _telegram(pipe: Connection) -> None:
    server = CountingTelegram()
    async with server.running():
        pipe.send(server.port)
        while not pipe.poll():
            await asyncio.sleep(0.2)


# --- CPU from /proc ---------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat from the state on (field 3), or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu(pid: int) -> float:
    """User + system seconds of a process and of its children it reaped."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / TICKS


def process_wait(pid: int) -> float:
    """Seconds the process's main thread was runnable but waiting for a CPU (schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def postgres_backends(database: str) -> dict[int, tuple[float, float]]:
    """CPU and run-queue seconds of PostgreSQL's backends of `database`, by process (its
    name is in each backend's title); the other databases' and the shared processes' go
    to the rest of the machine."""
    found: dict[int, tuple[float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if f" {database} " in title and (fields := _stat(int(entry.name))) is not None:
            cpu = (int(fields[11]) + int(fields[12])) / TICKS
            found[int(entry.name)] = (cpu, process_wait(int(entry.name)))
    return found


def machine_cpu() -> tuple[float, float]:
    """Busy and idle seconds of all CPUs (/proc/stat; iowait counted as idle)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, idle / TICKS


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    at: float
    consumers: dict[str, float]
    busy: float
    idle: float
    waits: dict[str, float]  # runnable, waiting for a CPU
    postgres: dict[int, tuple[float, float]]  # the database's backends: CPU, waits


def snapshot(pids: dict[str, int], database: str) -> CpuSnapshot:
    consumers = {name: process_cpu(pid) for name, pid in pids.items()}
    waits = {name: process_wait(pid) for name, pid in pids.items()}
    postgres = postgres_backends(database)
    busy, idle = machine_cpu()
    return CpuSnapshot(time.monotonic(), consumers, busy, idle, waits, postgres)


@dataclass(frozen=True, slots=True)
class CpuUse:
    """Seconds of CPU over a phase, per consumer; `other` is the rest of the machine."""

    wall: float
    consumers: dict[str, float]
    other: float
    idle: float
    waits: dict[str, float]

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot) -> CpuUse:
        consumers = {k: after.consumers[k] - before.consumers[k] for k in before.consumers}
        # A backend started during the phase counts whole; one that ended is lost (the
        # pools' connections live long).
        started = {pid: (0.0, 0.0) for pid in after.postgres if pid not in before.postgres}
        then = before.postgres | started
        consumers["postgres"] = sum(
            cpu - then[pid][0] for pid, (cpu, _) in after.postgres.items() if pid in then
        )
        postgres_wait = sum(
            waited - then[pid][1] for pid, (_, waited) in after.postgres.items() if pid in then
        )
        busy = after.busy - before.busy
        return cls(
            wall=after.at - before.at,
            consumers=consumers,
            other=max(0.0, busy - sum(consumers.values())),
            idle=after.idle - before.idle,
            waits={k: after.waits[k] - before.waits[k] for k in before.waits}
            | {"postgres": postgres_wait},
        )


# --- PostgreSQL's backends, sampled -----------------------------------------------------

ACTIVITY = """
SELECT CASE
         WHEN state = 'active' AND wait_event_type IS NULL THEN 'running'
         WHEN state = 'active' AND wait_event_type = 'Lock' THEN 'waiting: lock'
         WHEN state = 'active' THEN 'waiting: ' || wait_event_type
         WHEN state LIKE 'idle in transaction%' THEN 'idle in transaction'
         ELSE 'idle'
       END AS what, count(*)
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
GROUP BY 1
"""
ACTIVITY_KINDS = ("running", "waiting: lock", "idle in transaction")


class ActivitySampler:
    """Backends of the database by what they are doing, summed over samples."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.sums: Counter[str] = Counter()
        self.samples = 0
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None

    async def __aenter__(self) -> ActivitySampler:
        self._connection = await asyncpg.connect(self.dsn)
        self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        assert self._connection is not None
        while True:
            for what, count in await self._connection.fetch(ACTIVITY):
                self.sums[what] += count
            self.samples += 1
            await asyncio.sleep(SAMPLE_EVERY)

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None and self._connection is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        await self._connection.close()

    def mean(self, what: str) -> float:
        return self.sums[what] / self.samples if self.samples else 0.0


# --- the instances ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Instance:
    name: str
    port: int
    process: asyncio.subprocess.Process
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def instance_env(url: str, key: str, telegram_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPARTIRE_")}
    return env | {
        "RIPARTIRE_DATABASE_URL": url,
        "RIPARTIRE_DATA_KEY": key,
        "RIPARTIRE_SECRET_KEY": "s" * 40,
        "RIPARTIRE_TELEGRAM_TOKEN": TOKEN,
        "RIPARTIRE_TELEGRAM_API_URL": f"http://127.0.0.1:{telegram_port}",
        "RIPARTIRE_WEBHOOK_URL": f"https://ripartire.example.org{WEBHOOK_PATH}",
        "RIPARTIRE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }


# `ripartire run` under cProfile, profiling only from a SIGUSR1 to the next SIGUSR2 (then
# the stats are written to argv[1]): the measured phase, not the imports and the start.
# Timed in the event loop thread's CPU seconds: on a machine whose cores are all busy, a
# wall-clock profile charges the time the process waited for a CPU to whatever it was
# doing when it lost it (mostly `socket.send`, which wakes the reader).
PROFILED_RUN = """
import cProfile, signal, sys, time
from dashboard.cli import main
path, profiler = sys.argv.pop(1), cProfile.Profile()
def start(*_):
    global profiler
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
def stop(*_):
    profiler.disable()
    profiler.dump_stats(path)
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, stop)
main()
"""


async def start_instance(
    name: str, env: dict[str, str], workdir: Path, profile_to: Path | None = None
) -> Instance:
    port, log = _free_port(), workdir / f"{name}.log"
    command = [RIPARTIRE, "run", "--port", str(port)]
    if profile_to is not None:
        command = [sys.executable, "-c", PROFILED_RUN, str(profile_to), "run", "--port", str(port)]
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    return Instance(name, port, process, log)


async def until(what: str, check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        await asyncio.sleep(0.2)


async def wait_started(instances: Sequence[Instance], telegram: Telegram) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for instance in instances:

            async def healthy(instance: Instance = instance) -> bool:
                if instance.process.returncode is not None:
                    raise AssertionError(f"{instance.name} exited: {instance.output()[-3000:]}")
                try:
                    return (await client.get(f"{instance.url}/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(f"{instance.name} answers /healthz", healthy, START_SECONDS)
    before = telegram.webhooks_at_start

    async def bots_on() -> bool:
        return int((await telegram.count())["webhooks"]) >= before + len(instances)

    await until("the bots registered their webhook", bots_on, START_SECONDS)
    telegram.webhooks_at_start += len(instances)


async def stop_instance(instance: Instance) -> None:
    if instance.process.returncode is None:
        instance.process.terminate()
    try:
        await asyncio.wait_for(instance.process.wait(), 60)
    except TimeoutError:
        instance.process.kill()
        await instance.process.wait()


UPDATES_COUNT = re.compile(r"^ripartire_bot_update_seconds_(count|sum) (\S+)$")


async def bot_metrics(client: httpx.AsyncClient, instance: Instance) -> tuple[float, float]:
    """This instance's updates handled and their summed handling seconds."""
    found = {"count": 0.0, "sum": 0.0}
    for line in (await client.get(f"{instance.url}/metrics")).text.splitlines():
        if match := UPDATES_COUNT.match(line):
            found[match[1]] = float(match[2])
    return found["count"], found["sum"]


# --- the loads ----------------------------------------------------------------------------


class Telegram:
    """The fake Bot API server's process, and how to ask it for its counts."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self.process = context.Process(target=_telegram_process, args=(child,), daemon=True)
        self.port = 0
        self.webhooks_at_start = 0
        self._client = httpx.AsyncClient(timeout=10)

    async def start(self) -> None:
        self.process.start()
        self.port = await asyncio.to_thread(self._pipe.recv)

    async def count(self) -> dict[str, Any]:
        response = await self._client.post(f"http://127.0.0.1:{self.port}/bot{TOKEN}/benchCount")
        result: dict[str, Any] = response.json()
        return result

    async def stop(self) -> None:
        await self._client.aclose()
        self._pipe.send("stop")
        await asyncio.to_thread(self.process.join, 30)
        if self.process.is_alive():
            self.process.terminate()


@dataclass
class Staff:
    """The staff's signed-in clients and the URLs they ask for."""

    clients: list[httpx.AsyncClient]
    urls: dict[str, list[str]]


@dataclass
class Phase:
    instances: int
    kind: str  # "dashboard" or "bot"
    done: int
    seconds: float
    cpu: CpuUse
    activity: dict[str, float]
    per_instance: list[int]
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failed: Counter[str] = field(default_factory=Counter)
    handling_ms: float = 0.0  # bot: mean time from receipt to the reply, per the metrics

    @property
    def rate(self) -> float:
        return self.done / self.seconds


async def dashboard_phase(
    staff: Staff, targets: Sequence[Instance], seconds: float, pids: dict[str, int], dsn: str
) -> Phase:
    latency: dict[str, list[float]] = defaultdict(list)
    failed: Counter[str] = Counter()
    per_instance = [0] * len(targets)
    turns = itertools.count()
    done = 0

    async def browse(number: int, client: httpx.AsyncClient) -> None:
        nonlocal done
        where = number % len(targets)
        base = targets[where].url
        while time.monotonic() < deadline:
            turn = next(turns)
            for page in PAGES:
                pool = staff.urls[page]
                started = time.monotonic()
                try:
                    response = await client.get(base + pool[turn % len(pool)])
                except httpx.HTTPError as exc:
                    failed[f"{page}: {exc.__class__.__name__}"] += 1
                    continue
                if response.status_code != 200:
                    failed[f"{page}: {response.status_code}"] += 1
                    continue
                latency[page].append(time.monotonic() - started)
                per_instance[where] += 1
                done += 1

    async with ActivitySampler(dsn) as activity:
        before = snapshot(pids, make_url(dsn).database or "")
        deadline = before.at + seconds
        await asyncio.gather(*(browse(n, c) for n, c in enumerate(staff.clients)))
        after = snapshot(pids, make_url(dsn).database or "")
    phase = Phase(
        instances=len(targets), kind="dashboard", done=done, seconds=after.at - before.at,
        cpu=CpuUse.between(before, after),
        activity={k: activity.mean(k) for k in ACTIVITY_KINDS}, per_instance=per_instance,
        latency=latency, failed=failed,
    )  # fmt: skip
    return phase


def start_update(update_id: int, chat: int) -> dict[str, Any]:
    """A `/start` from a new private chat, as Telegram posts it to the webhook."""
    user = {"id": chat, "is_bot": False, "first_name": "Bench", "language_code": "it"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1, "date": int(time.time()), "chat": {**user, "type": "private"},
            "from": user, "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }  # fmt: skip


async def bot_phase(
    telegram: Telegram,
    targets: Sequence[Instance],
    chats: range,
    pids: dict[str, int],
    dsn: str,
) -> Phase:
    failed: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=30) as client:
        metrics_before = [await bot_metrics(client, t) for t in targets]
        sent_before = int((await telegram.count())["sent"])
        work = iter(enumerate(chats))
        headers = {SECRET_HEADER: WEBHOOK_SECRET}

        async def post() -> None:
            for n, chat in work:
                target = targets[n % len(targets)]
                response = await client.post(
                    target.url + WEBHOOK_PATH, json=start_update(chat, chat), headers=headers
                )
                if response.status_code != 200:
                    failed[f"webhook: {response.status_code}"] += 1

        async def all_replied() -> bool:
            return int((await telegram.count())["sent"]) >= sent_before + len(chats)

        async with ActivitySampler(dsn) as activity:
            before = snapshot(pids, make_url(dsn).database or "")
            await asyncio.gather(*(post() for _ in range(POSTERS)))
            await until("every update's reply", all_replied, PHASE_TIMEOUT)
            after = snapshot(pids, make_url(dsn).database or "")
            last = float((await telegram.count())["last"])
        metrics_after = [await bot_metrics(client, t) for t in targets]
    handled = [int(a[0] - b[0]) for a, b in zip(metrics_after, metrics_before, strict=True)]
    seconds = sum(a[1] - b[1] for a, b in zip(metrics_after, metrics_before, strict=True))
    return Phase(
        instances=len(targets), kind="bot", done=len(chats), seconds=last - before.at,
        cpu=CpuUse.between(before, after),
        activity={k: activity.mean(k) for k in ACTIVITY_KINDS}, per_instance=handled,
        failed=failed, handling_ms=seconds / max(1, sum(handled)) * 1000,
    )  # fmt: skip


# --- setting up ---------------------------------------------------------------------------


async def load_cases(database: Database) -> tuple[dict[str, list[str]], dict[str, int]]:
    """The 1k cases of the dashboard benchmark; the URLs of each page for its viewer."""
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
    rows = await bench_dashboard.load(database, plan, settings, forms, now)
    requests = bench_dashboard._requests(
        plan, users[bench_dashboard.VIEWER], today, random.Random(SEED)
    )
    return {page: [r.url for r in requests[page]] for page in PAGES}, rows


async def sign_in(stack: AsyncExitStack, instance: Instance) -> httpx.AsyncClient:
    """A browser-like client signed in through `/login` of `instance` (cookies kept)."""
    client = await stack.enter_async_context(httpx.AsyncClient(timeout=60))
    page = await client.get(f"{instance.url}/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = await client.post(
        f"{instance.url}/login",
        data={
            "username": bench_dashboard.VIEWER,
            "password": bench_dashboard.PASSWORD,
            "csrf_token": token,
        },
    )
    if response.status_code != 303:
        raise AssertionError(f"sign-in failed: {response.status_code}")
    return client


def take(chats: Iterator[int], count: int) -> range:
    """The next `count` chats of the run (each a new citizen)."""
    first = next(chats)
    for _ in range(count - 1):
        next(chats)
    return range(first, first + count)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- the run ------------------------------------------------------------------------------


async def run(databases: Databases, options: Options) -> None:
    if databases.backend is not Backend.POSTGRESQL:
        print("PostgreSQL only: two instances on one database need it.")
        return
    base = await databases.create()
    key = Fernet.generate_key().decode()
    database = Database(base.url, cipher=crypto.DataCipher([key]))
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        urls, rows = await load_cases(database)
    finally:
        await database.dispose()
    print(
        f"git {git_revision()}; {CASES:,} cases ({rows['booking']:,} bookings) loaded in "
        f"{time.monotonic() - started:.0f} s; {os.cpu_count()} cpus"
    )
    print(
        f"dashboard: {CLIENTS} clients for {dashboard_seconds(options):g} s over "
        f"{', '.join(PAGES)}; bot: {updates_per_phase(options)} /start updates, {POSTERS} "
        f"POSTs at once; {rounds(options)} rounds of one and two instances, interleaved"
    )
    telegram = Telegram()
    await telegram.start()
    chats = itertools.count(FIRST_CHAT)
    try:
        with tempfile.TemporaryDirectory(prefix="ripartire_instances_") as tmp:
            workdir = Path(tmp)
            env = instance_env(base.url, key, telegram.port)
            instances: list[Instance] = []
            try:
                for name in ("A", "B"):
                    instances.append(await start_instance(name, env, workdir))
                await wait_started(instances, telegram)
                phases = await measure(instances, telegram, urls, chats, options, _dsn(base.url))
                report(phases, (load_before, os.getloadavg()))
                if options.profile:
                    await profile(env, workdir, telegram, urls, chats, options, _dsn(base.url))
            finally:
                for instance in instances:
                    await stop_instance(instance)
                for instance in instances:
                    output = instance.output()
                    tracebacks = output.count("Traceback")
                    errors = sum(1 for line in output.splitlines() if " ERROR " in line)
                    print(f"  instance {instance.name}: {tracebacks} traceback(s), "
                          f"{errors} ERROR line(s) in its log")  # fmt: skip
                    if tracebacks:
                        print(output[-3000:])
    finally:
        await telegram.stop()


async def measure(
    instances: list[Instance],
    telegram: Telegram,
    urls: dict[str, list[str]],
    chats: Iterator[int],
    options: Options,
    dsn: str,
) -> list[Phase]:
    pids = {f"instance {i.name}": i.process.pid for i in instances}
    pids["fake Telegram"] = telegram.process.pid or 0
    pids["load (this process)"] = os.getpid()

    phases: list[Phase] = []
    async with AsyncExitStack() as stack:
        clients = [await sign_in(stack, instances[n % 2]) for n in range(CLIENTS)]
        staff = Staff(clients, urls)
        # Warm-up on both: templates compiled, statements prepared on the pools' connections.
        await dashboard_phase(staff, instances, 3.0, pids, dsn)
        await bot_phase(telegram, instances, take(chats, 60), pids, dsn)
        for number in range(rounds(options)):
            for count in (1, 2) if number % 2 == 0 else (2, 1):
                targets = instances[:count]
                shown = await dashboard_phase(staff, targets, dashboard_seconds(options), pids, dsn)
                bot = await bot_phase(
                    telegram, targets, take(chats, updates_per_phase(options)), pids, dsn
                )
                phases += [shown, bot]
                print(
                    f"  round {number + 1}, {count} instance(s): dashboard {shown.rate:.1f} "
                    f"req/s, bot {bot.rate:.1f} updates/s; machine busy "
                    f"{_busy(shown.cpu):.2f} and {_busy(bot.cpu):.2f} "
                    f"of {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    return phases


# --- the report ---------------------------------------------------------------------------


def _busy(cpu: CpuUse) -> float:
    """The machine's cores busy over the phase."""
    return (sum(cpu.consumers.values()) + cpu.other) / cpu.wall


def _sum_cpu(phases: Sequence[Phase]) -> tuple[float, dict[str, float], float, float]:
    wall = sum(p.cpu.wall for p in phases)
    consumers: dict[str, float] = defaultdict(float)
    for p in phases:
        for name, seconds in p.cpu.consumers.items():
            consumers[name] += seconds
    return wall, consumers, sum(p.cpu.other for p in phases), sum(p.cpu.idle for p in phases)


def report(phases: list[Phase], loads: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    cpus = os.cpu_count() or 1
    print()
    rates: dict[tuple[str, int], float] = {}
    rows = []
    for kind, unit in (("dashboard", "requests/s"), ("bot", "updates/s")):
        for count in (1, 2):
            mine = [p for p in phases if p.kind == kind and p.instances == count]
            rates[kind, count] = statistics.median(p.rate for p in mine)
            split = [sum(p.per_instance[i] for p in mine) for i in range(count)]
            total = sum(split) or 1
            rows.append(
                [
                    kind, unit, str(count), f"{rates[kind, count]:.1f}",
                    " ".join(f"{p.rate:.1f}" for p in mine),
                    " / ".join(f"{s / total:.0%}" for s in split),
                    str(sum(sum(p.failed.values()) for p in mine)),
                ]
            )  # fmt: skip
    print(table(["load", "unit", "instances", "median", "each round", "A / B", "failed"], rows))
    print()
    for kind in ("dashboard", "bot"):
        print(f"  {kind}: two / one = {rates[kind, 2] / rates[kind, 1]:.2f}")
    print()
    print("dashboard pages, ms (p50 / p95 over every round):")
    page_rows = []
    for count in (1, 2):
        mine = [p for p in phases if p.kind == "dashboard" and p.instances == count]
        cells = [str(count)]
        for page in PAGES:
            seconds = sorted(s for p in mine for s in p.latency[page])
            cut = statistics.quantiles(seconds, n=100, method="inclusive")
            cells.append(f"{cut[49] * 1000:.1f} / {cut[94] * 1000:.1f} ({len(seconds)})")
        page_rows.append(cells)
    print(table(["instances", *PAGES], page_rows))
    for count in (1, 2):
        mine = [p for p in phases if p.kind == "bot" and p.instances == count]
        print(
            f"bot, {count} instance(s): {statistics.median(p.handling_ms for p in mine):.0f} ms "
            "from receipt to the reply per update (median of the rounds' means, /metrics)"
        )
    print()
    print(
        f"where the CPU went: cores busy over the phases (of {cpus}; all rounds), and CPU ms "
        "per request or update"
    )
    rows = []
    costs: dict[str, tuple[float, float, float]] = {}
    for kind in ("dashboard", "bot"):
        for count in (1, 2):
            mine = [p for p in phases if p.kind == kind and p.instances == count]
            wall, consumers, other, idle = _sum_cpu(mine)
            done = sum(p.done for p in mine)
            apps = consumers["instance A"] + consumers["instance B"]
            own = sum(consumers.values())
            if count == 1:
                costs[kind] = (apps / done, consumers["postgres"] / done, own / done)
            rows.append(
                [
                    kind, str(count),
                    *(f"{consumers[name] / wall:.2f}" for name in CONSUMERS),
                    f"{other / wall:.2f}", f"{idle / wall:.2f}",
                    f"{apps / done * 1000:.1f}", f"{consumers['postgres'] / done * 1000:.1f}",
                    f"{own / done * 1000:.1f}",
                ]
            )  # fmt: skip
    print(
        table(
            ["load", "inst.", "A", "B", "postgres", "fake Telegram", "load gen", "other",
             "idle", "app ms", "pg ms", "ours ms"],
            rows,
        )
    )  # fmt: skip
    print(
        "  (other: the rest of the machine, PostgreSQL's shared processes and other databases "
        "included; idle includes iowait; ms: CPU "
        "per request or update; ours: the five columns before other)"
    )
    print()
    print(
        "runnable but waiting for a CPU (the run queue, /proc/PID/schedstat): processes "
        "waiting on average (an instance's event loop, PostgreSQL's processes, this one)"
    )
    rows = []
    for kind in ("dashboard", "bot"):
        for count in (1, 2):
            mine = [p for p in phases if p.kind == kind and p.instances == count]
            wall = sum(p.cpu.wall for p in mine)
            rows.append(
                [kind, str(count)]
                + [
                    f"{sum(p.cpu.waits[name] for p in mine) / wall:.2f}"
                    for name in ("instance A", "instance B", "postgres", "load (this process)")
                ]
            )
    print(table(["load", "instances", "A", "B", "postgres", "load gen"], rows))
    print()
    print(
        f"what that CPU per request allows on {cpus} cores with nothing else on them (one "
        "instance is one event loop, at most one core; from the one-instance rounds):"
    )
    for kind, (app, postgres, own) in costs.items():
        bounds = []
        for label, cost in (("app + PostgreSQL", app + postgres), ("+ this load", own)):
            one = min(1 / app, cpus / cost)
            two = min(2 / app, cpus / cost)
            bounds.append(f"{label}: one {one:.0f}/s, two {two:.0f}/s, x{two / one:.2f}")
        print(f"  {kind}: " + "; ".join(bounds))
    print()
    print("PostgreSQL's backends of the database, mean over samples every 0.1 s:")
    rows = []
    for kind in ("dashboard", "bot"):
        for count in (1, 2):
            mine = [p for p in phases if p.kind == kind and p.instances == count]
            rows.append(
                [kind, str(count)]
                + [f"{statistics.mean(p.activity[k] for p in mine):.2f}" for k in ACTIVITY_KINDS]
            )
    print(table(["load", "instances", *ACTIVITY_KINDS], rows))
    failed: Counter[str] = Counter()
    for p in phases:
        failed.update(p.failed)
    if failed:
        print("failed: " + ", ".join(f"{k} x{v}" for k, v in sorted(failed.items())))
    before, after = loads
    print(
        f"load average before {before[0]:.1f} {before[1]:.1f} {before[2]:.1f}, "
        f"after {after[0]:.1f} {after[1]:.1f} {after[2]:.1f}"
    )


# --- the profile --------------------------------------------------------------------------

PROFILE_SECONDS = 8.0
TOP = 15


async def profiled(instance: Instance, output: Path, phase: Awaitable[Phase]) -> Phase:
    """Run `phase` with the instance's profiler on; its stats are then in `output`."""
    output.unlink(missing_ok=True)
    instance.process.send_signal(signal.SIGUSR1)
    await asyncio.sleep(0.2)
    done = await phase
    instance.process.send_signal(signal.SIGUSR2)

    async def written() -> bool:
        return output.exists() and output.stat().st_size > 0

    await until("the profile written", written, 60)
    await asyncio.sleep(1.0)  # dump_stats may still be writing
    return done


def print_profile(output: Path, what: str, phase: Phase) -> None:
    stats = pstats.Stats(str(output))
    own: Counter[str] = Counter()
    for (path, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        own[bench_dashboard._package(path, function)] += row[2]
    waiting = own.pop(bench_dashboard.PACKAGES[0][1], 0.0)
    working = sum(own.values())
    print(
        f"cProfile of instance P alone, {what}: {phase.rate:.1f}/s under the profiler "
        f"({phase.done} in {phase.seconds:.1f} s); CPU seconds of its event loop: "
        f"{working + waiting:.1f}, {(working + waiting) / phase.done * 1000:.1f} ms each"
    )
    print("  own CPU time by package: " + ", ".join(
        f"{label} {seconds / working:.0%}" for label, seconds in own.most_common()
    ))  # fmt: skip
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats("tottime").print_stats(TOP)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\n".join(lines[start : start + TOP + 1]))
    print()


async def profile(
    env: dict[str, str],
    workdir: Path,
    telegram: Telegram,
    urls: dict[str, list[str]],
    chats: Iterator[int],
    options: Options,
    dsn: str,
) -> None:
    """A third instance under cProfile takes a dashboard phase and a bot phase alone."""
    output = workdir / "instance.prof"
    instance = await start_instance("P", env, workdir, profile_to=output)
    try:
        await wait_started([instance], telegram)
        pids = {"instance P": instance.process.pid, "load (this process)": os.getpid()}
        async with AsyncExitStack() as stack:
            clients = [await sign_in(stack, instance) for _ in range(CLIENTS)]
            staff = Staff(clients, urls)
            await dashboard_phase(staff, [instance], 2.0, pids, dsn)
            await bot_phase(telegram, [instance], take(chats, 30), pids, dsn)
            print()
            shown = await profiled(
                instance, output, dashboard_phase(staff, [instance], PROFILE_SECONDS, pids, dsn)
            )
            print_profile(output, "dashboard", shown)
        bot = await profiled(
            instance,
            output,
            bot_phase(telegram, [instance], take(chats, updates_per_phase(options)), pids, dsn),
        )
        print_profile(output, "bot", bot)
    finally:
        await stop_instance(instance)
