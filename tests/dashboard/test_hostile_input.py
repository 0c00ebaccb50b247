"""Hostile values in every address and form field: a clear 400 or the form again, never a 500.

The sweep is generated from the app's route table: every path parameter, query parameter
and form field of every route is given each value of `HOSTILE` in turn (the others keep a
plausible value, so the request gets as deep as it can), by every role that may use the
route, on the demo data. An answer of 500, or an exception raised through the test
client, fails the test.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from html import unescape
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashboard.app import create_app
from shared import demo
from shared.booking.models import Booking, BookingState, Closure, ExtraOpening, OpeningRule
from shared.cases import interview
from shared.cases.models import Case, CaseState
from shared.db import Database, utcnow
from shared.funds.models import Fund
from shared.i18n import available_languages
from shared.intake.models import Intake, IntakeState
from shared.intake.questionnaire import QUESTIONNAIRE, AnswerType
from shared.plans.models import PlanSupport, SignedScan
from shared.settings import Settings
from shared.staff.models import StaffUser
from tests.dashboard.access import PUBLIC, all_expectations
from tests.dashboard.conftest import csrf_from
from tests.dashboard.route_table import route_entries
from tests.factories import ROME

EXPECTED = all_expectations()
HUGE = "9" * 25
HOSTILE = [
    HUGE,
    "-1",
    "-" + HUGE,
    "0",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59+00:00",
    "1|9999-12-31T23:59:59+00:00",
    "",
    "x" * 10_000,
    "a\x00b",
    "\u202eevil",
]
ANONYMOUS = "anonymous"
# The demo logins the sweep signs in as, one per role.
LOGINS = {login.role.value: login for login in demo.DEMO_LOGINS if login.username != "operatrice"}
# Routes that read their form themselves (fields generated from data, not declared).
READ_THEMSELVES = {
    ("POST", "/intake"): [
        "channel",
        "consent",
        "acknowledged",
        *(
            name
            for s in QUESTIONNAIRE
            for name in (
                [f"{s.key}_members", f"{s.key}_minors"]
                if s.answer is AnswerType.HOUSEHOLD
                else [s.key]
            )
        ),
    ],
    ("POST", "/intake/{citizen_id}/booking"): ["slot"],
    ("POST", "/schedules/helpdesks"): [f"directions_{lang}" for lang in available_languages()],
    ("POST", "/schedules/helpdesks/{helpdesk_id}"): [
        f"directions_{lang}" for lang in available_languages()
    ],
    ("POST", "/cases/{case_id}/interview"): [
        f"{key}.{name}" for key, _info, model in interview.sections() for name in model.model_fields
    ],
}
READ_THEMSELVES[("POST", "/cases/{case_id}/outcome")] = READ_THEMSELVES[
    ("POST", "/cases/{case_id}/interview")
]


def _today() -> date:
    return utcnow().astimezone(ROME).date()


def _plausible(ids: dict[str, int]) -> dict[str, str]:
    """A value for each field that gets the request past its other checks."""
    today = _today()
    later = (today + timedelta(days=40)).isoformat()
    return {
        "view": "week",
        "day": today.isoformat(),
        "helpdesk": str(ids["helpdesk_id"]),
        "helpdesk_id": str(ids["helpdesk_id"]),
        "start": today.isoformat(),
        "back": "/agenda",
        "reason": "Chiusura straordinaria",
        "close_reason": "Ha trovato lavoro",
        "decision": "eligible",
        "outcome": "admitted",
        "name": "Sportello di prova",
        "address": "Via Roma 1",
        "active": "1",
        "weekday": "6",
        "opens_at": "08:00",
        "closes_at": "08:30",
        "slot_minutes": "30",
        "places": "1",
        "valid_from": today.isoformat(),
        "last_day": later,
        "closure_day": later,
        "extra_day": later,
        "extra_opens_at": "19:00",
        "extra_closes_at": "20:00",
        "extra_slot_minutes": "30",
        "extra_places": "1",
        "username": "nuovo.collega",
        "role": "operatore",
        "password": "un cavallo corretto e una graffetta",
        "repeat": "un cavallo corretto e una graffetta",
        "lang": "it",
        "channel": "phone",
        "consent": "yes",
        "funder": "Fondazione Cariplo",
        "amount": "1.234,50",
        "paid_on": today.isoformat(),
        "paid_to": "citizen",
        "method": "bank_transfer",
    }


def _fields(dependant: Dependant) -> Iterator[tuple[str, str]]:
    """(where, name) of every parameter of a route, its dependencies' included."""
    for where, fields in (
        ("path", dependant.path_params),
        ("query", dependant.query_params),
        ("form", dependant.body_params),
    ):
        for field in fields:
            yield where, field.alias
    for sub in dependant.dependencies:
        yield from _fields(sub)


