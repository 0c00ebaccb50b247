"""The figures page and the full cases XLSX export, with 1k and with 100k cases (issue 13).

The data are the staff dashboard benchmark's (`bench_dashboard`: its `Planner` and `load`,
two years of the program: citizens, completed questionnaires, cases and their bookings
in every state, interviews and outcomes), plus what else the figures read, written here
with Core `insert()` in chunks as the services would have written it:

- questionnaires not finished: in progress at every question (more at the first ones),
  in the summary, and erased by the expiry sweep (state `expired`, no answers), with
  their citizens (Telegram ones consented, phone and walk-in ones made by staff);
- privacy notices refused (`consent_refusal`, anonymous);
- a quarter of the citizen cancellations turned into staff ones (the planner makes
  only the citizen's);
- a plan for each admitted case, its state following the case and the time since the
  interview (draft, submitted, returned, approved, active, closed with an outcome and
  the closure check), 1-4 supports whose details are the editor's inputs validated by
  the catalog and priced by `catalog.amount_cents`, their state following the plan's;
- the funds' ledger: deposits over the two years, a commitment per priced support when
  its plan was approved, payments as the support runs, the unpaid rest released when a
  support is cancelled; each fund's running totals kept equal to its ledger.

Measured, through the real app as the dashboard benchmark drives it (one fresh database
and app per data set, both open, interleaved, signed in through `/login`):

1. Latency of single GETs of `/figures` as a coordinator, and of the case list `/cases`
   at the same size, as the same coordinator and as the dashboard benchmark's case
   worker. p50 and p95 (the median of 8 blocks' p95). The figures are kept for
   `figures_cache_minutes` (`shared.figures.cache`), so each filter is measured twice:
   *kept* — the page as it opens (the last twelve months, every helpdesk) and one
   helpdesk's, the default views the running process keeps fresh: its refresh
   (`figures_cache_component`) runs beside the requests while measuring, as in
   production; *not kept* — the same two and the longest period (two years), each GET
   for a filter not kept yet (its period ends one day earlier than the last one's), so
   the page computes the figures and draws the charts. Target at 100k: each kept
   figures p95 <= 2 x the coordinator's case list p95; the not-kept ones are reported
   against the same reference (the floor of reading a year of rows: docs/benchmarks.md).
2. SQL statements per request, on a second engine and app with a listener (kept and not
   kept). Target <= 12 for each.
3. The full cases XLSX export, in a process of its own (`_export_process`): the peak
   resident set (VmHWM) against the same process before the export, and the rows per
   second against the bare loop of XlsxWriter (constant_memory, the library the export
   uses) writing the same rows, each in its own process, interleaved; openpyxl's
   write-only loop is timed the same way. Targets at 100k: peak < 150 MB; export >= 0.5 x
   XlsxWriter's floor.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import httpx
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from dashboard.routes.figures import draw_charts
from shared.booking.models import BookingState
from shared.cases.models import Outcome
from shared.citizens.models import Channel, Citizen, ConsentRefusal
from shared.citizens.service import PRIVACY_NOTICE_VERSION
from shared.db import Base, Database, utcnow
from shared.figures import (
    bookings,
    cache,
    deadlines,
    funnel,
    interventions,
    outcomes,
    screening,
    service,
)
from shared.figures import funds as fund_figures
from shared.figures.period import MAX_PERIOD_DAYS, Period
from shared.figures.screening import POSITIONS, SUMMARY
from shared.funds.models import Fund, FundMovement, MovementKind
from shared.intake.models import Intake, IntakeState
from shared.intake.questionnaire import CONTACT_STEPS
from shared.plans import catalog
from shared.plans.catalog import Kind
from shared.plans.models import Plan, PlanOutcome, PlanState, PlanSupport, SupportState, Trend
from shared.settings import Settings
from shared.staff.models import Role
from tests.bench._support import Databases, Options, table, timed, verdict
from tests.bench.bench_dashboard import (
    BLOCKS,
    CANCELLED,
    DML,
    PROGRAM_DAYS,
    STAFF_USERS,
    TELEGRAM,
    VIEWER,
    WORK_DONE,
    CasePlan,
    StatementLog,
    _insert,
    _p50,
    _p95,
    _percentile,
    bench_app,
    create_staff_and_helpdesks,
    get,
    keyword,
    load,
    questionnaires,
    signed_in,
)
from tests.bench.bench_dashboard import Plan as CasesPlan
from tests.bench.bench_dashboard import Planner as CasesPlanner
from tests.bench.bench_plans import FUNDS, KINDS, _details

TITLE = "Figures page and cases XLSX export"

SIZES = (1_000, 100_000)
SEED = 20261205
COORDINATOR = "coordinatore1"
# Questionnaires not finished, per case of the data set; how many of them are recent
# enough not to have been erased by the expiry sweep yet.
UNFINISHED_SHARE = 0.15
STILL_OPEN_SHARE = 0.25
REFUSALS_SHARE = 0.04
STAFF_CANCELLED_SHARE = 0.25

# Targets.
MAX_STATEMENTS = 12
MAX_P95_OVER_LIST = 2.0
MAX_PEAK_MB = 150
MIN_EXPORT_OVER_FLOOR = 0.5

# Served from what the running process keeps (the default views), and computed for a
# filter not kept.
KEPT = ("figures", "figures: a helpdesk")
NOT_KEPT = ("figures, not kept", "figures: a helpdesk, not kept", "figures: two years, not kept")
FIGURES = (*KEPT, *NOT_KEPT)
LISTS = ("case list", "case list (case worker)")
LATENCY = (*FIGURES, *LISTS)
AS_CASE_WORKER = frozenset({"case list (case worker)"})
EXPORT_MODES = ("export", "xlsxwriter", "openpyxl")
# The latency rounds stop after this long (once MIN_ROUNDS are done: 2 per block).
LATENCY_SECONDS = 600.0
MIN_ROUNDS = 2 * BLOCKS
SESSION_IDLE_MINUTES = 24 * 60


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


# --- what the figures read beyond the dashboard's data --------------------------------

# (plan outcome, weight) at closing, and the closure check's trends.
PLAN_OUTCOMES = (
    (PlanOutcome.EMPLOYED, 42), (PlanOutcome.INTERNSHIP_STARTED, 15),
    (PlanOutcome.SELF_EMPLOYMENT_RESTARTED, 8), (PlanOutcome.REFERRED, 10),
    (PlanOutcome.DROPPED_OUT, 15), (PlanOutcome.OTHER, 10),
)  # fmt: skip
TRENDS = ((Trend.BETTER, 50), (Trend.SAME, 35), (Trend.WORSE, 15))
PAYEES = ("citizen", "landlord", "utility")
METHODS = ("bank_transfer", "bank_transfer", "voucher", "direct_debit")


def _weighted(rng: random.Random, weighted: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


class Extras:
    """The rows the figures read that the dashboard's planner does not make."""

    def __init__(
        self,
        plan: CasesPlan,
        *,
        size: int,
        now: datetime,
        settings: Settings,
        workers: Sequence[int],
        funds: Sequence[int],
        forms: Sequence[dict[str, Any]],
    ) -> None:
        self.plan = plan
        self.forms = list(forms)
        self.size = size
        self.now = now
        self.settings = settings
        self.today = now.astimezone(settings.tz).date()
        self.workers = list(workers)
        self.funds = list(funds)
        self.rng = random.Random(SEED + size)
        self.details = _details()
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.ids: Counter[str] = Counter()

    def _id(self, name: str) -> int:
        self.ids[name] += 1
        return self.ids[name]

    def cancellations_by_staff(self) -> None:
        """A share of the planner's cancellations made by staff instead (no place changes)."""
        for made in self.plan.bookings:
            if made.state == CANCELLED and self.rng.random() < STAFF_CANCELLED_SHARE:
                made.state = BookingState.CANCELLED_BY_STAFF.value
                made.closed_by = f"staff:{VIEWER}"

    def unfinished(self) -> None:
        """Questionnaires left at a question, in the summary, or erased by the sweep."""
        rng, now = self.rng, self.now
        expiry = timedelta(days=self.settings.intake_expiry_days)
        questions = [p for p in POSITIONS if p != SUMMARY]
        # More stop at the first questions, fewer at each one after.
        weights = [1 / (n + 2) for n in range(len(questions))]
        first_id = len(self.plan.people) + 1
        for number in range(round(self.size * UNFINISHED_SHARE)):
            citizen_id = first_id + number
            if rng.random() < STILL_OPEN_SHARE:
                started = now - expiry * rng.uniform(0.02, 0.95)
            else:
                started = now - timedelta(days=rng.uniform(35, PROGRAM_DAYS))
            telegram = rng.random() < 0.85
            self.rows["citizen"].append({
                "id": citizen_id, "channel": TELEGRAM if telegram else Channel.PHONE.value,
                "telegram_user_id": 800_000_000 + citizen_id * 7 if telegram else None,
                "telegram_chat_id": 800_000_000 + citizen_id * 7 if telegram else None,
                "language": "it", "name": None, "phone": None, "email": None,
                "fiscal_code": None,
                "consent_version": PRIVACY_NOTICE_VERSION if telegram else None,
                "consented_at": started if telegram else None, "urgent": False,
                "unreachable": False, "created_at": started, "updated_at": started,
            })  # fmt: skip
            if started < now - expiry:
                self.rows["intake"].append({
                    "id": citizen_id, "citizen_id": citizen_id,
                    "state": IntakeState.EXPIRED.value, "current_step": None, "answers": {},
                    "history": [], "started_at": started,
                    "updated_at": started + expiry + timedelta(hours=rng.uniform(0, 24)),
                    "completed_at": None, "expiry_reminded_at": None, "eligible": None,
                    "urgent": False,
                })  # fmt: skip
                continue
            form = rng.choice(self.forms)
            if rng.random() < 0.08:
                state, step, answered = IntakeState.SUMMARY.value, None, list(form)
            else:
                step = rng.choices(questions, weights)[0]
                answered = [k for k in form if questions.index(k) < questions.index(step)]
                state = IntakeState.IN_PROGRESS.value
            answers = {k: form[k] for k in answered if k not in CONTACT_STEPS}
            self.rows["intake"].append({
                "id": citizen_id, "citizen_id": citizen_id, "state": state,
                "current_step": step, "answers": answers, "history": list(answers),
                "started_at": started,
                "updated_at": min(now, started + timedelta(minutes=rng.uniform(1, 600))),
                "completed_at": None, "expiry_reminded_at": None, "eligible": None,
                "urgent": False,
            })  # fmt: skip

    def refusals(self) -> None:
        for number in range(round(self.size * REFUSALS_SHARE)):
            at = self.now - timedelta(days=self.rng.uniform(0, PROGRAM_DAYS))
            self.rows["consent_refusal"].append(
                {"id": number + 1, "notice_version": PRIVACY_NOTICE_VERSION, "at": at}
            )

    def plans(self) -> None:
        """A plan for each admitted case, and the ledger of the money its supports take."""
        for case in self.plan.cases:
            if case.outcome == Outcome.ADMITTED.value and case.outcome_at is not None:
                self._plan(case)

    def _plan(self, case: CasePlan) -> None:
        rng, now = self.rng, self.now
        created = cast(datetime, case.outcome_at) + timedelta(days=rng.uniform(0.5, 6))
        if created >= now:
            return
        closing = case.closed_at if case.close_reason == WORK_DONE else None
        steps = [created]
        for low, high in ((1, 10), (1, 7), (1, 10)):  # submitted, approved, activated
            steps.append(steps[-1] + timedelta(days=rng.uniform(low, high)))
        stalled = rng.random() < 0.06 and closing is None
        reached = sum(1 for at in steps if at < now)
        if stalled:
            reached = min(reached, rng.choice((1, 2)))
        state = (PlanState.DRAFT, PlanState.SUBMITTED, PlanState.APPROVED, PlanState.ACTIVE)[
            reached - 1
        ]
        if state is PlanState.SUBMITTED and rng.random() < 0.25:
            state = PlanState.RETURNED
        if closing is not None and state is PlanState.ACTIVE and closing > steps[3]:
            state = PlanState.CLOSED
        owner = rng.choice(self.workers)
        plan_id = self._id("plan")
        approved = steps[2] if state in (PlanState.APPROVED, PlanState.ACTIVE,
                                         PlanState.CLOSED) else None  # fmt: skip
        activated = steps[3] if state in (PlanState.ACTIVE, PlanState.CLOSED) else None
        review = None
        if state is PlanState.ACTIVE and activated is not None:
            review = activated.astimezone(self.settings.tz).date() + timedelta(days=90)
            while review < self.today - timedelta(days=rng.uniform(0, 25)):
                review += timedelta(days=90)
        closed = closing if state is PlanState.CLOSED else None
        row: dict[str, Any] = {
            "id": plan_id, "case_id": case.id, "state": state.value, "version": 1,
            "summary": "Ha perso il lavoro; affitto arretrato di due mesi.", "owner_id": owner,
            "next_review_on": review, "created_at": created,
            "submitted_at": steps[1] if state is not PlanState.DRAFT else None,
            "decided_at": approved or (steps[2] if state is PlanState.RETURNED else None),
            "decided_by": f"staff:{COORDINATOR}" if state not in (PlanState.DRAFT,
                                                                 PlanState.SUBMITTED) else None,
            "return_comment": "Manca la data di fine." if state is PlanState.RETURNED else None,
            "approved_at": approved, "signed_on": activated.date() if activated else None,
            "activated_at": activated, "closed_at": closed, "outcome": None,
            "outcome_notes": None, "income_trend": None, "debts_trend": None,
            "urgent_expenses_trend": None,
        }  # fmt: skip
        if closed is not None:
            row |= {
                "outcome": _weighted(rng, PLAN_OUTCOMES).value,
                "income_trend": _weighted(rng, TRENDS).value,
                "debts_trend": _weighted(rng, TRENDS).value,
                "urgent_expenses_trend": _weighted(rng, TRENDS).value,
            }
        row["updated_at"] = max(t for t in (created, row["submitted_at"], row["decided_at"],
                                            activated, closed) if t is not None)  # fmt: skip
        self.rows["plan"].append(row)
        for position in range(rng.choice((1, 1, 2, 2, 2, 3, 4))):
            self._support(plan_id, position, state, created, approved, closed)

    def _support(
        self, plan_id: int, position: int, state: PlanState, created: datetime,
        approved: datetime | None, closed: datetime | None,
    ) -> None:  # fmt: skip
        rng, now = self.rng, self.now
        kind = Kind(_weighted(rng, [(k.value, w) for k, w in KINDS]))
        stored, parsed = rng.choice(self.details[kind])
        starts = (created + timedelta(days=rng.uniform(7, 30))).date()
        ends = starts + timedelta(days=rng.choice((60, 90, 180, 365)))
        cents = catalog.amount_cents(kind, parsed, starts, ends)
        kept = {PlanState.ACTIVE: SupportState.ACTIVE,
                PlanState.CLOSED: SupportState.COMPLETED}.get(state, SupportState.PROPOSED)  # fmt: skip
        if kept is not SupportState.PROPOSED and rng.random() < 0.08:
            kept = SupportState.CANCELLED
        support_id = self._id("support")
        fund_id = rng.choice(self.funds) if cents else None
        self.rows["plan_support"].append({
            "id": support_id, "plan_id": plan_id, "position": position, "kind": kind.value,
            "details": stored, "responsible_id": None,
            "organisation": catalog.intervention(kind).organisation, "starts_on": starts,
            "ends_on": ends, "state": kept.value, "fund_id": fund_id, "amount_cents": cents,
        })  # fmt: skip
        if fund_id is None or approved is None:
            return
        self._movement(fund_id, MovementKind.COMMITMENT, cents, support_id, plan_id, approved)
        # Payments in up to three parts as the support runs; what is never paid of a
        # cancelled support is released.
        parts = rng.choice((1, 2, 3))
        end = closed or now
        paid = 0
        for part in range(parts):
            at = approved + (end - approved) * (part + 1) / (parts + 1)
            if kept is SupportState.CANCELLED and part > 0:
                break
            if kept is SupportState.ACTIVE and at > now - timedelta(days=rng.uniform(0, 60)):
                break
            amount = cents // parts if part < parts - 1 else cents - paid
            if amount <= 0:
                break
            paid += amount
            self._movement(fund_id, MovementKind.PAYMENT, amount, support_id, plan_id, at)
        if kept is SupportState.CANCELLED and paid < cents:
            at = min(now, approved + (end - approved) * 0.6 + timedelta(days=1))
            self._movement(fund_id, MovementKind.RELEASE, cents - paid, support_id, plan_id, at)

    def _movement(
        self, fund_id: int, kind: MovementKind, cents: int, support_id: int | None,
        plan_id: int | None, at: datetime,
    ) -> None:  # fmt: skip
        payment = kind is MovementKind.PAYMENT
        self.rows["fund_movement"].append({
            "id": 0, "fund_id": fund_id, "kind": kind.value, "amount_cents": cents,
            "support_id": support_id, "plan_id": plan_id,
            "paid_on": at.astimezone(self.settings.tz).date() if payment else None,
            "paid_to": self.rng.choice(PAYEES) if payment else None,
            "method": self.rng.choice(METHODS) if payment else None, "note": "",
            "actor": f"staff:{COORDINATOR}", "at": at,
        })  # fmt: skip

    def ledger(self) -> list[dict[str, Any]]:
        """Deposits enough for every fund's commitments, in eight parts over the program
        (the last fund with a thin margin, so its runway is short); the funds' totals."""
        rng, now = self.rng, self.now
        committed: Counter[int] = Counter()
        for m in self.rows["fund_movement"]:
            if m["kind"] == MovementKind.COMMITMENT.value:
                committed[m["fund_id"]] += m["amount_cents"]
        for fund_id in self.funds:
            margin = 1.02 if fund_id == self.funds[-1] else rng.uniform(1.15, 1.5)
            total = round(committed[fund_id] * margin) + 100_000_00
            for part in range(8):
                at = now - timedelta(days=PROGRAM_DAYS + 10) + timedelta(days=part * 88)
                amount = total // 8 if part < 7 else total - 7 * (total // 8)
                self._movement(fund_id, MovementKind.DEPOSIT, amount, None, None, at)
        self.rows["fund_movement"].sort(key=lambda m: m["at"])
        for number, m in enumerate(self.rows["fund_movement"], start=1):
            m["id"] = number
        totals = {f: Counter[str]() for f in self.funds}
        for m in self.rows["fund_movement"]:
            sums = totals[m["fund_id"]]
            sums[m["kind"]] += m["amount_cents"]
        return [
            {
                "id": fund_id,
                "deposited_cents": t["deposit"],
                "paid_cents": t["payment"],
                "committed_cents": t["commitment"] - t["payment"] - t["release"],
            }
            for fund_id, t in totals.items()
        ]


