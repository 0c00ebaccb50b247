"""The staff dashboard through the real FastAPI app, with 1k and with 100k cases.

Each data set lives in its own fresh database with its own app (`dashboard.app.create_app`),
driven in-process by an `httpx.AsyncClient` over `ASGITransport` and signed in through
`/login` like a browser (cookies kept) as a case worker: an operatore, who sees their own
and the unassigned cases. Both data sets stay open and every measure is interleaved over
them, so that the machine's noise hits both alike. Three measures:

1. Latency of single GETs of the case list (the first page, and keyset "next" pages at
   every depth of the list) and of the search box (a full name, a surname, a phone number,
   a fiscal code, a booking code): p50 and p95. Target: p95 at 100k <= 1.5 x p95 at 1k.
2. Requests per second of the agenda (the day with 20 bookings) and of case pages, as
   loops of sequential GETs (and as a few concurrent clients), against a floor page added
   here to the same app instance, not to the product: TechEmpower-Fortunes style, one
   query of the dozen staff accounts rendered by a small Jinja2 template, behind the same
   dependencies as every page (session cookie, role check, CSRF, one unit of work).
   Target: agenda and case pages >= 0.5 x the floor's requests per second.
3. SQL statements per page, counted by a `before_cursor_execute` listener on a second
   engine and app over the same database (the timed app carries no listener). Target <= 5.

Setup writes straight to the tables with Core `insert()` in chunks, not through the
services (which would take hours for 100k cases), but writes what they would: questionnaire
answers normalised by the questionnaire's own validators and assessed by `assess`, contacts
copied to the citizen, the case's name index from `shared.cases.search.name_terms` (checked
against `index_names` after the load), the current appointment copied to the case, slot rows
whose `taken` counts the bookings holding a place, and the audit events and outbox messages
the booking and case services record on the way.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import pstats
import random
import statistics
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Annotated, Any, Protocol, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from codicefiscale import codicefiscale
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from markupsafe import escape
from sqlalchemy import Table, event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dashboard.app import create_app
from dashboard.deps import STAFF, Session, Viewer, allow
from shared.audit import hashing as audit_hashing
from shared.audit.hashing import GENESIS
from shared.audit.models import AuditEvent
from shared.booking import hours
from shared.booking.models import REPEATED_NO_SHOWS, Booking, BookingState, Slot
from shared.booking.places import CODE_ALPHABET, CODE_LENGTH
from shared.cases import interview as interview_form
from shared.cases.demo import CANDIDATES
from shared.cases.listing import _BY_OPENING, encode_cursor
from shared.cases.models import Case, CaseNamePrefix, CaseState, Interview, Outcome
from shared.cases.search import index_names, name_terms
from shared.citizens.models import Channel, Citizen
from shared.citizens.service import PRIVACY_NOTICE_VERSION
from shared.db import Base, Database, utcnow
from shared.intake.models import Intake, IntakeState
from shared.intake.questionnaire import QUESTIONNAIRE, assess
from shared.intake.validators import (
    validate,
    validate_email,
    validate_fiscal_code,
    validate_name,
    validate_phone,
)
from shared.outbox.models import MessageState, OutboxMessage
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role
from tests.bench._support import Databases, Options, table, verdict

TITLE = "Staff dashboard"

SIZES = (1_000, 100_000)
SEED = 20261124
CHUNK = 5_000
PROGRAM_DAYS = 700  # cases were opened over the last ~two years
RETURNING_SHARE = 0.015  # cases of citizens who came back after a closed case
PLACES = 6
SLOT = timedelta(minutes=30)
SLOT_TIMES = tuple(clock(h, m) for h in (9, 10, 11, 12, 14, 15, 16) for m in (0, 30))
# The agenda's day: 20 bookings at the first helpdesk, none anywhere else that day.
PLANTED_TIMES = tuple(
    clock(h, m)
    for h, m in (
        (9, 0), (9, 0), (9, 30), (10, 0), (10, 0), (10, 30), (11, 0), (11, 30), (11, 30),
        (12, 0), (12, 30), (14, 0), (14, 0), (14, 30), (15, 0), (15, 30), (15, 30), (16, 0),
        (16, 0), (16, 30),
    )
)  # fmt: skip
PASSWORD = "correct horse battery staple"
VIEWER = "operatore1"
POOL = 60  # distinct URLs per request type, used in turn
CASE_POOL = 100
LOOP = 20  # GETs per timed loop
LOOP_SECONDS = 3.0  # ... unless it takes longer
CLIENTS = 4  # concurrent clients of the concurrent loops
# Latency is sampled in this many blocks of `repetitions` rounds; a p95 is the median of the
# blocks' p95, so that a burst of load from the machine's other tenants does not decide it.
BLOCKS = 8

# Targets.
MAX_P95_GROWTH = 1.5
MIN_PAGE_OVER_FLOOR = 0.5
MAX_STATEMENTS = 5

LATENCY = (
    "list",
    "list, next page",
    "search: full name",
    "search: surname",
    "search: phone",
    "search: fiscal code",
    "search: booking code",
)
PAGES = ("agenda", "case", "floor")
COUNTED = (*LATENCY, *PAGES)
DML = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"})

BOOKED = BookingState.BOOKED.value
ATTENDED = BookingState.ATTENDED.value
NO_SHOW = BookingState.NO_SHOW.value
CANCELLED = BookingState.CANCELLED_BY_CITIZEN.value
HOLDS_A_PLACE = frozenset({BOOKED, ATTENDED, NO_SHOW})
NEW, BOOKED_CASE = CaseState.NEW.value, CaseState.BOOKED.value
CHECKED_IN, INTERVIEWED, CLOSED = (
    CaseState.CHECKED_IN.value,
    CaseState.INTERVIEWED.value,
    CaseState.CLOSED.value,
)
TELEGRAM = Channel.TELEGRAM.value

# --- who ------------------------------------------------------------------------------

STAFF_USERS = (
    ("coordinatore1", "Elena Cattaneo", Role.COORDINATORE),
    ("coordinatore2", "Paolo Meroni", Role.COORDINATORE),
    ("coordinatore3", "Silvia Redaelli", Role.COORDINATORE),
    ("operatore1", "Giulia Brambilla", Role.OPERATORE),
    ("operatore2", "Marco Fumagalli", Role.OPERATORE),
    ("operatore3", "Chiara Sironi", Role.OPERATORE),
    ("operatore4", "Davide Longoni", Role.OPERATORE),
    ("operatore5", "Federica Galbiati", Role.OPERATORE),
    ("operatore6", "Luca Pirovano", Role.OPERATORE),
    ("operatore7", "Sara Tagliabue", Role.OPERATORE),
    ("operatore8", "Andrea Mapelli", Role.OPERATORE),
    ("admin1", "Roberto Villa", Role.ADMIN),
)
# (name, address, share of the appointments)
HELPDESKS = (
    ("Sportello Centro", "Piazza Matteotti 8, Cernusco sul Naviglio", 4),
    ("Sportello Ronco", "Via Don Milani 2, Cernusco sul Naviglio", 2),
    ("Sportello Villaggio Ecologico", "Via Buonarroti 44, Cernusco sul Naviglio", 2),
    ("Sportello Biblioteca Penati", "Via Fiume 10, Cernusco sul Naviglio", 2),
)

WOMEN = (
    ("Maria", 30), ("Anna", 22), ("Giulia", 18), ("Francesca", 17), ("Sara", 14),
    ("Laura", 14), ("Valentina", 13), ("Chiara", 13), ("Elena", 12), ("Alessandra", 11),
    ("Silvia", 11), ("Federica", 10), ("Martina", 10), ("Paola", 10), ("Roberta", 9),
    ("Simona", 9), ("Barbara", 8), ("Cristina", 8), ("Elisa", 8), ("Giorgia", 8),
    ("Monica", 7), ("Daniela", 7), ("Stefania", 7), ("Ilaria", 6), ("Lucia", 6),
    ("Manuela", 5), ("Claudia", 5), ("Teresa", 4), ("Rosa", 4), ("Antonella", 4),
    ("Maria Grazia", 3), ("Anna Maria", 3), ("Maria Teresa", 2), ("Noemi", 2), ("Beatrice", 2),
)  # fmt: skip
MEN = (
    ("Marco", 22), ("Giuseppe", 20), ("Andrea", 20), ("Luca", 18), ("Francesco", 18),
    ("Alessandro", 16), ("Giovanni", 15), ("Roberto", 14), ("Stefano", 13), ("Matteo", 12),
    ("Paolo", 12), ("Davide", 11), ("Antonio", 11), ("Simone", 10), ("Fabio", 10),
    ("Massimo", 9), ("Lorenzo", 9), ("Daniele", 9), ("Riccardo", 8), ("Mario", 8),
    ("Federico", 7), ("Claudio", 7), ("Salvatore", 7), ("Vincenzo", 6), ("Gabriele", 6),
    ("Emanuele", 5), ("Michele", 5), ("Nicolò", 4), ("Mattia", 4), ("Gianluca", 4),
    ("Carlo", 4), ("Sergio", 3), ("Enrico", 3), ("Gian Marco", 2), ("Pier Luigi", 2),
)  # fmt: skip
# Most common first (weights follow the rank), Lombard surnames among them.
SURNAMES = (
    "Rossi", "Colombo", "Ferrari", "Brambilla", "Russo", "Bianchi", "Villa", "Esposito",
    "Romano", "Fumagalli", "Galli", "Sala", "Ricci", "Marino", "Cattaneo", "Greco", "Bruno",
    "Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi",
    "Moretti", "Barbieri", "Fontana", "Mariani", "Santoro", "Rinaldi", "Caruso", "Ferrara",
    "Martini", "Leone", "Longoni", "Gentile", "Martinelli", "Vitale", "Lombardo", "Serra",
    "Coppola", "De Santis", "D'Angelo", "Marchetti", "Parisi", "Crippa", "Conte", "Ferraro",
    "Fabbri", "Bianco", "Marini", "Grasso", "Valentini", "Messina", "Meroni", "De Angelis",
    "Gatti", "Pellegrini", "Palumbo", "Sanna", "Farina", "Rizzi", "Monti", "Morelli", "Amato",
    "Silvestri", "Mazza", "Testa", "Viganò", "Carbone", "Giuliani", "Benedetti", "Barone",
    "Caputo", "Montanari", "Guerra", "Palmieri", "Bernardi", "Fiore", "De Rosa", "Ferretti",
    "Bellini", "Basile", "Riva", "Donati", "Piras", "Vitali", "Battaglia", "Sartori", "Neri",
    "Milani", "Pagano", "Ruggiero", "Sorrentino", "D'Amico", "Orlando", "Bassi", "Mauri",
    "Galbiati", "Pirovano", "Ronchi", "Radaelli", "Perego", "Tagliabue", "Sironi", "Redaelli",
    "Bonfanti", "Dell'Acqua", "Zanoni", "Cazzaniga", "Oggioni", "Mapelli", "Ghezzi", "Rota",
    "Locatelli", "Pozzi", "Corti", "Valsecchi", "Spinelli", "La Rosa", "Lo Russo",
    "Di Stefano", "Di Pietro",
)  # fmt: skip
SURNAME_WEIGHTS = tuple(1 / (rank + 4) for rank in range(len(SURNAMES)))
# Birthplace codes (codice catastale) of Italian-born citizens, with weights.
BIRTHPLACES = (
    ("F205", 40), ("C523", 15), ("H501", 6), ("F839", 8), ("G273", 6), ("A794", 5),
    ("B157", 4), ("C351", 5), ("D969", 3), ("A662", 5), ("L219", 3),
)  # fmt: skip
FOREIGN_SHARE = 0.12


@dataclass(frozen=True, slots=True)
class Origin:
    country: str  # the fiscal code's birthplace code of the country
    women: tuple[str, ...]
    men: tuple[str, ...]
    surnames: tuple[str, ...]


FOREIGN = (
    Origin("Z129", ("Andreea", "Ioana", "Mihaela", "Elena"), ("Ionuț", "Andrei", "Mihai"),
           ("Popescu", "Ionescu", "Popa", "Stan", "Dumitru", "Munteanu")),
    Origin("Z330", ("Fatima", "Khadija", "Samira", "Nadia"), ("Mohamed", "Youssef", "Rachid"),
           ("El Amrani", "Benali", "Bennani", "El Idrissi", "Ouali")),
    Origin("Z100", ("Elira", "Anjeza", "Blerina"), ("Arben", "Ardit", "Gentian"),
           ("Hoxha", "Shehu", "Gjoka", "Leka", "Kola")),
    Origin("Z611", ("Rosa", "Carmen", "Milagros"), ("Jorge", "Luis", "Carlos"),
           ("Quispe", "Flores", "Huamán", "Mamani")),
    Origin("Z138", ("Olena", "Iryna", "Natalia"), ("Oleksandr", "Serhiy"),
           ("Kovalenko", "Shevchenko", "Bondarenko")),
    Origin("Z336", ("Mona", "Amal"), ("Ahmed", "Mahmoud", "Mostafa"),
           ("Hassan", "Ibrahim", "Abdelrahman")),
    Origin("Z216", ("Maria Cristina", "Jocelyn"), ("Jose", "Mark Anthony"),
           ("Santos", "Reyes", "Cruz", "Bautista")),
    Origin("Z210", ("Mei", "Xiaoling"), ("Wei", "Jun"), ("Hu", "Chen", "Zhou", "Wang")),
)  # fmt: skip
MOBILE_PREFIXES = (
    "320", "324", "327", "328", "329", "330", "331", "333", "334", "335", "336", "338", "339",
    "340", "342", "345", "346", "347", "348", "349", "350", "351", "366", "388", "389", "391",
    "392", "393",
)  # fmt: skip
MAIL_DOMAINS = ("gmail.com", "libero.it", "hotmail.it", "yahoo.it", "outlook.it", "alice.it")

# Raw questionnaire answers as citizens give them (weight, answers): validated with the
# questionnaire's validators and assessed with `assess` at setup. Eligible mostly; some not
# resident, not in a covered situation, or not because of the pandemic.
QUESTIONNAIRES: tuple[tuple[int, dict[str, str]], ...] = (
    (30, {"residence": "yes", "situation": "job_loss", "since": "04/2020",
          "pandemic_related": "yes", "household": "3 1", "benefits": "naspi",
          "needs": "job_search", "urgent": "no"}),
    (12, {"residence": "yes", "situation": "self_employment_stopped", "since": "11/2020",
          "pandemic_related": "yes", "household": "2 0", "benefits": "none",
          "needs": "economic_support microcredit", "urgent": "yes"}),
    (14, {"residence": "yes", "situation": "reduced_hours", "since": "03/2021",
          "pandemic_related": "yes", "household": "4 2", "benefits": "wage_guarantee",
          "needs": "benefits_access job_search", "urgent": "no"}),
    (10, {"residence": "yes", "situation": "job_loss", "since": "09/2022",
          "pandemic_related": "not_sure", "household": "1 0", "benefits": "none",
          "needs": "job_search internship", "urgent": "no"}),
    (7, {"residence": "yes", "situation": "job_loss", "since": "06/2020",
         "pandemic_related": "yes", "household": "5 3", "benefits": "inclusion",
         "needs": "economic_support job_search", "urgent": "yes"}),
    (6, {"residence": "yes", "situation": "reduced_hours", "since": "01/2021",
         "pandemic_related": "yes", "household": "2 1", "benefits": "wage_guarantee other",
         "needs": "psychological_support", "urgent": "no"}),
    (5, {"residence": "yes", "situation": "self_employment_stopped", "since": "05/2020",
         "pandemic_related": "yes", "household": "3 2", "benefits": "other",
         "needs": "microcredit", "urgent": "no"}),
    (4, {"residence": "no", "situation": "job_loss", "since": "02/2021",
         "pandemic_related": "yes", "household": "2 0", "benefits": "naspi",
         "needs": "job_search", "urgent": "no"}),
    (4, {"residence": "yes", "situation": "other", "household": "1 0", "benefits": "none",
         "needs": "not_sure", "urgent": "yes"}),
    (4, {"residence": "yes", "situation": "job_loss", "since": "10/2023",
         "pandemic_related": "no", "household": "3 1", "benefits": "naspi",
         "needs": "job_search", "urgent": "no"}),
)  # fmt: skip
NOT_ADMITTED = (
    "Il rapporto di lavoro si era concluso prima della crisi sanitaria.",
    "Reddito familiare oltre la soglia del programma.",
    "Ha già un percorso attivo con il Centro per l'impiego.",
)
REFERRED_TO = (
    "Centro per l'impiego di Melzo",
    "Servizi sociali del Comune di Cernusco sul Naviglio",
    "CPS – Centro psicosociale di Cernusco",
    "Caritas decanale",
    "AFOL Metropolitana – sportello lavoro",
)
WORK_DONE = "Percorso concluso: contratto a tempo determinato presso un'azienda del territorio."
NOT_COVERED = "Non rientra nei requisiti del programma."
NO_ANSWER = "Non ha più risposto ai messaggi e alle telefonate."
OVERRIDE_REASON = "Situazione verificata al telefono: la crisi ha causato la perdita del lavoro."


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


CITIZEN, INTAKE, SLOT_TABLE, BOOKING, CASE, INTERVIEW, PREFIX, AUDIT, OUTBOX = (
    _table(m)
    for m in (
        Citizen, Intake, Slot, Booking, Case, Interview, CaseNamePrefix, AuditEvent,
        OutboxMessage,
    )
)  # fmt: skip
# Rows with explicit ids: PostgreSQL's sequences are moved past them after the load.
WITH_IDS = (CITIZEN, INTAKE, SLOT_TABLE, BOOKING, CASE, INTERVIEW)


# --- names, phones and fiscal codes --------------------------------------------------


def _ascii_letters(text_: str) -> str:
    folded = unicodedata.normalize("NFKD", text_).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.upper() if c.isalpha())


def fiscal_code(first: str, last: str, *, female: bool, born: date, place: str) -> str:
    """The Italian fiscal code of a person (python-codicefiscale), check character included."""
    code: str = codicefiscale.encode(
        lastname=last, firstname=first, gender="F" if female else "M",
        birthdate=born.isoformat(), birthplace=place,
    )  # fmt: skip
    return code


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


# --- the plan: citizens, cases, bookings ----------------------------------------------


@dataclass(slots=True)
class Person:
    id: int
    name: str
    phone: str  # E.164, as the questionnaire's validator stores it
    typed_phone: str  # as staff type it in the search box
    email: str | None
    fiscal_code: str | None
    channel: str
    questionnaire: int
    created_at: datetime
    # Who filled the questionnaire in: the citizen on Telegram, or staff on their behalf.
    intake_actor: str
    last_opened: datetime | None = None

    @property
    def actor(self) -> str:
        return f"citizen:{self.id}"


@dataclass(slots=True)
class BookingPlan:
    citizen_id: int
    helpdesk_id: int
    starts_at: datetime
    created_at: datetime
    created_by: str
    code: str
    state: str = BOOKED
    closed_at: datetime | None = None
    closed_by: str | None = None
    id: int = 0
    # After a no-show the citizen is offered to book again, once per case.
    rebook_offer: bool = True


@dataclass(slots=True)
class CasePlan:
    person: Person
    opened_at: datetime
    eligible: bool
    urgent: bool
    id: int = 0
    state: str = NEW
    previous: CasePlan | None = None
    override_at: datetime | None = None
    assigned_to: int | None = None
    assigned_at: datetime | None = None
    assigned_by: str = ""
    bookings: list[BookingPlan] = field(default_factory=list)
    current: BookingPlan | None = None
    no_shows: int = 0
    # No-shows this case is to have before the citizen comes (`Planner.repeated_no_shows`).
    misses: int = 0
    interviewer: int | None = None
    interviewer_actor: str = ""
    interview_at: datetime | None = None
    outcome: str | None = None
    outcome_at: datetime | None = None
    outcome_reason: str | None = None
    referred_to: str | None = None
    interview_id: int = 0
    closed_at: datetime | None = None
    close_reason: str | None = None
    closed_by: str = ""

    @property
    def updated_at(self) -> datetime:
        times = [self.opened_at, self.override_at, self.assigned_at, self.outcome_at,
                 self.closed_at]  # fmt: skip
        for made in self.bookings:
            times += [made.created_at, made.closed_at]
        return max(t for t in times if t is not None)


@dataclass(frozen=True, slots=True)
class Questionnaire:
    answers: dict[str, Any]  # normalised, without the contacts
    eligible: bool
    urgent: bool


def questionnaires(settings: Settings, today: date) -> list[Questionnaire]:
    """The raw answers of `QUESTIONNAIRES` as the intake engine stores and assesses them."""
    found = []
    for _weight, raw in QUESTIONNAIRES:
        answers: dict[str, Any] = {}
        for step in QUESTIONNAIRE:
            if step.key in raw and step.applies(answers):
                answers[step.key] = validate(step, raw[step.key], today=today, settings=settings)
        eligibility = assess(answers, settings)
        found.append(Questionnaire(answers, eligibility.eligible, eligibility.urgent))
    return found


@dataclass(slots=True)
class Plan:
    people: list[Person]
    cases: list[CasePlan]
    bookings: list[BookingPlan]
    slots: dict[tuple[int, datetime], int]  # (helpdesk, start) -> places taken
    planted: list[BookingPlan]  # the agenda day's bookings


class Planner:
    """Citizens and the path of their cases, decided with a seeded random generator."""

    def __init__(
        self,
        size: int,
        *,
        now: datetime,
        tz: ZoneInfo,
        helpdesks: Sequence[int],
        workers: dict[int, str],
        coordinator: str,
        forms: Sequence[Questionnaire],
        repeated_no_shows: float = 0.0,
    ) -> None:
        """`repeated_no_shows`: the share of booked cases whose citizen misses two
        appointments before coming (the bookings board's "repeated no-shows"). Left at 0
        the random draws, and so the data, are those of every other benchmark: then a
        citizen misses at most once per case, and two no-shows come only from a returning
        citizen, so few that the 1k data set has none."""
        self.size = size
        self.repeated_no_shows = repeated_no_shows
        self.rng = random.Random(SEED + size)
        self.now = now
        self.tz = tz
        self.today = now.astimezone(tz).date()
        self.helpdesks = list(helpdesks)
        self.workers = workers
        self.coordinator = coordinator
        self.forms = forms
        self.taken: Counter[tuple[int, datetime]] = Counter()
        self.slots: set[tuple[int, datetime]] = set()
        self.codes: set[str] = set()
        self.phones: set[str] = set()
        self.fiscal_codes: set[str] = set()
        self.people: list[Person] = []
        self.bookings: list[BookingPlan] = []

    # citizens

    def _phone(self) -> tuple[str, str]:
        rng = self.rng
        while True:
            if rng.random() < 0.07:  # a landline in the area
                typed = f"02 92{rng.randint(10, 99)} {rng.randint(1000, 9999)}"
            else:
                typed = (
                    f"{rng.choice(MOBILE_PREFIXES)} {rng.randint(100, 999)} "
                    f"{rng.randint(1000, 9999)}"
                )
            stored = validate_phone(typed)
            if stored not in self.phones:
                self.phones.add(stored)
                return stored, typed

    def person(self, created_at: datetime) -> Person:
        rng = self.rng
        female = rng.random() < 0.52
        if rng.random() < FOREIGN_SHARE:
            origin = rng.choice(FOREIGN)
            first = rng.choice(origin.women if female else origin.men)
            last = rng.choice(origin.surnames)
            place = origin.country
        else:
            first = _pick(rng, WOMEN if female else MEN)
            last = rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]
            if rng.random() < 0.03:
                last = f"{last} {rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]}"
            place = _pick(rng, BIRTHPLACES)
        if self.people and rng.random() < 0.004:
            # Family members sharing a phone: the case page warns about the duplicate.
            shared = rng.choice(self.people)
            phone, typed = shared.phone, shared.typed_phone
        else:
            phone, typed = self._phone()
        channels = (TELEGRAM, Channel.PHONE.value, Channel.WALK_IN.value)
        channel = rng.choices(channels, (70, 20, 10))[0]
        email = None
        if rng.random() < (0.45 if channel == TELEGRAM else 0.25):
            user = f"{_ascii_letters(first)}.{_ascii_letters(last)}".lower()
            suffix = str(rng.randint(1, 99)) if rng.random() < 0.5 else ""
            email = validate_email(f"{user}{suffix}@{rng.choice(MAIL_DOMAINS)}")
        code = None
        if rng.random() < 0.4:
            while code is None or code in self.fiscal_codes:
                born = date(rng.randint(1961, 2003), rng.randint(1, 12), rng.randint(1, 28))
                code = fiscal_code(first, last, female=female, born=born, place=place)
            self.fiscal_codes.add(code)
        form = rng.choices(range(len(self.forms)), [w for w, _ in QUESTIONNAIRES])[0]
        number = len(self.people) + 1
        worker = rng.choice(list(self.workers.values()))
        made = Person(
            id=number,
            name=validate_name(f"{first} {last}"),
            phone=phone,
            typed_phone=typed,
            email=email,
            fiscal_code=code,
            channel=channel,
            questionnaire=form,
            created_at=created_at,
            intake_actor=f"citizen:{number}" if channel == TELEGRAM else f"staff:{worker}",
        )
        self.people.append(made)
        return made

    # bookings

    def _code(self) -> str:
        while True:
            code = "".join(self.rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if code not in self.codes:
                self.codes.add(code)
                return code

    def _slot(self, helpdesk_id: int, earliest: datetime) -> datetime:
        """The first slot with room from `earliest` (a random time of each day first)."""
        day = earliest.astimezone(self.tz).date()
        while True:
            if day.weekday() < 5 and day != self.today:
                first = self.rng.randrange(len(SLOT_TIMES))
                for k in range(len(SLOT_TIMES)):
                    local = SLOT_TIMES[(first + k) % len(SLOT_TIMES)]
                    at = datetime.combine(day, local, tzinfo=self.tz).astimezone(UTC)
                    if at >= earliest and self.taken[(helpdesk_id, at)] < PLACES:
                        return at
            day += timedelta(days=1)

    def _book(
        self, case: CasePlan, made_at: datetime, starts_at: datetime, helpdesk_id: int
    ) -> BookingPlan:
        person = case.person
        actor = (
            person.actor
            if person.channel == TELEGRAM
            else f"staff:{self.rng.choice(list(self.workers.values()))}"
        )
        made = BookingPlan(person.id, helpdesk_id, starts_at, made_at, actor, self._code())
        self.taken[(helpdesk_id, starts_at)] += 1
        self.slots.add((helpdesk_id, starts_at))
        self.bookings.append(made)
        case.bookings.append(made)
        case.current = made
        case.state = BOOKED_CASE
        return made

    def _close(self, made: BookingPlan, state: str, at: datetime, by: str) -> None:
        made.state, made.closed_at, made.closed_by = state, at, by
        if state not in HOLDS_A_PLACE:
            self.taken[(made.helpdesk_id, made.starts_at)] -= 1

    def _worker(self) -> int:
        return self.rng.choice(list(self.workers))

    # the path of a case

    def _assign(self, case: CasePlan, worker: int, at: datetime, by: str) -> None:
        case.assigned_to, case.assigned_at, case.assigned_by = worker, at, by

    def simulate(self, case: CasePlan) -> None:
        rng, now = self.rng, self.now
        at = case.opened_at
        if not case.eligible:
            if rng.random() < 0.12 and at + timedelta(days=4) < now:
                case.override_at = at + timedelta(days=rng.uniform(1, 4))
                at = case.override_at
            else:
                closing = at + timedelta(days=rng.uniform(3, 20))
                if closing < now and rng.random() < 0.8:
                    case.state, case.closed_at, case.close_reason = CLOSED, closing, NOT_COVERED
                    case.closed_by = self.coordinator
                return
        if rng.random() < 0.2 and at + timedelta(days=1) < now:
            self._assign(case, self._worker(), at + timedelta(days=1), self.coordinator)
        if rng.random() < 0.05:  # never booked
            closing = at + timedelta(days=rng.uniform(45, 90))
            if closing < now:
                case.state, case.closed_at, case.close_reason = CLOSED, closing, NO_ANSWER
                case.closed_by = self.coordinator
            return
        if self.repeated_no_shows and rng.random() < self.repeated_no_shows:
            case.misses = 2
        for _attempt in range(4):
            made_at = at + timedelta(hours=rng.uniform(1, 60))
            if made_at >= now:
                return
            helpdesk_id = rng.choices(self.helpdesks, [w for *_, w in HELPDESKS])[0]
            starts_at = self._slot(helpdesk_id, made_at + timedelta(days=rng.uniform(1.5, 12)))
            made = self._book(case, made_at, starts_at, helpdesk_id)
            draw = rng.random()
            staff_actor = f"staff:{self.workers[self._worker()]}"
            if draw < 0.05:  # cancelled by the citizen before the day
                cancelled = made_at + (starts_at - made_at) * rng.uniform(0.2, 0.9)
                if cancelled >= now:
                    return
                self._close(made, CANCELLED, cancelled, person_actor(case))
                case.current, case.state = None, NEW
                at = cancelled
                if rng.random() < 0.3:
                    return
                continue
            if starts_at >= now:
                return
            if (draw < 0.12 and case.no_shows == 0) or case.no_shows < case.misses:
                marked = starts_at + timedelta(minutes=rng.uniform(30, 120))
                if marked >= now:
                    return
                self._close(made, NO_SHOW, marked, staff_actor)
                made.rebook_offer = case.no_shows == 0
                case.no_shows += 1
                case.state = NEW
                at = marked
                continue
            checked_in = starts_at - timedelta(minutes=rng.uniform(0, 15))
            self._close(made, ATTENDED, checked_in, staff_actor)
            case.state = CHECKED_IN
            self._interview(case, starts_at)
            return

    def _interview(self, case: CasePlan, starts_at: datetime) -> None:
        rng, now = self.rng, self.now
        done = starts_at + timedelta(minutes=rng.uniform(35, 75))
        if done >= now:
            return
        worker = case.assigned_to if case.assigned_to is not None else self._worker()
        case.interviewer, case.interview_at = worker, starts_at + timedelta(minutes=5)
        case.interviewer_actor = f"staff:{self.workers[worker]}"
        if case.assigned_to is None:
            self._assign(case, worker, case.interview_at, f"staff:{self.workers[worker]}")
        case.outcome_at = done
        draw = rng.random()
        if draw < 0.65:
            case.outcome, case.state = Outcome.ADMITTED.value, INTERVIEWED
            finished = done + timedelta(days=rng.uniform(90, 300))
            if finished < now and rng.random() < 0.7:
                case.state, case.closed_at, case.close_reason = CLOSED, finished, WORK_DONE
                case.closed_by = f"staff:{self.workers[worker]}"
            return
        if draw < 0.77:
            case.outcome, case.outcome_reason = Outcome.NOT_ADMITTED.value, rng.choice(NOT_ADMITTED)
        else:
            case.outcome, case.referred_to = Outcome.REFERRED.value, rng.choice(REFERRED_TO)
        case.state, case.closed_at, case.close_reason = CLOSED, done, case.outcome

    def _open(self, person: Person, opened_at: datetime) -> CasePlan:
        form = self.forms[person.questionnaire]
        person.last_opened = opened_at
        return CasePlan(person, opened_at, form.eligible, form.urgent)

    def _planted(self) -> tuple[list[CasePlan], list[BookingPlan]]:
        """20 bookings of the agenda's day at the first helpdesk, in every state."""
        rng = self.rng
        cases, planted = [], []
        for number, local in enumerate(PLANTED_TIMES):
            opened = self.now - timedelta(days=rng.uniform(4, 9))
            person = self.person(opened - timedelta(minutes=rng.uniform(8, 40)))
            person.questionnaire = 0  # eligible, not urgent
            case = self._open(person, opened)
            starts_at = datetime.combine(self.today, local, tzinfo=self.tz).astimezone(UTC)
            made = self._book(
                case, opened + timedelta(hours=rng.uniform(1, 30)), starts_at, self.helpdesks[0]
            )
            staff_actor = f"staff:{self.workers[self._worker()]}"
            if number < 8:
                self._close(made, ATTENDED, starts_at - timedelta(minutes=10), staff_actor)
                case.state = CHECKED_IN
            elif number == 8:
                self._close(made, NO_SHOW, starts_at + timedelta(minutes=45), staff_actor)
                case.state, case.no_shows = NEW, 1
            elif number == 9:
                self._close(made, CANCELLED, made.created_at + timedelta(hours=5), person.actor)
                case.state, case.current = NEW, None
            cases.append(case)
            planted.append(made)
        return cases, planted

    def plan(self) -> Plan:
        rng, now = self.rng, self.now
        cases, planted = self._planted()
        returning = round(self.size * RETURNING_SHARE)
        firsts = sorted(
            now - timedelta(days=rng.uniform(0, PROGRAM_DAYS), minutes=1)
            for _ in range(self.size - len(cases) - returning)
        )
        for opened in firsts:
            person = self.person(opened - timedelta(minutes=rng.uniform(8, 40)))
            case = self._open(person, opened)
            self.simulate(case)
            cases.append(case)
        # Citizens who come back: a new case, linked to their closed one.
        candidates = [
            c for c in cases if c.closed_at is not None and c.closed_at < now - timedelta(days=45)
        ]
        while returning > 0:
            if candidates:
                earlier = candidates.pop(rng.randrange(len(candidates)))
                room = (now - cast(datetime, earlier.closed_at)).days - 1
                opened = cast(datetime, earlier.closed_at) + timedelta(
                    days=rng.uniform(30, min(300, room))
                )
                person = earlier.person
                person.questionnaire = rng.choices(
                    range(len(self.forms)), [w for w, _ in QUESTIONNAIRES]
                )[0]
                case = self._open(person, opened)
                case.previous = earlier
            else:
                opened = now - timedelta(days=rng.uniform(0, PROGRAM_DAYS))
                case = self._open(self.person(opened - timedelta(minutes=20)), opened)
            self.simulate(case)
            cases.append(case)
            returning -= 1
        # Ids in the order things happened, as the database would have given them.
        cases.sort(key=lambda c: c.opened_at)
        for number, case in enumerate(cases, start=1):
            case.id = number
        self.bookings.sort(key=lambda b: b.created_at)
        for number, made in enumerate(self.bookings, start=1):
            made.id = number
        interviewed = [c for c in cases if c.interview_at is not None]
        for number, case in enumerate(interviewed, start=1):
            case.interview_id = number
        slots = {key: self.taken[key] for key in sorted(self.slots)}
        return Plan(self.people, cases, self.bookings, slots, planted)


def person_actor(case: CasePlan) -> str:
    return case.person.actor


# --- writing the plan ----------------------------------------------------------------


def _citizen_rows(plan: Plan, forms: Sequence[Questionnaire]) -> Iterator[dict[str, Any]]:
    for p in plan.people:
        telegram = p.channel == TELEGRAM
        yield {
            "id": p.id, "channel": p.channel,
            "telegram_user_id": 700_000_000 + p.id * 7 if telegram else None,
            "telegram_chat_id": 700_000_000 + p.id * 7 if telegram else None,
            "language": "it", "name": p.name, "phone": p.phone, "email": p.email,
            "fiscal_code": p.fiscal_code,
            "consent_version": PRIVACY_NOTICE_VERSION if telegram else None,
            "consented_at": p.created_at if telegram else None,
            "urgent": forms[p.questionnaire].urgent, "unreachable": False,
            "created_at": p.created_at, "updated_at": p.last_opened or p.created_at,
        }  # fmt: skip


def _answers(p: Person, forms: Sequence[Questionnaire]) -> dict[str, Any]:
    return forms[p.questionnaire].answers | {
        "name": p.name, "phone": p.phone, "email": p.email, "fiscal_code": p.fiscal_code,
    }  # fmt: skip


def _intake_rows(plan: Plan, forms: Sequence[Questionnaire]) -> Iterator[dict[str, Any]]:
    for p in plan.people:
        answers = _answers(p, forms)
        done = p.last_opened or p.created_at
        yield {
            "id": p.id, "citizen_id": p.id, "state": IntakeState.COMPLETED.value,
            "current_step": None, "answers": answers, "history": list(answers),
            "started_at": done - timedelta(minutes=15), "updated_at": done, "completed_at": done,
            "expiry_reminded_at": None, "eligible": forms[p.questionnaire].eligible,
            "urgent": forms[p.questionnaire].urgent,
        }  # fmt: skip


def _case_rows(plan: Plan) -> Iterator[dict[str, Any]]:
    for c in plan.cases:
        current = c.current
        yield {
            "id": c.id, "citizen_id": c.person.id, "state": c.state, "urgent": c.urgent,
            "eligible": c.eligible,
            "eligibility_override": True if c.override_at else None,
            "override_reason": OVERRIDE_REASON if c.override_at else None,
            "override_by": "staff:coordinatore1" if c.override_at else None,
            "override_at": c.override_at, "assigned_to_id": c.assigned_to,
            "previous_case_id": c.previous.id if c.previous else None,
            "booking_id": current.id if current else None,
            "helpdesk_id": current.helpdesk_id if current else None,
            "appointment_at": current.starts_at if current else None,
            "no_shows": c.no_shows, "opened_at": c.opened_at, "updated_at": c.updated_at,
            "closed_at": c.closed_at, "close_reason": c.close_reason,
        }  # fmt: skip


def _prefix_rows(plan: Plan) -> Iterator[dict[str, Any]]:
    """What `index_names` writes: every case of a citizen, under their current name."""
    terms: dict[str, list[str]] = {}
    for c in plan.cases:
        name = c.person.name
        if name not in terms:
            terms[name] = sorted(name_terms(name))
        for term in terms[name]:
            yield {"case_id": c.id, "prefix": term, "opened_at": c.opened_at}


def _interview_rows(plan: Plan, forms: Sequence[Questionnaire]) -> Iterator[dict[str, Any]]:
    demo = next(c for c in CANDIDATES if c.outcome and c.outcome[0] == "admitted").interview
    documents: dict[int, dict[str, Any]] = {}
    for c in plan.cases:
        if c.interview_at is None:
            continue
        form = c.person.questionnaire
        if form not in documents:
            prefilled = interview_form.form_values(interview_form.prefill(forms[form].answers))
            filled = prefilled | {k: v for k, v in demo.items() if not prefilled.get(k)}
            documents[form] = interview_form.parse_form(filled).model_dump(mode="json")
        yield {
            "id": c.interview_id, "case_id": c.id, "answers": documents[form],
            "outcome": c.outcome, "outcome_reason": c.outcome_reason,
            "referred_to": c.referred_to, "interviewer_id": c.interviewer,
            "started_at": c.interview_at, "updated_at": c.outcome_at,
            "completed_at": c.outcome_at,
        }  # fmt: skip


def _booking_rows(
    plan: Plan, slot_ids: dict[tuple[int, datetime], int], forms: Sequence[Questionnaire]
) -> Iterator[dict[str, Any]]:
    urgent = {p.id: forms[p.questionnaire].urgent for p in plan.people}
    # As `shared.booking.places` keeps it: every booking of a citizen who missed twice.
    missed = Counter(b.citizen_id for b in plan.bookings if b.state == NO_SHOW)
    for b in plan.bookings:
        yield {
            "id": b.id, "code": b.code, "citizen_id": b.citizen_id, "helpdesk_id": b.helpdesk_id,
            "slot_id": slot_ids[(b.helpdesk_id, b.starts_at)], "starts_at": b.starts_at,
            "ends_at": b.starts_at + SLOT, "state": b.state, "created_at": b.created_at,
            "created_by": b.created_by, "closed_at": b.closed_at, "closed_by": b.closed_by,
            "cancel_reason": None, "moved_from_id": None,
            "citizen_urgent": urgent[b.citizen_id],
            "citizen_repeated_no_shows": missed[b.citizen_id] >= REPEATED_NO_SHOWS,
        }  # fmt: skip


def _event(
    at: datetime, actor: str, action: str, kind: str, id_: int, **details: Any
) -> dict[str, Any]:
    return {"at": at, "actor": actor, "action": action, "object_type": kind,
            "object_id": str(id_), "details": details}  # fmt: skip


def _audit_rows(plan: Plan, forms: Sequence[Questionnaire]) -> Iterator[dict[str, Any]]:
    """The events the citizen, booking and case services record along each case's path."""
    for p in plan.people:
        if p.channel == TELEGRAM:
            yield _event(p.created_at, p.actor, "citizen.consent", "citizen", p.id,
                         notice_version=PRIVACY_NOTICE_VERSION)  # fmt: skip
    for c in plan.cases:
        yield _event(c.opened_at, c.person.intake_actor, "case.open", "case", c.id,
                     citizen_id=c.person.id, eligible=c.eligible, urgent=c.urgent,
                     previous=c.previous.id if c.previous else None)  # fmt: skip
        if c.override_at is not None:
            yield _event(c.override_at, "staff:coordinatore1", "case.eligibility", "case", c.id,
                         reason=OVERRIDE_REASON, questionnaire=False, to=True,
                         **{"from": None})  # fmt: skip
        if c.assigned_at is not None:
            yield _event(c.assigned_at, c.assigned_by, "case.assign", "case", c.id,
                         to=c.assigned_to, **{"from": None})  # fmt: skip
        for b in c.bookings:
            yield _event(b.created_at, b.created_by, "booking.create", "booking", b.id,
                         citizen_id=b.citizen_id, code=b.code, moved_from=None)  # fmt: skip
            yield _event(b.created_at, b.created_by, "case.booking", "case", c.id,
                         booking_id=b.id, code=b.code, booking_state=BOOKED, to=BOOKED_CASE,
                         **{"from": NEW})  # fmt: skip
            if b.closed_at is None or b.closed_by is None:
                continue
            if b.state == CANCELLED:
                yield _event(b.closed_at, b.closed_by, "booking.cancel", "booking", b.id,
                             by="citizen", reason=None)  # fmt: skip
            else:
                action = "booking.attended" if b.state == ATTENDED else "booking.no_show"
                yield _event(b.closed_at, b.closed_by, action, "booking", b.id)
            after = CHECKED_IN if b.state == ATTENDED else NEW
            yield _event(b.closed_at, b.closed_by, "case.booking", "case", c.id,
                         booking_id=b.id, code=b.code, booking_state=b.state, to=after,
                         **{"from": BOOKED_CASE})  # fmt: skip
        if c.interview_at is not None and c.outcome_at is not None:
            worker = c.interviewer_actor
            yield _event(c.interview_at, worker, "case.read", "case", c.id, page="detail")
            yield _event(c.interview_at, worker, "case.read", "case", c.id, page="interview")
            yield _event(c.interview_at, worker, "case.interview", "case", c.id,
                         interview_id=c.interview_id)  # fmt: skip
            yield _event(c.outcome_at, worker, "case.outcome", "case", c.id,
                         outcome=c.outcome, reason=c.outcome_reason,
                         referred_to=c.referred_to)  # fmt: skip
        if c.closed_at is not None and c.close_reason in (WORK_DONE, NOT_COVERED, NO_ANSWER):
            before = INTERVIEWED if c.close_reason == WORK_DONE else NEW
            yield _event(c.closed_at, c.closed_by, "case.close", "case", c.id,
                         reason=c.close_reason, **{"from": before})  # fmt: skip


def _outbox_rows(plan: Plan, settings: Settings, now: datetime) -> Iterator[dict[str, Any]]:
    """The reminders `queue_reminders` queues, sent, withdrawn or still waiting; no-show notes."""
    tz = settings.tz
    telegram = {p.id for p in plan.people if p.channel == TELEGRAM}
    for b in plan.bookings:
        if b.citizen_id not in telegram:
            continue
        subject = f"booking:{b.id}"
        day_before = datetime.combine(
            b.starts_at.astimezone(tz).date() - timedelta(days=1),
            clock(settings.reminder_day_before_hour),
            tzinfo=tz,
        )
        hours_before = b.starts_at - timedelta(hours=settings.reminder_hours_before)
        for kind, due in (
            ("reminder_day_before", day_before),
            ("reminder_hours_before", hours_before),
        ):
            if due <= b.created_at:
                continue
            withdrawn = b.closed_at is not None and b.closed_at < due
            sent = not withdrawn and due < now
            state = (
                MessageState.CANCELLED if withdrawn else MessageState.SENT if sent
                else MessageState.PENDING
            )  # fmt: skip
            yield {
                "kind": kind, "citizen_id": b.citizen_id, "payload": {"booking_id": b.id},
                "idempotency_key": f"{subject}:{kind}", "subject": subject, "due_at": due,
                "state": state.value, "attempts": 1 if sent else 0, "last_error": None,
                "claimed_by": None, "claimed_until": None,
                "sent_at": due + timedelta(seconds=2) if sent else None,
                "created_at": b.created_at,
            }  # fmt: skip
        if b.state == NO_SHOW and b.closed_at is not None and b.rebook_offer:
            kind = "rebook_after_no_show"
            yield {
                "kind": kind, "citizen_id": b.citizen_id, "payload": {"booking_id": b.id},
                "idempotency_key": f"{subject}:{kind}", "subject": subject,
                "due_at": b.closed_at, "state": MessageState.SENT.value, "attempts": 1,
                "last_error": None, "claimed_by": None, "claimed_until": None,
                "sent_at": b.closed_at + timedelta(seconds=2), "created_at": b.closed_at,
            }  # fmt: skip


async def _insert(
    connection: AsyncConnection, target: Table, rows: Iterable[dict[str, Any]]
) -> int:
    count = 0
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            await connection.execute(insert(target), chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        await connection.execute(insert(target), chunk)
        count += len(chunk)
    return count


# Slot rows whose `taken` differs from their bookings that hold a place: must be none.
INCONSISTENT_SLOTS = text(
    "SELECT count(*) FROM slot WHERE taken <> (SELECT count(*) FROM booking "
    "WHERE booking.slot_id = slot.id AND state IN ('booked', 'attended', 'no_show'))"
)


async def load(
    database: Database,
    plan: Plan,
    settings: Settings,
    forms: Sequence[Questionnaire],
    now: datetime,
) -> dict[str, int]:
    """Write the plan; returns the rows written per table."""
    written: dict[str, int] = {}
    slot_ids = {key: number for number, key in enumerate(plan.slots, start=1)}
    async with database.engine.begin() as connection:
        written["citizen"] = await _insert(connection, CITIZEN, _citizen_rows(plan, forms))
        written["intake"] = await _insert(connection, INTAKE, _intake_rows(plan, forms))
        written["slot"] = await _insert(
            connection,
            SLOT_TABLE,
            (
                {"id": slot_ids[key], "helpdesk_id": key[0], "starts_at": key[1],
                 "ends_at": key[1] + SLOT, "capacity": PLACES, "taken": taken}
                for key, taken in plan.slots.items()
            ),
        )  # fmt: skip
        written["booking"] = await _insert(
            connection, BOOKING, _booking_rows(plan, slot_ids, forms)
        )
        written["case_file"] = await _insert(connection, CASE, _case_rows(plan))
        written["interview"] = await _insert(connection, INTERVIEW, _interview_rows(plan, forms))
        written["case_name_prefix"] = await _insert(connection, PREFIX, _prefix_rows(plan))
        # The events chained as the service chains them, after those setup recorded
        # (the staff accounts and helpdesks made through their services).
        head = await connection.scalar(
            select(AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1)
        )
        events = audit_hashing.link(_audit_rows(plan, forms), head or GENESIS)
        written["audit_event"] = await _insert(connection, AUDIT, events)
        written["outbox_message"] = await _insert(
            connection, OUTBOX, _outbox_rows(plan, settings, now)
        )
        if not database.is_sqlite:
            for target in WITH_IDS:
                await connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{target.name}', 'id'), "
                        f"(SELECT max(id) FROM {target.name}))"
                    )
                )
        await connection.execute(text("ANALYZE"))
        if (await connection.execute(INCONSISTENT_SLOTS)).scalar_one():
            raise AssertionError("slot.taken does not match the bookings holding a place")
        stored = (await connection.execute(select(func.count()).select_from(CASE))).scalar_one()
        if stored != len(plan.cases):
            raise AssertionError(f"{stored} cases stored, {len(plan.cases)} planned")
    if not database.is_sqlite:
        await vacuum(database)
    return written


