"""The bookings board through HTTP: coordinators only, filters and counts, bulk actions and
their result, the CSV and its audit event, at most six SQL statements per page."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

import httpx
import pytest
from sqlalchemy import event, select, update

from shared.audit.models import AuditEvent
from shared.booking.models import Booking, BookingState
from shared.citizens.models import Citizen
from shared.db import Database
from shared.settings import Settings
from tests.dashboard.conftest import login, page_csrf
from tests.shared.booking.board_data import NOW, BoardData, board_data

MAX_STATEMENTS = 6
EVERY_DAY = "/bookings?from="


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The board's today and the bulk actions' now are the data set's."""
    monkeypatch.setattr("dashboard.routes.bookings.utcnow", lambda: NOW)
    return NOW


@pytest.fixture
async def data(database: Database, settings: Settings) -> BoardData:
    async with database.transaction() as session:
        return await board_data(session, settings)


async def _coordinator(client: httpx.AsyncClient) -> str:
    await login(client, "coordinatore")
    return await page_csrf(client, "/bookings")


def _row_ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'name="booking" value="(\d+)"', html)}


async def test_only_coordinators_open_the_board(client: httpx.AsyncClient, data: BoardData) -> None:
    for username in ("operatore", "admin"):
        await login(client, username)
        token = await page_csrf(client)
        assert (await client.get("/bookings")).status_code == 403
        assert (await client.get("/bookings.csv?from=")).status_code == 403
        response = await client.post(
            "/bookings/bulk",
            data={"csrf_token": token, "action": "cancel", "message": "No",
                  "booking": str(data.bookings["Anna", "upcoming"])},
        )  # fmt: skip
        assert response.status_code == 403
        nav = (await client.get("/agenda" if username == "operatore" else "/staff")).text
        assert 'href="/bookings"' not in nav
    await login(client, "coordinatore")
    page = await client.get("/bookings")
    assert page.status_code == 200 and 'href="/bookings"' in page.text


async def test_the_board_filters_counts_and_links_the_case(
    client: httpx.AsyncClient, data: BoardData
) -> None:
    await _coordinator(client)
    page = (await client.get("/bookings")).text
    # From today (7 December): the six active bookings can be selected; Gina's is cancelled.
    assert _row_ids(page) == data.ids("Anna", "Bruno", "Carla", "Dario", "Elena", "Franco")
    assert "Gina Riva" in page and 'value="2026-12-07"' in page
    everything = (await client.get(EVERY_DAY)).text
    # The tabs: all, then booked, attended, no-show, cancelled by the citizen, by staff.
    counts = re.findall(
        r'class="nav-link[^"]*" href="[^"]*"[^>]*>[^<]+ <span class="badge[^>]*>(\d+)', everything
    )
    assert counts == ["11", "6", "1", "3", "1", "0"]
    urgent = (await client.get(EVERY_DAY + "&urgent=yes")).text
    assert _row_ids(urgent) == data.ids("Anna")
    assert "border-danger" in urgent and "Caso urgente" in urgent
    ronco = (await client.get(f"{EVERY_DAY}&helpdesk={data.ronco.id}&state=booked")).text
    assert _row_ids(ronco) == data.ids("Carla", "Dario")
    assert "Franco Galli" in (await client.get(EVERY_DAY + "&no_shows=repeated")).text
    assert "Anna Colombo" not in (await client.get(EVERY_DAY + "&no_shows=repeated")).text
    # The name opens the citizen's case; the phone is grouped.
    anna = await client.get(EVERY_DAY + "&urgent=yes")
    assert re.search(r'<a href="/cases/\d+">Anna Colombo</a>', anna.text)
    bad = await client.get("/bookings?from=31/02/2026&urgent=forse&sort=nome")
    assert bad.status_code == 400
    assert 'value="31/02/2026"' in bad.text and "aria-invalid" in bad.text


async def test_the_phone_is_shown_grouped(
    client: httpx.AsyncClient, database: Database, data: BoardData
) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Citizen)
            .where(Citizen.id == data.citizens["Bruno"].id)
            .values(phone="+393331012020")
        )
    await _coordinator(client)
    page = (await client.get(EVERY_DAY + "&channel=phone")).text
    assert "+39 333 101 2020" in page and "+393331012020" not in page


