"""One way to show a moment and a phone number on every page (issue 12, point 5).

A moment reads as day, month, year, hours and minutes (never seconds, never a two-digit
year); a phone number reads grouped as people write it ("+39 333 101 2020"), never as
the E.164 the database keeps. The strongest check walks the dashboard on the demo data,
signed in as each kind of staff, and reads the text every page shows.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import UTC, datetime
from html import unescape
from urllib.parse import urldefrag, urljoin, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from dashboard.app import create_app
from dashboard.templating import format_moment, format_phone
from shared import demo
from shared.db import Database
from shared.settings import Settings
from tests.dashboard.conftest import csrf_from

ROME = ZoneInfo("Europe/Rome")
DEPTH = 2
MAX_PAGES = 120
HREF = re.compile(r'href="([^"]*)"')
# What the eye reads: tags (and the machine-readable values in their attributes) removed.
TAG = re.compile(r"<[^>]+>")
SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1>", re.DOTALL | re.IGNORECASE)
SECONDS = re.compile(r"\b\d{1,2}[:.]\d{2}[:.]\d{2}\b")
RAW_PHONE = re.compile(r"\+\d{8,}")
NOT_PAGES = ("/static/", "/logout")


def test_a_moment_has_day_month_year_hours_and_minutes() -> None:
    moment = datetime(2026, 3, 5, 8, 30, 17, tzinfo=UTC)
    assert format_moment(moment, "it", ROME) == "5 mar 2026, 09:30"
    assert format_moment(moment, "en", ROME) == "Mar 5, 2026, 09:30"
    # Summer time, past midnight in Rome: the local day and hour.
    summer = datetime(2026, 7, 25, 23, 5, 7, tzinfo=UTC)
    assert format_moment(summer, "it", ROME) == "26 lug 2026, 01:05"


def test_a_phone_number_is_grouped() -> None:
    assert format_phone("+393331012020") == "+39 333 101 2020"
    assert format_phone("+393316938049") == "+39 331 693 8049"
    # Whatever is stored that is not a number stays as it is, and nothing is "—".
    assert format_phone("not a number") == "not a number"
    assert format_phone(None) == "—"
    assert format_phone("") == "—"


def _text(html: str) -> str:
    return unescape(TAG.sub(" ", SCRIPT_OR_STYLE.sub(" ", html)))


def _links(base: str, html: str) -> set[str]:
    found = set()
    for raw in HREF.findall(html):
        url, _fragment = urldefrag(urljoin(base, unescape(raw)))
        parts = urlsplit(url)
        if parts.netloc != "testserver" or not parts.path or parts.path.startswith(NOT_PAGES):
            continue
        found.add(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


@pytest.mark.parametrize("username", ["coordinatore", "operatore"])
async def test_no_page_shows_seconds_or_a_raw_phone_number(
    database: Database, settings: Settings, username: str
) -> None:
    async with database.transaction() as session:
        await demo.seed(session=session, settings=settings)
    login = next(login for login in demo.DEMO_LOGINS if login.username == username)
    app = create_app(settings=settings, database=database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        form = await client.get("/login")
        await client.post(
            "/login",
            data={
                "username": login.username,
                "password": login.password,
                "csrf_token": csrf_from(form.text),
            },
        )
        seen = {"/"}
        queue = deque([("/", 0)])
        found: list[str] = []
        pages = 0
        while queue and pages < MAX_PAGES:
            path, depth = queue.popleft()
            response = await client.get(path, follow_redirects=True)
            if "text/html" not in response.headers.get("content-type", ""):
                continue
            pages += 1
            text = _text(response.text)
            found += [f"{path}: {m}" for m in SECONDS.findall(text)]
            found += [f"{path}: {m}" for m in RAW_PHONE.findall(text)]
            if depth < DEPTH:
                for link in sorted(_links(str(response.url), response.text) - seen):
                    seen.add(link)
                    queue.append((link, depth + 1))
    assert pages > 10, "the walk did not get into the dashboard"
    assert found == []
