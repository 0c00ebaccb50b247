"""The `ripartire` command line (SPEC section 7)."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import uvicorn
from sqlalchemy.exc import DBAPIError, StatementError

from dashboard.app import create_app
from dashboard.params import BadDay, read_day
from dashboard.routes.figures import draw_charts
from shared import backup as backups
from shared import crypto, migrate
from shared import demo as demo_data
from shared.audit import chain as audit_chain
from shared.audit import service as audit_service
from shared.db import (
    CONNECT_TIMEOUT_SECONDS,
    MIN_FREE_BYTES,
    Database,
    free_bytes,
    sqlite_file,
    utcnow,
)
from shared.exports import service as exports
from shared.exports.columns import Days
from shared.exports.definitions import EXPORTS
from shared.figures.cache import figures_cache_component
from shared.figures.period import MAX_PERIOD_DAYS
from shared.housekeeping import housekeeping_component
from shared.i18n import DEFAULT_LANGUAGE
from shared.logs import configure_logging
from shared.privacy import retention as retention_rules
from shared.runtime import load_components
from shared.schema import metadata
from shared.settings import Settings, SettingsError, load_settings
from shared.staff import service as staff
from shared.staff.errors import StaffError
from shared.staff.models import Role

log = logging.getLogger("ripartire")

DEMO_DATABASE = Path("data") / "demo.db"
T = TypeVar("T")


@dataclass
class _Invocation:
    """What the group learns about one command line, for the messages of its failures."""

    debug: bool = False
    settings: Settings | None = None


def _settings(**overrides: object) -> Settings:
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None
    click.get_current_context().ensure_object(_Invocation).settings = settings
    return settings


def _log_level() -> int:
    debug = click.get_current_context().ensure_object(_Invocation).debug
    return logging.DEBUG if debug else logging.INFO


# --- start-up failures an operator can fix, each as one line ---------------------------

_DATABASE_URL = "RIPARTIRE_DATABASE_URL"
# PostgreSQL's SQLSTATE codes (Appendix A of its manual) for a database one can't start on.
_POSTGRES_REFUSALS = {
    "3D000": "the database {name!r} does not exist on {server}. Create it "
    "(createdb {name}) or correct " + _DATABASE_URL + ".",
    "28000": "{server} refused the user {user!r}. Correct the user and password in "
    + _DATABASE_URL
    + ", or allow that user in PostgreSQL's pg_hba.conf.",
    "28P01": "{server} refused the password of the user {user!r}. Correct the user and "
    "password in " + _DATABASE_URL + ".",
    "42501": "the user {user!r} may not change the database {name!r}. Grant it the "
    "rights, or use its owner in " + _DATABASE_URL + ".",
    "25006": "{server} accepts no writes (a standby, or default_transaction_read_only). "
    "Point " + _DATABASE_URL + " at the primary server.",
    "53100": "the disk of {server} is full. Free some space on the database server.",
    "53300": "{server} has no free connection. Raise max_connections or stop other clients.",
    "57P03": "{server} is starting up or shutting down. Try again in a moment.",
}
_SQLITE_FAILURES = {
    sqlite3.SQLITE_FULL: "the disk holding {path} is full. Free some space, then try again.",
    sqlite3.SQLITE_READONLY: "{path} is read-only (file permissions, a read-only mount or "
    "mode=ro). Let this process write the file and its folder, or correct " + _DATABASE_URL + ".",
    sqlite3.SQLITE_CANTOPEN: "cannot open {path}. Check that its folder exists and that "
    "this process may write there, or correct " + _DATABASE_URL + ".",
    sqlite3.SQLITE_IOERR: "the disk holding {path} reported an I/O error. Check the disk "
    "and its free space.",
    sqlite3.SQLITE_NOTADB: "{path} is not an SQLite database. Correct " + _DATABASE_URL + ".",
    sqlite3.SQLITE_CORRUPT: "{path} is damaged. Restore it from a backup.",
    sqlite3.SQLITE_BUSY: "{path} is locked by another process. Stop it or try again later.",
}


def _postgres_failure(exc: BaseException, settings: Settings) -> str | None:
    url = settings.database
    server = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"{server} refused the connection. Check that it is running there, or correct "
            f"the host and port in {_DATABASE_URL}."
        )
    if isinstance(exc, socket.gaierror):
        return f"the database host {url.host!r} is unknown. Correct the host in {_DATABASE_URL}."
    if isinstance(exc, TimeoutError):
        return (
            f"{server} did not answer within {CONNECT_TIMEOUT_SECONDS} seconds. Check the host "
            f"and port in {_DATABASE_URL}, and that no firewall drops the connection."
        )
    if isinstance(exc, OSError) and exc.filename is None:
        return f"cannot reach {server} ({exc.strerror}). Check {_DATABASE_URL} and the network."
    sqlstate = getattr(exc.orig, "sqlstate", None) if isinstance(exc, DBAPIError) else None
    template = _POSTGRES_REFUSALS.get(str(sqlstate))
    if template is None:
        return None
    return template.format(server=server, name=url.database, user=url.username)


def _sqlite_failure(exc: BaseException, path: Path) -> str | None:
    cause = exc.orig if isinstance(exc, DBAPIError) else None
    if not isinstance(cause, sqlite3.Error):
        return None
    # Extended codes (SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED...) keep the primary one
    # in their low byte.
    code = cause.sqlite_errorcode & 0xFF
    if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN):
        # A full disk shows up this way when not even the -shm file can grow.
        try:
            if free_bytes(path) < MIN_FREE_BYTES:
                code = sqlite3.SQLITE_FULL
        except OSError:
            pass
    template = _SQLITE_FAILURES.get(code)
    return template.format(path=path) if template else None


def _is_part_of(filename: Path, database: Path) -> bool:
    """The database file, its -wal and -shm companions, or a folder on the way to them."""
    return (
        filename == database
        or filename in database.parents
        or (filename.parent == database.parent and filename.name.startswith(database.name + "-"))
    )


def _file_failure(exc: OSError, database: Path | None) -> str | None:
    filename = Path(str(exc.filename))
    if exc.errno == errno.ENOSPC:
        return f"the disk holding {filename} is full. Free some space, then try again."
    if database is not None and _is_part_of(filename.absolute(), database.absolute()):
        return (
            f"cannot use {filename} ({exc.strerror}). Correct {_DATABASE_URL}, or let this "
            "process create and write files there."
        )
    return None


def _describe(exc: BaseException, settings: Settings | None) -> str | None:
    path = sqlite_file(settings.database_url) if settings is not None else None
    if isinstance(exc, OSError) and exc.filename is not None:
        return _file_failure(exc, path)
    if settings is not None and settings.database.get_backend_name() == "postgresql":
        return _postgres_failure(exc, settings)
    if path is not None:
        return _sqlite_failure(exc, path)
    return None


def explain_failure(exc: BaseException, settings: Settings | None) -> str | None:
    """One line saying what went wrong and what to do, or None for a failure that is a bug.

    Only causes an operator can fix are named: the database server's answer (or its
    silence), the file system under an SQLite file. Never the URL's password, nor data.
    """
    message = _describe(exc, settings)
    return f"Database error: {message}" if message else None


class _Ripartire(click.Group):
    """Runs a command; a failure `explain_failure` knows becomes one line, unless --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            # Keys that can't read the data: a column type's refusal comes wrapped in the
            # statement's error.
            cause = exc.orig if isinstance(exc, StatementError) else exc
            invocation = ctx.ensure_object(_Invocation)
            if isinstance(cause, crypto.DataKeyError) and not invocation.debug:
                raise click.ClickException(str(cause)) from None
            message = None if invocation.debug else explain_failure(exc, invocation.settings)
            if message is None:
                raise
            raise click.ClickException(message) from None


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def _database(settings: Settings) -> Database:
    """The settings' database, with the keys of its encrypted columns when they are set."""
    keys = settings.data_keys()
    return Database(settings.database_url, cipher=crypto.DataCipher(keys) if keys else None)


