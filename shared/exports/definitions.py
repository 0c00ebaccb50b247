"""One definition per export: its name, its columns and its rows, read from a streaming
query (`session.stream` with `yield_per`), so no export holds a table in memory.

The period (`Days`) filters each export on the day that places its rows: the
appointment for bookings, the opening for cases, the plan's creation for plans, the day
paid for payments, the case's opening for the funder pack. The figures take the page's
own period (its default, the last twelve months, when none is given).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking.models import Booking, Helpdesk
from shared.cases import labels
from shared.cases.models import Case
from shared.citizens.models import Channel, Citizen
from shared.exports.columns import Column, Context, Days, Export, Format, Kind, Row, Sheet
from shared.figures import service as figures_service
from shared.figures.period import Period
from shared.funds.labels import METHODS, PAYEES
from shared.funds.models import Fund, FundMovement, MovementKind
from shared.i18n import N_, Translator
from shared.intake import questionnaire
from shared.intake.models import Intake
from shared.plans.catalog import CATALOG
from shared.plans.catalog import Kind as SupportKind
from shared.plans.document import STATE_LABELS, SUPPORT_STATE_LABELS
from shared.plans.models import Plan, PlanOutcome, PlanSupport

# Rows fetched from the database at a time.
BATCH = 500
# Characters of a funder pack's reference code (hex of an HMAC: 2^40 codes).
REFERENCE_LENGTH = 10

CHANNELS = {
    Channel.TELEGRAM.value: N_("Telegram (bot)"),
    Channel.PHONE.value: N_("Phone"),
    Channel.WALK_IN.value: N_("Walk-in"),
}
PLAN_OUTCOMES = {
    PlanOutcome.EMPLOYED.value: N_("Employed"),
    PlanOutcome.INTERNSHIP_STARTED.value: N_("Internship started"),
    PlanOutcome.SELF_EMPLOYMENT_RESTARTED.value: N_("Self-employment restarted"),
    PlanOutcome.REFERRED.value: N_("Referred to another service"),
    PlanOutcome.DROPPED_OUT.value: N_("Dropped out"),
    PlanOutcome.OTHER.value: N_("Other"),
}
FUNNEL_STAGES = {
    "started": N_("Started"),
    "consented": N_("Consented"),
    "completed": N_("Questionnaire completed"),
    "eligible": N_("Eligible"),
    "booked": N_("Booked"),
    "attended": N_("Came to the interview"),
    "plan_approved": N_("Plan approved"),
    "closed": N_("Closed"),
}
REASONS = {
    "not_resident": N_("Not resident"),
    "situation_not_covered": N_("Situation not covered"),
    "not_pandemic_related": N_("Not caused by the pandemic"),
}
YES, NO = N_("yes"), N_("no")


def _label(t: Translator, names: dict[str, str], value: str | None) -> str:
    if value is None:
        return ""
    return t(names[value]) if value in names else value


def _kind(t: Translator, kind: str) -> str:
    try:
        return t(CATALOG[SupportKind(kind)].label)
    except ValueError:
        return kind


def _start(days: Days, ctx: Context) -> datetime | None:
    tz = ctx.settings.tz
    return datetime.combine(days.first, time.min, tzinfo=tz) if days.first else None


def _end(days: Days, ctx: Context) -> datetime | None:
    tz = ctx.settings.tz
    if days.last is None:
        return None
    return datetime.combine(days.last + timedelta(days=1), time.min, tzinfo=tz)


def _within(statement: Any, column: Any, ctx: Context) -> Any:
    """Rows whose instant `column` falls on the export's days."""
    start, end = _start(ctx.days, ctx), _end(ctx.days, ctx)
    if start is not None:
        statement = statement.where(column >= start)
    if end is not None:
        statement = statement.where(column < end)
    return statement


async def batches(session: AsyncSession, statement: Any, size: int) -> AsyncIterator[Sequence[Any]]:
    """The statement's rows, `size` at a time, from a server-side cursor."""
    result = await session.stream(statement.execution_options(yield_per=size))
    async for partition in result.partitions(size):
        yield partition


async def stream(session: AsyncSession, statement: Any) -> AsyncIterator[Any]:
    async for partition in batches(session, statement, BATCH):
        for row in partition:
            yield row


# --- bookings ---------------------------------------------------------------------------

