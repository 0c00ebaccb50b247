"""A fake Bot API *server* on 127.0.0.1, for end-to-end tests over real HTTP (httpx, polling)."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.bot.fake_telegram import BOT_USER


class FakeBotApiServer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.paths: list[str] = []
        self.updates: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.port = 0
        # method -> (HTTP status, description) of its next answers.
        self.failures: dict[str, list[tuple[int, str]]] = {}
        # Awaited with each getUpdates' offset before it is answered (what the bot had
        # done when it confirmed the updates before that offset).
        self.on_get_updates: Callable[[int], Awaitable[None]] | None = None
        # Like Telegram, an offset confirms the updates before it: never sent again.
        self.confirmed = 0

    def push(self, update: dict[str, Any]) -> None:
        self.updates.append(update)

    def fail_next(self, method: str, status: int, description: str) -> None:
        self.failures.setdefault(method, []).append((status, description))

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    async def _handle(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        self.paths.append(request.url.path)
        form = await request.form()
        params: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        if not params and request.headers.get("content-type", "").startswith("application/json"):
            params = json.loads(await request.body() or b"{}")
        self.calls.append((method, params))
        scripted = self.failures.get(method)
        if scripted:
            status, description = scripted.pop(0)
            return JSONResponse(
                {"ok": False, "error_code": status, "description": description}, status_code=status
            )
        result: Any = True
        if method == "getMe":
            result = BOT_USER
        elif method == "getUpdates":
            offset = max(int(params.get("offset") or 0), self.confirmed)
            self.confirmed = offset
            if self.on_get_updates is not None:
                await self.on_get_updates(offset)
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline and not [
                u for u in self.updates if u["update_id"] >= offset
            ]:
                await asyncio.sleep(0.02)
            result = [u for u in self.updates if u["update_id"] >= offset]
        elif method in ("sendMessage", "editMessageText", "sendDocument"):
            result = {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": int(params.get("chat_id", 0)), "type": "private"},
                "text": params.get("text", ""),
            }
        return JSONResponse({"ok": True, "result": result})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeBotApiServer]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        app = Starlette(
            routes=[Route("/bot{token}/{method}", self._handle, methods=["POST", "GET"])]
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            await task
