"""The program's figures (coordinators, SPEC J6): `/figures`, filtered by period and helpdesk.

The route reads the filter form (GET: the address is the report, bookmarkable), asks
`shared.figures.service.figures` for every number and draws each group as a chart
(`dashboard.charts`) with the same numbers in a table below it. A bad filter comes back as
the form with the message next to its field and what was typed kept (400), no figures.
`/figures/charts.css` is the charts' stylesheet (what pygal would have inlined).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from dashboard import charts
from dashboard.deps import COORDINATION, Session, Viewer, allow, settings_of
from dashboard.params import BAD_DAY, BadDay, QueryText, read_day, read_id
from dashboard.routes.plans import OUTCOME_LABELS, TREND_LABELS
from dashboard.templating import render
from shared import money
from shared.booking import hours
from shared.booking.models import BookingState
from shared.cases.labels import BOOKING_STATES
from shared.db import utcnow
from shared.figures import service
from shared.figures.deadlines import Deadline
from shared.figures.period import MAX_PERIOD_DAYS, Period
from shared.figures.screening import SUMMARY
from shared.i18n import N_, Translator
from shared.intake import questionnaire
from shared.limits import DAY_RANGE
from shared.plans.catalog import CATALOG, Kind
from shared.plans.document import SUPPORT_STATE_LABELS

router = APIRouter()
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]

STAGE_LABELS = {
    "started": N_("Started"),
    "consented": N_("Consented"),
    "completed": N_("Questionnaire completed"),
    "eligible": N_("Eligible"),
    "booked": N_("Booked"),
    "attended": N_("Came to the interview"),
    "plan_approved": N_("Plan approved"),
    "closed": N_("Closed"),
}
REASON_LABELS = {
    "not_resident": N_("Not resident"),
    "situation_not_covered": N_("Situation not covered"),
    "not_pandemic_related": N_("Not caused by the pandemic"),
}
CANCELLED_LABELS = {
    "citizen": N_("By the citizen"),
    "staff": N_("By staff"),
    "request_declined": N_("Request declined by a coordinator"),
    "request_expired": N_("Request expired without an answer"),
}
DEADLINE_LABELS = {
    Deadline.INTERVIEW: N_("Interviews"),
    Deadline.PLAN: N_("Plans to approve"),
    Deadline.REVIEW: N_("Plan reviews"),
}
BASELINE_LABELS = {
    "income": N_("Income"),
    "debts": N_("Debts"),
    "urgent_expenses": N_("Urgent expenses"),
}
SUMMARY_LABEL = N_("Summary, not yet confirmed")
BOOKINGS_DESCRIPTION = N_(
    "Appointments not cancelled, per week (from its Monday), one colour per helpdesk as "
    "the legend says."
)
INTERVENTIONS_DESCRIPTION = N_(
    "Supports of the plans approved {span}, by type, one colour per state as the legend says."
)
BAD_RANGE = N_("The end date is before the start date.")
TOO_LONG = N_("The period can be at most {days} days long.")
CHOOSE = N_("Choose one of the options.")
BAD_DATE = N_("Write a date like 31/12/2026.")


def _number(language: str) -> Callable[..., str]:
    def number(value: float | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        return format_decimal(round(value, digits), format="#,##0.#" if digits else None,
                              locale=language)  # fmt: skip

    return number


def _percent(language: str) -> Callable[[float | None], str]:
    def percent(value: float | None) -> str:
        return "—" if value is None else format_percent(value, format="#,##0.#%", locale=language)

    return percent


def _now(request: Request) -> datetime:
    """The moment the figures are read at: the app's `figures_clock` when a test set one."""
    clock: Callable[[], datetime] = getattr(request.app.state, "figures_clock", utcnow)
    return clock()


