"""In a group the bot speaks only when called (a command, a mention), and once an hour at most."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from telegram import Update
from telegram.ext import Application

from bot.turn import ONLY_PRIVATE, OncePerChat
from shared.citizens.models import Citizen
from shared.db import Database
from shared.i18n import Translator
from tests.bot.clock import MORNING, FixedClock
from tests.bot.fake_telegram import BOT_USER, FakeTelegram

GROUP = -1001234
OTHER_GROUP = -1005678
MEMBER = {"id": 801, "is_bot": False, "first_name": "Luca", "language_code": "it"}
_ids = itertools.count(9000)


def group_update(
    app: Application,  # type: ignore[type-arg]
    text: str,
    chat_id: int = GROUP,
    **message: Any,
) -> Update:
    entities = []
    if text.startswith("/"):
        entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
    mention = "@" + str(BOT_USER["username"])
    if mention.casefold() in text.casefold():
        at = text.casefold().index(mention.casefold())
        entities.append({"type": "mention", "offset": at, "length": len(mention)})
    data = {
        "update_id": next(_ids),
        "message": {
            "message_id": next(_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "supergroup", "title": "Vicini di casa"},
            "from": MEMBER,
            "text": text,
            "entities": entities,
            **message,
        },
    }
    update = Update.de_json(data, app.bot)
    assert update is not None
    return update


async def told(
    app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    text: str,
    chat_id: int = GROUP,
    **message: Any,
) -> list[str]:
    """What the bot sent to the group after a member wrote `text` there."""
    start = len(fake.calls)
    await app.process_update(group_update(app, text, chat_id, **message))
    return [
        c.text
        for c in fake.calls[start:]
        if c.method == "sendMessage" and c.params.get("chat_id") == chat_id
    ]


async def test_a_group_hears_back_only_when_it_calls_the_bot_once_an_hour(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    clock: FixedClock,
) -> None:
    notice = Translator("it")(ONLY_PRIVATE)
    # Plain talk in the group, or a command for another bot: silence.
    assert await told(bot_app, fake, "ciao a tutti") == []
    assert await told(bot_app, fake, "sì, sono residente") == []
    assert await told(bot_app, fake, "/start@un_altro_bot") == []
    # A command for the bot: told once where to write…
    assert await told(bot_app, fake, "/start") == [notice]
    # …and not again within the hour, whether by command or mention.
    clock.advance(minutes=59)
    assert await told(bot_app, fake, "/start@ripartire_test_bot") == []
    assert await told(bot_app, fake, "@ripartire_test_bot ci sei?") == []
    # Another group is told on its own account.
    assert await told(bot_app, fake, "/aiuto", OTHER_GROUP) == [notice]
    clock.advance(minutes=1)
    assert await told(bot_app, fake, "@Ripartire_Test_Bot ci sei?") == [notice]
    # Nothing about anyone in a group is stored.
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(Citizen)) == 0


async def test_a_text_mention_of_the_bot_calls_it(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
) -> None:
    mention = {"type": "text_mention", "offset": 0, "length": 9, "user": BOT_USER}
    assert len(await told(bot_app, fake, "Ripartire, aiuto", entities=[mention])) == 1


def test_the_memory_of_groups_told_stays_small() -> None:
    hour = timedelta(hours=1)
    told = OncePerChat(hour, size=3)
    for chat in range(10):
        assert told.due(chat, MORNING)
    assert len(told) == 3
    # The three most recent are remembered; the others were forgotten and may be told.
    assert not told.due(9, MORNING + timedelta(minutes=5))
    assert told.due(0, MORNING + timedelta(minutes=5))
    assert told.due(9, MORNING + hour)
    assert len(told) == 3
