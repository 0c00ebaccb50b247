"""Backup and restore of the whole database (SPEC section 7: `ripartire backup|restore`).

SQLite: SQLite's online backup API (`sqlite3.Connection.backup`) copies the file in one
step inside a read transaction, so the copy is one consistent moment while the app keeps
writing (in WAL mode a reader never blocks a writer). The copy is a plain SQLite file
(rollback journal, no -wal beside it). A restore copies a backup into the database with
the same API, in one write transaction: on a failure the database is as it was.

PostgreSQL: `pg_dump` in its custom format, from a snapshot exported by the transaction
that counted the rows (so the counts are the dump's). A restore streams `pg_restore`'s
script into `psql` inside one transaction that first drops what the database holds, and
commits only when `pg_restore` read the whole file: a damaged backup changes nothing. The
connection comes from `RIPARTIRE_DATABASE_URL`, given to the tools as libpq's environment
(the password as PGPASSWORD, never on a command line).

A backup holds what the database holds: names and contacts in clear, the encrypted notes
as ciphertext (`shared.crypto`). It is no use without the data key, which is not in it.
A restore refuses a database holding rows unless forced, and brings an older backup's
schema to the program's head (as `ripartire run` would at start).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import migrate
from shared.db import SQLITE_BUSY_TIMEOUT_MS, Database, sqlite_file

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
VERSION_TABLE = "alembic_version"
_CHUNK = 256 * 1024
_QUOTED = re.compile(r'"[^"]*"')
T = TypeVar("T")


class Problem(StrEnum):
    """Why a backup or a restore did not happen (nothing was changed)."""

    TARGET_EXISTS = "target_exists"
    TARGET_UNWRITABLE = "target_unwritable"
    NO_DATABASE = "no_database"
    NOT_A_BACKUP = "not_a_backup"
    OTHER_BACKEND = "other_backend"
    UNKNOWN_REVISION = "unknown_revision"
    NOT_EMPTY = "not_empty"
    TOOL_MISSING = "tool_missing"
    TOOL_FAILED = "tool_failed"
    DAMAGED = "damaged"


class BackupError(Exception):
    """A refusal or failure, one line for the operator; never data from the database."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class Counts:
    """Rows per table (the schema's version table left out)."""

    rows: dict[str, int]

    @property
    def tables(self) -> int:
        return len(self.rows)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@dataclass(frozen=True)
class Restored:
    counts: Counts
    # The backup's schema revision and the one the database is at now (the program's head).
    from_revision: str
    to_revision: str | None


# --- counting ---------------------------------------------------------------------------

_SQLITE_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
    "AND name != 'alembic_version' ORDER BY name"
)
_POSTGRES_TABLES = (
    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
    "AND tablename != 'alembic_version' ORDER BY tablename"
)


def _count(name: str) -> str:
    # The name comes from the database's own catalog, quoted as an identifier.
    quoted = '"' + name.replace('"', '""') + '"'
    return f"SELECT count(*) FROM {quoted}"  # noqa: S608


def _sqlite_counts(connection: sqlite3.Connection) -> Counts:
    names = [row[0] for row in connection.execute(_SQLITE_TABLES)]
    return Counts({n: connection.execute(_count(n)).fetchone()[0] for n in names})


async def _postgres_counts(connection: AsyncConnection) -> Counts:
    names = (await connection.execute(text(_POSTGRES_TABLES))).scalars().all()
    rows = {}
    for name in names:
        rows[name] = (await connection.execute(text(_count(name)))).scalar_one()
    return Counts(rows)


async def count_rows(database: Database) -> Counts:
    """Rows per table of the database, as a backup would copy them."""
    if database.is_sqlite:
        path = _sqlite_path(database)
        if not path.exists():
            return Counts({})
        return await asyncio.to_thread(_with_sqlite, path, _sqlite_counts)
    async with database.engine.connect() as connection:
        return await _postgres_counts(connection)


# --- SQLite -----------------------------------------------------------------------------


def _sqlite_path(database: Database) -> Path:
    path = sqlite_file(database.url)
    if path is None:
        raise BackupError(Problem.NO_DATABASE, "an in-memory SQLite database has no backup")
    return path


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
        )
    return sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)


def _with_sqlite(path: Path, work: Callable[[sqlite3.Connection], T]) -> T:
    with closing(_connect(path)) as connection:
        return work(connection)


def _sqlite_backup(source: Path, partial: Path) -> Counts:
    with closing(_connect(source)) as live, closing(_connect(partial)) as copy:
        # One step: the whole file from one read transaction, one consistent moment.
        live.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
        if copy.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(Problem.DAMAGED, f"the copy of {source} does not check out")
        return _sqlite_counts(copy)


def _is_whole(backup: Path) -> bool:
    """Whether the file is as long as its header says (a cut copy can pass quick_check
    when the pages it lost were free)."""
    with backup.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100:
        return False
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is valid when its version-valid-for number is the change
    # counter's (SQLite's file format, section 1.3.7).
    if header[24:28] != header[92:96] or pages == 0:
        return True
    return backup.stat().st_size == page_size * pages


