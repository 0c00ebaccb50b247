"""An `.ics` file for a booking, so citizens can put the interview in their calendar."""

from __future__ import annotations

import functools
from datetime import date, datetime, tzinfo

from icalendar import Calendar, Event, Timezone

from shared.booking.models import Booking, Helpdesk
from shared.settings import Settings

PRODID = "-//Ripartire//Cernusco sul Naviglio//IT"


def booking_ics(
    *,
    booking: Booking,
    helpdesk: Helpdesk,
    settings: Settings,
    summary: str,
    description: str,
    stamp: datetime,
) -> bytes:
    """The booking as an iCalendar file in the program's time zone (with its VTIMEZONE)."""
    return event_ics(
        booking=booking,
        helpdesk=helpdesk,
        tz=settings.tz,
        summary=summary,
        description=description,
        stamp=stamp,
    )


def event_ics(
    *,
    booking: Booking,
    helpdesk: Helpdesk,
    tz: tzinfo,
    summary: str,
    description: str,
    stamp: datetime,
) -> bytes:
    """The booking as an iCalendar file in time zone `tz` (with its VTIMEZONE)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"booking-{booking.code}@ripartire")
    event.add("dtstamp", stamp)
    event.add("dtstart", booking.starts_at.astimezone(tz))
    event.add("dtend", booking.ends_at.astimezone(tz))
    event.add("summary", summary)
    event.add("location", f"{helpdesk.name}, {helpdesk.address}")
    event.add("description", description)
    calendar.add_component(event)
    # What `calendar.add_missing_timezones()` adds, without building and serialising it on
    # every call: the VTIMEZONEs go first among the components, before the event (what
    # precedes it, the calendar's own properties, is constant).
    first, last = _covering(booking.starts_at.date(), booking.ends_at.date())
    timezones = b"".join(
        _vtimezone(tzid, first, last) for tzid in sorted(calendar.get_missing_tzids())
    )
    head, event_start, tail = bytes(calendar.to_ical()).partition(b"BEGIN:VEVENT\r\n")
    return head + timezones + event_start + tail


def _covering(first_day: date, last_day: date) -> tuple[date, date]:
    """The range a VTIMEZONE must describe for these days: icalendar's default (1970-2038),
    widened by whole years for an appointment outside it, so one VTIMEZONE serves them all.
    """
    first, last = Timezone.DEFAULT_FIRST_DATE, Timezone.DEFAULT_LAST_DATE
    if first_day < first:
        first = date(first_day.year, 1, 1)
    if last_day >= last:
        last = date(last_day.year + 1, 1, 1)
    return first, last


@functools.lru_cache(maxsize=8)
def _vtimezone(tzid: str, first: date, last: date) -> bytes:
    """The VTIMEZONE of `tzid` from `first` to `last`, serialised: every offset change in
    between, read from the time-zone database (~5 ms to build and write, so done once).
    """
    return bytes(Timezone.from_tzid(tzid, first_date=first, last_date=last).to_ical())
