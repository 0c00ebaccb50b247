"""Funds over HTTP: create, deposit, the list's figures in Italian, the ledger, payments
against an intervention within and beyond what it committed, refusals that keep the form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from html import unescape
from html.parser import HTMLParser
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.cases.access import StaffMember
from shared.db import Database, utcnow
from shared.funds import service as funds
from shared.funds.models import Fund, FundMovement
from shared.plans import service as plans
from shared.plans.models import PlanSupport
from shared.settings import Settings
from shared.staff.models import StaffUser
from tests.dashboard.access.funds import EXPECTED
from tests.dashboard.conftest import csrf_from, login
from tests.dashboard.route_table import route_entries
from tests.factories import ROME
from tests.shared.cases.builders import NOW, member
from tests.shared.plans.builders import (
    admitted_case,
    complete_input,
    emergency,
    job_search,
    make_fund,
    plan_with,
)

NBSP = "\u00a0"
# Runs of ASCII white space: str.split() would also eat the no-break spaces of amounts.
SPACES = re.compile(r"[ \t\r\n]+")


def squeeze(text: str) -> str:
    return SPACES.sub(" ", text).strip()


def euros(text: str) -> str:
    """ "1.234,50" → "1.234,50 €" with the no-break space Babel puts before the sign."""
    return f"{text}{NBSP}€"


def _today() -> date:
    return utcnow().astimezone(ROME).date()


# --- reading the pages -----------------------------------------------------------------


class _Page(HTMLParser):
    """Form controls by id (attributes, textarea text, selected option), error texts by
    id, and table rows as lists of cell texts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: dict[str, dict[str, str]] = {}
        self.text: dict[str, str] = {}
        self.selected: dict[str, str] = {}
        self.rows: list[list[str]] = []
        self._in: str | None = None
        self._select: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "id" in found:
            self.attrs[found["id"]] = found
        if tag == "textarea" or (tag == "div" and found.get("id", "").startswith("e-")):
            self._in = found["id"]
            self.text[self._in] = ""
        if tag == "select":
            self._select = found.get("id")
        if tag == "option" and self._select and "selected" in found:
            self.selected[self._select] = found.get("value", "")
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("textarea", "div"):
            self._in = None
        if tag == "select":
            self._select = None
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(squeeze("".join(self._cell)))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.text[self._in] += data
        if self._cell is not None:
            self._cell.append(data)


def value(page: str, field: str) -> str:
    parsed = _Page(page)
    if f"f-{field}" in parsed.text:
        return parsed.text[f"f-{field}"]
    if f"f-{field}" in parsed.selected:
        return parsed.selected[f"f-{field}"]
    return parsed.attrs[f"f-{field}"].get("value", "")


def error(page: str, field: str) -> str:
    return squeeze(_Page(page).text.get(f"e-{field}", ""))


def row_of(page: str, text: str) -> list[str]:
    """The cells of the table row whose first cell contains `text`."""
    rows = [row for row in _Page(page).rows if row and text in row[0]]
    assert len(rows) == 1, f"{len(rows)} rows for {text!r}"
    return rows[0]


def main_text(page: str) -> str:
    found = re.search(r"<main[^>]*>(.*)</main>", page, re.S)
    assert found
    return squeeze(unescape(re.sub(r"<[^>]+>", " ", found.group(1))))


# --- the data --------------------------------------------------------------------------


async def _coordinator(session: AsyncSession) -> StaffMember:
    user = await session.scalar(select(StaffUser).where(StaffUser.username == "coordinatore"))
    assert user is not None
    return member(user)


@dataclass
class Plan:
    case_id: int
    support_id: int


async def _plan(
    database: Database,
    settings: Settings,
    fund_id: int | None,
    *,
    monthly: str = "300",
    approve: bool = False,
) -> Plan:
    """A submitted plan whose support takes `monthly` × 3 months from the fund (approved:
    that money committed)."""
    async with database.transaction() as session:
        boss = await _coordinator(session)
        case = await admitted_case(session, settings, boss)
        support = (
            emergency(fund_id=fund_id, monthly=monthly) if fund_id is not None else job_search()
        )
        plan = await plan_with(session, settings, boss, case, complete_input(support))
        await plans.submit_plan(session=session, case_id=case.id, staff=boss, now=NOW)
        if approve:
            await plans.approve_plan(session=session, case_id=case.id, staff=boss, now=NOW)
        support_id = await session.scalar(
            select(PlanSupport.id).where(PlanSupport.plan_id == plan.id)
        )
        assert support_id is not None
    return Plan(case.id, support_id)


