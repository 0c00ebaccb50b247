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
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Browser, Locator, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncSession

from dashboard.app import create_app
from shared.booking import availability, hours
from shared.booking import service as booking
from shared.booking.models import Helpdesk
from shared.db import Database, utcnow
from shared.intake import staff as staff_intake
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
# Assertions wait for the page as long as actions do (Playwright's default is 5 s).
expect.set_options(timeout=15_000)


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
    context = await browser.new_context(
        base_url=live_server, locale="it-IT", reduced_motion="reduce"
    )
    # Every page is local: fail in seconds, not after Playwright's 30 s default (with room
    # for a machine busy with other work).
    context.set_default_timeout(15_000)
    # The dashboard must never load anything from another site.
    foreign: list[str] = []
    context.on(
        "request",
        lambda request: (
            foreign.append(request.url) if not request.url.startswith(live_server) else None
        ),
    )
    # The Content-Security-Policy must hold for Bootstrap Italia and htmx: Chromium reports
    # each thing it refused on the console.
    refused: list[str] = []
    context.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    opened = await context.new_page()
    yield opened
    await context.close()
    assert foreign == [], f"requests to other sites: {foreign}"
    assert refused == [], f"refused by the Content-Security-Policy: {refused}"


async def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    await page.goto("/login")
    await page.get_by_label("Nome utente").fill(username)
    await page.get_by_label("Password").fill(password)
    # Wait for the page the form leads to (the agenda, or the form again): right after the
    # click, the login page itself still counts as loaded.
    async with page.expect_navigation():
        await page.get_by_role("button", name="Accedi").click()


async def open_menu(page: Page, item: str) -> None:
    """Follow a link of the main menu, as staff move between the dashboard's areas."""
    menu = page.get_by_role("navigation", name="Menu principale")
    await menu.get_by_role("link", name=item, exact=True).click()


