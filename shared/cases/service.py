"""Cases and interviews: the hooks that open and move cases, and the staff's changes.

Every function takes the caller's session and never commits; a raised `CaseError`
means nothing was written by that call. Every change, and every read of a case by
staff (SPEC J8), is recorded with `shared.cases.access.record`. States and transitions
are described in `shared.cases.models`; what staff read is in `listing` (the list) and
`view` (one case).

Who may do what (SPEC section 6): a coordinatore sees and works on every case; an
operatore sees the cases assigned to them and the unassigned ones, and a case they
interview becomes theirs. Only a coordinatore overrides eligibility and assigns cases
to others; an operatore may take an unassigned case, or give back their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, literal, select, text, update
from sqlalchemy import case as sa_case
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.booking.models import Booking, BookingState
from shared.cases import access, messages
from shared.cases import interview as interview_form
from shared.cases.errors import (
    CaseNotFound,
    CaseNotVisible,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
)
from shared.cases.models import DRAFT_STATES, Case, CaseState, Interview, Outcome
from shared.cases.search import index_names, index_new_case
from shared.citizens import standing
from shared.citizens.models import Citizen
from shared.db import is_postgresql, upsert_insert
from shared.i18n import N_
from shared.intake.models import Intake, IntakeState
from shared.staff.models import Role, StaffUser

if TYPE_CHECKING:
    from shared.settings import Settings

MAX_REASON = 2000
MAX_REFERRED_TO = 200
MAX_OVERRIDE_REASON = 500
MAX_CLOSE_REASON = 500
MIN_REASON = 3


async def open_case_of(*, session: AsyncSession, citizen_id: int) -> Case | None:
    """The citizen's open case, if any (there is at most one)."""
    return await session.scalar(
        select(Case)
        .where(Case.citizen_id == citizen_id, Case.state != CaseState.CLOSED.value)
        .with_for_update()
    )


async def _open(
    session: AsyncSession,
    *,
    citizen: Citizen,
    eligible: bool | None,
    urgent: bool,
    actor: str,
    now: datetime,
) -> Case:
    """A new case for a citizen with none open, linked to their last closed one."""
    case = await _insert_unless_open(
        session, citizen=citizen, eligible=eligible, urgent=urgent, actor=actor, now=now
    )
    if case is not None:
        return case
    # Opened by a concurrent transaction a moment ago: use that one.
    found = await open_case_of(session=session, citizen_id=citizen.id)
    if found is None:
        raise CaseNotFound(f"No open case for citizen {citizen.id}.")
    return found


async def _insert_unless_open(
    session: AsyncSession,
    *,
    citizen: Citizen,
    eligible: bool | None,
    urgent: bool,
    actor: str,
    now: datetime,
) -> Case | None:
    """Open a case (indexed by name, recorded), or None if the citizen already has one open.

    One INSERT whatever the concurrency: the unique index on the open case decides (no
    look-up before, no savepoint), and the link to the last closed case is its subquery.
    """
    previous = select(func.max(Case.id)).where(
        Case.citizen_id == citizen.id, Case.state == CaseState.CLOSED.value
    )
    case: Case | None = await session.scalar(
        upsert_insert(session, Case)
        .values(
            citizen_id=citizen.id,
            state=CaseState.NEW.value,
            urgent=urgent,
            eligible=eligible,
            previous_case_id=previous.scalar_subquery(),
            opened_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=[Case.citizen_id], index_where=text("state != 'closed'")
        )
        .returning(Case)
    )
    if case is None:
        return None
    if case.previous_case_id is None:
        # The citizen's first case: nothing indexed yet to replace.
        await index_new_case(session=session, case=case, name=citizen.name)
    else:
        await index_names(session=session, citizen_id=citizen.id, name=citizen.name)
    await access.record(
        session,
        actor,
        "case.open",
        case,
        {
            "citizen_id": citizen.id,
            "eligible": eligible,
            "urgent": urgent,
            "previous": case.previous_case_id,
        },
    )
    return case


