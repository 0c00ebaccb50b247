"""Cases: the hooks that open and move them, transitions, assignment, interview and outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.booking import service as booking
from shared.booking import waitlist
from shared.booking.service import CancelledBy
from shared.cases import listing, view
from shared.cases import service as cases
from shared.cases.errors import (
    CaseNotFound,
    CaseNotVisible,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
)
from shared.cases.listing import CaseFilters
from shared.cases.models import Case, CaseState, Interview, Outcome
from shared.citizens import service as citizens
from shared.db import utcnow
from shared.settings import Settings
from shared.staff.models import Role
from tests.factories import make_citizen, make_helpdesk
from tests.shared.cases.builders import (
    NOW,
    TUESDAY_9,
    WEDNESDAY_9,
    book,
    checked_in,
    make_candidate,
    make_staff,
    member,
)


async def _actions(session: AsyncSession, case: Case) -> list[str]:
    found = await session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.object_type == "case", AuditEvent.object_id == str(case.id))
        .order_by(AuditEvent.id)
    )
    return list(found.all())


async def _open_cases(session: AsyncSession, citizen_id: int) -> list[Case]:
    found = await session.scalars(
        select(Case).where(Case.citizen_id == citizen_id, Case.state != "closed")
    )
    return list(found.all())


# --- hooks ---------------------------------------------------------------------------------


async def test_confirmed_intake_opens_a_case_even_when_not_eligible(
    session: AsyncSession,
) -> None:
    citizen, case = await make_candidate(session, eligible=False, urgent=True)
    assert (case.state, case.eligible, case.urgent, case.is_eligible) == ("new", False, True, False)
    assert case.previous_case_id is None and case.assigned_to_id is None
    again = await cases.on_intake_confirmed(
        session=session, citizen_id=citizen.id, eligible=True, urgent=False, now=NOW
    )
    assert again.id == case.id
    assert (again.eligible, again.urgent) == (True, False)
    assert len(await _open_cases(session, citizen.id)) == 1
    assert await _actions(session, case) == ["case.open", "case.intake"]
    with pytest.raises(CaseNotFound):
        await cases.on_intake_confirmed(
            session=session, citizen_id=987654, eligible=True, urgent=False, now=NOW
        )


async def test_a_returning_citizen_gets_a_new_case_linked_to_the_closed_one(
    session: AsyncSession,
) -> None:
    coordinator = member(await make_staff(session, "anna", Role.COORDINATORE))
    citizen, first = await make_candidate(session)
    await cases.close_case(
        session=session, case_id=first.id, reason="withdrew", staff=coordinator, now=NOW
    )
    later = NOW + timedelta(days=200)
    second = await cases.on_intake_confirmed(
        session=session, citizen_id=citizen.id, eligible=True, urgent=False, now=later
    )
    assert second.id != first.id
    assert (second.state, second.previous_case_id, second.opened_at) == ("new", first.id, later)


async def test_the_case_follows_the_booking(session: AsyncSession, settings: Settings) -> None:
    helpdesk = await make_helpdesk(session)
    citizen, case = await make_candidate(session)
    made = await book(session, settings, citizen, helpdesk)
    assert (case.state, case.booking_id, case.helpdesk_id) == ("booked", made.id, helpdesk.id)
    assert case.appointment_at == TUESDAY_9

    moved = await booking.move_booking(
        session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk.id,
        starts_at=WEDNESDAY_9, by=CancelledBy.STAFF, actor="staff:test", now=NOW,
    )  # fmt: skip
    assert (case.state, case.booking_id, case.appointment_at) == ("booked", moved.id, WEDNESDAY_9)

    await booking.cancel_booking(
        session=session, settings=settings, booking_id=moved.id, by=CancelledBy.CITIZEN,
        actor=f"citizen:{citizen.id}", now=NOW,
    )  # fmt: skip
    assert (case.state, case.booking_id, case.appointment_at) == ("new", None, None)

    again = await book(session, settings, citizen, helpdesk)
    await booking.mark_attended(
        session=session, booking_id=again.id, actor="staff:op", now=TUESDAY_9
    )
    assert (case.state, case.booking_id) == ("checked_in", again.id)
    assert len(await _open_cases(session, citizen.id)) == 1
    events = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_id == str(case.id), AuditEvent.action == "case.booking")
            .order_by(AuditEvent.id)
        )
    ).all()
    assert [(e.details["from"], e.details["to"]) for e in events] == [
        ("new", "booked"),
        ("booked", "booked"),
        ("booked", "new"),
        ("new", "booked"),
        ("booked", "checked_in"),
    ]
    assert events[-1].actor == "staff:op"


async def test_a_no_show_brings_the_case_back_to_new_and_is_counted(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen, case = await make_candidate(session)
    made = await book(session, settings, citizen, helpdesk)
    await booking.mark_no_show(
        session=session, booking_id=made.id, actor="staff:op", now=TUESDAY_9 + timedelta(hours=1)
    )
    # The missed appointment stays as the last one.
    assert (case.state, case.no_shows, case.booking_id) == ("new", 1, made.id)


async def test_a_booking_of_a_citizen_without_a_case_opens_one(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    # Eligible by a questionnaire whose case was never opened (as before cases existed).
    citizen = await make_citizen(session, urgent=True)
    made = await book(session, settings, citizen, helpdesk)
    (case,) = await _open_cases(session, citizen.id)
    assert (case.state, case.eligible, case.urgent, case.booking_id) == (
        "booked", True, True, made.id,
    )  # fmt: skip


async def test_an_old_booking_does_not_move_the_current_case(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen, case = await make_candidate(session)
    first = await book(session, settings, citizen, helpdesk)
    await booking.mark_no_show(
        session=session, booking_id=first.id, actor="op", now=TUESDAY_9 + timedelta(hours=1)
    )
    second = await book(session, settings, citizen, helpdesk, WEDNESDAY_9)
    stale = await cases.on_booking_changed(session=session, booking=first, now=NOW)
    assert stale is case
    assert (case.state, case.booking_id, case.no_shows) == ("booked", second.id, 1)


async def test_a_place_accepted_from_the_waitlist_books_the_case(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(
        session, weekdays=(1,), closes_at=TUESDAY_9.time().replace(hour=9, minute=30)
    )
    settings = settings.model_copy(update={"booking_horizon_days": 2})
    first, _ = await make_candidate(session, name="Primo Cittadino")
    made = await book(session, settings, first, helpdesk)
    waiting, case = await make_candidate(session, name="Seconda Cittadina", telegram_id=4242)
    entry = await waitlist.join_waitlist(
        session=session, settings=settings, citizen_id=waiting.id, now=NOW
    )
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=made.id, by=CancelledBy.CITIZEN,
        actor=f"citizen:{first.id}", now=NOW,
    )  # fmt: skip
    accepted = await waitlist.accept_offer(
        session=session, settings=settings, entry_id=entry.id, citizen_id=waiting.id, now=NOW
    )
    assert (case.state, case.booking_id) == ("booked", accepted.id)


# --- interview and outcome -------------------------------------------------------------------


async def test_a_draft_interview_starts_from_the_prescreening_and_saves_partially(
    session: AsyncSession, settings: Settings
) -> None:
    worker = await make_staff(session, "luca")
    helpdesk = await make_helpdesk(session)
    citizen, case = await make_candidate(session, urgent=True)
    await book(session, settings, citizen, helpdesk)
    page = await view.get_interview(session=session, case_id=case.id, staff=member(worker), now=NOW)
    assert page.prefilled and page.editable and not page.can_record_outcome
    assert page.form.work.situation == "job_loss"
    assert (page.form.household.members, page.form.household.minors) == (3, 1)
    assert page.form.debts.struggling is True
    assert page.form.notes.needs == ["microcredit", "job_search"]

    saved = await cases.save_interview(
        session=session, case_id=case.id, staff=member(worker), now=NOW,
        fields={"work.last_job": ["  Magazziniere "], "household.members": ["4"]},
    )  # fmt: skip
    assert saved.answers["work"]["last_job"] == "Magazziniere"
    assert saved.answers["household"]["members"] == 4
    assert saved.interviewer_id == worker.id and saved.outcome is None
    # Working on an unassigned case makes it the case worker's own.
    assert case.assigned_to_id == worker.id

    with pytest.raises(InvalidInput) as caught:
        await cases.save_interview(
            session=session, case_id=case.id, staff=member(worker), now=NOW,
            fields={"work.last_job": ["Cuoco"], "household.members": ["quattro"],
                    "household.minors": ["25"], "work.contract": ["forged"]},
        )  # fmt: skip
    assert set(caught.value.errors) == {
        "household.members", "household.minors", "work.contract",
    }  # fmt: skip
    assert caught.value.params["household.minors"] == {"le": 19}
    await session.refresh(saved)
    assert saved.answers["work"]["last_job"] == "Magazziniere"
    reread = await view.get_interview(
        session=session, case_id=case.id, staff=member(worker), now=NOW
    )
    assert not reread.prefilled
    assert reread.form.work.last_job == "Magazziniere"


async def test_outcome_needs_a_checked_in_candidate_and_its_reason(
    session: AsyncSession, settings: Settings
) -> None:
    worker = member(await make_staff(session, "luca"))
    helpdesk = await make_helpdesk(session)
    citizen, case = await make_candidate(session)
    made = await book(session, settings, citizen, helpdesk)
    with pytest.raises(IllegalTransition) as early:
        await cases.record_outcome(
            session=session, case_id=case.id, outcome="admitted", staff=worker, now=NOW
        )
    assert early.value.state == "booked"
    await booking.mark_attended(session=session, booking_id=made.id, actor="op", now=TUESDAY_9)

    for outcome, fields, expected in (
        ("maybe", {}, {"outcome"}),
        ("not_admitted", {}, {"reason"}),
        ("not_admitted", {"reason": "  "}, {"reason"}),
        ("referred", {"reason": "needs housing first"}, {"referred_to"}),
        ("referred", {"referred_to": "x" * 201}, {"referred_to"}),
    ):
        with pytest.raises(InvalidInput) as caught:
            await cases.record_outcome(
                session=session, case_id=case.id, outcome=outcome, staff=worker, now=NOW,
                **fields,
            )  # fmt: skip
        assert set(caught.value.errors) == expected, outcome
    # Form errors and outcome errors come together.
    with pytest.raises(InvalidInput) as both:
        await cases.record_outcome(
            session=session, case_id=case.id, outcome="not_admitted", staff=worker, now=NOW,
            fields={"household.members": ["0"]},
        )  # fmt: skip
    assert set(both.value.errors) == {"household.members", "reason"}
    assert case.state == "checked_in"

    done = await cases.record_outcome(
        session=session, case_id=case.id, outcome="admitted", staff=worker, now=TUESDAY_9,
        fields={"work.last_job": ["Cameriera"]},
    )  # fmt: skip
    assert done.state == CaseState.INTERVIEWED
    interview = await session.scalar(select(Interview).where(Interview.case_id == case.id))
    assert interview is not None
    assert (interview.outcome, interview.completed_at) == ("admitted", TUESDAY_9)
    # The form submitted with the outcome is saved with it.
    assert interview.answers["work"]["last_job"] == "Cameriera"

    with pytest.raises(IllegalTransition):
        await cases.record_outcome(
            session=session, case_id=case.id, outcome="admitted", staff=worker, now=NOW
        )
    with pytest.raises(IllegalTransition):
        await cases.save_interview(
            session=session, case_id=case.id, fields={}, staff=worker, now=NOW
        )
    assert "case.outcome" in await _actions(session, case)


@pytest.mark.parametrize(
    ("outcome", "fields"),
    [
        (Outcome.NOT_ADMITTED, {"reason": "Non residente a Cernusco"}),
        (Outcome.REFERRED, {"referred_to": "Centro per l'impiego di Melzo"}),
    ],
)
async def test_not_admitted_and_referred_close_the_case(
    session: AsyncSession, settings: Settings, outcome: Outcome, fields: dict[str, str]
) -> None:
    worker = member(await make_staff(session, "luca"))
    helpdesk = await make_helpdesk(session)
    _citizen, case, _booking = await checked_in(session, settings, helpdesk)
    closed = await cases.record_outcome(
        session=session, case_id=case.id, outcome=outcome.value, staff=worker, now=TUESDAY_9,
        **fields,
    )  # fmt: skip
    assert (closed.state, closed.closed_at, closed.close_reason) == (
        "closed", TUESDAY_9, outcome.value,
    )  # fmt: skip
    interview = await session.scalar(select(Interview).where(Interview.case_id == case.id))
    assert interview is not None
    assert interview.outcome == outcome.value
    assert (interview.outcome_reason, interview.referred_to) == (
        fields.get("reason"), fields.get("referred_to"),
    )  # fmt: skip
    # Without a draft, the interview on record is the pre-screening's.
    assert interview.answers["work"]["situation"] == "job_loss"


# --- who may do what -------------------------------------------------------------------------


async def test_visibility_and_assignment(session: AsyncSession) -> None:
    luca = await make_staff(session, "luca")
    giulia = await make_staff(session, "giulia")
    anna = await make_staff(session, "anna", Role.COORDINATORE)
    admin = await make_staff(session, "root", Role.ADMIN)
    gone = await make_staff(session, "gone", active=False)
    _c, case = await make_candidate(session)

    # Unassigned: every case worker sees it and may take it.
    await view.get_case_detail(session=session, case_id=case.id, staff=member(giulia), now=NOW)
    await cases.assign_case(
        session=session, case_id=case.id, assignee_id=luca.id, staff=member(luca), now=NOW
    )
    assert case.assigned_to_id == luca.id
    for action in (
        view.get_case_detail(session=session, case_id=case.id, staff=member(giulia), now=NOW),
        view.get_interview(session=session, case_id=case.id, staff=member(giulia), now=NOW),
        cases.assign_case(
            session=session, case_id=case.id, assignee_id=giulia.id, staff=member(giulia), now=NOW
        ),
        cases.save_interview(
            session=session, case_id=case.id, fields={}, staff=member(giulia), now=NOW
        ),
        view.get_case_detail(session=session, case_id=case.id, staff=member(admin), now=NOW),
    ):
        with pytest.raises(CaseNotVisible):
            await action
    # A case worker can't give a case to someone else, only back.
    with pytest.raises(NotAllowed):
        await cases.assign_case(
            session=session, case_id=case.id, assignee_id=giulia.id, staff=member(luca), now=NOW
        )
    await cases.assign_case(
        session=session, case_id=case.id, assignee_id=None, staff=member(luca), now=NOW
    )
    assert case.assigned_to_id is None
    # Coordinators assign to any active case worker or coordinator.
    for wrong in (admin.id, gone.id, 999_999):
        with pytest.raises(InvalidInput):
            await cases.assign_case(
                session=session, case_id=case.id, assignee_id=wrong, staff=member(anna), now=NOW
            )
    await cases.assign_case(
        session=session, case_id=case.id, assignee_id=giulia.id, staff=member(anna), now=NOW
    )
    assert case.assigned_to_id == giulia.id
    await view.get_case_detail(session=session, case_id=case.id, staff=member(anna), now=NOW)
    with pytest.raises(CaseNotFound):
        await view.get_case_detail(session=session, case_id=424242, staff=member(anna), now=NOW)
    events = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_id == str(case.id), AuditEvent.action == "case.assign")
            .order_by(AuditEvent.id)
        )
    ).all()
    assert [(e.actor, e.details["to"]) for e in events] == [
        ("staff:luca", luca.id), ("staff:luca", None), ("staff:anna", giulia.id),
    ]  # fmt: skip


async def test_only_coordinators_override_eligibility_with_a_reason(
    session: AsyncSession, settings: Settings
) -> None:
    luca = member(await make_staff(session, "luca"))
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    _c, case = await make_candidate(session, eligible=False)
    with pytest.raises(NotAllowed):
        await cases.override_eligibility(
            session=session,
            settings=settings,
            case_id=case.id,
            eligible=True,
            reason="ok",
            staff=luca,
            now=NOW,
        )
    with pytest.raises(InvalidInput) as caught:
        await cases.override_eligibility(
            session=session,
            settings=settings,
            case_id=case.id,
            eligible=True,
            reason=" ",
            staff=anna,
            now=NOW,
        )
    assert set(caught.value.errors) == {"reason"}
    await cases.override_eligibility(
        session=session, settings=settings, case_id=case.id, eligible=True, staff=anna, now=NOW,
        reason="Residente da gennaio, certificato in arrivo",
    )  # fmt: skip
    assert (case.eligible, case.eligibility_override, case.is_eligible) == (False, True, True)
    assert (case.override_by, case.override_at) == ("staff:anna", NOW)
    await cases.override_eligibility(
        session=session,
        settings=settings,
        case_id=case.id,
        eligible=None,
        reason="",
        staff=anna,
        now=NOW,
    )
    assert (case.eligibility_override, case.override_reason, case.is_eligible) == (
        None, None, False,
    )  # fmt: skip
    assert await _actions(session, case) == ["case.open", "case.eligibility", "case.eligibility"]


async def test_closing_a_case(session: AsyncSession, settings: Settings) -> None:
    luca = member(await make_staff(session, "luca"))
    helpdesk = await make_helpdesk(session)
    citizen, case = await make_candidate(session)
    await book(session, settings, citizen, helpdesk)
    with pytest.raises(IllegalTransition):
        await cases.close_case(
            session=session, case_id=case.id, reason="withdrew", staff=luca, now=NOW
        )
    _c2, ready, _b = await checked_in(
        session, settings, helpdesk, name="Luigi Verdi", starts_at=WEDNESDAY_9
    )
    with pytest.raises(IllegalTransition):
        await cases.close_case(
            session=session, case_id=ready.id, reason="withdrew", staff=luca, now=NOW
        )
    _c3, fresh = await make_candidate(session, name="Anna Neri")
    with pytest.raises(InvalidInput):
        await cases.close_case(session=session, case_id=fresh.id, reason="", staff=luca, now=NOW)
    await cases.close_case(
        session=session, case_id=fresh.id, reason="Ha trovato lavoro", staff=luca, now=NOW
    )
    assert (fresh.state, fresh.close_reason, fresh.closed_at) == (
        "closed",
        "Ha trovato lavoro",
        NOW,
    )
    for again in (
        cases.close_case(session=session, case_id=fresh.id, reason="again", staff=luca, now=NOW),
        cases.assign_case(session=session, case_id=fresh.id, assignee_id=None, staff=luca, now=NOW),
    ):
        with pytest.raises(IllegalTransition):
            await again


# --- the case page -------------------------------------------------------------------------


async def test_case_detail_brings_everything_and_audits_the_read(
    session: AsyncSession, settings: Settings
) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    luca = await make_staff(session, "luca")
    helpdesk = await make_helpdesk(session)
    citizen, case = await make_candidate(
        session, name="Maria Rossi", phone="+393316938049", fiscal_code="RSSMRA85D03F205P",
        telegram_id=777,
    )  # fmt: skip
    made = await book(session, settings, citizen, helpdesk)
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=made.id, by=CancelledBy.STAFF,
        actor="staff:anna", now=NOW,
    )  # fmt: skip
    current = await book(session, settings, citizen, helpdesk, WEDNESDAY_9)
    same_phone, _ = await make_candidate(session, name="Mario Rossi", phone="+393316938049")
    same_code, other_case = await make_candidate(
        session, name="M. Rossi", fiscal_code="RSSMRA85D03F205P"
    )
    await make_candidate(session, name="Someone Else", phone="+393470000000")

    detail = await view.get_case_detail(session=session, case_id=case.id, staff=anna, now=NOW)
    assert detail.case.id == case.id and detail.citizen.id == citizen.id
    assert detail.intake_state == "completed"
    labelled = dict(detail.prescreening("en"))
    assert len(labelled) >= 10
    assert "Maria Rossi" in labelled.values()
    assert [(b.id, b.state) for b in detail.bookings] == [
        (current.id, "booked"), (made.id, "cancelled_by_staff"),
    ]  # fmt: skip
    assert detail.bookings[0].helpdesk == helpdesk.name
    events = [e.what for e in detail.timeline if e.kind == "event"]
    assert {"case.open", "booking.create", "booking.cancel", "case.booking"} <= set(events)
    messages = [e.what for e in detail.timeline if e.kind == "message"]
    assert "booking_cancelled" in messages and "reminder_day_before" in messages
    assert [e.at for e in detail.timeline] == sorted((e.at for e in detail.timeline), reverse=True)
    found = {(d.citizen_id, d.same_phone, d.same_fiscal_code) for d in detail.duplicates}
    assert found == {(same_phone.id, True, False), (same_code.id, False, True)}
    assert {d.case_id for d in detail.duplicates if d.citizen_id == same_code.id} == {other_case.id}
    assert {s.id for s in detail.assignable} >= {luca.id}

    reads = (
        await session.scalars(select(AuditEvent).where(AuditEvent.action == "case.read"))
    ).all()
    assert [(r.actor, r.object_id) for r in reads] == [("staff:anna", str(case.id))]
    # Reading is not part of the case's story.
    again = await view.get_case_detail(session=session, case_id=case.id, staff=anna, now=NOW)
    assert "case.read" not in [e.what for e in again.timeline]


async def test_the_timeline_keeps_the_newest_events_of_case_citizen_and_bookings(
    session: AsyncSession, settings: Settings
) -> None:
    """Events of the case, the citizen and their bookings merge into one list, newest
    first, cut at TIMELINE_EVENTS; other citizens' and quiet events stay out."""
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    helpdesk = await make_helpdesk(session)
    citizen, case = await make_candidate(session, telegram_id=4242)
    made = await book(session, settings, citizen, helpdesk)
    stranger, stranger_case = await make_candidate(session, name="Other Person")
    # Later than the events the services recorded with the clock of today.
    base = utcnow() + timedelta(days=1)
    latest = base + timedelta(days=1)
    objects = [("case", case.id), ("citizen", citizen.id), ("booking", made.id)]
    planted = []
    for n in range(view.TIMELINE_EVENTS + 20):
        object_type, object_id = objects[n % 3]
        event = AuditEvent(
            at=base + timedelta(minutes=n), actor="staff:anna", action=f"test.{n}",
            object_type=object_type, object_id=str(object_id), details={},
        )  # fmt: skip
        session.add(event)
        planted.append(event.action)
    session.add_all([
        AuditEvent(at=latest, actor="x", action="test.stranger", object_type="case",
                   object_id=str(stranger_case.id), details={}),
        AuditEvent(at=latest, actor="x", action="test.stranger", object_type="citizen",
                   object_id=str(stranger.id), details={}),
        AuditEvent(at=latest, actor="x", action="case.read", object_type="case",
                   object_id=str(case.id), details={}),
    ])  # fmt: skip
    await session.flush()

    detail = await view.get_case_detail(session=session, case_id=case.id, staff=anna, now=NOW)
    events = [e for e in detail.timeline if e.kind == "event"]
    assert len(events) == view.TIMELINE_EVENTS
    # The planted events are the newest of this citizen's: the 100 latest of them, in order.
    assert [e.what for e in events] == planted[::-1][: view.TIMELINE_EVENTS]
    assert "test.stranger" not in {e.what for e in detail.timeline}


