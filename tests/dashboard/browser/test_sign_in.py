from __future__ import annotations

from playwright.async_api import Page

from tests.dashboard.browser.conftest import PASSWORD, axe_violations, describe, sign_in


async def test_sign_in_with_the_mouse(page: Page) -> None:
    await sign_in(page, "operatore")
    assert page.url.endswith("/agenda")


async def test_wrong_password_is_announced(page: Page) -> None:
    await sign_in(page, "operatore", "wrong password 123")
    alert = page.get_by_role("alert")
    assert "Nome utente o password errati" in await alert.inner_text()


async def test_keyboard_only_sign_in(page: Page) -> None:
    await page.goto("/login")
    # The first Tab reaches the skip link, which leads to the content.
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert "Vai al contenuto" in focused
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.name") == "username"
    await page.keyboard.type("coordinatore")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.name") == "password"
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/agenda")


async def test_login_page_has_no_accessibility_violations(page: Page) -> None:
    await page.goto("/login")
    violations = await axe_violations(page)
    assert violations == [], describe(violations)
    assert await page.title() == "Accedi · Ripartire"