async def on_intake_confirmed(
    *,
    session: AsyncSession,
    citizen_id: int,
    eligible: bool,
    urgent: bool,
    now: datetime,
    actor: str | None = None,
) -> Case:
    """The citizen confirmed the pre-screening: open their case, or update the open one.

    Ineligible citizens get a case too: staff see it and may override the outcome (J2).
    A citizen whose earlier case is closed gets a new one linked to it.
    """
    actor = actor or f"citizen:{citizen_id}"
    citizen = await session.get(Citizen, citizen_id)
    if citizen is None:
        raise CaseNotFound(f"No citizen {citizen_id}.")
    # Most confirm a first questionnaire: try the opening first, it is one statement.
    opened = await _insert_unless_open(
        session, citizen=citizen, eligible=eligible, urgent=urgent, actor=actor, now=now
    )
    if opened is not None:
        return opened
    case = await open_case_of(session=session, citizen_id=citizen_id)
    if case is None:
        raise CaseNotFound(f"No open case for citizen {citizen_id}.")
    before = {"eligible": case.eligible, "urgent": case.urgent}
    case.eligible = eligible
    case.urgent = urgent
    case.updated_at = now
    await session.flush()
    await index_names(session=session, citizen_id=citizen_id, name=citizen.name)
    await access.record(
        session,
        actor,
        "case.intake",
        case,
        {"before": before, "eligible": eligible, "urgent": urgent},
    )
    return case


_CANCELLED = (BookingState.CANCELLED_BY_CITIZEN, BookingState.CANCELLED_BY_STAFF)


async def on_booking_changed(
    *,
    session: AsyncSession,
    booking: Booking,
    now: datetime,
    events: Sequence[audit.Event] = (),
) -> Case | None:
    """Make the citizen's case follow their booking (called by the booking services).

    booked: the case is booked (opened first if the citizen had none: a booking made by
    staff without a questionnaire) and shows the appointment; attended: checked in;
    cancelled: back to new if it was waiting for this appointment, which it no longer
    shows; no-show: back to new, the no-show counted and the missed appointment still
    shown. Once interviewed, bookings (follow-ups) only update the appointment shown. A
    booking that is not the case's current appointment changes nothing.

    `events`: the caller's audit events (the booking's), written in one INSERT with the
    case's.
    """
    state = BookingState(booking.state)
    actor = booking.closed_by or booking.created_by
    if state in _CANCELLED and booking.cancel_reason == "moved":
        # `move_booking` books the new slot next, in the same transaction.
        await audit.record_many(session=session, events=events)
        return await open_case_of(session=session, citizen_id=booking.citizen_id)
    changed = await _follow_booking(session, booking, state, now)
    if changed is None and state is BookingState.BOOKED:
        citizen = await session.get(Citizen, booking.citizen_id)
        assert citizen is not None  # a foreign key of the booking
        eligible = await session.scalar(
            select(Intake.eligible).where(
                Intake.citizen_id == citizen.id, Intake.state == IntakeState.COMPLETED.value
            )
        )
        await _open(
            session, citizen=citizen, eligible=eligible, urgent=citizen.urgent, actor=actor, now=now
        )
        changed = await _follow_booking(session, booking, state, now)
        assert changed is not None  # opened just now, in this transaction
    if changed is None:
        await audit.record_many(session=session, events=events)
        # Not the case's current appointment (or no open case): nothing changed.
        return await open_case_of(session=session, citizen_id=booking.citizen_id)
    case, before = changed
    details = {
        "booking_id": booking.id,
        "booking_state": state.value,
        "from": before,
        "to": case.state,
    }
    case_event = audit.Event(actor, "case.booking", "case", str(case.id), details)
    await audit.record_many(session=session, events=[*events, case_event])
    return case


def _when_state(before: str, after: str) -> ColumnElement[str]:
    """The case's state moved from `before` to `after`, any other left as it is."""
    return sa_case((Case.state == before, after), else_=Case.state)


