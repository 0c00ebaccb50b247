"""Real-browser tests: the dashboard served on 127.0.0.1, driven by Playwright in Debian's Chromium.

Playwright's async API runs in the tests' own event loop (no pytest-playwright sync
fixtures, which would break the asyncio tests). No browser is downloaded: Chromium
comes from the system (`apt-get install chromium`). Without it these tests skip on a
developer machine and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from dashboard.app import create_app
from shared.db import Database
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role
from tests.conftest import missing_component

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[3] / "dashboard/assets/node_modules/axe-core/axe.min.js"
PASSWORD = "correct horse battery staple"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        missing_component(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def live_server(database: Database, settings: Settings) -> AsyncIterator[str]:
    """The dashboard on a free local port, with one user per role (password PASSWORD)."""
    async with database.transaction() as session:
        for role in Role:
            await staff.add_user(session=session, username=role.value, password=PASSWORD, role=role)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(settings=settings, database=database)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def page(browser: Browser, live_server: str) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=live_server, locale="it-IT")
    # The dashboard must never load anything from another site.
    foreign: list[str] = []
    context.on(
        "request",
        lambda request: (
            foreign.append(request.url) if not request.url.startswith(live_server) else None
        ),
    )
    opened = await context.new_page()
    yield opened
    await context.close()
    assert foreign == [], f"requests to other sites: {foreign}"


async def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    await page.goto("/login")
    await page.get_by_label("Nome utente").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Accedi").click()
    await page.wait_for_load_state()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """WCAG 2.1 A/AA violations reported by axe-core, injected from the local npm package."""
    if not AXE.exists():
        missing_component(f"axe-core is not installed at {AXE} (make installs it)")
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        """async () => await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"""
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(
        [
            {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in violations
        ],
        indent=1,
    )