async def vacuum(database: Database) -> None:
    """What PostgreSQL's autovacuum does within a minute of a bulk load: the visibility map,
    without which an index-only scan reads the table too (the board's counts, covered by
    their indexes, took 24 ms at 100k bookings instead of 2). Outside a transaction."""
    async with database.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))


async def check_name_index(database: Database, plan: Plan, rng: random.Random) -> None:
    """The name index rows of a sample of citizens are what `index_names` writes (rolled back)."""
    sample = rng.sample([c.person for c in plan.cases], 30)

    async def rows(session: AsyncSession, citizen_id: int) -> set[tuple[int, str, datetime]]:
        found = await session.execute(
            select(CaseNamePrefix.case_id, CaseNamePrefix.prefix, CaseNamePrefix.opened_at)
            .join(Case, Case.id == CaseNamePrefix.case_id)
            .where(Case.citizen_id == citizen_id)
        )
        return {(r.case_id, r.prefix, r.opened_at) for r in found}

    async with AsyncSession(database.engine) as session, session.begin() as transaction:
        for person in sample:
            loaded = await rows(session, person.id)
            await index_names(session=session, citizen_id=person.id, name=person.name)
            if await rows(session, person.id) != loaded or not loaded:
                raise AssertionError(
                    f"name index of citizen {person.id} differs from the service's"
                )
        await transaction.rollback()


