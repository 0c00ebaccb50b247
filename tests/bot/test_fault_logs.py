"""What the log says when Telegram refuses or fails a reply, and when an error reaches nobody."""

from __future__ import annotations

import logging

import pytest
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.bot.fake_telegram import FakeTelegram, ScriptedError, texts

USER_ID = 6161


def noted(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture(autouse=True)
def _timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns about RetryAfter's period unless opted in; warnings are errors here.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


async def test_a_reply_refused_for_a_while_is_one_warning_then_sent(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.fail_next("sendMessage", ScriptedError(429, "Too Many Requests: retry after 1", 1))
    caplog.set_level(logging.DEBUG)
    calls = await TelegramUser(bot_app, fake, USER_ID).say("/aiuto")
    assert "349 152 8955" in texts(calls)
    [line] = noted(caplog)
    assert (line.levelname, line.exc_info, line.exc_text) == ("WARNING", None, None)
    assert "1 s" in line.getMessage()


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (ScriptedError(502, "Bad Gateway"), "NetworkError: Bad Gateway"),
        (ScriptedError(429, "Too Many Requests: retry after 600", 600), "RetryAfter: Flood"),
        (
            ScriptedError(403, "Forbidden: bot was blocked by the user"),
            ": Forbidden: bot was blocked by the user",
        ),
    ],
    ids=["502", "429 too long to wait", "403"],
)
async def test_a_reply_telegram_fails_is_one_warning_naming_the_update(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
    error: ScriptedError,
    said: str,
) -> None:
    user = TelegramUser(bot_app, fake, USER_ID)
    fake.fail_next("sendMessage", error)
    caplog.set_level(logging.DEBUG)
    update = user.text_update("/aiuto")
    await user.process(update)
    [line] = noted(caplog)
    assert (line.levelname, line.exc_info, line.exc_text) == ("WARNING", None, None)
    assert str(update.update_id) in line.getMessage()
    assert said in line.getMessage()
    assert "Forbidden: Forbidden" not in line.getMessage()


async def test_an_error_no_handler_dealt_with_is_one_record_naming_only_the_update(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(_update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        raise RuntimeError("a bug")

    bot_app.add_handler(MessageHandler(filters.Regex("^Mario"), broken), group=-1)
    private = "Mario Bianchi, 333 123 4567, BNCMRA80A01F205X"
    update = TelegramUser(bot_app, fake, USER_ID).text_update(private)
    caplog.set_level(logging.DEBUG)
    await bot_app.process_update(update)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    [record] = errors
    assert record.name == "bot.application"
    assert str(update.update_id) in record.getMessage()
    assert "RuntimeError" in record.getMessage()
    logged = "\n".join(f"{r.getMessage()}\n{r.exc_text or ''}" for r in caplog.records)
    for piece in ("Mario", "333 123 4567", "BNCMRA80A01F205X"):
        assert piece not in logged