BOOKING_COLUMNS = (
    Column(N_("Appointment"), Kind.DATETIME), Column(N_("Helpdesk")),
    Column(N_("Booking code")), Column(N_("Citizen")), Column(N_("Phone")),
    Column(N_("Channel")), Column(N_("State")), Column(N_("Urgent")),
    Column(N_("Booked on"), Kind.DATETIME),
)  # fmt: skip


async def _booking_rows(ctx: Context) -> AsyncIterator[Row]:
    statement = _within(
        select(
            Booking.starts_at,
            Helpdesk.name,
            Booking.code,
            Citizen.name,
            Citizen.phone,
            Citizen.channel,
            Booking.state,
            Booking.moderation,
            Citizen.urgent,
            Booking.created_at,
        )
        .join(Helpdesk, Helpdesk.id == Booking.helpdesk_id)
        .join(Citizen, Citizen.id == Booking.citizen_id)
        .order_by(Booking.starts_at, Booking.id),
        Booking.starts_at,
        ctx,
    )
    t = ctx.t
    async for r in stream(ctx.session, statement):
        yield (
            r[0], r[1], r[2], r[3] or "", r[4] or "", _label(t, CHANNELS, r[5]),
            t(labels.booking_state(r[6], r[7])), t(YES if r[8] else NO), r[9],
        )  # fmt: skip


# --- cases ------------------------------------------------------------------------------

CASE_COLUMNS = (
    Column(N_("Case number"), Kind.INT), Column(N_("Citizen")), Column(N_("Phone")),
    Column(N_("E-mail")), Column(N_("Fiscal code")), Column(N_("State")),
    Column(N_("Urgent")), Column(N_("Eligibility")), Column(N_("Helpdesk")),
    Column(N_("Appointment"), Kind.DATETIME), Column(N_("No-shows"), Kind.INT),
    Column(N_("Opened on"), Kind.DATE), Column(N_("Closed on"), Kind.DATE),
)  # fmt: skip


def _eligibility(t: Translator, eligible: bool | None, override: bool | None) -> str:
    decided = override if override is not None else eligible
    if decided is None:
        return ""
    text = t(N_("Eligible") if decided else N_("Not eligible"))
    if override is not None:
        text += " " + t("(decided by a coordinator)")
    return text


async def _case_rows(ctx: Context) -> AsyncIterator[Row]:
    statement = _within(
        select(
            Case.id,
            Citizen.name,
            Citizen.phone,
            Citizen.email,
            Citizen.fiscal_code,
            Case.state,
            Case.urgent,
            Case.eligible,
            Case.eligibility_override,
            Helpdesk.name,
            Case.appointment_at,
            Case.no_shows,
            Case.opened_at,
            Case.closed_at,
        )
        .join(Citizen, Citizen.id == Case.citizen_id)
        .outerjoin(Helpdesk, Helpdesk.id == Case.helpdesk_id)
        .order_by(Case.id),
        Case.opened_at,
        ctx,
    )
    t, tz = ctx.t, ctx.settings.tz
    async for r in stream(ctx.session, statement):
        yield (
            r[0], r[1] or "", r[2] or "", r[3] or "", r[4] or "",
            _label(t, labels.CASE_STATES, r[5]), t(YES if r[6] else NO),
            _eligibility(t, r[7], r[8]), r[9] or "", r[10], r[11],
            r[12].astimezone(tz).date(), r[13].astimezone(tz).date() if r[13] else None,
        )  # fmt: skip


# --- plans and interventions: one row per support ---------------------------------------

PLAN_COLUMNS = (
    Column(N_("Plan number"), Kind.INT), Column(N_("Case number"), Kind.INT),
    Column(N_("Citizen")), Column(N_("Plan state")), Column(N_("Approved on"), Kind.DATE),
    Column(N_("Closed on"), Kind.DATE), Column(N_("Outcome")), Column(N_("Intervention")),
    Column(N_("Intervention state")), Column(N_("Fund")), Column(N_("Amount"), Kind.MONEY),
    Column(N_("Starts on"), Kind.DATE), Column(N_("Ends on"), Kind.DATE),
)  # fmt: skip


