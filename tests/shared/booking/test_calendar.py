"""The `.ics` file: icalendar's own output, with a VTIMEZONE built once and right for any year."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from icalendar import Calendar, Event

from shared.booking import calendar
from shared.booking.calendar import PRODID, booking_ics
from shared.booking.models import Booking, Helpdesk
from shared.settings import Settings
from tests.factories import rome

STAMP = rome(2026, 12, 7, 8)
HELPDESK = Helpdesk(name="Sportello Centro", address="Via Roma 1")


def _booking(starts_at: datetime) -> Booking:
    return Booking(code="ACD347", starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30))


def _ics(booking: Booking, settings: Settings) -> bytes:
    return booking_ics(
        booking=booking, helpdesk=HELPDESK, settings=settings, summary="Colloquio",
        description="Codice ACD347", stamp=STAMP,
    )  # fmt: skip


def _as_icalendar_writes_it(booking: Booking, settings: Settings) -> bytes:
    """The same file with the VTIMEZONE built by icalendar on the spot, as it always was."""
    made = Calendar()
    made.add("prodid", PRODID)
    made.add("version", "2.0")
    made.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"booking-{booking.code}@ripartire")
    event.add("dtstamp", STAMP)
    event.add("dtstart", booking.starts_at.astimezone(settings.tz))
    event.add("dtend", booking.ends_at.astimezone(settings.tz))
    event.add("summary", "Colloquio")
    event.add("location", f"{HELPDESK.name}, {HELPDESK.address}")
    event.add("description", "Codice ACD347")
    made.add_component(event)
    made.add_missing_timezones()
    return bytes(made.to_ical())


def _transitions(raw: bytes) -> dict[str, set[date]]:
    """The days of the VTIMEZONE's changes to summer (DAYLIGHT) and winter (STANDARD) time."""
    [vtimezone] = Calendar.from_ical(raw).walk("VTIMEZONE")
    days: dict[str, set[date]] = {"STANDARD": set(), "DAYLIGHT": set()}
    for part in vtimezone.subcomponents:
        rdates = part.get("RDATE", [])
        for rdate in rdates if isinstance(rdates, list) else [rdates]:
            days[part.name] |= {when.dt.date() for when in rdate.dts}
        days[part.name].add(part.decoded("DTSTART").date())
    return days


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def test_the_file_is_what_icalendar_writes(settings: Settings) -> None:
    for starts_at in (rome(2026, 12, 8, 9), rome(2027, 7, 6, 10, 30)):
        booking = _booking(starts_at)
        assert _ics(booking, settings) == _as_icalendar_writes_it(booking, settings)


def test_one_vtimezone_serves_every_year_with_both_changes_of_time(settings: Settings) -> None:
    calendar._vtimezone.cache_clear()
    # 2040 is past icalendar's default range (1970-2038): its VTIMEZONE is built wider.
    for year in (2026, 2031, 2040):
        raw = _ics(_booking(rome(year, 7, 6, 10)), settings)
        event = Calendar.from_ical(raw).walk("VEVENT")[0]
        assert event.decoded("dtstart") == rome(year, 7, 6, 10)
        changes = _transitions(raw)
        assert _last_sunday(year, 3) in changes["DAYLIGHT"]
        assert _last_sunday(year, 10) in changes["STANDARD"]
    # Built for 2026, reused for 2031; built again, wider, for 2040.
    assert calendar._vtimezone.cache_info().hits == 1
    assert calendar._vtimezone.cache_info().misses == 2
