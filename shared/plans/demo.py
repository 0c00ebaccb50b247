"""Demo funds and plans for `ripartire demo`: two funds and their ledgers, and the
admitted candidates of `shared.cases.demo` with plans in every state.

Everything goes through the real services: `shared.funds.service` opens the funds, takes
the deposits and records the payments; `shared.plans.service` takes each plan from
`start_plan` to where it stands, so approving commits the money as the product does,
and the plan whose fund can't cover it waits in the coordinators' queue, where
approving it shows the refusal.

What happened to each fund and plan is a script of steps, each on a day before the
demo's today (at an hour in the program's time zone); the steps of all the scripts run
in the order they happened, so the ledgers, histories and audit log read as they would.

Runs after `shared.cases.demo`, which admitted the candidates these plans are for.
"""

from __future__ import annotations

import calendar
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases import access
from shared.cases.models import Case, CaseState, Interview
from shared.citizens.models import Citizen
from shared.funds import service as funds
from shared.funds.models import Payee, PaymentMethod
from shared.plans import catalog
from shared.plans import service as plans
from shared.plans.catalog import Kind
from shared.plans.form import (
    CommitmentInput,
    ObjectiveInput,
    PlanInput,
    Responsible,
    SupportInput,
    TeamInput,
    parse_plan_form,
    stored_values,
)
from shared.plans.models import Plan, PlanOutcome, PlanSupport, SupportState, Trend
from shared.program import FUNDERS
from shared.settings import Settings
from shared.staff.models import Role, StaffUser

CARIPLO = "Doniamo Energia — Fondazione Cariplo"
BANCO = "Banco dell'energia"


@dataclass(frozen=True)
class DemoFund:
    name: str
    funder: str
    opened_days_ago: int
    # (days ago, euros, note)
    deposits: tuple[tuple[int, int, str], ...]


FUNDS = (
    # Open since the start of the demo's history (shared.figures.demo): its plans draw on it.
    DemoFund(CARIPLO, FUNDERS[0], 165, (
        (165, 40_000, "Prima tranche del contributo «Doniamo Energia»"),
        (25, 20_000, "Seconda tranche del contributo «Doniamo Energia»"),
    )),
    # Nearly spent: the last plan in the queue asks it for more than it has left.
    DemoFund(BANCO, FUNDERS[1], 70, ((70, 3_000, "Raccolta fondi d'inverno"),)),
)  # fmt: skip


class Act(StrEnum):
    START = "start"
    SAVE = "save"
    SUBMIT = "submit"
    APPROVE = "approve"
    RETURN = "return"
    SIGN = "sign"
    PAY = "pay"
    EDIT = "edit"
    CLOSE = "close"


@dataclass(frozen=True)
class Payment:
    support: int  # the support's position in the plan
    euros: int
    paid_to: Payee
    note: str
    method: PaymentMethod = PaymentMethod.BANK_TRANSFER


@dataclass(frozen=True)
class Step:
    """What staff did to the plan, `days_ago` days before the demo's today, at `at`.

    The case worker does everything but approving and returning (the coordinator) and
    recording payments (the coordinator, as on the payments page).
    """

    act: Act
    days_ago: int
    at: time = time(10)
    comment: str = ""  # RETURN
    payment: Payment | None = None  # PAY
    edits: Mapping[str, str] = field(default_factory=dict)  # EDIT: the editor's fields changed
    closure: plans.Closure | None = None  # CLOSE


@dataclass(frozen=True)
class Context:
    """What a plan's contents depend on: the demo's today, the funds, the case worker."""

    today: date
    fund_ids: Mapping[str, int]
    owner_id: int
    # The summary `start_plan` wrote from the interview.
    prefilled: str

    def day(self, days: int) -> date:
        return self.today + timedelta(days=days)

    def months(self, starts: int, months: int) -> tuple[date, date]:
        """From `starts` days from today, for a whole number of calendar months."""
        first = self.day(starts)
        year, month = divmod(first.year * 12 + first.month - 1 + months, 12)
        # The same day `months` months on (or that month's last), less one day.
        day = min(first.day, calendar.monthrange(year, month + 1)[1])
        return first, date(year, month + 1, day) - timedelta(days=1)


