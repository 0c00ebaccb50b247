"""One Telegram update = one unit of work: the adapter between PTB and `shared` services.

`@turn` wraps a handler: it ignores updates outside private chats (saying so), handles
each `update_id` once, opens the transaction, loads the citizen and their language,
runs the handler, commits, and only then sends the replies. Errors never reach the
citizen as a stack trace: they get a short apology and the update can be retried.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InputFile, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.flood import patiently
from bot.replies import Document, Edit, Reply, Send, Toast
from shared.citizens import service as citizens
from shared.citizens.models import Citizen
from shared.db import Database, utcnow
from shared.i18n import N_, Translator
from shared.settings import Settings

log = logging.getLogger(__name__)

DEPS_KEY = "ripartire"


@dataclass(frozen=True)
class Deps:
    """What every handler needs, stored once in `application.bot_data`."""

    settings: Settings
    database: Database


@dataclass
class Turn:
    """The handler's view of one update."""

    update: Update
    session: AsyncSession
    settings: Settings
    citizen: Citizen | None
    t: Translator
    now: datetime

    @property
    def user_id(self) -> int:
        assert self.update.effective_user is not None
        return self.update.effective_user.id

    @property
    def chat_id(self) -> int:
        assert self.update.effective_chat is not None
        return self.update.effective_chat.id

    @property
    def text(self) -> str | None:
        message = self.update.message
        return message.text if message is not None else None

    @property
    def callback_data(self) -> str | None:
        query = self.update.callback_query
        return query.data if query is not None else None


Handler = Callable[[Turn], Awaitable[list[Reply]]]
PTBCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    found: Deps = context.bot_data[DEPS_KEY]
    return found


def turn(handler: Handler) -> PTBCallback:
    """Adapt a `Turn -> replies` handler to a PTB callback (see module docstring)."""

    @functools.wraps(handler)
    async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None:
            return
        if chat.type != ChatType.PRIVATE:
            t = Translator(user.language_code or "")
            await _send_all(update, context, [Send(t(ONLY_PRIVATE))])
            return
        # The replies are plain data: the session and what it loaded are gone by the time
        # they are sent, however long Telegram (or the rate limiter) takes.
        replies = await _transaction(handler, update, deps(context))
        if replies is not None:
            await _send_all(update, context, replies)

    return callback


async def _transaction(handler: Handler, update: Update, services: Deps) -> list[Reply] | None:
    """Run the handler in the update's transaction; its replies, or None if already handled."""
    user = update.effective_user
    assert user is not None
    t = Translator(user.language_code or "")
    try:
        async with services.database.transaction() as session:
            now = utcnow()
            if not await citizens.first_delivery(
                session=session, update_id=update.update_id, now=now
            ):
                log.info("update %s delivered again: ignored", update.update_id)
                return None
            citizen = await citizens.find_by_telegram(session=session, telegram_user_id=user.id)
            if citizen is not None:
                t = Translator(citizen.language)
                # Whatever they sent, they have unblocked the bot: messages may reach them.
                await citizens.mark_reachable(session=session, citizen=citizen, now=now)
            return await handler(Turn(update, session, services.settings, citizen, t, now))
    except Exception:
        log.exception("update %s failed in %s", update.update_id, handler.__name__)
        return [Send(t(SOMETHING_WENT_WRONG))]


ONLY_PRIVATE = N_(
    "I only talk in private chats, to protect your privacy. "
    "Write to me directly: tap my name and then “Send message”."
)
SOMETHING_WENT_WRONG = N_(
    "Sorry, something went wrong on our side. Nothing you wrote is lost: "
    "try again in a minute, or write /aiuto to reach a person."
)


async def _send_all(
    update: Update, context: ContextTypes.DEFAULT_TYPE, replies: list[Reply]
) -> None:
    bot = context.bot
    chat = update.effective_chat
    assert chat is not None
    query = update.callback_query
    answered = False
    for reply in replies:
        if isinstance(reply, Send):
            await patiently(
                functools.partial(
                    bot.send_message,
                    chat.id,
                    reply.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=reply.keyboard,
                )
            )
        elif isinstance(reply, Edit) and query is not None and query.message is not None:
            try:
                await patiently(
                    functools.partial(
                        bot.edit_message_text,
                        reply.text,
                        chat_id=chat.id,
                        message_id=query.message.message_id,
                        parse_mode=ParseMode.HTML,
                        reply_markup=reply.keyboard,
                    )
                )
            except BadRequest as exc:
                # Pressing the same button twice "edits" to identical text: harmless.
                if "not modified" not in str(exc).lower():
                    raise
        elif isinstance(reply, Document):
            document = InputFile(io.BytesIO(reply.data), filename=reply.filename)
            await patiently(
                functools.partial(
                    bot.send_document,
                    chat.id,
                    document,
                    caption=reply.caption,
                    parse_mode=ParseMode.HTML,
                )
            )
        elif isinstance(reply, Toast) and query is not None:
            await query.answer(reply.text, show_alert=reply.alert)
            answered = True
    if query is not None and not answered:
        await query.answer()
