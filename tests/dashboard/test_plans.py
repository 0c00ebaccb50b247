"""The plan over HTTP: start, add rows without JavaScript, save, errors kept, the whole
lifecycle by a case worker and a coordinator, the queue, and who may do what."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import httpx
import pytest
from fpdf import FPDF
from pypdf import PdfReader
from sqlalchemy import select, update

from shared.cases import access
from shared.cases.models import Case
from shared.db import Database, utcnow
from shared.funds import service as funds
from shared.plans import catalog, scans
from shared.plans import service as plans
from shared.plans.models import Plan
from shared.settings import Settings
from shared.staff.models import Role, StaffUser
from tests.dashboard.conftest import csrf_from, login
from tests.factories import ROME
from tests.shared.plans.builders import (
    admitted_case,
    complete_input,
    job_search,
    make_fund,
    plan_with,
)


async def _case_of(database: Database, settings: Settings, username: str) -> tuple[int, int]:
    """An admitted case of `username` (a case worker), and a fund with 5.000 €."""
    async with database.transaction() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == username))
        assert user is not None
        staff = access.StaffMember(user.id, Role(user.role), f"staff:{username}")
        case = await admitted_case(session, settings, staff, name="Giuseppina Fumagalli")
        fund = await make_fund(session, cents=5_000_00)
        return case.id, fund.id


def _form(html: str) -> dict[str, str]:
    """The editor's inputs as the browser would send them (text and hidden inputs)."""
    found = {}
    for tag in re.findall(r"<input [^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        if name and (kind is None or kind[1] not in ("checkbox", "radio")):
            found[name[1]] = value[1] if value else ""
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        found[name] = body
    return found


async def test_a_case_worker_builds_a_plan_and_a_coordinator_approves_it(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    case_id, fund_id = await _case_of(database, settings, "operatore")
    await login(client, "operatore")
    page = await client.get(f"/cases/{case_id}/plan")
    assert page.status_code == 200
    assert "Avvia il piano" in page.text
    started = await client.post(
        f"/cases/{case_id}/plan/start", data={"csrf_token": csrf_from(page.text)}
    )
    assert started.status_code == 303
    page = await client.get(f"/cases/{case_id}/plan")
    assert "Storia lavorativa" in page.text  # the summary starts from the interview

    # "Add" buttons bring the form back with one more row; nothing is saved.
    form = _form(page.text) | {"add": "support:emergency_support"}
    page = await client.post(f"/cases/{case_id}/plan", data=form)
    assert page.status_code == 200
    assert 'name="support-0.monthly_amount"' in page.text
    form = _form(page.text) | {"add": "objective"}
    page = await client.post(f"/cases/{case_id}/plan", data=form)
    assert 'name="objective-0.objective"' in page.text

    form = _form(page.text) | {
        "objective-0.objective": "Pagare l'affitto arretrato",
        "support-0.responsible": "org:farsi_prossimo",
        "support-0.starts_on": "04/01/2027",
        "support-0.ends_on": "31/03/2027",
        "support-0.fund_id": str(fund_id),
        "support-0.form": "monthly",
        "support-0.monthly_amount": "tre",
        "support-0.months": "3",
        "support-0.paid_to": "landlord",
    }
    refused = await client.post(f"/cases/{case_id}/plan", data=form)
    assert refused.status_code == 400
    assert "Scrivi un importo in euro" in refused.text
    assert "Pagare l&#39;affitto arretrato" in refused.text  # what was typed is kept

    form["support-0.monthly_amount"] = "450,50"
    saved = await client.post(f"/cases/{case_id}/plan", data=form)
    assert saved.status_code == 303
    page = await client.get(saved.headers["location"])
    assert "450,50" in page.text
    submitted = await client.post(
        f"/cases/{case_id}/plan/submit", data={"csrf_token": csrf_from(page.text)}
    )
    assert submitted.status_code == 303
    page = await client.get(f"/cases/{case_id}/plan")
    # A case worker may not approve: no button, and the route refuses.
    assert "/plan/approve" not in page.text
    refused = await client.post(
        f"/cases/{case_id}/plan/approve", data={"csrf_token": csrf_from(page.text)}
    )
    assert refused.status_code == 403

    await client.post("/logout", data={"csrf_token": csrf_from(page.text)})
    await login(client, "coordinatore")
    queue = await client.get("/plans")
    assert "Giuseppina Fumagalli" in queue.text
    assert "1.351,50\xa0€" in queue.text
    page = await client.get(f"/cases/{case_id}/plan")
    approved = await client.post(
        f"/cases/{case_id}/plan/approve", data={"csrf_token": csrf_from(page.text)}
    )
    assert approved.status_code == 303
    async with database.transaction() as session:
        [balance] = await funds.balances(session=session)
        assert balance.committed_cents == 3 * 450_50
        plan = await session.scalar(select(Plan).where(Plan.case_id == case_id))
        assert plan is not None and plan.state == "approved"

    page = await client.get(f"/cases/{case_id}/plan")
    # The coordinator reaches the payments of the support with money from the plan.
    [payments] = re.findall(r'href="(/plans/supports/\d+/payments)"', page.text)
    assert (await client.get(payments)).status_code == 200
    # Approved just now, on the real clock: signed today (in Rome).
    today = utcnow().astimezone(ROME).date().isoformat()
    signed = await client.post(
        f"/cases/{case_id}/plan/sign",
        data={"csrf_token": csrf_from(page.text), "signed_on": today},
    )
    assert signed.status_code == 303
    page = await client.get(signed.headers["location"])
    assert "Firma registrata" in page.text

    # The case's timeline tells the plan's story (reads stay in the audit log only).
    timeline = (await client.get(f"/cases/{case_id}")).text
    for step in ("Piano avviato", "Piano inviato per l&#39;approvazione", "Piano approvato",
                 "Piano firmato: attivo"):  # fmt: skip
        assert step in timeline

    printed = await client.get(f"/cases/{case_id}/plan.pdf")
    assert printed.status_code == 200
    assert printed.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(printed.content)).pages)
    assert "Giuseppina Fumagalli" in text
    assert "Supporto economico d'emergenza" in text
    assert "1.351,50 €" in text.replace("\xa0", " ")


