"""A small program with hand-counted figures (see `EXPECTED` in the tests that use it).

Today is Wednesday 10 March 2027 at noon in Rome; the period is 1 January to 10 March 2027.
Every row is written directly, so each number below can be counted by reading this file.

Citizens first seen in the period, C1-C10 (C11 and C12 came before it):

| who | questionnaire | case | bookings (local day, helpdesk, state) | plan |
|---|---|---|---|---|
| C1 | completed, eligible | closed | 1 Feb H1 attended | approved 11 Feb, closed 1 Mar: employed, better/same/same |
| C2 | completed, eligible | interviewed | 2 Feb H1 no-show; 9 Feb H2 attended | approved 1 Mar, active, review 8 Mar |
| C3 | completed, eligible | booked, opened 10 Feb | 1 Mar H2 cancelled by the citizen, moved to 10 Mar H2 booked | - |
| C4 | completed, not resident | new, not eligible | 3 Feb H2 request declined | - |
| C5 | completed, situation "other" | new, admitted by a coordinator 22 Feb | - | - |
| C6, C7 | in progress at "household" | - | - | - |
| C8 | in the summary | - | - | - |
| C9 | expired | - | - | - |
| C10 | in progress at "residence", no consent recorded | - | - | - |
| C11 (Dec 2026) | completed, eligible | interviewed, admitted 5 Feb | 15 Jan H1 cancelled by the citizen | none yet |
| C12 (Nov 2026) | - | closed | - | approved 1 Dec 2026, closed 20 Feb: dropped out, better/worse/same |

Two privacy notices refused in the period, one before it. Funds: F1 (10.000 €) committed
800 € on 5 Jan, 1.600 € on 11 Feb and 2.400 € on 1 Mar, released 400 € and paid 1.000 € on
1 Mar; F2 (1.000 €) committed 900 € on 1 Mar; F3 (500 €) closed to commitments, untouched.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking.models import Booking, Helpdesk, Slot
from shared.cases.models import Case, Interview
from shared.citizens.models import Citizen, ConsentRefusal
from shared.figures.period import Period
from shared.funds.models import Fund, FundMovement
from shared.intake.models import Intake
from tests.factories import ELIGIBLE_ANSWERS, rome

NOW = rome(2027, 3, 10, 12)
PERIOD = Period(date(2027, 1, 1), date(2027, 3, 10))
_codes = itertools.count(1)


@dataclass
class Built:
    h1: int
    h2: int
    funds: dict[str, int]
    cases: dict[str, int]


async def _helpdesk(session: AsyncSession, name: str) -> Helpdesk:
    helpdesk = Helpdesk(name=name, address="Via Roma 1, Cernusco sul Naviglio")
    session.add(helpdesk)
    await session.flush()
    return helpdesk


async def _citizen(
    session: AsyncSession, name: str, created: datetime, *, consented: bool = True
) -> Citizen:
    citizen = Citizen(
        name=name, created_at=created, consent_version="2026-11" if consented else None,
        consented_at=created if consented else None,
    )  # fmt: skip
    session.add(citizen)
    await session.flush()
    return citizen


async def _intake(
    session: AsyncSession, citizen: Citizen, state: str, *, step: str | None = None,
    answers: dict[str, Any] | None = None, eligible: bool | None = None,
) -> None:  # fmt: skip
    session.add(
        Intake(
            citizen_id=citizen.id, state=state, current_step=step, answers=answers or {},
            history=list(answers or {}), started_at=citizen.created_at,
            updated_at=citizen.created_at, eligible=eligible,
            completed_at=citizen.created_at if state == "completed" else None,
        )
    )  # fmt: skip


async def _booking(
    session: AsyncSession, citizen: Citizen, helpdesk: Helpdesk, starts: datetime, state: str,
    *, moderation: str | None = None, moved_from: int | None = None,
) -> Booking:  # fmt: skip
    slot = Slot(
        helpdesk_id=helpdesk.id, starts_at=starts, ends_at=starts + timedelta(minutes=30),
        capacity=5, taken=1 if state == "booked" else 0,
    )  # fmt: skip
    session.add(slot)
    await session.flush()
    booking = Booking(
        code=f"T{next(_codes):05d}", citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        slot_id=slot.id, starts_at=starts, ends_at=starts + timedelta(minutes=30),
        state=state, created_at=starts - timedelta(days=5), created_by="test",
        moderation=moderation, moved_from_id=moved_from,
    )  # fmt: skip
    session.add(booking)
    await session.flush()
    return booking


async def _case(session: AsyncSession, citizen: Citizen, state: str, **values: Any) -> Case:
    values.setdefault("opened_at", citizen.created_at)
    case = Case(citizen_id=citizen.id, state=state, **values)
    session.add(case)
    await session.flush()
    return case


async def _interview(session: AsyncSession, case: Case, completed: datetime) -> None:
    session.add(
        Interview(case_id=case.id, outcome="admitted", started_at=completed, completed_at=completed)
    )


async def _fund(session: AsyncSession, name: str, deposited: int, **values: Any) -> Fund:
    fund = Fund(name=name, funder="Fondazione Cariplo", deposited_cents=deposited, **values)
    session.add(fund)
    await session.flush()
    session.add(
        FundMovement(fund_id=fund.id, kind="deposit", amount_cents=deposited, actor="test",
                     at=rome(2026, 12, 1))
    )  # fmt: skip
    return fund


async def build(session: AsyncSession) -> Built:
    """The program of the module docstring."""
    from shared.plans.models import Plan, PlanSupport

    h1 = await _helpdesk(session, "Sportello Comune")
    h2 = await _helpdesk(session, "Sportello Farsi Prossimo")
    eligible = {**ELIGIBLE_ANSWERS}
    c = {}
    for number, created in enumerate(
        (
            rome(2027, 1, 10, 9), rome(2027, 1, 20, 9), rome(2027, 2, 10, 9),
            rome(2027, 2, 12, 9), rome(2027, 2, 14, 9), rome(2027, 2, 20, 9),
            rome(2027, 2, 21, 9), rome(2027, 2, 22, 9), rome(2027, 1, 5, 9),
            rome(2027, 3, 1, 9), rome(2026, 12, 1, 9), rome(2026, 11, 1, 9),
        ),
        start=1,
    ):  # fmt: skip
        c[number] = await _citizen(session, f"Cittadino {number}", created, consented=number != 10)
    for number in (1, 2, 3, 11):
        await _intake(session, c[number], "completed", answers=eligible, eligible=True)
    await _intake(session, c[4], "completed", answers={"residence": "no", "contact_offer": "no"},
                  eligible=False)  # fmt: skip
    await _intake(
        session, c[5], "completed", eligible=False,
        answers={"residence": "yes", "situation": "other", "contact_offer": "no"},
    )  # fmt: skip
    partial = {"residence": "yes", "situation": "job_loss", "since": "2026-10",
               "pandemic_related": "yes"}  # fmt: skip
    await _intake(session, c[6], "in_progress", step="household", answers=partial)
    await _intake(session, c[7], "in_progress", step="household", answers=partial)
    await _intake(session, c[8], "summary", answers=eligible)
    await _intake(session, c[9], "expired")
    await _intake(session, c[10], "in_progress", step="residence")
    # Before the period: not counted by the screening.
    session.add(ConsentRefusal(notice_version="2026-11", at=rome(2027, 1, 3, 10)))
    session.add(ConsentRefusal(notice_version="2026-11", at=rome(2027, 3, 9, 10)))
    session.add(ConsentRefusal(notice_version="2026-11", at=rome(2026, 12, 30, 10)))

    b1 = await _booking(session, c[1], h1, rome(2027, 2, 1, 11), "attended")
    await _booking(session, c[2], h1, rome(2027, 2, 2, 11), "no_show")
    b2 = await _booking(session, c[2], h2, rome(2027, 2, 9, 11), "attended")
    old = await _booking(session, c[3], h2, rome(2027, 3, 1, 10), "cancelled_by_citizen")
    b3 = await _booking(session, c[3], h2, rome(2027, 3, 10, 15), "booked", moved_from=old.id)
    await _booking(session, c[4], h2, rome(2027, 2, 3, 10), "cancelled_by_staff",
                   moderation="declined")  # fmt: skip
    b11 = await _booking(session, c[11], h1, rome(2027, 1, 15, 10), "cancelled_by_citizen")

    case1 = await _case(session, c[1], "closed", eligible=True, helpdesk_id=h1.id,
                        booking_id=b1.id)  # fmt: skip
    await _interview(session, case1, rome(2027, 2, 1, 11))
    case2 = await _case(session, c[2], "interviewed", eligible=True, helpdesk_id=h2.id,
                        booking_id=b2.id)  # fmt: skip
    await _interview(session, case2, rome(2027, 2, 9, 11))
    case3 = await _case(session, c[3], "booked", eligible=True, helpdesk_id=h2.id,
                        booking_id=b3.id)  # fmt: skip
    case4 = await _case(session, c[4], "new", eligible=False)
    case5 = await _case(
        session, c[5], "new", eligible=False, eligibility_override=True,
        override_reason="Ha perso il lavoro a chiamata", override_by="staff:coordinatore",
        override_at=rome(2027, 2, 22, 10),
    )  # fmt: skip
    case11 = await _case(session, c[11], "interviewed", eligible=True, helpdesk_id=h1.id,
                         booking_id=b11.id)  # fmt: skip
    await _interview(session, case11, rome(2027, 2, 5, 10))
    case12 = await _case(session, c[12], "closed", eligible=True)

    f1 = await _fund(session, "Fondo Cariplo", 10_000_00, committed_cents=3_400_00,
                     paid_cents=1_000_00)  # fmt: skip
    f2 = await _fund(session, "Fondo Banco dell'energia", 1_000_00, committed_cents=900_00)
    f3 = await _fund(session, "Fondo chiuso", 500_00, active=False)

    plan1 = Plan(
        case_id=case1.id, state="closed", approved_at=rome(2027, 2, 11, 12),
        closed_at=rome(2027, 3, 1, 12), outcome="employed", income_trend="better",
        debts_trend="same", urgent_expenses_trend="same",
    )  # fmt: skip
    plan2 = Plan(
        case_id=case2.id, state="active", approved_at=rome(2027, 3, 1, 12),
        next_review_on=date(2027, 3, 8),
    )  # fmt: skip
    plan12 = Plan(
        case_id=case12.id, state="closed", approved_at=rome(2026, 12, 1, 12),
        closed_at=rome(2027, 2, 20, 12), outcome="dropped_out", income_trend="better",
        debts_trend="worse", urgent_expenses_trend="same",
    )  # fmt: skip
    session.add_all([plan1, plan2, plan12])
    await session.flush()
    supports = {}
    for key, plan, kind, state, fund in (
        ("s1", plan1, "emergency_support", "completed", f1),
        ("s1b", plan1, "job_search", "completed", None),
        ("s2", plan2, "emergency_support", "active", f1),
        ("s2b", plan2, "internship", "cancelled", f2),
        ("s12", plan12, "emergency_support", "completed", f1),
    ):
        support = PlanSupport(plan_id=plan.id, kind=kind, state=state,
                              fund_id=fund.id if fund else None)  # fmt: skip
        session.add(support)
        await session.flush()
        supports[key] = support
    for fund, kind, cents, support, at in (
        (f1, "commitment", 800_00, supports["s12"], rome(2027, 1, 5, 12)),
        (f1, "commitment", 1_600_00, supports["s1"], rome(2027, 2, 11, 12)),
        (f1, "commitment", 2_400_00, supports["s2"], rome(2027, 3, 1, 12)),
        (f1, "release", 400_00, supports["s2"], rome(2027, 3, 1, 13)),
        (f1, "payment", 1_000_00, supports["s1"], rome(2027, 3, 1, 14)),
        (f2, "commitment", 900_00, supports["s2b"], rome(2027, 3, 1, 12)),
    ):
        payment = (
            {"paid_on": date(2027, 3, 1), "paid_to": "citizen", "method": "bank_transfer"}
            if kind == "payment"
            else {}
        )
        session.add(
            FundMovement(fund_id=fund.id, kind=kind, amount_cents=cents, support_id=support.id,
                         plan_id=support.plan_id, actor="test", at=at, **payment)
        )  # fmt: skip
    await session.flush()
    return Built(
        h1=h1.id, h2=h2.id,
        funds={"F1": f1.id, "F2": f2.id, "F3": f3.id},
        cases={"C3": case3.id, "C4": case4.id, "C5": case5.id, "C11": case11.id},
    )  # fmt: skip
