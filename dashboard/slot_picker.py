"""Choosing a free time for a citizen (`_slot_picker.html`): the intake's interview and a
plan's follow-up meeting.

The page's own form filters the free times by helpdesk and day; a bad day is shown next
to its field. The chosen time comes back as "helpdesk id|start" (`parse_slot`) and goes
to the page's booking service, whose refusals `SLOT_ERRORS` names by their code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dashboard.params import BAD_DAY, BadDay, read_day, read_id, read_instant
from shared.booking import availability, hours
from shared.booking.models import Helpdesk
from shared.i18n import N_, Translator
from shared.limits import DAY_RANGE
from shared.settings import Settings

# Free times listed at once; staff pick a day or a helpdesk to see others.
SLOTS_SHOWN = 40
# A refused booking by its code; a page adds (or rewords) its own.
SLOT_ERRORS = {
    "slot_taken": N_("That place was just taken. Choose another time below."),
    "slot_in_past": N_("That time has already passed. Choose another time below."),
    "slot_too_soon": N_("That time is too close to now. Choose a later time."),
    "slot_too_far": N_("That time is too far ahead. Choose an earlier time."),
    "slot_not_offered": N_("The helpdesk has no slot at that time. Choose another time below."),
    "helpdesk_not_found": N_("This helpdesk is not taking bookings. Choose another time below."),
    "helpdesk_inactive": N_("This helpdesk is not taking bookings. Choose another time below."),
    "no_slot": N_("Choose a time."),
}
BOOKING_REFUSED = N_("The booking was refused. Choose another time below.")


@dataclass(frozen=True)
class SlotPicker:
    """What the picker shows: the free times by day, and the filter as typed."""

    helpdesks: list[Helpdesk]
    days: dict[date, list[availability.FreeSlot]]
    more_slots: bool
    helpdesk_id: int | None
    day_filter: str
    # The bad day's message, in the viewer's language; the page answers 400.
    day_error: str

    def context(self) -> dict[str, Any]:
        return {
            "helpdesks": {h.id: h for h in self.helpdesks},
            "bookable_helpdesks": [h for h in self.helpdesks if h.active],
            "days": self.days,
            "more_slots": self.more_slots,
            "helpdesk_id": self.helpdesk_id,
            "day_filter": self.day_filter,
            "day_error": self.day_error,
        }


def _day_bounds(day: date, settings: Settings) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=settings.tz)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=settings.tz)


async def pick_slot(
    *,
    session: AsyncSession,
    settings: Settings,
    t: Translator,
    helpdesk_id: int | None,
    day: str,
    offer: bool,
    urgent: bool,
) -> SlotPicker:
    """The free times to offer a citizen for the filter (none unless `offer`), and every
    helpdesk (a booking already made names its own). `urgent`: the citizen's urgency —
    places kept for urgent citizens are offered only to them, as `book_slot` will judge."""
    helpdesks = await hours.list_helpdesks(session=session, active_only=False)
    day_error = ""
    slots: list[availability.FreeSlot] = []
    if offer:
        since = until = None
        try:
            chosen = read_day(day)
        except BadDay as exc:
            chosen = None
            day_error = t(
                N_("Write the day like 2026-03-31, or pick it from the calendar.")
                if exc.message == BAD_DAY
                else exc.message,
                **DAY_RANGE,
            )
        if chosen is not None:
            since, until = _day_bounds(chosen, settings)
        found = await availability.list_free_slots(
            session=session, settings=settings, helpdesk_id=helpdesk_id, since=since,
            until=until, urgent=urgent,
        )  # fmt: skip
        slots = found[:SLOTS_SHOWN]
    days: dict[date, list[availability.FreeSlot]] = {}
    for slot in slots:
        days.setdefault(slot.starts_at.astimezone(settings.tz).date(), []).append(slot)
    return SlotPicker(
        helpdesks=helpdesks,
        days=days,
        more_slots=len(slots) == SLOTS_SHOWN,
        helpdesk_id=helpdesk_id,
        day_filter=day,
        day_error=day_error,
    )


def parse_slot(value: str) -> tuple[int, datetime] | None:
    """ "3|2026-03-31T07:30:00+00:00" → (helpdesk id, aware start), or None if malformed."""
    helpdesk, _, starts = value.partition("|")
    helpdesk_id, starts_at = read_id(helpdesk), read_instant(starts)
    if helpdesk_id is None or starts_at is None:
        return None
    return helpdesk_id, starts_at
