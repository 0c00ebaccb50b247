"""The bot inside the `ripartire run` process, against a Bot API server over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from bot.component import create_component
from dashboard.app import create_app
from shared.db import Database
from shared.runtime import load_components
from shared.settings import Settings
from tests.bot.fake_bot_api import FakeBotApiServer
from tests.bot.fake_telegram import TOKEN


def _settings(database: Database, api_url: str, **extra: object) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url=database.url, secret_key="k" * 40, telegram_token=TOKEN,
        telegram_api_url=api_url, _env_file=None, **extra,
    )  # fmt: skip


async def _until(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def _update(update_id: int, text: str) -> dict[str, object]:
    user = {"id": 4242, "is_bot": False, "first_name": "Ada", "language_code": "it"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": int(time.time()), "text": text,
            "chat": {"id": 4242, "type": "private"}, "from": user,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        },
    }  # fmt: skip


async def test_polling_against_the_configured_bot_api_server(database: Database) -> None:
    server = FakeBotApiServer()
    async with server.running():
        settings = _settings(database, f"http://127.0.0.1:{server.port}")
        component = create_component(settings=settings, database=database)
        assert component is not None
        async with component.lifespan():
            await _until(lambda: "getUpdates" in server.methods())
            server.push(_update(1, "/aiuto"))
            await _until(lambda: "sendMessage" in server.methods())
        sent = [params for method, params in server.calls if method == "sendMessage"]
        assert "349 152 8955" in sent[0]["text"]
        methods = server.methods()
        assert methods.count("setMyCommands") == 2  # Italian (default) and English
        assert "deleteWebhook" in methods
        assert all(path.startswith(f"/bot{TOKEN}/") for path in server.paths)


async def test_polling_through_telegram_failures_logs_one_warning_each(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeBotApiServer()
    server.fail_next("getUpdates", 502, "Bad Gateway")
    server.fail_next("getUpdates", 500, "Internal Server Error")
    caplog.set_level(logging.DEBUG)
    async with server.running():
        settings = _settings(database, f"http://127.0.0.1:{server.port}")
        component = create_component(settings=settings, database=database)
        assert component is not None
        async with component.lifespan():
            await _until(lambda: server.methods().count("getUpdates") >= 3)
            server.push(_update(1, "/aiuto"))
            await _until(lambda: "sendMessage" in server.methods())
    noted = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r for r in noted if r.exc_info or r.exc_text] == []
    assert [r.levelname for r in noted] == ["WARNING", "WARNING"], [r.getMessage() for r in noted]
    assert "Bad Gateway" in noted[0].getMessage()


async def test_unreachable_bot_api_does_not_stop_the_process(database: Database) -> None:
    settings = _settings(database, "http://127.0.0.1:9")
    component = create_component(settings=settings, database=database)
    assert component is not None
    app = create_app(settings=settings, database=database, components=[component])
    started = time.monotonic()
    async with component.lifespan():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            assert (await c.get("/healthz")).status_code == 200
        await asyncio.sleep(0.3)
    assert time.monotonic() - started < 5


async def test_webhook_mode_registers_the_webhook_and_serves_the_route(database: Database) -> None:
    server = FakeBotApiServer()
    async with server.running():
        settings = _settings(
            database, f"http://127.0.0.1:{server.port}",
            webhook_url="https://ripartire.example.org/tg/hook", webhook_secret="s3cret-webhook-token",
        )  # fmt: skip
        component = create_component(settings=settings, database=database)
        assert component is not None
        app = create_app(settings=settings, database=database, components=[component])
        async with component.lifespan():
            await _until(lambda: "setWebhook" in server.methods())
            hook = dict(server.calls)["setWebhook"]
            assert hook["url"] == "https://ripartire.example.org/tg/hook"
            assert hook["secret_token"] == "s3cret-webhook-token"
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as c:
                assert (await c.post("/tg/hook", json=_update(7, "/aiuto"))).status_code == 403
                ok = await c.post(
                    "/tg/hook", json=_update(7, "/aiuto"),
                    headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-webhook-token"},
                )  # fmt: skip
                assert ok.status_code == 200
            await _until(lambda: "sendMessage" in server.methods())
        assert "getUpdates" not in server.methods()


def test_component_is_found_through_its_entry_point(database: Database) -> None:
    settings = _settings(database, "http://127.0.0.1:9")
    assert [c.name for c in load_components(settings=settings, database=database)] == ["bot"]
    no_token = Settings(database_url=database.url, _env_file=None)  # type: ignore[call-arg]
    assert load_components(settings=no_token, database=database) == []
