"""The bot as a component of the `ripartire run` process (found via an entry point).

Long polling by default; webhook when RIPARTIRE_WEBHOOK_URL is set; either way each
update is stored before Telegram is told it arrived (`bot.inbox`). Telegram being
unreachable at start does not stop the dashboard: the bot keeps retrying.

On stop (SIGTERM: uvicorn ends the components' lifespans) the bot takes no more updates,
finishes those it holds for up to `STOP_GRACE_SECONDS` (any left are still stored and
handled at the next start), and gives back the outbox messages it claimed but did not
send, so that the next start sends them at once rather than when their lease lapses.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlparse

from starlette.routing import BaseRoute
from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application

from bot.application import build_application, register_commands
from bot.delivery import OutboxDispatcher
from bot.inbox import Inbox, poll
from bot.webhook import webhook_route
from shared.db import Database
from shared.runtime import Component
from shared.settings import Settings

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
DEFAULT_WEBHOOK_PATH = "/telegram/webhook"
MAX_CONNECT_DELAY = 60.0
# How long a stop waits for the updates in hand (each a turn: a transaction and its replies).
STOP_GRACE_SECONDS = 10.0


def webhook_path(settings: Settings) -> str:
    assert settings.webhook_url is not None
    return urlparse(str(settings.webhook_url)).path.rstrip("/") or DEFAULT_WEBHOOK_PATH


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _connect(application: Application, stop: asyncio.Event) -> bool:  # type: ignore[type-arg]
    """Initialize (getMe) until it works or we are asked to stop; False if stopped."""
    delay = 1.0
    while not stop.is_set():
        try:
            await application.initialize()
        except InvalidToken:
            log.error("Telegram bot is off: Telegram refused RIPARTIRE_TELEGRAM_TOKEN")
            return False
        except TelegramError as exc:
            log.warning("Telegram is not reachable (%s); retrying in %.0f s", exc, delay)
            await _wait(stop, delay)
            delay = min(delay * 2, MAX_CONNECT_DELAY)
        else:
            return True
    return False


async def run_bot(
    application: Application,  # type: ignore[type-arg]
    *,
    inbox: Inbox,
    settings: Settings,
    database: Database,
    stop: asyncio.Event,
) -> None:
    """Receive updates and deliver the outbox until `stop` is set."""
    if not await _connect(application, stop):
        return
    try:
        await register_commands(application)
        await application.start()
        await inbox.resume()
        dispatcher = OutboxDispatcher(
            bot=application.bot,
            database=database,
            settings=settings,
            worker=f"{socket.gethostname()}:{os.getpid()}",
        )
        jobs = [dispatcher.run(stop), inbox.run(stop)]
        if settings.webhook_url is not None:
            assert settings.webhook_secret is not None
            await application.bot.set_webhook(
                url=str(settings.webhook_url),
                secret_token=settings.webhook_secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("Telegram bot on: webhook at %s", webhook_path(settings))
        else:
            await application.bot.delete_webhook()
            jobs.append(poll(application, inbox, allowed_updates=ALLOWED_UPDATES, stop=stop))
            log.info("Telegram bot on: long polling")
        await asyncio.gather(*jobs)
    finally:
        if application.running:
            try:
                await asyncio.wait_for(application.stop(), STOP_GRACE_SECONDS)
            except TimeoutError:
                log.warning(
                    "stopped with updates still in hand after %.0f s: they are kept and "
                    "handled at the next start",
                    STOP_GRACE_SECONDS,
                )
        await inbox.forget_handled()
        await application.shutdown()


def create_component(*, settings: Settings, database: Database) -> Component | None:
    """The Telegram bot, or None (the CLI says why) when no token is configured."""
    if settings.telegram_token is None:
        return None
    application = build_application(settings=settings, database=database)
    inbox = Inbox(application, database=database)
    routes: list[BaseRoute] = []
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        routes.append(
            webhook_route(
                application,
                inbox,
                path=webhook_path(settings),
                secret=settings.webhook_secret.get_secret_value(),
            )
        )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_bot(application, inbox=inbox, settings=settings, database=database, stop=stop),
            name="bot",
        )
        try:
            yield
        finally:
            stop.set()
            await task

    return Component(name="bot", lifespan=lifespan, routes=routes)