@dataclass(frozen=True)
class DemoPlan:
    citizen: str
    contents: Callable[[Context], PlanInput]
    steps: tuple[Step, ...]


def _details(kind: Kind, /, **values: str | list[str]) -> Any:
    """The support's details as the editor submits them."""
    fields = {name: value if isinstance(value, list) else [value] for name, value in values.items()}
    return catalog.parse_details(kind, fields)


def _support(
    kind: Kind,
    by: Responsible,
    dates: tuple[date | None, date | None],
    fund_id: int | None = None,
    /,
    **details: str | list[str],  # positional-only above: a microcredit has a `kind` field
) -> SupportInput:
    return SupportInput(
        id=None, kind=kind, details=_details(kind, **details), responsible=by,
        starts_on=dates[0], ends_on=dates[1], state=SupportState.PROPOSED, fund_id=fund_id,
    )  # fmt: skip


def _org(key: str) -> Responsible:
    return Responsible(organisation=key)


def _case_manager(ctx: Context) -> TeamInput:
    return TeamInput(None, Responsible(staff_id=ctx.owner_id), "", "Case manager")


_PSYCHOLOGIST = TeamInput(None, _org("cardinal_martini"), "Chiara Pirola", "Psicologa")
_TUTOR = TeamInput(None, _org("csl"), "Matteo Cazzaniga", "Tutor del tirocinio")
_PIROLA = "Fondazione Cardinal Martini – dott.ssa Chiara Pirola"


# --- the plans ---------------------------------------------------------------------------


def _greco(ctx: Context) -> PlanInput:
    return PlanInput(
        summary=(
            "Alessandro vive da solo in affitto (480 € al mese). Magazziniere in "
            "somministrazione a Pioltello, senza rinnovo da novembre 2020; riceve la NASpI "
            "(750 €). Ha una bolletta del gas di 600 € con avviso di sospensione. Vorrebbe "
            "imparare un mestiere: lo interessa la falegnameria."
        ),
        next_review_on=None,
        objectives=(
            ObjectiveInput(None, "Imparare il mestiere di falegname",
                           "Tirocinio concluso con la valutazione del tutor"),
            ObjectiveInput(None, "Evitare la sospensione del gas", "Bolletta arretrata saldata"),
        ),
        commitments=(
            CommitmentInput(None, "Iscriversi al Centro per l'impiego di Melzo", ctx.day(-38)),
            CommitmentInput(None, "Frequentare il tirocinio e avvisare il tutor delle assenze",
                            None),
        ),
        supports=(
            _support(Kind.EMERGENCY_SUPPORT, _org("farsi_prossimo"), (ctx.day(-43), ctx.day(-43)),
                     ctx.fund_ids[BANCO], form="one_off", one_off_amount="600",
                     purpose=["utilities"], paid_to="utility", payee="A2A Energia"),
            _support(Kind.INTERNSHIP, _org("csl"), ctx.months(-42, 2), ctx.fund_ids[CARIPLO],
                     promoter="CS&L Consorzio sociale",
                     host="Falegnameria Sirtori, Cernusco sul Naviglio",
                     promoter_tutor="Matteo Cazzaniga", host_tutor="Franco Sirtori",
                     hours_per_week="30", monthly_allowance="600"),
            _support(Kind.JOB_SEARCH, Responsible(staff_id=ctx.owner_id),
                     (ctx.day(-42), ctx.day(40)), activities=["cv", "orientation"],
                     job_centre="yes", programme_path="reskilling"),
        ),
        team=(_case_manager(ctx), _TUTOR),
    )  # fmt: skip


