"""The pre-screening questionnaire on Telegram (to be written)."""

from __future__ import annotations

from telegram.ext import BaseHandler

from bot.replies import Reply, Send
from bot.turn import Turn


async def begin(turn_: Turn) -> list[Reply]:
    return [Send("begin")]


async def resume(turn_: Turn) -> list[Reply]:
    return [Send("resume")]


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return []
