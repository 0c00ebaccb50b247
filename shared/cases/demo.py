"""Demo candidates at every stage of their path, for `ripartire demo`.

Everything goes through the real services: the questionnaire engine (whose confirmation
opens the case) or, for those their case worker registered on the phone or at the desk,
the staff intake form (`shared.intake.staff`); `book_slot` for appointments to come,
`mark_attended` / `mark_no_show`, and the interview and outcome services. The one
exception is history: `book_slot` refuses a slot in the past, so appointments that
already happened are made by `insert_past_booking`, which takes the place with the
booking engine's own race-free primitives (`shared.booking.places`, so `slot.taken`
stays right) and then tells the case, as `book_slot` would.

The candidates admitted longest ago (`days_ago`) came in weeks before the others: their
plans (`shared.plans.demo`) have had time to be approved, signed, paid and closed.

Runs after the staff accounts and helpdesks of `shared.demo` / `shared.booking.demo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import availability, offers, places
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
from shared.intake import staff as desk_intake
from shared.intake.models import IntakeState
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
    # When they answered the questionnaire, for those who came before the last fortnight;
    # their appointment is the first free slot three days later.
    days_ago: int | None = None
    # Registered by their case worker on the phone or at the desk (the staff intake form),
    # rather than answering the questionnaire themselves.
    by_staff: bool = False


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
    # Missed two appointments: the bookings board lists her among repeated no-shows.
    Candidate("Elena Conti", "+39 346 302 7715", "no_show_twice", worker="operatrice",
              urgent="yes", needs="economic_support benefits_access"),
    Candidate("Valentina Russo", "+39 340 552 9087", "booked", worker="operatrice",
              needs="job_search internship"),
    Candidate("Mohamed Ben Salah", "+39 320 771 4412", "booked", urgent="yes",
              household="5 3", needs="economic_support job_search", benefits="inclusion"),
    Candidate("Giorgia Marino", "+39 345 123 9870", "checked_in", worker="operatore",
              needs="psychological_support job_search",
              interview={"work.last_job": ["Commessa in un negozio di abbigliamento"],
                         "work.contract": ["fixed_term"], "work.years_worked": ["9"]}),
    Candidate("Paolo Ricci", "+39 331 908 4456", "admitted", worker="operatore",
              fiscal_code="RCCPLA78E12F205T", urgent="yes", days_ago=16,
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
    # Admitted weeks ago: their plans are at every stage (shared/plans/demo.py).
    Candidate("Alessandro Greco", "+39 351 447 2093", "admitted", worker="operatore",
              fiscal_code="GRCLSN92D11A662A", since="11/2020", household="1 0",
              needs="economic_support job_search internship", by_staff=True, days_ago=58,
              interview={
                  "work.last_job": ["Magazziniere per una ditta di logistica a Pioltello"],
                  "work.employer": ["Logistica"],
                  "work.contract": ["agency"],
                  "work.years_worked": ["6"],
                  "work.history": ["Contratti in somministrazione di tre mesi, non rinnovati "
                                   "da novembre 2020."],
                  "skills.education": ["upper_secondary"],
                  "skills.italian": ["native"],
                  "skills.digital": ["good"],
                  "skills.driving_licence": ["yes"],
                  "skills.skills": ["Vorrebbe imparare un mestiere: lo interessa la falegnameria."],
                  "household.housing": ["rent"],
                  "household.housing_cost": ["480"],
                  "household.monthly_income": ["750"],
                  "debts.struggling": ["yes"],
                  "debts.arrears": ["utilities"],
                  "debts.total_debt": ["900"],
                  "debts.urgent_expenses": ["Bolletta del gas di 600 € con avviso di sospensione."],
                  "wellbeing.feeling": ["tired"],
                  "wellbeing.support_network": ["some"],
              },
              outcome=("admitted", "")),
    Candidate("Samuel Okafor", "+39 328 615 0942", "admitted", worker="operatrice",
              fiscal_code="KFRSML88A17Z335A", since="03/2021", household="4 2",
              benefits="none", needs="economic_support psychological_support job_search",
              channel=Channel.WALK_IN, by_staff=True, days_ago=52,
              interview={
                  "work.last_job": ["Addetto alle pulizie industriali"],
                  "work.employer": ["Servizi di pulizia"],
                  "work.contract": ["fixed_term"],
                  "work.years_worked": ["8"],
                  "skills.education": ["upper_secondary"],
                  "skills.italian": ["good"],
                  "skills.languages": ["Inglese (madrelingua), yoruba"],
                  "skills.digital": ["basic"],
                  "skills.driving_licence": ["no"],
                  "household.housing": ["rent"],
                  "household.housing_cost": ["600"],
                  "household.monthly_income": ["850"],
                  "debts.struggling": ["yes"],
                  "debts.arrears": ["rent", "utilities"],
                  "debts.total_debt": ["1800"],
                  "debts.eviction_risk": ["yes"],
                  "debts.urgent_expenses": ["Bollette di luce e gas arretrate, distacco "
                                            "annunciato."],
                  "wellbeing.feeling": ["struggling"],
                  "wellbeing.support_network": ["none"],
                  "wellbeing.wants_psychological_support": ["yes"],
                  "wellbeing.notes": ["Dorme poco da quando ha perso il lavoro; ne parla a "
                                      "fatica."],
              },
              outcome=("admitted", "")),
    Candidate("Roberta Longhi", "+39 347 902 3318", "admitted", worker="operatore",
              fiscal_code="LNGRRT83P48C523S", since="10/2020", household="2 1",
              benefits="none", needs="economic_support benefits_access job_search",
              urgent="yes", by_staff=True, days_ago=45,
              interview={
                  "work.last_job": ["Commessa in un negozio di calzature"],
                  "work.employer": ["Commercio al dettaglio"],
                  "work.contract": ["fixed_term"],
                  "work.years_worked": ["12"],
                  "skills.education": ["upper_secondary"],
                  "skills.italian": ["native"],
                  "skills.digital": ["good"],
                  "skills.driving_licence": ["yes"],
                  "household.housing": ["rent"],
                  "household.housing_cost": ["700"],
                  "household.monthly_income": ["520"],
                  "household.isee": ["6400"],
                  "household.notes": ["Vive con la figlia di 11 anni."],
                  "debts.struggling": ["yes"],
                  "debts.arrears": ["rent"],
                  "debts.total_debt": ["1400"],
                  "debts.eviction_risk": ["yes"],
                  "debts.urgent_expenses": ["Due mensilità di affitto arretrate: il proprietario "
                                            "ha parlato di sfratto."],
                  "wellbeing.feeling": ["tired"],
                  "wellbeing.support_network": ["some"],
              },
              outcome=("admitted", "")),
    Candidate("Stefano Moretti", "+39 335 718 2264", "admitted", worker="operatrice",
              fiscal_code="MRTSFN79E30F704H", situation="self_employment_stopped",
              since="11/2020", benefits="other", needs="microcredit economic_support",
              by_staff=True, days_ago=30,
              interview={
                  "work.last_job": ["Titolare di una piccola tipografia a Cernusco"],
                  "work.employer": ["Grafica e stampa"],
                  "work.contract": ["self_employed"],
                  "work.years_worked": ["20"],
                  "work.history": ["Ha chiuso la partita IVA a novembre 2020 dopo il crollo "
                                   "degli ordini di eventi e ristoranti."],
                  "skills.education": ["vocational"],
                  "skills.digital": ["advanced"],
                  "skills.skills": ["Vuole ripartire con la stampa digitale su richiesta."],
                  "household.housing": ["mortgage"],
                  "household.housing_cost": ["550"],
                  "household.monthly_income": ["1100"],
                  "debts.struggling": ["yes"],
                  "debts.arrears": ["utilities", "loans"],
                  "debts.total_debt": ["5200"],
                  "wellbeing.feeling": ["tired"],
                  "wellbeing.support_network": ["strong"],
              },
              outcome=("admitted", "")),
    Candidate("Elisa Mariani", "+39 342 556 7710", "admitted", worker="operatore",
              fiscal_code="MRNLSE86L54F205S", since="05/2021", household="1 0",
              needs="internship job_search", by_staff=True, days_ago=28,
              interview={
                  "work.last_job": ["Receptionist in un hotel vicino a Linate"],
                  "work.employer": ["Alberghiero"],
                  "work.contract": ["fixed_term"],
                  "work.years_worked": ["7"],
                  "skills.education": ["upper_secondary"],
                  "skills.qualifications": ["Diploma di istituto tecnico per il turismo"],
                  "skills.italian": ["native"],
                  "skills.languages": ["Inglese, spagnolo"],
                  "skills.digital": ["good"],
                  "skills.skills": ["Vorrebbe lavorare in amministrazione o contabilità."],
                  "household.housing": ["hosted"],
                  "household.monthly_income": ["780"],
                  "debts.struggling": ["no"],
                  "wellbeing.feeling": ["good"],
                  "wellbeing.support_network": ["strong"],
              },
              outcome=("admitted", "")),
    Candidate("Giovanni Esposito", "+39 366 204 8851", "admitted", worker="operatrice",
              fiscal_code="SPSGNN71C02F839Y", situation="reduced_hours", since="01/2021",
              household="5 3", benefits="wage_guarantee",
              needs="economic_support benefits_access", urgent="yes", by_staff=True, days_ago=24,
              interview={
                  "work.last_job": ["Operaio metalmeccanico, in cassa integrazione a zero ore"],
                  "work.employer": ["Metalmeccanica"],
                  "work.contract": ["permanent"],
                  "work.years_worked": ["27"],
                  "skills.education": ["lower_secondary"],
                  "skills.italian": ["native"],
                  "skills.digital": ["basic"],
                  "household.housing": ["rent"],
                  "household.housing_cost": ["750"],
                  "household.monthly_income": ["1150"],
                  "debts.struggling": ["yes"],
                  "debts.arrears": ["utilities"],
                  "debts.total_debt": ["1350"],
                  "debts.eviction_risk": ["yes"],
                  "debts.urgent_expenses": ["Bollette di luce e gas arretrate da ottobre: "
                                            "1.350 €, con preavviso di distacco."],
                  "wellbeing.feeling": ["tired"],
                  "wellbeing.support_network": ["some"],
              },
              outcome=("admitted", "")),
    Candidate("Fatima Zahra El Idrissi", "+39 327 883 1406", "admitted", worker="operatore",
              fiscal_code="LDRFMZ90S63Z330P", since="04/2021", household="3 2",
              benefits="none", needs="economic_support psychological_support job_search",
              by_staff=True, days_ago=22,
              interview={
                  "work.last_job": ["Aiuto cuoca nella mensa di una scuola"],
                  "work.employer": ["Ristorazione collettiva"],
                  "work.contract": ["agency"],
                  "work.years_worked": ["5"],
                  "skills.education": ["lower_secondary"],
                  "skills.italian": ["good"],
                  "skills.languages": ["Arabo, francese"],
                  "skills.digital": ["basic"],
                  "skills.driving_licence": ["no"],
                  "household.housing": ["rent"],
                  "household.housing_cost": ["620"],
                  "household.monthly_income": ["400"],
                  "household.isee": ["4100"],
                  "household.notes": ["Separata da un anno; i figli di 6 e 9 anni vivono con lei."],
                  "debts.struggling": ["yes"],
                  "debts.arrears": ["rent", "utilities"],
                  "debts.total_debt": ["1600"],
                  "wellbeing.feeling": ["struggling"],
                  "wellbeing.support_network": ["none"],
                  "wellbeing.wants_psychological_support": ["yes"],
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


def _raw_answers(who: Candidate) -> dict[str, str | None]:
    """The candidate's answers as typed, by step key (None: skipped)."""
    return {
        "residence": who.residence,
        "situation": who.situation,
        "since": who.since,
        "pandemic_related": who.pandemic_related,
        "household": who.household,
        "benefits": who.benefits,
        "needs": who.needs,
        "urgent": who.urgent,
        # Asked instead of the rest when an answer rules the candidate out: they leave
        # name and phone, so that staff see them and may override the outcome.
        "contact_offer": "yes",
        "name": who.name,
        "phone": who.phone,
        "fiscal_code": who.fiscal_code,
    }