async def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    database = _database(settings)
    try:
        return await work(database)
    finally:
        await database.dispose()


@click.group(cls=_Ripartire, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--debug", is_flag=True, help="Log at DEBUG level; on failure, show the full traceback."
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Ripartire: Telegram pre-screening and booking, staff dashboard."""
    ctx.ensure_object(_Invocation).debug = debug


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def run(host: str, port: int) -> None:
    """Serve the dashboard and, when a token is set, the Telegram bot."""
    settings = _settings()
    try:
        settings.require_secret_key()
        settings.require_data_keys()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings, _log_level())
    _run(_serve(settings, host, port))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def demo(host: str, port: int) -> None:
    """Serve a demo on a fresh sample database (data/demo.db), recreated at each start."""
    for suffix in ("", "-wal", "-shm"):
        DEMO_DATABASE.with_name(DEMO_DATABASE.name + suffix).unlink(missing_ok=True)
    settings = _settings(database_url=f"sqlite+aiosqlite:///{DEMO_DATABASE}", demo=True)
    configure_logging(settings, _log_level())

    async def prepare(database: Database) -> tuple[demo_data.DemoLogin, ...]:
        await migrate.upgrade(database)
        async with database.transaction() as session:
            return await demo_data.seed(session=session, settings=settings)

    logins = _run(_with_database(settings, prepare))
    click.echo(f"\nRipartire demo on http://{host}:{port}/  (database: {DEMO_DATABASE})")
    click.echo("Demo staff logins:")
    for login in logins:
        click.echo(f"  {login.role.value:<13} {login.username:<13} password: {login.password}")
    click.echo("")
    _run(_serve(settings, host, port))


async def _serve(settings: Settings, host: str, port: int) -> None:
    database = _database(settings)
    try:
        await migrate.upgrade(database)
        # At head, upgrading writes nothing: a database that saves nothing would pass.
        await database.check_writable()
        await crypto.check_stored(database.engine, metadata.sorted_tables)
        components = [
            housekeeping_component(settings=settings, database=database),
            figures_cache_component(settings=settings, database=database, draw=draw_charts),
            *load_components(settings=settings, database=database),
        ]
        if settings.telegram_token is None:
            log.info("Telegram bot is off: RIPARTIRE_TELEGRAM_TOKEN is not set")
        elif not any(c.name == "bot" for c in components):
            log.warning("Telegram bot is off: the bot component is not installed")
        app = create_app(settings=settings, database=database, components=components)
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )  # fmt: skip
        await uvicorn.Server(config).serve()
    finally:
        await database.dispose()


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""
    settings = _settings()

    async def work(database: Database) -> str | None:
        await migrate.upgrade(database)
        return await migrate.current_revision(database)

    revision = _run(_with_database(settings, work))
    click.echo(f"Database is at revision {revision}.")


@db.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
def db_revision(message: str) -> None:
    """(Developers) write a new migration from the models' difference with the database."""
    settings = _settings()

    async def work(database: Database) -> None:
        await migrate.upgrade(database)
        await migrate.new_revision(database, message)

    _run(_with_database(settings, work))


@main.group()
def users() -> None:
    """Staff accounts."""


@users.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--display-name", default=None, help="Full name shown in the dashboard.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_add(username: str, role: str, display_name: str | None, password_stdin: bool) -> None:
    """Create a staff account; the password is prompted for unless --password-stdin."""
    settings = _settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def work(database: Database) -> None:
        await migrate.upgrade(database)
        async with database.transaction() as session:
            await staff.add_user(
                session=session,
                username=username,
                password=password,
                role=Role(role),
                display_name=display_name,
                actor="cli",
            )

    try:
        _run(_with_database(settings, work))
    except StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {role} {username.strip().lower()!r}.")


_BREAKS = {
    audit_chain.Break.EDITED: "its content is not what its hash says: it was changed",
    audit_chain.Break.UNLINKED: (
        "it does not follow the event before it: an event was deleted, added or moved"
    ),
    audit_chain.Break.PRUNED: "it is older than the checkpoint, which says it was pruned",
    audit_chain.Break.CHECKPOINT: "no audit.prune event in the chain records this checkpoint",
}


@main.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain: "ok, N events", or the first event that breaks it."""
    settings = _settings()
    configure_logging(settings, _log_level())

    async def work(database: Database) -> audit_chain.Verdict:
        await migrate.upgrade(database)
        async with database.transaction(read_only=True) as session:
            return await audit_chain.verify(session)

    verdict = _run(_with_database(settings, work))
    checkpoint = verdict.checkpoint
    if verdict.reason is not None:
        where = "checkpoint" if verdict.reason is audit_chain.Break.CHECKPOINT else "event"
        click.echo(f"broken at {where} {verdict.broken_at}: {_BREAKS[verdict.reason]}")
        click.echo(f"{verdict.events} events before it hold.")
        raise click.exceptions.Exit(1)
    click.echo(f"ok, {verdict.events} events")
    if checkpoint is not None:
        click.echo(
            f"after checkpoint {checkpoint.id}: {checkpoint.total} earlier events pruned, "
            f"through event {checkpoint.through_id}"
        )
    # Kept somewhere else, it shows a log shortened or rebuilt since (shared.audit.chain).
    click.echo(f"last hash: {verdict.head}")


# Each retention rule as the command reports it: its count, what it removes, what it does.
_RETENTION_RULES = (
    ("questionnaires", "unfinished questionnaires, no answer for {s.intake_expiry_days} days",
     "deleted"),
    ("never_booked", "candidates who never booked, inactive for "
     "{s.retention_never_booked_days} days", "erased"),
    ("closed_cases", "cases closed more than {s.retention_closed_case_days} days ago",
     "anonymised"),
    ("past_candidates", "citizens whose cases all closed more than "
     "{s.retention_closed_case_days} days ago, inactive since", "erased"),
    ("audit_events", "audit events older than {s.retention_audit_days} days", "pruned"),
)  # fmt: skip


@main.group("retention")
def retention_group() -> None:
    """Retention: personal data kept no longer than its period (docs/privacy.md)."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would go, and change nothing.")
