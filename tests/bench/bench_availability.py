"""Availability over one year for one helpdesk, with 10k and with 100k bookings.

The call under test is `list_free_slots` for one helpdesk over a 366-day horizon. Its
floor is the least work any implementation must do, measured in the same run on the
same database: one raw SQL range query for the occupied slot rows, one for the hours
(weekly rules, extra openings, closures), then `generate_slots` for the year and a dict
look-up of the places taken in each slot.

Each data set lives in its own fresh database, and all the calls on both are timed
interleaved, so that the 100k/10k ratio is not skewed by the machine's load changing
between the two. Setup writes straight to the tables with Core `insert()` in chunks
(not through the service), keeping `slot.taken` equal to the booked + attended +
no-show bookings of the slot and `slot.capacity` equal to its places.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import time as clock
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    Integer,
    String,
    Table,
    Time,
    bindparam,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.booking.availability import FreeSlot, _schedule_query, list_free_slots
from shared.booking.models import (
    Booking,
    BookingState,
    Closure,
    ExtraOpening,
    Helpdesk,
    OpeningRule,
    Slot,
)
from shared.booking.schedule import DayClosure, DayHours, SlotTime, WeeklyHours, generate_slots
from shared.citizens.models import Citizen
from shared.db import Base, Database, UTCDateTime
from shared.settings import Settings
from tests.bench._support import (
    Call,
    Databases,
    Options,
    Stats,
    count_statements,
    table,
    timed,
    timed_sync,
    verdict,
)

TITLE = "Booking availability"

YEAR = 2027
SIZES = (10_000, 100_000)
PLACES = 40
SATURDAY_PLACES = 20
SLOT_MINUTES = 30
CHUNK = 5_000
SEED = 20261124

# Targets.
MAX_SERVICE_OVER_FLOOR = 3.0
MAX_GROWTH_10K_TO_100K = 1.3
TARGET_STATEMENTS = 1

# Of all bookings, the share that holds a place (booked, attended, no-show); the rest
# were cancelled. Among those holding a place: booked, attended, no-show.
HOLDING_SHARE = 0.85
BOOKED_SHARE, ATTENDED_SHARE = 0.30, 0.60
CANCELLED = (
    BookingState.CANCELLED_BY_CITIZEN.value,
    BookingState.CANCELLED_BY_CITIZEN.value,
    BookingState.CANCELLED_BY_STAFF.value,
)
BOOKED = BookingState.BOOKED.value
HOLDS_A_PLACE = {BOOKED, BookingState.ATTENDED.value, BookingState.NO_SHOW.value}

HOLIDAYS = {
    date(YEAR, 1, 1): "Capodanno",
    date(YEAR, 1, 6): "Epifania",
    date(YEAR, 3, 29): "Lunedì dell'Angelo",
    date(YEAR, 4, 25): "Liberazione",
    date(YEAR, 5, 1): "Festa del lavoro",
    date(YEAR, 6, 2): "Festa della Repubblica",
    date(YEAR, 8, 15): "Ferragosto",
    date(YEAR, 11, 1): "Ognissanti",
    date(YEAR, 12, 8): "Immacolata",
    date(YEAR, 12, 25): "Natale",
    date(YEAR, 12, 26): "Santo Stefano",
}
SUMMER_BREAK = (date(YEAR, 8, 9), date(YEAR, 8, 20))
# (day, from, to): afternoons of staff training and the afternoons before the holidays.
PARTIAL_CLOSURES = [
    (date(YEAR, 2, 17), time(14), time(17)),
    (date(YEAR, 4, 7), time(11), time(13)),
    (date(YEAR, 5, 12), time(14), time(17)),
    (date(YEAR, 10, 13), time(14), time(17)),
    (date(YEAR, 12, 24), time(14), time(17)),
    (date(YEAR, 12, 31), time(14), time(17)),
]
# No afternoons in July and August.
SUMMER_HOURS = (date(YEAR, 7, 1), date(YEAR, 8, 31))


# --- setup ---------------------------------------------------------------------------


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


HELPDESK, OPENING_RULE, EXTRA_OPENING, CLOSURE = (
    _table(m) for m in (Helpdesk, OpeningRule, ExtraOpening, Closure)
)
CITIZEN, SLOT, BOOKING = (_table(m) for m in (Citizen, Slot, Booking))


def _first_saturday(year: int, month: int) -> date:
    day = date(year, month, 1)
    return day + timedelta(days=(5 - day.weekday()) % 7)


def _schedule(helpdesk_id: int) -> tuple[list[dict[str, Any]], ...]:
    """Weekly rules, extra openings and closures of the benchmark's helpdesk."""
    rules: list[dict[str, Any]] = []
    for weekday in range(5):
        common: dict[str, Any] = {
            "helpdesk_id": helpdesk_id,
            "weekday": weekday,
            "slot_minutes": SLOT_MINUTES,
        }
        rules += [
            # Last year's hours: outside the horizon, filtered out by the query.
            common | {"opens_at": time(9), "closes_at": time(12), "places": 10,
                      "valid_from": date(YEAR - 2, 9, 1), "valid_until": date(YEAR - 1, 8, 31)},
            common | {"opens_at": time(9), "closes_at": time(13), "places": PLACES,
                      "valid_from": date(YEAR - 1, 9, 1), "valid_until": None},
            common | {"opens_at": time(14), "closes_at": time(17), "places": PLACES,
                      "valid_from": date(YEAR - 1, 9, 1),
                      "valid_until": SUMMER_HOURS[0] - timedelta(days=1)},
            common | {"opens_at": time(14), "closes_at": time(17), "places": PLACES,
                      "valid_from": SUMMER_HOURS[1] + timedelta(days=1), "valid_until": None},
        ]  # fmt: skip
    extra = [
        {"helpdesk_id": helpdesk_id, "day": _first_saturday(YEAR, month), "opens_at": time(9),
         "closes_at": time(12), "slot_minutes": SLOT_MINUTES, "places": SATURDAY_PLACES,
         "note": "Sabato aperto"}
        for month in (2, 3, 4, 5, 6, 9, 10, 11)
    ] + [
        {"helpdesk_id": helpdesk_id, "day": day, "opens_at": time(17), "closes_at": time(19),
         "slot_minutes": SLOT_MINUTES, "places": PLACES, "note": "Apertura serale"}
        for day in (date(YEAR, 3, 11), date(YEAR, 10, 21))
    ]  # fmt: skip
    closures: list[dict[str, Any]] = [
        {"helpdesk_id": helpdesk_id, "day": day, "starts_at": None, "ends_at": None,
         "reason": reason}
        for day, reason in HOLIDAYS.items()
    ]  # fmt: skip
    day = SUMMER_BREAK[0]
    while day <= SUMMER_BREAK[1]:
        closures.append(
            {"helpdesk_id": helpdesk_id, "day": day, "starts_at": None, "ends_at": None,
             "reason": "Chiusura estiva"}
        )  # fmt: skip
        day += timedelta(days=1)
    closures += [
        {"helpdesk_id": helpdesk_id, "day": day, "starts_at": start, "ends_at": end,
         "reason": "Formazione"}
        for day, start, end in PARTIAL_CLOSURES
    ]  # fmt: skip
    return rules, extra, closures