EXTRA_TABLES = {
    t.name: t for t in map(_table, (Citizen, Intake, ConsentRefusal, Plan, PlanSupport,
                                    FundMovement))
}  # fmt: skip


async def create_funds(database: Database, now: datetime) -> list[int]:
    async with database.engine.begin() as connection:
        await _insert(
            connection,
            _table(Fund),
            (
                {"id": n, "name": name, "funder": "Fondazione Cariplo", "active": True,
                 "created_at": now - timedelta(days=PROGRAM_DAYS + 20), "deposited_cents": 0,
                 "committed_cents": 0, "paid_cents": 0}
                for n, name in enumerate(FUNDS[:3], start=1)
            ),
        )  # fmt: skip
    return [1, 2, 3]


async def load_extras(database: Database, extras: Extras) -> dict[str, int]:
    funds = extras.ledger()
    written: dict[str, int] = {}
    async with database.engine.begin() as connection:
        for name, target in EXTRA_TABLES.items():
            written[name] = await _insert(connection, target, extras.rows[name])
        fund = _table(Fund)
        for totals in funds:
            await connection.execute(
                fund.update().where(fund.c.id == totals["id"]).values(**totals)
            )
        if not database.is_sqlite:
            for name in (*EXTRA_TABLES, "fund"):
                await connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))"
                    )
                )
        await connection.execute(text("ANALYZE"))
        counted = (
            await connection.execute(select(func.count()).select_from(_table(FundMovement)))
        ).scalar_one()
        if counted != len(extras.rows["fund_movement"]):
            raise AssertionError("the fund movements stored are not the ones generated")
    return written


