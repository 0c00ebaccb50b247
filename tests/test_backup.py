"""`ripartire backup` and `ripartire restore`, run as real processes on both databases.

A database filled with the demo's data (every area of the program) is backed up and
restored into an empty one: every table's rows, read raw in primary-key order, hash the
same. A restore refuses a database holding rows without --force, and a damaged backup
changes nothing even with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection, make_url

from shared import crypto, migrate
from shared import demo as demo_data
from shared.audit import chain as audit_chain
from shared.audit import service as audit
from shared.audit.models import AuditEvent
from shared.backup import libpq_environment
from shared.db import Database
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role
from tests.conftest import BACKEND, DATA_KEY, DatabaseFactory

RIPARTIRE = shutil.which("ripartire", path=str(Path(sys.executable).parent)) or "ripartire"
STRONG = "correct horse battery staple\n"
# A record of the process's log, not part of the failure.
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|DEBUG) ")


def assert_one_line(code: int, out: str, err: str, *fragments: str) -> str:
    """A refusal: exit code 1 and one line on standard error, with each fragment."""
    assert code == 1, (code, out, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip() and not LOG_RECORD.match(line)]
    assert len(lines) == 1, err[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _tables(connection: Connection) -> dict[str, list[str]]:
    """Every table and the columns its rows are ordered by (the primary key)."""
    inspector = inspect(connection)
    found = {}
    for name in inspector.get_table_names():
        key = inspector.get_pk_constraint(name)["constrained_columns"]
        found[name] = key or [c["name"] for c in inspector.get_columns(name)]
    return found


async def digests(url: str, *, audit_through: int | None = None) -> dict[str, tuple[int, str]]:
    """(row count, SHA-256 of the rows in primary-key order) for each table, read raw.

    `audit_through`: the audit log's events up to that id only (a restore adds its own).
    """
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(_tables)
            found = {}
            for name, key in sorted(tables.items()):
                where = (
                    f" WHERE id <= {audit_through}"
                    if name == "audit_event" and audit_through
                    else ""
                )
                order = ", ".join(f'"{c}"' for c in key)
                rows = (
                    await connection.execute(
                        text(f'SELECT * FROM "{name}"{where} ORDER BY {order}')
                    )
                ).all()
                digest = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
                found[name] = (len(rows), digest)
            return found
    finally:
        await database.dispose()


async def last_event(url: str) -> AuditEvent:
    database = Database(url)
    try:
        async with database.transaction(read_only=True) as session:
            event = await session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
            assert event is not None
            return event
    finally:
        await database.dispose()


async def fill(url: str) -> None:
    """The demo's data: staff, helpdesks, candidates at every stage, plans, funds, audit."""
    database = Database(url, cipher=crypto.DataCipher([DATA_KEY]))
    settings = Settings(database_url=url, secret_key="x" * 40, data_key=DATA_KEY, _env_file=None)
    try:
        await migrate.upgrade(database)
        async with database.transaction() as session:
            await demo_data.seed(session=session, settings=settings)
    finally:
        await database.dispose()