async def _insert(
    connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    for start in range(0, len(rows), CHUNK):
        await connection.execute(insert(table), list(rows[start : start + CHUNK]))


async def create_helpdesk(database: Database, tz: ZoneInfo) -> tuple[int, list[SlotTime]]:
    """The helpdesk and its hours; returns its id and every slot it offers in the year."""
    async with database.engine.begin() as connection:
        helpdesk_id = (
            await connection.execute(
                insert(HELPDESK)
                .values(name="Sportello Centro", address="Via Roma 1, Cernusco sul Naviglio")
                .returning(HELPDESK.c.id)
            )
        ).scalar_one()
        rules, extra, closures = _schedule(helpdesk_id)
        await _insert(connection, OPENING_RULE, rules)
        await _insert(connection, EXTRA_OPENING, extra)
        await _insert(connection, CLOSURE, closures)
    slots = generate_slots(
        weekly=[WeeklyHours(**r) for r in rules],
        extra=[DayHours(**{k: v for k, v in o.items() if k != "note"}) for o in extra],
        closures=[DayClosure(**{k: v for k, v in c.items() if k != "reason"}) for c in closures],
        first_day=date(YEAR, 1, 1),
        last_day=date(YEAR, 12, 31),
        tz=tz,
    )
    return helpdesk_id, slots


@dataclass(frozen=True, slots=True)
class Dataset:
    bookings: int
    slot_rows: int
    full_slots: int
    seconds: float


def _plan_bookings(
    slots: Sequence[SlotTime], count: int, rng: random.Random
) -> list[tuple[int, str]]:
    """(slot index, state) of `count` bookings, some slots more popular than others.

    Each slot gets a random weight, mornings (before 11:00 UTC) 30% more; a booking that
    holds a place and picks a full slot takes the next slot with room.
    """
    weights = [
        rng.uniform(0.5, 1.5) * (1.3 if s.starts_at.hour < 11 else 1.0)  # UTC hour
        for s in slots
    ]
    cumulative = [0.0] * len(weights)
    total = 0.0
    for index, weight in enumerate(weights):
        total += weight
        cumulative[index] = total
    holding = round(count * HOLDING_SHARE)
    if holding > sum(s.capacity for s in slots):
        raise ValueError(f"{holding} bookings do not fit in {len(slots)} slots")
    picks = rng.choices(range(len(slots)), cum_weights=cumulative, k=count)
    taken = [0] * len(slots)
    plan: list[tuple[int, str]] = []
    for number, pick in enumerate(picks):
        if number >= holding:
            plan.append((pick, rng.choice(CANCELLED)))
            continue
        index = pick
        while taken[index] >= slots[index].capacity:  # full: the next slot with room
            index = (index + 1) % len(slots)
        taken[index] += 1
        draw = rng.random()
        state = (
            BookingState.BOOKED
            if draw < BOOKED_SHARE
            else BookingState.ATTENDED
            if draw < BOOKED_SHARE + ATTENDED_SHARE
            else BookingState.NO_SHOW
        )
        plan.append((index, state.value))
    return plan


# Slot rows whose `taken` differs from their bookings that hold a place: must be none.
INCONSISTENT_SLOTS = text(
    "SELECT count(*) FROM slot WHERE taken <> (SELECT count(*) FROM booking "
    "WHERE booking.slot_id = slot.id AND state IN ('booked', 'attended', 'no_show'))"
)


async def populate(
    database: Database, helpdesk_id: int, slots: Sequence[SlotTime], count: int
) -> Dataset:
    """Citizens, slot rows and `count` bookings of the helpdesk, on an empty database."""
    started = clock.perf_counter()
    rng = random.Random(SEED + count)
    plan = _plan_bookings(slots, count, rng)
    booked = sum(1 for _, state in plan if state == BOOKED)
    async with database.engine.begin() as connection:
        # One citizen per active booking (the partial unique index), plus a pool of
        # citizens with only past or cancelled bookings.
        citizens = booked + count // 10
        await _insert(
            connection,
            CITIZEN,
            [
                {"telegram_user_id": 10_000_000 + n, "telegram_chat_id": 10_000_000 + n,
                 "name": f"Cittadino {n}"}
                for n in range(citizens)
            ],
        )  # fmt: skip
        citizen_ids = list(
            (await connection.execute(select(CITIZEN.c.id).order_by("id"))).scalars()
        )
        used = sorted({index for index, _ in plan})
        taken = [0] * len(slots)
        for index, state in plan:
            if state in HOLDS_A_PLACE:
                taken[index] += 1
        await _insert(
            connection,
            SLOT,
            [
                {"helpdesk_id": helpdesk_id, "starts_at": slots[i].starts_at,
                 "ends_at": slots[i].ends_at, "capacity": slots[i].capacity, "taken": taken[i]}
                for i in used
            ],
        )  # fmt: skip
        slot_ids = {
            starts_at: slot_id
            for slot_id, starts_at in await connection.execute(
                select(SLOT.c.id, SLOT.c.starts_at).where(SLOT.c.helpdesk_id == helpdesk_id)
            )
        }
        active = iter(citizen_ids[:booked])
        pool = citizen_ids[booked:] or citizen_ids
        rows: list[dict[str, Any]] = []
        for number, (index, state) in enumerate(plan):
            slot = slots[index]
            created_at = slot.starts_at - timedelta(
                days=rng.randint(1, 30), hours=rng.randint(0, 9)
            )
            closed_at = (
                None
                if state == BOOKED
                else slot.ends_at
                if state in HOLDS_A_PLACE
                else created_at + (slot.starts_at - created_at) * rng.random()
            )
            rows.append(
                {"code": f"B{number:07d}",
                 "citizen_id": next(active) if state == BOOKED
                 else rng.choice(pool),
                 "helpdesk_id": helpdesk_id, "slot_id": slot_ids[slot.starts_at],
                 "starts_at": slot.starts_at, "ends_at": slot.ends_at, "state": state,
                 "created_at": created_at, "created_by": "bot", "closed_at": closed_at,
                 "closed_by": None if closed_at is None else "operatore"}
            )  # fmt: skip
        await _insert(connection, BOOKING, rows)
        await connection.execute(text("ANALYZE"))
        stored = (await connection.execute(select(func.count()).select_from(BOOKING))).scalar_one()
        if stored != count:
            raise AssertionError(f"{stored} bookings stored, {count} planned")
        if (await connection.execute(INCONSISTENT_SLOTS)).scalar_one():
            raise AssertionError("slot.taken does not match the bookings holding a place")
    full = sum(1 for i in used if taken[i] >= slots[i].capacity)
    return Dataset(count, len(used), full, clock.perf_counter() - started)


# --- the floor -----------------------------------------------------------------------

FLOOR_OCCUPIED = text(
    "SELECT starts_at, taken, capacity FROM slot "
    "WHERE helpdesk_id = :helpdesk_id AND starts_at >= :since AND starts_at < :until "
    "AND taken > 0"
).bindparams(bindparam("since", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime()))

FLOOR_HOURS = (
    text(
        "SELECT 'rule' AS kind, weekday, valid_from AS day_from, valid_until AS day_until, "
        "opens_at AS time_from, closes_at AS time_to, slot_minutes AS minutes, places "
        "FROM opening_rule WHERE helpdesk_id = :helpdesk_id AND valid_from <= :last_day "
        "AND (valid_until IS NULL OR valid_until >= :first_day) "
        "UNION ALL "
        "SELECT 'extra', NULL, day, day, opens_at, closes_at, slot_minutes, places "
        "FROM extra_opening WHERE helpdesk_id = :helpdesk_id "
        "AND day BETWEEN :first_day AND :last_day "
        "UNION ALL "
        "SELECT 'closure', NULL, day, day, starts_at, ends_at, NULL, NULL "
        "FROM closure WHERE helpdesk_id = :helpdesk_id AND day BETWEEN :first_day AND :last_day"
    )
    .bindparams(bindparam("first_day", type_=Date()), bindparam("last_day", type_=Date()))
    .columns(
        kind=String(),
        weekday=Integer(),
        day_from=Date(),
        day_until=Date(),
        time_from=Time(),
        time_to=Time(),
        minutes=Integer(),
        places=Integer(),
    )
)


def _utc(value: datetime | str) -> datetime:
    """A raw timestamp as aware UTC: asyncpg gives datetimes, SQLite gives text."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


@dataclass(frozen=True, slots=True)
class Hours:
    weekly: list[WeeklyHours]
    extra: list[DayHours]
    closures: list[DayClosure]


async def floor_hours(
    session: AsyncSession, helpdesk_id: int, first_day: date, last_day: date
) -> Hours:
    """Weekly rules, extra openings and closures from the floor's raw statement."""
    hours = Hours([], [], [])
    rows = await session.execute(
        FLOOR_HOURS, {"helpdesk_id": helpdesk_id, "first_day": first_day, "last_day": last_day}
    )
    for kind, weekday, day_from, day_until, time_from, time_to, minutes, places in rows:
        if kind == "rule":
            hours.weekly.append(WeeklyHours(helpdesk_id, weekday, time_from, time_to, minutes,
                                            places, day_from, day_until))  # fmt: skip
        elif kind == "extra":
            hours.extra.append(DayHours(helpdesk_id, day_from, time_from, time_to, minutes, places))
        else:
            hours.closures.append(DayClosure(helpdesk_id, day_from, time_from, time_to))
    return hours


async def floor(
    session: AsyncSession, helpdesk_id: int, since: datetime, until: datetime, tz: ZoneInfo
) -> list[tuple[datetime, int]]:
    """(start, places left) of every slot with room: the least work any implementation does."""
    first_day, last_day = since.astimezone(tz).date(), until.astimezone(tz).date()
    occupied = await session.execute(
        FLOOR_OCCUPIED, {"helpdesk_id": helpdesk_id, "since": since, "until": until}
    )
    taken = {_utc(starts_at): used for starts_at, used, _capacity in occupied}
    hours = await floor_hours(session, helpdesk_id, first_day, last_day)
    slots = generate_slots(
        weekly=hours.weekly,
        extra=hours.extra,
        closures=hours.closures,
        first_day=first_day,
        last_day=last_day,
        tz=tz,
    )
    free: list[tuple[datetime, int]] = []
    for slot in slots:
        if since <= slot.starts_at < until:
            left = slot.capacity - taken.get(slot.starts_at, 0)
            if left > 0:
                free.append((slot.starts_at, left))
    return free


# --- where the time goes -------------------------------------------------------------


async def _service_sql(
    session: AsyncSession, helpdesk_id: int, since: datetime, until: datetime, tz: ZoneInfo
) -> object:
    """Only the service's statement: executed, rows fetched and converted, nothing else."""
    first_day, last_day = since.astimezone(tz).date(), until.astimezone(tz).date()
    query = _schedule_query(helpdesk_id, first_day, last_day, since, until)
    return (await session.execute(query)).all()


async def _floor_sql(
    session: AsyncSession, helpdesk_id: int, since: datetime, until: datetime, tz: ZoneInfo
) -> object:
    """Only the floor's two raw statements, rows fetched."""
    first_day, last_day = since.astimezone(tz).date(), until.astimezone(tz).date()
    params = {"helpdesk_id": helpdesk_id, "since": since, "until": until}
    occupied = (await session.execute(FLOOR_OCCUPIED, params)).all()
    params = {"helpdesk_id": helpdesk_id, "first_day": first_day, "last_day": last_day}
    return occupied, (await session.execute(FLOOR_HOURS, params)).all()


def _profile(stats: cProfile.Profile, limit: int = 14) -> str:
    out = io.StringIO()
    pstats.Stats(stats, stream=out).strip_dirs().sort_stats("tottime").print_stats(limit)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start : start + limit + 1])


