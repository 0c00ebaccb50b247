"""Updates of one chat in arrival order, different chats concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


def chat_key(update: object) -> int | None:
    if isinstance(update, Update) and update.effective_chat is not None:
        return update.effective_chat.id
    return None


class ChatOrderedProcessor(BaseUpdateProcessor):
    """A lock per chat: asyncio locks are fair, so a chat's updates run one at a time, in order.

    Locks exist only while a chat has updates in flight, so memory stays proportional to
    the chats being served right now. `on_done` is told of each update handled to the end
    (not of one cancelled midway): the durable inbox forgets it then (`bot.inbox`).
    """

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self.on_done: Callable[[object], None] | None = None
        self._locks: dict[int, asyncio.Lock] = {}
        self._in_flight: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = chat_key(update)
        if key is None:
            await coroutine
            self._done(update)
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
            self._done(update)
        finally:
            self._in_flight[key] -= 1
            if self._in_flight[key] == 0:
                del self._in_flight[key]
                del self._locks[key]

    def _done(self, update: object) -> None:
        if self.on_done is not None:
            self.on_done(update)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""
