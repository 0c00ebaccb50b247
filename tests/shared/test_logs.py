from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import pytest

from shared.logs import configure_logging
from shared.settings import Settings, SettingsError, load_settings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_token_never_reaches_the_log(capfd: pytest.CaptureFixture[str]) -> None:
    settings = Settings(telegram_token=TOKEN, _env_file=None)  # type: ignore[call-arg]
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(settings)
        url = f"https://api.telegram.org/bot{TOKEN}/getUpdates"
        logging.getLogger("httpx").info("HTTP Request: POST %s", url)  # silenced below WARNING
        logging.getLogger("telegram.ext").warning("request to %s failed", url)
        try:
            raise ConnectionError(f"Client error for url '{url}'")
        except ConnectionError:
            logging.getLogger("bot").exception("polling failed")
        output = capfd.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert TOKEN not in output
    assert "getUpdates" in output
    assert "request to https://api.telegram.org/bot***/getUpdates failed" in output
    assert "HTTP Request" not in output
    assert "ConnectionError" in output


def test_json_logs_are_one_object_a_line_with_secrets_redacted(
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(telegram_token=TOKEN, log_format="json", _env_file=None)  # type: ignore[call-arg]
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(settings)
        logging.getLogger("bot.turn").info(
            "update %d handled", 42, extra={"first_name": "Giuseppina"}
        )
        logging.getLogger("telegram.ext").warning("request to bot%s failed", TOKEN)
        try:
            raise ConnectionError(f"Client error for url 'https://api.telegram.org/bot{TOKEN}/'")
        except ConnectionError:
            logging.getLogger("bot").exception("polling failed")
        output = capfd.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    records = [json.loads(line) for line in output.splitlines()]
    assert [(r["level"], r["logger"], r["message"]) for r in records] == [
        ("INFO", "bot.turn", "update 42 handled"),
        ("WARNING", "telegram.ext", "request to bot*** failed"),
        ("ERROR", "bot", "polling failed"),
    ]
    # Only the known keys: an `extra=` value never went through the filters.
    assert [list(r) for r in records[:2]] == [["time", "level", "logger", "message"]] * 2
    assert datetime.fromisoformat(records[0]["time"]).utcoffset() == timedelta(0)
    assert (
        "ConnectionError: Client error for url 'https://api.telegram.org/bot***/'"
        in (records[2]["exception"])
    )
    assert TOKEN not in output
    assert "Giuseppina" not in output


def test_the_log_format_is_text_or_json() -> None:
    assert Settings(_env_file=None).log_format == "text"  # type: ignore[call-arg]
    with pytest.raises(SettingsError, match="RIPARTIRE_LOG_FORMAT"):
        load_settings(log_format="xml", _env_file=None)


def test_the_metrics_token_never_reaches_the_log(capfd: pytest.CaptureFixture[str]) -> None:
    secret = "metrics-token-0123456789-abcdef"
    settings = Settings(metrics_token=secret, _env_file=None)  # type: ignore[call-arg]
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(settings)
        logging.getLogger("uvicorn.error").warning("bad header: Bearer %s", secret)
        output = capfd.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert secret not in output
    assert "bad header: Bearer ***" in output
