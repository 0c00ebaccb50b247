"""One Telegram update = one unit of work: the adapter between PTB and `shared` services.

`@turn` wraps a handler: it ignores updates outside private chats (saying so, in a group
only to a command or a mention of the bot, and at most once an hour), handles each
`update_id` once, opens the transaction, loads the citizen and their language,
runs the handler (unless `Deps.gate` answers instead: a new privacy notice to accept),
keeps its replies in the same transaction, commits, and only then sends the replies
(kept so that a crash before they are sent loses none: `bot.inbox` sends them at the
next start). Errors never reach the
citizen as a stack trace: they get a short apology that says what became of their
message. While the database doesn't answer, the update is kept and tried again (in the
chat's order) for a while before the citizen is asked to send it again.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, InputFile, Message, MessageEntity, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import faults, texts
from bot.flood import patiently
from bot.replies import Document, Edit, Reply, Send, Toast, to_row
from shared import metrics
from shared.citizens import service as citizens
from shared.citizens.models import Citizen
from shared.db import Database, utcnow
from shared.i18n import N_, Translator
from shared.inbox import service as inbox
from shared.settings import Settings

log = logging.getLogger(__name__)

DEPS_KEY = "ripartire"


Clock = Callable[[], datetime]


class OncePerChat:
    """When each chat was last told something, to tell it again only after `interval`.

    Remembers at most `size` chats, forgetting the longest untold first: the memory stays
    bounded however many groups add the bot (a forgotten one may be told a bit sooner).
    """

    def __init__(self, interval: timedelta, size: int) -> None:
        self.interval = interval
        self.size = size
        self._told: OrderedDict[int, datetime] = OrderedDict()

    def due(self, chat_id: int, now: datetime) -> bool:
        """Whether the chat may be told now; if so, it counts as told."""
        told = self._told.get(chat_id)
        if told is not None and now - told < self.interval:
            return False
        self._told[chat_id] = now
        self._told.move_to_end(chat_id)
        while len(self._told) > self.size:
            self._told.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._told)


# A group that calls the bot is told it only talks in private, once an hour at most.
GROUP_NOTICE_INTERVAL = timedelta(hours=1)
GROUP_NOTICE_MEMORY = 1000


def _group_notices() -> OncePerChat:
    return OncePerChat(GROUP_NOTICE_INTERVAL, GROUP_NOTICE_MEMORY)


@dataclass(frozen=True)
class Deps:
    """What every handler needs, stored once in `application.bot_data`.

    `clock` gives each update its `Turn.now`: the wall clock, or a fixed one in tests.
    """

    settings: Settings
    database: Database
    clock: Clock = field(default=utcnow)
    group_notices: OncePerChat = field(default_factory=_group_notices)
    # Asked first, in the update's transaction, with what the handler would get: replies
    # to send instead of running the handler, or None to run it (the privacy notice's
    # check, `bot.handlers.privacy.notice_gate`).
    gate: Gate | None = None


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
Gate = Callable[[Turn], Awaitable[list[Reply] | None]]
PTBCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    found: Deps = context.bot_data[DEPS_KEY]
    return found


def turn(handler: Handler) -> PTBCallback:
    """Adapt a `Turn -> replies` handler to a PTB callback (see module docstring)."""

    @functools.wraps(handler)
    @metrics.timed_update
    async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None:
            return
        if chat.type != ChatType.PRIVATE:
            await _elsewhere(update, context)
            return
        # The replies are plain data: the session and what it loaded are gone by the time
        # they are sent, however long Telegram (or the rate limiter) takes.
        replies = await _transaction(handler, update, deps(context))
        if replies is not None:
            await _send_all(update, context, replies)

    return callback


async def _elsewhere(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Outside a private chat nothing is read or stored; a group is told where to write.

    Only when the bot is called there (a command, a mention), and once an hour at most:
    answering every message would flood the group. A button pressed there gets a toast.
    """
    user, chat = update.effective_user, update.effective_chat
    assert user is not None
    assert chat is not None
    t = Translator(user.language_code or "")
    if update.callback_query is not None:
        await _send_all(update, context, [Toast(t(ONLY_PRIVATE), alert=True)])
        return
    message = update.message
    if message is None or not _calls_the_bot(message, context.bot):
        return
    services = deps(context)
    if services.group_notices.due(chat.id, services.clock()):
        await _send_all(update, context, [Send(t(ONLY_PRIVATE))])


def _calls_the_bot(message: Message, bot: Bot) -> bool:
    """A command for this bot ("/start", "/start@ripartire_bot") or a mention of it."""
    name = (bot.username or "").casefold()
    for entity, text in message.parse_entities().items():
        match entity.type:
            case MessageEntity.BOT_COMMAND if entity.offset == 0:
                _, at, addressee = text.partition("@")
                called = not at or addressee.casefold() == name
            case MessageEntity.MENTION:
                called = text[1:].casefold() == name
            case MessageEntity.TEXT_MENTION:
                called = entity.user is not None and entity.user.id == bot.id
            case _:
                called = False
        if called:
            return True
    return False