# --- the benchmark -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    dataset: Dataset
    offered_slots: int
    free_slots: int
    statements: int
    floor_statements: int
    stats: dict[str, Stats]

    @property
    def ratio(self) -> float:
        return self.stats["service"].median / self.stats["floor"].median


@dataclass(slots=True)
class Case:
    """One data set in its own database, checked and ready to be timed."""

    database: Database
    dataset: Dataset
    service: Call
    calls: list[tuple[str, Call]]
    sweep: Callable[[], list[SlotTime]]
    offered_slots: int
    free_slots: int
    statements: int
    floor_statements: int
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def result(self) -> Result:
        return Result(
            dataset=self.dataset,
            offered_slots=self.offered_slots,
            free_slots=self.free_slots,
            statements=self.statements,
            floor_statements=self.floor_statements,
            stats={name: Stats.of(seconds) for name, seconds in self.samples.items()},
        )


async def prepare(
    database: Database, settings: Settings, helpdesk_id: int, now: datetime, dataset: Dataset
) -> Case:
    """The calls to time on one data set, after checking that the floor gives the same answer."""
    since, until = now, now + timedelta(days=settings.booking_horizon_days)
    tz = settings.tz
    first_day, last_day = since.astimezone(tz).date(), until.astimezone(tz).date()

    async def service_call(session: AsyncSession) -> list[FreeSlot]:
        return await list_free_slots(
            session=session, settings=settings, now=now, helpdesk_id=helpdesk_id
        )

    async def floor_call(session: AsyncSession) -> list[tuple[datetime, int]]:
        return await floor(session, helpdesk_id, since, until, tz)

    async def service_sql(session: AsyncSession) -> object:
        return await _service_sql(session, helpdesk_id, since, until, tz)

    async def floor_sql(session: AsyncSession) -> object:
        return await _floor_sql(session, helpdesk_id, since, until, tz)

    # Same answer, or the comparison means nothing.
    async with database.transaction(read_only=True) as session:
        by_service = await service_call(session)
        by_floor = await floor_call(session)
        hours = await floor_hours(session, helpdesk_id, first_day, last_day)
    if [(s.starts_at, s.places_left) for s in by_service] != by_floor:
        raise AssertionError("the floor and the service disagree on the free slots")

    def sweep() -> list[SlotTime]:
        return generate_slots(
            weekly=hours.weekly,
            extra=hours.extra,
            closures=hours.closures,
            first_day=first_day,
            last_day=last_day,
            tz=tz,
        )

    return Case(
        database=database,
        dataset=dataset,
        service=service_call,
        calls=[
            ("service", service_call),
            ("floor", floor_call),
            ("service_sql", service_sql),
            ("floor_sql", floor_sql),
        ],
        sweep=sweep,
        offered_slots=sum(1 for s in sweep() if since <= s.starts_at < until),
        free_slots=len(by_service),
        statements=len(await count_statements(database, service_call)),
        floor_statements=len(await count_statements(database, floor_call)),
    )


