"""axe-core on the main pages, with data on them, each seen by a role that uses it.

WCAG 2.1 A and AA, no rule disabled: any violation fails the test, with every page's
findings listed at once. Besides axe: exactly one h1 per page, a page title, and reflow
(WCAG 1.4.10): 320 CSS pixels wide, nothing but a wide table (in its own scrolling box)
scrolls sideways, and the main menu is still there.
The data are the demo's helpdesks and candidates (`shared.booking.demo`, `shared.cases.demo`)
plus the `Scene` of the flow tests and a few more records, so the pages show bookings in
several states, cases with interviews and outcomes, duplicate warnings, eligible and
not eligible intakes, hours in force, ended and to come, closures and extra openings, and
a filled audit log; each scanned page is first checked to show its part of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from shared.booking import demo as booking_demo
from shared.booking import hours
from shared.cases import demo as case_demo
from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.db import Database, utcnow
from shared.funds import service as fund_service
from shared.funds.models import Payee, PaymentMethod
from shared.plans import service as plans
from shared.plans.models import PlanSupport
from shared.settings import Settings
from shared.staff.models import StaffUser
from tests.dashboard.browser.conftest import (
    HELPDESK,
    STAFF_ACTOR,
    Scene,
    axe_violations,
    click_label_of,
    describe,
    make_scene,
    register,
    sign_in,
)
from tests.shared.cases.builders import NOW, member
from tests.shared.plans.builders import (
    admitted_case,
    complete_input,
    emergency,
    make_fund,
    plan_with,
)

REFLOW_WIDTH = 320


@dataclass
class Data:
    """Ids of the records the scanned pages show."""

    scene: Scene
    cases: dict[str, int]
    not_eligible_citizen: int
    unbooked_citizen: int
    closure_id: int
    staff: dict[str, int]


@dataclass
class Scan:
    """Visit pages and collect what axe (and the heading and title checks) find on each."""

    page: Page
    found: dict[str, Any] = field(default_factory=dict)

    async def visit(self, path: str, shows: str = "", status: int = 200) -> None:
        """Open `path`, make sure it shows what it should (`shows`), and scan it."""
        response = await self.page.goto(path)
        assert response is not None
        assert response.status == status, f"{path}: HTTP {response.status}"
        if shows:
            await expect(self.page.get_by_role("main")).to_contain_text(shows)
        await self.check(path)

    async def check(self, label: str) -> None:
        violations = await axe_violations(self.page)
        if violations:
            self.found[label] = violations
        headings = await self.page.get_by_role("heading", level=1).count()
        if headings != 1:
            self.found[f"{label} (headings)"] = f"{headings} h1 elements"
        title = await self.page.title()
        if not title.endswith(" · Ripartire") or title.startswith(" · "):
            self.found[f"{label} (title)"] = title
        if problem := await self._reflow_problem():
            self.found[f"{label} (reflow)"] = problem

    async def _reflow_problem(self) -> str | None:
        size = self.page.viewport_size
        assert size is not None
        await self.page.set_viewport_size({"width": REFLOW_WIDTH, "height": size["height"]})
        try:
            width = await self.page.evaluate("document.documentElement.scrollWidth")
            menu = self.page.get_by_role("navigation", name="Menu principale").get_by_role("link")
            hidden = [
                await link.inner_text() for link in await menu.all() if not await link.is_visible()
            ]
        finally:
            await self.page.set_viewport_size(size)
        if width > REFLOW_WIDTH:
            return f"the page is {width} px wide at {REFLOW_WIDTH} px"
        if hidden:
            return f"menu links hidden at {REFLOW_WIDTH} px: {hidden}"
        return None

    def assert_clean(self) -> None:
        report = "\n".join(
            f"{label}: {describe(v) if isinstance(v, list) else v}"
            for label, v in self.found.items()
        )
        assert self.found == {}, f"accessibility problems on {len(self.found)} pages:\n{report}"


async def _make_data(database: Database, settings: Settings) -> Data:
    now = utcnow()
    async with database.transaction() as session:
        await booking_demo.seed(session=session, settings=settings, now=now)
        await case_demo.seed(session=session, settings=settings, now=now)
    scene = await make_scene(database, settings)
    async with database.transaction() as session:
        # A second record with Maria Rossi's phone: her case warns of a possible duplicate.
        maria = await session.get(Citizen, scene.due.citizen_id)
        assert maria is not None
        session.add(Citizen(channel="phone", name="Maria Rossi", phone=maria.phone))
        refused = await register(
            session, settings, name="Pietro Sala", phone="333 123 4510", resident=False
        )
        waiting = await register(session, settings, name="Elisa Riva", phone="333 123 4511")
        closure, affected = await hours.add_closure(
            session=session,
            settings=settings,
            helpdesk_id=scene.helpdesk_id,
            day=scene.tomorrow.starts_at.astimezone(settings.tz).date(),
            starts_at=time(11),
            ends_at=time(14),
            reason="Formazione del personale",
            actor=STAFF_ACTOR,
        )
        assert affected
        await hours.add_extra_opening(
            session=session,
            helpdesk_id=scene.helpdesk_id,
            day=scene.today + timedelta(days=3),
            opens_at=time(23),
            closes_at=time(23, 30),
            slot_minutes=30,
            places=1,
            note="Apertura serale",
            actor=STAFF_ACTOR,
        )
        # Late-evening hours on two days: ended, and not yet in force (each has its badge).
        for weekday, first, last in (
            (0, scene.today - timedelta(days=30), scene.today - timedelta(days=1)),
            (1, scene.today + timedelta(days=10), None),
        ):
            await hours.add_opening_rule(
                session=session, helpdesk_id=scene.helpdesk_id, weekday=weekday,
                opens_at=time(23), closes_at=time(23, 30), slot_minutes=30, places=1,
                valid_from=first, valid_until=last, actor=STAFF_ACTOR,
            )  # fmt: skip
        rows = await session.execute(select(Citizen.name, Case.id).join(Case).order_by(Case.id))
        cases = {name: case_id for name, case_id in rows.all() if name}
        staff = dict((await session.execute(select(StaffUser.username, StaffUser.id))).all())
    return Data(scene, cases, refused.citizen.id, waiting.citizen.id, closure.id, staff)


@pytest.fixture
async def data(live_server: str, database: Database, settings: Settings) -> Data:
    return await _make_data(database, settings)


@dataclass
class Funds:
    fund_id: int
    support_id: int
    # The plans the money is for: one approved (its support paid in part), one submitted.
    approved_case: int
    submitted_case: int


@pytest.fixture
async def funds(data: Data, database: Database, settings: Settings) -> Funds:
    """A fund with a deposit, an approved plan's commitment and a payment, and a plan
    waiting for approval that asks for more than is left (the list warns)."""
    async with database.transaction() as session:
        boss = await session.scalar(select(StaffUser).where(StaffUser.username == "coordinatore"))
        assert boss is not None
        staff = member(boss)
        fund = await make_fund(session, cents=1_500_00)
        support_ids, case_ids = [], []
        for name in ("Lucia Verdi", "Sara Neri"):
            case = await admitted_case(session, settings, staff, name=name)
            case_ids.append(case.id)
            made = await plan_with(
                session, settings, staff, case, complete_input(emergency(fund_id=fund.id))
            )
            await plans.submit_plan(session=session, case_id=case.id, staff=staff, now=NOW)
            support_ids.append(
                await session.scalar(select(PlanSupport.id).where(PlanSupport.plan_id == made.id))
            )
            if len(support_ids) == 1:
                await plans.approve_plan(session=session, case_id=case.id, staff=staff, now=NOW)
                await fund_service.record_payment(
                    session=session, fund_id=fund.id, support_id=support_ids[0], plan_id=made.id,
                    amount_cents=300_00, paid_on=utcnow().date(), paid_to=Payee.LANDLORD,
                    method=PaymentMethod.BANK_TRANSFER, actor=staff.actor, note="Affitto",
                )  # fmt: skip
    assert support_ids[0] is not None
    return Funds(fund.id, support_ids[0], case_ids[0], case_ids[1])


async def test_coordinator_pages_have_no_violations(page: Page, data: Data, funds: Funds) -> None:
    scan = Scan(page)
    scene = data.scene
    await sign_in(page, "coordinatore")
    await scan.check("/agenda (after sign-in)")
    await scan.visit(f"/agenda?view=week&day={scene.today.isoformat()}", shows=scene.tomorrow.code)
    day = f"/agenda?view=day&day={scene.today.isoformat()}&helpdesk={scene.helpdesk_id}"
    await scan.visit(day, shows=scene.due.code)
    # The row updated in place after a check-in (htmx), with its message.
    row = page.get_by_role("row").filter(has_text=scene.due.name)
    await row.get_by_role("button", name="Registra presenza").click()
    await expect(row.get_by_role("status")).to_be_visible()
    await scan.check("/agenda (after an htmx check-in)")
    await scan.visit(f"/agenda/bookings/{scene.tomorrow.booking_id}/move", shows="Orari liberi")
    await scan.visit(f"/agenda/bookings/{scene.tomorrow.booking_id}/cancel", shows="Annulla")

    await scan.visit("/cases?q=Ricci", shows="Paolo Ricci")
    await scan.visit("/cases?q=Rossi&urgent=yes", shows=scene.due.name)
    await scan.visit("/cases?from=31-31-2026", status=400)
    await scan.visit(f"/cases/{scene.due.case_id}", shows="Possibile doppione")
    await scan.visit(f"/cases/{data.cases['Paolo Ricci']}", shows="Ammesso")
    referred = data.cases["Nicolò D'Amico"]
    await scan.visit(f"/cases/{referred}", shows="Inviato ad altro servizio")
    await scan.visit(f"/cases/{data.cases['Mario Bianchi']}", shows="Altri casi")
    await scan.visit(f"/cases/{scene.arrived.case_id}/interview", shows="Esito del colloquio")
    await page.get_by_text("Non ammesso", exact=True).click()
    await page.get_by_role("button", name="Registra l'esito").click()
    await expect(page.get_by_label("Motivo", exact=True)).to_have_attribute("aria-invalid", "true")
    await scan.check("interview form with errors")
    await scan.visit(f"/cases/{data.cases['Paolo Ricci']}/interview", shows="Ammesso")  # read only

    await scan.visit("/intake", shows="Questionario")
    await page.get_by_role("button", name="Registra e verifica l'idoneità").click()
    await expect(page.get_by_role("alert").first).to_be_visible()
    await scan.check("intake form with errors")
    await scan.visit(f"/intake/{data.unbooked_citizen}", shows="Orari liberi")
    await scan.visit(f"/intake/{scene.tomorrow.citizen_id}", shows=scene.tomorrow.code)
    await scan.visit(f"/intake/{data.not_eligible_citizen}", shows="Non idoneo.")

    hub = f"/schedules/helpdesks/{scene.helpdesk_id}"
    await scan.visit("/schedules", shows=HELPDESK)
    await scan.visit(hub, shows="Accetta prenotazioni")
    await scan.visit(f"{hub}/hours", shows="Non ancora in vigore")
    await scan.visit(f"{hub}/closures", shows="Apertura serale")
    await scan.visit(f"/schedules/closures/{data.closure_id}", shows=scene.tomorrow.code)
    await scan.visit(f"{hub}/stranded")

    await scan.visit("/plans", shows="Sara Neri")
    await scan.visit(f"/cases/{funds.submitted_case}/plan", shows="Restituisci con un commento")
    await scan.visit(f"/cases/{funds.approved_case}/plan", shows="Registra la firma")
    await scan.visit("/plans/reviews")
    await scan.visit("/funds", shows="Più del disponibile")
    await scan.visit(f"/funds/{funds.fund_id}", shows="Piano del caso")
    await scan.visit(f"/plans/supports/{funds.support_id}/payments", shows="Bonifico")
    await page.get_by_role("button", name="Registra il pagamento").click()
    await expect(page.get_by_label("Importo (€)")).to_have_attribute("aria-invalid", "true")
    await scan.check("payment form with errors")

    await scan.visit(f"/cases/{data.cases['Paolo Ricci']}/erase", shows="Che cosa viene cancellato")
    await page.get_by_role("button", name="Cancella i dati", exact=True).click()
    await scan.check("erasure not confirmed")
    await scan.visit("/audit?action=case.&since=2020-01-01", shows="Scheda del caso letta")
    await scan.visit("/password")
    await scan.visit("/cases/999999", status=404, shows="Pagina non trovata")
    scan.assert_clean()


async def test_operator_pages_have_no_violations(page: Page, data: Data, funds: Funds) -> None:
    scan = Scan(page)
    scene = data.scene
    await sign_in(page, "operatore")
    await scan.check("/agenda (after sign-in)")
    await scan.visit("/cases?assigned=me", shows="Giorgia Marino")
    await scan.visit(f"/cases/{scene.arrived.case_id}", shows="Prendi")  # unassigned
    await scan.visit(f"/cases/{data.cases['Giorgia Marino']}", shows="Commessa")  # a draft
    await scan.visit(f"/cases/{data.cases['Giorgia Marino']}/interview", shows="Salva bozza")
    # The plan editor, with its supports' fields, and after adding a row.
    await scan.visit(f"/cases/{funds.approved_case}/plan", shows="Salva il piano")
    await page.get_by_role("button", name="Aggiungi: Inserimento in tirocinio formativo").click()
    await expect(page.get_by_label("Soggetto ospitante", exact=True)).to_be_visible()
    await scan.check("plan editor with a new support")
    await scan.visit("/plans", shows="Lucia Verdi")
    await scan.visit("/schedules", status=403, shows="Non consentito")
    scan.assert_clean()


async def test_admin_pages_have_no_violations(page: Page, data: Data) -> None:
    scan = Scan(page)
    await sign_in(page, "admin")
    await scan.visit("/staff", shows="coordinatore")
    await scan.visit("/staff/new")
    await page.get_by_role("button", name="Crea l'account").click()
    await expect(page.get_by_role("alert").first).to_be_visible()
    await scan.check("new account form with errors")
    await scan.visit(f"/staff/{data.staff['operatore']}", shows="Disattiva l'account")
    await scan.visit(f"/staff/{data.staff['admin']}")  # one's own account
    scan.assert_clean()


async def test_bookings_board_has_no_violations(page: Page, data: Data) -> None:
    """The coordinators' board: filtered, its bulk form with an error, a bulk result."""
    scan = Scan(page)
    scene = data.scene
    await sign_in(page, "coordinatore")
    await scan.visit("/bookings", shows=scene.tomorrow.name)
    await scan.visit("/bookings?from=&urgent=yes", shows="Caso urgente")
    # An urgent citizen's booking: the page offering them an earlier place.
    await page.get_by_role("link", name="Offri un posto prima").first.click()
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await scan.check("offer an urgent citizen an earlier place")
    await scan.visit("/bookings?from=31/02/2026", status=400, shows="Scrivi una data")
    await page.goto("/bookings")
    await click_label_of(page, page.get_by_label("Annullale, spiegando ai cittadini il motivo"))
    await page.get_by_role("button", name="Applica alle prenotazioni selezionate").click()
    await expect(page.get_by_text("Seleziona almeno una prenotazione.")).to_be_visible()
    await scan.check("bookings board, bulk form with errors")
    await page.get_by_label(f"Seleziona: {scene.tomorrow.name}").check()
    await page.get_by_label("Messaggio ai cittadini").fill("Sportello chiuso per un guasto.")
    await page.get_by_role("button", name="Applica alle prenotazioni selezionate").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Prenotazioni annullate")
    await scan.check("bookings board, bulk result")
    scan.assert_clean()


