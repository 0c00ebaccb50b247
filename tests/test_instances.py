"""Two real `ripartire run` processes on one PostgreSQL database (issue 15 point 2).

Each process is started as an operator would start a second instance behind a proxy
(its own port, the bot in webhook mode, so that neither polls Telegram), with the fake
Bot API server of `tests/bot` for Telegram. The test drives both and checks what must
hold across instances: a staff session made on one is valid on the other, the outbox's
messages are each sent once in all, and each round of the periodic jobs runs on one.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from shared import crypto, migrate
from shared.db import Database, utcnow
from shared.figures.cache import LEASE_NAME as FIGURES
from shared.housekeeping import LEASE_NAME as HOUSEKEEPING
from shared.intake import service as intake
from shared.outbox import service as outbox
from shared.outbox.models import MessageState, OutboxMessage
from shared.staff import service as staff
from shared.staff.models import Role
from tests.bot.fake_bot_api import FakeBotApiServer
from tests.bot.fake_telegram import TOKEN
from tests.conftest import DATA_KEY, DatabaseFactory
from tests.dashboard.conftest import PASSWORD, csrf_from
from tests.factories import make_citizen
from tests.test_cli import RIPARTIRE

pytestmark = pytest.mark.postgres_only

# Generous: the machine running the suite may be loaded many times over.
START_SECONDS = 120.0
WAIT_SECONDS = 180.0
MESSAGES = 40


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _until(
    condition_name: str, check: Callable[[], Awaitable[bool]], seconds: float = WAIT_SECONDS
) -> None:
    """Poll `check` until it answers true, or fail naming the condition."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {condition_name}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def shared_database(database_factory: DatabaseFactory) -> AsyncIterator[Database]:
    """A throwaway PostgreSQL database, migrated, with a coordinator; the test's own engine."""
    database = Database(await database_factory.create(), cipher=crypto.DataCipher([DATA_KEY]))
    await migrate.upgrade(database)
    async with database.transaction() as session:
        await staff.add_user(
            session=session, username="anna", password=PASSWORD, role=Role.COORDINATORE
        )
    yield database
    await database.dispose()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeBotApiServer]:
    server = FakeBotApiServer()
    async with server.running():
        yield server