async def _transaction(handler: Handler, update: Update, services: Deps) -> list[Reply] | None:
    """Run the handler in the update's transaction; its replies, or None if already handled.

    While the database doesn't answer, the update is kept and tried again with backoff
    for up to `STORE_PATIENCE_SECONDS`: this runs inside the chat's turn
    (`bot.processor`), so the chat's later updates wait and are handled in order after
    it. Only then is the citizen told, plainly, to send it again.
    """
    user = update.effective_user
    assert user is not None
    t = Translator(user.language_code or "")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STORE_PATIENCE_SECONDS
    delay = STORE_FIRST_RETRY_SECONDS
    waited = False
    while True:
        reached = False
        try:
            async with services.database.transaction() as session:
                now = services.clock()
                # One statement: the update recorded (handled once) and its sender found.
                delivery = await citizens.deliver(
                    session=session, update_id=update.update_id, telegram_user_id=user.id, now=now
                )
                reached = True
                if delivery is None:
                    log.info("update %s delivered again: ignored", update.update_id)
                    return None
                citizen = delivery.citizen
                if citizen is not None:
                    t = Translator(citizen.language)
                    # Whatever they sent, they have unblocked the bot: messages may reach them.
                    await citizens.mark_reachable(session=session, citizen=citizen, now=now)
                turn_ = Turn(update, session, services.settings, citizen, t, now)
                replies = await services.gate(turn_) if services.gate is not None else None
                if replies is None:
                    replies = await handler(turn_)
                if replies:
                    target = Target.of(update)
                    await inbox.keep_replies(
                        session=session,
                        update_id=update.update_id,
                        chat_id=target.chat_id,
                        message_id=target.message_id,
                        query_id=target.query_id,
                        replies=[to_row(reply) for reply in replies],
                        now=now,
                    )
            if waited:
                log.info("update %s handled once the database answered again", update.update_id)
            return replies
        except Exception as exc:
            # Nothing was asked of the database before its first answer: failing to get
            # that is the database being away, whatever the driver calls it.
            if reached and not faults.database_unavailable(exc):
                log.exception("update %s failed in %s", update.update_id, handler.__name__)
                return [Send(t(SOMETHING_WENT_WRONG))]
            if loop.time() + delay > deadline:
                log.warning(
                    "update %s dropped: the database did not answer for %.0f s (%s); "
                    "the citizen was asked to send it again",
                    update.update_id,
                    STORE_PATIENCE_SECONDS,
                    type(exc).__name__,
                )
                return [Send(f"{t(NOT_SAVED)}\n{texts.contacts(t)}")]
            if not waited:
                log.warning(
                    "update %s kept: the database did not answer (%s); trying again for up "
                    "to %.0f s",
                    update.update_id,
                    type(exc).__name__,
                    STORE_PATIENCE_SECONDS,
                )
                waited = True
        await asyncio.sleep(delay)
        delay = min(delay * 2, STORE_MAX_RETRY_SECONDS)


# How long an update is kept while the database doesn't answer, and the pauses between
# its attempts (doubling). The chat's later updates wait meanwhile; a minute of silence
# is about as long as a citizen keeps looking at the chat.
STORE_PATIENCE_SECONDS = 60.0
STORE_FIRST_RETRY_SECONDS = 0.5
STORE_MAX_RETRY_SECONDS = 8.0

ONLY_PRIVATE = N_(
    "I only talk in private chats, to protect your privacy. "
    "Write to me directly: tap my name and then “Send message”."
)
# Nothing the handler did was kept (its transaction was rolled back): never say otherwise.
SOMETHING_WENT_WRONG = N_(
    "Sorry, something went wrong on our side and what you just sent was not saved. "
    "Please send it again (or press the button again) in a few minutes, or write /aiuto "
    "to reach a person."
)
NOT_SAVED = N_(
    "Sorry, we can't save anything right now, so what you just sent was not saved. "
    "Please send it again (or press the button again) in a few minutes. "
    "To talk to a person:"
)


@dataclass(frozen=True)
class Target:
    """Where an update's replies go: its chat, and the pressed button's message and query."""

    chat_id: int
    message_id: int | None = None
    query_id: str | None = None

    @classmethod
    def of(cls, update: Update) -> Target:
        chat = update.effective_chat
        assert chat is not None
        query = update.callback_query
        if query is None:
            return cls(chat.id)
        message = query.message
        return cls(chat.id, message.message_id if message is not None else None, query.id)


async def _send_all(
    update: Update, context: ContextTypes.DEFAULT_TYPE, replies: list[Reply]
) -> None:
    await send_all(context.bot, Target.of(update), replies, update_id=update.update_id)


async def send_all(
    bot: Bot, target: Target, replies: list[Reply], *, update_id: int, late: bool = False
) -> None:
    """Send the replies in order. When Telegram refuses or fails one, the rest are not sent
    (they would make no sense without it): one warning, since nothing is wrong with us.

    `late` (sent at a start, kept from before it): the button's answer and toasts are
    left out, since Telegram lets a callback query be answered for a few seconds only.
    """
    try:
        await _send_replies(bot, target, replies, late=late)
    except TelegramError as exc:
        log.warning("update %s: reply not sent: %s", update_id, faults.describe(exc))


async def _send_replies(bot: Bot, target: Target, replies: list[Reply], *, late: bool) -> None:
    chat_id = target.chat_id
    answered = late
    for reply in replies:
        if isinstance(reply, Send):
            await patiently(
                functools.partial(
                    bot.send_message,
                    chat_id,
                    reply.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=reply.keyboard,
                )
            )
        elif isinstance(reply, Edit) and target.message_id is not None:
            try:
                await patiently(
                    functools.partial(
                        bot.edit_message_text,
                        reply.text,
                        chat_id=chat_id,
                        message_id=target.message_id,
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
                    chat_id,
                    document,
                    caption=reply.caption,
                    parse_mode=ParseMode.HTML,
                )
            )
        elif isinstance(reply, Toast) and target.query_id is not None and not late:
            await bot.answer_callback_query(target.query_id, reply.text, show_alert=reply.alert)
            answered = True
    if target.query_id is not None and not answered:
        await bot.answer_callback_query(target.query_id)
