"""The plan in a real browser: a case worker builds it with two supports and submits it, a
coordinator approves it from the queue, prints it, records the signature: it is active."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect
from sqlalchemy import select

from shared.cases import access
from shared.db import Database, utcnow
from shared.plans.models import Plan, PlanState
from shared.settings import Settings
from shared.staff.models import Role, StaffUser
from tests.dashboard.browser.conftest import sign_in
from tests.factories import ROME
from tests.shared.plans.builders import admitted_case, make_fund


async def _admitted(database: Database, settings: Settings) -> int:
    async with database.transaction() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == "operatore"))
        assert user is not None
        staff = access.StaffMember(user.id, Role.OPERATORE, "staff:operatore")
        case = await admitted_case(session, settings, staff, name="Rosa Brambilla")
        await make_fund(session, cents=20_000_00, name="Doniamo Energia")
        return case.id


async def _state(database: Database, case_id: int) -> str:
    async with database.transaction() as session:
        plan = await session.scalar(select(Plan).where(Plan.case_id == case_id))
        assert plan is not None
        return plan.state


async def test_build_submit_approve_print_and_sign_a_plan(
    page: Page, live_server: str, database: Database, settings: Settings
) -> None:
    case_id = await _admitted(database, settings)
    await sign_in(page, "operatore")
    await page.goto(f"/cases/{case_id}")
    await page.get_by_role("link", name="Piano di intervento").click()
    await page.get_by_role("button", name="Avvia il piano").click()
    await expect(page.get_by_role("status")).to_contain_text("Il piano è avviato")
    await expect(page.get_by_label("Sintesi della situazione")).to_contain_text("Storia lavorativa")

    # Rows are added without JavaScript: the form comes back with one more.
    await page.get_by_role("button", name="Aggiungi un obiettivo").click()
    await page.get_by_label("Obiettivo", exact=True).fill("Pagare l'affitto arretrato")
    await page.get_by_label("Risultato atteso").fill("Nessun arretrato entro marzo")
    await page.get_by_role("button", name="Aggiungi un impegno").click()
    await page.get_by_label("Che cosa farà il cittadino").fill("Portare il contratto d'affitto")
    await page.get_by_role("button", name="Aggiungi: Supporto economico d'emergenza").click()
    await page.get_by_role(
        "button", name="Aggiungi: Supporto nella ricerca attiva del lavoro"
    ).click()

    money = page.get_by_role("group", name="Supporto economico d'emergenza")
    await money.get_by_label("Responsabile").select_option(
        label="Associazione Farsi Prossimo Cernusco"
    )
    await money.get_by_label("Inizio").fill("04/01/2027")
    await money.get_by_label("Fine").fill("31/03/2027")
    await money.get_by_label("Fondo").select_option(label="Doniamo Energia")
    await money.get_by_label("Forma del sostegno").select_option(label="Mensile")
    await money.get_by_label("Importo mensile (€)").fill("450,50")
    await money.get_by_label("Numero di mesi").fill("3")
    await money.get_by_label("Pagato a", exact=True).select_option(
        label="Direttamente al proprietario di casa"
    )
    job = page.get_by_role("group", name="Supporto nella ricerca attiva del lavoro")
    await job.get_by_label("Responsabile").select_option(label="CS&L Consorzio sociale")
    await job.get_by_label("Inizio").fill("04/01/2027")
    await job.get_by_label("Fine").fill("30/06/2027")
    await job.get_by_text("Scrittura del curriculum").click()
    await page.get_by_role("button", name="Salva il piano").click()
    await expect(page.get_by_role("status")).to_have_text("Piano salvato.")
    await expect(money.get_by_label("Importo mensile (€)")).to_have_value("450,50")

    await page.get_by_role("button", name="Invia per l'approvazione").click()
    await expect(page.get_by_role("status")).to_contain_text("Piano inviato ai coordinatori")
    assert await _state(database, case_id) == PlanState.SUBMITTED.value
    await page.get_by_role("button", name="Esci").click()

    await sign_in(page, "coordinatore")
    await (
        page.get_by_role("navigation", name="Menu principale")
        .get_by_role("link", name="Piani", exact=True)
        .click()
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Piani in attesa di approvazione"
    )
    row = page.get_by_role("row").filter(has_text="Rosa Brambilla")
    await expect(row).to_contain_text("1.351,50")
    await row.get_by_role("link", name="Rosa Brambilla").click()
    await page.get_by_role("button", name="Approva").click()
    await expect(page.get_by_role("status")).to_contain_text("Piano approvato")

    printed = await page.request.get(f"{live_server}/cases/{case_id}/plan.pdf")
    assert printed.status == 200
    assert printed.headers["content-type"] == "application/pdf"
    assert (await printed.body()).startswith(b"%PDF-")

    today = utcnow().astimezone(ROME).date().isoformat()
    await page.get_by_label("Data della firma").fill(today)
    await page.get_by_role("button", name="Registra la firma").click()
    await expect(page.get_by_role("status")).to_have_text("Firma registrata: il piano è attivo.")
    await expect(page.locator("main")).to_contain_text(re.compile("Attivo"))
    assert await _state(database, case_id) == PlanState.ACTIVE.value
