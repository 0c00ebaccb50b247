"""Security headers, requests from other sites, and what an unexpected error looks like."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from dashboard.app import create_app
from dashboard.security import CONTENT_SECURITY_POLICY, REQUEST_ID_HEADER
from shared.db import Database
from shared.settings import Settings
from tests.dashboard.conftest import csrf_from, login, page_csrf

TEMPLATES = Path(__file__).resolve().parents[2] / "dashboard" / "templates"


# --- headers -------------------------------------------------------------------------


def _assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    policy = headers.get("content-security-policy", "")
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives.get("default-src") == "'self'", policy
    assert directives.get("frame-ancestors") == "'none'", policy
    assert "unsafe-inline" not in directives.get("script-src", "'self'"), policy
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") in ("same-origin", "no-referrer", "strict-origin")


async def test_every_kind_of_page_has_the_security_headers(client: httpx.AsyncClient) -> None:
    signed_out = await client.get("/login")
    _assert_security_headers(signed_out)
    await login(client, "coordinatore")
    for path in ("/agenda", "/cases", "/cases/999999", "/schedules", "/audit"):
        response = await client.get(path)
        _assert_security_headers(response)
        assert response.headers.get("cache-control") == "no-store", path
    assert "strict-transport-security" not in signed_out.headers  # plain http: no HSTS


async def test_static_files_may_be_cached_and_still_get_nosniff(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/static/app.css")
    assert response.status_code == 200
    _assert_security_headers(response)
    assert response.headers.get("cache-control") != "no-store"


async def test_hsts_over_https(app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as c:
        response = await c.get("/login")
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_no_template_needs_inline_script_or_style() -> None:
    """What the policy refuses must not be in our own pages."""
    found = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\sstyle=", r"\son[a-z]+="):
            found += [f"{template.name}: {m}" for m in re.findall(pattern, text)]
    assert found == []
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY


# --- requests started by another site ------------------------------------------------


async def _login_form(client: httpx.AsyncClient) -> dict[str, str]:
    page = await client.get("/login")
    return {"username": "operatore", "password": "correct horse battery staple",
            "csrf_token": csrf_from(page.text)}  # fmt: skip


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://evil.example"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "null"},
    ],
)
async def test_a_post_from_another_site_is_refused_even_with_a_valid_token(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    refused = await client.post("/login", data=await _login_form(client), headers=headers)
    assert refused.status_code == 403
    assert "Il modulo è scaduto" in refused.text
    assert "ripartire_session" not in refused.cookies

    await login(client, "coordinatore")
    token = await page_csrf(client)
    refused = await client.post(
        "/language", data={"lang": "en", "back": "/agenda", "csrf_token": token}, headers=headers
    )
    assert refused.status_code == 403
    assert "lang" not in refused.cookies


@pytest.mark.parametrize(
    "headers",
    [{}, {"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://testserver"},
     {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}],
)  # fmt: skip
async def test_a_post_from_our_own_pages_goes_through(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    signed_in = await client.post("/login", data=await _login_form(client), headers=headers)
    assert signed_in.status_code == 303


# --- an unexpected error -------------------------------------------------------------


def _failing_app(database: Database, settings: Settings) -> FastAPI:
    app = create_app(settings=settings, database=database)

    async def boom() -> None:
        raise RuntimeError("something broke")

    app.add_api_route("/boom", boom)
    return app


async def test_an_unexpected_error_is_one_log_record_with_the_id_the_page_shows(
    database: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = _failing_app(database, settings)
    # raise_app_exceptions: an exception escaping the app (a second traceback in the
    # server's log) fails the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        with caplog.at_level(logging.INFO):
            response = await c.get("/boom?q=Fumagalli")
    assert response.status_code == 500
    _assert_security_headers(response)
    request_id = response.headers[REQUEST_ID_HEADER]
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", request_id)
    assert request_id in response.text
    assert "Qualcosa è andato storto" in response.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert request_id in errors[0].getMessage()
    assert errors[0].exc_info is not None
    # (httpx, the test's own client, logs the URL it asked for.)
    assert not any("Fumagalli" in r.getMessage() for r in caplog.records if r.name != "httpx")


async def test_each_request_gets_its_own_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/login")).headers[REQUEST_ID_HEADER] for _ in range(5)}
    assert len(ids) == 5


@pytest.fixture
async def live_failing_server(database: Database, settings: Settings) -> AsyncIterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    config = uvicorn.Config(
        _failing_app(database, settings), host="127.0.0.1", port=port, log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> str:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = int(re.search(r"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    await reader.readexactly(length)
    return head


async def test_the_connection_stays_open_after_an_error(live_failing_server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", live_failing_server)
    try:
        first = await asyncio.wait_for(_exchange(reader, writer, "/boom"), 10)
        assert first.startswith("HTTP/1.1 500")
        assert "connection: close" not in first.lower()
        second = await asyncio.wait_for(_exchange(reader, writer, "/login"), 10)
        assert second.startswith("HTTP/1.1 200")
    finally:
        writer.close()