async def measure(cases: Sequence[Case], options: Options) -> list[Result]:
    """Time every call of every case, interleaved, so that all share the machine's noise."""
    steps = [(case, name, call) for case in cases for name, call in case.calls]
    for repetition in range(options.warmup + options.repetitions):
        keep = repetition >= options.warmup
        shift = repetition % len(steps)  # who goes first rotates
        for case, name, call in steps[shift:] + steps[:shift]:
            seconds = await timed(case.database, call)
            if keep:
                case.samples[name].append(seconds)
        for case in cases:
            seconds = timed_sync(case.sweep)
            if keep:
                case.samples["generate_slots"].append(seconds)
    if options.profile:
        for case in cases:
            profiler = cProfile.Profile()
            for _ in range(10):
                async with case.database.transaction(read_only=True) as session:
                    await session.connection()
                    profiler.enable()
                    await case.service(session)
                    profiler.disable()
            print(f"cProfile of 10 calls, {case.dataset.bookings:,} bookings (by own time):")
            print(_profile(profiler))
            print()
    return [case.result() for case in cases]


def _ms(value: float) -> str:
    return f"{value:.1f}"


def report(results: Sequence[Result]) -> None:
    print(
        "milliseconds per call, median and p90 of",
        results[0].stats["service"].samples,
        "timed runs",
    )
    rows = []
    for r in results:
        service, floor_ = r.stats["service"], r.stats["floor"]
        rows.append(
            [f"{r.dataset.bookings:,}", f"{r.dataset.slot_rows:,}", f"{r.offered_slots:,}",
             f"{r.free_slots:,}", _ms(service.median), _ms(service.p90), _ms(floor_.median),
             _ms(floor_.p90), f"{r.ratio:.2f}", str(r.statements)]
        )  # fmt: skip
    headers = ["bookings", "slot rows", "offered", "free", "service p50", "p90",
               "floor p50", "p90", "service/floor", "statements"]  # fmt: skip
    print(table(headers, rows))
    print()
    print("where the time goes (medians, ms; other = the call minus its SQL and generate_slots):")
    rows = []
    for r in results:
        median = {name: stats.median for name, stats in r.stats.items()}
        sweep = median["generate_slots"]
        rows.append(
            [f"{r.dataset.bookings:,}", _ms(median["service"]), _ms(median["service_sql"]),
             _ms(median["service"] - median["service_sql"] - sweep), _ms(median["floor"]),
             _ms(median["floor_sql"]), _ms(median["floor"] - median["floor_sql"] - sweep),
             _ms(sweep)]
        )  # fmt: skip
    headers = ["bookings", "service", "SQL+rows", "other", "floor", "SQL+rows", "other",
               "generate_slots"]  # fmt: skip
    print(table(headers, rows))
    print()
    for r in results:
        print(
            f"service/floor, {r.dataset.bookings:>7,} bookings: {r.ratio:5.2f}"
            f"  (target <= {MAX_SERVICE_OVER_FLOOR:g})  {verdict(r.ratio <= MAX_SERVICE_OVER_FLOOR)}"
        )
    small, large = results[0], results[-1]
    growth = large.stats["service"].median / small.stats["service"].median
    label = f"service {large.dataset.bookings // 1000}k/{small.dataset.bookings // 1000}k:"
    print(
        f"{label:<32}{growth:5.2f}  (target <= {MAX_GROWTH_10K_TO_100K:g})"
        f"  {verdict(growth <= MAX_GROWTH_10K_TO_100K)}"
    )
    most = max(r.statements for r in results)
    print(
        f"{'statements per call:':<32}{most:5d}  (target {TARGET_STATEMENTS})"
        f"  {verdict(most <= TARGET_STATEMENTS)}  (floor: {results[0].floor_statements})"
    )


async def run(databases: Databases, options: Options) -> None:
    cases: list[Case] = []
    for size in SIZES:
        # Each data set in its own database, both alive, so that they are timed interleaved.
        database = await databases.create()
        settings = Settings(
            database_url=database.url,
            booking_horizon_days=366,
            booking_min_notice_minutes=0,
            _env_file=None,
        )
        now = datetime(YEAR, 1, 1, tzinfo=settings.tz)
        helpdesk_id, slots = await create_helpdesk(database, settings.tz)
        if not cases:
            print(
                f"one helpdesk, {YEAR}: {len(slots):,} slots of {SLOT_MINUTES} minutes "
                f"({PLACES} places; Saturdays {SATURDAY_PLACES}), {len(HOLIDAYS)} holidays; "
                f"horizon {settings.booking_horizon_days} days from {now:%Y-%m-%d %H:%M %Z}"
            )
        dataset = await populate(database, helpdesk_id, slots, size)
        print(
            f"  {size:>7,} bookings: {dataset.slot_rows:,} slot rows, {dataset.full_slots:,} full,"
            f" set up in {dataset.seconds:.1f} s"
        )
        cases.append(await prepare(database, settings, helpdesk_id, now, dataset))
    print()
    report(await measure(cases, options))