def _sqlite_revision(backup: Path) -> str:
    if not _is_whole(backup):
        raise BackupError(Problem.DAMAGED, f"{backup} is cut short: nothing was changed")
    try:
        with closing(_connect(backup, read_only=True)) as connection:
            if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(Problem.DAMAGED, f"{backup} is damaged: nothing was changed")
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        raise BackupError(
            Problem.DAMAGED, f"{backup} is damaged, or not a Ripartire backup: nothing was changed"
        ) from None
    if row is None:
        raise BackupError(Problem.NOT_A_BACKUP, f"{backup} holds no schema version")
    return str(row[0])


def _sqlite_restore(backup: Path, target: Path, *, force: bool) -> Counts:
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(_connect(backup, read_only=True)) as source, closing(_connect(target)) as live:
        present = _sqlite_counts(live)
        if present.total and not force:
            raise _not_empty(present)
        # The copy replaces every page of the database in one write transaction.
        source.backup(live)
        return _sqlite_counts(live)


# --- PostgreSQL -------------------------------------------------------------------------

# asyncpg's `ssl` query parameter takes libpq's sslmode values.
_SSL_PARAMETERS = ("sslmode", "ssl")


def libpq_environment(url: URL) -> dict[str, str]:
    """libpq's variables for the URL's server, user, password and database."""
    env = {}
    query = {k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()}
    host = url.host or query.get("host")
    for name, value in (
        ("PGHOST", host),
        ("PGPORT", str(url.port) if url.port else query.get("port")),
        ("PGUSER", url.username or query.get("user")),
        ("PGPASSWORD", url.password or query.get("password")),
        ("PGDATABASE", url.database),
    ):
        if value:
            env[name] = str(value)
    for parameter in _SSL_PARAMETERS:
        if query.get(parameter) in (
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ):
            env["PGSSLMODE"] = query[parameter]
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            Problem.TOOL_MISSING,
            f"{name} is not installed: install PostgreSQL's client tools, of the server's "
            "major version or newer (Debian: apt-get install postgresql-client)",
        )
    return found


def _tool_failure(name: str, stderr: bytes) -> BackupError:
    """The tool's first error line, its quoted values (names, data) left out."""
    lines = [
        line for line in stderr.decode(errors="replace").splitlines() if "error" in line.lower()
    ]
    said = _QUOTED.sub('"…"', lines[0].strip())[:300] if lines else "no message"
    return BackupError(Problem.TOOL_FAILED, f"{name} failed: {said}")


def _environment(database: Database) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return inherited | libpq_environment(make_url(database.url))


