"""Helpdesks and their hours: weekly rules, closures, extra openings (SPEC section 4).

Staff changes to the hours are audited; a change that leaves booked citizens without
their slot returns (or lists, `stranded_bookings`) those bookings, so staff move or
cancel each one and none is silently dropped. Services never commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.booking import agenda
from shared.booking.errors import (
    HelpdeskNotFound,
    InvalidSchedule,
    OverlappingRules,
    ScheduleItemNotFound,
    TextTooLong,
)
from shared.booking.models import (
    Booking,
    BookingState,
    Closure,
    ExtraOpening,
    Helpdesk,
    OpeningRule,
)
from shared.booking.schedule import DayClosure, DayHours, WeeklyHours, generate_slots
from shared.citizens.models import Citizen
from shared.db import utcnow
from shared.i18n import DEFAULT_LANGUAGE, available_languages
from shared.settings import Settings

MIN_SLOT_MINUTES, MAX_SLOT_MINUTES = 5, 480
MIN_PLACES, MAX_PLACES = 1, 100
# Longest texts staff may write, as their columns hold them (directions: what a message fits).
MAX_HELPDESK_NAME = 120
MAX_ADDRESS = 200
MAX_DIRECTIONS = 2000
MAX_CLOSURE_REASON = 200
MAX_NOTE = 200


# These two would sit in shared/booking/errors.py; they are here while that file is being
# changed by another piece of work. Each names the language whose directions it refuses.
class DirectionsTooLong(TextTooLong):
    """Directions in `language` longer than MAX_DIRECTIONS (`field` stays "directions")."""

    def __init__(self, language: str, max_length: int) -> None:
        super().__init__("directions", max_length)
        self.language = language


class ItalianDirectionsMissing(InvalidSchedule):
    """Directions given in another language but not in Italian, which everyone falls back to."""

    code = "italian_directions_missing"

    def __init__(self) -> None:
        super().__init__("Directions in another language need the Italian ones too.")
        self.language = DEFAULT_LANGUAGE


async def _record(
    session: AsyncSession,
    actor: str,
    action: str,
    helpdesk_id: int,
    details: dict[str, Any] | None = None,
) -> None:
    """Every change to a helpdesk or its hours goes in the audit log under the helpdesk."""
    await audit.record(
        session=session,
        actor=actor,
        action=action,
        object_type="helpdesk",
        object_id=str(helpdesk_id),
        details=details,
    )


async def _remove(
    session: AsyncSession,
    item: OpeningRule | Closure | ExtraOpening,
    actor: str,
    action: str,
    details: dict[str, Any],
) -> int:
    """Delete a rule, closure or extra opening and record it; returns the helpdesk's id."""
    helpdesk_id = item.helpdesk_id
    await session.delete(item)
    await session.flush()
    await _record(session, actor, action, helpdesk_id, details)
    return helpdesk_id


def _bounded(field: str, text: str, max_length: int) -> str:
    """`text` without surrounding spaces; `TextTooLong` if still longer than `max_length`."""
    text = text.strip()
    if len(text) > max_length:
        raise TextTooLong(field, max_length)
    return text


# Directions by language ("it" → text); a plain text is the Italian directions.
DirectionsGiven = Mapping[str, str] | str


def clean_directions(directions: DirectionsGiven) -> dict[str, str]:
    """The directions without surrounding spaces nor empty languages, Italian first.

    Refused: a language the program doesn't speak, a text past MAX_DIRECTIONS
    (`DirectionsTooLong`), other languages without Italian (`ItalianDirectionsMissing`).
    """
    given = {DEFAULT_LANGUAGE: directions} if isinstance(directions, str) else directions
    unknown = set(given) - set(available_languages())
    if unknown:
        raise InvalidSchedule("Directions can only be given in the program's languages.")
    cleaned = {}
    for language in available_languages():
        text = given.get(language, "").strip()
        if len(text) > MAX_DIRECTIONS:
            raise DirectionsTooLong(language, MAX_DIRECTIONS)
        if text:
            cleaned[language] = text
    if cleaned and DEFAULT_LANGUAGE not in cleaned:
        raise ItalianDirectionsMissing()
    return cleaned