async def _plan_rows(ctx: Context) -> AsyncIterator[Row]:
    statement = _within(
        select(
            Plan.id,
            Plan.case_id,
            Citizen.name,
            Plan.state,
            Plan.approved_at,
            Plan.closed_at,
            Plan.outcome,
            PlanSupport.kind,
            PlanSupport.state,
            Fund.name,
            PlanSupport.amount_cents,
            PlanSupport.starts_on,
            PlanSupport.ends_on,
        )
        .join(PlanSupport, PlanSupport.plan_id == Plan.id)
        .join(Case, Case.id == Plan.case_id)
        .join(Citizen, Citizen.id == Case.citizen_id)
        .outerjoin(Fund, Fund.id == PlanSupport.fund_id)
        .order_by(Plan.id, PlanSupport.position, PlanSupport.id),
        Plan.created_at,
        ctx,
    )
    t, tz = ctx.t, ctx.settings.tz
    async for r in stream(ctx.session, statement):
        yield (
            r[0], r[1], r[2] or "", _label(t, STATE_LABELS, r[3]),
            r[4].astimezone(tz).date() if r[4] else None,
            r[5].astimezone(tz).date() if r[5] else None, _label(t, PLAN_OUTCOMES, r[6]),
            _kind(t, r[7]), _label(t, SUPPORT_STATE_LABELS, r[8]), r[9] or "", r[10],
            r[11], r[12],
        )  # fmt: skip


# --- payments ---------------------------------------------------------------------------

PAYMENT_COLUMNS = (
    Column(N_("Paid on"), Kind.DATE), Column(N_("Fund")), Column(N_("Amount"), Kind.MONEY),
    Column(N_("Paid to")), Column(N_("Method")), Column(N_("Case number"), Kind.INT),
    Column(N_("Citizen")), Column(N_("Intervention")), Column(N_("Recorded by")),
)  # fmt: skip


async def _payment_rows(ctx: Context) -> AsyncIterator[Row]:
    statement = (
        select(
            FundMovement.paid_on,
            Fund.name,
            FundMovement.amount_cents,
            FundMovement.paid_to,
            FundMovement.method,
            Plan.case_id,
            Citizen.name,
            PlanSupport.kind,
            FundMovement.actor,
        )
        .join(Fund, Fund.id == FundMovement.fund_id)
        .outerjoin(PlanSupport, PlanSupport.id == FundMovement.support_id)
        .outerjoin(Plan, Plan.id == FundMovement.plan_id)
        .outerjoin(Case, Case.id == Plan.case_id)
        .outerjoin(Citizen, Citizen.id == Case.citizen_id)
        .where(FundMovement.kind == MovementKind.PAYMENT.value)
        .order_by(FundMovement.paid_on, FundMovement.id)
    )
    if ctx.days.first is not None:
        statement = statement.where(FundMovement.paid_on >= ctx.days.first)
    if ctx.days.last is not None:
        statement = statement.where(FundMovement.paid_on <= ctx.days.last)
    t = ctx.t
    async for r in stream(ctx.session, statement):
        yield (
            r[0], r[1], r[2], _label(t, PAYEES, r[3]), _label(t, METHODS, r[4]), r[5],
            r[6] or "", _kind(t, r[7]) if r[7] else "", r[8],
        )  # fmt: skip


# --- the figures of the page ------------------------------------------------------------

FIGURE_COLUMNS = (
    Column(N_("Section")), Column(N_("Item")), Column(N_("Count"), Kind.INT),
    Column(N_("Amount"), Kind.MONEY),
)  # fmt: skip


def figures_period(days: Days, today: date) -> Period:
    """The export's days as the figures' period: both days as given; only the last, the
    twelve months up to it; only the first, from it to today (or that day alone, if it is
    after today); neither, the page's default. PeriodReversed or PeriodTooLong else."""
    if days.first and days.last:
        return Period(days.first, days.last)
    if days.last:
        return Period.last_months(days.last)
    if days.first:
        return Period(days.first, max(today, days.first))
    return Period.last_months(today)


