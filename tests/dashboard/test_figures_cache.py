"""The figures page serves what is kept (`shared.figures.cache`): it says when the figures
were computed, shows no change in the data until they expire or a coordinator refreshes
them, and keeps no personal data."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from dashboard.app import create_app
from shared import demo
from shared.citizens.models import Citizen, ConsentRefusal
from shared.db import Database
from shared.figures.models import KeptFigures
from shared.settings import Settings
from shared.staff.models import Role
from tests.dashboard.conftest import csrf_from, login
from tests.shared.figures.dataset import NOW, build

PERIOD = "/figures?from=2027-01-01&to=2027-03-10"
FORM = {"from": "2027-01-01", "to": "2027-03-10", "helpdesk": ""}


class Clock:
    """The figures' clock (`app.state.figures_clock`), moved by the tests."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(app: FastAPI) -> Clock:
    found = Clock(NOW)
    app.state.figures_clock = found
    return found


def _refusals(page: str) -> str:
    found = re.search(r"Informative privacy non accettate: ([0-9.]+)", page)
    assert found, "no count of refused privacy notices on the page"
    return found.group(1)


async def _refuse_consent(database: Database) -> None:
    async with database.transaction() as session:
        session.add(ConsentRefusal(notice_version="2026-11", at=NOW - timedelta(hours=1)))


async def test_the_page_says_when_and_keeps_its_figures_until_they_expire(
    client: httpx.AsyncClient, database: Database, settings: Settings, clock: Clock
) -> None:
    async with database.transaction() as session:
        await build(session)
    await login(client, "coordinatore")
    first = await client.get(PERIOD)
    assert first.status_code == 200
    # NOW is noon in Rome.
    assert "Dati aggiornati alle 12:00." in first.text
    assert f"Vengono ricalcolati dopo {settings.figures_cache_minutes} minuti." in first.text
    before = _refusals(first.text)

    await _refuse_consent(database)
    clock.now = NOW + timedelta(minutes=settings.figures_cache_minutes) - timedelta(seconds=1)
    kept = await client.get(PERIOD)
    assert _refusals(kept.text) == before
    assert "Dati aggiornati alle 12:00." in kept.text

    clock.now = NOW + timedelta(minutes=settings.figures_cache_minutes)
    again = await client.get(PERIOD)
    assert _refusals(again.text) == str(int(before) + 1)
    assert f"Dati aggiornati alle 12:{settings.figures_cache_minutes:02}." in again.text


async def test_figures_computed_another_day_say_the_day(
    client: httpx.AsyncClient, database: Database, app: FastAPI, clock: Clock
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"figures_cache_minutes": 24 * 60})
    await login(client, "coordinatore")
    await client.get(PERIOD)
    clock.now = NOW + timedelta(hours=13)  # 01:00 the next day in Rome
    page = (await client.get(PERIOD)).text
    assert "Dati aggiornati al 10 mar 2027, alle 12:00." in page
    client.cookies.set("lang", "en")
    assert "Figures as of Mar 10, 2027, 12:00." in (await client.get(PERIOD)).text


async def test_refresh_now_computes_again_and_goes_back_to_the_same_filters(
    client: httpx.AsyncClient, database: Database, clock: Clock
) -> None:
    async with database.transaction() as session:
        built = await build(session)
    await login(client, "coordinatore")
    path = f"{PERIOD}&helpdesk={built.h1}"
    page = (await client.get(path)).text
    assert 'action="/figures/refresh"' in page and "Aggiorna ora" in page
    before = await client.get(PERIOD)
    await _refuse_consent(database)
    clock.now = NOW + timedelta(minutes=1)

    form = {**FORM, "csrf_token": csrf_from(page)}
    response = await client.post("/figures/refresh", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/figures?from=2027-01-01&to=2027-03-10"
    after = await client.get(response.headers["location"])
    assert _refusals(after.text) == str(int(_refusals(before.text)) + 1)
    assert "Dati aggiornati alle 12:01." in after.text

    helpdesk = await client.post("/figures/refresh", data={**form, "helpdesk": str(built.h1)})
    assert (
        helpdesk.headers["location"]
        == f"/figures?from=2027-01-01&to=2027-03-10&helpdesk={built.h1}"
    )
    # With no dates, back to the page as it opens.
    bare = await client.post("/figures/refresh", data={"csrf_token": form["csrf_token"]})
    assert (bare.status_code, bare.headers["location"]) == (303, "/figures")


async def test_a_bad_filter_to_refresh_changes_nothing(
    client: httpx.AsyncClient, database: Database, clock: Clock
) -> None:
    await login(client, "coordinatore")
    page = (await client.get("/figures")).text
    form = {**FORM, "to": "2026-12-31", "csrf_token": csrf_from(page)}
    response = await client.post("/figures/refresh", data=form)
    assert response.status_code == 303
    shown = await client.get(response.headers["location"])
    assert shown.status_code == 400
    assert "prima della data di inizio" in shown.text
    unknown = await client.post("/figures/refresh", data={**form, "to": "", "helpdesk": "999"})
    assert (await client.get(unknown.headers["location"])).status_code == 400
    async with database.transaction() as session:
        kept = (await session.execute(select(KeptFigures.last_day))).scalars().all()
    # Only the page as it opened was kept.
    assert len(kept) == 1


async def test_refresh_needs_a_coordinator_and_the_csrf_token(
    client: httpx.AsyncClient, database: Database, clock: Clock
) -> None:
    await login(client, "operatore")
    token = csrf_from((await client.get("/password")).text)
    refused = await client.post("/figures/refresh", data={**FORM, "csrf_token": token})
    assert refused.status_code == 403
    await client.post("/logout", data={"csrf_token": token})

    await login(client, "coordinatore")
    assert (await client.post("/figures/refresh", data=FORM)).status_code == 403
    wrong = await client.post("/figures/refresh", data={**FORM, "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    async with database.transaction() as session:
        assert (await session.execute(select(KeptFigures))).first() is None


async def test_what_is_kept_holds_no_personal_data(database: Database, settings: Settings) -> None:
    """The demo's figures and charts, kept in both languages: no citizen's name, phone,
    e-mail or fiscal code anywhere in them (an erasure has nothing to remove there)."""
    async with database.transaction() as session:
        logins = await demo.seed(session=session, settings=settings)
    coordinator = next(login for login in logins if login.role is Role.COORDINATORE)
    app = create_app(settings=settings, database=database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        await login(client, coordinator.username, coordinator.password)
        for language in ("it", "en"):
            client.cookies.set("lang", language)
            assert (await client.get("/figures")).status_code == 200
    async with database.transaction() as session:
        rows = (await session.scalars(select(KeptFigures))).all()
        citizens = (await session.scalars(select(Citizen))).all()
    assert len(rows) == 1 and set(rows[0].charts) == {"it", "en"}
    kept = str(rows[0].figures) + str(rows[0].charts)
    personal = {
        value
        for c in citizens
        for value in (c.name, c.phone, c.email, c.fiscal_code)
        if value and len(value) > 3
    }
    assert len(personal) > 20
    assert [value for value in personal if value in kept] == []
