"""Demo candidates at every stage of their path, for `ripartire demo`.

Everything goes through the real services: the questionnaire engine (whose confirmation
opens the case), `book_slot` for appointments to come, `mark_attended` / `mark_no_show`,
and the interview and outcome services. The one exception is history: `book_slot`
refuses a slot in the past, so appointments that already happened are made by
`insert_past_booking`, which takes the place with the booking engine's own race-free
primitives (`shared.booking.places`, so `slot.taken` stays right) and then tells the case,
as `book_slot` would.

Runs after the staff accounts and helpdesks of `shared.demo` / `shared.booking.demo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import availability, places
from shared.booking import service as booking
from shared.booking.availability import FreeSlot
from shared.booking.models import Booking
from shared.booking.schedule import SlotTime
from shared.cases import access
from shared.cases import interview as interview_form
from shared.cases import service as cases
from shared.cases.models import Case, CaseState
from shared.citizens.models import Channel, Citizen
from shared.citizens.service import PRIVACY_NOTICE_VERSION
from shared.intake import service as intake
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role


@dataclass(frozen=True)
class Candidate:
    """A demo citizen: their raw answers to the questionnaire and how far they got."""

    name: str
    phone: str
    stage: str
    residence: str = "yes"
    situation: str = "job_loss"
    since: str = "04/2020"
    pandemic_related: str = "yes"
    household: str = "3 1"
    benefits: str = "naspi"
    needs: str = "job_search"
    urgent: str = "no"
    fiscal_code: str | None = None
    channel: Channel = Channel.PHONE
    worker: str | None = None
    interview: dict[str, list[str]] = field(default_factory=dict)
    outcome: tuple[str, str] | None = None


_MARIO = "Mario Bianchi"
CANDIDATES = (
    Candidate("Sara Colombo", "+39 347 215 6680", "new", situation="self_employment_stopped",
              needs="economic_support microcredit", urgent="yes", benefits="none"),
    Candidate("Luca Fumagalli", "+39 349 880 1123", "new", residence="no",
              channel=Channel.WALK_IN),
    Candidate("Anna Galli", "+39 338 888 9900", "new", household="4 2",
              needs="benefits_access"),
    Candidate("Davide Ferrari", "+39 333 410 2277", "no_show", worker="operatrice",
              situation="reduced_hours", benefits="wage_guarantee"),
    Candidate("Valentina Russo", "+39 340 552 9087", "booked", worker="operatrice",
              needs="job_search internship"),
    Candidate("Mohamed Ben Salah", "+39 320 771 4412", "booked", urgent="yes",
              household="5 3", needs="economic_support job_search", benefits="inclusion"),
    Candidate("Giorgia Marino", "+39 345 123 9870", "checked_in", worker="operatore",
              needs="psychological_support job_search",
              interview={"work.last_job": ["Commessa in un negozio di abbigliamento"],
                         "work.contract": ["fixed_term"], "work.years_worked": ["9"]}),
    Candidate("Paolo Ricci", "+39 331 908 4456", "admitted", worker="operatore",
              fiscal_code="RCCPLA78E12F205T", urgent="yes",
              needs="economic_support job_search microcredit",
              interview={
                  "work.last_job": ["Cuoco in un ristorante di Cernusco"],
                  "work.employer": ["Ristorazione"],
                  "work.contract": ["permanent"],
                  "work.years_worked": ["18"],
                  "work.history": ["Licenziato a maggio 2020 alla chiusura del ristorante."],
                  "skills.education": ["vocational"],
                  "skills.italian": ["native"],
                  "skills.digital": ["basic"],
                  "skills.driving_licence": ["yes"],
                  "household.housing": ["rent"],
                  "household.housing_cost": ["650"],
                  "household.monthly_income": ["900"],
                  "debts.struggling": ["yes"],
                  "debts.arrears": ["rent", "utilities"],
                  "debts.total_debt": ["2300"],
                  "debts.urgent_expenses": ["Due mesi di affitto arretrati."],
                  "wellbeing.feeling": ["tired"],
                  "wellbeing.support_network": ["some"],
                  "notes.notes": ["Motivato, cerca lavoro anche fuori dalla ristorazione."],
              },
              outcome=("admitted", "")),
    Candidate("Laura Conti", "+39 348 660 3301", "not_admitted", worker="operatrice",
              fiscal_code="CNTLRA85S43C523S", since="02/2020", pandemic_related="not_sure",
              outcome=("not_admitted",
                       "Il contratto era scaduto a gennaio 2020, prima della crisi.")),
    Candidate("Nicolò D'Amico", "+39 339 245 7781", "referred", worker="operatore",
              needs="psychological_support",
              outcome=("referred", "Centro per l'impiego di Melzo – servizio disabilità")),
    Candidate(_MARIO, "+39 346 990 1205", "returned", needs="job_search"),
)  # fmt: skip


async def _answer_questionnaire(
    session: AsyncSession, settings: Settings, citizen: Citizen, who: Candidate, now: datetime
) -> Case:
    """The whole questionnaire through the intake engine; confirming it opens the case."""
    raw = {
        "residence": who.residence,
        "situation": who.situation,
        "since": who.since,
        "pandemic_related": who.pandemic_related,
        "household": who.household,
        "benefits": who.benefits,
        "needs": who.needs,
        "urgent": who.urgent,
        "name": who.name,
        "phone": who.phone,
        "fiscal_code": who.fiscal_code,
    }
    state = await intake.start_intake(session=session, citizen_id=citizen.id, now=now)
    while (step := intake.current_step(state)) is not None:
        answer = raw.get(step.key)
        if answer is None:
            state = await intake.skip_step(
                session=session, citizen_id=citizen.id, step_key=step.key, now=now
            )
        else:
            state = await intake.record_answer(
                session=session, citizen_id=citizen.id, step_key=step.key, raw=answer,
                now=now, settings=settings,
            )  # fmt: skip
    await intake.confirm(session=session, citizen_id=citizen.id, now=now, settings=settings)
    case = await cases.open_case_of(session=session, citizen_id=citizen.id)
    assert case is not None  # opened by the confirmation
    return case


async def insert_past_booking(
    *, session: AsyncSession, citizen_id: int, slot: FreeSlot, actor: str, now: datetime
) -> Booking:
    """Demo history only: a booking for a slot already past, which `book_slot` refuses.

    The place is taken like any other (`slot.taken` counts it), and the case follows.
    """
    made = await places.book_place(
        session=session,
        citizen_id=citizen_id,
        slot=SlotTime(slot.starts_at, slot.helpdesk_id, slot.ends_at, slot.capacity),
        actor=actor,
        moved_from_id=None,
    )
    await cases.on_booking_changed(session=session, booking=made, now=now)
    return made


async def seed(*, session: AsyncSession, settings: Settings, now: datetime) -> list[Case]:
    """Candidates at every stage: new, booked, checked in, admitted, not admitted, referred."""
    workers = {}
    for username in ("operatore", "operatrice"):
        user = await staff.get_by_username(session=session, username=username)
        if user is not None:
            workers[username] = access.StaffMember(user.id, Role(user.role), f"staff:{username}")
    # Free slots as they were two weeks ago: the ones now past make the demo's history.
    then = now - timedelta(days=14)
    history = [
        s
        for s in await availability.list_free_slots(session=session, settings=settings, now=then)
        if s.starts_at < now - timedelta(hours=2)
    ]
    history.reverse()  # the most recent first
    upcoming = await availability.list_free_slots(session=session, settings=settings, now=now)
    made = []
    for who in CANDIDATES:
        citizen = Citizen(
            channel=who.channel.value,
            language="it",
            consent_version=PRIVACY_NOTICE_VERSION,
            consented_at=then,
            created_at=then,
        )
        session.add(citizen)
        await session.flush()
        if who.name == _MARIO:
            made.append(await _returning(session, settings, citizen, who, now, workers))
            continue
        asked_at = then + timedelta(hours=len(made))
        case = await _answer_questionnaire(session, settings, citizen, who, asked_at)
        worker = workers.get(who.worker or "")
        if worker is not None:
            await cases.assign_case(
                session=session, case_id=case.id, assignee_id=worker.user_id, staff=worker,
                now=asked_at,
            )  # fmt: skip
        if who.stage == "booked" and upcoming:
            slot = upcoming.pop(len(upcoming) // 3)
            await booking.book_slot(
                session=session, settings=settings, citizen_id=citizen.id,
                helpdesk_id=slot.helpdesk_id, starts_at=slot.starts_at, actor="staff:demo",
                now=now,
            )  # fmt: skip
        elif who.stage != "new" and history:
            await _past_appointment(session, citizen, who, history.pop(0), worker)
        await session.refresh(case)
        made.append(case)
    return made


async def _past_appointment(
    session: AsyncSession,
    citizen: Citizen,
    who: Candidate,
    slot: FreeSlot,
    worker: access.StaffMember | None,
) -> None:
    """An appointment already happened: missed, or attended and (perhaps) interviewed."""
    at = slot.starts_at
    past = await insert_past_booking(
        session=session, citizen_id=citizen.id, slot=slot, actor="staff:demo",
        now=at - timedelta(days=3),
    )  # fmt: skip
    if who.stage == "no_show":
        await booking.mark_no_show(
            session=session, booking_id=past.id, actor="staff:demo", now=at + timedelta(minutes=30)
        )
        return
    await booking.mark_attended(
        session=session, booking_id=past.id, actor="staff:demo", now=at - timedelta(minutes=5)
    )
    if worker is None:
        return
    case = await cases.open_case_of(session=session, citizen_id=citizen.id)
    assert case is not None
    if who.interview:
        answered = await intake.get_intake(session=session, citizen_id=citizen.id)
        prefilled = interview_form.prefill(answered.answers if answered else {})
        await cases.save_interview(
            session=session, case_id=case.id, staff=worker, now=at + timedelta(minutes=30),
            # As staff submit it: the form prefilled from the pre-screening, plus their notes.
            fields={**interview_form.form_values(prefilled), **who.interview},
        )  # fmt: skip
    if who.outcome is not None:
        outcome, text = who.outcome
        await cases.record_outcome(
            session=session, case_id=case.id, outcome=outcome, staff=worker,
            reason=text if outcome == "not_admitted" else "",
            referred_to=text if outcome == "referred" else "",
            now=at + timedelta(minutes=45),
        )  # fmt: skip


# The coordinator who closed the returning citizen's first case (no account needed).
_DEMO_COORDINATOR = access.StaffMember(0, Role.COORDINATORE, "staff:demo")


async def _returning(
    session: AsyncSession,
    settings: Settings,
    citizen: Citizen,
    who: Candidate,
    now: datetime,
    workers: dict[str, access.StaffMember],
) -> Case:
    """A citizen who came in the spring, found a job, lost it and is back: two linked cases."""
    first = await _answer_questionnaire(session, settings, citizen, who, now - timedelta(days=120))
    await cases.close_case(
        session=session, case_id=first.id, staff=_DEMO_COORDINATOR, now=now - timedelta(days=100),
        reason="Ha trovato lavoro come magazziniere prima del colloquio.",
    )  # fmt: skip
    again = await _answer_questionnaire(session, settings, citizen, who, now - timedelta(days=2))
    worker = workers.get("operatrice")
    if worker is not None:
        await cases.assign_case(
            session=session, case_id=again.id, assignee_id=worker.user_id, staff=worker,
            now=now - timedelta(days=1),
        )  # fmt: skip
    assert again.state == CaseState.NEW
    return again