# --- the sites -------------------------------------------------------------------------


@dataclass(slots=True)
class Request:
    url: str
    expect: tuple[str, ...]
    as_case_worker: bool = False
    # The period of the filter, in days (ending today), when each GET must be for a filter
    # not kept yet: its period then ends one day earlier than the previous GET's.
    not_kept_days: int | None = None
    helpdesk_id: int | None = None


@dataclass(slots=True)
class Site:
    size: int
    database: Database
    settings: Settings
    clients: dict[bool, httpx.AsyncClient]  # by "as the case worker"
    counting: dict[bool, httpx.AsyncClient]
    log: StatementLog
    requests: dict[str, Request]
    setup_seconds: float
    rows: dict[str, int]
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    counted: dict[str, tuple[int, float, tuple[str, ...]]] = field(default_factory=dict)
    exports: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    # Days back the last filter not kept ended (each such GET goes one day further).
    shift: int = 0
    refreshed_seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.size // 1000}k"

    def url(self, kind: str) -> str:
        """The address to GET for `kind`: the same each time, or a filter not kept yet."""
        request = self.requests[kind]
        if request.not_kept_days is None:
            return request.url
        self.shift += 1
        last = utcnow().astimezone(self.settings.tz).date() - timedelta(days=self.shift)
        first = (
            Period.last_months(last).first
            if request.not_kept_days == 365
            else last - timedelta(days=request.not_kept_days - 1)
        )
        query = {"from": first.isoformat(), "to": last.isoformat()}
        if request.helpdesk_id is not None:
            query["helpdesk"] = str(request.helpdesk_id)
        return "/figures?" + urlencode(query)


