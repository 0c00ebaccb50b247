"""Admitted cases, funds and plans at a given point of their life, for the plan tests."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases import access
from shared.cases import service as cases
from shared.cases.models import Case
from shared.funds import service as funds
from shared.funds.models import Fund
from shared.plans import catalog
from shared.plans import service as plans
from shared.plans.catalog import Kind
from shared.plans.form import (
    CommitmentInput,
    ObjectiveInput,
    PlanInput,
    Responsible,
    SupportInput,
)
from shared.plans.models import Plan, SupportState
from shared.settings import Settings
from shared.staff.models import Role
from tests.factories import make_helpdesk
from tests.shared.cases.builders import NOW, checked_in, make_staff, member

STARTS = date(2027, 1, 4)
_helpdesks = itertools.count(1)
ENDS = date(2027, 3, 31)


@dataclasses.dataclass(frozen=True)
class People:
    """The case worker who writes the plan and the coordinator who approves it."""

    worker: access.StaffMember
    boss: access.StaffMember


async def make_people(session: AsyncSession) -> People:
    worker = await make_staff(session, "giulia")
    boss = await make_staff(session, "carla", Role.COORDINATORE)
    return People(member(worker), member(boss))


async def admitted_case(
    session: AsyncSession, settings: Settings, staff: access.StaffMember, **candidate: Any
) -> Case:
    """A candidate interviewed and admitted by `staff`: the case waits for its plan."""
    helpdesk = await make_helpdesk(session, name=f"Sportello {next(_helpdesks)}", places=20)
    _citizen, case, _booking = await checked_in(session, settings, helpdesk, **candidate)
    return await cases.record_outcome(
        session=session, case_id=case.id, outcome="admitted", staff=staff, now=NOW
    )


async def make_fund(session: AsyncSession, *, cents: int, name: str = "Doniamo Energia") -> Fund:
    fund = await funds.create_fund(
        session=session, name=name, funder="Fondazione Cariplo", actor="staff:test", now=NOW
    )
    if cents:
        await funds.deposit(
            session=session, fund_id=fund.id, amount_cents=cents, actor="staff:test", now=NOW
        )
    return fund


def details(kind: Kind, **values: str | list[str]) -> Any:
    fields = {k: v if isinstance(v, list) else [v] for k, v in values.items()}
    return catalog.parse_details(kind, fields)


def emergency(
    *,
    fund_id: int | None,
    monthly: str = "300",
    months: str = "3",
    id: int | None = None,
    state: SupportState = SupportState.PROPOSED,
    ends_on: date = ENDS,
) -> SupportInput:
    return SupportInput(
        id=id,
        kind=Kind.EMERGENCY_SUPPORT,
        details=details(
            Kind.EMERGENCY_SUPPORT,
            form="monthly",
            monthly_amount=monthly,
            months=months,
            purpose=["rent"],
            paid_to="landlord",
            payee="Immobiliare Naviglio",
        ),
        responsible=Responsible(organisation="farsi_prossimo"),
        starts_on=STARTS,
        ends_on=ends_on,
        state=state,
        fund_id=fund_id,
    )


def job_search(*, id: int | None = None, staff_id: int | None = None) -> SupportInput:
    return SupportInput(
        id=id,
        kind=Kind.JOB_SEARCH,
        details=details(Kind.JOB_SEARCH, activities=["cv", "orientation"], job_centre="yes"),
        responsible=Responsible(staff_id=staff_id) if staff_id else Responsible(organisation="csl"),
        starts_on=STARTS,
        ends_on=ENDS,
        state=SupportState.PROPOSED,
        fund_id=None,
    )


def complete_input(*supports: SupportInput) -> PlanInput:
    return PlanInput(
        summary="Ha perso il lavoro di magazziniera nel 2021; affitto arretrato di due mesi.",
        next_review_on=None,
        objectives=(
            ObjectiveInput(None, "Trovare un lavoro stabile", "Un contratto entro sei mesi"),
        ),
        commitments=(CommitmentInput(None, "Aggiornare il curriculum", date(2027, 1, 20)),),
        supports=supports,
    )


async def plan_with(
    session: AsyncSession,
    settings: Settings,
    staff: access.StaffMember,
    case: Case,
    data: PlanInput,
) -> Plan:
    """The case's plan started and saved with `data` (a draft)."""
    await plans.start_plan(session=session, case_id=case.id, staff=staff, now=NOW)
    saved = await plans.save_plan(
        session=session, case_id=case.id, data=data, staff=staff, settings=settings, now=NOW
    )
    return saved.plan


def as_input(rows: plans.PlanRows, **changes: Any) -> PlanInput:
    """The stored plan as the editor would send it back unchanged (then `changes`)."""
    supports = tuple(
        SupportInput(
            id=s.id, kind=Kind(s.kind), details=catalog.load_details(s.kind, s.details),
            responsible=Responsible(s.responsible_id, s.organisation), starts_on=s.starts_on,
            ends_on=s.ends_on, state=SupportState(s.state), fund_id=s.fund_id,
        )
        for s in rows.supports
    )  # fmt: skip
    base = PlanInput(
        summary=rows.plan.summary,
        next_review_on=rows.plan.next_review_on,
        objectives=tuple(
            ObjectiveInput(o.id, o.objective, o.expected_result) for o in rows.objectives
        ),
        commitments=tuple(CommitmentInput(c.id, c.what, c.due_on) for c in rows.commitments),
        supports=supports,
        team=(),
    )
    return dataclasses.replace(base, **changes)
