"""The `ripartire` command line, run as a real process in a temporary directory."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from shared import crypto
from shared.audit.models import AuditEvent
from shared.db import Database
from tests.conftest import BACKEND, DATA_KEY, POSTGRES_ADMIN_URL, DatabaseFactory
from tests.disks import fill, read_only_file, small_disk, use_up_inodes

RIPARTIRE = shutil.which("ripartire", path=str(Path(sys.executable).parent)) or "ripartire"
STRONG = "correct horse battery staple\n"


@pytest.fixture
async def workdir(tmp_path: Path, database_factory: DatabaseFactory) -> tuple[Path, dict[str, str]]:
    """A temporary working directory and an environment pointing at a fresh database.

    On SQLite the default `./data/ripartire.db` is used, so its creation is tested too.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPARTIRE_")}
    env["RIPARTIRE_DATA_KEY"] = DATA_KEY
    if BACKEND == "postgresql":
        env["RIPARTIRE_DATABASE_URL"] = await database_factory.create()
    return tmp_path, env


def cli(
    workdir: tuple[Path, dict[str, str]],
    *args: str,
    stdin: str = "",
    extra_env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    cwd, env = workdir
    return subprocess.run(
        [RIPARTIRE, *args],
        cwd=cwd,
        env={**env, **(extra_env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_db_upgrade_creates_the_default_database(workdir: tuple[Path, dict[str, str]]) -> None:
    result = cli(workdir, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "Database is at revision" in result.stdout
    if BACKEND == "sqlite":
        assert (workdir[0] / "data" / "ripartire.db").exists()
    again = cli(workdir, "db", "upgrade")
    assert again.returncode == 0, again.stderr


def test_users_add_end_to_end(workdir: tuple[Path, dict[str, str]]) -> None:
    added = cli(
        workdir, "users", "add", "Anna", "--role", "coordinatore", "--password-stdin", stdin=STRONG
    )
    assert added.returncode == 0, added.stderr
    assert "Created coordinatore 'anna'" in added.stdout

    duplicate = cli(
        workdir, "users", "add", "anna", "--role", "admin", "--password-stdin", stdin=STRONG
    )
    assert duplicate.returncode == 1
    assert "already taken" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr

    weak = cli(
        workdir, "users", "add", "bruno", "--role", "admin", "--password-stdin", stdin="password1\n"
    )
    assert weak.returncode == 1
    assert "at least 10" in weak.stderr

    for guessable in ("cernusco2020", "ripartire2021", "brunoneri1234"):
        refused = cli(
            workdir, "users", "add", "bruno.neri", "--role", "admin", "--password-stdin",
            stdin=guessable + "\n",
        )  # fmt: skip
        assert refused.returncode == 1, guessable
        assert "too easy to guess" in refused.stderr

    bad_role = cli(
        workdir, "users", "add", "carla", "--role", "boss", "--password-stdin", stdin=STRONG
    )
    assert bad_role.returncode == 2
    assert "operatore" in bad_role.stderr


def test_bad_setting_stops_with_the_variable_named(workdir: tuple[Path, dict[str, str]]) -> None:
    result = cli(workdir, "db", "upgrade", extra_env={"RIPARTIRE_TIMEZONE": "Nowhere/Land"})
    assert result.returncode == 1
    assert "RIPARTIRE_TIMEZONE" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_refuses_to_start_without_a_secret_key(workdir: tuple[Path, dict[str, str]]) -> None:
    result = cli(workdir, "run", "--port", "1")
    assert result.returncode == 1
    assert "RIPARTIRE_SECRET_KEY" in result.stderr


def test_run_refuses_to_start_without_a_data_key(workdir: tuple[Path, dict[str, str]]) -> None:
    result = cli(
        workdir, "run", "--port", "1",
        extra_env={"RIPARTIRE_SECRET_KEY": "s" * 40, "RIPARTIRE_DATA_KEY": ""},
    )  # fmt: skip
    assert_one_line(result, "RIPARTIRE_DATA_KEY is not set", "Fernet.generate_key()")


def test_a_malformed_data_key_is_one_line(workdir: tuple[Path, dict[str, str]]) -> None:
    bad = "not-a-fernet-key-at-all"
    result = cli(workdir, "db", "upgrade", extra_env={"RIPARTIRE_DATA_KEY": f"{DATA_KEY},{bad}"})
    line = assert_one_line(result, "RIPARTIRE_DATA_KEY", "key 2 of 2 is not a Fernet key")
    assert bad not in line and DATA_KEY not in line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(workdir: tuple[Path, dict[str, str]]) -> Iterator[object]:
    processes: list[subprocess.Popen[str]] = []

    def start(
        *args: str, extra_env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[str], int]:
        port = _free_port()
        cwd, env = workdir
        process = subprocess.Popen(
            [RIPARTIRE, *args, "--port", str(port)],
            cwd=cwd,
            env={**env, **(extra_env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(
                    f"server exited: {process.stdout.read() if process.stdout else ''}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return process, port
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("server did not answer /healthz in time")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def _stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    output, _ = process.communicate(timeout=20)
    return output


def test_run_serves_healthz_and_says_the_bot_is_off(serve: object) -> None:
    process, port = serve("run", extra_env={"RIPARTIRE_SECRET_KEY": "s" * 40})  # type: ignore[operator]
    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert response.json() == {"status": "ok", "database": "ok"}
    output = _stop(process)
    assert "Telegram bot is off: RIPARTIRE_TELEGRAM_TOKEN is not set" in output


def test_demo_prints_logins_and_recreates_its_database(
    serve: object, workdir: tuple[Path, dict[str, str]]
) -> None:
    process, _port = serve("demo")  # type: ignore[operator]
    output = _stop(process)
    assert "Demo staff logins:" in output
    for role in ("operatore", "coordinatore", "admin"):
        assert f"  {role}" in output
    assert (workdir[0] / "data" / "demo.db").exists()
    # a second start recreates the database instead of failing on existing demo users
    process, _port = serve("demo")  # type: ignore[operator]
    assert "Demo staff logins:" in _stop(process)


async def test_demo_runs_the_bot_when_a_token_is_set(workdir: tuple[Path, dict[str, str]]) -> None:
    import asyncio

    from tests.bot.fake_bot_api import FakeBotApiServer
    from tests.bot.fake_telegram import TOKEN

    cwd, env = workdir
    server = FakeBotApiServer()
    async with server.running():
        process = await asyncio.create_subprocess_exec(
            RIPARTIRE, "demo", "--port", str(_free_port()), cwd=cwd,
            env={**env, "RIPARTIRE_TELEGRAM_TOKEN": TOKEN, "RIPARTIRE_TELEGRAM_API_URL": f"http://127.0.0.1:{server.port}"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            for _ in range(600):
                if "getUpdates" in server.methods():
                    break
                await asyncio.sleep(0.1)
            user = {"id": 99, "is_bot": False, "first_name": "Ada", "language_code": "it"}
            server.push({
                "update_id": 1,
                "message": {"message_id": 1, "date": int(time.time()), "text": "/start", "chat": {"id": 99, "type": "private"},
                            "from": user, "entities": [{"type": "bot_command", "offset": 0, "length": 6}]},
            })  # fmt: skip
            for _ in range(300):
                if "sendMessage" in server.methods():
                    break
                await asyncio.sleep(0.1)
        finally:
            process.terminate()
            output, _ = await process.communicate()
    log = output.decode()
    assert "Telegram bot on: long polling" in log
    assert TOKEN not in log
    sent = [params for method, params in server.calls if method == "sendMessage"]
    assert sent, log[-2000:]
    assert "Ripartire" in sent[0]["text"]


# --- start-up failures: one line naming the cause and what to do, no traceback ---------

COMMANDS = [
    ("db", "upgrade"),
    ("users", "add", "bruno", "--role", "admin", "--password-stdin"),
    ("run", "--port", "1"),
]
RUN_ENV = {"RIPARTIRE_SECRET_KEY": "s" * 40}


# A record of the process's log (`run` logs as it starts), not part of the failure.
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|DEBUG) ")


def assert_one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [
        line for line in result.stderr.splitlines() if line.strip() and not LOG_RECORD.match(line)
    ]
    assert len(lines) == 1, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def _closed_port() -> int:
    return _free_port()  # nothing listens there once the probe socket is closed


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_database_refusing_connections_is_one_line(
    workdir: tuple[Path, dict[str, str]], command: tuple[str, ...]
) -> None:
    url = f"postgresql+asyncpg://ripartire:hunter2@127.0.0.1:{_closed_port()}/ripartire"
    result = cli(
        workdir, *command, stdin=STRONG, extra_env={**RUN_ENV, "RIPARTIRE_DATABASE_URL": url}
    )
    line = assert_one_line(result, "RIPARTIRE_DATABASE_URL", "refused")
    assert "hunter2" not in line


def test_debug_shows_the_traceback(workdir: tuple[Path, dict[str, str]]) -> None:
    url = f"postgresql+asyncpg://ripartire@127.0.0.1:{_closed_port()}/ripartire"
    result = cli(workdir, "--debug", "db", "upgrade", extra_env={"RIPARTIRE_DATABASE_URL": url})
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "ConnectionRefusedError" in result.stderr


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_database_that_never_answers_times_out_in_seconds(
    workdir: tuple[Path, dict[str, str]], silent_server: int, command: tuple[str, ...]
) -> None:
    url = f"postgresql+asyncpg://ripartire@127.0.0.1:{silent_server}/ripartire"
    started = time.monotonic()
    result = cli(
        workdir, *command, stdin=STRONG, timeout=40,
        extra_env={**RUN_ENV, "RIPARTIRE_DATABASE_URL": url},
    )  # fmt: skip
    assert time.monotonic() - started < 20
    assert_one_line(result, "RIPARTIRE_DATABASE_URL", "did not answer")


@pytest.mark.postgres_only
def test_missing_database_and_unknown_user_are_one_line(
    workdir: tuple[Path, dict[str, str]],
) -> None:
    admin = make_url(POSTGRES_ADMIN_URL)
    missing = admin.set(database="ripartire_no_such_database").render_as_string(False)
    result = cli(workdir, "db", "upgrade", extra_env={"RIPARTIRE_DATABASE_URL": missing})
    assert_one_line(result, "ripartire_no_such_database", "does not exist", "createdb")
    stranger = admin.set(username="ripartire_no_such_user").render_as_string(False)
    result = cli(workdir, "db", "upgrade", extra_env={"RIPARTIRE_DATABASE_URL": stranger})
    assert_one_line(result, "RIPARTIRE_DATABASE_URL", "user")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_municipalities_not_json_is_one_line(
    workdir: tuple[Path, dict[str, str]], command: tuple[str, ...]
) -> None:
    result = cli(
        workdir, *command, stdin=STRONG,
        extra_env={**RUN_ENV, "RIPARTIRE_MUNICIPALITIES": "Cernusco sul Naviglio"},
    )  # fmt: skip
    assert_one_line(result, "RIPARTIRE_MUNICIPALITIES", "JSON")


def test_demo_with_municipalities_not_json_is_one_line(
    workdir: tuple[Path, dict[str, str]],
) -> None:
    result = cli(workdir, "demo", "--port", "1", extra_env={"RIPARTIRE_MUNICIPALITIES": "Cernusco"})
    assert_one_line(result, "RIPARTIRE_MUNICIPALITIES", "JSON")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk") as disk:
        yield disk


@pytest.mark.sqlite_only
@pytest.mark.parametrize("how", ["almost", "completely", "no inodes"])
def test_users_add_on_a_full_disk_is_one_line(
    workdir: tuple[Path, dict[str, str]], tiny_disk: Path, how: str
) -> None:
    database = tiny_disk / "data" / "ripartire.db"
    env = {"RIPARTIRE_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    if how == "no inodes":
        use_up_inodes(tiny_disk)  # the data folder itself cannot be made
    else:
        assert cli(workdir, "db", "upgrade", extra_env=env).returncode == 0
        # "almost": the -shm file still fits, the write-ahead log does not.
        fill(tiny_disk, leave=40 * 1024 if how == "almost" else 0)
    result = cli(
        workdir, "users", "add", "bruno", "--role", "admin", "--password-stdin",
        stdin=STRONG, extra_env=env,
    )  # fmt: skip
    assert_one_line(result, "full", str(tiny_disk))


# --- `run` refuses a database that would save nothing ---------------------------------


def run_once(
    workdir: tuple[Path, dict[str, str]], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`run` expected to stop at once; a server that starts instead fails at the timeout."""
    return cli(
        workdir, "run", "--port", str(_free_port()), timeout=30, extra_env={**RUN_ENV, **env}
    )


@pytest.mark.sqlite_only
@pytest.mark.parametrize("how", ["read-only file", "mode=ro"])
def test_run_refuses_a_read_only_sqlite_file(
    workdir: tuple[Path, dict[str, str]], how: str
) -> None:
    assert cli(workdir, "db", "upgrade").returncode == 0
    path = workdir[0] / "data" / "ripartire.db"
    with ExitStack() as stack:
        if how == "mode=ro":
            url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
        else:
            stack.enter_context(read_only_file(path))
            url = f"sqlite+aiosqlite:///{path}"
        result = run_once(workdir, {"RIPARTIRE_DATABASE_URL": url})
    assert_one_line(result, "read-only", str(path))


@pytest.mark.sqlite_only
def test_run_refuses_a_nearly_full_disk(
    workdir: tuple[Path, dict[str, str]], tiny_disk: Path
) -> None:
    env = {"RIPARTIRE_DATABASE_URL": f"sqlite+aiosqlite:///{tiny_disk / 'ripartire.db'}"}
    assert cli(workdir, "db", "upgrade", extra_env=env).returncode == 0
    fill(tiny_disk, leave=40 * 1024)
    assert_one_line(run_once(workdir, env), "full", str(tiny_disk))


@pytest.mark.postgres_only
async def test_run_refuses_a_read_only_postgresql_database(
    workdir: tuple[Path, dict[str, str]],
) -> None:
    assert cli(workdir, "db", "upgrade").returncode == 0
    url = workdir[1]["RIPARTIRE_DATABASE_URL"]
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            await connection.execute(
                text(
                    f'ALTER DATABASE "{make_url(url).database}" '
                    "SET default_transaction_read_only = on"
                )
            )
    finally:
        await database.dispose()
    assert_one_line(run_once(workdir, {}), "accepts no writes", "RIPARTIRE_DATABASE_URL")


def _database_url(workdir: tuple[Path, dict[str, str]]) -> str:
    cwd, env = workdir
    return env.get("RIPARTIRE_DATABASE_URL", f"sqlite+aiosqlite:///{cwd / 'data' / 'ripartire.db'}")


async def test_export_writes_the_file_and_is_audited(workdir: tuple[Path, dict[str, str]]) -> None:
    import openpyxl

    from tests.shared.figures.dataset import build

    assert cli(workdir, "db", "upgrade").returncode == 0
    database = Database(_database_url(workdir), cipher=crypto.DataCipher([DATA_KEY]))
    try:
        async with database.transaction() as session:
            await build(session)
        output = workdir[0] / "casi.xlsx"
        result = cli(workdir, "export", "cases", "--format", "xlsx", "--from", "2026-01-01",
                     "--to", "31/12/2027", "--output", str(output))  # fmt: skip
        assert result.returncode == 0, result.stderr
        rows = list(openpyxl.load_workbook(output).worksheets[0].iter_rows(values_only=True))
        assert rows[0][0] == "Numero pratica" and len(rows) == 1 + 7
        csv_output = workdir[0] / "prenotazioni.csv"
        result = cli(workdir, "export", "bookings", "--format", "csv", "--output", str(csv_output))
        assert result.returncode == 0, result.stderr
        assert csv_output.read_bytes().startswith("\ufeff".encode())
        assert len(csv_output.read_text("utf-8-sig").splitlines()) == 1 + 7
        async with database.transaction() as session:
            events = (
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.action == "export.download")
                    .order_by(AuditEvent.id)
                )
            ).all()
        assert [(e.actor, e.object_id, e.details) for e in events] == [
            ("cli", "cases", {"format": "xlsx", "from": "2026-01-01", "to": "2027-12-31"}),
            ("cli", "bookings", {"format": "csv", "from": None, "to": None}),
        ]
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("citizens", "--format", "csv"), "no export called 'citizens'"),
        (("funder_pack", "--format", "csv"), "no csv format"),
        (("cases", "--format", "csv", "--from", "31/02/2026"), "--from '31/02/2026' is not a day"),
        (
            ("cases", "--format", "csv", "--from", "2027-03-01", "--to", "2027-02-01"),
            "--to is before",
        ),
    ],
)
def test_export_refuses_bad_arguments_in_one_line(
    workdir: tuple[Path, dict[str, str]], args: tuple[str, ...], fragment: str
) -> None:
    output = workdir[0] / "out.csv"
    result = cli(workdir, "export", *args, "--output", str(output))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if fragment in line
    ]
    assert not output.exists()


def test_export_to_an_unwritable_path_is_one_line(workdir: tuple[Path, dict[str, str]]) -> None:
    output = workdir[0] / "no such folder" / "out.csv"
    result = cli(workdir, "export", "cases", "--format", "csv", "--output", str(output))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot write" in lines[0] and "Traceback" not in result.stderr


async def test_keys_rotate_end_to_end(workdir: tuple[Path, dict[str, str]]) -> None:
    from cryptography.fernet import Fernet

    from tests.shared.figures.dataset import build

    assert cli(workdir, "db", "upgrade").returncode == 0
    database = Database(_database_url(workdir), cipher=crypto.DataCipher([DATA_KEY]))
    try:
        async with database.transaction() as session:
            await build(session)
    finally:
        await database.dispose()
    new = Fernet.generate_key().decode()

    def rotate(keys: str, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(workdir, "keys", "rotate", *args, extra_env={"RIPARTIRE_DATA_KEY": keys})

    assert_one_line(rotate(""), "RIPARTIRE_DATA_KEY is not set")
    assert_one_line(rotate(new), "RIPARTIRE_DATA_KEY does not open the encrypted data")

    rotated = rotate(f"{new},{DATA_KEY}", "--batch", "2")
    assert rotated.returncode == 0, rotated.stderr
    found = re.search(r"Re-encrypted (\d+) values with the first key and encrypted 0 plain ones; "
                      r"0 were already under the first key\.", rotated.stdout)  # fmt: skip
    assert found and int(found[1]) > 0, rotated.stdout
    assert "remove the others from RIPARTIRE_DATA_KEY" in rotated.stdout

    again = rotate(new)
    assert again.returncode == 0, again.stderr
    assert (
        f"Re-encrypted 0 values with the first key and encrypted 0 plain ones; {found[1]} were "
        "already under the first key." in again.stdout
    )
    assert "remove the others" not in again.stdout
    database = Database(_database_url(workdir), cipher=crypto.DataCipher([new]))
    try:
        async with database.transaction(read_only=True) as session:
            rotations = (
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.action == "keys.rotate")
                    .order_by(AuditEvent.id)
                )
            ).all()  # fmt: skip
    finally:
        await database.dispose()
    assert [(e.actor, e.details) for e in rotations] == [
        ("cli", {"reencrypted": int(found[1]), "encrypted_plain": 0, "keys": 2}),
        ("cli", {"reencrypted": 0, "encrypted_plain": 0, "keys": 1}),
    ]
    # The old key alone no longer opens anything: it can be forgotten.
    exported = cli(
        workdir, "export", "plans", "--format", "csv", "--output", str(workdir[0] / "p.csv"),
        extra_env={"RIPARTIRE_DATA_KEY": DATA_KEY},
    )  # fmt: skip
    assert_one_line(exported, "RIPARTIRE_DATA_KEY does not open the encrypted data")


async def test_retention_run_counts_in_the_dry_run_then_removes_and_the_log_verifies(
    workdir: tuple[Path, dict[str, str]],
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from shared.citizens.models import Citizen
    from shared.intake import service as intake
    from shared.intake.models import Intake
    from shared.schema import metadata
    from tests.factories import make_citizen
    from tests.shared.cases.builders import make_candidate

    assert cli(workdir, "db", "upgrade").returncode == 0
    database = Database(_database_url(workdir), cipher=crypto.DataCipher([DATA_KEY]))

    async def row_counts() -> dict[str, int]:
        async with database.transaction(read_only=True) as session:
            return {
                t.name: (await session.execute(select(func.count()).select_from(t))).scalar_one()
                for t in metadata.sorted_tables
            }

    try:
        # The command runs on the real clock: the data is made old relative to it.
        now = datetime.now(UTC)
        async with database.transaction() as session:
            for n in range(3):
                session.add(
                    AuditEvent(at=now - timedelta(days=400 - n), actor="staff:1",
                               action="case.read", object_type="case", object_id=str(n))
                )  # fmt: skip
        async with database.transaction() as session:
            for days in (31, 32, 29):
                citizen = await make_citizen(session, eligible=None)
                await intake.start_intake(
                    session=session, citizen_id=citizen.id, now=now - timedelta(days=days)
                )
            # A candidate who confirmed the questionnaire 181 days ago and never booked.
            long_ago = now - timedelta(days=181)
            candidate, _case = await make_candidate(session, now=long_ago)
            await session.execute(
                update(Citizen).where(Citizen.id == candidate.id)
                .values(created_at=long_ago, updated_at=long_ago)
            )  # fmt: skip
            await session.execute(
                update(Intake).where(Intake.citizen_id == candidate.id).values(updated_at=long_ago)
            )
        before = await row_counts()

        dry = cli(workdir, "retention", "run", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        lines = dry.stdout.splitlines()
        assert lines[0].endswith("dry run: nothing was changed.")
        assert lines[1:] == [
            "  unfinished questionnaires, no answer for 30 days: 2 would be deleted",
            "  candidates who never booked, inactive for 180 days: 1 would be erased",
            "  cases closed more than 730 days ago: 0 would be anonymised",
            "  citizens whose cases all closed more than 730 days ago, inactive since: "
            "0 would be erased",
            "  audit events older than 366 days: 3 would be pruned",
        ]
        assert await row_counts() == before

        done = cli(workdir, "retention", "run")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[1:] == [
            "  unfinished questionnaires, no answer for 30 days: 2 deleted",
            "  candidates who never booked, inactive for 180 days: 1 erased",
            "  cases closed more than 730 days ago: 0 anonymised",
            "  citizens whose cases all closed more than 730 days ago, inactive since: 0 erased",
            "  audit events older than 366 days: 3 pruned",
        ]
        verified = cli(workdir, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        # The prune's own event, the candidate's case opening and erasure, and the run's.
        assert verified.stdout.splitlines()[0] == "ok, 4 events"
        async with database.transaction(read_only=True) as session:
            recorded = await session.scalar(
                select(AuditEvent.details).where(AuditEvent.action == "retention.run")
            )
        assert recorded == {
            "audit_events": 3, "questionnaires": 2, "closed_cases": 0, "never_booked": 1,
            "past_candidates": 0,
        }  # fmt: skip

        again = cli(workdir, "retention", "run")
        assert [line.rsplit(": ", 1)[1] for line in again.stdout.splitlines()[1:]] == [
            "0 deleted", "0 erased", "0 anonymised", "0 erased", "0 pruned"
        ]  # fmt: skip
    finally:
        await database.dispose()