def _requests(helpdesk_id: int) -> dict[str, Request]:
    figures = ("chart-funnel", "chart-dropoff", "chart-bookings", "chart-funds")
    return {
        "figures": Request("/figures", figures),
        "figures: a helpdesk": Request(f"/figures?helpdesk={helpdesk_id}", figures),
        "figures, not kept": Request("", figures, not_kept_days=365),
        "figures: a helpdesk, not kept": Request(
            "", figures, not_kept_days=365, helpdesk_id=helpdesk_id
        ),
        "figures: two years, not kept": Request("", figures, not_kept_days=MAX_PERIOD_DAYS),
        "case list": Request("/cases", ('href="/cases/',)),
        "case list (case worker)": Request("/cases", ('href="/cases/',), as_case_worker=True),
    }


async def open_site(stack: AsyncExitStack, databases: Databases, size: int) -> Site:
    started = time.perf_counter()
    database = await databases.create()
    # The 1k site's sign-in must outlast the 100k load (over 30 minutes on a busy machine).
    settings = Settings(
        database_url=database.url, session_idle_minutes=SESSION_IDLE_MINUTES, _env_file=None
    )
    now = utcnow()
    today = now.astimezone(settings.tz).date()
    users, helpdesks = await create_staff_and_helpdesks(database)
    funds = await create_funds(database, now)
    forms = questionnaires(settings, today)
    workers = {users[u]: u for u, _, role in STAFF_USERS if role is Role.OPERATORE}
    planner = CasesPlanner(
        size, now=now, tz=settings.tz, helpdesks=helpdesks, workers=workers,
        coordinator=f"staff:{COORDINATOR}", forms=forms,
    )  # fmt: skip
    plan = planner.plan()
    extras = Extras(
        plan, size=size, now=now, settings=settings, workers=list(workers), funds=funds,
        forms=[f.answers for f in forms],
    )  # fmt: skip
    extras.cancellations_by_staff()
    rows = await load(database, plan, settings, forms, now)
    extras.unfinished()
    extras.refusals()
    extras.plans()
    rows |= {f"+{k}": v for k, v in (await load_extras(database, extras)).items()}

    counting_database = Database(database.url, cipher=database.cipher)
    stack.push_async_callback(counting_database.dispose)
    log = StatementLog(counting_database)
    app, counting_app = bench_app(settings, database), bench_app(settings, counting_database)
    clients, counting = {}, {}
    for as_case_worker, username in ((False, COORDINATOR), (True, VIEWER)):
        clients[as_case_worker] = await stack.enter_async_context(signed_in(app, username))
        counting[as_case_worker] = await stack.enter_async_context(
            signed_in(counting_app, username)
        )
    site = Site(
        size=size, database=database, settings=settings, clients=clients, counting=counting,
        log=log, requests=_requests(helpdesks[0]), setup_seconds=time.perf_counter() - started,
        rows=rows,
    )  # fmt: skip
    for kind, request in site.requests.items():
        url = site.url(kind)
        body = (await get(site.clients[request.as_case_worker], url)).text
        missing = [e for e in request.expect if e not in body]
        if missing:
            raise AssertionError(f"{kind}: GET {url} lacks {missing}")
    return site


