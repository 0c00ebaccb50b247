"""The Telegram bot: a thin python-telegram-bot adapter over `shared` services."""

import os

# Opt in to python-telegram-bot's coming behaviour (durations as timedelta, e.g.
# RetryAfter.retry_after) instead of a deprecation warning on every flood-control answer.
os.environ.setdefault("PTB_TIMEDELTA", "true")
