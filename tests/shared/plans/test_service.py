"""Plans: start, edit, every transition allowed and refused, money, history, signature, close."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.cases.access import StaffMember
from shared.cases.models import Case, CaseState
from shared.db import Database
from shared.funds import service as funds
from shared.funds.errors import FundExhausted
from shared.funds.models import Fund, FundMovement
from shared.plans import service as plans
from shared.plans.catalog import Kind
from shared.plans.errors import (
    CaseNotReady,
    IllegalTransition,
    IncompletePlan,
    InvalidInput,
    NotAllowed,
    PlanNotFound,
)
from shared.plans.form import ObjectiveInput, PlanInput
from shared.plans.lifecycle import RULES, Action
from shared.plans.models import Plan, PlanChange, PlanState, SupportState
from shared.settings import Settings
from shared.staff.models import Role
from tests.factories import make_helpdesk
from tests.shared.cases.builders import NOW, checked_in, make_staff, member
from tests.shared.plans.builders import (
    admitted_case,
    as_input,
    complete_input,
    details,
    emergency,
    job_search,
    make_fund,
    plan_with,
)

LATER = NOW + timedelta(days=2)


People = dict[str, StaffMember]


@pytest.fixture
async def people(session: AsyncSession) -> People:
    worker = await make_staff(session, "giulia")
    boss = await make_staff(session, "carla", Role.COORDINATORE)
    admin = await make_staff(session, "root", Role.ADMIN)
    other = await make_staff(session, "marco")
    return {
        "worker": member(worker),
        "boss": member(boss),
        "admin": member(admin),
        "other": member(other),
    }


async def _rows(session: AsyncSession, case: Case, who: StaffMember) -> plans.PlanRows:
    return await plans.get_plan(session=session, case_id=case.id, staff=who)


async def _submitted(session: AsyncSession, settings: Settings, people: People, fund: Fund) -> Case:
    case = await admitted_case(session, settings, people["worker"])
    await plan_with(
        session, settings, people["worker"], case,
        complete_input(emergency(fund_id=fund.id), job_search()),
    )  # fmt: skip
    await plans.submit_plan(session=session, case_id=case.id, staff=people["worker"], now=NOW)
    return case


# --- starting and editing --------------------------------------------------------------


async def test_only_an_admitted_case_gets_a_plan_prefilled_from_the_interview(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    helpdesk = await make_helpdesk(session, places=5)
    _citizen, waiting, _booking = await checked_in(session, settings, helpdesk)
    with pytest.raises(CaseNotReady):
        await plans.start_plan(session=session, case_id=waiting.id, staff=people["worker"], now=NOW)
    case = await admitted_case(session, settings, people["worker"], name="Anna Verdi")
    plan = await plans.start_plan(session=session, case_id=case.id, staff=people["worker"], now=NOW)
    assert plan.state == PlanState.DRAFT
    assert "Storia lavorativa" in plan.summary  # the interview's work history section
    again = await plans.start_plan(
        session=session, case_id=case.id, staff=people["worker"], now=NOW
    )
    assert again.id == plan.id


async def test_a_case_worker_sees_no_plan_of_a_colleague_and_an_admin_none(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case = await admitted_case(session, settings, people["worker"])
    await plan_with(session, settings, people["worker"], case, complete_input(job_search()))
    with pytest.raises(PlanNotFound):
        await _rows(session, case, people["other"])
    with pytest.raises(NotAllowed):
        await _rows(session, case, people["admin"])
    assert (await _rows(session, case, people["boss"])).plan.case_id == case.id


async def test_a_draft_saves_half_done_and_keeps_no_history(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case = await admitted_case(session, settings, people["worker"])
    plan = await plan_with(
        session, settings, people["worker"], case, PlanInput(summary="", next_review_on=None)
    )
    rows = await _rows(session, case, people["worker"])
    data = as_input(rows, objectives=(ObjectiveInput(None, "Pagare l'affitto", ""),))
    await plans.save_plan(
        session=session, case_id=case.id, data=data, staff=people["worker"],
        settings=settings, now=NOW,
    )  # fmt: skip
    rows = await _rows(session, case, people["worker"])
    assert [o.objective for o in rows.objectives] == ["Pagare l'affitto"]
    history = await plans.plan_history(session=session, plan_id=plan.id)
    assert history == []  # before approval, changes are not tracked


async def test_a_row_of_another_plan_or_an_unknown_fund_is_refused(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    first = await admitted_case(session, settings, people["worker"], name="Anna Verdi")
    await plan_with(session, settings, people["worker"], first, complete_input(job_search()))
    theirs = (await _rows(session, first, people["worker"])).objectives[0].id
    second = await admitted_case(session, settings, people["worker"], name="Luca Neri")
    forged = complete_input(job_search())
    forged = dataclasses.replace(forged, objectives=(ObjectiveInput(theirs, "Rubato", ""),))
    with pytest.raises(InvalidInput) as refused:
        await plan_with(session, settings, people["worker"], second, forged)
    assert refused.value.errors == {"objective-0.id": plans.UNKNOWN_ROW}
    with pytest.raises(InvalidInput) as refused:
        await plans.save_plan(
            session=session, case_id=second.id,
            data=complete_input(emergency(fund_id=987654)), staff=people["worker"],
            settings=settings, now=NOW,
        )  # fmt: skip
    assert refused.value.errors == {"support-0.fund_id": plans.UNKNOWN_FUND}


async def test_submitting_names_every_gap(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case = await admitted_case(session, settings, people["worker"])
    half = dataclasses.replace(emergency(fund_id=None), starts_on=None)
    await plan_with(
        session, settings, people["worker"], case,
        PlanInput(summary="", next_review_on=None, supports=(half,)),
    )  # fmt: skip
    with pytest.raises(IncompletePlan) as refused:
        await plans.submit_plan(session=session, case_id=case.id, staff=people["worker"], now=NOW)
    assert set(refused.value.errors) == {
        "summary", "objectives", "support-0.starts_on", "support-0.fund_id",
    }  # fmt: skip


# --- transitions --------------------------------------------------------------------------


async def _plan_in(
    session: AsyncSession,
    settings: Settings,
    people: dict,
    state: PlanState,  # type: ignore[type-arg]
) -> Case:
    fund = await make_fund(session, cents=10_000_00, name=f"Fondo {state}")
    case = await admitted_case(session, settings, people["worker"], name=f"Caso {state}")
    plan = await plan_with(
        session, settings, people["worker"], case,
        complete_input(emergency(fund_id=fund.id), job_search()),
    )  # fmt: skip
    plan.state = state.value
    if state in (PlanState.APPROVED, PlanState.ACTIVE, PlanState.CLOSED):
        plan.approved_at = NOW
    await session.flush()
    return case


async def _take(
    session: AsyncSession, settings: Settings, action: Action, case: Case, who: StaffMember
) -> Plan:
    if action is Action.SUBMIT:
        return await plans.submit_plan(session=session, case_id=case.id, staff=who, now=LATER)
    if action is Action.APPROVE:
        return await plans.approve_plan(session=session, case_id=case.id, staff=who, now=LATER)
    if action is Action.RETURN:
        return await plans.return_plan(
            session=session, case_id=case.id, comment="Manca il preventivo", staff=who, now=LATER
        )
    if action is Action.SIGN:
        return await plans.record_signature(
            session=session, case_id=case.id, signed_on=LATER.date(), staff=who,
            settings=settings, now=LATER,
        )  # fmt: skip
    if action is Action.CLOSE:
        closure = plans.parse_closure(
            outcome="employed", income="better", debts="same", urgent_expenses="better", notes=""
        )
        return await plans.close_plan(
            session=session, case_id=case.id, closure=closure, staff=who, now=LATER
        )
    rows = await _rows(session, case, who)
    saved = await plans.save_plan(
        session=session, case_id=case.id, data=as_input(rows, summary="Nuova sintesi"),
        staff=who, settings=settings, now=LATER,
    )  # fmt: skip
    return saved.plan


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("state", list(PlanState))
async def test_every_transition_is_allowed_or_refused_as_the_table_says(
    session: AsyncSession, settings: Settings, people: People, state: PlanState, action: Action
) -> None:
    case = await _plan_in(session, settings, people, state)
    rule = RULES[action]
    who = people["boss"]
    if state not in rule.allowed_in:
        with pytest.raises(IllegalTransition) as refused:
            await _take(session, settings, action, case, who)
        assert (refused.value.code, refused.value.action, refused.value.state) == (
            "illegal_transition", action.value, state.value,
        )  # fmt: skip
        return
    plan = await _take(session, settings, action, case, who)
    assert plan.state == (rule.leads_to or state).value


@pytest.mark.parametrize("action", [Action.APPROVE, Action.RETURN])
async def test_only_a_coordinator_approves_or_returns(
    session: AsyncSession, settings: Settings, people: People, action: Action
) -> None:
    case = await _plan_in(session, settings, people, PlanState.SUBMITTED)
    with pytest.raises(NotAllowed):
        await _take(session, settings, action, case, people["worker"])


async def test_a_returned_plan_carries_the_comment_and_can_be_submitted_again(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case = await _plan_in(session, settings, people, PlanState.SUBMITTED)
    with pytest.raises(InvalidInput):
        await plans.return_plan(
            session=session, case_id=case.id, comment=" ", staff=people["boss"], now=LATER
        )
    plan = await _take(session, settings, Action.RETURN, case, people["boss"])
    assert (plan.state, plan.return_comment) == ("returned", "Manca il preventivo")
    plan = await _take(session, settings, Action.SUBMIT, case, people["worker"])
    assert plan.state == "submitted"


# --- money --------------------------------------------------------------------------------


async def test_approval_commits_each_support_against_its_fund(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    fund = await make_fund(session, cents=5_000_00)
    case = await _submitted(session, settings, people, fund)
    plan = await plans.approve_plan(
        session=session, case_id=case.id, staff=people["boss"], now=LATER
    )
    assert (plan.state, plan.version) == ("approved", 1)
    [balance] = await funds.balances(session=session)
    assert (balance.committed_cents, balance.left_cents) == (900_00, 4_100_00)


async def test_approval_that_does_not_fit_names_the_fund_and_what_is_left(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    fund = await make_fund(session, cents=800_00)
    case = await _submitted(session, settings, people, fund)
    with pytest.raises(FundExhausted) as refused:
        await plans.approve_plan(session=session, case_id=case.id, staff=people["boss"], now=LATER)
    assert (refused.value.fund_name, refused.value.left_cents) == ("Doniamo Energia", 800_00)
    assert refused.value.needed_cents == 900_00


async def test_two_approvals_racing_for_the_last_euros_one_wins(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        worker = member(await make_staff(session, "giulia"))
        boss = member(await make_staff(session, "carla", Role.COORDINATORE))
        fund = await make_fund(session, cents=900_00)  # exactly one plan's money
        cases = []
        for n in range(8):
            case = await admitted_case(session, settings, worker, name=f"Persona {n}")
            await plan_with(
                session, settings, worker, case, complete_input(emergency(fund_id=fund.id))
            )
            await plans.submit_plan(session=session, case_id=case.id, staff=worker, now=NOW)
            cases.append(case.id)

    async def approve(case_id: int) -> bool:
        try:
            async with database.transaction() as session:
                await plans.approve_plan(session=session, case_id=case_id, staff=boss, now=LATER)
        except FundExhausted:
            return False
        return True

    results = await asyncio.gather(*(approve(c) for c in cases))
    assert results.count(True) == 1
    async with database.transaction() as session:
        approved = await session.scalar(
            select(func.count()).select_from(Plan).where(Plan.state == "approved")
        )
        stored = await session.get(Fund, fund.id)
        commitments = await session.scalar(
            select(func.count()).select_from(FundMovement).where(FundMovement.kind == "commitment")
        )
    assert (approved, commitments) == (1, 1)
    assert stored is not None and stored.committed_cents == 900_00


# --- after approval: history and the material change ---------------------------------


async def test_after_approval_each_change_is_kept_and_a_minor_one_keeps_the_approval(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    fund = await make_fund(session, cents=5_000_00)
    case = await _submitted(session, settings, people, fund)
    plan = await plans.approve_plan(
        session=session, case_id=case.id, staff=people["boss"], now=LATER
    )
    rows = await _rows(session, case, people["worker"])
    objective = rows.objectives[0]
    changed = as_input(
        rows, objectives=(ObjectiveInput(objective.id, "Trovare un lavoro a tempo pieno", ""),)
    )
    result = await plans.save_plan(
        session=session, case_id=case.id, data=changed, staff=people["worker"],
        settings=settings, now=LATER,
    )  # fmt: skip
    assert (result.plan.state, result.sent_back) == ("approved", False)
    [change] = [
        c
        for c in await plans.plan_history(session=session, plan_id=plan.id)
        if c.what == "objective"
    ]
    assert change.actor == "staff:giulia"
    assert change.before == {
        "objective": "Trovare un lavoro stabile",
        "expected_result": "Un contratto entro sei mesi",
    }
    assert change.after == {"objective": "Trovare un lavoro a tempo pieno", "expected_result": ""}
    assert change.material is False


@pytest.mark.parametrize(
    "change",
    ["higher amount", "longer duration", "new support with money"],
)
async def test_a_material_change_sends_the_plan_back_and_reapproval_commits_the_difference(
    session: AsyncSession, settings: Settings, people: People, change: str
) -> None:
    fund = await make_fund(session, cents=5_000_00)
    case = await _submitted(session, settings, people, fund)
    await plans.approve_plan(session=session, case_id=case.id, staff=people["boss"], now=LATER)
    rows = await _rows(session, case, people["worker"])
    current = as_input(rows)
    money = current.supports[0]
    if change == "higher amount":
        supports = (emergency(fund_id=fund.id, monthly="400", id=money.id), *current.supports[1:])
    elif change == "longer duration":
        supports = (dataclasses.replace(money, ends_on=date(2027, 5, 31)), *current.supports[1:])
    else:
        supports = (*current.supports, emergency(fund_id=fund.id, monthly="100", months="1"))
    result = await plans.save_plan(
        session=session, case_id=case.id, data=dataclasses.replace(current, supports=supports),
        staff=people["worker"], settings=settings, now=LATER,
    )  # fmt: skip
    assert (result.plan.state, result.sent_back) == ("submitted", True)
    history = await plans.plan_history(session=session, plan_id=result.plan.id)
    assert any(c.material and c.what == "support" for c in history)
    plan = await plans.approve_plan(
        session=session, case_id=case.id, staff=people["boss"], now=LATER
    )
    assert plan.version == 2
    [balance] = await funds.balances(session=session)
    expected = {
        "higher amount": 1_200_00,
        "longer duration": 900_00,
        "new support with money": 1_000_00,
    }
    assert balance.committed_cents == expected[change]


async def test_a_lower_amount_or_a_cancelled_support_gives_the_money_back(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    fund = await make_fund(session, cents=5_000_00)
    case = await _submitted(session, settings, people, fund)
    await plans.approve_plan(session=session, case_id=case.id, staff=people["boss"], now=LATER)
    rows = await _rows(session, case, people["worker"])
    current = as_input(rows)
    money_id = current.supports[0].id
    lower = (emergency(fund_id=fund.id, monthly="200", id=money_id), *current.supports[1:])
    result = await plans.save_plan(
        session=session, case_id=case.id, data=dataclasses.replace(current, supports=lower),
        staff=people["worker"], settings=settings, now=LATER,
    )  # fmt: skip
    assert result.plan.state == "approved"  # lower is not material
    assert (await funds.balances(session=session))[0].committed_cents == 600_00
    cancelled = (
        emergency(fund_id=fund.id, monthly="200", id=money_id, state=SupportState.CANCELLED),
        *current.supports[1:],
    )
    await plans.save_plan(
        session=session, case_id=case.id, data=dataclasses.replace(current, supports=cancelled),
        staff=people["worker"], settings=settings, now=LATER,
    )  # fmt: skip
    assert (await funds.balances(session=session))[0].committed_cents == 0
    with pytest.raises(InvalidInput) as refused:
        await plans.save_plan(
            session=session, case_id=case.id,
            data=dataclasses.replace(current, supports=current.supports[1:]),
            staff=people["worker"], settings=settings, now=LATER,
        )  # fmt: skip
    assert refused.value.errors == {"supports": plans.CANCEL_INSTEAD}


# --- signature and closure ----------------------------------------------------------------


async def test_the_signature_activates_the_plan_and_sets_the_first_review(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    fund = await make_fund(session, cents=5_000_00)
    case = await _submitted(session, settings, people, fund)
    await plans.approve_plan(session=session, case_id=case.id, staff=people["boss"], now=LATER)
    with pytest.raises(InvalidInput) as refused:
        await plans.record_signature(
            session=session, case_id=case.id, signed_on=LATER.date() + timedelta(days=1),
            staff=people["worker"], settings=settings, now=LATER,
        )  # fmt: skip
    assert refused.value.errors == {"signed_on": plans.SIGNED_IN_FUTURE}
    plan = await plans.record_signature(
        session=session, case_id=case.id, signed_on=LATER.date(), staff=people["worker"],
        settings=settings, now=LATER,
    )  # fmt: skip
    assert (plan.state, plan.signed_on) == ("active", LATER.date())
    assert plan.next_review_on == LATER.date() + timedelta(days=90)
    rows = await _rows(session, case, people["worker"])
    assert {s.state for s in rows.supports} == {"active"}


async def test_closing_records_the_outcome_closes_the_case_and_releases_what_was_not_paid(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    fund = await make_fund(session, cents=5_000_00)
    case = await _submitted(session, settings, people, fund)
    await plans.approve_plan(session=session, case_id=case.id, staff=people["boss"], now=LATER)
    await plans.record_signature(
        session=session, case_id=case.id, signed_on=LATER.date(), staff=people["worker"],
        settings=settings, now=LATER,
    )  # fmt: skip
    rows = await _rows(session, case, people["worker"])
    money = rows.supports[0]
    await funds.record_payment(
        session=session, fund_id=fund.id, support_id=money.id, plan_id=rows.plan.id,
        amount_cents=300_00, paid_on=LATER.date(), paid_to="landlord", method="bank_transfer",
        actor="staff:carla", now=LATER,
    )  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        plans.parse_closure(outcome="won", income="", debts="same", urgent_expenses="x", notes="")
    assert set(refused.value.errors) == {"outcome", "income", "urgent_expenses"}
    closure = plans.parse_closure(
        outcome="employed", income="better", debts="same", urgent_expenses="better", notes=""
    )
    plan = await plans.close_plan(
        session=session, case_id=case.id, closure=closure, staff=people["worker"], now=LATER
    )
    assert (plan.state, plan.outcome, plan.income_trend) == ("closed", "employed", "better")
    await session.refresh(case)
    assert case.state == CaseState.CLOSED
    [balance] = await funds.balances(session=session)
    assert (balance.committed_cents, balance.paid_cents) == (0, 300_00)
    actions = set(
        (
            await session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.object_type == "case", AuditEvent.object_id == str(case.id)
                )
            )
        ).all()
    )
    assert {"plan.start", "plan.save", "plan.submit", "plan.approve", "plan.sign",
            "plan.read", "plan.close"} <= actions  # fmt: skip
    history = await plans.plan_history(session=session, plan_id=plan.id)
    assert [c.after["state"] for c in history if c.what == "state"][:3] == [
        "closed", "active", "approved",
    ]  # fmt: skip
    assert all(isinstance(c, PlanChange) for c in history)


async def test_saving_names_what_the_regions_guidance_would_question(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case = await admitted_case(session, settings, people["worker"])
    await plans.start_plan(session=session, case_id=case.id, staff=people["worker"], now=NOW)
    internship = dataclasses.replace(
        job_search(),
        kind=Kind.INTERNSHIP,
        details=details(Kind.INTERNSHIP, promoter="CS&L", host="Bar", monthly_allowance="400"),
    )
    saved = await plans.save_plan(
        session=session, case_id=case.id, data=complete_input(job_search(), internship),
        staff=people["worker"], settings=settings, now=NOW,
    )  # fmt: skip
    assert [w.field for w in saved.warnings] == ["support-1.monthly_allowance"]