def _helpdesk_texts(
    name: str, address: str, directions: DirectionsGiven
) -> tuple[str, str, dict[str, str]]:
    name, address = name.strip(), address.strip()
    if not name or not address:
        raise InvalidSchedule("A helpdesk needs a name and an address.")
    return (
        _bounded("name", name, MAX_HELPDESK_NAME),
        _bounded("address", address, MAX_ADDRESS),
        clean_directions(directions),
    )


def _set_directions(helpdesk: Helpdesk, directions: dict[str, str]) -> None:
    others = dict(directions)
    helpdesk.directions = others.pop(DEFAULT_LANGUAGE, "")
    helpdesk.directions_translations = others


async def create_helpdesk(
    *,
    session: AsyncSession,
    name: str,
    address: str,
    directions: DirectionsGiven = "",
    actor: str,
) -> Helpdesk:
    """Open a new helpdesk (sportello) where citizens can book interviews.

    `directions`: by language, Italian required when there are any (a plain text is Italian).
    """
    name, address, by_language = _helpdesk_texts(name, address, directions)
    helpdesk = Helpdesk(name=name, address=address)
    _set_directions(helpdesk, by_language)
    session.add(helpdesk)
    await session.flush()
    await _record(
        session,
        actor,
        "helpdesk.create",
        helpdesk.id,
        {"name": helpdesk.name, "directions": list(by_language)},
    )
    return helpdesk


async def get_helpdesk(*, session: AsyncSession, helpdesk_id: int) -> Helpdesk:
    helpdesk = await session.get(Helpdesk, helpdesk_id)
    if helpdesk is None:
        raise HelpdeskNotFound(f"No helpdesk {helpdesk_id}.")
    return helpdesk


async def list_helpdesks(*, session: AsyncSession, active_only: bool = True) -> list[Helpdesk]:
    query = select(Helpdesk).order_by(Helpdesk.name)
    if active_only:
        query = query.where(Helpdesk.active.is_(True))
    return list((await session.scalars(query)).all())


async def set_helpdesk_active(
    *, session: AsyncSession, helpdesk_id: int, active: bool, actor: str
) -> Helpdesk:
    """Open or close a helpdesk to new bookings (existing bookings stay)."""
    helpdesk = await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    helpdesk.active = active
    await _record(
        session, actor, "helpdesk.activate" if active else "helpdesk.deactivate", helpdesk_id
    )
    return helpdesk


def _check_hours(opens_at: time, closes_at: time, slot_minutes: int, places: int) -> None:
    if opens_at >= closes_at:
        raise InvalidSchedule("The closing time must be after the opening time.")
    if not MIN_SLOT_MINUTES <= slot_minutes <= MAX_SLOT_MINUTES:
        raise InvalidSchedule(
            f"A slot lasts between {MIN_SLOT_MINUTES} and {MAX_SLOT_MINUTES} minutes."
        )
    span = datetime.combine(date.min, closes_at) - datetime.combine(date.min, opens_at)
    if span < timedelta(minutes=slot_minutes):
        raise InvalidSchedule("The opening hours are shorter than one slot.")
    if not MIN_PLACES <= places <= MAX_PLACES:
        raise InvalidSchedule(f"A slot has between {MIN_PLACES} and {MAX_PLACES} places.")