async def _fund(database: Database, *, cents: int, name: str = "Doniamo Energia") -> int:
    async with database.transaction() as session:
        return (await make_fund(session, cents=cents, name=name)).id


async def _signed_in(client: httpx.AsyncClient, path: str = "/funds") -> tuple[str, str]:
    await login(client, "coordinatore")
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return csrf_from(page.text), page.text


# --- funds and deposits ----------------------------------------------------------------


async def test_a_coordinator_creates_a_fund_and_records_a_deposit(
    client: httpx.AsyncClient, database: Database
) -> None:
    token, page = await _signed_in(client)
    assert "Non ci sono ancora fondi." in page
    assert '<a class="nav-link text-white active fw-bold" href="/funds"' in page

    created = await client.post(
        "/funds",
        data={"csrf_token": token, "name": " Doniamo Energia ", "funder": "Fondazione Cariplo"},
    )
    assert created.status_code == 303
    location = created.headers["location"]
    assert re.fullmatch(r"/funds/\d+\?notice=fund_created", location)
    fund_path = location.split("?")[0]
    shown = await client.get(location)
    assert "Fondo creato." in shown.text
    assert "<h1" in shown.text and "Doniamo Energia" in shown.text

    deposited = await client.post(
        f"{fund_path}/deposits",
        data={"csrf_token": token, "amount": "1.234,50", "note": "Bonifico n. 17"},
    )
    assert deposited.status_code == 303
    assert deposited.headers["location"] == f"{fund_path}?notice=deposit"
    ledger = (await client.get(deposited.headers["location"])).text
    assert "Versamento registrato." in ledger
    [movement] = [row for row in _Page(ledger).rows if row and "Versamento" in row]
    assert movement[1:4] == ["Versamento", euros("1.234,50"), "Fondazione Cariplo"]
    assert "Bonifico n. 17" in movement[4]
    assert movement[5] == "coordinatore"

    listed = (await client.get("/funds")).text
    cells = row_of(listed, "Doniamo Energia")
    assert cells[1:] == [
        "Fondazione Cariplo",
        euros("1.234,50"),
        euros("0,00"),
        euros("0,00"),
        euros("1.234,50"),
        euros("0,00"),
    ]
    async with database.transaction() as session:
        actions = set(await session.scalars(select(AuditEvent.action)))
    assert {"fund.create", "fund.deposit"} <= actions