def retention_run(dry_run: bool) -> None:
    """Apply the retention rules now (the running process does it once a day)."""
    settings = _settings()
    configure_logging(settings, _log_level())
    now = utcnow()

    async def work(database: Database) -> retention_rules.RetentionCounts:
        await migrate.upgrade(database)
        if not dry_run:
            await crypto.check_stored(database.engine, metadata.sorted_tables)
        return await retention_rules.run_retention(
            database=database, settings=settings, now=now, actor="cli", dry_run=dry_run
        )

    counts = _run(_with_database(settings, work))
    local = now.astimezone(settings.tz)
    click.echo(
        f"Retention at {local:%Y-%m-%d %H:%M} ({settings.timezone})"
        + (", dry run: nothing was changed." if dry_run else ":")
    )
    for field, what, done in _RETENTION_RULES:
        count = getattr(counts, field)
        click.echo(f"  {what.format(s=settings)}: {count} {'would be ' if dry_run else ''}{done}")


def _usage_failure(message: str) -> click.exceptions.Exit:
    """A bad argument of `export`: one line on standard error, exit code 2."""
    click.echo(f"Error: {message}", err=True)
    return click.exceptions.Exit(2)


def _export_day(value: str | None, option: str) -> Any:
    try:
        return read_day(value or "")
    except BadDay:
        raise _usage_failure(
            f"{option} {value!r} is not a day; write it as 2026-12-31 or 31/12/2026."
        ) from None