def _read_filters(
    values: dict[str, str], today: date, t: Translator
) -> tuple[Period | None, int | None, dict[str, str]]:
    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for name in ("from", "to"):
        try:
            days[name] = read_day(values[name])
        except BadDay as exc:
            days[name] = None
            errors[name] = t(BAD_DATE if exc.message == BAD_DAY else exc.message, **DAY_RANGE)
    helpdesk_id = read_id(values["helpdesk"])
    if values["helpdesk"].strip() and helpdesk_id is None:
        errors["helpdesk"] = t(CHOOSE)
    if errors:
        return None, helpdesk_id, errors
    default = Period.last_months(today)
    first, last = days["from"] or default.first, days["to"] or default.last
    if days["from"] is not None and days["to"] is None and first > last:
        last = first
    if last < first:
        return None, helpdesk_id, {"to": t(BAD_RANGE)}
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        return None, helpdesk_id, {"from": t(TOO_LONG, days=MAX_PERIOD_DAYS)}
    return Period(first, last), helpdesk_id, {}


@router.get("/figures")
async def figures_page(
    request: Request,
    session: Session,
    viewer: Coordinator,
    from_: Annotated[QueryText, Query(alias="from")] = "",
    to: QueryText = "",
    helpdesk: QueryText = "",
) -> HTMLResponse:
    t = Translator(viewer.language)
    settings = settings_of(request)
    values = {"from": from_.strip(), "to": to.strip(), "helpdesk": helpdesk.strip()}
    now = _now(request)
    period, helpdesk_id, errors = _read_filters(values, now.astimezone(settings.tz).date(), t)
    helpdesks = await hours.list_helpdesks(session=session, active_only=False)
    names = {h.id: h.name for h in helpdesks}
    if helpdesk_id is not None and helpdesk_id not in names:
        errors["helpdesk"] = t(CHOOSE)
    context: dict[str, Any] = {
        "values": values,
        "errors": errors,
        "helpdesk_options": [("", t("All helpdesks"))] + [(str(h.id), h.name) for h in helpdesks],
        "figures": None,
    }
    if errors or period is None:
        return render(request, "figures/page.html", context, status_code=400)
    found = await service.figures(
        session=session, settings=settings, period=period, helpdesk_id=helpdesk_id, now=now
    )
    context |= _page(found, names, t, settings.fund_runway_warning_weeks)
    context |= {
        "settings_interview": settings.interview_due_days,
        "settings_plan": settings.plan_due_days,
    }
    return render(request, "figures/page.html", context)


@router.get("/figures/charts.css")
async def chart_stylesheet(viewer: Coordinator) -> Response:
    del viewer
    return Response(charts.stylesheet(), media_type="text/css")