def check_contacts(plan: Plan, size: int) -> None:
    """Fiscal codes pass the questionnaire's validator (all of them at 1k, a sample at 100k)."""
    codes = [p.fiscal_code for p in plan.people if p.fiscal_code]
    for code in codes if size <= 1_000 else random.Random(SEED).sample(codes, 300):
        if validate_fiscal_code(code) != code:
            raise AssertionError(f"fiscal code {code} is not what the validator stores")


# --- the app ---------------------------------------------------------------------------

StaffViewer = Annotated[Viewer, Depends(allow(*STAFF))]
FLOOR_QUERY = text("SELECT id, display_name, role FROM staff_user ORDER BY display_name")
FLOOR_TEMPLATE = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="it"><head><meta charset="utf-8"><title>Staff</title></head><body>
<table><caption>Staff</caption>
<tr><th scope="col">id</th><th scope="col">name</th><th scope="col">role</th></tr>
{% for id, name, role in rows %}<tr><td>{{ id }}</td><td>{{ name }}</td><td>{{ role }}</td></tr>
{% endfor %}</table></body></html>"""
)


async def floor_page(session: Session, viewer: StaffViewer) -> HTMLResponse:
    """The floor: one query of a dozen rows, a small template, the pages' dependencies."""
    rows = (await session.execute(FLOOR_QUERY)).all()
    return HTMLResponse(FLOOR_TEMPLATE.render(rows=rows))