@pytest.fixture
async def instances(
    shared_database: Database, telegram: FakeBotApiServer, tmp_path: Path
) -> AsyncIterator[list[Instance]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPARTIRE_")}
    env |= {
        "RIPARTIRE_DATABASE_URL": shared_database.url,
        "RIPARTIRE_DATA_KEY": DATA_KEY,
        "RIPARTIRE_SECRET_KEY": "s" * 40,
        "RIPARTIRE_TELEGRAM_TOKEN": TOKEN,
        "RIPARTIRE_TELEGRAM_API_URL": f"http://127.0.0.1:{telegram.port}",
        "RIPARTIRE_WEBHOOK_URL": "https://ripartire.example.org/telegram/webhook",
        "RIPARTIRE_WEBHOOK_SECRET": "two-instances-webhook-secret",
    }
    started: list[Instance] = []
    try:
        for name in ("a", "b"):
            port, log = _free_port(), tmp_path / f"{name}.log"
            with log.open("wb") as sink:
                process = await asyncio.create_subprocess_exec(
                    RIPARTIRE, "run", "--port", str(port), cwd=tmp_path, env=env,
                    stdout=sink, stderr=subprocess.STDOUT,
                )  # fmt: skip
            started.append(Instance(name, port, process, log))
        async with httpx.AsyncClient(timeout=5) as client:
            for instance in started:

                async def healthy(instance: Instance = instance) -> bool:
                    if instance.process.returncode is not None:
                        raise AssertionError(f"{instance.name} exited: {instance.output()}")
                    try:
                        response = await client.get(f"{instance.url}/healthz")
                    except httpx.TransportError:
                        return False
                    return response.status_code == 200

                await _until(f"{instance.name} answers /healthz", healthy, START_SECONDS)

        async def both_bots_on() -> bool:
            return telegram.methods().count("setWebhook") >= 2

        # Both bots are on (the webhook registered) before the test drives them.
        await _until("both bots registered their webhook", both_bots_on, START_SECONDS)
        yield started
    finally:
        for instance in started:
            if instance.process.returncode is None:
                instance.process.terminate()
        for instance in started:
            try:
                await asyncio.wait_for(instance.process.wait(), 60)
            except TimeoutError:
                instance.process.kill()
                await instance.process.wait()


async def test_a_staff_session_made_on_one_instance_is_valid_on_the_other(
    instances: list[Instance],
) -> None:
    a, b = instances
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as on_a:
        page = await on_a.get("/login")
        signed_in = await on_a.post(
            "/login",
            data={"username": "anna", "password": PASSWORD, "csrf_token": csrf_from(page.text)},
        )
        assert signed_in.status_code == 303
        cookies = on_a.cookies
        assert cookies, "no session cookie from A"
        async with (
            httpx.AsyncClient(base_url=b.url, cookies=cookies, timeout=30) as on_b,
            httpx.AsyncClient(base_url=b.url, timeout=30) as stranger,
        ):
            cases = await on_b.get("/cases")
            assert cases.status_code == 200
            assert "anna" in cases.text
            # Without A's cookie, B sends the same request to the login page.
            refused = await stranger.get("/cases")
            assert refused.status_code == 303
            assert refused.headers["location"].startswith("/login")
            # Signed out on B: A no longer takes the session either.
            out = await on_b.post("/logout", data={"csrf_token": csrf_from(cases.text)})
            assert out.status_code == 303
        after = await on_a.get("/cases")
        assert after.status_code == 303


async def _queue_reminders(database: Database, count: int) -> list[int]:
    """`count` citizens, each with an unfinished questionnaire and its reminder queued."""
    now = utcnow()
    chats = []
    async with database.transaction() as session:
        for _ in range(count):
            citizen = await make_citizen(session, eligible=None)
            await intake.start_intake(session=session, citizen_id=citizen.id, now=now)
            await outbox.enqueue(
                session=session,
                kind="intake_expiry_reminder",
                citizen_id=citizen.id,
                due_at=now,
                idempotency_key=f"two-instances:{citizen.id}",
                payload={"expires_at": (now + timedelta(days=10)).isoformat()},
            )
            assert citizen.telegram_chat_id is not None
            chats.append(citizen.telegram_chat_id)
    return chats


async def test_outbox_messages_are_sent_once_across_instances(
    instances: list[Instance], shared_database: Database, telegram: FakeBotApiServer
) -> None:
    chats = await _queue_reminders(shared_database, MESSAGES)

    async def all_sent() -> bool:
        async with shared_database.transaction(read_only=True) as session:
            states = dict(
                (
                    await session.execute(
                        select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
                    )
                ).all()
            )
        return states == {MessageState.SENT.value: MESSAGES}

    await _until(f"the {MESSAGES} messages are sent", all_sent)
    sends = Counter(
        int(params["chat_id"]) for method, params in telegram.calls if method == "sendMessage"
    )
    assert sends == Counter(dict.fromkeys(chats, 1)), "each message sent exactly once"
    for instance in instances:
        assert "Traceback" not in instance.output(), instance.output()[-3000:]


ROUNDS = re.compile(r'^ripartire_periodic_rounds_total\{job="([^"]+)",outcome="([^"]+)"\} (\S+)$')


async def _rounds(client: httpx.AsyncClient, instance: Instance) -> Counter[tuple[str, str]]:
    response = await client.get(f"{instance.url}/metrics")
    assert response.status_code == 200
    found: Counter[tuple[str, str]] = Counter()
    for line in response.text.splitlines():
        if match := ROUNDS.match(line):
            job, outcome, value = match.groups()
            found[job, outcome] = int(float(value))
    return found


async def test_each_round_of_the_periodic_jobs_runs_on_one_instance(
    instances: list[Instance],
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:

        async def every_instance_had_its_first_rounds() -> bool:
            for instance in instances:
                rounds = await _rounds(client, instance)
                for job in (HOUSEKEEPING, FIGURES):
                    if rounds[job, "ran"] + rounds[job, "skipped"] < 1:
                        return False
            return True

        await _until("each instance's first rounds", every_instance_had_its_first_rounds)
        counts = [await _rounds(client, instance) for instance in instances]
    for job in (HOUSEKEEPING, FIGURES):
        ran = [rounds[job, "ran"] for rounds in counts]
        # One instance runs every round; the other skipped each of its own.
        assert sorted(ran)[0] == 0 and sorted(ran)[1] >= 1, (job, counts)
        follower = counts[ran.index(0)]
        assert follower[job, "skipped"] >= 1, (job, counts)
        assert all(rounds[job, "failed"] == 0 for rounds in counts), (job, counts)
