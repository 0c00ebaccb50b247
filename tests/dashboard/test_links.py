"""Every link a member of staff is shown leads to a page that works for them.

Signed in as each demo login on the demo data, the pages are walked from the home page
along every same-site link (breadth first, a few steps deep): none may answer with an
error, and none may be a 403, since a link that only says "not allowed" should not
have been shown.
"""

from __future__ import annotations

import re
from collections import deque
from html import unescape
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
import pytest

from dashboard.app import create_app
from shared import demo
from shared.db import Database
from shared.settings import Settings
from shared.staff.models import Role
from tests.dashboard.conftest import csrf_from

DEPTH = 3
MAX_PAGES = 250
HREF = re.compile(r'href="([^"]*)"')
# Files, not pages; and the walk must not sign itself out.
NOT_PAGES = ("/static/", "/logout")


def _links(base: str, html: str) -> set[str]:
    found = set()
    for raw in HREF.findall(html):
        url, _fragment = urldefrag(urljoin(base, unescape(raw)))
        parts = urlsplit(url)
        if parts.netloc != "testserver" or not parts.path or parts.path.startswith(NOT_PAGES):
            continue
        found.add(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


@pytest.mark.parametrize("login", demo.DEMO_LOGINS, ids=lambda login: login.username)
async def test_every_link_shown_works(
    database: Database, settings: Settings, login: demo.DemoLogin
) -> None:
    async with database.transaction() as session:
        await demo.seed(session=session, settings=settings)
    app = create_app(settings=settings, database=database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        form = await client.get("/login")
        signed_in = await client.post(
            "/login",
            data={
                "username": login.username,
                "password": login.password,
                "csrf_token": csrf_from(form.text),
            },
        )
        assert signed_in.status_code == 303

        seen = {"/"}
        queue = deque([("/", 0, "(start)")])
        broken = []
        while queue and len(seen) <= MAX_PAGES:
            path, depth, linked_from = queue.popleft()
            response = await client.get(path, follow_redirects=True)
            if response.status_code != 200:
                broken.append((path, response.status_code, linked_from))
                continue
            if depth == DEPTH or "text/html" not in response.headers["content-type"]:
                continue
            for link in sorted(_links(str(response.url), response.text) - seen):
                seen.add(link)
                queue.append((link, depth + 1, path))

    print(f"{login.username}: {len(seen)} links walked")
    assert broken == []
    # The walk really went through the dashboard (an admin's is only staff accounts).
    assert len(seen) > (5 if login.role is Role.ADMIN else 50)
