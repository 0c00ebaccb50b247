"""What the benchmarks share: fresh databases on both backends, timing and printing."""

from __future__ import annotations

import gc
import os
import platform
import secrets
import sqlite3
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy
from cryptography.fernet import Fernet
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from shared import crypto, migrate
from shared.db import Database

# The PostgreSQL server's admin database, as for the test suite (tests/conftest.py).
POSTGRES_ADMIN_URL = os.environ.get(
    "RIPARTIRE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True, slots=True)
class Options:
    """How hard to try: `--quick` keeps the minimum of 15 timed repetitions."""

    quick: bool = False
    profile: bool = False

    @property
    def warmup(self) -> int:
        return 2 if self.quick else 5

    @property
    def repetitions(self) -> int:
        return 15 if self.quick else 41


# --- databases -----------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_connection() -> asyncpg.Connection:
    return await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=5)


async def postgres_version() -> str | None:
    """The server's version, or None when PostgreSQL is not reachable."""
    try:
        admin = await _admin_connection()
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        return str(await admin.fetchval("SHOW server_version"))
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_database(backend: Backend, workdir: Path) -> AsyncIterator[Database]:
    """An empty, migrated database of `backend`, removed (PostgreSQL: dropped) at the end."""
    name = f"ripartire_bench_{secrets.token_hex(6)}"
    if backend is Backend.SQLITE:
        url = f"sqlite+aiosqlite:///{workdir / name}.db"
    else:
        admin = await _admin_connection()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    # The notes are encrypted as in production (shared.crypto), with a key of the run's own.
    database = Database(url, cipher=crypto.DataCipher([Fernet.generate_key().decode()]))
    try:
        await migrate.upgrade(database)
        yield database
    finally:
        await database.dispose()
        if backend is Backend.POSTGRESQL:
            admin = await _admin_connection()
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


class Databases:
    """Fresh databases of one backend for one benchmark, all removed when it ends."""

    def __init__(self, backend: Backend, workdir: Path) -> None:
        self.backend = backend
        self._workdir = workdir
        self._stack = AsyncExitStack()

    async def create(self) -> Database:
        return await self._stack.enter_async_context(fresh_database(self.backend, self._workdir))

    async def __aenter__(self) -> Databases:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()


# --- measuring -----------------------------------------------------------------------

Call = Callable[[AsyncSession], Awaitable[object]]


async def timed(database: Database, call: Call) -> float:
    """Seconds taken by `call` in a read-only unit of work whose connection is already open.

    Checking out the connection and BEGIN (SQLite's is a statement) happen before the
    clock starts; COMMIT and giving the connection back happen after it stops.
    """
    gc.collect()
    async with database.transaction(read_only=True) as session:
        await session.connection()
        start = time.perf_counter()
        await call(session)
        return time.perf_counter() - start


def timed_sync(call: Callable[[], object]) -> float:
    """Seconds taken by a call that does no I/O."""
    gc.collect()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


async def count_statements(database: Database, call: Call) -> list[str]:
    """The SQL statements `call` sends to the database, BEGIN and COMMIT excluded."""
    seen: list[str] = []

    def before_cursor_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    # Listen before the connection exists: a connection made while an engine had no
    # listeners does not see listeners added to the engine later.
    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        async with database.transaction(read_only=True) as session:
            await session.connection()
            already = len(seen)
            await call(session)
            return seen[already:]
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


@dataclass(frozen=True, slots=True)
class Stats:
    """Milliseconds over the timed repetitions."""

    median: float
    p90: float
    samples: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Stats:
        ms = [s * 1000 for s in seconds]
        p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
        return cls(statistics.median(ms), p90, len(ms))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --- printing ------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table, numbers right-aligned under their headers."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def machine_facts(postgres: str | None) -> list[tuple[str, str]]:
    return [
        ("python", platform.python_version()),
        ("cpus", str(os.cpu_count())),
        ("platform", platform.platform()),
        ("sqlalchemy", sqlalchemy.__version__),
        ("sqlite", sqlite3.sqlite_version),
        ("postgresql", postgres or "not reachable"),
    ]


def git_revision() -> str:
    """The checkout's commit, for a report's header ("unknown" outside a git checkout)."""
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip() or "unknown"