async def run(url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The command as a process, without blocking the event loop (writers may run beside it)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RIPARTIRE_")}
    environment |= {"RIPARTIRE_DATABASE_URL": url, "RIPARTIRE_DATA_KEY": DATA_KEY, **(env or {})}
    process = await asyncio.create_subprocess_exec(
        RIPARTIRE, *args, env=environment, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(STRONG.encode()), 180)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def max_event_id(url: str) -> int:
    database = Database(url)
    try:
        async with database.transaction(read_only=True) as session:
            return int(
                await session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
                or 0
            )
    finally:
        await database.dispose()


async def add_staff(url: str, username: str) -> None:
    """A database with a little data: a staff account (and its audit event)."""
    database = Database(url)
    try:
        await migrate.upgrade(database)
        async with database.transaction() as session:
            await staff.add_user(session=session, username=username, password=STRONG.strip(),
                                 role=Role.ADMIN, actor="test")  # fmt: skip
    finally:
        await database.dispose()


@dataclass(frozen=True)
class BackedUp:
    """A database with the demo's data, its digests and last event before the backup, and
    the backup and its command's output."""

    url: str
    before: dict[str, tuple[int, str]]
    last_event_before: int
    path: Path
    output: str

    @property
    def tables(self) -> int:
        return len(self.before) - 1  # the schema's version table is not counted

    @property
    def rows(self) -> int:
        return sum(n for name, (n, _) in self.before.items() if name != "alembic_version")


@pytest.fixture(scope="module")
async def backed_up(
    database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> BackedUp:
    url = await database_factory.create()
    await fill(url)
    before = await digests(url)
    last = await max_event_id(url)
    path = tmp_path_factory.mktemp("backups") / "ripartire.backup"
    code, out, err = await run(url, "backup", str(path))
    assert code == 0, err
    return BackedUp(url, before, last, path, out)


async def test_a_backup_restored_into_an_empty_database_holds_every_row(
    backed_up: BackedUp, database_factory: DatabaseFactory
) -> None:
    before = backed_up.before
    assert before["citizen"][0] > 0 and before["plan"][0] > 0 and before["audit_event"][0] > 0
    assert (
        f"Backed up {backed_up.rows} rows of {backed_up.tables} tables to {backed_up.path}"
        in backed_up.output
    )
    assert backed_up.path.stat().st_mode & 0o077 == 0  # personal data: its owner's only
    database = Database(backed_up.url)
    try:
        async with database.transaction(read_only=True) as session:
            event = await session.scalar(
                select(AuditEvent).where(AuditEvent.id == backed_up.last_event_before + 1)
            )
    finally:
        await database.dispose()
    assert event is not None
    assert (event.actor, event.action, event.details) == (
        "cli", "database.backup", {"tables": backed_up.tables, "rows": backed_up.rows},
    )  # fmt: skip

    empty = await database_factory.create()
    code, out, err = await run(empty, "restore", str(backed_up.path))
    assert code == 0, err
    assert f"Restored {backed_up.rows} rows of {backed_up.tables} tables from" in out
    assert await digests(empty, audit_through=backed_up.last_event_before) == before
    restored = await last_event(empty)
    assert restored.id == backed_up.last_event_before + 1
    assert (restored.actor, restored.action, restored.details) == (
        "cli", "database.restore",
        {"tables": backed_up.tables, "rows": backed_up.rows,
         "from_revision": migrate.head_revision(), "forced": False},
    )  # fmt: skip

    # The restored database is the program's: its chain holds, new rows get new ids.
    database = Database(empty)
    try:
        async with database.transaction(read_only=True) as session:
            verdict = await audit_chain.verify(session)
        assert verdict.reason is None and verdict.events == before["audit_event"][0] + 1
    finally:
        await database.dispose()
    await add_staff(empty, "nuova.operatrice")


async def test_restore_refuses_a_database_with_data_and_force_replaces_it(
    backed_up: BackedUp, database_factory: DatabaseFactory
) -> None:
    other = await database_factory.create()
    await add_staff(other, "sola")
    held = await digests(other)
    code, out, err = await run(other, "restore", str(backed_up.path))
    assert_one_line(code, out, err, "not empty", "nothing was changed", "--force")
    assert await digests(other) == held

    code, out, err = await run(other, "restore", "--force", str(backed_up.path))
    assert code == 0, err
    assert await digests(other, audit_through=backed_up.last_event_before) == backed_up.before
    assert (await last_event(other)).details["forced"] is True


async def test_a_damaged_backup_changes_nothing_even_forced(
    backed_up: BackedUp, database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    other = await database_factory.create()
    await add_staff(other, "sola")
    held = await digests(other)
    whole = backed_up.path.read_bytes()
    # Cut early, the file is refused before anything is done; cut at its end, on
    # PostgreSQL, pg_restore fails halfway through the restore, which is rolled back.
    for cut in (len(whole) // 3, len(whole) - 64):
        truncated = tmp_path / f"cut-{cut}.backup"
        truncated.write_bytes(whole[:cut])
        code, out, err = await run(other, "restore", "--force", str(truncated))
        line = assert_one_line(code, out, err)
        assert "nothing was changed" in line
        if BACKEND == "postgresql" and cut > len(whole) // 3:
            assert "can't be read whole" in line  # the restore began, and was rolled back
        assert await digests(other) == held

    nothing = tmp_path / "notes.txt"
    nothing.write_text("not a backup")
    code, out, err = await run(other, "restore", "--force", str(nothing))
    assert_one_line(code, out, err, "is not a Ripartire backup")
    assert await digests(other) == held


async def test_an_older_backup_is_brought_to_the_head(
    database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    old = await database_factory.create()
    database = Database(old)
    try:
        await migrate.upgrade(database, "0025")
    finally:
        await database.dispose()
    path = tmp_path / "old.backup"
    code, _out, err = await run(old, "backup", str(path))
    assert code == 0, err
    empty = await database_factory.create()
    code, out, err = await run(empty, "restore", str(path))
    assert code == 0, err
    assert f"(revision 0025) was upgraded to {migrate.head_revision()}" in out
    database = Database(empty)
    try:
        assert await migrate.current_revision(database) == migrate.head_revision()
    finally:
        await database.dispose()


async def test_a_backup_never_overwrites_a_file(backed_up: BackedUp, tmp_path: Path) -> None:
    path = tmp_path / "kept.backup"
    path.write_text("an earlier backup")
    code, out, err = await run(backed_up.url, "backup", str(path))
    assert_one_line(code, out, err, "already exists")
    assert path.read_text() == "an earlier backup"
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.sqlite_only
async def test_a_backup_from_a_newer_program_is_refused(
    backed_up: BackedUp, database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    path = tmp_path / "future.backup"
    path.write_bytes(backed_up.path.read_bytes())
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    empty = await database_factory.create()
    code, out, err = await run(empty, "restore", str(path))
    assert_one_line(code, out, err, "newer Ripartire", "'9999'")


@pytest.mark.sqlite_only
async def test_a_backup_while_the_program_writes(backed_up: BackedUp, tmp_path: Path) -> None:
    """The program keeps committing during the copy, and the copy is one moment of it."""
    filled = backed_up.url
    database = Database(filled)
    written: list[float] = []
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def write() -> None:
        while not stop.is_set():
            try:
                async with database.transaction() as session:
                    await audit.record(session=session, actor="staff:1", action="case.read",
                                       object_type="case", object_id="1")  # fmt: skip
                written.append(time.monotonic())
            except Exception as exc:  # any failure fails the test below
                failures.append(exc)
                return
            await asyncio.sleep(0)

    before = await max_event_id(filled)
    writers = [asyncio.create_task(write()) for _ in range(3)]
    path = tmp_path / "live.backup"
    try:
        await asyncio.sleep(0.2)
        started = time.monotonic()
        code, _out, err = await run(filled, "backup", str(path))
        finished = time.monotonic()
        await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*writers)
        await database.dispose()
    assert code == 0, err
    assert failures == []
    assert sum(started < at < finished for at in written) > 10
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        copied = copy.execute("SELECT count(*), max(id) FROM audit_event").fetchone()
    after = await max_event_id(filled)
    assert before < copied[1] < after
    # One moment: every event up to the last copied, none missing in between.
    assert copied[0] == (await digests(filled, audit_through=copied[1]))["audit_event"][0]
    assert not Path(f"{path}-wal").exists()


@pytest.mark.postgres_only
async def test_without_the_postgresql_tools_it_says_so(backed_up: BackedUp, tmp_path: Path) -> None:
    filled = backed_up.url
    path = tmp_path / "x.backup"
    code, out, err = await run(filled, "backup", str(path), env={"PATH": str(tmp_path)})
    assert_one_line(code, out, err, "pg_dump is not installed", "postgresql-client")
    assert not path.exists()


@pytest.mark.postgres_only
async def test_an_sqlite_backup_is_not_restored_into_postgresql(
    backed_up: BackedUp, tmp_path: Path
) -> None:
    filled = backed_up.url
    path = tmp_path / "sqlite.backup"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (x)")
    held = await digests(filled)
    code, out, err = await run(filled, "restore", "--force", str(path))
    assert_one_line(code, out, err, "an SQLite database", "a PostgreSQL one")
    assert await digests(filled) == held


def test_the_tools_get_the_url_as_libpq_variables() -> None:
    url = make_url("postgresql+asyncpg://ripartire:s3cr%40t@db.example:6543/comune?ssl=require")
    assert libpq_environment(url) == {
        "PGHOST": "db.example", "PGPORT": "6543", "PGUSER": "ripartire",
        "PGPASSWORD": "s3cr@t", "PGDATABASE": "comune", "PGSSLMODE": "require",
    }  # fmt: skip
    socket = make_url("postgresql+asyncpg://app@/comune?host=/run/postgresql")
    assert libpq_environment(socket) == {
        "PGHOST": "/run/postgresql", "PGUSER": "app", "PGDATABASE": "comune",
    }  # fmt: skip


@pytest.mark.postgres_only
async def test_the_password_is_never_on_a_command_line(backed_up: BackedUp, tmp_path: Path) -> None:
    """The tools' arguments (visible to every user in ps) carry no password: PGPASSWORD does.

    The PostgreSQL here trusts local connections, so the password is not checked; a
    pg_dump in front of the real one writes down what it was given.
    """
    tools = tmp_path / "bin"
    tools.mkdir()
    spy = tools / "pg_dump"
    spy.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {tmp_path}/args\n'
        f'printf "%s" "$PGPASSWORD" > {tmp_path}/password\n'
        f'exec {shutil.which("pg_dump")} "$@"\n'
    )
    spy.chmod(0o755)
    url = (
        make_url(backed_up.url).set(password="hunter2-secret").render_as_string(hide_password=False)
    )
    path = tmp_path / "p.backup"
    code, out, err = await run(
        url, "backup", str(path), env={"PATH": f"{tools}:{os.environ['PATH']}"}
    )
    assert code == 0, err
    arguments = (tmp_path / "args").read_text()
    assert "--format=custom" in arguments and "hunter2" not in arguments
    assert (tmp_path / "password").read_text() == "hunter2-secret"
    assert "hunter2" not in out + err


async def test_a_restore_with_another_data_key_says_which_key_opens_the_notes(
    backed_up: BackedUp, database_factory: DatabaseFactory
) -> None:
    """The notes are in the backup as ciphertext: the data is restored, and a key that
    can't open them is named in one line."""
    from cryptography.fernet import Fernet

    empty = await database_factory.create()
    other_key = Fernet.generate_key().decode()
    code, out, err = await run(
        empty, "restore", str(backed_up.path), env={"RIPARTIRE_DATA_KEY": other_key}
    )
    line = assert_one_line(code, out, err, "The backup is restored", "RIPARTIRE_DATA_KEY")
    assert "the key in use when the backup was made" in line and other_key not in line
    assert await digests(empty, audit_through=backed_up.last_event_before) == backed_up.before


async def test_a_migrated_database_without_rows_counts_as_empty(
    backed_up: BackedUp, database_factory: DatabaseFactory
) -> None:
    """compose.yaml migrates before the app starts: its schema, with no row, takes a
    restore without --force (the schema's objects are replaced by the backup's)."""
    migrated = await database_factory.create()
    database = Database(migrated)
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()
    code, _out, err = await run(migrated, "restore", str(backed_up.path))
    assert code == 0, err
    assert await digests(migrated, audit_through=backed_up.last_event_before) == backed_up.before
