"""A plan's kept changes in words, in Italian, with the catalog's labels and formats."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared.i18n import Translator
from shared.plans import history
from shared.plans import service as plans
from shared.settings import Settings
from shared.staff.models import Role
from tests.shared.cases.builders import NOW, make_staff, member
from tests.shared.plans.builders import (
    admitted_case,
    as_input,
    complete_input,
    emergency,
    make_fund,
    plan_with,
)


async def test_a_higher_amount_reads_as_before_and_after(
    session: AsyncSession, settings: Settings
) -> None:
    worker = member(await make_staff(session, "giulia"))
    boss = member(await make_staff(session, "carla", Role.COORDINATORE))
    fund = await make_fund(session, cents=5_000_00)
    case = await admitted_case(session, settings, worker)
    await plan_with(session, settings, worker, case, complete_input(emergency(fund_id=fund.id)))
    await plans.submit_plan(session=session, case_id=case.id, staff=worker, now=NOW)
    await plans.approve_plan(session=session, case_id=case.id, staff=boss, now=NOW)
    rows = await plans.get_plan(session=session, case_id=case.id, staff=worker)
    current = as_input(rows)
    higher = emergency(fund_id=fund.id, monthly="400", id=current.supports[0].id)
    await plans.save_plan(
        session=session, case_id=case.id, data=dataclasses.replace(current, supports=(higher,)),
        staff=worker, settings=settings, now=NOW + timedelta(hours=1),
    )  # fmt: skip
    changes = await plans.plan_history(session=session, plan_id=rows.plan.id)
    shown = [
        history.describe(c, Translator("it"), staff_names={}, fund_names={fund.id: fund.name})
        for c in changes
    ]
    support = next(v for v in shown if v.title.startswith("Sostegno"))
    assert support.title == "Sostegno: Supporto economico d'emergenza"
    assert support.material
    assert "Importo: 900,00\xa0€ → 1.200,00\xa0€" in support.lines
    assert "Importo mensile (€): 300,00\xa0€ → 400,00\xa0€" in support.lines
    state = next(v for v in shown if v.title == "Stato")
    assert "Stato: Approvato, da firmare → In attesa di approvazione" in state.lines