async def _answer_questionnaire(
    session: AsyncSession, settings: Settings, citizen: Citizen, who: Candidate, now: datetime
) -> Case:
    """The whole questionnaire through the intake engine; confirming it opens the case."""
    raw = _raw_answers(who)
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
    if state.state == IntakeState.SUMMARY:
        # A candidate ruled out is done once they have left name and phone.
        await intake.confirm(session=session, citizen_id=citizen.id, now=now, settings=settings)
    case = await cases.open_case_of(session=session, citizen_id=citizen.id)
    assert case is not None  # opened by the confirmation
    return case


async def _registered(
    session: AsyncSession,
    settings: Settings,
    who: Candidate,
    worker: access.StaffMember,
    now: datetime,
) -> Case:
    """The questionnaire filled in by their case worker on the phone or at the desk, with
    the staff intake form (SPEC J7); submitting it opens the case."""
    raw = {key: value for key, value in _raw_answers(who).items() if value is not None}
    done = await desk_intake.submit_intake(
        session=session, settings=settings, channel=who.channel.value, raw=raw, consent=True,
        actor=worker.actor, now=now,
    )  # fmt: skip
    case = await session.get(Case, done.case_id) if done.case_id is not None else None
    assert case is not None  # opened by the submission
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
    then = now - timedelta(days=14)  # when most candidates came
    history = await _past_slots(session, settings, now)
    upcoming = await availability.list_free_slots(session=session, settings=settings, now=now)
    made: list[Case] = []
    for who in CANDIDATES:
        if who.days_ago is not None:
            asked_at = now - timedelta(days=who.days_ago)
        else:
            asked_at = then + timedelta(hours=len(made))
        worker = workers.get(who.worker or "")
        if who.by_staff and worker is not None:
            case = await _registered(session, settings, who, worker, asked_at)
        else:
            citizen = Citizen(
                channel=who.channel.value,
                language="it",
                consent_version=PRIVACY_NOTICE_VERSION,
                consented_at=min(then, asked_at),
                created_at=min(then, asked_at),
            )
            session.add(citizen)
            await session.flush()
            if who.name == _MARIO:
                made.append(await _returning(session, settings, citizen, who, now, workers))
                continue
            case = await _answer_questionnaire(session, settings, citizen, who, asked_at)
        if worker is not None:
            await cases.assign_case(
                session=session, case_id=case.id, assignee_id=worker.user_id, staff=worker,
                now=asked_at,
            )  # fmt: skip
        if who.stage == "booked" and upcoming:
            slot = upcoming.pop(len(upcoming) // 3)
            booked = await booking.book_slot(
                session=session, settings=settings, citizen_id=case.citizen_id,
                helpdesk_id=slot.helpdesk_id, starts_at=slot.starts_at, actor="staff:demo",
                now=now,
            )  # fmt: skip
            if who.urgent == "yes":
                await _offer_earlier_place(session, settings, booked.id, now)
        elif who.stage == "no_show_twice" and len(history) > 1:
            # A month ago and again last week.
            for slot in (history.pop(len(history) // 2), history.pop(0)):
                await _past_appointment(session, settings, case.citizen_id, who, slot, worker)
        elif who.stage != "new" and history:
            came = who.days_ago is not None
            later = _first_after(history, asked_at + timedelta(days=3)) if came else None
            slot = later or history[0]
            history.remove(slot)
            await _past_appointment(session, settings, case.citizen_id, who, slot, worker)
        await session.refresh(case)
        made.append(case)
    return made


async def _offer_earlier_place(
    session: AsyncSession, settings: Settings, booking_id: int, now: datetime
) -> None:
    """An urgent citizen's open offer of the soonest place before their appointment (held
    for the waitlist's hold time from the demo's start, as a coordinator would make it)."""
    found = await offers.earlier_places(
        session=session, settings=settings, booking_id=booking_id, now=now
    )
    if found.places:
        soonest = found.places[0]
        await offers.offer_earlier_place(
            session=session, settings=settings, booking_id=booking_id,
            helpdesk_id=soonest.helpdesk_id, starts_at=soonest.starts_at,
            actor="staff:coordinatore", now=now,
        )  # fmt: skip


# How far back these candidates' appointments go (the helpdesks' hours go further back:
# shared.booking.demo.HISTORY_DAYS, for shared.figures.demo's history).
HISTORY_DAYS = 60


async def _past_slots(
    session: AsyncSession, settings: Settings, now: datetime, *, days: int = HISTORY_DAYS
) -> list[FreeSlot]:
    """The free slots of the last `days` already past, the most recent first.

    Listed as they were offered back then, one booking horizon at a time.
    """
    found: dict[tuple[int, datetime], FreeSlot] = {}
    offered_at = now - timedelta(days=days)
    while offered_at < now:
        for slot in await availability.list_free_slots(
            session=session, settings=settings, now=offered_at
        ):
            if slot.starts_at < now - timedelta(hours=2):
                found.setdefault((slot.helpdesk_id, slot.starts_at), slot)
        offered_at += timedelta(days=settings.booking_horizon_days)
    return sorted(found.values(), key=lambda slot: slot.starts_at, reverse=True)


def _first_after(history: list[FreeSlot], earliest: datetime) -> FreeSlot | None:
    """The earliest of the slots starting at `earliest` or later."""
    return min(
        (slot for slot in history if slot.starts_at >= earliest),
        key=lambda slot: slot.starts_at,
        default=None,
    )


async def _past_appointment(
    session: AsyncSession,
    settings: Settings,
    citizen_id: int,
    who: Candidate,
    slot: FreeSlot,
    worker: access.StaffMember | None,
) -> None:
    """An appointment already happened: missed, or attended and (perhaps) interviewed."""
    at = slot.starts_at
    past = await insert_past_booking(
        session=session, citizen_id=citizen_id, slot=slot, actor="staff:demo",
        now=at - timedelta(days=3),
    )  # fmt: skip
    if who.stage in ("no_show", "no_show_twice"):
        await booking.mark_no_show(
            session=session, settings=settings, booking_id=past.id, actor="staff:demo",
            now=at + timedelta(minutes=30),
        )  # fmt: skip
        return
    await booking.mark_attended(
        session=session, booking_id=past.id, actor="staff:demo", now=at - timedelta(minutes=5)
    )
    if worker is None:
        return
    case = await cases.open_case_of(session=session, citizen_id=citizen_id)
    assert case is not None
    if who.interview:
        answered = await intake.get_intake(session=session, citizen_id=citizen_id)
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