async def test_a_plan_that_does_not_fit_its_fund_names_it(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    case_id, fund_id = await _case_of(database, settings, "operatore")
    async with database.transaction() as session:
        small = await make_fund(session, cents=100_00, name="Banco dell'energia")
    await login(client, "operatore")
    page = await client.get(f"/cases/{case_id}/plan")
    await client.post(f"/cases/{case_id}/plan/start", data={"csrf_token": csrf_from(page.text)})
    # Submitting the empty draft is refused, and it stays a draft.
    refused = await client.post(
        f"/cases/{case_id}/plan/submit", data={"csrf_token": csrf_from(page.text)}
    )
    assert refused.status_code == 400
    async with database.transaction() as session:
        draft = await session.scalar(select(Plan).where(Plan.case_id == case_id))
        assert draft is not None and (draft.state, draft.submitted_at) == ("draft", None)
    page = await client.get(f"/cases/{case_id}/plan")
    page = await client.post(
        f"/cases/{case_id}/plan",
        data=_form(page.text) | {"add": "support:emergency_support"},
    )
    form = _form(page.text) | {"add": "objective"}
    page = await client.post(f"/cases/{case_id}/plan", data=form)
    form = _form(page.text) | {
        "objective-0.objective": "Pagare le bollette",
        "support-0.responsible": "org:farsi_prossimo",
        "support-0.starts_on": "04/01/2027", "support-0.ends_on": "31/01/2027",
        "support-0.fund_id": str(small.id), "support-0.form": "one_off",
        "support-0.one_off_amount": "300", "support-0.paid_to": "utility",
    }  # fmt: skip
    assert (await client.post(f"/cases/{case_id}/plan", data=form)).status_code == 303
    page = await client.get(f"/cases/{case_id}/plan")
    await client.post(f"/cases/{case_id}/plan/submit", data={"csrf_token": csrf_from(page.text)})
    await client.post("/logout", data={"csrf_token": csrf_from(page.text)})
    await login(client, "coordinatore")
    page = await client.get(f"/cases/{case_id}/plan")
    refused = await client.post(
        f"/cases/{case_id}/plan/approve", data={"csrf_token": csrf_from(page.text)}
    )
    assert refused.status_code == 409
    assert "Il fondo “Banco dell&#39;energia” ha 100,00\xa0€" in refused.text
    # "Nothing was changed" holds: the refused approval kept nothing it had begun.
    async with database.transaction() as session:
        plan = await session.scalar(select(Plan).where(Plan.case_id == case_id))
        assert plan is not None
        assert (plan.state, plan.approved_at) == ("submitted", None)
        assert all(b.committed_cents == 0 for b in await funds.balances(session=session))
    assert fund_id


@pytest.mark.parametrize("path", ["/cases/{id}/plan", "/plans"])
async def test_an_admin_sees_no_plan(
    client: httpx.AsyncClient, database: Database, settings: Settings, path: str
) -> None:
    case_id, _fund = await _case_of(database, settings, "operatore")
    await login(client, "admin")
    assert (await client.get(path.format(id=case_id))).status_code == 403


# --- the signed scan ---------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


def _pdf_bytes() -> bytes:
    document = FPDF()
    document.add_page()
    return bytes(document.output())


async def _approved_plan(database: Database, settings: Settings) -> int:
    """An approved plan of the case worker `operatore`'s case, with nothing to pay."""
    async with database.transaction() as session:
        worker = await session.scalar(select(StaffUser).where(StaffUser.username == "operatore"))
        boss = await session.scalar(select(StaffUser).where(StaffUser.username == "coordinatore"))
        assert worker is not None and boss is not None
        staff = access.StaffMember(worker.id, Role.OPERATORE, "staff:operatore")
        case = await admitted_case(session, settings, staff, name="Giuseppina Fumagalli")
        await plan_with(session, settings, staff, case, complete_input(job_search()))
        now = utcnow()
        await plans.submit_plan(session=session, case_id=case.id, staff=staff, now=now)
        coordinator = access.StaffMember(boss.id, Role.COORDINATORE, "staff:coordinatore")
        await plans.approve_plan(session=session, case_id=case.id, staff=coordinator, now=now)
        return case.id


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"MZ\x90\x00 not a scan at all", "deve essere un file PDF, JPEG o PNG"),
        (b"%PDF-" + b"0" * (scans.MAX_SCAN_BYTES + 1), "troppo grande"),
    ],
)
async def test_a_wrong_or_oversized_scan_leaves_the_plan_unsigned(
    client: httpx.AsyncClient, database: Database, settings: Settings, content: bytes,
    problem: str,
) -> None:  # fmt: skip
    case_id = await _approved_plan(database, settings)
    await login(client, "operatore")
    page = await client.get(f"/cases/{case_id}/plan")
    today = utcnow().astimezone(ROME).date().isoformat()
    refused = await client.post(
        f"/cases/{case_id}/plan/sign",
        data={"csrf_token": csrf_from(page.text), "signed_on": today},
        files={"scan": ("firmato.pdf", content, "application/pdf")},
    )
    assert refused.status_code == 400
    assert problem in refused.text
    async with database.transaction() as session:
        plan = await session.scalar(select(Plan).where(Plan.case_id == case_id))
        assert plan is not None and (plan.state, plan.signed_on) == ("approved", None)