async def _follow_booking(
    session: AsyncSession, booking: Booking, state: BookingState, now: datetime
) -> tuple[Case, str] | None:
    """`on_booking_changed`'s change, in one UPDATE … RETURNING: the case and its state
    before; None if no open case (or, unless booked, the booking is not its appointment).

    On PostgreSQL the state before is read (and locked) by the statement's own CTE, so no
    look-up goes first.
    """
    target = select(Case.id, Case.state).where(
        Case.citizen_id == booking.citizen_id, Case.state != CaseState.CLOSED.value
    )
    values: dict[str, Any] = {"updated_at": now}
    if state is BookingState.BOOKED:
        values |= {
            "booking_id": booking.id,
            "helpdesk_id": booking.helpdesk_id,
            "appointment_at": booking.starts_at,
            "state": _when_state(CaseState.NEW.value, CaseState.BOOKED.value),
        }
    else:
        target = target.where(Case.booking_id == booking.id)
        if state is BookingState.ATTENDED:
            values["state"] = _when_state(CaseState.BOOKED.value, CaseState.CHECKED_IN.value)
        elif state is BookingState.NO_SHOW:
            values["no_shows"] = Case.no_shows + 1
            values["state"] = _when_state(CaseState.BOOKED.value, CaseState.NEW.value)
        else:
            # A cancelled appointment is no appointment: the case waits for a new one.
            values |= {"booking_id": None, "helpdesk_id": None, "appointment_at": None}
            values["state"] = _when_state(CaseState.BOOKED.value, CaseState.NEW.value)
    change = (
        update(Case)
        .values(values)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if is_postgresql(session):
        old = target.with_for_update().cte("old_case")
        change = change.where(Case.id == old.c.id).returning(Case, old.c.state)
    else:
        # SQLite's RETURNING sees only the row after the change, so the state before is
        # read first; its writers are serialized, nothing changes it in between.
        found = (await session.execute(target)).first()
        if found is None:
            return None
        change = change.where(Case.id == found.id).returning(Case, literal(found.state))
    row = (await session.execute(change)).first()
    if row is None:
        return None
    case, before = row
    return case, before


async def _case_for_change(session: AsyncSession, case_id: int, staff: access.StaffMember) -> Case:
    """The case, locked for this transaction, if the staff member may work on it."""
    case = await session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if case is None:
        raise CaseNotFound(f"No case {case_id}.")
    if not access.can_see(staff, case.assigned_to_id):
        raise CaseNotVisible(f"Case {case_id} is not visible to {staff.actor}.")
    return case


async def _take_if_unassigned(
    session: AsyncSession, case: Case, staff: access.StaffMember, now: datetime
) -> None:
    """A case worker who works on an unassigned case takes it (it becomes one of theirs)."""
    if case.assigned_to_id is None and staff.role is Role.OPERATORE:
        case.assigned_to_id = staff.user_id
        case.updated_at = now
        await access.record(
            session, staff.actor, "case.assign", case, {"from": None, "to": staff.user_id}
        )


async def assign_case(
    *,
    session: AsyncSession,
    case_id: int,
    assignee_id: int | None,
    staff: access.StaffMember,
    now: datetime,
) -> Case:
    """Give a case to a case worker (or to nobody).

    Coordinators assign any open case to any active case worker or coordinator; a case
    worker may only take an unassigned case for themself or give back their own.
    """
    case = await _case_for_change(session, case_id, staff)
    if case.state == CaseState.CLOSED.value:
        raise IllegalTransition(N_("A closed case can't be reassigned."), state=case.state)
    if staff.role is not Role.COORDINATORE:
        taking = assignee_id == staff.user_id and case.assigned_to_id is None
        giving_back = assignee_id is None and case.assigned_to_id == staff.user_id
        if not (taking or giving_back):
            raise NotAllowed("Case workers may only take unassigned cases or give back their own.")
    elif assignee_id is not None:
        assignee = await session.get(StaffUser, assignee_id)
        if assignee is None or not assignee.active or assignee.role not in access.ASSIGNABLE_ROLES:
            raise InvalidInput({"assignee": N_("Choose an active case worker.")})
    if case.assigned_to_id == assignee_id:
        return case
    before = case.assigned_to_id
    case.assigned_to_id = assignee_id
    case.updated_at = now
    await session.flush()
    await access.record(
        session, staff.actor, "case.assign", case, {"from": before, "to": assignee_id}
    )
    return case


async def _interview_of(session: AsyncSession, case: Case, now: datetime) -> Interview:
    """The case's interview, created from the pre-screening answers the first time."""
    interview = await session.scalar(select(Interview).where(Interview.case_id == case.id))
    if interview is None:
        answers = await session.scalar(
            select(Intake.answers).where(Intake.citizen_id == case.citizen_id)
        )
        interview = Interview(
            case_id=case.id,
            answers=interview_form.prefill(answers or {}).model_dump(mode="json"),
            started_at=now,
            updated_at=now,
        )
        session.add(interview)
    return interview


async def save_interview(
    *,
    session: AsyncSession,
    case_id: int,
    fields: Mapping[str, Sequence[str]],
    staff: access.StaffMember,
    now: datetime,
) -> Interview:
    """Save the interview form as a draft (any part of it; it can be completed later).

    `fields` are the submitted form fields ("section.field" → values); malformed values
    raise `InvalidInput` and nothing is saved.
    """
    form = interview_form.parse_form(fields)
    case = await _case_for_change(session, case_id, staff)
    _require_draft(case)
    interview = await _interview_of(session, case, now)
    interview.answers = form.model_dump(mode="json")
    interview.interviewer_id = staff.user_id
    interview.updated_at = now
    case.updated_at = now
    await _take_if_unassigned(session, case, staff, now)
    await session.flush()
    await access.record(
        session, staff.actor, "case.interview", case, {"interview_id": interview.id}
    )
    return interview


def _require_draft(case: Case) -> None:
    if case.state not in DRAFT_STATES:
        raise IllegalTransition(
            N_("The outcome is recorded: the interview can no longer be changed."),
            state=case.state,
        )


def _check_outcome(outcome: str, reason: str, referred_to: str) -> Outcome:
    errors: dict[str, str] = {}
    params: dict[str, dict[str, object]] = {}
    try:
        chosen = Outcome(outcome)
    except ValueError:
        raise InvalidInput({"outcome": N_("Choose an outcome.")}) from None
    if chosen is Outcome.NOT_ADMITTED and len(reason) < MIN_REASON:
        errors["reason"] = N_("Write why the candidate is not admitted.")
    if chosen is Outcome.REFERRED and len(referred_to) < MIN_REASON:
        errors["referred_to"] = N_("Write which service the candidate is referred to.")
    if len(reason) > MAX_REASON:
        errors["reason"] = N_("This text is too long: at most {max_length} characters.")
        params["reason"] = {"max_length": MAX_REASON}
    if len(referred_to) > MAX_REFERRED_TO:
        errors["referred_to"] = N_("This text is too long: at most {max_length} characters.")
        params["referred_to"] = {"max_length": MAX_REFERRED_TO}
    if errors:
        raise InvalidInput(errors, params)
    return chosen


async def record_outcome(
    *,
    session: AsyncSession,
    case_id: int,
    outcome: str,
    reason: str = "",
    referred_to: str = "",
    fields: Mapping[str, Sequence[str]] | None = None,
    staff: access.StaffMember,
    now: datetime,
) -> Case:
    """Record the interview's outcome: admitted (the plan comes next), not admitted (with
    the reason) or referred (to whom); the last two close the case.

    Only for a checked-in candidate. `fields`, when given, are the interview form submitted
    with the outcome and are saved with it; errors of both are raised together.
    """
    reason, referred_to = reason.strip(), referred_to.strip()
    errors: dict[str, str] = {}
    params: dict[str, dict[str, object]] = {}
    form = None
    try:
        form = interview_form.parse_form(fields) if fields is not None else None
    except InvalidInput as exc:
        errors |= exc.errors
        params |= exc.params
    try:
        chosen = _check_outcome(outcome, reason, referred_to)
    except InvalidInput as exc:
        errors |= exc.errors
        params |= exc.params
    if errors:
        raise InvalidInput(errors, params)
    case = await _case_for_change(session, case_id, staff)
    if case.state != CaseState.CHECKED_IN.value:
        raise IllegalTransition(
            N_("The outcome can be recorded once the candidate is checked in, and only once."),
            state=case.state,
        )
    interview = await _interview_of(session, case, now)
    if form is not None:
        interview.answers = form.model_dump(mode="json")
    interview.outcome = chosen.value
    interview.outcome_reason = reason or None
    interview.referred_to = referred_to if chosen is Outcome.REFERRED else None
    interview.interviewer_id = staff.user_id
    interview.updated_at = interview.completed_at = now
    await _take_if_unassigned(session, case, staff, now)
    if chosen is Outcome.ADMITTED:
        case.state = CaseState.INTERVIEWED.value
    else:
        case.state = CaseState.CLOSED.value
        case.closed_at = now
        case.close_reason = chosen.value
    case.updated_at = now
    await session.flush()
    await access.record(
        session,
        staff.actor,
        "case.outcome",
        case,
        # The reason and the referral are typed text: they stay on the interview.
        {"outcome": chosen.value},
    )
    return case


async def override_eligibility(
    *,
    session: AsyncSession,
    settings: Settings,
    case_id: int,
    eligible: bool | None,
    reason: str,
    staff: access.StaffMember,
    now: datetime,
) -> Case:
    """A coordinator decides eligibility over the questionnaire's outcome (None: no override).

    The reason is required when deciding; the questionnaire's own outcome stays visible.
    A citizen who could not book and now may is told on Telegram (`messages`); taking
    the decision back withdraws that message while it waits.
    """
    if staff.role is not Role.COORDINATORE:
        raise NotAllowed("Only coordinators decide eligibility.")
    reason = reason.strip()
    if eligible is not None and len(reason) < MIN_REASON:
        raise InvalidInput({"reason": N_("Write the reason for this decision.")})
    if len(reason) > MAX_OVERRIDE_REASON:
        raise InvalidInput(
            {"reason": N_("This text is too long: at most {max_length} characters.")},
            {"reason": {"max_length": MAX_OVERRIDE_REASON}},
        )
    case = await _case_for_change(session, case_id, staff)
    if case.state == CaseState.CLOSED.value:
        raise IllegalTransition(N_("The case is closed."), state=case.state)
    before = case.eligibility_override
    # The case read here is the one changed below: the standing after needs no statement.
    facts = await standing.read_facts(session=session, citizen_id=case.citizen_id)
    could_not_book = isinstance(
        standing.decide(facts, settings=settings, now=now), standing.NotEligible
    )
    deciding = eligible is not None
    case.eligibility_override = eligible
    case.override_reason = reason if deciding else None
    case.override_by = staff.actor if deciding else None
    case.override_at = now if deciding else None
    case.updated_at = now
    await session.flush()
    await access.record(
        session,
        staff.actor,
        "case.eligibility",
        case,
        {
            "from": before,
            "to": eligible,
            "questionnaire": case.eligible,
        },
    )
    if eligible and could_not_book:
        if isinstance(standing.decide(facts, settings=settings, now=now), standing.MayBook):
            await messages.queue_may_book(
                session=session, citizen=facts.citizen, case=case, now=now
            )
    elif before and not eligible:
        await messages.withdraw_may_book(session=session, case=case)
    return case


async def close_case(
    *, session: AsyncSession, case_id: int, reason: str, staff: access.StaffMember, now: datetime
) -> Case:
    """Close a case whose path ended without an interview outcome (new) or after it
    (interviewed: the plan is over). Booked and checked-in cases can't be closed: cancel
    the booking, or record the outcome, first.
    """
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise InvalidInput({"close_reason": N_("Write why the case is closed.")})
    if len(reason) > MAX_CLOSE_REASON:
        raise InvalidInput(
            {"close_reason": N_("This text is too long: at most {max_length} characters.")},
            {"close_reason": {"max_length": MAX_CLOSE_REASON}},
        )
    case = await _case_for_change(session, case_id, staff)
    if case.state == CaseState.BOOKED.value:
        raise IllegalTransition(N_("Cancel the booking before closing the case."), state=case.state)
    if case.state == CaseState.CHECKED_IN.value:
        raise IllegalTransition(
            N_("Record the interview's outcome before closing the case."), state=case.state
        )
    if case.state == CaseState.CLOSED.value:
        raise IllegalTransition(N_("The case is closed."), state=case.state)
    before = case.state
    case.state = CaseState.CLOSED.value
    case.closed_at = case.updated_at = now
    case.close_reason = reason
    await session.flush()
    # The reason is typed text: it stays on the case, which an erasure reaches.
    await access.record(session, staff.actor, "case.close", case, {"from": before})
    return case