async def add_opening_rule(
    *,
    session: AsyncSession,
    helpdesk_id: int,
    weekday: int,
    opens_at: time,
    closes_at: time,
    slot_minutes: int,
    places: int,
    valid_from: date,
    valid_until: date | None = None,
    actor: str,
) -> OpeningRule:
    """Add weekly opening hours; refused if they overlap hours of the same helpdesk."""
    await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    if not 0 <= weekday <= 6:
        raise InvalidSchedule("The weekday is 0 (Monday) to 6 (Sunday).")
    _check_hours(opens_at, closes_at, slot_minutes, places)
    if valid_until is not None and valid_until < valid_from:
        raise InvalidSchedule("The end of validity must not be before its start.")
    clash = await session.scalar(
        select(OpeningRule.id).where(
            OpeningRule.helpdesk_id == helpdesk_id,
            OpeningRule.weekday == weekday,
            OpeningRule.opens_at < closes_at,
            opens_at < OpeningRule.closes_at,
            or_(OpeningRule.valid_until.is_(None), OpeningRule.valid_until >= valid_from),
            true() if valid_until is None else OpeningRule.valid_from <= valid_until,
        )
    )
    if clash is not None:
        raise OverlappingRules("These hours overlap other opening hours of the same helpdesk.")
    rule = OpeningRule(
        helpdesk_id=helpdesk_id,
        weekday=weekday,
        opens_at=opens_at,
        closes_at=closes_at,
        slot_minutes=slot_minutes,
        places=places,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    session.add(rule)
    await session.flush()
    await _record(
        session,
        actor,
        "opening_rule.create",
        helpdesk_id,
        {
            "rule_id": rule.id,
            "weekday": weekday,
            "from": str(opens_at),
            "to": str(closes_at),
        },
    )
    return rule


async def add_extra_opening(
    *,
    session: AsyncSession,
    helpdesk_id: int,
    day: date,
    opens_at: time,
    closes_at: time,
    slot_minutes: int,
    places: int,
    note: str = "",
    actor: str,
) -> ExtraOpening:
    """Open a helpdesk on one date outside its weekly hours."""
    await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    _check_hours(opens_at, closes_at, slot_minutes, places)
    note = _bounded("note", note, MAX_NOTE)
    opening = ExtraOpening(
        helpdesk_id=helpdesk_id,
        day=day,
        opens_at=opens_at,
        closes_at=closes_at,
        slot_minutes=slot_minutes,
        places=places,
        note=note,
    )
    session.add(opening)
    await session.flush()
    await _record(
        session,
        actor,
        "extra_opening.create",
        helpdesk_id,
        {"day": day.isoformat(), "from": str(opens_at), "to": str(closes_at)},
    )
    return opening


async def add_closure(
    *,
    session: AsyncSession,
    settings: Settings,
    helpdesk_id: int,
    day: date,
    starts_at: time | None = None,
    ends_at: time | None = None,
    reason: str = "",
    actor: str,
) -> tuple[Closure, list[Booking]]:
    """Close a day (or some hours of it); returns the bookings staff must now move or cancel."""
    await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    if (starts_at is None) != (ends_at is None):
        raise InvalidSchedule("Give both the start and the end of the closure, or neither.")
    if starts_at is not None and ends_at is not None and starts_at >= ends_at:
        raise InvalidSchedule("The end of the closure must be after its start.")
    reason = _bounded("reason", reason, MAX_CLOSURE_REASON)
    closure = Closure(
        helpdesk_id=helpdesk_id,
        day=day,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
    )
    session.add(closure)
    await session.flush()
    affected = await bookings_in_closure(session=session, settings=settings, closure=closure)
    await _record(
        session,
        actor,
        "closure.create",
        helpdesk_id,
        {
            "day": day.isoformat(),
            "reason": closure.reason,
            "affected_bookings": [b.id for b in affected],
        },
    )
    return closure, affected


async def bookings_in_closure(
    *, session: AsyncSession, settings: Settings, closure: Closure
) -> list[Booking]:
    """Active bookings that fall inside a closure."""
    start = time.min if closure.starts_at is None else closure.starts_at
    day_start = datetime.combine(closure.day, start, tzinfo=settings.tz)
    if closure.ends_at is None:
        day_end = datetime.combine(closure.day + timedelta(days=1), time.min, tzinfo=settings.tz)
    else:
        day_end = datetime.combine(closure.day, closure.ends_at, tzinfo=settings.tz)
    result = await session.scalars(
        select(Booking)
        .where(
            Booking.helpdesk_id == closure.helpdesk_id,
            Booking.state == BookingState.BOOKED.value,
            Booking.starts_at < day_end,
            Booking.ends_at > day_start,
        )
        .order_by(Booking.starts_at)
    )
    return list(result.all())


async def ensure_helpdesk_name_free(
    *, session: AsyncSession, name: str, helpdesk_id: int | None = None
) -> None:
    """Refuse a helpdesk name already used by another one (letter case aside)."""
    query = select(Helpdesk.id).where(func.lower(Helpdesk.name) == name.strip().lower())
    if helpdesk_id is not None:
        query = query.where(Helpdesk.id != helpdesk_id)
    if await session.scalar(query) is not None:
        raise InvalidSchedule("Another helpdesk already has this name.")


async def update_helpdesk(
    *,
    session: AsyncSession,
    helpdesk_id: int,
    name: str,
    address: str,
    directions: DirectionsGiven = "",
    actor: str,
) -> Helpdesk:
    """Change a helpdesk's name, address or directions (what citizens are told).

    `directions` replaces them all: a language left out has none afterwards.
    """
    helpdesk = await get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    name, address, by_language = _helpdesk_texts(name, address, directions)
    await ensure_helpdesk_name_free(session=session, name=name, helpdesk_id=helpdesk_id)
    before = {
        "name": helpdesk.name,
        "address": helpdesk.address,
        "directions": list(helpdesk.directions_by_language),
    }
    helpdesk.name, helpdesk.address = name, address
    _set_directions(helpdesk, by_language)
    await session.flush()
    await _record(
        session,
        actor,
        "helpdesk.update",
        helpdesk_id,
        {
            "before": before,
            "name": helpdesk.name,
            "address": helpdesk.address,
            "directions": list(by_language),
        },
    )
    return helpdesk


async def list_opening_rules(*, session: AsyncSession, helpdesk_id: int) -> list[OpeningRule]:
    """A helpdesk's weekly hours, past and future, by weekday and time."""
    result = await session.scalars(
        select(OpeningRule)
        .where(OpeningRule.helpdesk_id == helpdesk_id)
        .order_by(OpeningRule.weekday, OpeningRule.opens_at, OpeningRule.valid_from, OpeningRule.id)
    )
    return list(result.all())


async def get_opening_rule(*, session: AsyncSession, rule_id: int) -> OpeningRule:
    rule = await session.get(OpeningRule, rule_id)
    if rule is None:
        raise ScheduleItemNotFound(f"No opening rule {rule_id}.")
    return rule


async def end_opening_rule(
    *, session: AsyncSession, rule_id: int, last_day: date, actor: str
) -> OpeningRule:
    """Stop weekly hours after `last_day`; bookings left outside are in `stranded_bookings`."""
    rule = await get_opening_rule(session=session, rule_id=rule_id)
    if last_day < rule.valid_from:
        raise InvalidSchedule(
            "The last day can't be before these hours start: delete them instead."
        )
    if rule.valid_until is not None and last_day > rule.valid_until:
        raise InvalidSchedule("These hours already end before that day.")
    rule.valid_until = last_day
    await session.flush()
    await _record(
        session,
        actor,
        "opening_rule.end",
        rule.helpdesk_id,
        {"rule_id": rule.id, "last_day": last_day.isoformat()},
    )
    return rule


async def delete_opening_rule(*, session: AsyncSession, rule_id: int, actor: str) -> int:
    """Remove weekly hours altogether; returns the helpdesk's id."""
    rule = await get_opening_rule(session=session, rule_id=rule_id)
    details = {
        "rule_id": rule.id,
        "weekday": rule.weekday,
        "from": str(rule.opens_at),
        "to": str(rule.closes_at),
        "valid_from": rule.valid_from.isoformat(),
    }
    return await _remove(session, rule, actor, "opening_rule.delete", details)


async def list_closures(
    *, session: AsyncSession, helpdesk_id: int, since: date | None = None
) -> list[Closure]:
    """A helpdesk's closures, by day (from `since` on, if given)."""
    query = select(Closure).where(Closure.helpdesk_id == helpdesk_id)
    if since is not None:
        query = query.where(Closure.day >= since)
    result = await session.scalars(query.order_by(Closure.day, Closure.starts_at, Closure.id))
    return list(result.all())


async def get_closure(*, session: AsyncSession, closure_id: int) -> Closure:
    closure = await session.get(Closure, closure_id)
    if closure is None:
        raise ScheduleItemNotFound(f"No closure {closure_id}.")
    return closure


async def closure_bookings(
    *, session: AsyncSession, settings: Settings, closure_id: int
) -> tuple[Closure, list[agenda.AgendaEntry]]:
    """A closure and the active bookings still inside it, with their citizens."""
    closure = await get_closure(session=session, closure_id=closure_id)
    inside = await bookings_in_closure(session=session, settings=settings, closure=closure)
    return closure, await agenda.with_citizens(session=session, bookings=inside)


async def delete_closure(*, session: AsyncSession, closure_id: int, actor: str) -> int:
    """Reopen what a closure closed; returns the helpdesk's id."""
    closure = await get_closure(session=session, closure_id=closure_id)
    details = {"closure_id": closure.id, "day": closure.day.isoformat(), "reason": closure.reason}
    return await _remove(session, closure, actor, "closure.delete", details)


async def list_extra_openings(
    *, session: AsyncSession, helpdesk_id: int, since: date | None = None
) -> list[ExtraOpening]:
    """A helpdesk's one-off openings, by day (from `since` on, if given)."""
    query = select(ExtraOpening).where(ExtraOpening.helpdesk_id == helpdesk_id)
    if since is not None:
        query = query.where(ExtraOpening.day >= since)
    result = await session.scalars(
        query.order_by(ExtraOpening.day, ExtraOpening.opens_at, ExtraOpening.id)
    )
    return list(result.all())


async def delete_extra_opening(*, session: AsyncSession, opening_id: int, actor: str) -> int:
    """Withdraw a one-off opening; returns the helpdesk's id."""
    opening = await session.get(ExtraOpening, opening_id)
    if opening is None:
        raise ScheduleItemNotFound(f"No extra opening {opening_id}.")
    details = {"opening_id": opening.id, "day": opening.day.isoformat()}
    return await _remove(session, opening, actor, "extra_opening.delete", details)


async def stranded_bookings(
    *, session: AsyncSession, settings: Settings, helpdesk_id: int, now: datetime | None = None
) -> list[agenda.AgendaEntry]:
    """Upcoming active bookings no slot of the helpdesk's hours covers any more.

    Hours ended or removed, an extra opening withdrawn, a day closed: staff move or
    cancel each of these bookings, so none is silently dropped.
    """
    now = now or utcnow()
    rows = await session.execute(
        select(Booking, Citizen)
        .join(Citizen, Citizen.id == Booking.citizen_id)
        .where(
            Booking.helpdesk_id == helpdesk_id,
            Booking.state == BookingState.BOOKED.value,
            Booking.starts_at >= now,
        )
        .order_by(Booking.starts_at, Booking.id)
    )
    entries = agenda.entries_of(rows.all())
    if not entries:
        return []
    tz = settings.tz
    first_day = entries[0].booking.starts_at.astimezone(tz).date()
    last_day = entries[-1].booking.starts_at.astimezone(tz).date()
    rules = await session.scalars(
        select(OpeningRule).where(
            OpeningRule.helpdesk_id == helpdesk_id,
            OpeningRule.valid_from <= last_day,
            or_(OpeningRule.valid_until.is_(None), OpeningRule.valid_until >= first_day),
        )
    )
    weekly = [
        WeeklyHours(
            r.helpdesk_id, r.weekday, r.opens_at, r.closes_at,
            r.slot_minutes, r.places, r.valid_from, r.valid_until,
        )
        for r in rules
    ]  # fmt: skip
    extra = [
        DayHours(o.helpdesk_id, o.day, o.opens_at, o.closes_at, o.slot_minutes, o.places)
        for o in await session.scalars(
            select(ExtraOpening).where(
                ExtraOpening.helpdesk_id == helpdesk_id,
                ExtraOpening.day.between(first_day, last_day),
            )
        )
    ]
    closures = [
        DayClosure(c.helpdesk_id, c.day, c.starts_at, c.ends_at)
        for c in await session.scalars(
            select(Closure).where(
                Closure.helpdesk_id == helpdesk_id, Closure.day.between(first_day, last_day)
            )
        )
    ]
    offered = {
        s.starts_at
        for s in generate_slots(
            weekly=weekly,
            extra=extra,
            closures=closures,
            first_day=first_day,
            last_day=last_day,
            tz=tz,
        )
    }
    return [e for e in entries if e.booking.starts_at not in offered]
