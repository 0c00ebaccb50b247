"""A request's changes are committed before its response leaves the server.

Otherwise a browser that follows a 303 redirect at once can read the database before
the change is there: signed in, then sent back to /login; checked in, yet still booked.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from dashboard.deps import LOGIN_CSRF_COOKIE
from shared.db import Database
from shared.staff.models import StaffSession
from tests.dashboard.conftest import PASSWORD, csrf_from


async def test_sign_in_is_committed_before_the_redirect_is_sent(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    form = await client.get("/login")
    cookie = client.cookies.get(LOGIN_CSRF_COOKIE, path="/login")
    assert cookie
    body = urlencode(
        {"username": "operatore", "password": PASSWORD, "csrf_token": csrf_from(form.text)}
    ).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/login",
        "raw_path": b"/login",
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
            (b"cookie", f"{LOGIN_CSRF_COOKIE}={cookie}".encode()),
        ],
    }
    sent = False
    seen_when_sent: list[tuple[int, int]] = []

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            # What another request, sent by the browser right now, would find.
            async with database.transaction(read_only=True) as session:
                count = await session.scalar(select(func.count()).select_from(StaffSession))
            seen_when_sent.append((message["status"], count or 0))

    await app(scope, receive, send)
    assert seen_when_sent == [(303, 1)]
