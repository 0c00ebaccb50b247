"""The plan page and the plans list through the real FastAPI app, with 1k and 100k plans.

The method is the staff dashboard's (`bench_dashboard`, docs/benchmarks.md): one fresh
database and app per data set, both open and measured interleaved, driven in-process by
`httpx.AsyncClient` over `ASGITransport`, signed in through `/login` like a browser; the
same floor page (imported from there) on the same app instance. Three measures:

1. Latency of single GETs of the plan page `/cases/{id}/plan` and of the plans list: a
   case worker's `/plans` (every plan they may see, the most recently changed first), its
   keyset next pages at every depth, a state and an intervention filter, and a
   coordinator's `/plans` (their queue: the submitted plans, the oldest first). p50 and
   p95; target: p95 at 100k <= 1.5 x p95 at 1k.
2. Requests per second of plan pages as loops of sequential GETs, against the floor.
   Target: plan page >= 0.5 x the floor's requests per second.
3. SQL statements per request, the sign-in session's two included, counted on a second
   engine and app over the same database. Target <= 6.

Setup writes the rows with Core `insert()` in chunks, as the services would have: a
citizen and an admitted case per plan, the plan in a realistic mix of states with its
objectives, commitments, supports (details validated and priced by the catalog's own
`parse_details` and `amount_cents`), team, kept changes after approval, signed scans,
and the audit events of starting and reading it.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

import httpx
from markupsafe import escape
from sqlalchemy import Table, func, select, text

from shared.audit import hashing as audit_hashing
from shared.audit.hashing import GENESIS
from shared.audit.models import AuditEvent
from shared.cases.models import Case, CaseState
from shared.citizens.models import Channel, Citizen
from shared.db import Base, Database, utcnow
from shared.funds.models import Fund
from shared.plans import catalog
from shared.plans.catalog import Kind
from shared.plans.models import (
    Plan,
    PlanChange,
    PlanCommitment,
    PlanObjective,
    PlanState,
    PlanSupport,
    PlanTeamMember,
    SignedScan,
    SupportState,
)
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role
from tests.bench._support import Databases, Options, table, verdict
from tests.bench.bench_dashboard import (
    BLOCKS,
    DML,
    LOOP,
    LOOP_SECONDS,
    MAX_P95_GROWTH,
    MEN,
    PASSWORD,
    STAFF_USERS,
    SURNAME_WEIGHTS,
    SURNAMES,
    WOMEN,
    StatementLog,
    _insert,
    _pick,
    bench_app,
    get,
    keyword,
    print_latency,
    signed_in,
)

TITLE = "Plan page and plans list"

SIZES = (1_000, 100_000)
SEED = 20261202
VIEWER = "operatore1"
COORDINATOR = "coordinatore1"
POOL = 60
PLAN_POOL = 100

# Targets.
MIN_PAGE_OVER_FLOOR = 0.5
MAX_STATEMENTS = 6

LATENCY = (
    "plan page",
    "list",
    "list, next page",
    "list: state",
    "list: support",
    "queue (coordinator)",
)
PAGES = ("plan page", "floor")
COUNTED = (*LATENCY, "floor")
AS_COORDINATOR = frozenset({"queue (coordinator)"})

# (state, share): most plans are active or closed, a few wait for a decision.
STATES = (
    (PlanState.DRAFT, 12), (PlanState.SUBMITTED, 6), (PlanState.RETURNED, 3),
    (PlanState.APPROVED, 6), (PlanState.ACTIVE, 45), (PlanState.CLOSED, 28),
)  # fmt: skip
KINDS = (
    (Kind.JOB_SEARCH, 34), (Kind.EMERGENCY_SUPPORT, 22), (Kind.BENEFITS, 14),
    (Kind.PSYCHOLOGICAL_SUPPORT, 12), (Kind.INTERNSHIP, 10), (Kind.MICROCREDIT, 8),
)  # fmt: skip
# Details as the editor sends them, validated by the catalog at setup.
DETAILS: dict[Kind, tuple[dict[str, list[str]], ...]] = {
    Kind.JOB_SEARCH: (
        {"activities": ["cv", "orientation"], "job_centre": ["yes"]},
        {"activities": ["workshops", "job_matches"], "job_centre": ["no"],
         "notes": ["Disponibile a turni, non ha l'auto."]},
    ),
    Kind.EMERGENCY_SUPPORT: (
        {"form": ["monthly"], "monthly_amount": ["300"], "months": ["3"], "purpose": ["rent"],
         "paid_to": ["landlord"], "payee": ["Immobiliare Naviglio"]},
        {"form": ["one_off"], "one_off_amount": ["450,50"], "purpose": ["utilities", "food"],
         "paid_to": ["utility"], "payee": ["A2A Energia"]},
    ),
    Kind.BENEFITS: ({"benefit": ["adi"], "application_state": ["submitted"]},),
    Kind.PSYCHOLOGICAL_SUPPORT: (
        {"provider": ["CPS – Centro psicosociale di Cernusco"], "sessions_planned": ["8"],
         "sessions_attended": ["2"]},
    ),
    Kind.INTERNSHIP: (
        {"promoter": ["AFOL Metropolitana"], "host": ["Cooperativa Il Giglio"],
         "hours_per_week": ["25"], "monthly_allowance": ["500"]},
    ),
    Kind.MICROCREDIT: (
        {"kind": ["social"], "amount_requested": ["3000"], "duration_months": ["36"],
         "lender": ["Banca di Credito Cooperativo"], "application_state": ["to_prepare"]},
    ),
}  # fmt: skip
OBJECTIVES = (
    ("Trovare un lavoro stabile", "Un contratto di almeno sei mesi"),
    ("Pagare l'affitto arretrato", "Nessun arretrato entro marzo"),
    ("Ottenere l'assegno di inclusione", "Domanda accolta dall'INPS"),
    ("Riprendere l'attività di parrucchiera", "Il negozio riaperto"),
    ("Imparare a usare il computer", "Il corso di base concluso"),
)
COMMITMENTS = (
    "Aggiornare il curriculum", "Andare ai colloqui del Centro per l'impiego",
    "Portare l'ISEE aggiornato", "Partecipare al laboratorio di ricerca attiva",
    "Tenere i contatti con l'assistente sociale",
)  # fmt: skip
ROLES = ("Case manager", "Tutor del tirocinio", "Psicologa", "Orientatore")
PDF = b"%PDF-1.4\n" + b"0" * 2_000 + b"\n%%EOF\n"
FUNDS = ("Doniamo Energia", "Fondo Ripartire", "Fondo emergenza abitativa", "Fondo tirocini")


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


@dataclass(slots=True)
class Planned:
    """One plan as written, with what its pages must show."""

    case_id: int
    plan_id: int
    state: PlanState
    owner_id: int | None
    citizen: str
    updated_at: datetime
    submitted_at: datetime | None
    kinds: list[str]


@dataclass(slots=True)
class Written:
    plans: list[Planned] = field(default_factory=list)
    rows: Counter[str] = field(default_factory=Counter)


def _details() -> dict[Kind, list[tuple[dict[str, Any], Any]]]:
    """Each template: the stored details and the parsed model (to price it)."""
    made: dict[Kind, list[tuple[dict[str, Any], Any]]] = {}
    for kind, templates in DETAILS.items():
        made[kind] = []
        for fields in templates:
            parsed = catalog.parse_details(kind, fields)
            made[kind].append((catalog.stored_details(parsed), parsed))
    return made


class Generator:
    """Citizens, cases and plans with their rows, from a seeded random generator."""

    def __init__(
        self, size: int, *, now: datetime, workers: Sequence[int], boss: str, funds: Sequence[int]
    ) -> None:
        self.size = size
        self.rng = random.Random(SEED + size)
        self.now = now
        self.workers = list(workers)
        self.boss = boss
        self.funds = list(funds)
        self.details = _details()
        self.written = Written()
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.ids: Counter[str] = Counter()

    def _id(self, name: str) -> int:
        self.ids[name] += 1
        return self.ids[name]

    def _name(self) -> str:
        rng = self.rng
        first = _pick(rng, WOMEN if rng.random() < 0.52 else MEN)
        return f"{first} {rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]}"

    def plan(self, n: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """The rows of the n-th plan, as (table, row)."""
        rng, now = self.rng, self.now
        state = PlanState(_pick(rng, [(s.value, w) for s, w in STATES]))
        created = now - timedelta(days=rng.uniform(5, 600), minutes=rng.uniform(0, 600))
        name = self._name()
        yield "citizen", {
            "id": n, "channel": Channel.TELEGRAM.value, "language": "it", "name": name,
            "phone": f"+39333{n:07d}", "urgent": False, "unreachable": False,
            "created_at": created - timedelta(days=30), "updated_at": created,
        }  # fmt: skip
        owner = rng.choice(self.workers) if rng.random() < 0.93 else None
        closed = state is PlanState.CLOSED
        yield "case_file", {
            "id": n, "citizen_id": n, "eligible": True, "urgent": rng.random() < 0.2,
            "state": CaseState.CLOSED.value if closed else CaseState.INTERVIEWED.value,
            "assigned_to_id": owner, "no_shows": 0, "opened_at": created - timedelta(days=20),
            "updated_at": created, "closed_at": None, "close_reason": None,
        }  # fmt: skip
        worker = f"staff:{owner or self.workers[0]}"
        at = created
        steps: list[tuple[datetime, str, dict[str, Any], dict[str, Any]]] = []
        plan: dict[str, Any] = {
            "id": n, "case_id": n, "state": state.value, "version": 1,
            "summary": "Ha perso il lavoro nel 2021; affitto arretrato di due mesi.",
            "owner_id": owner, "next_review_on": None, "created_at": created,
            "submitted_at": None, "decided_at": None, "decided_by": None,
            "return_comment": None, "approved_at": None, "signed_on": None,
            "activated_at": None, "closed_at": None, "outcome": None, "outcome_notes": None,
            "income_trend": None, "debts_trend": None, "urgent_expenses_trend": None,
        }  # fmt: skip
        if state is not PlanState.DRAFT:
            at += timedelta(days=rng.uniform(1, 10))
            plan["submitted_at"] = at
        if state is PlanState.RETURNED:
            at += timedelta(days=rng.uniform(1, 5))
            plan |= {"decided_at": at, "decided_by": self.boss,
                     "return_comment": "Manca la data di fine del sostegno."}  # fmt: skip
        approved = state in (PlanState.APPROVED, PlanState.ACTIVE, PlanState.CLOSED)
        if approved:
            at += timedelta(days=rng.uniform(1, 5))
            plan |= {"decided_at": at, "decided_by": self.boss, "approved_at": at}
            steps.append((at, self.boss, {"state": "submitted"}, {"state": "approved",
                                                                   "version": 1}))  # fmt: skip
        if state in (PlanState.ACTIVE, PlanState.CLOSED):
            at += timedelta(days=rng.uniform(1, 10))
            review = (at + timedelta(days=90)).date()
            plan |= {"signed_on": at.date(), "activated_at": at, "next_review_on": review}
            steps.append((at, worker, {"state": "approved"}, {"state": "active"}))
        if closed:
            at += timedelta(days=rng.uniform(60, 200))
            plan |= {"closed_at": at, "outcome": "employed", "income_trend": "better",
                     "debts_trend": "same", "urgent_expenses_trend": "better"}  # fmt: skip
            steps.append((at, worker, {"state": "active"}, {"state": "closed",
                                                             "outcome": "employed"}))  # fmt: skip
        updated = min(at + timedelta(hours=rng.uniform(0, 48)), now)
        plan["updated_at"] = updated
        yield "plan", plan
        for position in range(rng.choice((1, 1, 2, 2, 3))):
            objective, result = rng.choice(OBJECTIVES)
            yield "plan_objective", {"id": self._id("objective"), "plan_id": n,
                                     "position": position, "objective": objective,
                                     "expected_result": result}  # fmt: skip
        for position in range(rng.choice((1, 2, 2, 3, 4))):
            due = (created + timedelta(days=rng.uniform(20, 120))).date()
            yield "plan_commitment", {"id": self._id("commitment"), "plan_id": n,
                                      "position": position, "what": rng.choice(COMMITMENTS),
                                      "due_on": due if rng.random() < 0.7 else None}  # fmt: skip
        kinds: list[str] = []
        support_state = {
            PlanState.ACTIVE: SupportState.ACTIVE, PlanState.CLOSED: SupportState.COMPLETED
        }.get(state, SupportState.PROPOSED)  # fmt: skip
        for position in range(rng.choice((1, 1, 2, 2, 2, 3, 4))):
            kind = Kind(_pick(rng, [(k.value, w) for k, w in KINDS]))
            stored, parsed = rng.choice(self.details[kind])
            starts = (created + timedelta(days=rng.uniform(7, 30))).date()
            ends = starts + timedelta(days=rng.choice((60, 90, 180, 365)))
            cents = catalog.amount_cents(kind, parsed, starts, ends)
            kept = support_state
            if state is PlanState.CLOSED and rng.random() < 0.1:
                kept = SupportState.CANCELLED
            support_id = self._id("support")
            row = {
                "id": support_id, "plan_id": n, "position": position, "kind": kind.value,
                "details": stored, "responsible_id": owner if kind is Kind.JOB_SEARCH else None,
                "organisation": None if kind is Kind.JOB_SEARCH and owner
                else catalog.intervention(kind).organisation,
                "starts_on": starts, "ends_on": ends, "state": kept.value,
                "fund_id": rng.choice(self.funds) if cents else None, "amount_cents": cents,
            }  # fmt: skip
            yield "plan_support", row
            if kept is not SupportState.CANCELLED and kind.value not in kinds:
                kinds.append(kind.value)
            if approved and rng.random() < 0.25:
                # A change kept after approval: the support's end moved.
                before = {"ends_on": ends.isoformat(), "state": kept.value}
                after = {"ends_on": (ends + timedelta(days=30)).isoformat(), "state": kept.value}
                steps.append((updated, worker, before | {"kind": kind.value},
                              after | {"kind": kind.value}))  # fmt: skip
        for position in range(rng.choice((0, 1, 1, 2))):
            member = rng.random() < 0.5 and owner is not None
            yield "plan_team_member", {
                "id": self._id("team"), "plan_id": n, "position": position,
                "staff_id": owner if member else None, "name": None if member else self._name(),
                "organisation": None if member else "farsi_prossimo", "role": rng.choice(ROLES),
            }  # fmt: skip
        for when, actor, before, after in sorted(steps, key=lambda s: s[0]):
            what = "support" if "kind" in after else "state"
            yield "plan_change", {"id": self._id("change"), "plan_id": n, "at": when,
                                  "actor": actor, "what": what, "item_id": None,
                                  "before": before, "after": after,
                                  "material": False}  # fmt: skip
        if state in (PlanState.ACTIVE, PlanState.CLOSED) and rng.random() < 0.8:
            yield "plan_signed_scan", {
                "id": self._id("scan"), "plan_id": n, "version": 1,
                "media_type": "application/pdf", "size_bytes": len(PDF), "sha256": "0" * 64,
                "content": PDF, "uploaded_at": plan["activated_at"], "uploaded_by": worker,
            }  # fmt: skip
        for action, when in (("plan.start", created), ("plan.read", updated)):
            yield "audit_event", {"at": when, "actor": worker, "action": action,
                                  "object_type": "case", "object_id": str(n),
                                  "details": {"plan_id": n}}  # fmt: skip
        self.written.plans.append(
            Planned(n, n, state, owner, name, updated, plan["submitted_at"], kinds)
        )


TABLES = {
    t.name: t
    for t in map(
        _table,
        (Citizen, Case, Plan, PlanObjective, PlanCommitment, PlanSupport, PlanTeamMember,
         PlanChange, SignedScan, AuditEvent),
    )
}  # fmt: skip
WITH_IDS = tuple(name for name in TABLES if name != "audit_event")


async def load(database: Database, generator: Generator) -> Written:
    """Write every plan, table by table (the foreign keys' order), in chunks."""
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for n in range(1, generator.size + 1):
        for name, row in generator.plan(n):
            by_table[name].append(row)
    async with database.engine.begin() as connection:
        # The events chained as the service chains them (into an empty log).
        by_table["audit_event"] = list(audit_hashing.link(by_table["audit_event"], GENESIS))
        for name, target in TABLES.items():
            generator.written.rows[name] = await _insert(connection, target, by_table[name])
        if not database.is_sqlite:
            for name in WITH_IDS:
                await connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))"
                    )
                )
        await connection.execute(text("ANALYZE"))
        stored = await connection.execute(select(func.count()).select_from(TABLES["plan"]))
        if stored.scalar_one() != generator.size:
            raise AssertionError("the plans stored are not the plans generated")
    return generator.written


