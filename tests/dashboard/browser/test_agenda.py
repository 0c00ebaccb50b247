"""The agenda in a real browser: open a day, check a citizen in with the mouse or the keyboard."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from shared.booking import service as booking
from shared.booking.models import BookingState
from shared.db import Database
from tests.dashboard.browser.conftest import Scene, sign_in


async def _state(database: Database, booking_id: int) -> str:
    async with database.transaction() as session:
        return (await booking.get_booking(session=session, booking_id=booking_id)).state


async def test_check_in_from_the_agenda_of_the_day(
    page: Page, scene: Scene, database: Database
) -> None:
    await sign_in(page, "operatore")
    # Open the day of the booking through the agenda's own form.
    await page.get_by_label("Data").fill(scene.today.isoformat())
    await page.get_by_role("button", name="Mostra", exact=True).click()
    await expect(page).to_have_url(re.compile(rf"/agenda\?view=day&day={scene.today.isoformat()}"))

    row = page.get_by_role("row").filter(has_text=scene.due.name)
    await expect(row).to_contain_text(scene.due.code)
    await expect(row).to_contain_text("Prenotato")
    await row.get_by_role("button", name="Registra presenza").click()

    # The row is updated in place (htmx): the new state, and a message saying so.
    await expect(row.get_by_role("status")).to_have_text("Presenza registrata.")
    await expect(row).to_contain_text("Presente")
    await expect(row.get_by_role("button", name="Registra presenza")).to_have_count(0)
    assert await _state(database, scene.due.booking_id) == BookingState.ATTENDED.value

    # The full page, loaded again, shows the same.
    await page.reload()
    await expect(page.get_by_role("row").filter(has_text=scene.due.name)).to_contain_text(
        "Presente"
    )


async def test_check_in_with_the_keyboard_only(
    page: Page, scene: Scene, database: Database
) -> None:
    await sign_in(page, "operatore")
    assert page.url.endswith("/agenda")
    # Tab from the top of the page (skip link, header, menu, the agenda's filters) to the
    # check-in button of the citizen due now; the button names who and when.
    target = f"Registra presenza: {scene.due.name}"
    for _ in range(60):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent")
        if focused and target in " ".join(focused.split()):
            break
    else:
        raise AssertionError(f"Tab never reached the button {target!r}")
    await page.keyboard.press("Enter")

    row = page.get_by_role("row").filter(has_text=scene.due.name)
    await expect(row.get_by_role("status")).to_have_text("Presenza registrata.")
    await expect(row).to_contain_text("Presente")
    # The focus is not lost with the button that went away: it is on the row's message.
    await expect(row.get_by_role("status")).to_be_focused()
    assert await _state(database, scene.due.booking_id) == BookingState.ATTENDED.value


async def test_the_still_to_do_count_follows_htmx_check_ins(
    page: Page, scene: Scene, database: Database
) -> None:
    await sign_in(page, "operatore")
    await page.goto(f"/agenda?view=day&day={scene.today.isoformat()}")
    total = page.locator("#agenda-total")
    # Due now, and tomorrow's is another day: one still to do today.
    await expect(total).to_have_text(re.compile(r": 1$"))
    row = page.get_by_role("row").filter(has_text=scene.due.name)
    await row.get_by_role("button", name="Registra presenza").click()
    await expect(row.get_by_role("status")).to_have_text("Presenza registrata.")
    # Updated in place with the row (it stayed as it was until the page was loaded again).
    await expect(total).to_have_text(re.compile(r": 0$"))
    await page.reload()
    await expect(page.locator("#agenda-total")).to_have_text(re.compile(r": 0$"))


async def test_on_a_phone_the_actions_are_on_screen_without_scrolling_sideways(
    page: Page, scene: Scene
) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    await sign_in(page, "operatore")
    await page.goto(f"/agenda?view=day&day={scene.today.isoformat()}")
    row = page.get_by_role("row").filter(has_text=scene.due.name)
    for name in ("Registra presenza", "Assente"):
        button = row.get_by_role("button", name=name)
        await button.scroll_into_view_if_needed()
        box = await button.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)
    # Nothing on the page is wider than the screen, inside a scrolling box or not.
    wide = await page.evaluate(
        """() => [document.documentElement.scrollWidth,
                  ...[...document.querySelectorAll('.table-responsive')].map(e => e.scrollWidth)]"""
    )
    assert max(wide) <= 390, wide
