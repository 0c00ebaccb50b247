"""The exports page in a real browser: reached from the menu, a period applied, a file
downloaded, and no axe-core violation (WCAG 2.1 A/AA) with or without an error."""

from __future__ import annotations

from playwright.async_api import Page, expect

from shared.db import Database
from tests.dashboard.browser.conftest import axe_violations, describe, open_menu, sign_in
from tests.shared.figures.dataset import build


async def test_the_exports_page_is_accessible(page: Page, database: Database) -> None:
    async with database.transaction() as session:
        await build(session)
    await sign_in(page, "coordinatore")
    await open_menu(page, "Esportazioni")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Esportazioni")
    await page.get_by_label("Dal giorno").fill("2027-01-01")
    await page.get_by_role("button", name="Applica il periodo").click()
    link = page.get_by_role("link", name="Scarica XLSX — Casi")
    await expect(link).to_have_attribute("href", "/exports/cases.xlsx?from=2027-01-01")
    violations = await axe_violations(page)
    assert violations == [], describe(violations)
    async with page.expect_download() as download:
        await link.click()
    assert (await download.value).suggested_filename.startswith("cases-")
    await page.goto(page.url.split("/exports")[0] + "/exports?from=31/02/2027")
    await expect(page.get_by_text("Scrivi una data come 31/12/2026.")).to_be_visible()
    violations = await axe_violations(page)
    assert violations == [], describe(violations)
