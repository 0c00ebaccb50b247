"""The program's figures (coordinators, SPEC J6): `/figures`, filtered by period and helpdesk.

The route reads the filter form (GET: the address is the report, bookmarkable), asks
`shared.figures.cache.figures_for` for every number and each group's chart (`draw_charts`,
with `dashboard.charts`), and shows each chart with the same numbers in a table below it.
The figures are a report, not a live screen: each filter's are kept for
`figures_cache_minutes` and the page says when they were computed; "Refresh now" (POST
`/figures/refresh`, 303 back to the same filters) computes them again. The running process
keeps the page as it opens fresh (`figures_cache_component`, with `draw_charts`). A bad
filter comes back as the form with the message next to its field and what was typed kept
(400), no figures. `/figures/charts.css` is the charts' stylesheet (what pygal would have
inlined).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import NumberPattern, parse_pattern
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from dashboard import charts
from dashboard.deps import COORDINATION, Session, Viewer, allow, settings_of, writes_on_read
from dashboard.params import BAD_DAY, BadDay, QueryText, read_day, read_id
from dashboard.routes.plans import OUTCOME_LABELS, TREND_LABELS
from dashboard.templating import render
from shared import money
from shared.booking import hours
from shared.booking.models import BookingState
from shared.cases.labels import BOOKING_STATES
from shared.db import utcnow
from shared.figures import cache
from shared.figures.cache import Charts
from shared.figures.deadlines import Deadline
from shared.figures.period import MAX_PERIOD_DAYS, Period
from shared.figures.screening import SUMMARY
from shared.figures.service import Figures
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
AS_OF_TODAY = N_("Figures as of {time}.")
AS_OF_DAY = N_("Figures as of {day}, {time}.")


@functools.cache
def _patterns(language: str) -> tuple[Locale, NumberPattern, NumberPattern, NumberPattern]:
    """The language's locale and number patterns, parsed once (babel's `format_decimal`
    parses both at every call: a few hundred numbers make a page)."""
    locale = Locale.parse(language)
    decimal = locale.decimal_formats[None]
    return locale, decimal, parse_pattern("#,##0.#"), parse_pattern("#,##0.#%")


def _number(language: str) -> Callable[..., str]:
    locale, whole, one_digit, _ = _patterns(language)

    def number(value: float | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        return str((one_digit if digits else whole).apply(round(value, digits), locale))

    return number


def _percent(language: str) -> Callable[[float | None], str]:
    locale, _, _, pattern = _patterns(language)

    def percent(value: float | None) -> str:
        return "—" if value is None else str(pattern.apply(value, locale))

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


def _filter_values(from_: str, to: str, helpdesk: str) -> dict[str, str]:
    return {"from": from_.strip(), "to": to.strip(), "helpdesk": helpdesk.strip()}


@router.get("/figures")
@writes_on_read()
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
    values = _filter_values(from_, to, helpdesk)
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
    kept = await cache.figures_for(
        session=session, settings=settings, period=period, helpdesk_id=helpdesk_id, now=now,
        language=t.language, names=names, draw=draw_charts,
    )  # fmt: skip
    context |= _page(kept.figures, names, t, settings.fund_runway_warning_weeks, kept.charts)
    context |= {
        "settings_interview": settings.interview_due_days,
        "settings_plan": settings.plan_due_days,
        "as_of": _as_of(kept.computed_at, now, t, settings.tz),
        "kept_minutes": settings.figures_cache_minutes,
    }
    return render(request, "figures/page.html", context)


@router.post("/figures/refresh")
async def refresh_figures(
    request: Request,
    session: Session,
    viewer: Coordinator,
    from_: Annotated[QueryText, Form(alias="from")] = "",
    to: Annotated[QueryText, Form()] = "",
    helpdesk: Annotated[QueryText, Form()] = "",
) -> RedirectResponse:
    """Compute the filter's figures again now, then show them (303 to the same filters).

    A filter the page would refuse changes nothing: the page shows why."""
    t = Translator(viewer.language)
    settings = settings_of(request)
    values = _filter_values(from_, to, helpdesk)
    now = _now(request)
    period, helpdesk_id, errors = _read_filters(values, now.astimezone(settings.tz).date(), t)
    if not errors and period is not None:
        helpdesks = await hours.list_helpdesks(session=session, active_only=False)
        names = {h.id: h.name for h in helpdesks}
        if helpdesk_id is None or helpdesk_id in names:
            await cache.recompute(
                session=session, settings=settings, period=period, helpdesk_id=helpdesk_id,
                now=now, languages=(t.language,), names=names, draw=draw_charts,
            )  # fmt: skip
    shown = {name: value for name, value in values.items() if value}
    return RedirectResponse("/figures" + (f"?{urlencode(shown)}" if shown else ""), status_code=303)


def _as_of(computed_at: datetime, now: datetime, t: Translator, tz: Any) -> str:
    """When the figures shown were computed: the time, and the day if not today's."""
    local = computed_at.astimezone(tz)
    time = format_time(local, "HH:mm", locale=t.language)
    if local.date() == now.astimezone(tz).date():
        return t(AS_OF_TODAY, time=time)
    return t(AS_OF_DAY, day=format_date(local, "medium", locale=t.language), time=time)