# --- the benchmark ---------------------------------------------------------------------


@dataclass(slots=True)
class Request:
    url: str
    expect: tuple[str, ...]
    as_coordinator: bool = False


@dataclass(slots=True)
class Site:
    size: int
    database: Database
    clients: dict[bool, httpx.AsyncClient]  # by "as a coordinator"
    counting: dict[bool, httpx.AsyncClient]
    log: StatementLog
    requests: dict[str, list[Request]]
    setup_seconds: float
    rows: Counter[str]
    turn: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rates: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    counted: dict[str, tuple[int, float, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.size // 1000}k"

    def next_request(self, kind: str) -> Request:
        pool = self.requests[kind]
        number = self.turn[kind]
        self.turn[kind] += 1
        return pool[number % len(pool)]

    def client(self, request: Request) -> httpx.AsyncClient:
        return self.clients[request.as_coordinator]


def _cursor(at: datetime, plan_id: int) -> str:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return f"{(at - epoch) // timedelta(microseconds=1)}-{plan_id}"


def _requests(written: Written, viewer: int, rng: random.Random) -> dict[str, list[Request]]:
    visible = [p for p in written.plans if p.owner_id in (None, viewer)]
    newest = sorted(visible, key=lambda p: (p.updated_at, p.plan_id), reverse=True)
    pages = len(newest) // 25
    depths = sorted({1 + k * (pages - 2) // (POOL - 1) for k in range(POOL)})

    def after(depth: int) -> str:
        last = newest[depth * 25 - 1]
        return _cursor(last.updated_at, last.plan_id)

    def link(plan: Planned) -> str:
        return f'href="/cases/{plan.case_id}/plan"'

    queue = sorted(
        (p for p in written.plans if p.state is PlanState.SUBMITTED),
        key=lambda p: (p.submitted_at or p.updated_at, p.plan_id),
    )
    active = [p for p in newest if p.state is PlanState.ACTIVE]
    interning = [p for p in newest if Kind.INTERNSHIP.value in p.kinds]
    shown = rng.sample(visible, PLAN_POOL)
    return {
        "plan page": [
            Request(f"/cases/{p.case_id}/plan", (str(escape(p.citizen)),)) for p in shown
        ],
        "list": [Request("/plans", (link(newest[0]), link(newest[24])))],
        "list, next page": [
            Request(
                "/plans?" + urlencode({"state": "", "owner": "", "kind": "", "after": after(d)}),
                (link(newest[d * 25]),),
            )
            for d in depths
        ],
        "list: state": [Request("/plans?state=active", (link(active[0]),))],
        "list: support": [Request("/plans?kind=internship", (link(interning[0]),))],
        "queue (coordinator)": [Request("/plans", (link(queue[0]),), as_coordinator=True)],
        "floor": [Request("/bench/floor", tuple(name for _, name, _ in STAFF_USERS))],
    }


async def create_staff_and_funds(database: Database, now: datetime) -> dict[str, int]:
    async with database.transaction() as session:
        users = {}
        for username, name, role in STAFF_USERS:
            made = await staff.add_user(
                session=session, username=username, password=PASSWORD, role=role, display_name=name
            )
            users[username] = made.id
    async with database.engine.begin() as connection:
        await _insert(
            connection,
            _table(Fund),
            (
                {"id": n, "name": name, "funder": "Fondazione Cariplo", "active": n < 4,
                 "created_at": now - timedelta(days=700), "deposited_cents": 10**12,
                 "committed_cents": 0, "paid_cents": 0}
                for n, name in enumerate(FUNDS, start=1)
            ),
        )  # fmt: skip
        if not database.is_sqlite:
            await connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('fund', 'id'), (SELECT max(id) FROM fund))"
                )
            )
    return users


async def open_site(stack: AsyncExitStack, databases: Databases, size: int) -> Site:
    started = time.perf_counter()
    database = await databases.create()
    settings = Settings(database_url=database.url, _env_file=None)
    now = utcnow()
    users = await create_staff_and_funds(database, now)
    workers = [users[u] for u, _, role in STAFF_USERS if role is Role.OPERATORE]
    generator = Generator(
        size, now=now, workers=workers, boss=f"staff:{COORDINATOR}", funds=(1, 2, 3)
    )
    written = await load(database, generator)
    counting_database = Database(database.url, cipher=database.cipher)
    stack.push_async_callback(counting_database.dispose)
    log = StatementLog(counting_database)
    app, counting_app = bench_app(settings, database), bench_app(settings, counting_database)
    clients, counting = {}, {}
    for as_coordinator, username in ((False, VIEWER), (True, COORDINATOR)):
        clients[as_coordinator] = await stack.enter_async_context(signed_in(app, username))
        counting[as_coordinator] = await stack.enter_async_context(
            signed_in(counting_app, username)
        )
    site = Site(
        size=size, database=database, clients=clients, counting=counting, log=log,
        requests=_requests(written, users[VIEWER], random.Random(SEED - size)),
        setup_seconds=time.perf_counter() - started, rows=written.rows,
    )  # fmt: skip
    await check_pages(site)
    return site


async def check_pages(site: Site) -> None:
    """Every URL answers 200 with what it should show (also the warm-up of every query)."""
    for kind, pool in site.requests.items():
        for request in pool:
            body = (await get(site.client(request), request.url)).text
            missing = [e for e in request.expect if e not in body]
            if missing:
                raise AssertionError(f"{kind}: GET {request.url} lacks {missing[:3]}")


async def count_statements(site: Site) -> None:
    """SQL per request type through the counting app (5 URLs each, the most is kept)."""
    for kind in COUNTED:
        seen: list[tuple[int, float, tuple[str, ...]]] = []
        for request in site.requests[kind][:5]:
            await get(site.counting[request.as_coordinator], request.url)
        for request in site.requests[kind][:5]:
            site.log.reset()
            await get(site.counting[request.as_coordinator], request.url)
            dml = sum(1 for s in site.log.statements if keyword(s) in DML)
            listing = tuple(" ".join(s.split())[:100] for s in site.log.statements)
            seen.append((dml, site.log.seconds * 1000, listing))
        most = max(seen, key=lambda s: s[0])
        site.counted[kind] = (most[0], statistics.median(s[1] for s in seen), most[2])


async def measure_latency(sites: Sequence[Site], options: Options) -> int:
    rounds = options.repetitions * BLOCKS
    steps = [(site, kind) for site in sites for kind in LATENCY]
    for number in range(options.warmup + rounds):
        shift = number % len(steps)
        for site, kind in steps[shift:] + steps[:shift]:
            request = site.next_request(kind)
            start = time.perf_counter()
            await get(site.client(request), request.url)
            if number >= options.warmup:
                site.latency[kind].append(time.perf_counter() - start)
    return rounds


async def _loop(site: Site, page: str) -> float:
    done = 0
    start = time.perf_counter()
    for _ in range(LOOP):
        request = site.next_request(page)
        await get(site.client(request), request.url)
        done += 1
        if time.perf_counter() > start + LOOP_SECONDS:
            break
    return done / (time.perf_counter() - start)


async def measure_rates(sites: Sequence[Site], options: Options) -> int:
    steps = [(site, page) for site in sites for page in PAGES]
    for number in range(options.warmup + options.repetitions):
        shift = number % len(steps)
        for site, page in steps[shift:] + steps[:shift]:
            rate = await _loop(site, page)
            if number >= options.warmup:
                site.rates[page].append(rate)
    return options.repetitions


def report(sites: Sequence[Site], samples: int, repetitions: int) -> None:
    small, large = sites[0], sites[-1]
    a, b = small.label, large.label
    verdicts = print_latency(sites, LATENCY, samples)
    print(f"requests/s: median of {repetitions} loops of {LOOP} sequential GETs")
    rows, page_ok = [], True
    for page in PAGES:
        row = [page]
        for site in sites:
            rate = statistics.median(site.rates[page])
            ratio = rate / statistics.median(site.rates["floor"])
            row += [f"{rate:.0f}", f"{ratio:.2f}"]
            if page != "floor":
                page_ok = page_ok and ratio >= MIN_PAGE_OVER_FLOOR
        growth = statistics.median(large.rates[page]) / statistics.median(small.rates[page])
        rows.append([*row, f"{growth:.2f}", "" if page == "floor" else verdict(page_ok)])
    headers = ["page"]
    for site in sites:
        headers += [f"{site.label} req/s", "/floor"]
    print(table([*headers, f"{b}/{a}", "target"], rows))
    print()
    print("SQL per request (most of 5 URLs; sign-in session included; SQL ms = median time")
    print("in the driver's execute calls)")
    rows, count_ok = [], True
    for kind in COUNTED:
        row = [kind]
        for site in sites:
            statements, ms, _listing = site.counted[kind]
            row += [str(statements), f"{ms:.1f}"]
        most = max(site.counted[kind][0] for site in sites)
        if kind != "floor":
            count_ok = count_ok and most <= MAX_STATEMENTS
        rows.append([*row, verdict(most <= MAX_STATEMENTS)])
    headers = ["request"]
    for site in sites:
        headers += [f"{site.label} statements", "SQL ms"]
    print(table([*headers, "target"], rows))
    print()
    print(f"statements of each request on {b} plans:")
    for kind in COUNTED:
        print(f"  {kind}:")
        for line in large.counted[kind][2]:
            print(f"    {line}")
    print()
    print(f"p95 {b}/{a} <= {MAX_P95_GROWTH:g}:".ljust(36)
          + f"{sum(verdicts)}/{len(verdicts)} request types  {verdict(all(verdicts))}")  # fmt: skip
    print(f"plan page >= {MIN_PAGE_OVER_FLOOR:g} x floor req/s:".ljust(36) + verdict(page_ok))
    print(f"SQL statements per request <= {MAX_STATEMENTS}:".ljust(36) + verdict(count_ok))


async def run(databases: Databases, options: Options) -> None:
    async with AsyncExitStack() as stack:
        sites: list[Site] = []
        for size in SIZES:
            site = await open_site(stack, databases, size)
            rows = ", ".join(f"{name} {count:,}" for name, count in site.rows.items())
            print(f"  {size:>7,} plans in {site.setup_seconds:.0f} s: {rows}")
            sites.append(site)
        print(
            f"signed in as {VIEWER} (an operatore: own and unassigned cases) and, for the "
            f"queue, {COORDINATOR}\n"
        )
        for site in sites:
            await count_statements(site)
        gc.collect()
        gc.freeze()
        try:
            samples = await measure_latency(sites, options)
            repetitions = await measure_rates(sites, options)
        finally:
            gc.unfreeze()
        report(sites, samples, repetitions)
