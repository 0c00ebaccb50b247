"""The plan page and the plans list take at most six SQL statements per request, whatever
the plan holds (issue 10): counted on the engine for the whole request, the sign-in
session's lookup and its touch (once a minute) included, as the case pages' test counts them."""

from __future__ import annotations

import dataclasses
from datetime import date

import httpx
from sqlalchemy import select

from shared.cases import access
from shared.db import Database, utcnow
from shared.plans import scans
from shared.plans import service as plans
from shared.plans.form import CommitmentInput, ObjectiveInput, Responsible, TeamInput
from shared.plans.models import PlanSupport
from shared.settings import Settings
from shared.staff.models import Role, StaffUser
from tests.dashboard.conftest import budget_of, login, statements_of
from tests.shared.plans.builders import (
    admitted_case,
    as_input,
    complete_input,
    emergency,
    job_search,
    make_fund,
    plan_with,
)

MAX_STATEMENTS = 6
PDF = b"%PDF-1.4\n% a scan\n%%EOF\n"


async def _active_plan(database: Database, settings: Settings) -> tuple[int, int]:
    """`operatore`'s active plan with rows of every kind, a history and a scan; and an
    admitted case of theirs without a plan yet."""
    async with database.transaction() as session:
        worker = await session.scalar(select(StaffUser).where(StaffUser.username == "operatore"))
        boss = await session.scalar(select(StaffUser).where(StaffUser.username == "coordinatore"))
        assert worker is not None and boss is not None
        staff = access.StaffMember(worker.id, Role.OPERATORE, "staff:operatore")
        coordinator = access.StaffMember(boss.id, Role.COORDINATORE, "staff:coordinatore")
        fund = await make_fund(session, cents=5_000_00)
        case = await admitted_case(session, settings, staff, name="Giuseppina Fumagalli")
        data = dataclasses.replace(
            complete_input(emergency(fund_id=fund.id), job_search(staff_id=worker.id)),
            objectives=(
                ObjectiveInput(None, "Trovare un lavoro stabile", "Un contratto entro sei mesi"),
                ObjectiveInput(None, "Pagare l'affitto arretrato", "Nessun arretrato a marzo"),
            ),
            commitments=(
                CommitmentInput(None, "Aggiornare il curriculum", date(2027, 1, 20)),
                CommitmentInput(None, "Andare al Centro per l'impiego", None),
            ),
            team=(TeamInput(None, Responsible(staff_id=worker.id), "", "Case manager"),),
        )
        await plan_with(session, settings, staff, case, data)
        now = utcnow()
        await plans.submit_plan(session=session, case_id=case.id, staff=staff, now=now)
        await plans.approve_plan(session=session, case_id=case.id, staff=coordinator, now=now)
        await plans.record_signature(
            session=session, case_id=case.id, signed_on=now.astimezone(settings.tz).date(), staff=staff,
            settings=settings, now=now,
        )  # fmt: skip
        await scans.attach_signed_scan(
            session=session, case_id=case.id, content=PDF, staff=staff, now=now
        )
        # A change after approval: kept in the plan's history.
        rows = await plans.get_plan(session=session, case_id=case.id, staff=staff)
        await plans.save_plan(
            session=session, case_id=case.id, data=as_input(
                rows, summary="Aggiornato.",
                team=tuple(
                    TeamInput(m.id, Responsible(staff_id=m.staff_id), m.name or "", m.role)
                    for m in rows.team
                ),
            ),
            staff=staff, settings=settings, now=now,
        )  # fmt: skip
        waiting = await admitted_case(session, settings, staff, name="Luigi Brambilla")
        return case.id, waiting.id


async def test_the_plan_page_takes_at_most_six_statements(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    case_id, waiting_id = await _active_plan(database, settings)
    for username in ("operatore", "coordinatore"):
        await login(client, username)
        for path in (f"/cases/{case_id}/plan", f"/cases/{waiting_id}/plan"):
            response, statements = await statements_of(database, lambda p=path: client.get(p))
            assert response.status_code == 200, (username, path)
            budget = budget_of(statements, MAX_STATEMENTS)
            assert len(statements) <= budget, (username, path, statements)
        page = (await client.get(f"/cases/{case_id}/plan")).text
        # What the statements brought is on the page: rows, history, scan, choices.
        for shown in (
            "Pagare l&#39;affitto arretrato", "Andare al Centro per l&#39;impiego",
            "Case manager", "Immobiliare Naviglio", "Doniamo Energia", "Aggiornato.",
            f"/cases/{case_id}/plan/scans/",
        ):  # fmt: skip
            assert shown in page, (username, shown)
        # A coordinator reaches the payments of the support with money.
        assert ("/payments" in page) is (username == "coordinatore")


async def test_the_plans_list_takes_at_most_six_statements(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    await _active_plan(database, settings)
    async with database.transaction() as session:
        kinds = (await session.scalars(select(PlanSupport.kind))).all()
    assert kinds
    for username in ("operatore", "coordinatore"):
        await login(client, username)
        for path in (
            "/plans",
            "/plans?state=active",
            f"/plans?kind={kinds[0]}",
            "/plans?state=&owner=&kind=",
        ):
            response, statements = await statements_of(database, lambda p=path: client.get(p))
            assert response.status_code == 200, (username, path)
            budget = budget_of(statements, MAX_STATEMENTS)
            assert len(statements) <= budget, (username, path, statements)
        listed = (await client.get("/plans?state=active")).text
        assert "Giuseppina Fumagalli" in listed