def _parameters(method: str, path: str, route: APIRoute) -> list[tuple[str, str]]:
    found = list(dict.fromkeys(_fields(route.dependant)))
    found += [("form", name) for name in READ_THEMSELVES.get((method, path), [])]
    return found


async def _ids(session: AsyncSession, persona: str) -> dict[str, int]:
    """Real records for the path parameters, so each request reaches the code behind it."""
    me = await session.scalar(select(StaffUser.id).where(StaffUser.username == persona))

    async def first(column: Any, *where: Any) -> int:
        found = await session.scalar(select(func.min(column)).where(*where))
        assert found is not None, f"the demo data has no {column}"
        return int(found)

    booked = await first(Booking.id, Booking.state == BookingState.BOOKED.value)
    return {
        "booking_id": booked,
        "helpdesk_id": await first(Booking.helpdesk_id, Booking.id == booked),
        # A checked-in case the persona may work on, for the interview and its outcome.
        "case_id": await session.scalar(
            select(Case.id).order_by(
                (Case.state == CaseState.CHECKED_IN.value).desc(),
                or_(Case.assigned_to_id.is_(None), Case.assigned_to_id == me).desc(),
                Case.id,
            )
        )
        or 0,
        # An eligible citizen with no booking: their intake page lists free times.
        "citizen_id": await first(
            Intake.citizen_id,
            Intake.state == IntakeState.COMPLETED.value,
            Intake.eligible.is_(True),
            ~Intake.citizen_id.in_(
                select(Booking.citizen_id).where(Booking.state == BookingState.BOOKED.value)
            ),
        ),
        "user_id": await first(StaffUser.id, StaffUser.username == "operatrice"),
        "rule_id": await first(OpeningRule.id),
        "closure_id": await first(Closure.id),
        "opening_id": await first(ExtraOpening.id),
        # Funds and plans' supports where the data has them (tests/dashboard/test_funds.py
        # sweeps their routes with real ones), else an id that finds nothing.
        "fund_id": await session.scalar(select(func.min(Fund.id))) or 1,
        "support_id": await session.scalar(select(func.min(PlanSupport.id))) or 1,
        "scan_id": await session.scalar(select(func.min(SignedScan.id))) or 1,
    }


@pytest.fixture
async def demo_app(database: Database, settings: Settings) -> FastAPI:
    async with database.transaction() as session:
        await demo.seed(session=session, settings=settings)
    return create_app(settings=settings, database=database)


@pytest.fixture
async def client(demo_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=demo_app), base_url="http://testserver"
    ) as c:
        yield c


async def _sign_in(client: httpx.AsyncClient, persona: str) -> str:
    """Sign in as the persona's demo login; its CSRF token ('' when anonymous)."""
    if persona == ANONYMOUS:
        return ""
    login = LOGINS[persona]
    page = await client.get("/login")
    signed_in = await client.post(
        "/login",
        data={
            "username": login.username,
            "password": login.password,
            "csrf_token": csrf_from(page.text),
        },
    )
    assert signed_in.status_code == 303
    return csrf_from((await client.get("/password")).text)


def _reaches(persona: str, rule: str | frozenset[str]) -> bool:
    return rule == PUBLIC if persona == ANONYMOUS else rule != PUBLIC and persona in rule