async def test_the_list_shows_what_is_left_and_pending_in_submitted_plans(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    energy = await _fund(database, cents=10_000_00)
    small = await _fund(database, cents=500_00, name="Fondo piccolo")
    await _plan(database, settings, energy, approve=True)  # 900 € committed
    await _plan(database, settings, energy, monthly="411,50")  # 1.234,50 € pending
    await _plan(database, settings, small)  # 900 € pending, 500 € left

    _token, page = await _signed_in(client)
    assert row_of(page, "Doniamo Energia")[2:] == [
        euros("10.000,00"),
        euros("900,00"),
        euros("0,00"),
        euros("9.100,00"),
        euros("1.234,50"),
    ]
    cells = row_of(page, "Fondo piccolo")
    assert cells[5:] == [euros("500,00"), f"{euros('900,00')} Più del disponibile"]
    assert "Più del disponibile" not in " ".join(row_of(page, "Doniamo Energia"))
    text = main_text(page)
    assert "I piani da approvare chiedono più di quanto resta" in text
    assert f"Fondo piccolo: {euros('900,00')} in attesa, {euros('500,00')} disponibili" in text

    fund_page = main_text((await client.get(f"/funds/{small}")).text)
    assert f"In attesa nei piani da approvare {euros('900,00')} Più del disponibile" in fund_page


async def test_a_fund_is_renamed_and_closed_to_new_commitments(
    client: httpx.AsyncClient, database: Database
) -> None:
    fund_id = await _fund(database, cents=0)
    token, page = await _signed_in(client, f"/funds/{fund_id}")
    assert value(page, "active") == "1"
    saved = await client.post(
        f"/funds/{fund_id}",
        data={"csrf_token": token, "name": "Fondo Energia", "funder": "Cariplo", "active": "0"},
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/funds/{fund_id}?notice=fund_saved"
    page = (await client.get(saved.headers["location"])).text
    assert "Fondo salvato." in page
    assert (value(page, "name"), value(page, "funder"), value(page, "active")) == (
        "Fondo Energia",
        "Cariplo",
        "0",
    )
    listed = row_of((await client.get("/funds")).text, "Fondo Energia")
    assert "Chiuso a nuovi impegni" in listed[0]


async def test_the_ledger_is_newest_first_in_pages_linked_to_the_plans(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    fund_id = await _fund(database, cents=100_000_00)
    async with database.transaction() as session:
        for n in range(1, funds.PAGE_SIZE + 6):
            await funds.deposit(
                session=session, fund_id=fund_id, amount_cents=n * 100, actor="staff:admin"
            )
    plan = await _plan(database, settings, fund_id, approve=True)
    _token, first = await _signed_in(client, f"/funds/{fund_id}")
    rows = [row for row in _Page(first).rows if len(row) == 6 and row[0] != "Data"]
    assert len(rows) == funds.PAGE_SIZE
    assert rows[0][1:3] == ["Impegno", euros("900,00")]
    assert f'href="/cases/{plan.case_id}/plan"' in first
    assert rows[0][3] == f"Piano del caso {plan.case_id} Supporto economico d'emergenza"
    assert rows[1][1:3] == ["Versamento", euros("55,00")]
    assert rows[1][5] == "admin"
    older = re.search(r'href="(/funds/\d+\?before=\d+)"', first)
    assert older is not None
    second = (await client.get(older.group(1))).text
    rows = [row for row in _Page(second).rows if len(row) == 6 and row[0] != "Data"]
    assert [row[2] for row in rows] == [
        *(euros(f"{n},00") for n in range(6, 0, -1)),
        euros("100.000,00"),
    ]
    assert f'href="/funds/{fund_id}">Più recenti' in second
    assert "?before=" not in second


# --- payments --------------------------------------------------------------------------


async def test_a_payment_within_what_was_committed_is_recorded(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    fund_id = await _fund(database, cents=5_000_00)
    plan = await _plan(database, settings, fund_id, approve=True)
    path = f"/plans/supports/{plan.support_id}/payments"
    token, page = await _signed_in(client, path)
    assert "Impegnati e non ancora pagati: 900,00" in unescape(page)
    # The plan pays the landlord: the form says so from the start.
    assert (value(page, "paid_to"), value(page, "paid_on")) == ("landlord", _today().isoformat())

    paid = await client.post(
        path,
        data={
            "csrf_token": token, "paid_on": _today().isoformat(), "amount": "300,00",
            "paid_to": "landlord", "method": "bank_transfer", "note": "Affitto di gennaio",
        },
    )  # fmt: skip
    assert paid.status_code == 303
    assert paid.headers["location"] == f"/cases/{plan.case_id}/plan?notice=payment"

    async with database.transaction() as session:
        fund = await session.get(Fund, fund_id)
        assert fund is not None
        assert (fund.committed_cents, fund.paid_cents) == (600_00, 300_00)
        payment = await session.scalar(select(FundMovement).where(FundMovement.kind == "payment"))
        assert payment is not None
        assert (payment.paid_to, payment.method, payment.note) == (
            "landlord",
            "bank_transfer",
            "Affitto di gennaio",
        )
        assert payment.support_id == plan.support_id

    page = (await client.get(path)).text
    [row] = [row for row in _Page(page).rows if row and "Pagamento" in row]
    assert row[2] == euros("300,00")
    assert "Direttamente al proprietario" in row[3] and "Bonifico" in row[3]
    assert f"Ancora da pagare {euros('600,00')}" in main_text(page)
    ledger = (await client.get(f"/funds/{fund_id}")).text
    assert any("Pagamento" in row for row in _Page(ledger).rows)


async def test_a_payment_beyond_what_was_committed_is_refused_with_the_form_as_typed(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    fund_id = await _fund(database, cents=5_000_00)
    plan = await _plan(database, settings, fund_id, approve=True)
    path = f"/plans/supports/{plan.support_id}/payments"
    token, _page = await _signed_in(client, path)
    typed = {
        "paid_on": _today().isoformat(), "amount": "900,01", "paid_to": "citizen",
        "method": "cash", "note": "Contanti allo sportello",
    }  # fmt: skip
    refused = await client.post(path, data={"csrf_token": token, **typed})
    assert refused.status_code == 400
    assert error(refused.text, "amount") == (
        f"Il fondo «Doniamo Energia» ha {euros('900,00')} impegnati e non ancora pagati per "
        "questo sostegno: il pagamento non può essere maggiore."
    )
    assert {name: value(refused.text, name) for name in typed} == typed

    # A plan still waiting for approval has committed nothing: any payment is too much.
    waiting = await _plan(database, settings, fund_id)
    early = await client.post(
        f"/plans/supports/{waiting.support_id}/payments",
        data={"csrf_token": token, **typed, "amount": "1"},
    )
    assert early.status_code == 400
    assert f"ha {euros('0,00')} impegnati" in error(early.text, "amount")
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).where(FundMovement.kind == "payment")) == 0


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("amount", "", "Scrivi l'importo."),
        ("amount", "dieci", "Scrivi un importo in euro, per esempio 1.234,50."),
        ("amount", "-5", "L'importo non può essere negativo."),
        ("amount", "12,3456", "Al massimo due decimali: euro e centesimi."),
        (
            "amount",
            "1,234.50",
            "Questo importo si può leggere in due modi: scrivilo come 1.234,50.",
        ),
        ("amount", "0", "L'importo deve essere tra 0,01 € e 1.000.000.000,00 €."),
        ("amount", "9" * 13, "L'importo è troppo alto: al massimo 1.000.000.000,00 €."),
        ("paid_on", "", "Questo campo è obbligatorio."),
        ("paid_on", "31/02/2026", "Scrivi una data come 31/12/2026."),
        ("paid_on", "tomorrow", "La data del pagamento non può essere nel futuro."),
        ("paid_to", "bank", "Scegli una delle opzioni."),
        ("method", "", "Questo campo è obbligatorio."),
        ("note", "n" * 501, "Il testo è troppo lungo: al massimo 500 caratteri."),
    ],
)
async def test_every_refused_payment_keeps_what_was_typed(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    field: str,
    typed: str,
    message: str,
) -> None:
    fund_id = await _fund(database, cents=5_000_00)
    plan = await _plan(database, settings, fund_id, approve=True)
    path = f"/plans/supports/{plan.support_id}/payments"
    token, page = await _signed_in(client, path)
    assert _Page(page).attrs["f-note"]["maxlength"] == "500"
    if typed == "tomorrow":
        typed = (_today() + timedelta(days=1)).isoformat()
    values = {
        "paid_on": _today().isoformat(), "amount": "100", "paid_to": "citizen",
        "method": "bank_transfer", "note": "Prima rata", field: typed,
    }  # fmt: skip
    refused = await client.post(path, data={"csrf_token": token, **values})
    assert refused.status_code == 400
    assert error(refused.text, field) == message.replace(" €", f"{NBSP}€")
    # A choice that isn't one of the options can't be shown selected; the rest is as typed.
    kept = {
        name: typed for name, typed in values.items() if (name, field) != ("paid_to", "paid_to")
    }
    assert {name: value(refused.text, name) for name in kept} == kept
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).where(FundMovement.kind == "payment")) == 0


