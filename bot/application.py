"""Build the python-telegram-bot Application: handlers, per-chat ordering, rate limits."""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Job
from telegram.request import BaseRequest

from bot.flood import GroupRateLimiter
from bot.handlers import booking, conversation, plan, privacy, start
from bot.processor import ChatOrderedProcessor
from bot.turn import DEPS_KEY, Clock, Deps
from shared.db import Database, utcnow
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
    ("miei_dati", N_("A copy of my data")),
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
    *,
    settings: Settings,
    database: Database,
    request: BaseRequest | None = None,
    clock: Clock = utcnow,
) -> Application:  # type: ignore[type-arg]
    """The bot; with `request` (tests, benchmarks) it talks to that transport.

    Every update is handled at `clock()` (the `now` of its turn): tests pass a fixed clock.
    """
    assert settings.telegram_token is not None
    api = str(settings.telegram_api_url).rstrip("/")
    builder: ApplicationBuilder = (  # type: ignore[type-arg]
        Application.builder()
        .application_class(BotApplication)
        .token(settings.telegram_token.get_secret_value())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .concurrent_updates(ChatOrderedProcessor())
        # Only PTB's per-group limit; RetryAfter goes to the caller (see GroupRateLimiter).
        .rate_limiter(GroupRateLimiter())
        # No PTB Updater: it confirms updates to Telegram while they are only in memory;
        # `bot.inbox` polls instead, storing each batch before asking for the next.
        .updater(None)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    application = builder.build()
    application.bot_data[DEPS_KEY] = Deps(
        settings=settings, database=database, clock=clock, gate=privacy.notice_gate
    )
    # One group: the first matching handler wins, so the fallbacks go last.
    for module in (start, privacy, conversation, booking, plan):
        application.add_handlers(module.handlers())
    application.add_handlers(start.fallback_handlers())
    application.add_error_handler(on_unhandled_error)
    return application


async def on_unhandled_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An error no handler dealt with (`@turn` handles the expected ones): one record that
    names the update, never its content, with the traceback of what is likely a bug."""
    update_id = update.update_id if isinstance(update, Update) else None
    error = context.error
    log.error(
        "update %s: unhandled %s",
        update_id,
        type(error).__name__,
        exc_info=(type(error), error, error.__traceback__) if error is not None else None,
    )


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