def bench_app(settings: Settings, database: Database) -> FastAPI:
    """The product's app, plus the floor page (on this instance only)."""
    app = create_app(settings=settings, database=database)
    app.add_api_route("/bench/floor", floor_page, methods=["GET"])
    return app


@asynccontextmanager
async def signed_in(app: FastAPI, username: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client (cookies kept) signed in through /login."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        page = await client.get("/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = await client.post(
            "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
        )
        if response.status_code != 303:
            raise AssertionError(f"sign-in as {username} failed: {response.status_code}")
        yield client


class StatementLog:
    """SQL sent through an engine, and the time spent in the driver's execute calls."""

    def __init__(self, database: Database) -> None:
        self.statements: list[str] = []
        self.seconds = 0.0
        self._started = 0.0
        engine = database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)
        self._started = time.perf_counter()

    def _after(self, *_args: Any) -> None:
        self.seconds += time.perf_counter() - self._started

    def reset(self) -> None:
        self.statements, self.seconds = [], 0.0


def keyword(statement: str) -> str:
    return statement.lstrip().split(None, 1)[0].upper()


# --- the benchmark ---------------------------------------------------------------------


@dataclass(slots=True)
class Request:
    url: str
    expect: tuple[str, ...]  # text the page must contain (checked once, before timing)