async def keep_default_views(stack: AsyncExitStack, site: Site) -> None:
    """What `ripartire run` does at start: the default views computed and kept (timed
    here), then refreshed beside the requests by the component (its own task)."""
    start = time.perf_counter()
    done = await cache.refresh_default_views(
        database=site.database, settings=site.settings, now=utcnow(), draw=draw_charts
    )
    site.refreshed_seconds = time.perf_counter() - start
    if done.recomputed == 0:
        raise AssertionError("no default view was computed: the kept ones were fresh")
    component = cache.figures_cache_component(
        settings=site.settings, database=site.database, draw=draw_charts
    )
    await stack.enter_async_context(component.lifespan())


# --- measuring -------------------------------------------------------------------------


async def count_statements(site: Site) -> None:
    """SQL per request through the counting app (requested once before, then recorded)."""
    for kind, request in site.requests.items():
        client = site.counting[request.as_case_worker]
        await get(client, site.url(kind))
        site.log.reset()
        await get(client, site.url(kind))
        words = [keyword(s) for s in site.log.statements]
        dml = sum(1 for w in words if w in DML)
        listing = tuple(" ".join(s.split())[:100] for s in site.log.statements)
        site.counted[kind] = (dml, site.log.seconds * 1000, listing)


async def measure_latency(sites: Sequence[Site], options: Options) -> int:
    """Single GETs of every request type, interleaved over the data sets, order rotating.

    `options.repetitions` x BLOCKS rounds, fewer once LATENCY_SECONDS have passed (at
    least MIN_ROUNDS): at 100k a GET of the figures takes seconds on a loaded machine.
    """
    rounds = options.repetitions * BLOCKS
    steps = [(site, kind) for site in sites for kind in LATENCY]
    deadline = time.perf_counter() + LATENCY_SECONDS
    done = 0
    for number in range(options.warmup + rounds):
        shift = number % len(steps)
        for site, kind in steps[shift:] + steps[:shift]:
            request = site.requests[kind]
            client = site.clients[request.as_case_worker]
            url = site.url(kind)
            start = time.perf_counter()
            await get(client, url)
            if number >= options.warmup:
                site.latency[kind].append(time.perf_counter() - start)
        if number >= options.warmup:
            done += 1
            if done >= MIN_ROUNDS and time.perf_counter() > deadline:
                break
    return done


