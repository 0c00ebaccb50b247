"""Every update kept in the database before Telegram is told it arrived, handled from there.

Polling asks for the next batch (whose offset confirms the previous one) only once the
previous batch is stored; the webhook answers 200 only once its update is stored. A stored
update goes to PTB's queue, where `ChatOrderedProcessor` takes a chat's updates in the
order received; `@turn` records it as handled in the transaction of its state change
(`processed_update`) and keeps its replies there too (`bot.turn`), sent right after the
commit; once handled to the end (replies sent) the update and its replies are forgotten,
in batches. At start, the replies still kept (the process stopped or died before they
were sent, or before it forgot them: then they are sent twice) are sent first, then the
updates still kept (not handled) are queued.

While the database doesn't answer, an update can't be stored: it is queued in memory
and confirmed anyway, as before the inbox, and `@turn` keeps it for a while
(`bot.turn.STORE_PATIENCE_SECONDS`) before asking the citizen to send it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from bot import faults
from bot.processor import ChatOrderedProcessor
from bot.replies import from_row
from bot.turn import Clock, Target, send_all
from shared.db import Database, utcnow
from shared.inbox import service as inbox
from shared.inbox.service import Received

log = logging.getLogger(__name__)

# Telegram holds a long poll open this long when there is nothing new.
POLL_TIMEOUT_SECONDS = 10
POLL_MAX_RETRY_SECONDS = 30.0
# Handled updates are forgotten together, at most this often: a crash in between sends
# their replies again at the next start.
FORGET_EVERY_SECONDS = 0.2


class Inbox:
    """The bot's durable inbox (see the module docstring)."""

    def __init__(
        self,
        application: Application,  # type: ignore[type-arg]
        *,
        database: Database,
        clock: Clock = utcnow,
    ) -> None:
        self.application = application
        self.database = database
        self.clock = clock
        # Stored and queued, not yet handled to the end: never queued twice.
        self._queued: set[int] = set()
        # Handled to the end, still stored.
        self._handled: list[int] = []
        self._forget_soon = asyncio.Event()
        processor = application.update_processor
        assert isinstance(processor, ChatOrderedProcessor)
        processor.on_done = self._done

    async def receive(self, updates: Sequence[Update]) -> None:
        """Store the updates, then queue those not already stored: once this returns,
        they may be confirmed to Telegram."""
        received = [
            Received(
                update_id=u.update_id,
                chat_id=u.effective_chat.id if u.effective_chat is not None else None,
                payload=u.to_dict(),
            )
            for u in updates
        ]
        try:
            async with self.database.transaction() as session:
                new = await inbox.keep(session=session, updates=received, now=self.clock())
        except Exception as exc:
            if not faults.database_unavailable(exc):
                log.exception("%d update(s) could not be stored; handled from memory", len(updates))
            else:
                log.warning(
                    "%d update(s) not stored: the database did not answer (%s); "
                    "handled from memory",
                    len(updates),
                    type(exc).__name__,
                )
            for update in updates:
                await self.application.update_queue.put(update)
            return
        for update in updates:
            if update.update_id in new and update.update_id not in self._queued:
                self._queued.add(update.update_id)
                await self.application.update_queue.put(update)

    async def resume(self) -> int:
        """Send the replies kept from before, then queue the updates still stored (in the
        order received); how many updates."""
        await self._send_kept_replies()
        async with self.database.transaction() as session:
            rows = [(row.update_id, row.payload) for row in await inbox.pending(session=session)]
        resumed = 0
        for update_id, payload in rows:
            if update_id in self._queued:
                continue
            update = Update.de_json(payload, self.application.bot)
            self._queued.add(update_id)
            await self.application.update_queue.put(update)
            resumed += 1
        if resumed:
            log.info("%d update(s) kept from before the restart queued", resumed)
        return resumed

    async def _send_kept_replies(self) -> None:
        async with self.database.transaction(read_only=True) as session:
            kept = [
                (row.update_id, Target(row.chat_id, row.message_id, row.query_id), row.replies)
                for row in await inbox.unsent_replies(session=session)
                if row.update_id not in self._queued
            ]
        if not kept:
            return
        by_chat: dict[int, list[tuple[int, Target, list[dict[str, Any]]]]] = {}
        for reply in kept:
            by_chat.setdefault(reply[1].chat_id, []).append(reply)

        async def send(chat: list[tuple[int, Target, list[dict[str, Any]]]]) -> None:
            for update_id, target, rows in chat:
                replies = [from_row(row) for row in rows]
                await send_all(
                    self.application.bot, target, replies, update_id=update_id, late=True
                )

        await asyncio.gather(*(send(chat) for chat in by_chat.values()))
        async with self.database.transaction() as session:
            await inbox.forget(session=session, update_ids=[update_id for update_id, _, _ in kept])
        log.info("replies of %d update(s) kept from before the restart sent", len(kept))

    def _done(self, update: object) -> None:
        # Also an update handled from memory (the database was down when it came): it
        # has replies kept if its turn committed.
        if isinstance(update, Update):
            self._queued.discard(update.update_id)
            self._handled.append(update.update_id)
            self._forget_soon.set()

    async def forget_handled(self) -> None:
        """Delete the handled updates from the database; kept for the next try on failure."""
        handled, self._handled = self._handled, []
        if not handled:
            return
        try:
            async with self.database.transaction() as session:
                await inbox.forget(session=session, update_ids=handled)
        except Exception as exc:
            # Harmless meanwhile: a handled update found again is skipped (processed_update).
            log.warning(
                "%d handled update(s) not forgotten yet (%s)", len(handled), type(exc).__name__
            )
            self._handled[:0] = handled

    async def run(self, stop: asyncio.Event) -> None:
        """Forget handled updates, in batches, until `stop` (then once more)."""
        while not stop.is_set():
            await _first(stop, self._forget_soon)
            self._forget_soon.clear()
            await self.forget_handled()
            await _wait(stop, FORGET_EVERY_SECONDS)
        await self.forget_handled()


