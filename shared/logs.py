"""Process-wide logging set-up that keeps the bot token out of every log line."""

from __future__ import annotations

import logging

from shared.settings import Settings

# httpx logs each request URL at INFO, and Telegram's URLs carry the bot token.
_CHATTY_LOGGERS = ("httpx", "httpcore", "telegram.ext.Updater", "apscheduler")


class RedactingFilter(logging.Filter):
    """Replace secrets with `***` in a record's final message."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Exceptions from HTTP clients quote the request URL, token included.
            record.exc_text = self._redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", force=True
    )
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    secrets = [
        s.get_secret_value()
        for s in (settings.telegram_token, settings.webhook_secret, settings.secret_key)
        if s is not None
    ]
    redactor = RedactingFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
