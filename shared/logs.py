"""Process-wide logging set-up that keeps secrets and personal data out of the log.

The policy, at every level, DEBUG included: no names, phones, fiscal codes, e-mails,
answers, tokens, passwords, session ids or CSRF tokens. Our own code logs ids and
counts only; three filters on the log's handlers keep the libraries to it too:

- `RedactingFilter` replaces the bot token and the other secrets with `***`;
- `AccessLogFilter` keeps the path of each request but drops its query string (staff
  search for citizens by name, phone and fiscal code);
- `PayloadFilter` drops the libraries' records below WARNING that print what they carry:
  SQLAlchemy's statements, parameters and rows, python-telegram-bot's API calls and
  updates, the HTTP clients' requests. The database engines also hide bound parameters
  in their errors (`shared.db.Database`).

`RIPARTIRE_LOG_FORMAT=json` writes each record as one JSON object on a line (time, level,
logger, message, exception) for a log collector, after the same filters; a record's other
attributes (the `extra=` of a call) are left out, since the filters never see them.
"""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from shared.settings import Settings

# httpx logs each request URL at INFO, and Telegram's URLs carry the bot token.
_CHATTY_LOGGERS = ("httpx", "httpcore", "telegram.ext.Updater", "apscheduler")
# Loggers whose records below WARNING quote data: SQL rows and parameters, the Bot API's
# requests and answers (message texts, names), HTTP bodies, SQLite calls.
PAYLOAD_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg", "telegram", "httpx", "httpcore")
ACCESS_LOGGER = "uvicorn.access"


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


class AccessLogFilter(logging.Filter):
    """Uvicorn's access line with the path only: `GET /cases?… HTTP/1.1" 200`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != ACCESS_LOGGER or not isinstance(record.args, tuple):
            return True
        args = list(record.args)
        # uvicorn: (client address, method, path with query, HTTP version, status)
        if len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            args[2] = args[2].split("?", 1)[0] + "?…"
            record.args = tuple(args)
        return True


class PayloadFilter(logging.Filter):
    """Drop the libraries' records below WARNING that print the data they carry."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        name = record.name
        return not any(name == p or name.startswith(p + ".") for p in PAYLOAD_LOGGERS)


class JsonLogFormatter(JsonFormatter):
    """One JSON object per record with these keys only, in this order."""

    KEYS = ("time", "level", "logger", "message", "exception", "stack")

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={
                "levelname": "level", "name": "logger", "exc_info": "exception",
                "stack_info": "stack",
            },
            timestamp="time",
        )  # fmt: skip

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info:
            # The exception as `RedactingFilter` left it in `exc_text`; the library would
            # format `exc_info` afresh, secrets included.
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None})
        return super().format(record)

    def formatException(self, ei: Any) -> str:
        return logging.Formatter.formatException(self, ei)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # Only the keys above: a record's extras never went through the filters.
        return {key: log_data[key] for key in self.KEYS if log_data.get(key) is not None}


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", force=True
    )
    if settings.log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLogFormatter())
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    kept = (settings.telegram_token, settings.webhook_secret, settings.secret_key)
    secrets = [s.get_secret_value() for s in (*kept, settings.metrics_token) if s is not None]
    filters = (AccessLogFilter(), PayloadFilter(), RedactingFilter(secrets))
    for handler in logging.getLogger().handlers:
        for found in filters:
            handler.addFilter(found)
