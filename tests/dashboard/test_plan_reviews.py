"""Reviews and follow-up meetings over HTTP: the form, errors next to the fields with every
value kept, the review shown, the reviews due (overdue first), a follow-up booked and
refused when the citizen already has a booking, and who may use the pages.

The dashboard runs on the real clock: plans are signed today and review dates are set
relative to today, so the tests pass on any day at any hour.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from shared.booking.models import Booking, BookingState
from shared.cases import access
from shared.db import Database, utcnow
from shared.plans import service as plans
from shared.plans.models import Plan, PlanReview
from shared.settings import Settings
from shared.staff import service as staff_accounts
from shared.staff.models import Role, StaffUser
from tests.dashboard.access.plan_reviews import EXPECTED
from tests.dashboard.conftest import PASSWORD, csrf_from, login
from tests.dashboard.route_table import route_entries
from tests.factories import ROME
from tests.shared.plans.builders import admitted_case, complete_input, job_search, plan_with


def _today() -> date:
    return utcnow().astimezone(ROME).date()


async def _member(database: Database, username: str) -> access.StaffMember:
    async with database.transaction() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == username))
        assert user is not None
        return access.StaffMember(user.id, Role(user.role), f"staff:{username}")


async def _plan(
    database: Database,
    settings: Settings,
    *,
    username: str = "operatore",
    name: str = "Giuseppina Fumagalli",
    active: bool = True,
    next_review_on: date | None = None,
) -> tuple[int, int]:
    """An admitted case of `username` with a plan signed today (or a draft): (case, plan)."""
    worker = await _member(database, username)
    boss = await _member(database, "coordinatore")
    async with database.transaction() as session:
        case = await admitted_case(session, settings, worker, name=name)
        plan = await plan_with(session, settings, worker, case, complete_input(job_search()))
        if active:
            now = utcnow()
            await plans.submit_plan(session=session, case_id=case.id, staff=worker, now=now)
            await plans.approve_plan(session=session, case_id=case.id, staff=boss, now=now)
            await plans.record_signature(
                session=session, case_id=case.id, signed_on=_today(), staff=worker,
                settings=settings, now=now,
            )  # fmt: skip
        if next_review_on is not None:
            plan.next_review_on = next_review_on
        return case.id, plan.id


def _text(page: str) -> str:
    """The page's text, tags removed, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _attribute(tag: str, name: str) -> str | None:
    found = re.search(rf'\b{name}="([^"]*)"', tag)
    return unescape(found[1]) if found else None


def _inputs(html: str) -> dict[str, str]:
    """What the browser would send: text inputs, checked radios and textareas."""
    found = {}
    for tag in re.findall(r"<input [^>]*>", html):
        name, kind = _attribute(tag, "name"), _attribute(tag, "type")
        if name is None or (kind == "radio" and " checked" not in tag):
            continue
        found[name] = _attribute(tag, "value") or ""
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        found[name] = unescape(body)
    return found


def _status_fields(html: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r'name="((?:objective|commitment):\d+\.status)"', html)))


async def test_a_review_is_recorded_from_the_form_and_shown(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    case_id, plan_id = await _plan(database, settings)
    await login(client, "operatore")
    plan_page = await client.get(f"/cases/{case_id}/plan")
    assert f'href="/cases/{case_id}/plan/reviews"' in plan_page.text
    listing = await client.get(f"/cases/{case_id}/plan/reviews")
    assert listing.status_code == 200
    assert "Nessuna verifica registrata finora." in listing.text
    assert f'href="/cases/{case_id}/plan/reviews/new"' in listing.text

    page = await client.get(f"/cases/{case_id}/plan/reviews/new")
    assert page.status_code == 200
    assert "Trovare un lavoro stabile" in page.text
    assert "Aggiornare il curriculum" in page.text
    objective, commitment = _status_fields(page.text)
    form = _inputs(page.text)
    today = _today()
    assert form["held_on"] == today.isoformat()
    assert form["next_review_on"] == (today + timedelta(days=settings.plan_review_days)).isoformat()
    assert objective not in form  # no status chosen for them

    # A status left out, a note too long, a next review before the meeting: all shown at
    # once, next to their fields, and what was typed is kept.
    note = objective.replace(".status", ".note")
    form |= {
        objective: "in_progress",
        note: "x" * 501,
        "notes": "La signora ha portato i documenti.",
        "next_review_on": (today - timedelta(days=1)).isoformat(),
    }
    refused = await client.post(f"/cases/{case_id}/plan/reviews", data=form)
    assert refused.status_code == 400
    assert f'id="e-{commitment}"' in refused.text
    assert "Scegli a che punto è." in refused.text
    assert f'id="e-{note}"' in refused.text
    assert "al massimo 500 caratteri" in _text(refused.text)
    assert 'id="e-next_review_on"' in refused.text
    kept = _inputs(refused.text)
    assert kept[objective] == "in_progress"
    assert kept[note] == "x" * 501
    assert kept["notes"] == "La signora ha portato i documenti."
    assert kept["next_review_on"] == (today - timedelta(days=1)).isoformat()
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(PlanReview)) == 0

    form |= {note: "Due colloqui fatti", commitment: "done", "next_review_on": ""}
    recorded = await client.post(f"/cases/{case_id}/plan/reviews", data=form)
    assert recorded.status_code == 303
    assert recorded.headers["location"].startswith(
        f"/cases/{case_id}/plan/reviews?notice=recorded#review-"
    )
    shown = _text((await client.get(recorded.headers["location"])).text)
    assert "Verifica registrata." in shown
    assert "Trovare un lavoro stabile In corso Due colloqui fatti" in shown
    assert "Aggiornare il curriculum Fatto" in shown
    assert "Registrata da operatore" in shown
    assert "La signora ha portato i documenti." in shown
    async with database.transaction() as session:
        plan = await session.get(Plan, plan_id)
        assert plan is not None
        assert plan.next_review_on == today + timedelta(days=settings.plan_review_days)


