"""Every figure on the small program of `dataset` (hand-counted there), both databases."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.figures import service
from shared.figures.bookings import bookings
from shared.figures.deadlines import Deadline, deadlines
from shared.figures.funds import funds
from shared.figures.funnel import funnel
from shared.figures.interventions import interventions
from shared.figures.outcomes import outcomes
from shared.figures.period import Period, PeriodReversed, PeriodTooLong, median
from shared.figures.screening import screening
from shared.settings import Settings
from tests.shared.figures.dataset import NOW, PERIOD, build


async def test_the_funnel(session: AsyncSession, settings: Settings) -> None:
    await build(session)
    found = (
        await service.figures(session=session, settings=settings, period=PERIOD, now=NOW)
    ).funnel
    assert [(s.key, s.count) for s in found.stages] == [
        ("started", 12), ("consented", 9), ("completed", 5), ("eligible", 4),
        ("booked", 4), ("attended", 2), ("plan_approved", 2), ("closed", 1),
    ]  # fmt: skip
    assert [s.conversion for s in found.stages] == [
        None, 9 / 12, 5 / 9, 4 / 5, 4 / 4, 2 / 4, 2 / 2, 1 / 2,
    ]  # fmt: skip
    assert found.consent_refusals == 2
    # C1: 22 days to the interview, 10 to the plan; C2: 20 and 20.
    assert (found.median_days_to_interview, found.interviews_timed) == (21, 2)
    assert (found.median_days_interview_to_plan, found.plans_timed) == (15, 2)


async def test_the_funnel_at_a_helpdesk(session: AsyncSession, settings: Settings) -> None:
    built = await build(session)
    found = await funnel(
        session=session, settings=settings, period=PERIOD, helpdesk_id=built.h1, now=NOW
    )
    # Nobody chooses a helpdesk before booking; C1 and C2 booked at H1, only C1 came and
    # has H1 as the case's helpdesk.
    assert [(s.key, s.count) for s in found.stages] == [
        ("started", None), ("consented", None), ("completed", None), ("eligible", None),
        ("booked", 2), ("attended", 1), ("plan_approved", 1), ("closed", 1),
    ]  # fmt: skip
    assert found.stages[4].conversion is None
    assert (found.median_days_to_interview, found.median_days_interview_to_plan) == (22, 10)


async def test_drop_off_per_question_and_reasons(session: AsyncSession, settings: Settings) -> None:
    await build(session)
    found = await screening(session=session, settings=settings, period=PERIOD, now=NOW)
    assert (found.started, found.completed, found.unfinished, found.expired) == (10, 5, 4, 1)
    assert found.unplaced == 0
    table = {q.position: (q.reached, q.stopped) for q in found.questions}
    # Nine placed (C9 expired): C10 stops at the first question, C6 and C7 at the
    # household, C8 in the summary; the five completed went to the end.
    assert table["residence"] == (9, 1)
    assert table["situation"] == table["since"] == table["pandemic_related"] == (8, 0)
    assert table["household"] == (8, 2)
    assert table["benefits"] == table["contact_offer"] == table["fiscal_code"] == (6, 0)
    assert table["summary"] == (6, 1)
    assert [q.position for q in found.questions][:3] == ["residence", "situation", "since"]
    assert [q.position for q in found.questions][-5:] == [
        "contact_offer", "name", "phone", "email", "fiscal_code", "summary"
    ][-5:]  # fmt: skip
    assert found.ruled_out == 2
    assert found.reasons == (
        ("not_resident", 1),
        ("situation_not_covered", 1),
        ("not_pandemic_related", 0),
    )


async def test_abandoned_questionnaires(session: AsyncSession, settings: Settings) -> None:
    """Only abandoned questionnaires: the counts fall question by question."""
    from tests.factories import rome
    from tests.shared.figures.dataset import _citizen, _intake

    where = ["residence", "residence", "situation", "since", "since", "since", "household",
             "name", "name", "fiscal_code", "contact_offer", "unknown_step"]  # fmt: skip
    for number, step in enumerate(where):
        citizen = await _citizen(session, f"C{number}", rome(2027, 2, 1, 9))
        await _intake(session, citizen, "in_progress", step=step)
    await session.flush()
    found = await screening(session=session, settings=settings, period=PERIOD, now=NOW)
    table = {q.position: (q.reached, q.stopped) for q in found.questions}
    assert found.unplaced == 1 and found.started == 12
    assert table["residence"] == (11, 2)
    assert table["situation"] == (9, 1)
    assert table["since"] == (8, 3)
    assert table["pandemic_related"] == (5, 0)
    assert table["household"] == (5, 1)
    assert table["urgent"] == (4, 0)
    assert table["contact_offer"] == (4, 1)
    assert table["name"] == (3, 2)
    assert table["phone"] == table["email"] == (1, 0)
    assert table["fiscal_code"] == (1, 1)
    assert table["summary"] == (0, 0)


async def test_bookings(session: AsyncSession, settings: Settings) -> None:
    built = await build(session)
    found = await bookings(session=session, settings=settings, period=PERIOD, now=NOW)
    assert found.weeks[0] == date(2026, 12, 28) and found.weeks[-1] == date(2027, 3, 8)
    assert [(r.helpdesk_id, r.week, r.appointments) for r in found.per_helpdesk_week] == [
        (built.h1, date(2027, 2, 1), 2),
        (built.h2, date(2027, 2, 8), 1),
        (built.h2, date(2027, 3, 8), 1),
    ]
    assert dict(found.by_state) == {
        "booked": 1, "attended": 2, "no_show": 1, "cancelled_by_citizen": 2,
        "cancelled_by_staff": 1,
    }  # fmt: skip
    assert found.no_show_rate == pytest.approx(1 / 3)
    assert dict(found.cancelled) == {
        "citizen": 2,
        "staff": 0,
        "request_declined": 1,
        "request_expired": 0,
    }
    assert found.moves == 1
    at_h1 = await bookings(
        session=session, settings=settings, period=PERIOD, helpdesk_id=built.h1, now=NOW
    )
    assert dict(at_h1.by_state)["cancelled_by_citizen"] == 1
    assert (at_h1.attended, at_h1.no_shows, at_h1.moves) == (1, 1, 0)


async def test_deadlines(session: AsyncSession, settings: Settings) -> None:
    built = await build(session)
    found = await deadlines(session=session, settings=settings, now=NOW)
    # C3 eligible since 10 Feb (due 2 Mar); C5 admitted on 22 Feb (due 14 Mar); C11
    # interviewed on 5 Feb (plan due 7 Mar); C2's review was on 8 Mar.
    assert [(r.deadline, r.overdue, r.soon) for r in found.rows] == [
        (Deadline.INTERVIEW, 1, 1), (Deadline.PLAN, 1, 0), (Deadline.REVIEW, 1, 0),
    ]  # fmt: skip
    row = found.of(Deadline.INTERVIEW)
    assert (row.overdue_to, row.soon_from, row.soon_to) == (
        date(2027, 3, 9),
        date(2027, 3, 10),
        date(2027, 3, 16),
    )
    at_h2 = await deadlines(session=session, settings=settings, helpdesk_id=built.h2,
                                    now=NOW)  # fmt: skip
    assert [(r.overdue, r.soon) for r in at_h2.rows] == [(1, 0), (0, 0), (1, 0)]
    later = settings.model_copy(update={"interview_due_days": 30, "plan_due_days": 40})
    moved = await deadlines(session=session, settings=later, now=NOW)
    assert [(r.overdue, r.soon) for r in moved.rows][:2] == [(0, 1), (0, 0)]


async def test_interventions(session: AsyncSession, settings: Settings) -> None:
    await build(session)
    found = await interventions(session=session, settings=settings, period=PERIOD,
                                        now=NOW)  # fmt: skip
    by_kind = {k.kind: dict(k.states) for k in found.kinds}
    assert list(by_kind) == [
        "emergency_support", "microcredit", "psychological_support", "benefits",
        "job_search", "internship",
    ]  # fmt: skip
    assert by_kind["emergency_support"] == {
        "proposed": 0,
        "active": 1,
        "completed": 1,
        "cancelled": 0,
    }
    assert by_kind["job_search"]["completed"] == 1
    assert by_kind["internship"]["cancelled"] == 1
    assert found.total == 4


async def test_funds_and_their_runway(session: AsyncSession, settings: Settings) -> None:
    built = await build(session)
    found = {f.fund_id: f for f in await funds(session=session, settings=settings,
                                                        now=NOW)}  # fmt: skip
    f1, f2, f3 = (found[built.funds[name]] for name in ("F1", "F2", "F3"))
    assert (f1.deposited_cents, f1.committed_cents, f1.paid_cents, f1.left_cents) == (
        10_000_00,
        3_400_00,
        1_000_00,
        5_600_00,
    )
    # The last 8 weeks: 1.600 + 2.400 committed, 400 released (the 800 of 5 January is
    # older; the payment moves no money out of "left").
    assert f1.weekly_pace_cents == 3_600_00 / 8
    assert f1.weeks_left == pytest.approx(5_600 / 450)
    assert not f1.warning
    assert (f2.left_cents, f2.weekly_pace_cents) == (100_00, 900_00 / 8)
    assert f2.weeks_left == pytest.approx(100 / 112.5) and f2.warning
    assert (f3.weeks_left, f3.warning) == (None, False)
    # Open funds first.
    assert [f.active for f in found.values()] == [True, True, False]


async def test_outcomes(session: AsyncSession, settings: Settings) -> None:
    await build(session)
    found = await outcomes(session=session, settings=settings, period=PERIOD, now=NOW)
    assert found.closed == 2
    assert dict(found.by_outcome)["employed"] == 1
    assert dict(found.by_outcome)["dropped_out"] == 1
    assert {b: dict(t) for b, t in found.by_baseline} == {
        "income": {"better": 2, "same": 0, "worse": 0},
        "debts": {"better": 0, "same": 1, "worse": 1},
        "urgent_expenses": {"better": 0, "same": 2, "worse": 0},
    }
    # C1 better/same/same improved; C12 better/worse/same did not.
    assert (found.checked, found.improved, found.improved_share) == (2, 1, 0.5)


def test_improved_is_one_better_and_none_worse() -> None:
    from shared.figures.outcomes import improved

    assert improved(("better", "same", "same"))
    assert improved(("better", "better", "better"))
    assert not improved(("same", "same", "same"))
    assert not improved(("better", "worse", "better"))
    assert not improved((None, None, None))


def test_runway() -> None:
    from shared.figures.funds import runway

    assert runway(1_000_00, 250_00) == 4
    assert runway(1_000_00, 0) is None
    assert runway(0, 250_00) == 0
    assert runway(-5, 0) == 0


def test_median_of_a_histogram() -> None:
    assert median([]) is None
    assert median([(5, 1)]) == 5
    assert median([(1, 1), (9, 1)]) == 5
    assert median([(3, 2), (1, 1), (10, 1)]) == 3
    assert median([(2, 0), (7, 3)]) == 7


def test_the_period() -> None:
    assert Period.last_months(date(2027, 3, 10)) == Period(date(2026, 3, 11), date(2027, 3, 10))
    assert Period.last_months(date(2027, 3, 31), 1) == Period(date(2027, 3, 1), date(2027, 3, 31))
    assert Period.last_months(date(2028, 2, 29)).first == date(2027, 3, 1)
    with pytest.raises(PeriodReversed):
        Period(date(2027, 3, 2), date(2027, 3, 1))
    with pytest.raises(PeriodTooLong):
        Period(date(2020, 1, 1), date(2027, 3, 1))
    assert Period(date(2027, 3, 1), date(2027, 3, 14)).weeks() == (
        date(2027, 3, 1),
        date(2027, 3, 8),
    )
