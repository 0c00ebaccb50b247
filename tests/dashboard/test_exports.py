"""The exports page and downloads: coordinators only, each export in each of its formats,
audited without personal data, bad dates and unknown names refused kindly."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from shared.audit import service as audit
from shared.audit.models import AuditEvent
from shared.db import Database
from shared.exports import writers
from shared.exports.definitions import EXPORTS
from tests.dashboard.conftest import login
from tests.shared.figures.dataset import NOW, build


@pytest.fixture(autouse=True)
def _fixed_clock(app: FastAPI) -> None:
    app.state.figures_clock = lambda: NOW


@pytest.mark.parametrize("username", ["operatore", "admin"])
async def test_only_coordinators_export(client: httpx.AsyncClient, username: str) -> None:
    await login(client, username)
    assert (await client.get("/exports")).status_code == 403
    assert (await client.get("/exports/cases.csv")).status_code == 403
    assert (await client.get("/exports/funder_pack.xlsx")).status_code == 403


async def test_the_page_links_every_export(client: httpx.AsyncClient) -> None:
    await login(client, "coordinatore")
    page = await client.get("/exports?from=2027-01-01&to=2027-03-10")
    assert page.status_code == 200
    for name, export in EXPORTS.items():
        for fmt in export.formats:
            assert (
                f'href="/exports/{name}.{fmt.value}?from=2027-01-01&amp;to=2027-03-10"' in page.text
            )
    assert "/exports/funder_pack.csv" not in page.text
    assert 'href="/exports"' in (await client.get("/figures")).text


async def test_downloads_read_back_and_are_audited(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        await build(session)
    await login(client, "coordinatore")
    response = await client.get("/exports/cases.csv?from=2026-01-01&to=2027-12-31")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Numero pratica" and len(rows) == 1 + 7
    response = await client.get("/exports/funder_pack.xlsx")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert [s.title for s in book.worksheets] == ["Statistiche", "Beneficiari"]
    async with database.transaction() as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "export.download")
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [(e.actor, e.object_id, e.details) for e in events] == [
        ("staff:coordinatore", "cases", {"format": "csv", "from": "2026-01-01", "to": "2027-12-31"}),
        ("staff:coordinatore", "funder_pack", {"format": "xlsx", "from": None, "to": None}),
    ]  # fmt: skip


async def test_the_figures_up_to_a_day(client: httpx.AsyncClient) -> None:
    await login(client, "coordinatore")
    response = await client.get("/exports/figures.csv?to=2020-01-01")
    assert response.status_code == 200 and response.content.startswith("\ufeff".encode())


@pytest.mark.parametrize(
    "path", ["/exports/citizens.csv", "/exports/funder_pack.csv", "/exports/cases.pdf"]
)
async def test_unknown_exports_are_404(client: httpx.AsyncClient, path: str) -> None:
    await login(client, "coordinatore")
    assert (await client.get(path)).status_code == 404


async def test_bad_dates_show_the_page(client: httpx.AsyncClient, database: Database) -> None:
    await login(client, "coordinatore")
    bad = await client.get("/exports/cases.xlsx?from=31/02/2026&to=")
    assert bad.status_code == 400 and 'value="31/02/2026"' in bad.text
    assert "Scrivi una data come 31/12/2026." in bad.text
    reversed_ = await client.get("/exports/bookings.csv?from=2027-03-01&to=2027-02-01")
    assert reversed_.status_code == 400
    too_long = await client.get("/exports/figures.csv?from=2020-01-01&to=2027-01-01")
    assert too_long.status_code == 400
    # From 2020 to today (10 March 2027): too long for the figures, refused before any byte.
    assert (await client.get("/exports/figures.csv?from=2020-01-01")).status_code == 400
    assert (await client.get("/exports?from=abc")).status_code == 400
    async with database.transaction() as session:
        assert not (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "export.download"))
        ).all()


async def test_a_long_export_keeps_nobody_waiting(
    client: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While an XLSX file is being written, other requests can write and be audited.

    The download's audit event takes the chain's end (PostgreSQL's advisory lock, SQLite's
    write lock), held until its transaction ends: the event is committed before the file
    is written, in a read-only transaction of its own.
    """
    writing, written = asyncio.Event(), asyncio.Event()
    original = writers.write_xlsx

    async def slow_write_xlsx(*args: Any, **kwargs: Any) -> None:
        writing.set()
        await written.wait()
        await original(*args, **kwargs)

    monkeypatch.setattr(writers, "write_xlsx", slow_write_xlsx)
    await login(client, "coordinatore")
    download = asyncio.create_task(client.get("/exports/cases.xlsx"))
    try:
        await asyncio.wait_for(writing.wait(), 10)
        async with asyncio.timeout(5), database.transaction() as session:
            await audit.record(
                session=session, actor="staff:coordinatore", action="case.view",
                object_type="case", object_id="1",
            )  # fmt: skip
    finally:
        written.set()
    response = await download
    assert response.status_code == 200
    assert openpyxl.load_workbook(io.BytesIO(response.content)).worksheets
