"""The figures page in a real browser: reached from the menu, filtered, no axe-core
violation (WCAG 2.1 A/AA), nothing the Content-Security-Policy refuses (the `page`
fixture fails on any), and the charts drawn and named in print too."""

from __future__ import annotations

from playwright.async_api import Page, expect

from shared.db import Database
from tests.dashboard.browser.conftest import axe_violations, describe, open_menu, sign_in
from tests.shared.figures.dataset import build


async def test_the_figures_page_is_accessible(page: Page, database: Database) -> None:
    async with database.transaction() as session:
        await build(session)
    await sign_in(page, "coordinatore")
    await open_menu(page, "Statistiche")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Statistiche")
    await page.get_by_label("Dal giorno").fill("2027-01-01")
    await page.get_by_label("Al giorno (compreso)").fill("2027-03-10")
    await page.get_by_role("button", name="Mostra").click()
    await expect(page.get_by_role("img", name="Il percorso, fase per fase")).to_be_visible()
    for name in ("Dove si interrompe il questionario", "Appuntamenti per sportello e settimana",
                 "Interventi per tipo e stato", "Risorse per fondo", "Esiti alla chiusura"):  # fmt: skip
        await expect(page.get_by_role("img", name=name)).to_be_visible()
    funnel = page.get_by_role("table", name="Il percorso, fase per fase")
    await expect(funnel.get_by_role("row").filter(has_text="Iniziati")).to_contain_text("12")
    # pygal's stylesheet arrived from our own address: the bars are coloured, not black.
    fill = await page.locator("#chart-funnel .color-0 rect").first.evaluate(
        "element => getComputedStyle(element).fill"
    )
    assert fill == "rgb(0, 102, 204)"
    violations = await axe_violations(page)
    assert violations == [], describe(violations)
    await page.emulate_media(media="print")
    await expect(page.get_by_role("img", name="Risorse per fondo")).to_be_visible()
    violations = await axe_violations(page)
    assert violations == [], describe(violations)
