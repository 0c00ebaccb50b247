"""Months of history for `ripartire demo`, so that every chart of `/figures` has something
to show: `PER_WEEK` candidates a week over the last `HISTORY_WEEKS` weeks, at every stage.

What each one came to is dealt from a fixed list with a fixed seed, relative to today, so
the demo reads the same any day: privacy notices refused; questionnaires abandoned at
every question (the older ones wiped by the expiry sweep, which keeps the anonymous
count); candidates ruled out by each rule; eligible ones never booked (their interview
overdue), booked and cancelled by themselves or by staff, missing the appointment, or
coming to it and interviewed: admitted, not admitted or referred; and plans for some of
the admitted, closed with every outcome and closure check, cancelled supports among them
(`plan_scripts`, run with `shared.plans.demo`'s, in the order things happened).

Made through the services where the product has one for the step: `on_intake_confirmed`
opens each case, `insert_past_booking` (the booking engine's primitives) takes past
places, `mark_attended` / `mark_no_show` / `cancel_booking` and `record_outcome` move
them on, `expire_stale` wipes the abandoned questionnaires, `refuse_consent` counts the
refusals, and the plans go through `shared.plans.service`. The questionnaires' answers
are written as the engine stores them, not typed step by step: a hundred candidates
answering a dozen questions each would take the demo's start from seconds to tens of them.

Runs after `shared.cases.demo` (whose people keep their places), before `shared.plans.demo`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import demo as booking_demo
from shared.booking import service as booking
from shared.booking.availability import FreeSlot
from shared.cases import access
from shared.cases import demo as case_demo
from shared.cases import service as cases
from shared.citizens import service as citizens
from shared.citizens.models import Channel, Citizen
from shared.citizens.service import PRIVACY_NOTICE_VERSION
from shared.funds.models import Payee
from shared.intake import service as intake
from shared.intake.models import Intake, IntakeState
from shared.plans import service as plans
from shared.plans.catalog import Kind
from shared.plans.demo import (
    CARIPLO,
    Act,
    Context,
    DemoPlan,
    Payment,
    Step,
    _case_manager,
    _org,
    _support,
)
from shared.plans.form import CommitmentInput, ObjectiveInput, PlanInput, Responsible
from shared.plans.models import PlanOutcome, Trend
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role

# Whole weeks within the helpdesks' hours.
HISTORY_WEEKS = booking_demo.HISTORY_DAYS // 7 - 1
SEED = 13
# Candidates a week: enough for every chart, few enough for a demo that starts in seconds.
PER_WEEK = 3

_FIRST = (
    "Marta", "Andrea", "Simone", "Federica", "Matteo", "Silvia", "Giorgio", "Ilaria",
    "Franco", "Beatrice", "Claudio", "Serena", "Daniele", "Monica", "Fabio", "Cristina",
    "Emanuele", "Paola", "Riccardo", "Teresa", "Omar", "Irina", "Kevin", "Amina",
)  # fmt: skip
_LAST = (
    "Rossi", "Bruno", "Gatti", "Fontana", "Caruso", "Lombardi", "Barbieri", "Pellegrini",
    "Testa", "Cattaneo", "Ferraro", "Sartori", "Vitali", "Mancini", "Marchetti", "Rinaldi",
    "Monti", "Pagani", "Bassi", "Parisi", "Mazza", "Orlando", "Pozzi",
)  # fmt: skip

# What each week's candidates came to, dealt in this order week after week.
_FATES = (
    "attended_admitted", "abandoned", "no_show", "ruled_out", "attended_admitted",
    "cancelled_by_citizen", "attended_not_admitted", "abandoned", "never_booked",
    "attended_admitted", "cancelled_by_staff", "ruled_out", "attended_referred", "no_show",
    "attended_admitted", "abandoned",
)  # fmt: skip
# The questionnaire's order, as the engine asks it of an eligible candidate.
_PATH = (
    "residence", "situation", "since", "pandemic_related", "household", "benefits", "needs",
    "urgent", "name", "phone", "email", "fiscal_code",
)  # fmt: skip
_RULED_OUT = (
    {"residence": "no"},
    {"residence": "yes", "situation": "other"},
    {"residence": "yes", "situation": "job_loss", "since": "2019-11", "pandemic_related": "no"},
)
_SITUATIONS = ("job_loss", "job_loss", "self_employment_stopped", "reduced_hours")
_BENEFITS = (["none"], ["naspi"], ["inclusion"], ["wage_guarantee"], ["naspi", "other"])
_NEEDS = (
    ["job_search"], ["economic_support", "job_search"], ["internship", "job_search"],
    ["psychological_support", "job_search"], ["benefits_access", "economic_support"],
    ["microcredit"],
)  # fmt: skip
_OUTCOMES = tuple(PlanOutcome)
_CHECKS = (
    (Trend.BETTER, Trend.BETTER, Trend.SAME),
    (Trend.BETTER, Trend.SAME, Trend.SAME),
    (Trend.SAME, Trend.SAME, Trend.SAME),
    (Trend.BETTER, Trend.WORSE, Trend.SAME),
    (Trend.SAME, Trend.BETTER, Trend.BETTER),
    (Trend.WORSE, Trend.SAME, Trend.WORSE),
)


@dataclass
class _History:
    session: AsyncSession
    settings: Settings
    now: datetime
    workers: list[access.StaffMember]
    slots: list[FreeSlot]
    rng: random.Random
    made: int = 0
    appointments: int = 0

    def worker(self) -> access.StaffMember:
        return self.workers[self.made % len(self.workers)]

    async def citizen(self, at: datetime, channel: Channel) -> Citizen:
        person = Citizen(
            channel=channel.value, language="it", consent_version=PRIVACY_NOTICE_VERSION,
            consented_at=at, created_at=at, updated_at=at,
        )  # fmt: skip
        self.session.add(person)
        await self.session.flush()
        return person

    def answers(self, number: int) -> dict[str, Any]:
        """An eligible candidate's answers, as the engine stores them."""
        rng = self.rng
        members = rng.randint(1, 5)
        return {
            "residence": "yes",
            "situation": rng.choice(_SITUATIONS),
            "since": f"{rng.choice((2020, 2021))}-{rng.randint(3, 12):02d}",
            "pandemic_related": "yes",
            "household": {"members": members, "minors": rng.randint(0, members - 1)},
            "benefits": rng.choice(_BENEFITS),
            "needs": rng.choice(_NEEDS),
            "urgent": "yes" if rng.random() < 0.25 else "no",
            "name": _name(number),
            "phone": f"+39351700{number:04d}",
            "email": None,
            "fiscal_code": None,
        }

    async def abandon(self, at: datetime, number: int) -> None:
        """A questionnaire left at a question (or in the summary) on Telegram."""
        person = await self.citizen(at, Channel.TELEGRAM)
        full = self.answers(number)
        stop = number % (len(_PATH) + 1)
        given = {key: full[key] for key in _PATH[:stop]}
        done = stop == len(_PATH)
        self.session.add(
            Intake(
                citizen_id=person.id,
                state=(IntakeState.SUMMARY if done else IntakeState.IN_PROGRESS).value,
                current_step=None if done else _PATH[stop],
                answers=given, history=list(given), started_at=at,
                updated_at=at + timedelta(minutes=2 * stop + 1),
            )
        )  # fmt: skip

    async def confirmed(
        self, at: datetime, number: int, answers: dict[str, Any], eligible: bool
    ) -> int:
        """A questionnaire confirmed (on the phone with a case worker): the case opens."""
        person = await self.citizen(at, Channel.PHONE if number % 3 else Channel.WALK_IN)
        urgent = eligible and answers.get("urgent") == "yes"
        person.name, person.phone, person.urgent = answers["name"], answers["phone"], urgent
        self.session.add(
            Intake(
                citizen_id=person.id, state=IntakeState.COMPLETED.value, answers=answers,
                history=list(answers), started_at=at, updated_at=at, completed_at=at,
                eligible=eligible, urgent=urgent,
            )
        )  # fmt: skip
        await self.session.flush()
        case = await cases.on_intake_confirmed(
            session=self.session, citizen_id=person.id, eligible=eligible, urgent=urgent,
            now=at, actor=self.worker().actor,
        )  # fmt: skip
        return case.citizen_id

    def slot_after(self, earliest: datetime) -> FreeSlot | None:
        """The first free slot from `earliest` at each helpdesk in turn (any helpdesk when
        that one has none left): the earliest at any helpdesk would leave the helpdesk
        with the fewest hours empty on some days of the week the demo starts on."""
        helpdesks = sorted({slot.helpdesk_id for slot in self.slots})
        if not helpdesks:
            return None
        turn = helpdesks[self.appointments % len(helpdesks)]
        self.appointments += 1
        found = case_demo._first_after(
            [slot for slot in self.slots if slot.helpdesk_id == turn], earliest
        ) or case_demo._first_after(self.slots, earliest)
        if found is not None:
            self.slots.remove(found)
        return found

    async def appointment(self, citizen_id: int, fate: str, asked_at: datetime) -> bool:
        """The candidate's appointment and what became of it; True if admitted."""
        slot = self.slot_after(asked_at + timedelta(days=3))
        if slot is None:
            return False
        at, session, settings = slot.starts_at, self.session, self.settings
        worker = self.worker()
        made = await case_demo.insert_past_booking(
            session=session, citizen_id=citizen_id, slot=slot, actor=worker.actor,
            now=asked_at + timedelta(hours=1),
        )  # fmt: skip
        made.created_at = asked_at + timedelta(hours=1)
        if fate in ("cancelled_by_citizen", "cancelled_by_staff"):
            by_citizen = fate == "cancelled_by_citizen"
            await booking.cancel_booking(
                session=session, settings=settings, booking_id=made.id,
                by=booking.CancelledBy.CITIZEN if by_citizen else booking.CancelledBy.STAFF,
                actor=f"citizen:{citizen_id}" if by_citizen else worker.actor,
                reason="" if by_citizen else "Operatore assente per malattia",
                now=at - timedelta(days=1),
            )  # fmt: skip
            return False
        if fate == "no_show":
            await booking.mark_no_show(
                session=session, settings=settings, booking_id=made.id, actor=worker.actor,
                now=at + timedelta(minutes=30),
            )  # fmt: skip
            return False
        await booking.mark_attended(
            session=session, booking_id=made.id, actor=worker.actor, now=at - timedelta(minutes=5)
        )
        case = await cases.open_case_of(session=session, citizen_id=citizen_id)
        assert case is not None
        outcome = fate.removeprefix("attended_")
        await cases.record_outcome(
            session=session, case_id=case.id, outcome=outcome, staff=worker,
            reason="Situazione non legata alla crisi." if outcome == "not_admitted" else "",
            referred_to="Servizi sociali del Comune" if outcome == "referred" else "",
            now=at + timedelta(minutes=40),
        )  # fmt: skip
        return outcome == "admitted"