def _okafor(ctx: Context) -> PlanInput:
    return PlanInput(
        summary=(
            "Samuel vive in affitto (600 € al mese) con la moglie e due figli piccoli. Addetto "
            "alle pulizie industriali con contratto a termine, non rinnovato a marzo 2021; il "
            "reddito della famiglia è di 850 €. Bollette di luce e gas arretrate, con il "
            "distacco annunciato. Dorme poco e ne parla a fatica: chiede di parlare con qualcuno."
        ),
        # A month after the signature: he needs seeing often.
        next_review_on=ctx.day(-4),
        objectives=(
            ObjectiveInput(None, "Non restare senza luce e gas",
                           "Bollette dei prossimi tre mesi pagate"),
            ObjectiveInput(None, "Ritrovare un lavoro", "Almeno tre colloqui entro la verifica"),
            ObjectiveInput(None, "Stare meglio", "Un percorso con la psicologa avviato"),
        ),
        commitments=(
            CommitmentInput(None, "Portare allo sportello le bollette appena arrivano", None),
            CommitmentInput(None, "Firmare il patto di servizio al Centro per l'impiego",
                            ctx.day(-30)),
            CommitmentInput(None, "Partecipare agli incontri con la psicologa", None),
        ),
        supports=(
            _support(Kind.EMERGENCY_SUPPORT, _org("farsi_prossimo"), ctx.months(-36, 3),
                     ctx.fund_ids[BANCO], form="monthly", monthly_amount="300", months="3",
                     purpose=["utilities"], paid_to="utility", payee="A2A Energia"),
            _support(Kind.PSYCHOLOGICAL_SUPPORT, _org("cardinal_martini"),
                     (ctx.day(-30), ctx.day(60)), provider=_PIROLA, sessions_planned="8"),
            _support(Kind.JOB_SEARCH, Responsible(staff_id=ctx.owner_id),
                     (ctx.day(-36), ctx.day(90)), activities=["cv", "job_matches"],
                     job_centre="yes", programme_path="reentry",
                     notes="Percorso GOL di reinserimento al Centro per l'impiego di Melzo."),
        ),
        team=(_case_manager(ctx), _PSYCHOLOGIST),
    )  # fmt: skip


def _longhi(ctx: Context) -> PlanInput:
    return PlanInput(
        summary=(
            "Roberta vive in affitto (700 € al mese) con la figlia di 11 anni. Commessa con "
            "contratto a termine in un negozio di calzature, non rinnovato a ottobre 2020; oggi "
            "il reddito è di 520 € (ISEE 6.400 €). Ha due mensilità di affitto arretrate e il "
            "proprietario ha parlato di sfratto."
        ),
        next_review_on=ctx.day(3),
        objectives=(
            ObjectiveInput(None, "Restare nella casa in cui vive",
                           "Affitto pagato per tre mesi, nessuno sfratto"),
            ObjectiveInput(None, "Un reddito stabile",
                           "Assegno di inclusione accolto; un lavoro entro sei mesi"),
        ),
        commitments=(
            CommitmentInput(None, "Presentare la DSU per l'ISEE aggiornato", ctx.day(-25)),
            CommitmentInput(None, "Mandare il curriculum ad almeno cinque negozi al mese", None),
        ),
        supports=(
            _support(Kind.EMERGENCY_SUPPORT, _org("farsi_prossimo"), ctx.months(-28, 3),
                     ctx.fund_ids[CARIPLO], form="monthly", monthly_amount="450", months="3",
                     purpose=["rent"], paid_to="landlord", payee="Immobiliare Naviglio s.r.l."),
            _support(Kind.BENEFITS, _org("comune"), (ctx.day(-28), ctx.day(30)), benefit="adi",
                     application_state="submitted",
                     notes="Domanda presentata all'INPS con il patronato; in attesa dell'esito."),
            _support(Kind.JOB_SEARCH, _org("csl"), (ctx.day(-28), ctx.day(150)),
                     activities=["cv", "job_matches"], job_centre="yes"),
        ),
        team=(_case_manager(ctx),),
    )  # fmt: skip


