"""Plan reviews: recorded with progress per objective and commitment, the next review set,
every refusal (forged ids, bad statuses, long notes, dates, a plan not active), the list
of reviews due, and follow-up meetings booked through the booking service."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.booking.errors import AlreadyBooked
from shared.booking.models import Booking, BookingState
from shared.cases.access import StaffMember
from shared.cases.models import Case
from shared.outbox.models import MessageState, OutboxMessage
from shared.plans import listing, reviews
from shared.plans import service as plans
from shared.plans.errors import IllegalTransition, InvalidInput, NotAllowed, PlanNotFound
from shared.plans.form import ObjectiveInput
from shared.plans.models import Plan, PlanChange, PlanReview, PlanState
from shared.settings import Settings
from shared.staff.models import Role
from tests.factories import make_helpdesk, rome
from tests.shared.cases.builders import NOW, make_staff, member
from tests.shared.plans.builders import admitted_case, complete_input, job_search, plan_with

LATER = NOW + timedelta(days=2)
SIGNED_ON = LATER.date()
# A month after the signature: Friday 8 January 2027, 10:00 in Cernusco.
MEETING = rome(2027, 1, 8, 10)
HELD_ON = MEETING.date()

People = dict[str, StaffMember]


@pytest.fixture
async def people(session: AsyncSession) -> People:
    return {
        "worker": member(await make_staff(session, "giulia")),
        "boss": member(await make_staff(session, "carla", Role.COORDINATORE)),
        "admin": member(await make_staff(session, "root", Role.ADMIN)),
        "other": member(await make_staff(session, "marco")),
    }


async def _active(
    session: AsyncSession, settings: Settings, people: People, who: str = "worker", **candidate: Any
) -> tuple[Case, plans.PlanRows]:
    """An admitted case of `who` with a signed (active) plan: two objectives, one commitment."""
    staff = people[who]
    case = await admitted_case(session, settings, staff, **candidate)
    data = complete_input(job_search())
    data = dataclasses.replace(
        data,
        objectives=(
            *data.objectives,
            ObjectiveInput(None, "Rientrare dal debito dell'affitto", "Nessun arretrato"),
        ),
    )
    await plan_with(session, settings, staff, case, data)
    await plans.submit_plan(session=session, case_id=case.id, staff=staff, now=NOW)
    await plans.approve_plan(session=session, case_id=case.id, staff=people["boss"], now=LATER)
    await plans.record_signature(
        session=session, case_id=case.id, signed_on=SIGNED_ON, staff=staff, settings=settings,
        now=LATER,
    )  # fmt: skip
    return case, await plans.get_plan(session=session, case_id=case.id, staff=staff)


def _progress(rows: plans.PlanRows, status: str = "in_progress") -> dict[str, dict[str, str]]:
    return {item.key: {"status": status, "note": ""} for item in reviews.review_items(rows)}


async def _record(
    session: AsyncSession,
    settings: Settings,
    case: Case,
    staff: StaffMember,
    progress: dict[str, Any],
    *,
    held_on: date = HELD_ON,
    notes: str = "",
    next_review_on: date | None = None,
) -> PlanReview:
    return await reviews.record_review(
        session=session, case_id=case.id, held_on=held_on, progress=progress, notes=notes,
        next_review_on=next_review_on, staff=staff, settings=settings, now=MEETING,
    )  # fmt: skip


async def _count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# --- recording ---------------------------------------------------------------------------


async def test_a_review_records_progress_and_moves_the_next_review(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case, rows = await _active(session, settings, people, telegram_id=4242)
    first, second = rows.objectives
    [commitment] = rows.commitments
    first_review = rows.plan.next_review_on
    assert first_review == SIGNED_ON + timedelta(days=settings.plan_review_days)
    progress = {
        f"objective:{first.id}": {"status": "in_progress", "note": "  Due colloqui fatti  "},
        f"objective:{second.id}": {"status": "done", "note": ""},
        f"commitment:{commitment.id}": {"status": "not_done"},
    }
    review = await _record(
        session, settings, case, people["worker"], progress, notes="Incontro sereno."
    )

    assert review.held_on == HELD_ON
    assert review.next_review_on == HELD_ON + timedelta(days=settings.plan_review_days)
    assert review.actor == "staff:giulia"
    assert review.progress == {
        f"objective:{first.id}": {
            "status": "in_progress", "note": "Due colloqui fatti", "text": first.objective,
        },
        f"objective:{second.id}": {"status": "done", "note": "", "text": second.objective},
        f"commitment:{commitment.id}": {"status": "not_done", "note": "", "text": commitment.what},
    }  # fmt: skip
    plan = await session.get(Plan, rows.plan.id)
    assert plan is not None
    assert plan.next_review_on == review.next_review_on
    change = await session.scalar(
        select(PlanChange).where(PlanChange.plan_id == plan.id, PlanChange.what == "review")
    )
    assert change is not None
    assert change.item_id == review.id
    assert change.after == {"on": review.next_review_on.isoformat(), "held_on": "2027-01-08"}
    audit = await session.scalar(select(AuditEvent).where(AuditEvent.action == "plan.review"))
    assert audit is not None
    assert (audit.object_type, audit.object_id) == ("case", str(case.id))
    assert audit.details["review_id"] == review.id

    # The reminder moved with the date: the old one withdrawn, one for the new date waiting.
    reminders = (
        await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.subject == f"plan:{plan.id}:review")
            .order_by(OutboxMessage.id)
        )
    ).all()
    assert [(m.state, m.payload["review_on"]) for m in reminders] == [
        (MessageState.CANCELLED.value, first_review.isoformat()),
        (MessageState.PENDING.value, review.next_review_on.isoformat()),
    ]

    [listed] = await reviews.reviews_of(session=session, plan_id=plan.id)
    shown = reviews.shown(listed)
    assert shown.recorded_by == "giulia"
    assert shown.notes == "Incontro sereno."
    assert [(i.kind, i.text, i.status_label, i.note) for i in shown.items] == [
        ("objective", first.objective, "In progress", "Due colloqui fatti"),
        ("objective", second.objective, "Done", ""),
        ("commitment", commitment.what, "Not done", ""),
    ]


async def test_the_next_review_can_be_chosen_and_reviews_list_the_latest_first(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case, rows = await _active(session, settings, people)
    chosen = HELD_ON + timedelta(days=30)
    first = await _record(
        session, settings, case, people["boss"], _progress(rows), next_review_on=chosen
    )
    assert first.next_review_on == chosen
    later = await reviews.record_review(
        session=session, case_id=case.id, held_on=chosen, progress=_progress(rows, "done"),
        notes="", next_review_on=None, staff=people["worker"], settings=settings,
        now=rome(2027, 2, 8, 10),
    )  # fmt: skip
    plan = await session.get(Plan, rows.plan.id)
    assert plan is not None
    assert plan.next_review_on == chosen + timedelta(days=settings.plan_review_days)
    listed = await reviews.reviews_of(session=session, plan_id=plan.id)
    assert [r.id for r in listed] == [later.id, first.id]


async def test_every_objective_and_commitment_needs_a_known_status_and_notes_are_bounded(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case, rows = await _active(session, settings, people)
    first, second = (item.key for item in reviews.review_items(rows)[:2])
    commitment = reviews.review_items(rows)[2].key
    progress: dict[str, Any] = {
        first: {"status": "finished", "note": ""},
        second: {"status": "done", "note": "x" * (reviews.MAX_NOTE + 1)},
    }
    with pytest.raises(InvalidInput) as refused:
        await _record(
            session, settings, case, people["worker"], progress,
            notes="y" * (reviews.MAX_NOTES + 1),
        )  # fmt: skip
    assert refused.value.errors == {
        f"{first}.status": reviews.CHOOSE_STATUS,
        f"{second}.note": reviews.TOO_LONG,
        f"{commitment}.status": reviews.CHOOSE_STATUS,
        "notes": reviews.TOO_LONG,
    }
    assert refused.value.params[f"{second}.note"] == {"max_length": reviews.MAX_NOTE}
    assert refused.value.params["notes"] == {"max_length": reviews.MAX_NOTES}
    assert await _count(session, PlanReview) == 0


async def test_forged_ids_are_refused(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case, rows = await _active(session, settings, people)
    _other_case, other_rows = await _active(session, settings, people, name="Anna Verdi")
    foreign = other_rows.objectives[0].id
    for forged in (
        f"objective:{foreign}",
        f"commitment:{other_rows.commitments[0].id}",
        "objective:999999",
        f"support:{rows.supports[0].id}",
        "objective:abc",
    ):
        progress: dict[str, Any] = {**_progress(rows), forged: {"status": "done", "note": ""}}
        with pytest.raises(InvalidInput) as refused:
            await _record(session, settings, case, people["worker"], progress)
        assert refused.value.errors == {"progress": reviews.UNKNOWN_ITEM}, forged
    assert await _count(session, PlanReview) == 0


@pytest.mark.parametrize(
    ("held_on", "next_review_on", "field", "message"),
    [
        (HELD_ON + timedelta(days=1), None, "held_on", reviews.HELD_IN_FUTURE),
        (SIGNED_ON - timedelta(days=1), None, "held_on", reviews.HELD_BEFORE_SIGNING),
        (HELD_ON, HELD_ON, "next_review_on", reviews.NEXT_NOT_AFTER),
        (HELD_ON - timedelta(days=10), HELD_ON - timedelta(days=1), "next_review_on",
         reviews.NEXT_IN_PAST),
    ],
)  # fmt: skip
async def test_dates_that_make_no_sense_are_refused(
    session: AsyncSession,
    settings: Settings,
    people: People,
    held_on: date,
    next_review_on: date | None,
    field: str,
    message: str,
) -> None:
    case, rows = await _active(session, settings, people)
    with pytest.raises(InvalidInput) as refused:
        await _record(
            session, settings, case, people["worker"], _progress(rows), held_on=held_on,
            next_review_on=next_review_on,
        )  # fmt: skip
    assert refused.value.errors == {field: message}
    plan = await session.get(Plan, rows.plan.id)
    assert plan is not None
    assert plan.next_review_on == SIGNED_ON + timedelta(days=settings.plan_review_days)


async def test_a_review_cannot_come_before_one_already_recorded(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case, rows = await _active(session, settings, people)
    await _record(session, settings, case, people["worker"], _progress(rows))
    with pytest.raises(InvalidInput) as refused:
        await _record(
            session, settings, case, people["worker"], _progress(rows),
            held_on=HELD_ON - timedelta(days=1),
        )  # fmt: skip
    assert refused.value.errors == {"held_on": reviews.HELD_BEFORE_LAST}
    # The same day again is a second meeting that day, not a mistake.
    await _record(session, settings, case, people["worker"], _progress(rows))
    assert await _count(session, PlanReview) == 2


async def test_only_an_active_plan_is_reviewed(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    draft_case = await admitted_case(session, settings, people["worker"], name="Anna Verdi")
    await plan_with(session, settings, people["worker"], draft_case, complete_input(job_search()))
    with pytest.raises(reviews.PlanNotActive) as refused:
        await _record(session, settings, draft_case, people["worker"], {})
    assert isinstance(refused.value, IllegalTransition)
    assert (refused.value.code, refused.value.state) == ("plan_not_active", PlanState.DRAFT)

    case, rows = await _active(session, settings, people)
    closure = plans.parse_closure(
        outcome="employed", income="better", debts="same", urgent_expenses="better", notes=""
    )
    await plans.close_plan(
        session=session, case_id=case.id, closure=closure, staff=people["worker"], now=MEETING
    )
    with pytest.raises(reviews.PlanNotActive):
        await _record(session, settings, case, people["worker"], _progress(rows))
    assert await _count(session, PlanReview) == 0


async def test_who_may_review_is_the_plan_services_rule(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case, rows = await _active(session, settings, people)
    with pytest.raises(PlanNotFound):
        await _record(session, settings, case, people["other"], _progress(rows))
    with pytest.raises(NotAllowed):
        await _record(session, settings, case, people["admin"], _progress(rows))
    await _record(session, settings, case, people["boss"], _progress(rows))


async def test_the_form_names_every_problem_at_once(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    _case, rows = await _active(session, settings, people)
    first, second, commitment = (item.key for item in reviews.review_items(rows))
    with pytest.raises(InvalidInput) as refused:
        reviews.parse_review_form(
            held_on="31/02/2027", next_review_on="domani", notes="",
            fields={f"{first}.status": "done", f"{second}.status": "maybe",
                    "objective:1.colour": "red", "csrf_token": "x"},
            rows=rows, today=HELD_ON,
        )  # fmt: skip
    assert refused.value.errors == {
        "held_on": reviews.BAD_DAY,
        "next_review_on": reviews.BAD_DAY,
        f"{second}.status": reviews.CHOOSE_STATUS,
        f"{commitment}.status": reviews.CHOOSE_STATUS,
        "progress": reviews.UNKNOWN_ITEM,
    }
    with pytest.raises(InvalidInput) as refused:
        reviews.parse_review_form(
            held_on="", next_review_on="", notes="", fields={}, rows=rows, today=HELD_ON
        )
    assert refused.value.errors["held_on"] == reviews.WRITE_HELD_ON
    parsed = reviews.parse_review_form(
        held_on="08/01/2027", next_review_on="", notes="  Bene  ",
        fields={f"{key}.status": "done" for key in (first, second, commitment)}
        | {f"{first}.note": "Assunta in prova"},
        rows=rows, today=HELD_ON,
    )  # fmt: skip
    assert parsed == reviews.ReviewInput(
        held_on=HELD_ON,
        progress={
            first: {"status": "done", "note": "Assunta in prova"},
            second: {"status": "done"},
            commitment: {"status": "done"},
        },
        notes="Bene",
        next_review_on=None,
    )


# --- the reviews due ---------------------------------------------------------------------


async def test_the_reviews_due_are_the_viewers_overdue_first_then_the_soonest(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    today = date(2027, 3, 1)
    due_on = {
        "in five days": today + timedelta(days=5),
        "overdue by two": today - timedelta(days=2),
        "today": today,
        "overdue by ten": today - timedelta(days=10),
        "in eight days": today + timedelta(days=8),
    }
    plan_ids = {}
    for name, day in due_on.items():
        _case, rows = await _active(session, settings, people, name=name.title())
        plan_ids[name] = rows.plan.id
        rows.plan.next_review_on = day
    _case, colleagues = await _active(session, settings, people, "other", name="Di Marco")
    colleagues.plan.next_review_on = today
    draft_case = await admitted_case(session, settings, people["worker"], name="Bozza")
    draft = await plan_with(
        session, settings, people["worker"], draft_case, complete_input(job_search())
    )
    draft.next_review_on = today
    await session.flush()

    mine = await listing.plans_due_for_review(session=session, staff=people["worker"], today=today)
    assert [(r.citizen_name, r.days_left, r.overdue) for r in mine] == [
        ("Overdue By Ten", -10, True),
        ("Overdue By Two", -2, True),
        ("Today", 0, False),
        ("In Five Days", 5, False),
    ]
    assert mine[0].plan_id == plan_ids["overdue by ten"]
    assert mine[0].owner_name == "Giulia"
    everyone = await listing.plans_due_for_review(
        session=session, staff=people["boss"], today=today
    )
    assert [r.citizen_name for r in everyone] == [
        "Overdue By Ten", "Overdue By Two", "Today", "Di Marco", "In Five Days",
    ]  # fmt: skip
    wider = await listing.plans_due_for_review(
        session=session, staff=people["worker"], today=today, within_days=8, limit=2
    )
    assert [r.citizen_name for r in wider] == ["Overdue By Ten", "Overdue By Two"]
    assert await listing.plans_due_for_review(
        session=session, staff=people["admin"], today=today
    ) == ()  # fmt: skip
    with pytest.raises(ValueError, match="within_days"):
        await listing.plans_due_for_review(
            session=session, staff=people["boss"], today=today, within_days=-1
        )


# --- follow-up meetings ------------------------------------------------------------------


async def test_a_follow_up_is_booked_for_the_plans_citizen_by_the_booking_rules(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    case, _rows = await _active(session, settings, people, telegram_id=4343)
    helpdesk = await make_helpdesk(session, name="Sportello Villa Greppi")
    monday_9 = rome(2027, 1, 11, 9)
    made = await reviews.book_follow_up(
        session=session, settings=settings, case_id=case.id, helpdesk_id=helpdesk.id,
        starts_at=monday_9, staff=people["worker"], now=MEETING,
    )  # fmt: skip
    assert (made.citizen_id, made.state, made.starts_at) == (
        case.citizen_id, BookingState.BOOKED.value, monday_9,
    )  # fmt: skip
    assert made.created_by == "staff:giulia"
    # Told as for any booking staff make: a confirmation and the reminders.
    kinds = set(
        (
            await session.scalars(
                select(OutboxMessage.kind).where(OutboxMessage.citizen_id == case.citizen_id)
            )
        ).all()
    )
    assert {"booking_confirmed", "reminder_day_before"} <= kinds
    audit = await session.scalar(select(AuditEvent).where(AuditEvent.action == "plan.follow_up"))
    assert audit is not None
    assert audit.details["booking_id"] == made.id

    # One active booking per citizen: the booking service's own refusal.
    with pytest.raises(AlreadyBooked):
        await reviews.book_follow_up(
            session=session, settings=settings, case_id=case.id, helpdesk_id=helpdesk.id,
            starts_at=monday_9 + timedelta(days=1), staff=people["worker"], now=MEETING,
        )  # fmt: skip
    booked = await session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(Booking.citizen_id == case.citizen_id, Booking.state == BookingState.BOOKED.value)
    )
    assert booked == 1


async def test_a_follow_up_needs_an_active_plan_the_viewer_may_see(
    session: AsyncSession, settings: Settings, people: People
) -> None:
    helpdesk = await make_helpdesk(session, name="Sportello Villa Greppi")
    draft_case = await admitted_case(session, settings, people["worker"], name="Anna Verdi")
    await plan_with(session, settings, people["worker"], draft_case, complete_input(job_search()))
    arguments: dict[str, Any] = {
        "session": session, "settings": settings, "helpdesk_id": helpdesk.id,
        "starts_at": rome(2027, 1, 11, 9), "now": MEETING,
    }  # fmt: skip
    with pytest.raises(reviews.PlanNotActive):
        await reviews.book_follow_up(case_id=draft_case.id, staff=people["worker"], **arguments)
    case, _rows = await _active(session, settings, people)
    with pytest.raises(PlanNotFound):
        await reviews.book_follow_up(case_id=case.id, staff=people["other"], **arguments)
    with pytest.raises(NotAllowed):
        await reviews.book_follow_up(case_id=case.id, staff=people["admin"], **arguments)
    assert await _count(session, Booking) == 2  # the two interviews only
