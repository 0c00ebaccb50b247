"""Return addresses: only paths on this site, on every route that takes one.

The judge is independent of the code under test: it resolves a `Location` or a link the
way a browser does (tabs and newlines dropped, a backslash read as a slash) and checks
that the result is still on this host.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from dashboard.redirects import is_local_path, local_path
from shared.booking import availability
from shared.booking import service as booking
from shared.db import Database, utcnow
from shared.settings import Settings
from tests.dashboard.conftest import login, page_csrf
from tests.dashboard.route_table import route_entries
from tests.factories import ROME, make_citizen, make_helpdesk

HOST = "testserver"

# Known open-redirect bypasses, as they would arrive in a query string or a form field.
BYPASSES = [
    "//evil.example",
    "///evil.example",
    "/\t/evil.example",
    "/%09/evil.example",
    "/%09///evil.example",
    "/\n/evil.example",
    "/%0a/evil.example",
    "/%0d%0a/evil.example",
    "/\\evil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "\\\\evil.example",
    "/%2F/evil.example",
    "/%252F%252Fevil.example",
    "https://evil.example",
    "http:evil.example",
    "https:/evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    " //evil.example",
    "%2F%2Fevil.example",
    "/\x00//evil.example",
    "/\u202e//evil.example",
    "/%E2%80%AE//evil.example",
    "/\u2028/evil.example",
]
LOCAL = ["/", "/agenda", "/agenda?day=2026-12-01&view=week&helpdesk=3", "/cases/12#plan"]


def _browser_resolves(base: str, target: str) -> str:
    """The host a browser would go to for `target` found on page `base`."""
    cleaned = re.sub(r"[\t\n\r]", "", target).strip("\x00 ").replace("\\", "/")
    return urlsplit(urljoin(base, cleaned)).netloc


@pytest.mark.parametrize("target", BYPASSES)
def test_a_bypass_is_not_a_local_path(target: str) -> None:
    assert not is_local_path(target)
    assert local_path(target, "/agenda") == "/agenda"


@pytest.mark.parametrize("target", LOCAL)
def test_a_path_on_this_site_is_kept(target: str) -> None:
    assert local_path(target, "/agenda") == target


def test_every_bypass_would_really_leave_or_break_the_site() -> None:
    """The table is worth its name: each entry fools a naive prefix check or a browser."""
    naive = [t for t in BYPASSES if t.startswith("/") and not t.startswith("//")]
    assert len(naive) >= 15, "fewer than 15 entries pass a startswith('/') check"


def _route_params(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path, field) for every route taking a return address."""
    found = []
    for entry in route_entries(app):
        dependant = entry.route.dependant
        names = {p.name for p in dependant.query_params} | {p.name for p in dependant.body_params}
        for field in sorted(names & {"back", "next"}):
            found += [(method, entry.path, field) for method in entry.methods]
    return found


def test_the_routes_that_take_a_return_address_are_all_swept(app: FastAPI) -> None:
    swept = {(method, path) for method, path, _ in _route_params(app)}
    assert ("POST", "/agenda/bookings/{booking_id}/cancel") in swept
    assert ("GET", "/agenda/bookings/{booking_id}/move") in swept
    assert ("POST", "/language") in swept


async def _booking_id(database: Database, settings: Settings) -> int:
    async with database.transaction() as session:
        yesterday = utcnow().astimezone(ROME).date() - timedelta(days=1)
        helpdesk = await make_helpdesk(
            session, weekdays=(0, 1, 2, 3, 4, 5, 6), places=3, valid_from=yesterday
        )
        citizen = await make_citizen(session)
        later = utcnow() + timedelta(days=3)
        free = await availability.list_free_slots(
            session=session, settings=settings, helpdesk_id=helpdesk.id
        )
        slot = next(s for s in free if s.starts_at >= later)
        made = await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id,
            helpdesk_id=helpdesk.id, starts_at=slot.starts_at, actor="test", now=utcnow(),
        )  # fmt: skip
        return made.id


def _links(html: str) -> list[str]:
    found = re.findall(r'(?:href|action)="([^"]*)"', html)
    found += re.findall(r'name="(?:back|next)" value="([^"]*)"', html)
    return [unescape(link) for link in found]


async def test_no_route_sends_the_browser_to_another_site(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    booking_id = await _booking_id(database, settings)
    await login(client, "coordinatore")
    token = await page_csrf(client)
    leaks = []
    for method, template, field in _route_params(app):
        path = template.replace("{booking_id}", str(booking_id))
        base = f"http://{HOST}{path}"
        for target in BYPASSES:
            if method == "GET":
                response = await client.get(path, params={field: target})
            else:
                form = {field: target, "csrf_token": token, "reason": "Sportello chiuso"}
                response = await client.post(path, data=form)
            assert response.status_code < 500, (method, path, target)
            if response.is_redirect:
                found = [response.headers["location"]]
            else:
                found = _links(response.text)
            leaks += [
                (method, path, target, link)
                for link in found
                if _browser_resolves(base, link) != HOST
            ]
    assert leaks == []