def _moretti(ctx: Context) -> PlanInput:
    return PlanInput(
        summary=(
            "Stefano ha chiuso a novembre 2020 la tipografia di cui era titolare da vent'anni, "
            "dopo il crollo degli ordini. Vive con la moglie, che lavora part-time, e un figlio; "
            "mutuo di 550 € al mese, reddito della famiglia 1.100 €, debiti per 5.200 €. Vuole "
            "ripartire con un servizio di stampa digitale su richiesta."
        ),
        next_review_on=None,
        objectives=(
            ObjectiveInput(None, "Riaprire l'attività con la stampa digitale",
                           "Piano d'impresa e finanziamento ottenuti entro tre mesi"),
            ObjectiveInput(None, "Pagare le bollette arretrate", "Nessun distacco delle utenze"),
        ),
        commitments=(
            CommitmentInput(None, "Preparare il piano d'impresa con il tutor", ctx.day(30)),
            CommitmentInput(None, "Riaprire la partita IVA", ctx.day(75)),
        ),
        supports=(
            _support(Kind.MICROCREDIT, _org("farsi_prossimo"), (ctx.day(7), ctx.day(97)),
                     credit_type="business", amount_requested="12000", duration_months="48",
                     lender="Banca Etica – filiale di Milano",
                     tutor="Farsi Prossimo – sportello microcredito",
                     application_state="submitted"),
            _support(Kind.EMERGENCY_SUPPORT, _org("farsi_prossimo"), (ctx.day(7), ctx.day(7)),
                     ctx.fund_ids[BANCO], form="one_off", one_off_amount="800",
                     purpose=["utilities"], paid_to="utility", payee="Enel Energia"),
        ),
        team=(_case_manager(ctx),),
    )  # fmt: skip


def _mariani(ctx: Context) -> PlanInput:
    return PlanInput(
        summary=(
            "Elisa, diplomata in turismo, ha lavorato sette anni come receptionist in un hotel "
            "vicino a Linate; il contratto a termine non è stato rinnovato a maggio 2021. Vive "
            "con i genitori e riceve la NASpI (780 €). Vorrebbe passare all'amministrazione e "
            "alla contabilità."
        ),
        next_review_on=None,
        objectives=(
            ObjectiveInput(None, "Imparare il lavoro d'ufficio amministrativo",
                           "Tirocinio di sei mesi concluso con una valutazione positiva"),
            ObjectiveInput(None, "Trovare un lavoro in amministrazione",
                           "Un contratto alla fine del tirocinio"),
        ),
        commitments=(
            CommitmentInput(None, "Seguire il corso di contabilità di base del Centro per "
                            "l'impiego", ctx.day(45)),
        ),
        supports=(
            _support(Kind.INTERNSHIP, _org("csl"), ctx.months(13, 6), ctx.fund_ids[CARIPLO],
                     promoter="CS&L Consorzio sociale",
                     host="Studio commerciale Colombo & Associati, Cernusco sul Naviglio",
                     promoter_tutor="Matteo Cazzaniga", host_tutor="Paola Sironi",
                     hours_per_week="30", monthly_allowance="600"),
            _support(Kind.JOB_SEARCH, Responsible(staff_id=ctx.owner_id),
                     (ctx.day(5), ctx.day(200)), activities=["cv", "workshops"],
                     job_centre="yes", programme_path="upskilling",
                     notes="Iscritta al programma GOL al Centro per l'impiego di Melzo."),
        ),
        team=(_case_manager(ctx), _TUTOR),
    )  # fmt: skip


