"""The audit log page: coordinators browse and filter; nobody edits or deletes."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from shared.audit.models import AuditEvent
from shared.booking import service as booking
from shared.booking.service import CancelledBy
from shared.db import Database
from shared.settings import Settings
from tests.dashboard.conftest import login
from tests.dashboard.test_authorization import _routes
from tests.factories import ROME, make_helpdesk
from tests.shared.cases.builders import NOW, book, make_candidate

START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
# Each row names its action code for machines only: people read the phrase.
ROW = re.compile(r'<tr data-action="([^"]+)">')


async def seed(database: Database, rows: list[tuple[str, str, str, str, datetime]]) -> None:
    async with database.transaction() as session:
        for actor, action, object_type, object_id, at in rows:
            session.add(
                AuditEvent(
                    at=at, actor=actor, action=action, object_type=object_type,
                    object_id=object_id, details={"n": 1},
                )
            )  # fmt: skip


def actions(page: httpx.Response) -> list[str]:
    return ROW.findall(page.text)


async def test_filters(client: httpx.AsyncClient, database: Database) -> None:
    await seed(
        database,
        [
            ("staff:anna", "booking.create", "booking", "1", START),
            ("staff:anna", "booking.cancel", "booking", "1", START + timedelta(days=1)),
            ("staff:marco", "citizen.read", "citizen", "7", START + timedelta(days=2)),
            ("citizen:7", "booking.create", "booking", "2", START + timedelta(days=3)),
        ],
    )
    await login(client, "coordinatore")
    everything = await client.get("/audit")
    assert everything.status_code == 200
    # Newest first; the coordinator's own sign-in is the newest of all.
    assert actions(everything)[:1] == ["staff.login"]
    seeded = [a for a in actions(everything) if a.startswith(("booking.", "citizen."))]
    assert seeded == ["booking.create", "citizen.read", "booking.cancel", "booking.create"]

    by_actor = await client.get("/audit", params={"actor": "staff:anna"})
    assert actions(by_actor) == ["booking.cancel", "booking.create"]
    assert 'value="staff:anna"' in by_actor.text
    by_action = await client.get("/audit", params={"action": "booking."})
    assert actions(by_action) == ["booking.create", "booking.cancel", "booking.create"]
    by_object = await client.get("/audit", params={"object_type": "booking", "object_id": "2"})
    assert actions(by_object) == ["booking.create"]
    # Days in the program's time zone, the last one included.
    by_days = await client.get("/audit", params={"since": "2026-03-11", "until": "2026-03-12"})
    assert actions(by_days) == ["citizen.read", "booking.cancel"]
    nothing = await client.get("/audit", params={"actor": "nobody"})
    assert actions(nothing) == []
    assert "Nessun evento" in nothing.text


async def test_events_read_as_phrases_never_as_codes(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        citizen, _case = await make_candidate(session, name="Maria Rossi")
        first = await book(session, settings, citizen, helpdesk)
        moved = await booking.move_booking(
            session=session, settings=settings, booking_id=first.id, helpdesk_id=helpdesk.id,
            starts_at=first.starts_at + timedelta(days=1), by=CancelledBy.STAFF,
            actor="staff:coordinatore", now=NOW,
        )  # fmt: skip
    await login(client, "coordinatore")
    page = await client.get("/audit")
    assert page.status_code == 200
    shown = _visible(page.text)
    before = first.starts_at.astimezone(ROME).strftime("%H:%M")
    after = moved.starts_at.astimezone(ROME)
    assert "Appuntamento spostato da " in shown
    assert f"{after.day} " in shown and after.strftime("%H:%M") in shown and before in shown
    assert "Accesso eseguito" in shown and "Il caso ora è: Prenotato" in shown
    for code in ("booking.create", "case.booking", "staff.login", "citizen_id", "booking_id"):
        assert code not in shown, code
    for key in ("from", "to", "moved_from", "code"):
        assert not re.search(rf"\b{key}:", shown), key
    # Bookings by id and time: their codes are not in the log (SPEC J8).
    assert "Codice di prenotazione:" not in shown and first.code not in shown
    # A code nobody gave a phrase yet still reads as words.
    await seed(database, [("staff:anna", "booking.new_kind", "booking", "1", START)])
    page = await client.get("/audit", params={"action": "booking.new"})
    assert "Modifica a una prenotazione" in _visible(page.text)
    assert "booking.new_kind" not in _visible(page.text)


def _visible(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


async def test_bad_dates_are_explained_and_kept(client: httpx.AsyncClient) -> None:
    await login(client, "coordinatore")
    bad = await client.get("/audit", params={"since": "31/02/2026", "actor": "staff:"})
    assert bad.status_code == 400
    assert 'id="e-since"' in bad.text
    assert 'value="31/02/2026"' in bad.text and 'value="staff:"' in bad.text
    backwards = await client.get("/audit", params={"since": "2026-03-12", "until": "2026-03-11"})
    assert backwards.status_code == 400
    assert 'id="e-until"' in backwards.text


async def test_keyset_pagination(client: httpx.AsyncClient, database: Database) -> None:
    await seed(
        database,
        [("t", f"step.{n:03d}", "x", str(n), START + timedelta(minutes=n)) for n in range(120)],
    )
    await login(client, "coordinatore")
    seen: list[str] = []
    url: str | None = "/audit?action=step."
    pages = 0
    while url:
        page = await client.get(url)
        assert page.status_code == 200
        seen += actions(page)
        pages += 1
        older = re.search(r'href="(/audit\?[^"]*before=\d+[^"]*)">Meno recenti', page.text)
        url = html.unescape(older.group(1)) if older else None
        if pages > 1:
            assert "Più recenti" in page.text
    assert pages == 3
    assert seen == [f"step.{n:03d}" for n in reversed(range(120))]


async def test_hostile_text_renders_inert(client: httpx.AsyncClient, database: Database) -> None:
    hostile = "<script>alert(1)</script>"
    attribute = '"onmouseover=alert(1)'
    async with database.transaction() as session:
        session.add(
            AuditEvent(
                at=START, actor=f"citizen:{hostile}", action="citizen.create",
                object_type="citizen", object_id=attribute,
                details={"name": hostile, "answer": attribute, hostile: [attribute]},
            )
        )  # fmt: skip
    await login(client, "coordinatore")
    page = await client.get("/audit")
    assert page.status_code == 200
    assert hostile not in page.text
    assert attribute not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "onmouseover=alert(1)" in page.text


async def test_case_workers_and_admins_are_refused(client: httpx.AsyncClient) -> None:
    await login(client, "operatore")
    assert (await client.get("/audit")).status_code == 403
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as admin:
        await login(admin, "admin")
        assert (await admin.get("/audit")).status_code == 403


async def test_the_log_has_no_writing_routes(app: FastAPI) -> None:
    methods = {method for method, path in _routes(app) if path.startswith("/audit")}
    assert methods == {"GET"}