async def test_a_support_paid_from_no_fund_has_no_payments(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    plan = await _plan(database, settings, None)
    path = f"/plans/supports/{plan.support_id}/payments"
    token, page = await _signed_in(client, path)
    assert "Questo sostegno non è pagato da un fondo." in page
    assert 'id="f-amount"' not in page
    refused = await client.post(
        path,
        data={
            "csrf_token": token, "paid_on": _today().isoformat(), "amount": "10",
            "paid_to": "citizen", "method": "cash", "note": "",
        },
    )  # fmt: skip
    assert refused.status_code == 400
    assert 'role="alert">Questo sostegno non è pagato da un fondo.' in refused.text


# --- refusals of the fund forms --------------------------------------------------------


async def test_refused_funds_and_deposits_keep_what_was_typed(
    client: httpx.AsyncClient, database: Database
) -> None:
    fund_id = await _fund(database, cents=0)
    token, page = await _signed_in(client)
    assert _Page(page).attrs["f-name"]["maxlength"] == "120"

    missing = await client.post("/funds", data={"csrf_token": token, "name": "Fondo affitti"})
    assert missing.status_code == 400
    assert error(missing.text, "funder") == "Questo campo è obbligatorio."
    assert value(missing.text, "name") == "Fondo affitti"

    taken = await client.post(
        "/funds", data={"csrf_token": token, "name": "doniamo energia", "funder": "Cariplo"}
    )
    assert taken.status_code == 400
    assert error(taken.text, "name") == "Un altro fondo ha già questo nome."
    assert (value(taken.text, "name"), value(taken.text, "funder")) == (
        "doniamo energia",
        "Cariplo",
    )

    long_name = "F" * 121
    too_long = await client.post(
        "/funds", data={"csrf_token": token, "name": long_name, "funder": "Cariplo"}
    )
    assert error(too_long.text, "name") == "Il testo è troppo lungo: al massimo 120 caratteri."
    assert value(too_long.text, "name") == long_name

    refused = await client.post(
        f"/funds/{fund_id}/deposits",
        data={"csrf_token": token, "amount": "1.234,567", "note": "Seconda tranche"},
    )
    assert refused.status_code == 400
    assert error(refused.text, "amount") == "Al massimo due decimali: euro e centesimi."
    assert (value(refused.text, "amount"), value(refused.text, "note")) == (
        "1.234,567",
        "Seconda tranche",
    )
    # The fund's own form next to it shows the fund as it is.
    assert value(refused.text, "name") == "Doniamo Energia"

    renamed = await client.post(
        f"/funds/{fund_id}",
        data={"csrf_token": token, "name": "", "funder": "Altro finanziatore", "active": "1"},
    )
    assert renamed.status_code == 400
    assert error(renamed.text, "name") == "Questo campo è obbligatorio."
    assert value(renamed.text, "funder") == "Altro finanziatore"
    async with database.transaction() as session:
        fund = await session.get(Fund, fund_id)
        assert fund is not None
        assert (fund.name, fund.funder, fund.deposited_cents) == (
            "Doniamo Energia",
            "Fondazione Cariplo",
            0,
        )
        assert await session.scalar(select(func.count(Fund.id))) == 1


async def test_unknown_funds_and_supports_are_not_found(client: httpx.AsyncClient) -> None:
    token, _page = await _signed_in(client)
    assert (await client.get("/funds/424242")).status_code == 404
    assert (await client.get("/plans/supports/424242/payments")).status_code == 404
    for path, data in (
        ("/funds/424242", {"name": "X", "funder": "Y", "active": "1"}),
        ("/funds/424242/deposits", {"amount": "10"}),
        (
            "/plans/supports/424242/payments",
            {"paid_on": _today().isoformat(), "amount": "10", "paid_to": "citizen",
             "method": "cash"},
        ),
    ):  # fmt: skip
        assert (await client.post(path, data={"csrf_token": token, **data})).status_code == 404


# --- who may ---------------------------------------------------------------------------


async def _real_paths(database: Database, settings: Settings) -> dict[str, str]:
    fund_id = await _fund(database, cents=5_000_00)
    plan = await _plan(database, settings, fund_id, approve=True)
    return {"fund_id": str(fund_id), "support_id": str(plan.support_id)}


async def test_a_case_worker_gets_403_on_every_funds_route(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    ids = await _real_paths(database, settings)
    await login(client, "operatore")
    page = await client.get("/agenda")
    assert 'href="/funds"' not in page.text
    token = csrf_from((await client.get("/password")).text)
    answers = {}
    for method, path in EXPECTED:
        concrete = path.format(**ids)
        data = {"csrf_token": token, "name": "X", "funder": "Y", "amount": "10"}
        response = await client.request(method, concrete, data=data if method == "POST" else None)
        answers[method, path] = response.status_code
    assert set(answers.values()) == {403}, answers
    async with database.transaction() as session:
        assert await session.scalar(select(func.count(Fund.id))) == 1


# --- hostile values, with a real fund and support --------------------------------------

HOSTILE = ["9" * 25, "-1", "0", "9999-12-31", "0001-01-01", "", "x" * 10_000, "a\x00b", "\u202e1"]
PLAUSIBLE = {
    "name": "Fondo di prova", "funder": "Cariplo", "active": "1", "amount": "10",
    "note": "", "paid_on": date(2026, 1, 5).isoformat(), "paid_to": "citizen",
    "method": "cash", "before": "", "notice": "",
}  # fmt: skip


async def test_no_hostile_value_gives_a_server_error_on_the_funds_pages(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    ids = await _real_paths(database, settings)
    token, _page = await _signed_in(client)
    failures = []
    for entry in route_entries(app):
        for method in entry.methods:
            if (method, entry.path) not in EXPECTED:
                continue
            dependant = entry.route.dependant
            where = (
                [("path", p.alias) for p in dependant.path_params]
                + [("query", p.alias) for p in dependant.query_params]
                + [("form", p.alias) for p in dependant.body_params]
            )
            for _kind, name in where:
                for hostile in HOSTILE:
                    path = entry.path
                    query, form = {}, {"csrf_token": token}
                    for kind, other in where:
                        chosen = hostile if other == name else None
                        if kind == "path":
                            chosen = ids[other] if chosen is None else chosen
                            path = path.replace("{" + other + "}", quote(chosen, safe=""))
                        elif kind == "query":
                            query[other] = chosen if chosen is not None else PLAUSIBLE[other]
                        else:
                            form[other] = chosen if chosen is not None else PLAUSIBLE[other]
                    response = await client.request(
                        method, path, params=query, data=form if method == "POST" else None
                    )
                    if response.status_code >= 500:
                        failures.append(f"{method} {entry.path} {name}={hostile[:20]!r}")
    assert failures == []