def _esposito(ctx: Context) -> PlanInput:
    return PlanInput(
        summary=(
            "Giovanni è operaio metalmeccanico da 27 anni, in cassa integrazione a zero ore da "
            "gennaio 2021. Vive in affitto (750 € al mese) con la moglie e tre figli; il "
            "reddito della famiglia è di 1.150 €. Ha 1.350 € di bollette di luce e gas "
            "arretrate, con il preavviso di distacco."
        ),
        next_review_on=None,
        objectives=(
            ObjectiveInput(None, "Non restare senza luce e gas",
                           "Bollette pagate per quattro mesi, nessun distacco"),
            ObjectiveInput(None, "Ottenere il bonus sociale per le bollette",
                           "Il bonus applicato in bolletta"),
        ),
        commitments=(
            CommitmentInput(None, "Presentare la DSU al CAF per l'ISEE", ctx.day(10)),
            CommitmentInput(None, "Portare allo sportello le bollette appena arrivano", None),
        ),
        supports=(
            _support(Kind.EMERGENCY_SUPPORT, _org("farsi_prossimo"), ctx.months(3, 4),
                     ctx.fund_ids[BANCO], form="monthly", monthly_amount="350", months="4",
                     purpose=["utilities"], paid_to="utility", payee="A2A Energia"),
            _support(Kind.BENEFITS, _org("comune"), (ctx.day(3), ctx.day(60)), benefit="other",
                     other_benefit="Bonus sociale luce e gas", application_state="to_prepare",
                     notes="Serve la DSU per l'ISEE: il bonus arriva poi in bolletta."),
        ),
        team=(_case_manager(ctx),),
    )  # fmt: skip


def _el_idrissi(ctx: Context) -> PlanInput:
    return PlanInput(
        summary=(
            "Fatima Zahra vive in affitto (620 € al mese) con i figli di 6 e 9 anni; è separata "
            "da un anno. Aiuto cuoca in una mensa scolastica con contratti in somministrazione, "
            "senza lavoro da aprile 2021; reddito 400 €, ISEE 4.100 €. Affitto e bollette "
            "arretrati; non ha nessuno su cui contare e chiede un sostegno psicologico."
        ),
        next_review_on=None,
        objectives=(
            ObjectiveInput(None, "Fare la spesa per la famiglia ogni mese",
                           "Un contributo per tre mesi"),
            ObjectiveInput(None, "Stare meglio", "Un percorso con la psicologa avviato"),
            ObjectiveInput(None, "Tornare a lavorare nella ristorazione collettiva",
                           "Un contratto entro sei mesi"),
        ),
        commitments=(
            CommitmentInput(None, "Partecipare agli incontri con la psicologa", None),
            CommitmentInput(None, "Aggiornare il curriculum con l'operatore", ctx.day(7)),
        ),
        supports=(
            _support(Kind.EMERGENCY_SUPPORT, _org("farsi_prossimo"), ctx.months(1, 3),
                     ctx.fund_ids[CARIPLO], form="monthly", monthly_amount="200", months="3",
                     purpose=["food", "school"], paid_to="citizen"),
            _support(Kind.PSYCHOLOGICAL_SUPPORT, _org("cardinal_martini"),
                     (ctx.day(7), ctx.day(97)), provider=_PIROLA, sessions_planned="10"),
            _support(Kind.JOB_SEARCH, Responsible(staff_id=ctx.owner_id),
                     (ctx.day(7), ctx.day(180)), activities=["cv", "workshops"]),
        ),
        team=(_case_manager(ctx), _PSYCHOLOGIST),
    )  # fmt: skip


def _ricci(ctx: Context) -> PlanInput:
    """A draft half-done: the microcredit has no dates yet, so it can't be submitted."""
    return PlanInput(
        summary=ctx.prefilled,
        next_review_on=None,
        objectives=(
            ObjectiveInput(None, "Saldare l'affitto arretrato", "Nessun arretrato entro due mesi"),
            ObjectiveInput(None, "Tornare a lavorare, anche fuori dalla ristorazione", ""),
        ),
        supports=(
            _support(Kind.EMERGENCY_SUPPORT, _org("farsi_prossimo"), (ctx.day(7), ctx.day(7)),
                     ctx.fund_ids[CARIPLO], form="one_off", one_off_amount="1300",
                     purpose=["rent"], paid_to="landlord", payee="Giorgio Villa (proprietario)"),
            _support(Kind.MICROCREDIT, _org("farsi_prossimo"), (None, None), credit_type="social",
                     amount_requested="3000", duration_months="36", lender="PerMicro",
                     application_state="to_prepare"),
        ),
    )  # fmt: skip