async def poll(
    application: Application,  # type: ignore[type-arg]
    received: Inbox,
    *,
    allowed_updates: list[str],
    stop: asyncio.Event,
) -> None:
    """Long polling, one batch at a time: the next offset is asked for (confirming the
    batch to Telegram) only once the batch is stored. Stops at once on `stop`: a batch
    fetched but not stored is not confirmed, and Telegram sends it again."""
    offset: int | None = None
    delay = 1.0
    while not stop.is_set():
        fetch = asyncio.ensure_future(
            application.bot.get_updates(
                offset=offset, timeout=POLL_TIMEOUT_SECONDS, allowed_updates=allowed_updates
            )
        )
        await _first(stop, fetch)
        if not fetch.done():
            fetch.cancel()
            with suppress(asyncio.CancelledError, TelegramError):
                await fetch
            return
        try:
            updates = fetch.result()
        except TelegramError as exc:
            # PTB's Updater logged each failure (a 502, a timeout) as an ERROR with a
            # traceback: nothing is wrong with us, this is one warning.
            log.warning(
                "polling Telegram for updates failed: %s; trying again", faults.describe(exc)
            )
            await _wait(stop, delay)
            delay = min(delay * 2, POLL_MAX_RETRY_SECONDS)
            continue
        delay = 1.0
        if updates:
            await received.receive(updates)
            offset = updates[-1].update_id + 1


async def _first(stop: asyncio.Event, other: asyncio.Future[Any] | asyncio.Event) -> None:
    """Wait until `stop` is set or `other` is done (set)."""
    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    if isinstance(other, asyncio.Event):
        waiters.append(asyncio.ensure_future(other.wait()))
        watched = waiters
    else:
        watched = [*waiters, other]
    try:
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for waiter in waiters:
            with suppress(asyncio.CancelledError):
                await waiter


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
