"""Authorization and CSRF sweeps generated from the app's own route table.

`tests/dashboard/access/<area>.py` list who may use each route. A route missing from it fails the build, so a
new page can't ship without a decision about who may see it.
"""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from tests.dashboard.access import AD, CO, OP, PUBLIC, all_expectations
from tests.dashboard.conftest import USERS, csrf_from, login, page_csrf
from tests.dashboard.route_table import routes

EXPECTED = all_expectations()


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    return routes(app)


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_has_an_expectation(app: FastAPI) -> None:
    missing = [route for route in _routes(app) if route not in EXPECTED]
    assert missing == [], f"routes without an authorization expectation: {missing}"
    stale = [route for route in EXPECTED if route not in _routes(app)]
    assert stale == [], f"expectations for routes that no longer exist: {stale}"


@pytest.mark.parametrize("persona", ["anonymous", OP, CO, AD])
async def test_authorization_sweep(app: FastAPI, client: httpx.AsyncClient, persona: str) -> None:
    token = ""
    if persona != "anonymous":
        assert persona in USERS
        await login(client, persona)
        token = await page_csrf(client)
    problems = []
    for method, path in _routes(app):
        if path in ("/logout",):
            continue  # would end the persona's session mid-sweep; covered in test_auth
        allowed = EXPECTED[method, path]
        data = {"csrf_token": token} if method == "POST" else None
        if allowed == PUBLIC and method == "POST":
            # Public forms carry a pre-session token set by their own page.
            data = {"csrf_token": csrf_from((await client.get(path)).text)}
        response = await client.request(method, _concrete(path), data=data)
        denied_login = response.status_code == 303 and response.headers.get("location") == "/login"
        if allowed == PUBLIC:
            ok = response.status_code != 403 and not denied_login
        elif persona == "anonymous":
            ok = denied_login
        elif persona in allowed:
            ok = response.status_code != 403 and not denied_login
        else:
            ok = response.status_code == 403
        if not ok:
            problems.append(f"{persona} {method} {path} -> {response.status_code}")
    assert problems == []


@pytest.mark.parametrize("persona", [OP, CO, AD])
async def test_csrf_sweep(app: FastAPI, client: httpx.AsyncClient, persona: str) -> None:
    await login(client, persona)
    problems = []
    for method, path in _routes(app):
        if method != "POST":
            continue
        for data in (None, {"csrf_token": "forged-token"}):
            response = await client.request(method, _concrete(path), data=data)
            if response.status_code != 403:
                problems.append(
                    f"{persona} {method} {path} without a valid token -> {response.status_code}"
                )
    assert problems == []