_RETURNED = (
    "Con un ISEE di 4.100 € e due figli minori Fatima Zahra può chiedere l'Assegno di "
    "inclusione: aggiungete il sostegno per la domanda e, tra gli impegni, l'iscrizione al "
    "Centro per l'impiego; poi ripresentate il piano."
)
_HIRED = plans.Closure(
    outcome=PlanOutcome.EMPLOYED,
    income=Trend.BETTER,
    debts=Trend.BETTER,
    urgent_expenses=Trend.SAME,
    notes=(
        "Assunto con un contratto di apprendistato dalla falegnameria che lo ospitava: "
        "il tirocinio si è chiuso prima della fine."
    ),
)
_UTILITY, _LANDLORD = Payee.UTILITY, Payee.LANDLORD

PLANS = (
    # Closed: the internship ended in a job.
    DemoPlan("Alessandro Greco", _greco, (
        Step(Act.START, 48, time(9, 30)), Step(Act.SAVE, 48, time(10, 15)),
        Step(Act.SUBMIT, 46, time(16)), Step(Act.APPROVE, 45, time(11)),
        Step(Act.SIGN, 43, time(10)),
        Step(Act.PAY, 41, payment=Payment(0, 600, _UTILITY, "Bolletta del gas arretrata")),
        Step(Act.PAY, 11, payment=Payment(1, 600, Payee.CITIZEN, "Indennità di tirocinio, "
                                          "primo mese")),
        Step(Act.CLOSE, 3, time(12), closure=_HIRED),
    )),
    # Active, its review overdue.
    DemoPlan("Samuel Okafor", _okafor, (
        Step(Act.START, 42), Step(Act.SAVE, 42, time(11)), Step(Act.SUBMIT, 40, time(15, 30)),
        Step(Act.APPROVE, 39, time(10, 30)), Step(Act.SIGN, 36, time(9, 30)),
        Step(Act.PAY, 35, payment=Payment(0, 300, _UTILITY, "Bollette, mese 1 di 3")),
        Step(Act.EDIT, 10, time(17), edits={"support-1.sessions_attended": "3"}),
        Step(Act.PAY, 6, payment=Payment(0, 300, _UTILITY, "Bollette, mese 2 di 3")),
    )),
    # Active, its review due this week.
    DemoPlan("Roberta Longhi", _longhi, (
        Step(Act.START, 35, time(9)), Step(Act.SAVE, 35), Step(Act.SUBMIT, 34, time(12)),
        Step(Act.APPROVE, 31), Step(Act.SIGN, 28, time(11)),
        Step(Act.PAY, 27, payment=Payment(0, 450, _LANDLORD, "Affitto, mensilità 1 di 3")),
        Step(Act.PAY, 2, payment=Payment(0, 450, _LANDLORD, "Affitto, mensilità 2 di 3")),
    )),
    # Approved, waiting for the citizen's signature.
    DemoPlan("Stefano Moretti", _moretti, (
        Step(Act.START, 20), Step(Act.SAVE, 20, time(11)), Step(Act.SUBMIT, 9, time(15)),
        Step(Act.APPROVE, 2),
    )),
    # In the coordinators' queue: the oldest first.
    DemoPlan("Elisa Mariani", _mariani, (
        Step(Act.START, 15), Step(Act.SAVE, 15, time(11)), Step(Act.SUBMIT, 6, time(11)),
    )),
    # In the queue, asking the nearly spent fund for more than it has left.
    DemoPlan("Giovanni Esposito", _esposito, (
        Step(Act.START, 10), Step(Act.SAVE, 10, time(11)), Step(Act.SUBMIT, 2, time(16, 30)),
    )),
    # Returned with the coordinator's comment.
    DemoPlan("Fatima Zahra El Idrissi", _el_idrissi, (
        Step(Act.START, 12), Step(Act.SAVE, 12, time(11)), Step(Act.SUBMIT, 5, time(12)),
        Step(Act.RETURN, 1, time(9, 30), comment=_RETURNED),
    )),
    # A draft.
    DemoPlan("Paolo Ricci", _ricci, (
        Step(Act.START, 3, time(15)), Step(Act.SAVE, 3, time(15, 40)),
    )),
)  # fmt: skip


