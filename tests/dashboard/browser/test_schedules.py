"""Schedules in a real browser: close a day that has a booking, then move that booking."""

from __future__ import annotations

import re
from datetime import datetime

from playwright.async_api import Page, expect
from sqlalchemy import select

from shared.booking.models import Booking, BookingState
from shared.db import Database
from shared.settings import Settings
from tests.dashboard.browser.conftest import HELPDESK, Scene, click_label_of, open_menu, sign_in


async def test_closing_a_day_leads_to_moving_its_booking(
    page: Page, scene: Scene, database: Database, settings: Settings
) -> None:
    closed_day = scene.tomorrow.starts_at.astimezone(settings.tz).date()
    await sign_in(page, "coordinatore")
    await open_menu(page, "Sportelli e orari")
    await page.get_by_role(
        "link", name=re.compile(rf"^Chiusure e aperture straordinarie\W+{HELPDESK}")
    ).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(HELPDESK)

    closing = page.get_by_role("form", name="Chiudi un giorno o alcune ore")
    await closing.get_by_label("Giorno").fill(closed_day.isoformat())
    await closing.get_by_label("Motivo").fill("Formazione del personale")
    await closing.get_by_role("button", name="Chiudi lo sportello in questi giorni").click()

    # The closure's page lists the booking that falls inside it.
    await expect(page).to_have_url(re.compile(r"/schedules/closures/\d+\?notice=closure_affects"))
    await expect(page.get_by_role("status")).to_contain_text("Chiusura aggiunta")
    affected = page.get_by_role("table", name="Prenotazioni da spostare o annullare")
    row = affected.get_by_role("row").filter(has_text=scene.tomorrow.name)
    await expect(row).to_contain_text(scene.tomorrow.code)
    await row.get_by_role("link", name="Sposta").click()

    # Move it to the first free time offered (never on the closed day).
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sposta una prenotazione")
    first = page.get_by_role("radio").first
    await click_label_of(page, first)
    await expect(first).to_be_checked()
    chosen = await first.get_attribute("value")
    assert chosen is not None
    await page.get_by_role("button", name="Sposta la prenotazione all’orario scelto").click()

    # Back on the closure's page: nothing is left to move.
    await expect(page).to_have_url(re.compile(r"/schedules/closures/\d+\?notice=moved_call"))
    await expect(page.get_by_role("status").first).to_contain_text("Prenotazione spostata")
    await expect(page.get_by_text(scene.tomorrow.code)).to_have_count(0)
    await expect(page.get_by_role("table")).to_have_count(0)
    await expect(page.get_by_role("main")).to_contain_text(
        "Non resta nessuna prenotazione da spostare o annullare."
    )
    async with database.transaction() as session:
        bookings = list(
            await session.scalars(
                select(Booking)
                .where(Booking.citizen_id == scene.tomorrow.citizen_id)
                .order_by(Booking.id)
            )
        )
    assert [b.state for b in bookings] == [
        BookingState.CANCELLED_BY_STAFF.value,
        BookingState.BOOKED.value,
    ]
    assert bookings[1].starts_at == datetime.fromisoformat(chosen)
    assert bookings[1].starts_at.astimezone(settings.tz).date() != closed_day
