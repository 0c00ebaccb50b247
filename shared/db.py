"""Async engine, declarative base and the unit of work shared by every entry point.

SQLite is configured for a server: WAL, foreign keys, a busy timeout and write
transactions that take the database lock up front (`BEGIN IMMEDIATE`), so that a
check-then-write sequence in a service cannot interleave with another writer; read
transactions take no lock and refuse writes.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.attributes import instance_dict
from sqlalchemy.types import TypeDecorator

from shared import crypto

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A PostgreSQL server that never answers would otherwise hold every command for asyncpg's
# default minute; a healthy one on the same network answers in milliseconds.
CONNECT_TIMEOUT_SECONDS = 5
# Below this much free space an SQLite database can't be trusted to save: each commit
# appends to the write-ahead log, which a checkpoint then copies into the file.
MIN_FREE_BYTES = 1024 * 1024
# PostgreSQL plans each of asyncpg's prepared statements afresh for its values, instead of
# switching to a generic plan after five runs (its default): the same statement serves
# "the bookings from today" and "the whole history", states of ten rows and of ten
# thousand, and the generic plan chosen for the unknown values took the board's counts
# from 8 to 150 ms at 100k bookings (docs/benchmarks.md, "Bookings board"). Planning
# again costs tenths of a millisecond.
POSTGRESQL_SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}
_READ_ONLY = "ripartire_read_only"
_OWN_QUERY_ONLY = "ripartire_own_query_only"
# A write that changes nothing, to the one table every migrated database has: it meets
# whatever refuses writes (a read-only file or mount, `PRAGMA query_only`, a PostgreSQL
# standby or `default_transaction_read_only`) and is rolled back.
_WRITE_PROBE = "UPDATE alembic_version SET version_num = version_num"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


Model = TypeVar("Model", bound=Base)


def for_reading(model: type[Model], values: Mapping[str, Any]) -> Model:
    """An instance of `model` holding `values` (attribute keys), for reading only.

    Made as the ORM's loader makes the objects it loads, without the constructor's
    change events: a fraction of its cost, for pages that read their rows with Core in
    one statement and show many of them. It belongs to no session and is never flushed.
    """
    instance = sa_inspect(model, raiseerr=True).class_manager.new_instance()
    instance_dict(instance).update(values)
    return cast(Model, instance)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both databases (SQLite has no time zone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def upsert_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ON CONFLICT on the session's database (both have it)."""
    return postgresql.insert(table) if is_postgresql(session) else sqlite.insert(table)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        # A read transaction refuses writes: one that wrote would take the write lock only at
        # its first write, and fail at once ("database is locked") if another writer has
        # committed since it began reading. The pragma outlives the transaction: it is set
        # when it changes, and a write transaction goes back to the connection's own (ON
        # where the operator made the database read-only that way).
        info = connection.connection.info
        if _OWN_QUERY_ONLY not in info:
            own = bool(connection.exec_driver_sql("PRAGMA query_only").scalar())
            info[_OWN_QUERY_ONLY] = info[_READ_ONLY] = own
        wanted = read_only or info[_OWN_QUERY_ONLY]
        if info[_READ_ONLY] != wanted:
            connection.exec_driver_sql(f"PRAGMA query_only={int(wanted)}")
            info[_READ_ONLY] = wanted
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL opens (`file:` URIs too), None for memory or other databases."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database:
        return None
    database = database.removeprefix("file:")
    if not database or database.startswith(":memory:"):
        return None
    return Path(database).expanduser()


def free_bytes(path: Path) -> int:
    """Room left for this process on the file system that holds `path` (its folder if new)."""
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    stats = os.statvfs(folder)
    # root may use the blocks reserved for it; anybody else only the available ones.
    blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail
    return blocks * stats.f_frsize


def _ensure_sqlite_directory(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _failure_name(exc: BaseException) -> str:
    """The class of a failure and the database's code for it: never its message (data)."""
    cause = getattr(exc, "orig", None)
    code = getattr(cause, "sqlite_errorname", None) or getattr(cause, "sqlstate", None)
    if isinstance(exc, OSError) and exc.errno is not None:
        code = errno.errorcode.get(exc.errno)
    return f"{exc.__class__.__name__} {code}" if code else exc.__class__.__name__


class Database:
    """One engine and its session factories; the entry points own the transactions.

    `cipher`: the keys of the encrypted columns (`shared.crypto`); without it, reading or
    writing an encrypted value raises `crypto.DataKeyError`.
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 10,
        cipher: crypto.DataCipher | None = None,
    ) -> None:
        self.url = url
        # Another engine on the same database (a test's or benchmark's) takes the same keys.
        self.cipher = cipher
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        # Bound parameters carry names, answers and token hashes: never in an error message.
        options: dict[str, Any] = {
            "echo": echo,
            "pool_pre_ping": not self.is_sqlite,
            "hide_parameters": True,
        }
        if self.is_sqlite:
            _ensure_sqlite_directory(url)
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            options |= {
                "pool_size": pool_size,
                "max_overflow": pool_size * 2,
                "connect_args": {
                    "timeout": CONNECT_TIMEOUT_SECONDS,
                    "server_settings": POSTGRESQL_SERVER_SETTINGS,
                },
            }
        self.engine = create_async_engine(url, **options)
        crypto.attach(self.engine, cipher)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._read_engine = self.engine.execution_options(**{_READ_ONLY: True})
        self._write_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self._read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed when the block ends, rolled back if it raises."""
        factory = self._read_sessions if read_only else self._write_sessions
        async with factory() as session, session.begin():
            yield session

    async def ping(self, seconds: float = 3.0) -> bool:
        """True when the database answers a trivial query within `seconds`."""
        try:
            async with asyncio.timeout(seconds), self._read_engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not reachable" to a health check
            log.warning("database ping failed: %s", exc.__class__.__name__)
            return False
        return True

    async def check_writable(self) -> None:
        """Raise what a write would meet now: the database's refusal, or ENOSPC for its disk.

        The probe is rolled back, so it proves the database takes writes but not that the
        disk has room for them (a rolled-back SQLite write never reaches the file): the free
        space of an SQLite file's disk is checked apart.
        """
        path = sqlite_file(self.url) if self.is_sqlite else None
        if path is not None and free_bytes(path) < MIN_FREE_BYTES:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        async with self.engine.connect() as connection:
            try:
                await connection.execute(text(_WRITE_PROBE))
            finally:
                await connection.rollback()

    async def accepts_writes(self, seconds: float = 3.0) -> bool:
        """True when a write would be saved (see `check_writable`), decided within `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                await self.check_writable()
        except Exception as exc:  # any failure means "nothing can be saved" to a health check
            log.warning("database refuses writes: %s", _failure_name(exc))
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