async def test_a_case_worker_is_not_shown_who_a_duplicate_of_someone_elses_case_is(
    session: AsyncSession,
) -> None:
    """The warning stays; the name and the link to a case they may not open don't."""
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    luca = member(await make_staff(session, "luca"))
    giulia = member(await make_staff(session, "giulia"))
    _, case = await make_candidate(session, name="Maria Rossi", phone="+393316938049")
    _, giulias = await make_candidate(session, name="Mario Rossi", phone="+393316938049")
    _, unassigned = await make_candidate(session, name="M. Rossi", phone="+393316938049")
    await cases.assign_case(
        session=session, case_id=giulias.id, assignee_id=giulia.user_id, staff=anna, now=NOW
    )

    def shown(detail: view.CaseDetail) -> set[tuple[str | None, int | None, bool]]:
        return {(d.name, d.case_id, d.hidden) for d in detail.duplicates}

    as_luca = await view.get_case_detail(session=session, case_id=case.id, staff=luca, now=NOW)
    assert shown(as_luca) == {(None, None, True), ("M. Rossi", unassigned.id, False)}
    as_giulia = await view.get_case_detail(session=session, case_id=case.id, staff=giulia, now=NOW)
    assert shown(as_giulia) == {
        ("Mario Rossi", giulias.id, False),
        ("M. Rossi", unassigned.id, False),
    }
    as_anna = await view.get_case_detail(session=session, case_id=case.id, staff=anna, now=NOW)
    assert shown(as_anna) == shown(as_giulia)