async def _figure_rows(ctx: Context) -> AsyncIterator[Row]:
    found = await figures_service.figures(
        session=ctx.session,
        settings=ctx.settings,
        now=ctx.now,
        period=figures_period(ctx.days, ctx.now.astimezone(ctx.settings.tz).date()),
    )
    t = ctx.t
    funnel, section = found.funnel, t(N_("Path of the citizens"))
    for stage in funnel.stages:
        yield section, t(FUNNEL_STAGES.get(stage.key, stage.key)), stage.count, None
    yield section, t(N_("Privacy notice refused")), funnel.consent_refusals, None
    section = t(N_("Ruled out by the questionnaire, by reason"))
    for reason, n in found.screening.reasons:
        yield section, t(REASONS.get(reason, reason)), n, None
    section = t(N_("Appointments"))
    for state, n in found.bookings.by_state:
        yield section, t(labels.BOOKING_STATES.get(state, state)), n, None
    section = t(N_("Interventions by type and state"))
    for kinds in found.interventions.kinds:
        for state, n in kinds.states:
            item = f"{_kind(t, kinds.kind)}: {_label(t, SUPPORT_STATE_LABELS, state)}"
            yield section, item, n, None
    for fund in found.funds:
        section = f"{t(N_('Fund'))}: {fund.name}"
        yield section, t(N_("Deposited")), None, fund.deposited_cents
        yield section, t(N_("Committed")), None, fund.committed_cents
        yield section, t(N_("Paid")), None, fund.paid_cents
        yield section, t(N_("Left")), None, fund.left_cents
    section = t(N_("Outcomes at closure"))
    for outcome, n in found.outcomes.by_outcome:
        yield section, t(PLAN_OUTCOMES.get(outcome, outcome)), n, None
    yield section, t(N_("Improved on the starting condition")), found.outcomes.improved, None


# --- the pseudonymised funder pack ------------------------------------------------------

BENEFICIARY_COLUMNS = (
    Column(N_("Reference")), Column(N_("First case opened on"), Kind.DATE),
    Column(N_("Cases opened"), Kind.INT),
    Column(N_("People in the household"), Kind.INT), Column(N_("Minors"), Kind.INT),
    Column(N_("Needs")), Column(N_("Interventions")),
    Column(N_("Committed"), Kind.MONEY), Column(N_("Paid"), Kind.MONEY),
    Column(N_("Outcome")),
)  # fmt: skip


def reference_coder() -> Any:
    """Reference codes for one export: the same citizen gets the same code within it, and
    a different one in the next (a random key per export, never stored)."""
    key = secrets.token_bytes(32)

    def code(citizen_id: int) -> str:
        digest = hmac.new(key, str(citizen_id).encode(), "sha256").hexdigest()
        return "R-" + digest[:REFERENCE_LENGTH].upper()

    return code