def _export_process(mode: str, url: str, output: Path) -> dict[str, Any]:
    """One run of `_export_process` in a fresh interpreter; its JSON report."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench._export_process", mode, url, str(output)],
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"export process ({mode}) failed:\n{done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["bytes"] = output.stat().st_size
    return report


async def measure_exports(sites: Sequence[Site], runs: int, workdir: Path) -> None:
    """`runs` rounds; in each, the export and both floors on each data set, in turn."""
    steps = [(site, mode) for site in sites for mode in EXPORT_MODES]
    for number in range(runs):
        shift = number % len(steps)
        for site, mode in steps[shift:] + steps[:shift]:
            output = workdir / f"{site.label}-{mode}.xlsx"
            report = await asyncio.to_thread(_export_process, mode, site.database.url, output)
            site.exports[mode].append(report)
    for site in sites:
        if site.size <= 1_000:
            check_export(site, workdir / f"{site.label}-export.xlsx")


def check_export(site: Site, path: Path) -> None:
    """The export read back: a header and one row per case (openpyxl, read-only)."""
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    workbook = load_workbook(path, read_only=True)
    try:
        rows = sum(1 for _ in workbook.worksheets[0].iter_rows(values_only=True))
    finally:
        workbook.close()
    cases = site.rows["case_file"]
    if rows != cases + 1:
        raise AssertionError(f"the cases export has {rows} rows for {cases} cases")


class LoadAverage:
    """The 1-minute load average sampled every 10 s while measuring."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    @asynccontextmanager
    async def sampling(self) -> AsyncIterator[None]:
        async def sample() -> None:
            while True:
                self.samples.append(os.getloadavg()[0])
                await asyncio.sleep(10)

        task = asyncio.create_task(sample())
        try:
            yield
        finally:
            task.cancel()

    def described(self) -> str:
        if not self.samples:
            return "-"
        return (
            f"{min(self.samples):.1f}-{max(self.samples):.1f} "
            f"(mean {statistics.mean(self.samples):.1f}, {len(self.samples)} samples)"
        )


