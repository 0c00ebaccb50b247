"""The `ripartire` command line (SPEC section 7)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
import uvicorn

from dashboard.app import create_app
from shared import demo as demo_data
from shared import migrate
from shared.db import Database
from shared.housekeeping import housekeeping_component
from shared.logs import configure_logging
from shared.runtime import load_components
from shared.settings import Settings, SettingsError, load_settings
from shared.staff import service as staff
from shared.staff.errors import StaffError
from shared.staff.models import Role

log = logging.getLogger("ripartire")

DEMO_DATABASE = Path("data") / "demo.db"
T = TypeVar("T")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    database = Database(settings.database_url)
    try:
        return await work(database)
    finally:
        await database.dispose()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Ripartire: Telegram pre-screening and booking, staff dashboard."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def run(host: str, port: int) -> None:
    """Serve the dashboard and, when a token is set, the Telegram bot."""
    settings = _settings()
    try:
        settings.require_secret_key()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings)
    _run(_serve(settings, host, port))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def demo(host: str, port: int) -> None:
    """Serve a demo on a fresh sample database (data/demo.db), recreated at each start."""
    for suffix in ("", "-wal", "-shm"):
        DEMO_DATABASE.with_name(DEMO_DATABASE.name + suffix).unlink(missing_ok=True)
    settings = _settings(database_url=f"sqlite+aiosqlite:///{DEMO_DATABASE}", demo=True)
    configure_logging(settings)

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
    database = Database(settings.database_url)
    try:
        await migrate.upgrade(database)
        components = [
            housekeeping_component(settings=settings, database=database),
            *load_components(settings=settings, database=database),
        ]
        if settings.telegram_token is None:
            log.info("Telegram bot is off: RIPARTIRE_TELEGRAM_TOKEN is not set")
        elif not any(c.name == "bot" for c in components):
            log.warning("Telegram bot is off: the bot component is not installed")
        app = create_app(settings=settings, database=database, components=components)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, proxy_headers=True)
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