async def test_bulk_cancel_shows_whom_to_phone(
    client: httpx.AsyncClient, database: Database, data: BoardData
) -> None:
    token = await _coordinator(client)
    chosen = [data.bookings[n, "upcoming"] for n in ("Anna", "Bruno")]
    response = await client.post(
        "/bookings/bulk",
        data={"csrf_token": token, "action": "cancel", "booking": [str(i) for i in chosen],
              "message": "Sportello chiuso per sciopero.", "back": "/bookings?from="},
    )  # fmt: skip
    assert response.status_code == 200
    html = response.text
    assert "Telefona a queste persone" in html and "Bruno Ferrari" in html
    assert 'href="/bookings?from="' in html
    async with database.transaction() as session:
        states = set(await session.scalars(select(Booking.state).where(Booking.id.in_(chosen))))
    assert states == {BookingState.CANCELLED_BY_STAFF.value}
    # Nothing chosen: the board again, with the message typed kept and nothing changed.
    again = await client.post(
        "/bookings/bulk",
        data={"csrf_token": token, "action": "cancel", "message": "Di nuovo", "back": "/bookings"},
    )
    assert again.status_code == 400 and "Di nuovo" in again.text


async def test_bulk_move_from_the_board(
    client: httpx.AsyncClient, database: Database, data: BoardData
) -> None:
    token = await _coordinator(client)
    response = await client.post(
        "/bookings/bulk",
        data={"csrf_token": token, "action": "move", "day": "2026-12-11",
              "helpdesk": str(data.ronco.id),
              "booking": [str(data.bookings["Anna", "upcoming"]),
                          str(data.bookings["Gina", "upcoming"])],
              "back": "https://evil.example/"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Anna Colombo" in response.text and 'href="/bookings"' in response.text
    async with database.transaction() as session:
        moved = await session.scalar(
            select(Booking).where(Booking.moved_from_id == data.bookings["Anna", "upcoming"])
        )
    assert moved is not None and moved.helpdesk_id == data.ronco.id
    bad = await client.post(
        "/bookings/bulk",
        data={"csrf_token": token, "action": "move", "day": "31/02/2026",
              "booking": str(data.bookings["Bruno", "upcoming"])},
    )  # fmt: skip
    assert bad.status_code == 400 and 'value="31/02/2026"' in bad.text


async def test_the_csv_has_the_filtered_rows_and_is_audited(
    client: httpx.AsyncClient, database: Database, data: BoardData
) -> None:
    await _coordinator(client)
    response = await client.get(f"/bookings.csv?from=&helpdesk={data.ronco.id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:3] == ["Appuntamento", "Sportello", "Codice di prenotazione"]
    assert sorted(r[3] for r in rows[1:]) == ["Carla Brambilla", "Dario Villa"]
    async with database.transaction() as session:
        exported = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "booking.export"))
        ).one()
    assert exported.actor == "staff:coordinatore"
    assert exported.details["rows"] == 2
    assert exported.details["filters"]["helpdesk_id"] == data.ronco.id
    assert "Carla" not in str(exported.details) and "+39" not in str(exported.details)


async def _statements(
    database: Database, request: Callable[[], Awaitable[httpx.Response]]
) -> tuple[httpx.Response, list[str]]:
    statements: list[str] = []

    def count(*args: object) -> None:
        sql = str(args[2]).lstrip().upper()
        if sql.startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
            statements.append(sql)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        response = await request()
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    return response, statements


async def test_the_board_takes_at_most_six_statements(
    client: httpx.AsyncClient, database: Database, data: BoardData
) -> None:
    await _coordinator(client)
    first = await client.get(EVERY_DAY + "&sort=-booked")
    cursor = re.search(r'href="(/bookings\?[^"]*after=[^"]+)"', first.text)
    paths = [
        "/bookings", EVERY_DAY, EVERY_DAY + "&urgent=yes&eligibility=eligible&channel=telegram",
        EVERY_DAY + "&no_shows=repeated&moderation=none&state=no_show",
        f"/bookings?from=2026-12-08&to=2026-12-09&helpdesk={data.centro.id}&sort=-appointment",
    ]  # fmt: skip
    if cursor:
        paths.append(cursor.group(1).replace("&amp;", "&"))
    for path in paths:
        response, statements = await _statements(database, lambda p=path: client.get(p))
        assert response.status_code == 200, path
        assert len(statements) <= MAX_STATEMENTS, (path, statements)


async def test_the_board_leads_to_the_requests_and_to_an_earlier_place_for_urgent_citizens(
    client: httpx.AsyncClient, data: BoardData
) -> None:
    await _coordinator(client)
    page = (await client.get(EVERY_DAY)).text
    assert 'href="/bookings/requests"' in page
    # Only an urgent citizen's active booking offers an earlier place (Anna's upcoming one).
    offered = {int(i) for i in re.findall(r'href="/bookings/(\d+)/earlier"', page)}
    assert offered == {data.bookings["Anna", "upcoming"]}
    assert (
        await client.get(f"/bookings/{data.bookings['Anna', 'upcoming']}/earlier")
    ).status_code == 200