async def test_requests_to_confirm_have_no_violations(
    page: Page, live_server: str, database: Database, settings: Settings
) -> None:
    """The coordinators' requests: the queue, an expired one, the decline form with errors."""
    from shared.booking import availability, moderation
    from shared.booking import service as booking
    from tests.dashboard.browser.conftest import open_every_day, register

    now = utcnow()
    async with database.transaction() as session:
        helpdesk = await open_every_day(session, settings, name="Sportello su conferma")
        await moderation.set_moderated(
            session=session, helpdesk_id=helpdesk.id, moderated=True, actor="staff:test"
        )
        free = await availability.list_free_slots(
            session=session, settings=settings, helpdesk_id=helpdesk.id, now=now
        )
        made = []
        for n, name in enumerate(("Anna Galli", "Paolo Sala", "Rita Fontana")):
            citizen = (
                await register(session, settings, name=name, phone=f"333 123 47{n:02}")
            ).citizen
            made.append(
                await booking.book_slot(
                    session=session,
                    settings=settings,
                    citizen_id=citizen.id,
                    helpdesk_id=helpdesk.id,
                    starts_at=free[24 + n].starts_at,
                    actor=f"citizen:{citizen.id}",
                    now=now,
                    by_citizen=True,
                )
            )
        made[-1].request_expires_at = now - timedelta(hours=1)
        await session.flush()
        await moderation.expire_requests(session=session, settings=settings, now=now)
    scan = Scan(page)
    await sign_in(page, "coordinatore")
    await scan.visit("/bookings/requests", shows="Anna Galli")
    await scan.visit("/bookings/requests?notice=not_pending", shows="Rita Fontana")
    await scan.visit(f"/bookings/{made[0].id}/decline", shows="Proponi un altro orario")
    await page.get_by_role("button", name="Rifiuta la richiesta").click()
    await expect(page.get_by_label("Motivo (lo leggerà il cittadino)")).to_have_attribute(
        "aria-invalid", "true"
    )
    await scan.check("decline form with errors")
    await scan.visit(f"/bookings/{made[2].id}/decline", shows="non è più in attesa")
    scan.assert_clean()