async def test_a_scan_is_kept_with_the_signature_and_served_only_for_its_case(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    case_id = await _approved_plan(database, settings)
    other_case = await _approved_plan(database, settings)
    await login(client, "operatore")
    page = await client.get(f"/cases/{case_id}/plan")
    today = utcnow().astimezone(ROME).date().isoformat()
    signed = await client.post(
        f"/cases/{case_id}/plan/sign",
        data={"csrf_token": csrf_from(page.text), "signed_on": today},
        files={"scan": ("IMG_0001.JPG", _pdf_bytes(), "image/jpeg")},  # a PDF, whatever it says
    )
    assert signed.status_code == 303
    page = await client.get(f"/cases/{case_id}/plan")
    [link] = re.findall(rf"/cases/{case_id}/plan/scans/(\d+)", page.text)
    scan = await client.get(f"/cases/{case_id}/plan/scans/{link}")
    assert scan.status_code == 200
    assert scan.headers["content-type"] == "application/pdf"
    assert scan.content.startswith(b"%PDF-")
    assert "attachment" in scan.headers["content-disposition"]
    # Another case's address never serves it.
    assert (await client.get(f"/cases/{other_case}/plan/scans/{link}")).status_code == 404
    more = await client.post(
        f"/cases/{case_id}/plan/scans",
        data={"csrf_token": csrf_from(page.text)},
        files={"scan": ("scan.png", PNG, "image/png")},
    )
    assert more.status_code == 303
    page = await client.get(f"/cases/{case_id}/plan")
    assert len(re.findall(rf"/cases/{case_id}/plan/scans/\d+", page.text)) == 2


async def test_the_plan_is_dated_on_the_programs_day_not_utcs(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    """Changed at 00:30 in Rome on 2 December (23:30 UTC on the 1st): dated 2 December, on
    the page (editor and printed view) and on the PDF."""
    case_id, _fund = await _case_of(database, settings, "operatore")
    async with database.transaction() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == "operatore"))
        assert user is not None
        staff = access.StaffMember(user.id, Role(user.role), "staff:operatore")
        case = await session.get(Case, case_id)
        assert case is not None
        plan = await plan_with(session, settings, staff, case, complete_input(job_search()))
        late = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
        await session.execute(update(Plan).where(Plan.id == plan.id).values(updated_at=late))
    await login(client, "operatore")
    page = await client.get(f"/cases/{case_id}/plan")
    assert "Versione 1 del 2 dicembre 2026" in page.text
    async with database.transaction() as session:
        await session.execute(update(Plan).where(Plan.id == plan.id).values(state="submitted"))
    page = await client.get(f"/cases/{case_id}/plan")
    assert "Versione 1 del 2 dicembre 2026" in page.text
    assert 'name="summary"' not in page.text  # the printed view, not the editor
    pdf = await client.get(f"/cases/{case_id}/plan.pdf")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "2 dicembre 2026" in text and "1 dicembre 2026" not in text


