"""A fake Telegram Bot API on our side of the wire, for the real python-telegram-bot stack.

`FakeTelegram` is a `telegram.request.BaseRequest`: PTB serialises every call as it
would for api.telegram.org and we answer like Telegram does (message objects, `ok`
envelopes, error codes). Every call is recorded; failures can be scripted per method.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

BOT_ID = 7000000001
BOT_USER = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "Ripartire",
    "username": "ripartire_test_bot",
}
TOKEN = f"{BOT_ID}:AAFakeTokenForTestsOnly_abcdefghijklmn"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button, row by row."""
        markup = self.params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        rows = (markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


@dataclass
class ScriptedError:
    status: int
    description: str
    retry_after: int | None = None


class FakeTelegram(BaseRequest):
    def __init__(self, latency: float = 0.0) -> None:
        self.calls: list[Call] = []
        self.latency = latency
        self.failures: dict[str, list[ScriptedError]] = {}
        # The same, for the calls to one chat only: (method, chat id) -> errors.
        self.chat_failures: dict[tuple[str, int], list[ScriptedError]] = {}
        self._message_ids = itertools.count(1000)

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def fail_next(self, method: str, error: ScriptedError) -> None:
        self.failures.setdefault(method, []).append(error)

    def fail_next_in(self, chat_id: int, method: str, error: ScriptedError) -> None:
        """The next call of `method` to `chat_id` gets `error`; calls to other chats go through."""
        self.chat_failures.setdefault((method, chat_id), []).append(error)

    def sent(self, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if method is None or c.method == method]

    def clear(self) -> None:
        self.calls.clear()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = None,
        write_timeout: object = None,
        connect_timeout: object = None,
        pool_timeout: object = None,
    ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request_data is not None:
            params = dict(request_data.parameters)
            for name, value in (request_data.multipart_data or {}).items():
                if isinstance(value, tuple):
                    files[name] = value[1]
        if self.latency:
            await asyncio.sleep(self.latency)
        chat = params.get("chat_id")
        scripted = self.chat_failures.get((api_method, int(chat))) if chat is not None else None
        if not scripted:
            scripted = self.failures.get(api_method)
        if scripted:
            error = scripted.pop(0)
            body: dict[str, Any] = {
                "ok": False,
                "error_code": error.status,
                "description": error.description,
            }
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
            self.calls.append(Call(f"{api_method}!failed", params, files))
            return error.status, json.dumps(body).encode()
        self.calls.append(Call(api_method, params, files))
        return 200, json.dumps({"ok": True, "result": self._result(api_method, params)}).encode()

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method in ("sendMessage", "sendDocument", "editMessageText"):
            chat_id = int(params.get("chat_id", 0))
            message: dict[str, Any] = {
                "message_id": int(params.get("message_id") or next(self._message_ids)),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
            }
            if "text" in params:
                message["text"] = params["text"]
            if method == "sendDocument":
                message["document"] = {
                    "file_id": "doc1",
                    "file_unique_id": "doc1u",
                    "file_name": "x.ics",
                }
            return message
        if method == "getUpdates":
            return []
        return True


class Citizen:
    """A Telegram user in a private chat with the bot: builds updates the way Telegram would."""

    _update_ids = itertools.count(1)
    _message_ids = itertools.count(1)

    def __init__(
        self,
        app: Application,
        fake: FakeTelegram,
        user_id: int,
        language: str = "it",
        first_name: str = "Maria",
    ) -> None:  # type: ignore[type-arg]
        self.app = app
        self.fake = fake
        self.user = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language,
        }
        self.chat = {"id": user_id, "type": "private", "first_name": first_name}

    def _message(self, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self.chat,
            "from": self.user,
            **content,
        }

    def update(self, **content: Any) -> Update:
        data = {"update_id": next(self._update_ids), **content}
        update = Update.de_json(data, self.app.bot)
        assert update is not None
        return update

    def text_update(self, text: str) -> Update:
        entities = (
            [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            if text.startswith("/")
            else []
        )
        return self.update(message=self._message(text=text, entities=entities))

    def press_update(self, data: str, message_id: int = 1) -> Update:
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self.chat,
            "from": BOT_USER,
            "text": "…",
        }
        return self.update(
            callback_query={
                "id": str(next(self._update_ids)),
                "from": self.user,
                "chat_instance": "ci",
                "data": data,
                "message": message,
            }
        )

    async def process(self, update: Update) -> list[Call]:
        start = len(self.fake.calls)
        await self.app.process_update(update)
        return [
            c
            for c in self.fake.calls[start:]
            if c.params.get("chat_id") in (None, self.user["id"])
            or c.method == "answerCallbackQuery"
        ]

    async def say(self, text: str) -> list[Call]:
        return await self.process(self.text_update(text))

    async def press(self, data: str, message_id: int = 1) -> list[Call]:
        return await self.process(self.press_update(data, message_id))

    async def send(self, **content: Any) -> list[Call]:
        """Any other message content: photo, sticker, voice, location, contact…"""
        return await self.process(self.update(message=self._message(**content)))


def texts(calls: list[Call]) -> str:
    return "\n---\n".join(c.text for c in calls if c.text)


def buttons(calls: list[Call]) -> list[tuple[str, str]]:
    return [b for c in calls for b in c.buttons]
