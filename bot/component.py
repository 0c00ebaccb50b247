"""The bot as a component of the `ripartire run` process (found via an entry point).

Long polling by default; webhook when RIPARTIRE_WEBHOOK_URL is set. Telegram being
unreachable at start does not stop the dashboard: the bot keeps retrying.
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

from bot import faults
from bot.application import build_application, register_commands
from bot.delivery import OutboxDispatcher
from bot.webhook import webhook_route
from shared.db import Database
from shared.runtime import Component
from shared.settings import Settings

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
DEFAULT_WEBHOOK_PATH = "/telegram/webhook"
MAX_CONNECT_DELAY = 60.0


def webhook_path(settings: Settings) -> str:
    assert settings.webhook_url is not None
    return urlparse(str(settings.webhook_url)).path.rstrip("/") or DEFAULT_WEBHOOK_PATH


def _polling_failed(error: TelegramError) -> None:
    """PTB polls again by itself; its default logs each failure (a 502 from Telegram, a
    timeout) as an ERROR with a traceback: this is one warning."""
    log.warning("polling Telegram for updates failed: %s; trying again", faults.describe(error))


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
        if settings.webhook_url is not None:
            assert settings.webhook_secret is not None
            await application.bot.set_webhook(
                url=str(settings.webhook_url),
                secret_token=settings.webhook_secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("Telegram bot on: webhook at %s", webhook_path(settings))
        else:
            assert application.updater is not None
            await application.bot.delete_webhook()
            await application.updater.start_polling(
                allowed_updates=ALLOWED_UPDATES, error_callback=_polling_failed
            )
            log.info("Telegram bot on: long polling")
        dispatcher = OutboxDispatcher(
            bot=application.bot,
            database=database,
            settings=settings,
            worker=f"{socket.gethostname()}:{os.getpid()}",
        )
        await dispatcher.run(stop)
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()


def create_component(*, settings: Settings, database: Database) -> Component | None:
    """The Telegram bot, or None (the CLI says why) when no token is configured."""
    if settings.telegram_token is None:
        return None
    application = build_application(settings=settings, database=database)
    routes: list[BaseRoute] = []
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        routes.append(
            webhook_route(
                application,
                path=webhook_path(settings),
                secret=settings.webhook_secret.get_secret_value(),
            )
        )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_bot(application, settings=settings, database=database, stop=stop), name="bot"
        )
        try:
            yield
        finally:
            stop.set()
            await task

    return Component(name="bot", lifespan=lifespan, routes=routes)