@pytest.mark.parametrize("persona", [ANONYMOUS, *LOGINS])
async def test_no_hostile_value_gives_a_server_error(
    demo_app: FastAPI, client: httpx.AsyncClient, database: Database, persona: str
) -> None:
    token = await _sign_in(client, persona)
    async with database.transaction() as session:
        ids = await _ids(session, LOGINS[persona].username if persona in LOGINS else "")
    plausible = _plausible(ids)
    failures: list[str] = []
    sent = 0
    for entry in route_entries(demo_app):
        for method in entry.methods:
            rule = EXPECTED.get((method, entry.path))
            if rule is None or not _reaches(persona, rule) or entry.path == "/logout":
                continue
            parameters = _parameters(method, entry.path, entry.route)
            for where, name in parameters:
                for value in HOSTILE:
                    path = entry.path
                    for other_where, other in parameters:
                        if other_where == "path":
                            chosen = value if other == name else str(ids[other])
                            path = path.replace("{" + other + "}", quote(chosen, safe=""))
                    query = {
                        other: value if other == name else plausible[other]
                        for other_where, other in parameters
                        if other_where == "query" and (other == name or other in plausible)
                    }
                    form = {
                        other: value if other == name else plausible.get(other, "")
                        for other_where, other in parameters
                        if other_where == "form"
                    }
                    if method == "POST":
                        if persona == ANONYMOUS:
                            form["csrf_token"] = csrf_from((await client.get(entry.path)).text)
                        else:
                            form["csrf_token"] = token
                    sent += 1
                    shown = f"{method} {entry.path} {where} {name}={value[:40]!r}"
                    try:
                        response = await client.request(
                            method, path, params=query, data=form if method == "POST" else None
                        )
                    except Exception as exc:  # any exception is the finding
                        failures.append(f"{shown}: raised {type(exc).__name__}: {exc}"[:300])
                        continue
                    if response.status_code >= 500:
                        failures.append(f"{shown}: {response.status_code}")
    print(f"{persona}: {sent} requests")
    assert sent > len(HOSTILE)
    assert failures == [], f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures)


# --- the addresses of the issue ----------------------------------------------------------

TOO_BIG = "9" * 25


def _message(page: str) -> str:
    """The page's text, tags removed, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.mark.parametrize(
    ("persona", "address", "expected"),
    [
        ("operatore", "/agenda?day=9999-12-31", "tra il 1900 e il 2200"),
        ("operatore", "/agenda?day=0001-01-01&view=week", "tra il 1900 e il 2200"),
        ("operatore", "/agenda?day=31/12/9999", "tra il 1900 e il 2200"),
        ("operatore", f"/agenda?helpdesk={TOO_BIG}", "da 1 a 2147483647"),
        ("operatore", "/cases?from=0001-01-01&to=9999-12-31", "tra il 1900 e il 2200"),
        ("operatore", f"/cases/{TOO_BIG}", "da 1 a 2147483647"),
        ("operatore", f"/intake/{TOO_BIG}", "da 1 a 2147483647"),
        ("operatore", "/intake/{citizen_id}?day=9999-12-31", "tra il 1900 e il 2200"),
        ("operatore", f"/intake/{{citizen_id}}?helpdesk={TOO_BIG}", "da 1 a 2147483647"),
        (
            "operatore",
            "/agenda/bookings/{booking_id}/move?start=9999-12-31",
            "tra il 1900 e il 2200",
        ),
        ("operatore", f"/agenda/bookings/{TOO_BIG}/cancel", "da 1 a 2147483647"),
        ("coordinatore", f"/audit?before={TOO_BIG}", "da 1 a 2147483647"),
        ("coordinatore", "/audit?since=0001-01-01", "tra il 1900 e il 2200"),
        ("coordinatore", "/audit?until=9999-12-31", "tra il 1900 e il 2200"),
        ("coordinatore", f"/schedules/helpdesks/{TOO_BIG}/hours", "da 1 a 2147483647"),
        ("admin", f"/staff/{TOO_BIG}", "da 1 a 2147483647"),
        ("admin", "/staff/-1", "da 1 a 2147483647"),
    ],
)
async def test_extreme_values_in_an_address_are_a_clear_400(
    client: httpx.AsyncClient, database: Database, persona: str, address: str, expected: str
) -> None:
    await _sign_in(client, persona)
    async with database.transaction() as session:
        ids = await _ids(session, persona)
    response = await client.get(address.format(**ids))
    assert response.status_code == 400
    assert expected in _message(response.text)