def _page(
    found: service.Figures, names: dict[int, str], t: Translator, warning_weeks: int
) -> dict[str, Any]:
    """What the template shows: the figures, their labels, charts and links."""
    language = t.language
    number = _number(language)

    def day(value: date) -> str:
        return format_date(value, "medium", locale=language)

    def euros(cents: float) -> str:
        return money.format_euros(round(cents), language)

    period = found.period
    span = t("from {first} to {last}", first=day(period.first), last=day(period.last))
    scope = names.get(found.helpdesk_id, "") if found.helpdesk_id is not None else ""

    funnel = found.funnel
    counted = [s for s in funnel.stages if s.count is not None]
    screening = found.screening
    question_labels = {
        **{s.key: t(s.title) for s in (*questionnaire.QUESTIONNAIRE, questionnaire.CONTACT_OFFER)},
        SUMMARY: t(SUMMARY_LABEL),
    }
    b = found.bookings
    weeks = [day(monday) for monday in b.weeks]
    interventions = found.interventions
    kind_labels = {k.value: t(CATALOG[k].label) for k in Kind}
    outcomes = found.outcomes

    def cases_link(deadline: Deadline, first: date | None, last: date) -> str:
        if deadline is Deadline.REVIEW:
            return "/plans/reviews"
        query = {"due": deadline.value, "due_to": last.isoformat()}
        if first is not None:
            query["due_from"] = first.isoformat()
        if found.helpdesk_id is not None:
            query["helpdesk"] = str(found.helpdesk_id)
        return "/cases?" + urlencode(query)

    return {
        "figures": found,
        "span": span,
        "scope": scope,
        "number": number,
        "percent": _percent(language),
        "euros": euros,
        "day": day,
        "stage_labels": STAGE_LABELS,
        "reason_labels": REASON_LABELS,
        "cancelled_labels": CANCELLED_LABELS,
        "deadline_labels": DEADLINE_LABELS,
        "baseline_labels": BASELINE_LABELS,
        "booking_state_labels": BOOKING_STATES,
        "outcome_labels": OUTCOME_LABELS,
        "trend_labels": TREND_LABELS,
        "support_state_labels": SUPPORT_STATE_LABELS,
        "kind_labels": kind_labels,
        "question_labels": question_labels,
        "helpdesk_names": names,
        "weeks": weeks,
        "warning_weeks": warning_weeks,
        "cases_link": cases_link,
        "charts": {
            "funnel": charts.bars(
                "chart-funnel", t("The path, stage by stage"),
                t("How many of the citizens first seen {span} reached each stage.", span=span),
                [t(STAGE_LABELS[s.key]) for s in counted],
                [(t("Citizens"), [s.count for s in counted])],
                horizontal=True,
            ),
            "dropoff": charts.bars(
                "chart-dropoff", t("Where the questionnaire was left"),
                t("Questionnaires still open, by the question they stopped at."),
                [question_labels[q.position] for q in screening.questions],
                [(t("Stopped here"), [q.stopped for q in screening.questions])],
                horizontal=True,
            ),
            "reasons": charts.bars(
                "chart-reasons", t("Ruled out by the questionnaire, by reason"),
                t("Completed questionnaires the eligibility rules refused, by the rule failed."),
                [t(REASON_LABELS.get(r, r)) for r, _ in screening.reasons],
                [(t("Candidates"), [n for _, n in screening.reasons])], horizontal=True,
            ),
            "bookings": charts.bars(
                "chart-bookings", t("Appointments per helpdesk and week"),
                t(BOOKINGS_DESCRIPTION),
                weeks,
                [
                    (names.get(h, str(h)), [b.appointments(h, monday) for monday in b.weeks])
                    for h in b.helpdesk_ids
                ],
                stacked=True,
            ),
            "cancelled": charts.bars(
                "chart-cancelled", t("Cancellations, by who cancelled"),
                t("Cancelled appointments of the period, by who cancelled them."),
                [t(CANCELLED_LABELS[w]) for w, _ in b.cancelled],
                [(t("Cancellations"), [n for _, n in b.cancelled])], horizontal=True,
            ),
            "deadlines": charts.bars(
                "chart-deadlines", t("Deadlines"),
                t("Interviews, plans and reviews overdue and due within a week."),
                [t(DEADLINE_LABELS[r.deadline]) for r in found.deadlines.rows],
                [
                    (t("Overdue"), [r.overdue for r in found.deadlines.rows]),
                    (t("Due within a week"), [r.soon for r in found.deadlines.rows]),
                ],
                horizontal=True,
            ),
            "interventions": charts.bars(
                "chart-interventions", t("Interventions by type and state"),
                t(INTERVENTIONS_DESCRIPTION, span=span),
                [kind_labels.get(k.kind, k.kind) for k in interventions.kinds],
                [
                    (t(SUPPORT_STATE_LABELS[state]), [k.count(state) for k in interventions.kinds])
                    for state in SUPPORT_STATE_LABELS
                ],
                horizontal=True, stacked=True,
            ),
            "funds": charts.bars(
                "chart-funds", t("Money per fund"),
                t("For each fund, in euros: paid, committed and not yet paid, and left."),
                [f.name for f in found.funds],
                [
                    (t("Paid"), [f.paid_cents / 100 for f in found.funds]),
                    (t("Committed"), [f.committed_cents / 100 for f in found.funds]),
                    (t("Left"), [f.left_cents / 100 for f in found.funds]),
                ],
                horizontal=True, stacked=True,
                formatter=lambda value: euros(value * 100),
            ),
            "outcomes": charts.bars(
                "chart-outcomes", t("Outcomes at closure"),
                t("Plans closed {span}, by outcome.", span=span),
                [t(OUTCOME_LABELS.get(o, o)) for o, _ in outcomes.by_outcome],
                [(t("Plans"), [n for _, n in outcomes.by_outcome])], horizontal=True,
            ),
        },
        "booking_states": [s.value for s in BookingState],
    }  # fmt: skip