# --- running the scripts -----------------------------------------------------------------


@dataclass
class _Progress:
    """One plan's script as it runs."""

    script: DemoPlan
    case_id: int
    owner: access.StaffMember
    plan_id: int = 0
    prefilled: str = ""


@dataclass
class _Demo:
    session: AsyncSession
    settings: Settings
    today: date
    coordinator: access.StaffMember
    fund_ids: dict[str, int] = field(default_factory=dict)

    def when(self, days_ago: int, at: time) -> datetime:
        day = self.today - timedelta(days=days_ago)
        return datetime.combine(day, at, tzinfo=self.settings.tz)

    def day_of(self, at: datetime) -> date:
        return at.astimezone(self.settings.tz).date()

    async def open_fund(self, fund: DemoFund, at: datetime) -> None:
        opened = await funds.create_fund(
            session=self.session, name=fund.name, funder=fund.funder,
            actor=self.coordinator.actor, now=at,
        )  # fmt: skip
        self.fund_ids[fund.name] = opened.id

    async def deposit(self, fund: DemoFund, euros: int, note: str, at: datetime) -> None:
        await funds.deposit(
            session=self.session, fund_id=self.fund_ids[fund.name], amount_cents=euros * 100,
            actor=self.coordinator.actor, now=at, note=note,
        )  # fmt: skip

    async def take(self, done: _Progress, step: Step, at: datetime) -> None:
        """One step of a plan's script, through the service the dashboard would call."""
        session, settings, case_id, owner = self.session, self.settings, done.case_id, done.owner
        if step.act is Act.START:
            plan = await plans.start_plan(session=session, case_id=case_id, staff=owner, now=at)
            done.plan_id, done.prefilled = plan.id, plan.summary
        elif step.act is Act.SAVE:
            context = Context(self.today, self.fund_ids, owner.user_id, done.prefilled)
            await plans.save_plan(
                session=session, case_id=case_id, data=done.script.contents(context),
                staff=owner, settings=settings, now=at,
            )  # fmt: skip
        elif step.act is Act.EDIT:
            # As the editor does: the stored plan as its fields, some changed, read back.
            rows = await plans.get_plan(session=session, case_id=case_id, staff=owner)
            values, _rows = stored_values(rows, "it")
            values |= {name: [value] for name, value in step.edits.items()}
            saved = await plans.save_plan(
                session=session, case_id=case_id, data=parse_plan_form(values), staff=owner,
                settings=settings, now=at,
            )  # fmt: skip
            assert not saved.sent_back, "a demo edit should not need a new approval"
        elif step.act is Act.SUBMIT:
            await plans.submit_plan(session=session, case_id=case_id, staff=owner, now=at)
        elif step.act is Act.APPROVE:
            await plans.approve_plan(
                session=session, case_id=case_id, staff=self.coordinator, now=at
            )
        elif step.act is Act.RETURN:
            await plans.return_plan(
                session=session, case_id=case_id, comment=step.comment, staff=self.coordinator,
                now=at,
            )  # fmt: skip
        elif step.act is Act.SIGN:
            await plans.record_signature(
                session=session, case_id=case_id, signed_on=self.day_of(at), staff=owner,
                settings=settings, now=at,
            )  # fmt: skip
        elif step.act is Act.PAY:
            assert step.payment is not None
            await self.pay(done.plan_id, step.payment, at)
        elif step.act is Act.CLOSE:
            assert step.closure is not None
            await plans.close_plan(
                session=session, case_id=case_id, closure=step.closure, staff=owner, now=at
            )

    async def pay(self, plan_id: int, payment: Payment, at: datetime) -> None:
        """Recorded by the coordinator the day the money went out, as the payments page does."""
        support = await self.session.scalar(
            select(PlanSupport).where(
                PlanSupport.plan_id == plan_id, PlanSupport.position == payment.support
            )
        )
        assert support is not None, "a demo payment names a support of the plan"
        assert support.fund_id is not None, "a demo payment is for a support with a fund"
        await funds.record_payment(
            session=self.session, fund_id=support.fund_id, support_id=support.id,
            plan_id=plan_id, amount_cents=payment.euros * 100, paid_on=self.day_of(at),
            paid_to=payment.paid_to, method=payment.method, actor=self.coordinator.actor,
            now=at, note=payment.note,
        )  # fmt: skip


