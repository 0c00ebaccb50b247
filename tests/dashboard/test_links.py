"""Every link and form a member of staff is shown leads somewhere that works for them.

Signed in as each demo login on the demo data, the pages are walked from the home page
along every same-site link (breadth first, a few steps deep): none may answer with an
error, and none may be a 403, since a link that only says "not allowed" should not
have been shown. Every form met on the way must post to a route the login's role may
use (by the authorization sweep's own table, `tests/dashboard/access`).
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
from tests.dashboard.access import PUBLIC, all_expectations
from tests.dashboard.conftest import csrf_from

DEPTH = 3
MAX_PAGES = 250
HREF = re.compile(r'href="([^"]*)"')
POST_FORM = re.compile(r'<form\b[^>]*\bmethod="post"[^>]*>', re.IGNORECASE)
ACTION = re.compile(r'\baction="([^"]*)"')
EXPECTED = all_expectations()
# Route templates as patterns: "/cases/{case_id}/assign" matches "/cases/17/assign".
POST_ROUTES = [
    (re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"), rule)
    for (method, path), rule in EXPECTED.items()
    if method == "POST"
]
# Files, not pages; and the walk must not sign itself out.
NOT_PAGES = ("/static/", "/logout")


def _form_actions(base: str, html: str) -> set[str]:
    actions = set()
    for tag in POST_FORM.findall(html):
        action = ACTION.search(tag)
        actions.add(urlsplit(urljoin(base, unescape(action.group(1) if action else ""))).path)
    return actions


def _may_post(role: Role, path: str) -> bool:
    rules = [rule for pattern, rule in POST_ROUTES if pattern.match(path)]
    assert rules, f"a form posts to {path}, which is no route"
    return all(rule == PUBLIC or role.value in rule for rule in rules)


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
        forms_seen, forms_denied = set(), set()
        while queue and len(seen) <= MAX_PAGES:
            path, depth, linked_from = queue.popleft()
            response = await client.get(path, follow_redirects=True)
            if response.status_code != 200:
                broken.append((path, response.status_code, linked_from))
                continue
            if "text/html" not in response.headers["content-type"]:
                continue
            for action in _form_actions(str(response.url), response.text):
                forms_seen.add(action)
                if not _may_post(login.role, action):
                    forms_denied.add((action, path))
            if depth == DEPTH:
                continue
            for link in sorted(_links(str(response.url), response.text) - seen):
                seen.add(link)
                queue.append((link, depth + 1, path))

    print(f"{login.username}: {len(seen)} links walked, {len(forms_seen)} form actions")
    assert broken == []
    assert forms_denied == set()
    assert forms_seen, "no form found: has the markup changed?"
    # The walk really went through the dashboard (an admin's is only staff accounts).
    assert len(seen) > (5 if login.role is Role.ADMIN else 50)