@router.get("/figures/charts.css")
async def chart_stylesheet(viewer: Coordinator) -> Response:
    del viewer
    return Response(charts.stylesheet(), media_type="text/css")


def _day(language: str) -> Callable[[date], str]:
    def day(value: date) -> str:
        return format_date(value, "medium", locale=language)

    return day


def _euros(language: str) -> Callable[[float], str]:
    def euros(cents: float) -> str:
        return money.format_euros(round(cents), language)

    return euros


def _span(period: Period, t: Translator) -> str:
    day = _day(t.language)
    return t("from {first} to {last}", first=day(period.first), last=day(period.last))


def _question_labels(t: Translator) -> dict[str, str]:
    return {
        **{s.key: t(s.title) for s in (*questionnaire.QUESTIONNAIRE, questionnaire.CONTACT_OFFER)},
        SUMMARY: t(SUMMARY_LABEL),
    }


def _kind_labels(t: Translator) -> dict[str, str]:
    return {k.value: t(CATALOG[k].label) for k in Kind}


def draw_charts(found: Figures, language: str, names: Mapping[int, str]) -> dict[str, str]:
    """The page's nine charts of `found` in `language`, as SVG (`shared.figures.cache`
    keeps them with the figures: drawing them takes ~0.3 s)."""
    t = Translator(language)
    euros = _euros(language)
    span = _span(found.period, t)
    counted = [s for s in found.funnel.stages if s.count is not None]
    screening = found.screening
    question_labels = _question_labels(t)
    b = found.bookings
    weeks = [_day(language)(monday) for monday in b.weeks]
    interventions = found.interventions
    kind_labels = _kind_labels(t)
    outcomes = found.outcomes
    drawn = {
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
    }  # fmt: skip
    return {name: str(svg) for name, svg in drawn.items()}


def _page(
    found: Figures, names: Mapping[int, str], t: Translator, warning_weeks: int, charts: Charts
) -> dict[str, Any]:
    """What the template shows: the figures, their labels, charts and links.

    The charts are `draw_charts`' SVG, kept as text (`shared.figures.cache`): pygal
    escaped every label and value when it drew them."""
    language = t.language
    day = _day(language)
    scope = names.get(found.helpdesk_id, "") if found.helpdesk_id is not None else ""

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
        "span": _span(found.period, t),
        "scope": scope,
        "number": _number(language),
        "percent": _percent(language),
        "euros": _euros(language),
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
        "kind_labels": _kind_labels(t),
        "question_labels": _question_labels(t),
        "helpdesk_names": names,
        "weeks": [day(monday) for monday in found.bookings.weeks],
        "warning_weeks": warning_weeks,
        "cases_link": cases_link,
        "charts": {name: Markup(svg) for name, svg in charts.items()},  # noqa: S704
        "booking_states": [s.value for s in BookingState],
    }  # fmt: skip