def _count(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def _beneficiary_rows(ctx: Context) -> AsyncIterator[Row]:
    """One row per citizen with a case opened in the period (a citizen who came back has
    two cases, one reference): their cases' interventions and money together, the latest
    case's outcome (or state)."""
    # Only the questionnaire's closed answers (household, needs) and the plans' types,
    # amounts and outcomes: no free text (notes, summaries) that could carry a name.
    per_citizen = _within(
        select(
            Case.citizen_id,
            func.min(Case.id).label("first_id"),
            func.max(Case.id).label("latest_id"),
            func.min(Case.opened_at).label("first_opened"),
            func.count().label("cases"),
        ).group_by(Case.citizen_id),
        Case.opened_at,
        ctx,
    ).subquery()
    statement = (
        select(
            per_citizen.c.citizen_id,
            per_citizen.c.first_opened,
            per_citizen.c.cases,
            per_citizen.c.latest_id,
            Case.state,
            Intake.answers["household"],
            Intake.answers["needs"],
        )
        .join(Case, Case.id == per_citizen.c.latest_id)
        # A citizen has one questionnaire (started again, it is the same row).
        .outerjoin(Intake, Intake.citizen_id == per_citizen.c.citizen_id)
        .order_by(per_citizen.c.first_id)
    )
    t, tz, code = ctx.t, ctx.settings.tz, reference_coder()
    async for partition in batches(ctx.session, statement, BATCH):
        plans = await _plans_of(ctx, [r[0] for r in partition], [r[3] for r in partition])
        for citizen_id, opened, cases, latest_id, state, household, needs in partition:
            household = household if isinstance(household, dict) else {}
            kinds, committed, paid = plans.money.get(citizen_id, ([], 0, 0))
            outcome = plans.outcomes.get(latest_id)
            yield (
                code(citizen_id), opened.astimezone(tz).date(), int(cases),
                _count(household.get("members")), _count(household.get("minors")),
                questionnaire.labels("needs", needs, t) if needs else "",
                ", ".join(_kind(t, k) for k in kinds), committed, paid,
                _label(t, PLAN_OUTCOMES, outcome) if outcome
                else _label(t, labels.CASE_STATES, state),
            )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Plans:
    # Per citizen: their interventions' types, money committed (net of releases) and paid.
    money: dict[int, tuple[list[str], int, int]]
    # Per (latest) case: its latest plan's outcome.
    outcomes: dict[int, str | None]


async def _plans_of(ctx: Context, citizen_ids: list[int], latest_ids: list[int]) -> _Plans:
    """What the plans of one batch's citizens hold, over their cases of the period; three
    statements per batch."""
    session = ctx.session

    def of_their_cases(statement: Any) -> Any:
        return _within(
            statement.join(Case, Case.id == Plan.case_id).where(Case.citizen_id.in_(citizen_ids)),
            Case.opened_at,
            ctx,
        )

    kinds: dict[int, list[str]] = {}
    for citizen_id, kind in await session.execute(
        of_their_cases(
            select(Case.citizen_id, PlanSupport.kind)
            .select_from(Plan)
            .join(PlanSupport, PlanSupport.plan_id == Plan.id)
        )
        .distinct()
        .order_by(Case.citizen_id, PlanSupport.kind)
    ):
        kinds.setdefault(citizen_id, []).append(kind)
    outcomes: dict[int, str | None] = {}
    for case_id, outcome in await session.execute(
        select(Plan.case_id, Plan.outcome)
        .where(Plan.case_id.in_(latest_ids), Plan.outcome.is_not(None))
        .order_by(Plan.case_id, Plan.id)
    ):
        outcomes[case_id] = outcome
    sums: dict[int, dict[str, int]] = {}
    for citizen_id, kind, cents in await session.execute(
        of_their_cases(
            select(Case.citizen_id, FundMovement.kind, func.sum(FundMovement.amount_cents))
            .select_from(FundMovement)
            .join(Plan, Plan.id == FundMovement.plan_id)
        ).group_by(Case.citizen_id, FundMovement.kind)
    ):
        sums.setdefault(citizen_id, {})[kind] = int(cents or 0)
    money = {}
    for citizen_id in set(kinds) | set(sums):
        moved = sums.get(citizen_id, {})
        committed = moved.get(MovementKind.COMMITMENT.value, 0) - moved.get(
            MovementKind.RELEASE.value, 0
        )
        money[citizen_id] = (
            kinds.get(citizen_id, []), committed, moved.get(MovementKind.PAYMENT.value, 0),
        )  # fmt: skip
    return _Plans(money, outcomes)


# --- the registry -----------------------------------------------------------------------

EXPORTS: dict[str, Export] = {
    export.name: export
    for export in (
        Export(
            "bookings",
            N_("Bookings"),
            N_("Every appointment of the period, with its helpdesk, citizen and state."),
            lambda ctx: [Sheet(N_("Bookings"), BOOKING_COLUMNS, _booking_rows(ctx))],
        ),
        Export(
            "cases",
            N_("Cases"),
            N_("Every case opened in the period, with its citizen, state and eligibility."),
            lambda ctx: [Sheet(N_("Cases"), CASE_COLUMNS, _case_rows(ctx))],
        ),
        Export(
            "plans",
            N_("Plans and interventions"),
            N_(
                "One row per intervention of the plans started in the period, with its fund "
                "and amount."
            ),
            lambda ctx: [Sheet(N_("Interventions"), PLAN_COLUMNS, _plan_rows(ctx))],
        ),
        Export(
            "payments",
            N_("Payments"),
            N_("Every payment made in the period, by fund, with whom it went to."),
            lambda ctx: [Sheet(N_("Payments"), PAYMENT_COLUMNS, _payment_rows(ctx))],
        ),
        Export(
            "figures",
            N_("Figures"),
            N_(
                "The numbers of the figures page for the period (the last twelve months when "
                "none is given)."
            ),
            lambda ctx: [Sheet(N_("Figures"), FIGURE_COLUMNS, _figure_rows(ctx))],
        ),
        Export(
            "funder_pack",
            N_("Pack for the funders (pseudonymised)"),
            N_(
                "The figures and one row per beneficiary with a reference code instead of "
                "name, phone, e-mail and fiscal code: household, needs, interventions, "
                "amounts, outcome. The codes change at every download."
            ),
            lambda ctx: [
                Sheet(N_("Figures"), FIGURE_COLUMNS, _figure_rows(ctx)),
                Sheet(N_("Beneficiaries"), BENEFICIARY_COLUMNS, _beneficiary_rows(ctx)),
            ],
            formats=(Format.XLSX,),
        ),
    )
}
