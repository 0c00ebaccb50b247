"""The interview in a real browser: open the case, fill some fields, record the outcome."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from shared.cases.models import Case, CaseState
from shared.db import Database
from tests.dashboard.browser.conftest import Scene, open_menu, sign_in


async def _case_state(database: Database, case_id: int) -> str:
    async with database.transaction() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        return case.state


async def _open_interview(page: Page, scene: Scene) -> None:
    """From the case list to the interview form of the citizen checked in today."""
    await sign_in(page, "operatore")
    await open_menu(page, "Casi")
    await page.get_by_role("link", name=scene.arrived.name).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(scene.arrived.name)
    await page.get_by_role("link", name="Inizia il colloquio").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Colloquio")
    # Prefilled from the pre-screening.
    await expect(page.get_by_label("Persone nel nucleo familiare")).to_have_value("3")
    await page.get_by_label("Ultimo lavoro o attività").fill("Magazziniere in un centro logistico")
    await page.get_by_label("Anni di esperienza lavorativa").fill("12")
    await page.get_by_label("Tipo di contratto").select_option(
        label="Dipendente a tempo determinato"
    )
    await page.get_by_label("Note libere").fill("Cerca lavoro nella logistica, anche su turni.")


async def test_interview_with_outcome_admitted(
    page: Page, scene: Scene, database: Database
) -> None:
    await _open_interview(page, scene)
    await (
        page.get_by_role("group", name="Esito del colloquio")
        .get_by_text("Ammesso", exact=True)
        .check()
    )
    await page.get_by_role("button", name="Registra l'esito").click()

    await expect(page).to_have_url(re.compile(rf"/cases/{scene.arrived.case_id}\?notice=outcome"))
    await expect(page.get_by_role("status")).to_have_text("Esito registrato.")
    interview = page.get_by_role("region", name="Colloquio")
    await expect(interview).to_contain_text("Ammesso")
    await expect(interview).to_contain_text("Magazziniere in un centro logistico")
    await expect(interview).to_contain_text("Dipendente a tempo determinato")
    assert await _case_state(database, scene.arrived.case_id) == CaseState.INTERVIEWED.value


async def test_not_admitted_needs_a_reason_and_keeps_the_input(
    page: Page, scene: Scene, database: Database
) -> None:
    await _open_interview(page, scene)
    await (
        page.get_by_role("group", name="Esito del colloquio")
        .get_by_text("Non ammesso", exact=True)
        .check()
    )
    await page.get_by_role("button", name="Registra l'esito").click()

    # The form comes back with the message next to the reason, and everything typed kept.
    await expect(page.get_by_role("alert").first).to_contain_text("Non è stato salvato nulla")
    reason = page.get_by_label("Motivo", exact=True)
    await expect(reason).to_have_accessible_description(
        re.compile("Scrivi perché la persona non è ammessa")
    )
    await expect(reason).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Ultimo lavoro o attività")).to_have_value(
        "Magazziniere in un centro logistico"
    )
    await expect(page.get_by_label("Anni di esperienza lavorativa")).to_have_value("12")
    await expect(page.get_by_label("Tipo di contratto")).to_have_value("fixed_term")
    await expect(page.get_by_label("Non ammesso", exact=True)).to_be_checked()
    assert await _case_state(database, scene.arrived.case_id) == CaseState.CHECKED_IN.value

    await reason.fill("Il contratto era già scaduto prima della crisi.")
    await page.get_by_role("button", name="Registra l'esito").click()
    await expect(page.get_by_role("status")).to_have_text("Esito registrato.")
    interview = page.get_by_role("region", name="Colloquio")
    await expect(interview).to_contain_text("Non ammesso")
    await expect(interview).to_contain_text("Il contratto era già scaduto prima della crisi.")
    assert await _case_state(database, scene.arrived.case_id) == CaseState.CLOSED.value