_EXPORT_REFUSALS = {
    exports.UNKNOWN: "there is no export called {name!r}; choose one of: {names}.",
    exports.NO_FORMAT: "the export {name!r} has no {fmt} format.",
    exports.REVERSED: "--to is before --from.",
    exports.TOO_LONG: "the figures' period can be at most {days} days long.",
}


@main.command("export")
@click.argument("name")
@click.option("--format", "fmt", required=True, type=click.Choice(["csv", "xlsx"]))
@click.option("--from", "first", default=None, help="First local day (2026-12-31).")
@click.option("--to", "last", default=None, help="Last local day, included.")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export(name: str, fmt: str, first: str | None, last: str | None, output: Path) -> None:
    """Write an export (bookings, cases, plans, payments, figures, funder_pack) to a file."""
    days = Days(_export_day(first, "--from"), _export_day(last, "--to"))
    settings = _settings()
    now = utcnow()
    try:
        chosen, file_format = exports.find(name, fmt)
        exports.check_days(chosen, days, today=now.astimezone(settings.tz).date())
    except exports.ExportError as exc:
        raise _usage_failure(
            _EXPORT_REFUSALS[exc.code].format(
                name=name, fmt=fmt, names=", ".join(EXPORTS), days=MAX_PERIOD_DAYS
            )
        ) from None
    configure_logging(settings, _log_level())
    try:
        handle = output.open("wb")
    except OSError as exc:
        raise _usage_failure(f"cannot write {output} ({exc.strerror}).") from None

    async def work(database: Database) -> None:
        await migrate.upgrade(database)
        await crypto.check_stored(database.engine, metadata.sorted_tables)
        # The event first, committed: a write transaction open while the file is written
        # (minutes at 100k cases) would hold the audit chain's end, and on SQLite the
        # database, for every other writer (as `/exports` does: `deps.commit_early`).
        async with database.transaction() as session:
            await exports.record(
                session=session, actor="cli", export=chosen, fmt=file_format, days=days
            )
        async with database.transaction(read_only=True) as session:
            await exports.write(
                session=session, settings=settings, export=chosen, fmt=file_format, days=days,
                language=DEFAULT_LANGUAGE, now=now, target=handle,
            )  # fmt: skip

    try:
        with handle:
            _run(_with_database(settings, work))
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    click.echo(f"Wrote {output}.")