# --- the report ------------------------------------------------------------------------


def report(sites: Sequence[Site], samples: int) -> None:
    large = sites[-1]
    print(
        f"latency of one GET (ms), {samples} interleaved samples per request and data set; "
        f"p95 = median of {BLOCKS} blocks' p95 (all: p95 of all samples)"
    )
    rows = []
    for site in sites:
        reference = _p95(site.latency["case list"])
        for kind in LATENCY:
            seconds = site.latency[kind]
            p95 = _p95(seconds)
            ratio = p95 / reference
            target = ""
            if kind in KEPT and site is large:
                target = verdict(ratio <= MAX_P95_OVER_LIST)
            rows.append([site.label, kind, f"{_p50(seconds):.1f}", f"{p95:.1f}",
                         f"{_percentile(seconds, 0.95):.1f}", f"{ratio:.2f}", target])  # fmt: skip
    print(table(["size", "request", "p50", "p95", "all", "p95 / case list", "target"], rows))
    print()
    print("SQL per request (through the counting app; SQL ms = time in the driver's execute)")
    rows = []
    for site in sites:
        for kind in LATENCY:
            statements, sql_ms, _ = site.counted[kind]
            target = verdict(statements <= MAX_STATEMENTS) if kind in FIGURES else ""
            rows.append([site.label, kind, str(statements), f"{sql_ms:.1f}", target])
    print(table(["size", "request", "statements", "SQL ms", "target"], rows))
    print()
    for kind in ("figures", "figures, not kept"):
        print(f"statements of {kind} on {large.label} cases:")
        for line in large.counted[kind][2]:
            print(f"    {line}")
        print()
    print(
        "cases XLSX export, each run in a fresh process: medians; MB = 2^20 bytes; "
        "baseline = VmRSS after the imports; peak = VmHWM after the write"
    )
    rows = []
    for site in sites:
        floor = statistics.median(r["seconds"] for r in site.exports["xlsxwriter"])
        cases = site.rows["case_file"]
        for mode in EXPORT_MODES:
            runs = site.exports[mode]
            seconds = statistics.median(r["seconds"] for r in runs)

            def mb(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return float(statistics.median(r[key] for r in runs)) / 1024

            peak, before = mb("peak_kb"), mb("before_kb")
            target = ""
            if mode == "export" and site is large:
                target = verdict(peak < MAX_PEAK_MB and floor / seconds >= MIN_EXPORT_OVER_FLOOR)
            rows.append([
                site.label, mode, str(len(runs)), f"{seconds:.2f}",
                f"{max(r['seconds'] for r in runs):.2f}", f"{cases / seconds:,.0f}",
                f"{floor / seconds:.2f}", f"{mb('baseline_kb'):.0f}", f"{before:.0f}",
                f"{peak:.0f}", f"{peak - before:.0f}", f"{mb('maxrss_kb'):.0f}",
                f"{statistics.median(r['bytes'] for r in runs) / 2**20:.1f}", target,
            ])  # fmt: skip
    print(table(["size", "run", "n", "s", "max s", "rows/s", "xlsxwriter floor / this",
                 "baseline MB", "before MB", "peak MB", "growth MB", "maxrss MB", "file MB",
                 "target"], rows))  # fmt: skip
    print()
    reference = _p95(large.latency["case list"])
    worst = max(_p95(large.latency[k]) for k in KEPT) / reference
    computed = max(_p95(large.latency[k]) for k in NOT_KEPT) / reference
    most = max(large.counted[k][0] for k in FIGURES)
    export = large.exports["export"]
    peak = statistics.median(r["peak_kb"] for r in export) / 1024
    ratio = statistics.median(r["seconds"] for r in large.exports["xlsxwriter"]) / (
        statistics.median(r["seconds"] for r in export)
    )
    label = large.label
    print(f"{'/figures kept p95 <= 2 x case list p95 (' + label + '):':<46}{worst:.2f}  "
          f"{verdict(worst <= MAX_P95_OVER_LIST)}")  # fmt: skip
    print(f"{'/figures not kept, p95 / case list p95 (' + label + '):':<46}{computed:.2f}  "
          "(computed at request time: no target)")  # fmt: skip
    print(f"{'/figures statements <= 12 (' + label + '):':<46}{most}  "
          f"{verdict(most <= MAX_STATEMENTS)}")  # fmt: skip
    print(f"{'export peak RSS < 150 MB (' + label + '):':<46}{peak:.0f} MB  "
          f"{verdict(peak < MAX_PEAK_MB)}")  # fmt: skip
    print(f"{'export >= 0.5 x xlsxwriter floor (' + label + '):':<46}{ratio:.2f}  "
          f"{verdict(ratio >= MIN_EXPORT_OVER_FLOOR)}")  # fmt: skip


GROUP_RUNS = 5


async def time_groups(site: Site) -> dict[str, float]:
    """Median ms of each figure group's service call and of `service.figures` as a whole
    (the page's default filter), outside the app: what the page's numbers cost."""
    settings = Settings(database_url=site.database.url, _env_file=None)
    now = utcnow()
    period = Period.last_months(now.astimezone(settings.tz).date())
    calls: dict[str, Any] = {
        "funnel": funnel.funnel, "screening": screening.screening,
        "bookings": bookings.bookings, "deadlines": deadlines.deadlines,
        "interventions": interventions.interventions, "funds": fund_figures.funds,
        "outcomes": outcomes.outcomes, "service.figures (all)": service.figures,
    }  # fmt: skip
    found: dict[str, list[float]] = defaultdict(list)
    for _ in range(GROUP_RUNS):
        for name, call in calls.items():

            async def one(session: AsyncSession, call: Any = call) -> object:
                return await call(session=session, settings=settings, period=period, now=now)

            found[name].append(await timed(site.database, one))
    return {name: statistics.median(seconds) * 1000 for name, seconds in found.items()}


PROFILED = 10


async def profile(site: Site) -> None:
    """cProfile of GETs of /figures as it opens: the top functions by own time."""
    request = site.requests["figures"]
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(PROFILED):
        await get(site.clients[False], request.url)  # kept: the page as served
    profiler.disable()
    wall = (time.perf_counter() - start) / PROFILED * 1000
    print(f"cProfile of {PROFILED} GETs of /figures, {site.label} cases: {wall:.1f} ms per GET")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(15)
    lines = out.getvalue().splitlines()
    first = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\n".join(lines[first : first + 16]))


def _rows_line(site: Site) -> Iterator[str]:
    for name, count in site.rows.items():
        yield f"{name} {count:,}"


async def run(databases: Databases, options: Options) -> None:
    load_average = LoadAverage()
    async with AsyncExitStack() as stack:
        sites: list[Site] = []
        for size in SIZES:
            site = await open_site(stack, databases, size)
            print(
                f"  {size:>7,} cases in {site.setup_seconds:.0f} s: {', '.join(_rows_line(site))}"
            )
            sites.append(site)
        print(f"signed in as {COORDINATOR} (figures, case list) and {VIEWER} (case list)\n")
        for site in sites:
            await keep_default_views(stack, site)
            print(
                f"  {site.label}: the default views computed, drawn and kept in "
                f"{site.refreshed_seconds:.1f} s (then refreshed every minute if half expired)"
            )
        for site in sites:
            await count_statements(site)
        gc.collect()
        gc.freeze()
        try:
            async with load_average.sampling():
                samples = await measure_latency(sites, options)
                with tempfile.TemporaryDirectory(prefix="ripartire_export_") as workdir:
                    await measure_exports(sites, 3 if options.quick else 7, Path(workdir))
        finally:
            gc.unfreeze()
        report(sites, samples)
        for site in sites:
            groups = await time_groups(site)
            print(f"\nthe figures' services at {site.label}, outside the app (median ms of "
                  f"{GROUP_RUNS}): " + ", ".join(f"{k} {v:.1f}" for k, v in groups.items()))  # fmt: skip
        print(f"\nload average (1 min) while measuring: {load_average.described()}")
        if options.profile:
            print()
            await profile(sites[-1])
