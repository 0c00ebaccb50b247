"""The plan page's read model gives what the services it replaces give, in order."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.cases.errors import CaseNotFound, CaseNotVisible
from shared.citizens.models import Citizen
from shared.plans import scans, view
from shared.plans import service as plans
from shared.plans.errors import NotAllowed
from shared.plans.form import ObjectiveInput, Responsible, TeamInput
from shared.settings import Settings
from shared.staff.models import Role
from tests.shared.cases.builders import NOW, make_staff, member
from tests.shared.plans.builders import (
    admitted_case,
    as_input,
    complete_input,
    emergency,
    job_search,
    make_fund,
    plan_with,
)

PDF = b"%PDF-1.4\n% a scan\n%%EOF\n"


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key != "content"}


async def _reads(session: AsyncSession) -> int:
    query = select(func.count()).where(AuditEvent.action == "plan.read")
    return int(await session.scalar(query) or 0)


async def test_the_page_has_the_rows_history_scans_and_choices_of_the_services(
    session: AsyncSession, settings: Settings
) -> None:
    worker = member(await make_staff(session, "zoe"))
    boss = member(await make_staff(session, "anna", Role.COORDINATORE))
    await make_staff(session, "bruno", active=False)
    await make_staff(session, "root", Role.ADMIN)
    fund = await make_fund(session, cents=5_000_00, name="Zeta")
    other_fund = await make_fund(session, cents=0, name="alfa")
    case = await admitted_case(session, settings, worker)
    data = dataclasses.replace(
        complete_input(emergency(fund_id=fund.id), job_search(staff_id=worker.user_id)),
        objectives=(ObjectiveInput(None, "Uno", "A"), ObjectiveInput(None, "Due", "")),
        team=(TeamInput(None, Responsible(organisation="csl"), "Ida", "Tutor"),),
    )
    await plan_with(session, settings, worker, case, data)
    await plans.submit_plan(session=session, case_id=case.id, staff=worker, now=NOW)
    await plans.approve_plan(session=session, case_id=case.id, staff=boss, now=NOW)
    await plans.record_signature(
        session=session, case_id=case.id, signed_on=NOW.date(), staff=worker, settings=settings,
        now=NOW + timedelta(hours=1),
    )  # fmt: skip
    for _ in range(2):
        await scans.attach_signed_scan(
            session=session, case_id=case.id, content=PDF, staff=worker, now=NOW
        )
    rows = await plans.get_plan(session=session, case_id=case.id, staff=worker)
    await plans.save_plan(
        session=session, case_id=case.id, data=as_input(rows, summary="Cambiato"), staff=worker,
        settings=settings, now=NOW + timedelta(hours=2),
    )  # fmt: skip
    await session.flush()
    expected = await plans.get_plan(session=session, case_id=case.id, staff=worker)
    reads = await _reads(session)

    page = await view.get_plan_page(session=session, case_id=case.id, staff=worker)

    assert await _reads(session) == reads + 1
    citizen = await session.get(Citizen, case.citizen_id)
    assert _columns(page.case) == _columns(case) and _columns(page.citizen) == _columns(citizen)
    assert page.rows is not None and _columns(page.rows.plan) == _columns(expected.plan)
    for name in ("objectives", "commitments", "supports", "team"):
        got, want = getattr(page.rows, name), getattr(expected, name)
        assert [_columns(r) for r in got] == [_columns(r) for r in want], name
    history = await plans.plan_history(session=session, plan_id=expected.plan.id)
    assert len(history) > 2
    assert [_columns(c) for c in page.history] == [_columns(c) for c in history]
    kept = await scans.scans_of(session=session, plan_id=expected.plan.id)
    assert [_columns(s) for s in page.scans] == [_columns(s) for s in kept]
    assert [s.display_name for s in page.staff] == ["Anna", "Zoe"]  # active, not admins
    assert [(f.id, f.name) for f in page.funds] == sorted(
        [(fund.id, "Zeta"), (other_fund.id, "alfa")], key=lambda f: f[1]
    )
    # Read-only copies: nothing the page holds is flushed with the request.
    shown = (page.case, page.citizen, page.rows.plan, *page.rows.supports, *page.history)
    assert not any(row in session for row in (*shown, *page.scans))


async def test_a_case_without_a_plan_has_the_choices_and_no_read_recorded(
    session: AsyncSession, settings: Settings
) -> None:
    worker = member(await make_staff(session, "zoe"))
    case = await admitted_case(session, settings, worker)
    reads = await _reads(session)
    page = await view.get_plan_page(session=session, case_id=case.id, staff=worker)
    assert page.rows is None and page.history == () and page.scans == ()
    assert [s.display_name for s in page.staff] == ["Zoe"]
    assert await _reads(session) == reads


async def test_who_may_not_see_the_plan_page(session: AsyncSession, settings: Settings) -> None:
    worker = member(await make_staff(session, "zoe"))
    other = member(await make_staff(session, "marco"))
    admin = member(await make_staff(session, "root", Role.ADMIN))
    case = await admitted_case(session, settings, worker)
    with pytest.raises(CaseNotVisible):
        await view.get_plan_page(session=session, case_id=case.id, staff=other)
    with pytest.raises(NotAllowed):
        await view.get_plan_page(session=session, case_id=case.id, staff=admin)
    with pytest.raises(CaseNotFound):
        await view.get_plan_page(session=session, case_id=case.id + 1000, staff=worker)
