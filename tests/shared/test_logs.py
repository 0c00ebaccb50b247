from __future__ import annotations

import logging

import pytest

from shared.logs import configure_logging
from shared.settings import Settings

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
