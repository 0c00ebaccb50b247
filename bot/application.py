"""Build the python-telegram-bot Application: handlers, per-chat ordering, rate limits."""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Job
from telegram.request import BaseRequest

from bot.handlers import booking, conversation, start
from bot.processor import ChatOrderedProcessor
from bot.turn import DEPS_KEY, Deps
from shared.db import Database
from shared.i18n import DEFAULT_LANGUAGE, N_, Translator, available_languages
from shared.settings import Settings

log = logging.getLogger(__name__)

COMMANDS = (
    ("start", N_("Start or resume the questionnaire")),
    ("prenotazione", N_("My appointment")),
    ("sposta", N_("Move my appointment")),
    ("annulla", N_("Cancel my appointment")),
    ("aiuto", N_("Talk to a person, contacts")),
    ("privacy", N_("Privacy notice")),
    ("lingua", N_("Change language")),
    ("cancella", N_("Erase my data")),
)


class BotApplication(Application):  # type: ignore[type-arg]
    """PTB's `Application`, minus its bookkeeping for a persistence when there is none.

    After every update `Application.process_update` notes the chat and user ids whose
    `chat_data`/`user_data` a persistence should save next; only a persistence run empties
    those sets. The bot keeps its state in the database and has no persistence, so they
    would grow by one entry per citizen for the life of the process.
    """

    def _mark_for_persistence_update(
        self, *, update: object | None = None, job: Job[Any] | None = None
    ) -> None:
        if self.persistence is not None:
            super()._mark_for_persistence_update(update=update, job=job)


def build_application(
    *, settings: Settings, database: Database, request: BaseRequest | None = None
) -> Application:  # type: ignore[type-arg]
    """The bot; with `request` (tests, benchmarks) it talks to that transport and never polls."""
    assert settings.telegram_token is not None
    api = str(settings.telegram_api_url).rstrip("/")
    builder: ApplicationBuilder = (  # type: ignore[type-arg]
        Application.builder()
        .application_class(BotApplication)
        .token(settings.telegram_token.get_secret_value())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .concurrent_updates(ChatOrderedProcessor())
        # Telegram asks for ~30 messages/s for *bulk notifications*: that budget is the
        # outbox dispatcher's (bot/delivery.py), not a queue every citizen's reply waits in.
        # Here only PTB's per-group limit (the "private chats only" answer in groups);
        # RetryAfter is not retried here: the caller decides (`bot/turn.py`, delivery).
        .rate_limiter(AIORateLimiter(overall_max_rate=0, max_retries=0))
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request).updater(None)
    application = builder.build()
    application.bot_data[DEPS_KEY] = Deps(settings=settings, database=database)
    # One group: the first matching handler wins, so the fallbacks go last.
    for module in (start, conversation, booking):
        application.add_handlers(module.handlers())
    application.add_handlers(start.fallback_handlers())
    return application


async def register_commands(application: Application) -> None:  # type: ignore[type-arg]
    """Publish the command menu in every language; a failure is logged, never fatal."""
    for language in available_languages():
        t = Translator(language)
        commands = [BotCommand(name, t(description)) for name, description in COMMANDS]
        try:
            await application.bot.set_my_commands(
                commands, language_code=None if language == DEFAULT_LANGUAGE else language
            )
        except TelegramError as exc:
            log.warning("could not register the %s command menu: %s", language, exc)