async def _run_tool(args: list[str], env: dict[str, str]) -> bytes:
    process = await asyncio.create_subprocess_exec(
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise _tool_failure(Path(args[0]).name, stderr)
    return stdout


async def _postgres_backup(database: Database, partial: Path) -> Counts:
    pg_dump = _tool("pg_dump")
    async with database.engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            await connection.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = (await connection.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
            counts = await _postgres_counts(connection)
            # The dump sees what this transaction sees, as long as it stays open.
            await _run_tool(
                [pg_dump, "--format=custom", "--no-password", f"--snapshot={snapshot}",
                 f"--file={partial}"],
                _environment(database),
            )  # fmt: skip
    return counts


_COPY_VERSION = re.compile(rf"^COPY \S*{VERSION_TABLE} \(version_num\) FROM stdin;$", re.M)


async def _postgres_revision(database: Database, backup: Path) -> str:
    pg_restore = _tool("pg_restore")
    env = _environment(database)
    try:
        await _run_tool([pg_restore, "--list", str(backup)], env)
        script = await _run_tool(
            [pg_restore, "--data-only", f"--table={VERSION_TABLE}", "--file=-", str(backup)], env
        )
    except BackupError as exc:
        raise BackupError(
            Problem.DAMAGED, f"{backup} can't be read, nothing was changed: {exc}"
        ) from None
    found = _COPY_VERSION.search(script.decode(errors="replace"))
    if found is None:
        raise BackupError(Problem.NOT_A_BACKUP, f"{backup} holds no schema version")
    rows = script.decode()[found.end() :].lstrip("\n").split("\n", 1)
    if not rows or rows[0] == "\\.":
        raise BackupError(Problem.NOT_A_BACKUP, f"{backup} holds no schema version")
    return rows[0]


# Everything the database's schema holds, dropped before the backup's objects are made:
# the program's tables (their sequences, indexes and triggers with them), functions and
# types, leaving an extension's members to the extension.
_DROP_EVERYTHING = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c
           WHERE c.relnamespace = current_schema()::regnamespace
           AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP %s IF EXISTS %I CASCADE',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                     WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.relname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
           WHERE p.pronamespace = current_schema()::regnamespace
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', r.signature);
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_type t
           WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype IN ('e', 'd')
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
  END LOOP;
END $$;
"""


async def _postgres_restore(database: Database, backup: Path) -> None:
    """pg_restore's script through psql in one transaction, committed only when complete."""
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    env = _environment(database)
    reader = await asyncio.create_subprocess_exec(
        pg_restore, "--no-owner", "--no-privileges", "--file=-", str(backup),
        env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    writer = await asyncio.create_subprocess_exec(
        psql, "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1", "--file=-",
        env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert reader.stdout is not None
    assert reader.stderr is not None
    assert writer.stdin is not None
    assert writer.stderr is not None
    reader_errors = asyncio.create_task(reader.stderr.read())
    writer_errors = asyncio.create_task(writer.stderr.read())
    complete = False
    try:
        writer.stdin.write(b"BEGIN;\n" + _DROP_EVERYTHING.encode())
        while chunk := await reader.stdout.read(_CHUNK):
            writer.stdin.write(chunk)
            await writer.stdin.drain()
        complete = await reader.wait() == 0
        if complete:
            writer.stdin.write(b"\nCOMMIT;\n")
            await writer.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # psql stopped at an error: its message says which
    finally:
        if reader.returncode is None:
            reader.kill()
            await reader.wait()
        # Without COMMIT, psql's end closes the connection and the server rolls back.
        writer.stdin.close()
        await writer.wait()
    if not complete:
        raise BackupError(
            Problem.DAMAGED,
            f"{backup} can't be read whole, nothing was changed: "
            + str(_tool_failure("pg_restore", await reader_errors)),
        )
    if writer.returncode != 0:
        raise BackupError(
            Problem.TOOL_FAILED,
            f"nothing was changed: {_tool_failure('psql', await writer_errors)}",
        )


# --- the two operations -----------------------------------------------------------------


def _partial(target: Path) -> Path:
    """An empty file beside the target that only this user can read: a backup holds
    personal data."""
    if target.exists():
        raise BackupError(
            Problem.TARGET_EXISTS, f"{target} already exists: choose a new name or remove it"
        )
    partial = target.with_name(f".{target.name}.partial")
    try:
        os.close(os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600))
        os.chmod(partial, 0o600)
    except OSError as exc:
        raise BackupError(
            Problem.TARGET_UNWRITABLE, f"cannot write {target} ({exc.strerror})"
        ) from None
    return partial


async def backup(*, database: Database, target: Path) -> Counts:
    """Copy the whole database to `target` (a new file), while the program runs on."""
    if database.is_sqlite:
        source = _sqlite_path(database)
        if not source.exists():
            raise BackupError(Problem.NO_DATABASE, f"there is no database at {source}")
    partial = _partial(target)
    try:
        if database.is_sqlite:
            counts = await asyncio.to_thread(_sqlite_backup, source, partial)
        else:
            counts = await _postgres_backup(database, partial)
        partial.rename(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return counts


def _not_empty(present: Counts) -> BackupError:
    filled = sum(1 for n in present.rows.values() if n)
    return BackupError(
        Problem.NOT_EMPTY,
        f"the database is not empty ({present.total} rows in {filled} "
        "tables): nothing was changed. Restore into an empty database, or add --force to "
        "replace everything it holds with the backup",
    )


def _check_revision(backup_file: Path, revision: str) -> None:
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    try:
        known = scripts.get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        raise BackupError(
            Problem.UNKNOWN_REVISION,
            f"{backup_file} was made by a newer Ripartire (schema revision {revision!r} is "
            "unknown to this one): install that version or a later one to restore it",
        )


def _kind(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise BackupError(Problem.NOT_A_BACKUP, f"there is no file {path}") from None
    except OSError as exc:
        raise BackupError(Problem.NOT_A_BACKUP, f"cannot read {path} ({exc.strerror})") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(Problem.NOT_A_BACKUP, f"{path} is not a Ripartire backup")


async def restore(*, database: Database, source: Path, force: bool = False) -> Restored:
    """Put the backup `source` in place of the database's content, then migrate it to head.

    Refuses (`Problem.NOT_EMPTY`, nothing changed) a database holding rows unless `force`.
    """
    kind = _kind(source)
    backend = "sqlite" if database.is_sqlite else "postgresql"
    if kind != backend:
        names = {"sqlite": "an SQLite", "postgresql": "a PostgreSQL"}
        raise BackupError(
            Problem.OTHER_BACKEND,
            f"{source} is a backup of {names[kind]} database and RIPARTIRE_DATABASE_URL "
            f"names {names[backend]} one",
        )
    if database.is_sqlite:
        revision = await asyncio.to_thread(_sqlite_revision, source)
        _check_revision(source, revision)
        await asyncio.to_thread(_sqlite_restore, source, _sqlite_path(database), force=force)
    else:
        revision = await _postgres_revision(database, source)
        _check_revision(source, revision)
        present = await count_rows(database)
        if present.total and not force:
            raise _not_empty(present)
        await _postgres_restore(database, source)
    # The pool may hold connections that knew the tables replaced.
    await database.engine.dispose()
    await migrate.upgrade(database)
    return Restored(
        counts=await count_rows(database),
        from_revision=revision,
        to_revision=await migrate.current_revision(database),
    )
