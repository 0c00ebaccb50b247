"""The bookings board in a real browser, as a coordinator uses it: filter by a tab and a
helpdesk (a bookmarkable address), select two bookings, move them to another day, read
whom to phone; then cancel one with a message. No JavaScript is needed for any of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from shared.booking.models import Booking, BookingState
from shared.citizens.models import Citizen
from shared.db import Database
from shared.settings import Settings
from tests.dashboard.browser.conftest import Scene, click_label_of, sign_in

pytestmark = pytest.mark.browser


async def test_a_coordinator_moves_and_cancels_from_the_board(
    page: Page, scene: Scene, database: Database, settings: Settings
) -> None:
    # Lucia Neri (tomorrow at noon) came by phone: the move can't be told to her.
    async with database.transaction() as session:
        lucia = await session.get(Citizen, scene.tomorrow.citizen_id)
        assert lucia is not None
        lucia.telegram_chat_id = None
    await sign_in(page, "coordinatore")
    await (
        page.get_by_role("navigation", name="Menu principale")
        .get_by_role("link", name="Prenotazioni")
        .click()
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text("Prenotazioni")
    await page.get_by_role("link", name="Prenotato").first.click()
    assert "state=booked" in page.url
    await expect(page.get_by_role("cell", name=scene.tomorrow.name)).to_be_visible()
    # The urgent citizen's row says so in words, not only in colour.
    urgent = page.get_by_role("row").filter(has_text=scene.due.name)
    await expect(urgent).to_contain_text("Caso urgente")

    later = (scene.tomorrow.starts_at + timedelta(days=2)).astimezone(settings.tz).date()
    await page.get_by_label(f"Seleziona: {scene.tomorrow.name}").check()
    await click_label_of(page, page.get_by_label("Spostale in un altro giorno", exact=False))
    await page.get_by_label("Giorno", exact=True).fill(later.isoformat())
    await page.get_by_role("button", name="Applica alle prenotazioni selezionate").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Prenotazioni spostate")
    to_phone = page.get_by_role("region", name="Telefona a queste persone", exact=False)
    await expect(to_phone).to_contain_text(scene.tomorrow.name)
    await expect(to_phone).to_contain_text("+39 333 123 4503")
    async with database.transaction() as session:
        moved = await session.scalar(
            select(Booking).where(Booking.moved_from_id == scene.tomorrow.booking_id)
        )
    assert moved is not None
    assert moved.starts_at.astimezone(settings.tz).date() == later

    await page.get_by_role("link", name="Torna alle prenotazioni").click()
    await page.get_by_label(f"Seleziona: {scene.due.name}").check()
    await click_label_of(page, page.get_by_label("Annullale, spiegando ai cittadini il motivo"))
    await page.get_by_label("Messaggio ai cittadini").fill("Sportello chiuso per un guasto.")
    await page.get_by_role("button", name="Applica alle prenotazioni selezionate").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Prenotazioni annullate")
    await expect(page.get_by_role("main")).to_contain_text(scene.due.name)
    async with database.transaction() as session:
        state = await session.scalar(
            select(Booking.state).where(Booking.id == scene.due.booking_id)
        )
    assert state == BookingState.CANCELLED_BY_STAFF.value