def _name(number: int) -> str:
    first = _FIRST[number % len(_FIRST)]
    last = _LAST[(number // len(_FIRST) * 7 + number) % len(_LAST)]
    return f"{first} {last}"


async def seed(*, session: AsyncSession, settings: Settings, now: datetime) -> list[DemoPlan]:
    """The history; returns the scripts of its plans, for `shared.plans.demo.seed`."""
    workers = []
    for username in ("operatore", "operatrice"):
        user = await staff.get_by_username(session=session, username=username)
        if user is not None:
            workers.append(access.StaffMember(user.id, Role(user.role), f"staff:{username}"))
    if not workers:
        raise LookupError("no demo case workers: run shared.demo's staff part first")
    slots = await case_demo._past_slots(session, settings, now, days=HISTORY_WEEKS * 7)
    history = _History(session, settings, now, workers, slots, random.Random(SEED))  # noqa: S311 (sample data, not secrets)
    tz = settings.tz
    today = now.astimezone(tz).date()
    admitted: list[tuple[str, datetime]] = []
    fates = iter(_FATES * HISTORY_WEEKS)
    for week in range(HISTORY_WEEKS, 0, -1):
        monday = today - timedelta(days=today.weekday() + 7 * week)
        # A refusal of the privacy notice most weeks.
        if week % 4 != 0:
            refused = datetime.combine(monday + timedelta(days=week % 5), time(19), tzinfo=tz)
            await citizens.refuse_consent(session=session, now=refused)
        for n in range(PER_WEEK):
            fate = next(fates)
            number = history.made
            history.made += 1
            at = datetime.combine(monday + timedelta(days=n), time(10 + n, 15), tzinfo=tz)
            if fate == "abandoned":
                await history.abandon(at, number)
                continue
            if fate == "ruled_out":
                answers = {
                    **_RULED_OUT[number % len(_RULED_OUT)], "contact_offer": "yes",
                    "name": _name(number), "phone": f"+39351700{number:04d}",
                }  # fmt: skip
                await history.confirmed(at, number, answers, eligible=False)
                continue
            answers = history.answers(number)
            citizen_id = await history.confirmed(at, number, answers, eligible=True)
            if fate == "never_booked" or at > now - timedelta(days=4):
                continue
            if await history.appointment(citizen_id, fate, at):
                admitted.append((answers["name"], at))
    # The sweep's work: questionnaires left longer than the expiry, wiped (and counted).
    await intake.expire_stale(
        session=session, now=now, max_age=timedelta(days=settings.intake_expiry_days), tz=tz
    )
    return plan_scripts(admitted, today_of=now.astimezone(tz))


def plan_scripts(admitted: list[tuple[str, datetime]], *, today_of: datetime) -> list[DemoPlan]:
    """Plans for most of the admitted (the last few wait for one: their plan is due)."""
    scripts = []
    closed = 0
    for index, (name, asked_at) in enumerate(admitted):
        came = (today_of - asked_at).days - 4  # days ago of the interview, about
        if came < 20 or index % 4 == 3:
            continue  # no plan yet
        start = came - 3
        steps = [
            Step(Act.START, start), Step(Act.SAVE, start, time(11)),
            Step(Act.SUBMIT, start - 2, time(15)), Step(Act.APPROVE, start - 4),
            Step(Act.SIGN, start - 6),
            Step(Act.PAY, start - 7, payment=Payment(0, 250, Payee.LANDLORD, "Affitto")),
        ]  # fmt: skip
        # Some plans ask for a microcredit; in the others the job search was cancelled (the
        # citizen found a course instead).
        microcredit = index % 5 != 1
        if not microcredit:
            steps.append(Step(Act.EDIT, start - 9, edits={"support-1.state": "cancelled"}))
        if start - 30 > 2:
            steps.append(Step(Act.PAY, start - 30, payment=Payment(0, 250, Payee.LANDLORD,
                                                                   "Affitto")))  # fmt: skip
        if start > 60:
            # Each outcome in turn, each closure check in turn.
            income, debts, urgent = _CHECKS[closed % len(_CHECKS)]
            closure = plans.Closure(
                outcome=_OUTCOMES[closed % len(_OUTCOMES)], income=income, debts=debts,
                urgent_expenses=urgent,
            )  # fmt: skip
            closed += 1
            steps.append(Step(Act.CLOSE, start - 50, time(12), closure=closure))
        scripts.append(DemoPlan(name, _contents(start, microcredit), tuple(steps)))
    return scripts


def _contents(start: int, microcredit: bool) -> Callable[[Context], PlanInput]:
    """A plain plan: rent support from the Cariplo fund, job search, perhaps a microcredit."""

    def contents(ctx: Context) -> PlanInput:
        begins = ctx.day(-start + 5)
        credit = _support(
            Kind.MICROCREDIT,
            _org("farsi_prossimo"),
            (begins, begins + timedelta(days=90)),
            credit_type="social",
            amount_requested="2000",
            duration_months="24",
            lender="PerMicro",
            application_state="submitted",
        )
        return PlanInput(
            summary=ctx.prefilled,
            next_review_on=None,
            objectives=(
                ObjectiveInput(None, "Pagare l'affitto nei prossimi mesi", "Nessun arretrato"),
                ObjectiveInput(None, "Ritrovare un lavoro", "Un contratto entro sei mesi"),
            ),
            commitments=(
                CommitmentInput(None, "Iscriversi al Centro per l'impiego", begins),
            ),
            supports=(
                _support(Kind.EMERGENCY_SUPPORT, _org("farsi_prossimo"), ctx.months(-start + 5, 2),
                         ctx.fund_ids[CARIPLO], form="monthly", monthly_amount="250", months="2",
                         purpose=["rent"], paid_to="landlord", payee="Proprietario di casa"),
                _support(Kind.JOB_SEARCH, Responsible(staff_id=ctx.owner_id),
                         (begins, begins + timedelta(days=120)), activities=["cv"],
                         job_centre="yes"),
                *((credit,) if microcredit else ()),
            ),
            team=(_case_manager(ctx),),
        )  # fmt: skip

    return contents
