"""What the plan tells the citizen: queued once per event, only with a chat, the review
reminder following its date; the "I've read it" service.

Dates are fixed (the builders' December 2026), so the tests pass at any hour.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases.models import Case
from shared.outbox.models import MessageState, OutboxMessage
from shared.plans import acknowledgements
from shared.plans import messages as plan_messages
from shared.plans import service as plans
from shared.plans.acknowledgements import PlanChanged, shown_hash
from shared.plans.errors import PlanNotFound
from shared.plans.form import CommitmentInput
from shared.plans.messages import MessageKind, review_notice_at
from shared.plans.models import Plan, PlanAcknowledgement, SupportState
from shared.settings import Settings
from tests.factories import rome
from tests.shared.cases.builders import NOW
from tests.shared.plans.builders import (
    People,
    admitted_case,
    as_input,
    complete_input,
    emergency,
    job_search,
    make_fund,
    make_people,
    plan_with,
)

# Wednesday 9 December 2026, 08:00 in Cernusco: approved and signed that morning.
LATER = NOW + timedelta(days=2)
SIGNED_ON = LATER.date()
FIRST_REVIEW = SIGNED_ON + timedelta(days=90)  # Tuesday 9 March 2027
PLAN_KINDS = [k.value for k in MessageKind]
_telegram_ids = itertools.count(810_000)
_funds = itertools.count(1)


@pytest.fixture
async def people(session: AsyncSession) -> People:
    return await make_people(session)


async def _approved(
    session: AsyncSession, settings: Settings, people: People, *, telegram: bool = True
) -> Case:
    fund = await make_fund(session, cents=5_000_00, name=f"Fondo {next(_funds)}")
    candidate = {"telegram_id": next(_telegram_ids)} if telegram else {}
    case = await admitted_case(session, settings, people.worker, **candidate)
    await plan_with(
        session, settings, people.worker, case,
        complete_input(emergency(fund_id=fund.id), job_search()),
    )  # fmt: skip
    await plans.submit_plan(session=session, case_id=case.id, staff=people.worker, now=LATER)
    await plans.approve_plan(session=session, case_id=case.id, staff=people.boss, now=LATER)
    return case


async def _sign(session: AsyncSession, settings: Settings, people: People, case: Case) -> Plan:
    return await plans.record_signature(
        session=session, case_id=case.id, signed_on=SIGNED_ON, staff=people.worker,
        settings=settings, now=LATER,
    )  # fmt: skip


async def _close(session: AsyncSession, people: People, case: Case, now: datetime) -> Plan:
    closure = plans.parse_closure(
        outcome="employed", income="better", debts="same", urgent_expenses="better", notes=""
    )
    return await plans.close_plan(
        session=session, case_id=case.id, closure=closure, staff=people.worker, now=now
    )


async def _save(
    session: AsyncSession, settings: Settings, people: People, case: Case, now: datetime, **changes
) -> plans.SaveResult:
    rows = await plans.get_plan(session=session, case_id=case.id, staff=people.worker)
    return await plans.save_plan(
        session=session, case_id=case.id, data=as_input(rows, **changes),
        staff=people.worker, settings=settings, now=now,
    )  # fmt: skip


async def _messages(session: AsyncSession) -> list[OutboxMessage]:
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind.in_(PLAN_KINDS))
        .order_by(OutboxMessage.id)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


def _summary(messages: list[OutboxMessage]) -> list[tuple[str, str, dict[str, object]]]:
    return [(m.kind, m.state, m.payload) for m in messages]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# --- once per event ----------------------------------------------------------------------


async def test_each_event_is_queued_once_per_version_even_when_told_twice(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case = await _approved(session, settings, people)
    plan = await plans.get_plan(session=session, case_id=case.id, staff=people.worker)
    plan_id = plan.plan.id
    [approved] = await _messages(session)
    assert (approved.kind, approved.citizen_id) == (MessageKind.PLAN_APPROVED, case.citizen_id)
    assert approved.idempotency_key == f"plan:{plan_id}:v1:approved"
    assert (approved.payload, approved.subject) == (
        {"plan_id": plan_id, "version": 1},
        f"plan:{plan_id}",
    )
    assert approved.due_at == _utc(LATER)
    # Told again about the same version: nothing new.
    await plan_messages.queue_plan_approved(
        session=session, citizen_id=case.citizen_id, plan=plan.plan, now=LATER + timedelta(hours=1)
    )
    assert len(await _messages(session)) == 1

    signed = await _sign(session, settings, people, case)
    await plan_messages.queue_plan_active(
        session=session, citizen_id=case.citizen_id, plan=signed, now=LATER
    )
    await plan_messages.queue_review_reminder(
        session=session, settings=settings, citizen_id=case.citizen_id, plan=signed, now=LATER
    )
    assert _summary(await _messages(session)) == [
        ("plan_approved", "pending", {"plan_id": plan_id, "version": 1}),
        ("plan_active", "pending", {"plan_id": plan_id, "version": 1}),
        ("plan_review_due", "pending", {"plan_id": plan_id, "review_on": FIRST_REVIEW.isoformat()}),
    ]

    # A material change sends it back; approved again it is version 2, told once more.
    rows = await plans.get_plan(session=session, case_id=case.id, staff=people.worker)
    money = rows.supports[0]
    higher = (
        emergency(fund_id=money.fund_id, monthly="400", id=money.id, state=SupportState.ACTIVE),
        *as_input(rows).supports[1:],
    )
    result = await _save(session, settings, people, case, LATER, supports=higher)
    assert result.sent_back
    reapproved = await plans.approve_plan(
        session=session, case_id=case.id, staff=people.boss, now=LATER
    )
    assert reapproved.version == 2
    await plan_messages.queue_plan_approved(
        session=session, citizen_id=case.citizen_id, plan=reapproved, now=LATER
    )
    await _sign(session, settings, people, case)
    kinds = [(m.kind, m.payload.get("version")) for m in await _messages(session)]
    assert kinds == [
        ("plan_approved", 1),
        ("plan_active", 1),
        ("plan_review_due", None),  # the date didn't change: the same reminder stays
        ("plan_approved", 2),
        ("plan_active", 2),
    ]

    await _close(session, people, case, LATER)
    closed = await plans.get_plan(session=session, case_id=case.id, staff=people.worker)
    await plan_messages.queue_plan_closed(
        session=session, citizen_id=case.citizen_id, plan=closed.plan, now=LATER
    )
    messages = await _messages(session)
    assert [m.kind for m in messages].count("plan_closed") == 1
    assert messages[-1].idempotency_key == f"plan:{plan_id}:v2:closed"
    # Closing withdrew the review reminder; the rest is for the bot to withdraw if stale.
    review = next(m for m in messages if m.kind == "plan_review_due")
    assert review.state == MessageState.CANCELLED


async def test_a_citizen_without_telegram_is_told_nothing(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case = await _approved(session, settings, people, telegram=False)
    await _sign(session, settings, people, case)
    await _save(session, settings, people, case, LATER, next_review_on=date(2027, 2, 1))
    await _close(session, people, case, LATER)
    assert await _messages(session) == []


# --- the review reminder -----------------------------------------------------------------


def test_the_reminder_goes_three_days_before_at_ten_or_at_once(settings: Settings) -> None:
    review = date(2027, 3, 9)
    early = rome(2027, 1, 10, 15)
    assert review_notice_at(review, settings, early) == _utc(rome(2027, 3, 6, 10))
    # After the clocks change the hour is still 10 in Cernusco.
    assert review_notice_at(date(2027, 4, 2), settings, early) == _utc(rome(2027, 3, 30, 10))
    # Set closer than three days ahead: at once; on the day itself, or after, never.
    close = rome(2027, 3, 7, 16)
    assert review_notice_at(review, settings, close) == close
    assert review_notice_at(review, settings, rome(2027, 3, 9, 7)) is None
    assert review_notice_at(review, settings, rome(2027, 3, 10, 9)) is None


async def test_the_review_reminder_is_replaced_when_the_date_changes(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case = await _approved(session, settings, people)
    await _sign(session, settings, people, case)

    def reviews(messages: list[OutboxMessage]) -> list[tuple[str, str, datetime]]:
        return [
            (str(m.payload["review_on"]), m.state, m.due_at)
            for m in messages
            if m.kind == MessageKind.PLAN_REVIEW_DUE
        ]

    first = (FIRST_REVIEW.isoformat(), "pending", _utc(rome(2027, 3, 6, 10)))
    assert reviews(await _messages(session)) == [first]

    # Saving other changes leaves it alone.
    await _save(session, settings, people, case, LATER, summary="Un'altra sintesi")
    assert reviews(await _messages(session)) == [first]

    moved = date(2027, 4, 15)
    await _save(session, settings, people, case, LATER, next_review_on=moved)
    second = (moved.isoformat(), "pending", _utc(rome(2027, 4, 12, 10)))
    assert reviews(await _messages(session)) == [(*first[:1], "cancelled", first[2]), second]

    # Back to the first date: a reminder of its own, although that date was queued before.
    await _save(session, settings, people, case, LATER, next_review_on=FIRST_REVIEW)
    now = reviews(await _messages(session))
    assert [state for _, state, _ in now] == ["cancelled", "cancelled", "pending"]
    assert now[-1] == first

    # Two days from now: at once. No date: nothing waits.
    soon = SIGNED_ON + timedelta(days=2)
    await _save(session, settings, people, case, LATER, next_review_on=soon)
    assert reviews(await _messages(session))[-1] == (soon.isoformat(), "pending", _utc(LATER))
    await _save(session, settings, people, case, LATER, next_review_on=None)
    assert {state for _, state, _ in reviews(await _messages(session))} == {"cancelled"}


async def test_a_plan_not_signed_yet_has_no_review_to_remind_of(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case = await _approved(session, settings, people)
    await _save(session, settings, people, case, LATER, next_review_on=date(2027, 2, 1))
    assert [m.kind for m in await _messages(session)] == ["plan_approved"]


# --- "I've read it" ----------------------------------------------------------------------


async def _active(session: AsyncSession, settings: Settings, people: People) -> tuple[Case, Plan]:
    case = await _approved(session, settings, people)
    return case, await _sign(session, settings, people, case)


async def test_reading_is_recorded_once_with_the_version_and_the_summarys_hash(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case, plan = await _active(session, settings, people)
    summary = await plan_messages.plan_summary(session=session, plan=plan)
    tapped = LATER + timedelta(hours=3)
    first = await acknowledgements.acknowledge_plan(
        session=session, citizen_id=case.citizen_id, plan_id=plan.id, version=1,
        shown=shown_hash(summary), now=tapped,
    )  # fmt: skip
    assert first.new
    again = await acknowledgements.acknowledge_plan(
        session=session, citizen_id=case.citizen_id, plan_id=plan.id, version=1,
        shown=shown_hash(summary), now=tapped + timedelta(minutes=5),
    )  # fmt: skip
    assert not again.new
    [recorded] = await acknowledgements.acknowledgements_of(session=session, plan_id=plan.id)
    assert (recorded.version, recorded.content_hash) == (1, summary.content_hash())
    assert recorded.acknowledged_at == _utc(tapped)
    assert len(recorded.content_hash) == 64


async def test_the_hash_is_over_what_the_citizen_agrees_to_in_no_language(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    _case, plan = await _active(session, settings, people)
    summary = await plan_messages.plan_summary(session=session, plan=plan)
    assert [c.what for c in summary.commitments] == ["Aggiornare il curriculum"]
    assert [(s.kind, s.amount_cents, s.provider) for s in summary.supports] == [
        ("emergency_support", 900_00, "Associazione Farsi Prossimo Cernusco"),
        ("job_search", 0, "CS&L Consorzio sociale"),
    ]
    # The review date is information, not content: moving it keeps the hash.
    moved = dataclasses.replace(summary, review_on=date(2027, 5, 1))
    assert moved.content_hash() == summary.content_hash()
    reworded = dataclasses.replace(
        summary, commitments=(dataclasses.replace(summary.commitments[0], what="Altro"),)
    )
    assert reworded.content_hash() != summary.content_hash()
    assert dataclasses.replace(summary, version=2).content_hash() != summary.content_hash()


async def test_a_changed_plan_or_another_citizens_is_refused_and_nothing_recorded(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case, plan = await _active(session, settings, people)
    other = await _approved(session, settings, people)
    shown = shown_hash(await plan_messages.plan_summary(session=session, plan=plan))

    async def tap(citizen_id: int, version: int = 1, hash_: str = shown) -> None:
        await acknowledgements.acknowledge_plan(
            session=session, citizen_id=citizen_id, plan_id=plan.id, version=version,
            shown=hash_, now=LATER,
        )  # fmt: skip

    with pytest.raises(PlanNotFound):
        await tap(other.citizen_id)
    with pytest.raises(PlanChanged):
        await tap(case.citizen_id, version=2)
    with pytest.raises(PlanChanged):
        await tap(case.citizen_id, hash_="0" * 16)
    # Same version, a commitment moved: what they were shown is no longer the plan.
    rows = await plans.get_plan(session=session, case_id=case.id, staff=people.worker)
    moved = (CommitmentInput(rows.commitments[0].id, "Aggiornare il curriculum", date(2027, 2, 1)),)
    await _save(session, settings, people, case, LATER, commitments=moved)
    with pytest.raises(PlanChanged) as changed:
        await tap(case.citizen_id)
    assert changed.value.current is not None
    assert changed.value.current.commitments[0].due_on == date(2027, 2, 1)
    # Closed: nothing to read any more.
    await _close(session, people, case, LATER)
    with pytest.raises(PlanChanged) as closed:
        await tap(case.citizen_id)
    assert (closed.value.state, closed.value.current) == ("closed", None)
    assert (await session.scalars(select(PlanAcknowledgement))).all() == []
