"""An `.ics` file for a booking, so citizens can put the interview in their calendar."""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event

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
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"booking-{booking.code}@ripartire")
    event.add("dtstamp", stamp)
    event.add("dtstart", booking.starts_at.astimezone(settings.tz))
    event.add("dtend", booking.ends_at.astimezone(settings.tz))
    event.add("summary", summary)
    event.add("location", f"{helpdesk.name}, {helpdesk.address}")
    event.add("description", description)
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())