@dataclass(frozen=True, slots=True)
class Counted:
    statements: int  # SELECT, INSERT, UPDATE, DELETE, WITH
    control: tuple[str, ...]  # BEGIN, SAVEPOINT, ... as seen by the listener
    sql_ms: float  # median time in the driver's execute calls
    listing: tuple[str, ...]


@dataclass(slots=True)
class Site:
    """One data set: its database, its app and signed-in client, what to request."""

    size: int
    database: Database
    client: httpx.AsyncClient
    counting: httpx.AsyncClient
    log: StatementLog
    requests: dict[str, list[Request]]
    setup_seconds: float
    rows: dict[str, int]
    turn: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rates: dict[tuple[str, int], list[float]] = field(default_factory=lambda: defaultdict(list))
    counted: dict[str, Counted] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.size // 1000}k"

    def next_url(self, kind: str) -> str:
        pool = self.requests[kind]
        number = self.turn[kind]
        self.turn[kind] += 1
        return pool[number % len(pool)].url


async def get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    response = await client.get(url)
    if response.status_code != 200:
        raise AssertionError(f"GET {url}: {response.status_code}")
    return response


def _as_typed(name: str, n: int) -> str:
    """A name as staff type it: as written, in lower case, or the surname first."""
    if n % 3 == 0:
        return name.lower()
    if n % 3 == 1:
        first, _, rest = name.partition(" ")
        return f"{rest} {first}"
    return name


