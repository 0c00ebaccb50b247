"""A coordinator erases a citizen from their case page: a confirmation first, then the
erasure (303 back to the case, which says so); refused to a case worker; harmless twice."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from shared.audit.models import AuditEvent
from shared.booking.models import Booking, BookingState
from shared.citizens.models import Citizen
from shared.db import Database
from shared.settings import Settings
from tests.dashboard.conftest import login, page_csrf
from tests.factories import make_helpdesk
from tests.shared.cases.builders import book, make_candidate

NAME, PHONE = "Ermenegilda Zappacosta", "+393471234567"


async def _as(client: httpx.AsyncClient, username: str) -> None:
    await login(client, username)
    client.cookies.set("lang", "en")


async def _post(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    return await client.post(path, data={"csrf_token": await page_csrf(client), **data})


async def _candidate(database: Database, settings: Settings) -> tuple[int, int, int]:
    """A candidate with an appointment to come: (citizen id, case id, booking id)."""
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, places=3)
        citizen, case = await make_candidate(session, name=NAME, phone=PHONE, telegram_id=4242)
        made = await book(session, settings, citizen, helpdesk)
        return citizen.id, case.id, made.id


async def _citizen(database: Database, citizen_id: int) -> Citizen:
    async with database.transaction(read_only=True) as session:
        found = await session.get(Citizen, citizen_id)
        assert found is not None
        return found


async def test_a_coordinator_erases_a_citizen_after_confirming(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    citizen_id, case_id, booking_id = await _candidate(database, settings)
    await _as(client, "coordinatore")
    page = await client.get(f"/cases/{case_id}")
    assert f'href="/cases/{case_id}/erase"' in page.text

    confirm = await client.get(f"/cases/{case_id}/erase")
    assert confirm.status_code == 200
    assert "Erase the citizen&#39;s data" in confirm.text and 'name="confirm"' in confirm.text
    # Without the box ticked: the same page, the reason next to the box, nothing erased.
    unconfirmed = await _post(client, f"/cases/{case_id}/erase", {})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm that the citizen asked for the erasure." in unconfirmed.text
    assert "Nothing was changed." in unconfirmed.text
    assert (await _citizen(database, citizen_id)).name == NAME

    done = await _post(client, f"/cases/{case_id}/erase", {"confirm": "yes"})
    assert done.status_code == 303
    assert done.headers["location"] == f"/cases/{case_id}?notice=erased"
    shown = await client.get(done.headers["location"])
    assert shown.status_code == 200
    assert "The citizen&#39;s personal data has been erased." in shown.text
    assert NAME not in shown.text and "3471234567" not in shown.text
    assert f'href="/cases/{case_id}/erase"' not in shown.text
    erased = await _citizen(database, citizen_id)
    assert erased.name is None and erased.erased_at is not None
    async with database.transaction(read_only=True) as session:
        made = await session.get(Booking, booking_id)
        assert made is not None and made.state == BookingState.CANCELLED_BY_CITIZEN
        events = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "citizen.erase"))
        ).all()
    assert [(e.actor, e.object_id, e.details) for e in events] == [
        ("staff:coordinatore", str(citizen_id), {})
    ]

    # Again (a second tab, a double click): nothing more happens.
    again = await _post(client, f"/cases/{case_id}/erase", {"confirm": "yes"})
    assert again.status_code == 303
    assert "there is nothing left to erase" in (await client.get(f"/cases/{case_id}/erase")).text
    async with database.transaction(read_only=True) as session:
        count = len(
            (
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.action == "citizen.erase")
                )
            ).all()
        )
    assert count == 1


async def test_a_case_worker_cannot_erase(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    citizen_id, case_id, _booking_id = await _candidate(database, settings)
    await _as(client, "operatore")
    page = await client.get(f"/cases/{case_id}")
    assert page.status_code == 200 and f'href="/cases/{case_id}/erase"' not in page.text
    assert (await client.get(f"/cases/{case_id}/erase")).status_code == 403
    refused = await _post(client, f"/cases/{case_id}/erase", {"confirm": "yes"})
    assert refused.status_code == 403
    assert (await _citizen(database, citizen_id)).name == NAME


async def test_an_unknown_case_and_a_forged_request_are_refused(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    citizen_id, case_id, _booking_id = await _candidate(database, settings)
    await _as(client, "coordinatore")
    assert (await client.get("/cases/99999/erase")).status_code == 404
    assert (await _post(client, "/cases/99999/erase", {"confirm": "yes"})).status_code == 404
    forged = await client.post(
        f"/cases/{case_id}/erase", data={"csrf_token": "forged", "confirm": "yes"}
    )
    assert forged.status_code == 403
    assert (await _citizen(database, citizen_id)).name == NAME
