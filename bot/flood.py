"""Telegram's flood control (RetryAfter): how long it asks us to wait, and waiting it out."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta

from telegram.error import RetryAfter
from telegram.warnings import PTBDeprecationWarning

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
        await asyncio.sleep(wait)
        await call()