async def test_a_case_worker_gets_no_staff_list_and_sees_earlier_cases(
    session: AsyncSession,
) -> None:
    luca = member(await make_staff(session, "luca"))
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    citizen, first = await make_candidate(session)
    await cases.close_case(
        session=session, case_id=first.id, reason="withdrew", staff=anna, now=NOW
    )
    second = await cases.on_intake_confirmed(
        session=session, citizen_id=citizen.id, eligible=True, urgent=False,
        now=NOW + timedelta(days=1),
    )  # fmt: skip
    detail = await view.get_case_detail(session=session, case_id=second.id, staff=luca, now=NOW)
    assert detail.assignable == []
    assert [(c.id, c.state, c.visible) for c in detail.other_cases] == [(first.id, "closed", True)]
    assert detail.duplicates == []


async def test_an_earlier_case_of_another_case_worker_is_listed_but_not_opened(
    session: AsyncSession,
) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    luca = member(await make_staff(session, "luca"))
    giulia = member(await make_staff(session, "giulia"))
    citizen, first = await make_candidate(session)
    await cases.assign_case(
        session=session, case_id=first.id, assignee_id=giulia.user_id, staff=anna, now=NOW
    )
    await cases.close_case(
        session=session, case_id=first.id, reason="withdrew", staff=anna, now=NOW
    )
    second = await cases.on_intake_confirmed(
        session=session, citizen_id=citizen.id, eligible=True, urgent=False,
        now=NOW + timedelta(days=1),
    )  # fmt: skip
    for staff, visible in ((luca, False), (giulia, True), (anna, True)):
        detail = await view.get_case_detail(
            session=session, case_id=second.id, staff=staff, now=NOW
        )
        assert [(c.id, c.visible) for c in detail.other_cases] == [(first.id, visible)]


async def test_erasing_a_citizen_keeps_their_cases_anonymous(
    session: AsyncSession, settings: Settings
) -> None:
    """The case stays for the figures (shared.privacy.erasure), no longer found by name."""
    citizen, case = await make_candidate(session, name="Ottavia Brambati", telegram_id=31337)
    await citizens.erase(session=session, settings=settings, citizen=citizen, now=NOW)
    kept = await session.get(Case, case.id, populate_existing=True)
    assert kept is not None and kept.anonymised_at == NOW and kept.state == CaseState.NEW
    assert await session.scalar(select(func.count()).select_from(Case)) == 1
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    detail = await view.get_case_detail(session=session, case_id=case.id, staff=anna, now=NOW)
    assert detail.citizen.name is None and detail.citizen.erased_at == NOW
    found = await listing.list_cases(
        session=session, settings=settings, staff=anna, filters=CaseFilters(text="Brambati")
    )
    assert found.rows == []