CITIZENS = ("Anna Soon", "Bruno Late", "Carla Far", "Dario Now", "Elena Other", "Franco Draft")


def _listed(text: str) -> list[str]:
    """The citizens of `CITIZENS` the page names, in the page's order."""
    return sorted((name for name in CITIZENS if name in text), key=text.find)


async def test_the_reviews_due_come_overdue_first_and_only_the_viewers_own(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        await staff_accounts.add_user(
            session=session, username="collega", password=PASSWORD, role=Role.OPERATORE
        )
    today = _today()
    for name, days in (("Anna Soon", 2), ("Bruno Late", -3), ("Carla Far", 20), ("Dario Now", 0)):
        await _plan(database, settings, name=name, next_review_on=today + timedelta(days=days))
    await _plan(
        database, settings, username="collega", name="Elena Other",
        next_review_on=today - timedelta(days=1),
    )  # fmt: skip
    await _plan(database, settings, name="Franco Draft", active=False, next_review_on=today)

    await login(client, "operatore")
    page = await client.get("/plans/reviews")
    assert page.status_code == 200
    text = _text(page.text)
    assert _listed(text) == ["Bruno Late", "Dario Now", "Anna Soon"]
    assert "scaduta da 3 giorni" in text
    assert "oggi" in text
    assert "tra 2 giorni" in text
    assert re.search(r'href="/cases/\d+/plan"', page.text)

    await client.post("/logout", data={"csrf_token": csrf_from(page.text)})
    await login(client, "coordinatore")
    text = _text((await client.get("/plans/reviews")).text)
    assert _listed(text) == ["Bruno Late", "Elena Other", "Dario Now", "Anna Soon"]


async def test_a_follow_up_is_booked_and_refused_while_the_citizen_has_a_booking(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    case_id, _plan_id = await _plan(database, settings)
    await login(client, "operatore")
    page = await client.get(f"/cases/{case_id}/plan/follow-up")
    assert page.status_code == 200
    slots = [
        unescape(v) for v in re.findall(r'name="slot" type="radio" value="([^"]+)"', page.text)
    ]
    assert len(slots) >= 2
    token = csrf_from(page.text)

    nothing = await client.post(f"/cases/{case_id}/plan/follow-up", data={"csrf_token": token})
    assert nothing.status_code == 400
    assert "Scegli un orario." in nothing.text

    booked = await client.post(
        f"/cases/{case_id}/plan/follow-up", data={"csrf_token": token, "slot": slots[0]}
    )
    assert booked.status_code == 303
    shown = await client.get(booked.headers["location"])
    assert "Incontro di monitoraggio prenotato." in shown.text
    assert "Codice di prenotazione" in shown.text
    assert 'name="slot"' not in shown.text  # one booking at a time: no times offered

    again = await client.post(
        f"/cases/{case_id}/plan/follow-up", data={"csrf_token": token, "slot": slots[1]}
    )
    assert again.status_code == 400
    assert "La persona ha già una prenotazione attiva" in again.text
    async with database.transaction() as session:
        booked_count = await session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.state == BookingState.BOOKED.value)
        )
    assert booked_count == 1