async def click_label_of(page: Page, control: Locator) -> None:
    """Tick a radio button or checkbox as people do: Bootstrap Italia draws them on the label."""
    control_id = await control.get_attribute("id")
    assert control_id, "the control has no id for its label"
    await page.locator(f"label[for='{control_id}']").click()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """WCAG 2.1 A/AA violations reported by axe-core, injected from the local npm package."""
    if not AXE.exists():
        missing_component(f"axe-core is not installed at {AXE} (make installs it)")
    # Evaluated through the DevTools protocol, not added as a <script>: the page's
    # Content-Security-Policy refuses inline scripts, as it should.
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate(
        """async () => await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"""
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(
        [
            {
                "id": v["id"],
                "help": v["help"],
                "nodes": [
                    {"target": n["target"], "html": n["html"][:200], "why": n["failureSummary"]}
                    for n in v["nodes"][:5]
                ],
            }
            for v in violations
        ],
        indent=1,
    )


# --- demo-like data, made through the shared services ----------------------------------

HELPDESK = "Sportello di prova"
STAFF_ACTOR = "staff:test"


@dataclass(frozen=True)
class Appointment:
    """A citizen registered by staff (completed, eligible intake and open case) and booked."""

    name: str
    citizen_id: int
    case_id: int
    booking_id: int
    code: str
    starts_at: datetime


@dataclass(frozen=True)
class Scene:
    """A helpdesk open every day, and three citizens with appointments.

    `due` is booked today at a slot whose check-in is open, `arrived` was checked in today
    (the interview can start), `tomorrow` is booked for tomorrow at midday.
    """

    helpdesk_id: int
    today: date
    due: Appointment
    arrived: Appointment
    tomorrow: Appointment


def local_now(settings: Settings) -> datetime:
    return utcnow().astimezone(settings.tz)


async def open_every_day(
    session: AsyncSession, settings: Settings, name: str = HELPDESK
) -> Helpdesk:
    """A helpdesk with hourly slots (3 places) from 00:00 to 23:00 on every day of the week,
    so that a slot with check-in open exists whenever the tests run."""
    helpdesk = await hours.create_helpdesk(
        session=session,
        name=name,
        address="Via Tizzoni 2, 20063 Cernusco sul Naviglio (MI)",
        directions="Piano terra, ufficio Politiche sociali.",
        actor=STAFF_ACTOR,
    )
    for weekday in range(7):
        await hours.add_opening_rule(
            session=session,
            helpdesk_id=helpdesk.id,
            weekday=weekday,
            opens_at=time(0),
            closes_at=time(23),
            slot_minutes=60,
            places=3,
            valid_from=local_now(settings).date() - timedelta(days=7),
            actor=STAFF_ACTOR,
        )
    return helpdesk


async def register(
    session: AsyncSession,
    settings: Settings,
    *,
    name: str,
    phone: str,
    urgent: bool = False,
    resident: bool = True,
) -> staff_intake.Submission:
    """A walk-in citizen with a completed questionnaire, eligible unless not resident
    (their case opens)."""
    return await staff_intake.submit_intake(
        session=session,
        settings=settings,
        channel="walk_in",
        raw={
            "residence": "yes" if resident else "no",
            "situation": "job_loss",
            "since": "04/2020",
            "pandemic_related": "yes",
            "household": "3 1",
            "benefits": "naspi",
            "needs": "job_search",
            "urgent": "yes" if urgent else "no",
            "name": name,
            "phone": phone,
        },
        consent=True,
        actor=STAFF_ACTOR,
        now=utcnow(),
    )


async def current_slot(session: AsyncSession, settings: Settings, helpdesk_id: int) -> datetime:
    """The latest slot of today that has begun or begins within half an hour (check-in open)."""
    now = utcnow()
    midnight = datetime.combine(now.astimezone(settings.tz).date(), time.min, tzinfo=settings.tz)
    slots = await availability.list_free_slots(
        session=session,
        settings=settings,
        # As seen before the day began, so that slots already under way are offered.
        now=midnight - timedelta(hours=3),
        helpdesk_id=helpdesk_id,
        since=midnight,
        until=now + timedelta(minutes=30),
    )
    assert slots, "the test helpdesk has no slot today"
    return slots[-1].starts_at


async def appointment(
    session: AsyncSession,
    settings: Settings,
    *,
    helpdesk_id: int,
    starts_at: datetime,
    name: str,
    phone: str,
    urgent: bool = False,
) -> Appointment:
    """Register a citizen and book them at `starts_at` (booked, for a time already near,
    as it was a few hours before)."""
    submission = await register(session, settings, name=name, phone=phone, urgent=urgent)
    assert submission.case_id is not None
    made = await booking.book_slot(
        session=session,
        settings=settings,
        citizen_id=submission.citizen.id,
        helpdesk_id=helpdesk_id,
        starts_at=starts_at,
        actor=STAFF_ACTOR,
        now=min(utcnow(), starts_at - timedelta(hours=3)),
    )
    return Appointment(
        name, submission.citizen.id, submission.case_id, made.id, made.code, made.starts_at
    )


async def make_scene(database: Database, settings: Settings) -> Scene:
    async with database.transaction() as session:
        helpdesk = await open_every_day(session, settings)
        now_slot = await current_slot(session, settings, helpdesk.id)
        today = now_slot.astimezone(settings.tz).date()
        noon = datetime.combine(today + timedelta(days=1), time(12), tzinfo=settings.tz)
        due = await appointment(
            session, settings, helpdesk_id=helpdesk.id, starts_at=now_slot,
            name="Maria Rossi", phone="333 123 4501", urgent=True,
        )  # fmt: skip
        arrived = await appointment(
            session, settings, helpdesk_id=helpdesk.id, starts_at=now_slot,
            name="Giovanni Verdi", phone="333 123 4502",
        )  # fmt: skip
        await booking.mark_attended(
            session=session, booking_id=arrived.booking_id, actor=STAFF_ACTOR
        )
        later = await appointment(
            session, settings, helpdesk_id=helpdesk.id, starts_at=noon,
            name="Lucia Neri", phone="333 123 4503",
        )  # fmt: skip
    return Scene(helpdesk.id, today, due, arrived, later)


@pytest.fixture
async def scene(live_server: str, database: Database, settings: Settings) -> Scene:
    """`Scene` data in the database the live server uses."""
    return await make_scene(database, settings)