async def test_every_field_of_every_support_has_a_name_of_its_own(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    """No two controls of the editor share a name (radio buttons of one group aside): a
    detail named like one of the support's own fields (the microcredit's "kind") would be
    sent twice, and its value read as the other's."""
    case_id, _fund_id = await _case_of(database, settings, "operatore")
    await login(client, "operatore")
    page = await client.get(f"/cases/{case_id}/plan")
    await client.post(f"/cases/{case_id}/plan/start", data={"csrf_token": csrf_from(page.text)})
    page = await client.get(f"/cases/{case_id}/plan")
    for kind in catalog.kinds():
        form = _form(page.text) | {"add": f"support:{kind.value}"}
        page = await client.post(f"/cases/{case_id}/plan", data=form)
        assert page.status_code == 200, kind
    [editor] = re.findall(
        rf'<form [^>]*action="/cases/{case_id}/plan"[^>]*>(.*?)</form>', page.text, re.S
    )
    controls: list[str] = []
    for tag in re.findall(r"<(?:input|select|textarea) [^>]*>", editor):
        name = re.search(r'name="([^"]+)"', tag)
        grouped = re.search(r'type="(radio|checkbox)"', tag)
        if name and not (grouped and name[1] in controls):
            controls.append(name[1])
    shared = sorted({n for n in controls if controls.count(n) > 1})
    assert shared == [], shared