async def test_a_plan_not_active_has_no_reviews_or_follow_ups(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    case_id, _plan_id = await _plan(database, settings, active=False)
    await login(client, "operatore")
    listing = await client.get(f"/cases/{case_id}/plan/reviews")
    assert listing.status_code == 200
    assert "Solo un piano attivo" in listing.text
    assert "/plan/reviews/new" not in listing.text
    page = await client.get(f"/cases/{case_id}/plan/reviews/new")
    assert page.status_code == 400
    assert "Solo un piano attivo" in page.text
    token = csrf_from(page.text)
    refused = await client.post(
        f"/cases/{case_id}/plan/reviews",
        data={"csrf_token": token, "held_on": _today().isoformat()},
    )
    assert refused.status_code == 400
    assert "Solo un piano attivo" in refused.text
    follow_up = await client.get(f"/cases/{case_id}/plan/follow-up")
    assert "Solo un piano attivo" in follow_up.text
    assert 'name="slot"' not in follow_up.text


async def test_an_admin_gets_403_and_a_colleague_no_plan(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        await staff_accounts.add_user(
            session=session, username="collega", password=PASSWORD, role=Role.OPERATORE
        )
    case_id, _plan_id = await _plan(database, settings)
    paths = [path.replace("{case_id}", str(case_id)) for _method, path in EXPECTED]
    await login(client, "admin")
    token = csrf_from((await client.get("/password")).text)
    for (method, _path), path in zip(EXPECTED, paths, strict=True):
        response = await client.request(
            method, path, data={"csrf_token": token} if method == "POST" else None
        )
        assert response.status_code == 403, (method, path)
    await client.post("/logout", data={"csrf_token": token})
    await login(client, "collega")
    for path in paths:
        if path != "/plans/reviews":
            assert (await client.get(path)).status_code == 404, path
    assert "Giuseppina" not in (await client.get("/plans/reviews")).text


# --- hostile values, with a real active plan ---------------------------------------------

HOSTILE = [
    "9" * 25, "-1", "0", "9999-12-31", "0001-01-01", "31/02/2027", "", "x" * 10_000, "a\x00b",
    "\u202e1", "1|9999-12-31T23:59:59+00:00", "1|2020-01-01T09:00:00+00:00",
]  # fmt: skip


async def test_no_hostile_value_gives_a_server_error_on_the_review_pages(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    case_id, _plan_id = await _plan(database, settings)
    await login(client, "operatore")
    page = await client.get(f"/cases/{case_id}/plan/reviews/new")
    token = csrf_from(page.text)
    # The statuses and notes are named after the plan's rows, and forged names too.
    dynamic = [
        *_status_fields(page.text),
        *(name.replace(".status", ".note") for name in _status_fields(page.text)),
        "objective:99999.status", "commitment:1.colour", "objective:" + "9" * 25 + ".status",
    ]  # fmt: skip
    plausible: dict[str, str] = {
        "held_on": _today().isoformat(), "next_review_on": "", "notes": "", "helpdesk": "",
        "day": "", "notice": "", "slot": "",
    } | {name: "done" for name in dynamic if name.endswith(".status")}  # fmt: skip
    failures = []
    for entry in route_entries(app):
        for method in entry.methods:
            if (method, entry.path) not in EXPECTED:
                continue
            dependant = entry.route.dependant
            where: list[tuple[str, str]] = [
                *(("path", p.alias) for p in dependant.path_params),
                *(("query", p.alias) for p in dependant.query_params),
                *(("form", p.alias) for p in dependant.body_params),
            ]
            if entry.path == "/cases/{case_id}/plan/reviews" and method == "POST":
                where += [("form", name) for name in dynamic]
            for _kind, name in where:
                for hostile in HOSTILE:
                    path = entry.path
                    query: dict[str, Any] = {}
                    form: dict[str, Any] = {"csrf_token": token}
                    for kind, other in where:
                        chosen = hostile if other == name else None
                        if kind == "path":
                            value = str(case_id) if chosen is None else chosen
                            path = path.replace("{" + other + "}", quote(value, safe=""))
                        elif kind == "query":
                            query[other] = plausible[other] if chosen is None else chosen
                        else:
                            form[other] = plausible.get(other, "") if chosen is None else chosen
                    response = await client.request(
                        method, path, params=query, data=form if method == "POST" else None
                    )
                    if response.status_code >= 500:
                        failures.append(f"{method} {entry.path} {name}={hostile[:20]!r}")
    assert failures == []