@main.group()
def keys() -> None:
    """The keys of the encrypted notes (RIPARTIRE_DATA_KEY)."""


@keys.command("rotate")
@click.option(
    "--batch", default=crypto.ROTATE_BATCH, show_default=True, type=click.IntRange(1, 100_000),
    help="Rows re-encrypted per transaction.",
)  # fmt: skip
def keys_rotate(batch: int) -> None:
    """Re-encrypt every encrypted note with the first key of RIPARTIRE_DATA_KEY."""
    settings = _settings()
    try:
        keys = settings.require_data_keys()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings, _log_level())

    async def work(database: Database) -> crypto.RotationReport:
        await migrate.upgrade(database)
        await crypto.check_stored(database.engine, metadata.sorted_tables)
        report = await crypto.rotate(database.engine, metadata.sorted_tables, batch=batch)
        async with database.transaction() as session:
            await audit_service.record(
                session=session, actor="cli", action="keys.rotate", object_type="data_key",
                details={
                    "reencrypted": sum(report.reencrypted.values()),
                    "encrypted_plain": sum(report.encrypted_plain.values()),
                    "keys": len(keys),
                },
            )  # fmt: skip
        return report

    report = _run(_with_database(settings, work))
    rotated, plain = sum(report.reencrypted.values()), sum(report.encrypted_plain.values())
    click.echo(
        f"Re-encrypted {rotated} values with the first key and encrypted {plain} plain ones; "
        f"{sum(report.current.values())} were already under the first key."
    )
    if len(keys) > 1:
        click.echo(
            "Every value is now under the first key: remove the others from "
            "RIPARTIRE_DATA_KEY, then restart."
        )


# --- backup and restore (README "Backup and restore") ------------------------------------


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.1f} KiB"


@main.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(path: Path) -> None:
    """Copy the whole database to PATH (a new file) while the program runs on."""
    settings = _settings()
    configure_logging(settings, _log_level())

    async def work(database: Database) -> backups.Counts:
        counts = await backups.backup(database=database, target=path)
        # After the copy: the event says a backup exists, with counts only.
        async with database.transaction() as session:
            await audit_service.record(
                session=session, actor="cli", action="database.backup", object_type="database",
                details={"tables": counts.tables, "rows": counts.total},
            )  # fmt: skip
        return counts

    try:
        counts = _run(_with_database(settings, work))
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Backed up {counts.total} rows of {counts.tables} tables to {path} ({_size(path)})."
    )
    click.echo(
        "The backup holds personal data and the encrypted notes as ciphertext: keep it safe, "
        "and keep RIPARTIRE_DATA_KEY apart from it (without the key the notes can't be read)."
    )


@main.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--force", is_flag=True, help="Replace everything the database holds with the backup."
)
def restore_command(path: Path, force: bool) -> None:
    """Put the backup PATH in an empty database (or, with --force, in place of its data)."""
    settings = _settings()
    configure_logging(settings, _log_level())

    async def work(database: Database) -> backups.Restored:
        restored = await backups.restore(database=database, source=path, force=force)
        async with database.transaction() as session:
            await audit_service.record(
                session=session, actor="cli", action="database.restore", object_type="database",
                details={
                    "tables": restored.counts.tables, "rows": restored.counts.total,
                    "from_revision": restored.from_revision, "forced": force,
                },
            )  # fmt: skip
        # Restored and recorded; the keys are checked last, so that a wrong key is said
        # after the data is in place, not instead of it.
        await crypto.check_stored(database.engine, metadata.sorted_tables)
        return restored

    try:
        restored = _run(_with_database(settings, work))
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    except crypto.DataKeyError as exc:
        raise click.ClickException(
            f"The backup is restored, but {exc}: it is the key in use when the backup was made."
        ) from None
    counts = restored.counts
    click.echo(f"Restored {counts.total} rows of {counts.tables} tables from {path}.")
    if restored.from_revision != restored.to_revision:
        click.echo(
            f"The backup's schema (revision {restored.from_revision}) was upgraded to "
            f"{restored.to_revision}."
        )