async def _member(session: AsyncSession, user_id: int | None) -> access.StaffMember:
    user = await session.get(StaffUser, user_id) if user_id is not None else None
    if user is None:
        raise LookupError("no demo staff account: run shared.demo's staff part first")
    return access.StaffMember(user.id, Role(user.role), f"staff:{user.username}")


async def _admitted(session: AsyncSession) -> dict[str, tuple[Case, datetime]]:
    """The admitted cases waiting for a plan, by citizen, with when they were admitted."""
    rows = await session.execute(
        select(Citizen.name, Case, Interview.completed_at)
        .join(Case, Case.citizen_id == Citizen.id)
        .join(Interview, Interview.case_id == Case.id)
        .where(Case.state == CaseState.INTERVIEWED.value)
    )
    return {name: (case, at) for name, case, at in rows.all() if name and at}


async def seed(
    *,
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    extra: Sequence[DemoPlan] = (),
) -> list[Plan]:
    """The two funds with their deposits, and plans in every state paid from them.

    `extra`: more plans' scripts (the history's, `shared.figures.demo`), run in the same
    timeline, so every fund's ledger reads in the order things happened.
    """
    coordinator_id = await session.scalar(
        select(StaffUser.id).where(StaffUser.username == "coordinatore")
    )
    demo = _Demo(
        session, settings, now.astimezone(settings.tz).date(),
        await _member(session, coordinator_id),
    )  # fmt: skip
    timeline: list[tuple[datetime, Callable[[], Awaitable[None]]]] = []
    for fund in FUNDS:
        opened = demo.when(fund.opened_days_ago, time(9))
        timeline.append((opened, partial(demo.open_fund, fund, opened)))
        for days_ago, euros, note in fund.deposits:
            at = max(demo.when(days_ago, time(9, 5)), opened + timedelta(minutes=5))
            timeline.append((at, partial(demo.deposit, fund, euros, note, at)))
    admitted = await _admitted(session)
    progress = []
    for script in (*PLANS, *extra):
        if script.citizen not in admitted:
            raise LookupError(f"{script.citizen} has no admitted case: see shared.cases.demo")
        case, admitted_at = admitted[script.citizen]
        done = _Progress(script, case.id, await _member(session, case.assigned_to_id))
        progress.append(done)
        # Never before the interview, nor before the step before, whatever day it is.
        previous = admitted_at
        for step in script.steps:
            at = max(demo.when(step.days_ago, step.at), previous + timedelta(minutes=5))
            timeline.append((at, partial(demo.take, done, step, at)))
            previous = at
    # In the order it happened (a stable sort: one plan's steps keep theirs).
    for _at, run in sorted(timeline, key=lambda event: event[0]):
        await run()
    found = [await session.get(Plan, done.plan_id) for done in progress]
    return [plan for plan in found if plan is not None]
