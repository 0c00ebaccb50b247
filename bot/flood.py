"""Telegram's flood control (RetryAfter): how long it asks us to wait, and waiting it out."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger(__name__)

# A reply refused with RetryAfter is sent again after the wait Telegram asks for, if that
# wait is no longer than this; a citizen who waited longer has likely moved on (and their
# next message gets the current step again).
MAX_REPLY_WAIT_SECONDS = 30.0


def retry_after_seconds(exc: RetryAfter) -> float:
    # PTB 22 warns that `retry_after` will become a timedelta; accept either.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def patiently(call: Callable[[], Awaitable[object]]) -> None:
    """Make a Bot API call; on RetryAfter, wait as asked (up to the maximum) and retry once."""
    try:
        await call()
    except RetryAfter as exc:
        wait = retry_after_seconds(exc)
        if wait > MAX_REPLY_WAIT_SECONDS:
            raise
        log.warning("Telegram's flood control: a reply waits %.0f s, as asked", wait)
        await asyncio.sleep(wait)
        await call()


class _Refused(Exception):
    """Carries a RetryAfter past `AIORateLimiter`, which would log it as an error."""

    def __init__(self, refusal: RetryAfter) -> None:
        super().__init__()
        self.refusal = refusal


class GroupRateLimiter(AIORateLimiter):
    """PTB's per-group limit (the "private chats only" answer in groups), nothing else.

    No overall limit: Telegram's ~30 messages/s is for bulk notifications, the outbox
    dispatcher's budget (`bot/delivery.py`), not a queue every citizen's reply waits in.
    A RetryAfter is not retried here but goes to the caller, who decides (`patiently` for
    replies, the outbox for its messages) and logs it once as the handled fault it is;
    `AIORateLimiter` itself logs every RetryAfter it gives up on as an ERROR with a
    traceback.
    """

    def __init__(self) -> None:
        super().__init__(overall_max_rate=0, max_retries=0)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        async def refusing(*call_args: Any, **call_kwargs: Any) -> Any:
            try:
                return await callback(*call_args, **call_kwargs)
            except RetryAfter as exc:
                raise _Refused(exc) from None

        try:
            return await super().process_request(
                refusing, args, kwargs, endpoint, data, rate_limit_args
            )
        except _Refused as refused:
            raise refused.refusal from None