def _requests(
    plan: Plan, viewer_id: int, today: date, rng: random.Random
) -> dict[str, list[Request]]:
    """What each request type asks for: cases the viewer may see, in turn."""
    visible = [c for c in plan.cases if c.assigned_to in (None, viewer_id)]
    newest = sorted(visible, key=lambda c: (c.opened_at, c.id), reverse=True)

    def link(case: CasePlan) -> str:
        return f'href="/cases/{case.id}"'

    def search(q: str, *expect: str) -> Request:
        return Request("/cases?" + urlencode({"q": q}), expect or ('href="/cases/',))

    pages = len(newest) // 25
    depths = sorted({1 + k * (pages - 2) // (POOL - 1) for k in range(POOL)})
    after = [
        Request(
            "/cases?"
            + urlencode(
                {"after": encode_cursor(_BY_OPENING, (c := newest[d * 25 - 1]).opened_at, c.id)}
            ),
            (link(newest[d * 25]),),
        )
        for d in depths
    ]
    picked = rng.sample(visible, POOL)
    with_code = rng.sample([c for c in visible if c.person.fiscal_code], POOL)
    with_booking = rng.sample([c for c in visible if c.bookings], POOL)
    history = [c for c in visible if c.bookings]
    fresh = [c for c in visible if not c.bookings]
    shown = rng.sample(history, CASE_POOL * 4 // 5) + rng.sample(fresh, CASE_POOL // 5)
    rng.shuffle(shown)
    return {
        "list": [Request("/cases", (link(newest[0]), link(newest[24])))],
        "list, next page": after,
        # As typed: sometimes lower case, sometimes the surname first.
        "search: full name": [search(_as_typed(c.person.name, n)) for n, c in enumerate(picked)],
        "search: surname": [search(c.person.name.split()[-1]) for c in picked],
        "search: phone": [search(c.person.typed_phone, link(c)) for c in picked],
        "search: fiscal code": [
            search(
                cast(str, c.person.fiscal_code).lower()
                if n % 2
                else cast(str, c.person.fiscal_code),
                link(c),
            )
            for n, c in enumerate(with_code)
        ],
        "search: booking code": [
            search(rng.choice(c.bookings).code, link(c)) for c in with_booking
        ],
        "agenda": [
            Request(
                "/agenda?" + urlencode({"view": "day", "day": today.isoformat()}),
                tuple(b.code for b in plan.planted),
            )
        ],
        "case": [Request(f"/cases/{c.id}", (str(escape(c.person.name)),)) for c in shown],
        "floor": [Request("/bench/floor", tuple(name for _, name, _ in STAFF_USERS))],
    }


async def create_staff_and_helpdesks(database: Database) -> tuple[dict[str, int], list[int]]:
    async with database.transaction() as session:
        users = {}
        for username, name, role in STAFF_USERS:
            made = await staff.add_user(
                session=session, username=username, password=PASSWORD, role=role, display_name=name
            )
            users[username] = made.id
        helpdesks = []
        for name, address, _share in HELPDESKS:
            desk = await hours.create_helpdesk(
                session=session, name=name, address=address, actor="staff:coordinatore1"
            )
            for weekday in range(5):
                for opens, closes in ((clock(9), clock(13)), (clock(14), clock(17))):
                    await hours.add_opening_rule(
                        session=session, helpdesk_id=desk.id, weekday=weekday, opens_at=opens,
                        closes_at=closes, slot_minutes=30, places=PLACES,
                        valid_from=date(2024, 9, 1), actor="staff:coordinatore1",
                    )  # fmt: skip
            helpdesks.append(desk.id)
    return users, helpdesks


async def open_site(stack: AsyncExitStack, databases: Databases, size: int) -> Site:
    """A fresh database with `size` cases, its app and a signed-in client, checked."""
    started = time.perf_counter()
    database = await databases.create()
    settings = Settings(database_url=database.url, _env_file=None)
    now = utcnow()
    today = now.astimezone(settings.tz).date()
    users, helpdesks = await create_staff_and_helpdesks(database)
    forms = questionnaires(settings, today)
    workers = {users[u]: u for u, _, role in STAFF_USERS if role is Role.OPERATORE}
    planner = Planner(
        size, now=now, tz=settings.tz, helpdesks=helpdesks, workers=workers,
        coordinator="staff:coordinatore1", forms=forms,
    )  # fmt: skip
    plan = planner.plan()
    check_contacts(plan, size)
    rows = await load(database, plan, settings, forms, now)
    rng = random.Random(SEED - size)
    await check_name_index(database, plan, rng)

    client = await stack.enter_async_context(signed_in(bench_app(settings, database), VIEWER))
    # The counting app has its own engine: the listener is there before its first connection,
    # and the timed app's engine carries none.
    counting_database = Database(database.url, cipher=database.cipher)
    stack.push_async_callback(counting_database.dispose)
    log = StatementLog(counting_database)
    counting = await stack.enter_async_context(
        signed_in(bench_app(settings, counting_database), VIEWER)
    )
    site = Site(
        size=size,
        database=database,
        client=client,
        counting=counting,
        log=log,
        requests=_requests(plan, users[VIEWER], today, rng),
        setup_seconds=time.perf_counter() - started,
        rows=rows,
    )
    await check_pages(site)
    return site


async def check_pages(site: Site) -> None:
    """Every URL answers 200 with what it should show (also the warm-up of every query)."""
    for kind, pool in site.requests.items():
        for request in pool:
            body = (await get(site.client, request.url)).text
            missing = [e for e in request.expect if e not in body]
            if missing:
                raise AssertionError(f"{kind}: GET {request.url} lacks {missing[:3]}")
            if kind == "list" and body.count('<a href="/cases/') < 25:
                raise AssertionError("the first page of cases has fewer than 25 rows")


async def count_statements(site: Site) -> None:
    """SQL per request type through the counting app (5 URLs of each, the most is kept).

    Each URL is requested once before: PostgreSQL statements are then already prepared
    on the connection, as they are on a running server's.
    """
    for kind in COUNTED:
        seen: list[tuple[int, tuple[str, ...], float, tuple[str, ...]]] = []
        for request in site.requests[kind][:5]:
            await get(site.counting, request.url)
        for request in site.requests[kind][:5]:
            site.log.reset()
            await get(site.counting, request.url)
            words = [keyword(s) for s in site.log.statements]
            dml = sum(1 for w in words if w in DML)
            control = tuple(sorted({w for w in words if w not in DML}))
            listing = tuple(" ".join(s.split())[:90] for s in site.log.statements)
            seen.append((dml, control, site.log.seconds * 1000, listing))
        most = max(seen, key=lambda s: s[0])
        site.counted[kind] = Counted(
            most[0], most[1], statistics.median(s[2] for s in seen), most[3]
        )


async def measure_latency(sites: Sequence[Site], options: Options) -> int:
    """Single GETs of every latency request type, interleaved over the data sets."""
    rounds = options.repetitions * BLOCKS
    steps = [(site, kind) for site in sites for kind in LATENCY]
    for number in range(options.warmup + rounds):
        shift = number % len(steps)
        for site, kind in steps[shift:] + steps[:shift]:
            url = site.next_url(kind)
            start = time.perf_counter()
            await get(site.client, url)
            if number >= options.warmup:
                site.latency[kind].append(time.perf_counter() - start)
    return rounds


async def _loop(site: Site, page: str, clients: int) -> float:
    """Requests per second of `page` by `clients` clients at once: LOOP GETs in all, fewer
    if the loop takes more than LOOP_SECONDS (a slow page would make the run last hours).
    """
    done = 0
    start = time.perf_counter()
    deadline = start + LOOP_SECONDS

    async def one_client() -> None:
        nonlocal done
        for _ in range(LOOP // clients):
            await get(site.client, site.next_url(page))
            done += 1
            if time.perf_counter() > deadline:
                return

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return done / (time.perf_counter() - start)


async def measure_rates(sites: Sequence[Site], options: Options) -> int:
    steps = [(site, page, clients) for site in sites for page in PAGES for clients in (1, CLIENTS)]
    for number in range(options.warmup + options.repetitions):
        shift = number % len(steps)
        for site, page, clients in steps[shift:] + steps[:shift]:
            rate = await _loop(site, page, clients)
            if number >= options.warmup:
                site.rates[(page, clients)].append(rate)
    return options.repetitions


# Where a function's own time is counted in the profile's summary: the first match wins.
PACKAGES = (
    ("epoll", "waiting for the driver's thread or socket"),
    ("sqlalchemy", "SQLAlchemy"), ("greenlet", "SQLAlchemy"),
    ("jinja2", "Jinja2 and templates"), ("markupsafe", "Jinja2 and templates"),
    ("/templates/", "Jinja2 and templates"), ("babel", "Babel"),
    ("pydantic", "pydantic"), ("aiosqlite", "driver"), ("asyncpg", "driver"),
    ("sqlite3", "driver"), ("fastapi", "FastAPI, Starlette, httpx"),
    ("starlette", "FastAPI, Starlette, httpx"), ("httpx", "FastAPI, Starlette, httpx"),
    ("anyio", "FastAPI, Starlette, httpx"), ("asyncio", "asyncio"), ("selectors", "asyncio"),
    ("/shared/", "shared/"), ("/dashboard/", "dashboard/"),
)  # fmt: skip
PROFILED = 30  # GETs per request type


def _package(path: str, function: str) -> str:
    where = f"{path} {function}"
    return next((label for key, label in PACKAGES if key in where), "other (builtins, stdlib)")


async def profile(site: Site) -> None:
    """cProfile of GETs of each request type: own time per package, then per function."""
    for kind in COUNTED:
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for _ in range(PROFILED):
            await get(site.client, site.next_url(kind))
        profiler.disable()
        wall = (time.perf_counter() - start) / PROFILED * 1000
        stats = pstats.Stats(profiler)
        own: Counter[str] = Counter()
        for (path, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
            own[_package(path, function)] += row[2]
        print(f"cProfile of {PROFILED} GETs, {kind}, {site.label} cases: {wall:.1f} ms per GET")
        print("  own time per GET, by package (ms): " + ", ".join(
            f"{label} {seconds / PROFILED * 1000:.1f}" for label, seconds in own.most_common()
        ))  # fmt: skip
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.strip_dirs().sort_stats("tottime").print_stats(8)
        lines = out.getvalue().splitlines()
        first = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print("\n".join(lines[first : first + 9]))
        print()


# --- the report ------------------------------------------------------------------------


def _percentile(seconds: Sequence[float], fraction: float) -> float:
    ms = sorted(s * 1000 for s in seconds)
    return statistics.quantiles(ms, n=100, method="inclusive")[round(fraction * 100) - 1]


def _p50(seconds: Sequence[float]) -> float:
    return statistics.median(seconds) * 1000


def _p95(seconds: Sequence[float]) -> float:
    """The median over the blocks (consecutive rounds) of each block's p95, in ms."""
    size = len(seconds) // BLOCKS
    return statistics.median(
        _percentile(seconds[n * size : (n + 1) * size], 0.95) for n in range(BLOCKS)
    )


class Measured(Protocol):
    """A data set's site as the latency table reads it."""

    @property
    def label(self) -> str: ...

    latency: dict[str, list[float]]


def print_latency(sites: Sequence[Measured], kinds: Sequence[str], samples: int) -> list[bool]:
    """The latency table of `kinds` at the smallest and largest data set; each kind's verdict
    on p95 growth (also used by `bench_plans`)."""
    small, large = sites[0], sites[-1]
    a, b = small.label, large.label
    print(
        f"latency of one GET (ms), {samples} interleaved samples per request and data set; "
        f"p95 = median of {BLOCKS} blocks' p95 (last column: p95 of all samples, for the noise)"
    )
    rows, verdicts = [], []
    for kind in kinds:
        p95s = [_p95(s.latency[kind]) for s in sites]
        growth = p95s[-1] / p95s[0]
        whole = _percentile(large.latency[kind], 0.95) / _percentile(small.latency[kind], 0.95)
        ok = growth <= MAX_P95_GROWTH
        verdicts.append(ok)
        rows.append(
            [kind, f"{_p50(small.latency[kind]):.1f}", f"{p95s[0]:.1f}",
             f"{_p50(large.latency[kind]):.1f}", f"{p95s[-1]:.1f}", f"{growth:.2f}",
             verdict(ok), f"{whole:.2f}"]
        )  # fmt: skip
    headers = ["request", f"{a} p50", "p95", f"{b} p50", "p95", f"p95 {b}/{a}", "target", "all"]
    print(table(headers, rows))
    print()
    return verdicts


def report(sites: Sequence[Site], samples: int, repetitions: int) -> None:
    small, large = sites[0], sites[-1]
    a, b = small.label, large.label
    verdicts = print_latency(sites, LATENCY, samples)
    print(
        f"requests/s: median of {repetitions} loops of {LOOP} GETs (or {LOOP_SECONDS:g} s); "
        f"sequential, and {CLIENTS} clients at once (x{CLIENTS}); target on the sequential loops"
    )
    rows = []
    page_verdicts = []
    for page in PAGES:
        row = [page]
        passed = True
        for site in sites:
            for clients in (1, CLIENTS):
                rate = statistics.median(site.rates[(page, clients)])
                floor_rate = statistics.median(site.rates[("floor", clients)])
                row += [f"{rate:.0f}", f"{rate / floor_rate:.2f}"]
                if clients == 1:
                    passed = passed and rate / floor_rate >= MIN_PAGE_OVER_FLOOR
        growth = statistics.median(large.rates[(page, 1)]) / statistics.median(
            small.rates[(page, 1)]
        )
        row.append(f"{growth:.2f}")
        if page == "floor":
            row.append("")
        else:
            page_verdicts.append(passed)
            row.append(verdict(passed))
        rows.append(row)
    headers = ["page"]
    for site in sites:
        headers += [f"{site.label} req/s", "/floor", f"{site.label} x{CLIENTS}", "/floor"]
    print(table([*headers, f"{b}/{a}", "target"], rows))
    print()
    print("SQL per request (through the counting app; most of 5 URLs; SQL ms = median time")
    print("in the driver's execute calls)")
    rows = []
    count_verdicts = []
    for kind in COUNTED:
        row = [kind]
        for site in sites:
            counted = site.counted[kind]
            row += [str(counted.statements), " ".join(counted.control) or "-",
                    f"{counted.sql_ms:.1f}"]  # fmt: skip
        most = max(site.counted[kind].statements for site in sites)
        ok = most <= MAX_STATEMENTS
        if kind != "floor":
            count_verdicts.append(ok)
        rows.append([*row, verdict(ok)])
    headers = ["request"]
    for site in sites:
        headers += [f"{site.label} statements", "+", "SQL ms"]
    print(table([*headers, "target"], rows))
    print()
    print(f"statements of each request on {b} cases:")
    for kind in COUNTED:
        print(f"  {kind}:")
        for line in large.counted[kind].listing:
            print(f"    {line}")
    print()
    print(
        f"{'p95 ' + b + '/' + a + ' <= ' + format(MAX_P95_GROWTH, 'g') + ':':<36}"
        f"{sum(verdicts)}/{len(verdicts)} request types  {verdict(all(verdicts))}"
    )
    print(
        f"{'agenda, case >= ' + format(MIN_PAGE_OVER_FLOOR, 'g') + ' x floor req/s:':<36}"
        f"{sum(page_verdicts)}/{len(page_verdicts)} pages  {verdict(all(page_verdicts))}"
    )
    print(
        f"{'SQL statements per page <= ' + str(MAX_STATEMENTS) + ':':<36}"
        f"{sum(count_verdicts)}/{len(count_verdicts)} request types  "
        f"{verdict(all(count_verdicts))}"
    )


async def run(databases: Databases, options: Options) -> None:
    async with AsyncExitStack() as stack:
        sites: list[Site] = []
        for size in SIZES:
            site = await open_site(stack, databases, size)
            rows = ", ".join(f"{name} {count:,}" for name, count in site.rows.items())
            print(f"  {size:>7,} cases in {site.setup_seconds:.0f} s: {rows}")
            sites.append(site)
        print(
            f"signed in as {VIEWER} (an operatore: own and unassigned cases); the agenda's day "
            f"has {len(PLANTED_TIMES)} bookings\n"
        )
        for site in sites:
            await count_statements(site)
        # What setup left behind stays out of the collector's way while timing.
        gc.collect()
        gc.freeze()
        try:
            samples = await measure_latency(sites, options)
            repetitions = await measure_rates(sites, options)
        finally:
            gc.unfreeze()
        report(sites, samples, repetitions)
        if options.profile:
            print()
            await profile(sites[-1])
