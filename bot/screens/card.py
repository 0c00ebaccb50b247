"""The booking card: what a citizen keeps of their appointment, built in one place.

The bot's reply after booking, moving or accepting a waitlist offer, and the outbox's
message when the helpdesk staff booked or moved the appointment, are this same card and
this same calendar file; the reminders, /prenotazione and the plan's messages show the
same details (`booking_details`) and the same "what to bring" (`what_to_bring`).

At a moderated helpdesk the citizen's choice is a request (`shared.booking.moderation`):
its card (`CardEvent.REQUESTED`) says the request was sent and until when the place is
held, never that the appointment is confirmed, and has no calendar file; the card of
the confirmation (`CardEvent.CONFIRMED`) is the full one.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from telegram import InlineKeyboardMarkup

from bot.callbacks import Cb, encode
from bot.screens.common import View, clock, join, keyboard, long_day, when
from shared.booking.calendar import event_ics
from shared.booking.models import Booking, Helpdesk
from shared.i18n import N_, Translator
from shared.program import WHAT_TO_BRING

# Telegram refuses texts over 4096 characters; the rest of a card is far shorter.
MAX_DIRECTIONS_CHARS = 600

WHEN = N_("📅 <b>{day}</b> at <b>{time}</b>")
BOOKING_CODE = N_("🔖 Booking code: <b>{code}</b>")
PLEASE_BRING = N_("<b>Please bring:</b>")
BUTTON_MOVE = N_("🔁 Move")
BUTTON_CANCEL = N_("❌ Cancel")

ICS_SUMMARY = N_("Ripartire interview")
ICS_CODE = N_("Ripartire interview. Booking code: {code}")
ICS_BRING = N_("Please bring:")
CALENDAR_CAPTION = N_("📆 Add the appointment to your calendar.")
REMINDED = N_("We'll remind you the day before and a few hours before.")
HOW_TO_CHANGE = N_("To move it write /sposta, to cancel it /annulla; /prenotazione shows it again.")

# A request at a moderated helpdesk, until a coordinator decides.
REQUEST_HELD = N_(
    "At this helpdesk every appointment is confirmed by the staff. We'll write to you here "
    "by {when} at the latest; until then the place is held for you."
)
REQUEST_NEXT = N_(
    "With the confirmation you'll get the calendar file and the reminders. To change or "
    "withdraw the request write /sposta or /annulla; /prenotazione shows it again."
)


class CardEvent(StrEnum):
    """What happened to the appointment: each has its own heading, whoever did it."""

    BOOKED = "booked"
    MOVED = "moved"
    # At a moderated helpdesk: the citizen's request sent; a coordinator's confirmation.
    REQUESTED = "requested"
    CONFIRMED = "confirmed"


HEADINGS = {
    CardEvent.BOOKED: N_("✅ <b>Your Ripartire interview is booked.</b>"),
    CardEvent.MOVED: N_("✅ <b>Your Ripartire interview has been moved.</b>"),
    CardEvent.REQUESTED: N_(
        "📨 <b>Request sent:</b> we'll confirm your appointment here on Telegram."
    ),
    CardEvent.CONFIRMED: N_("✅ <b>Your Ripartire interview is confirmed.</b>"),
}
# The line under the heading when the helpdesk staff acted, not the citizen.
BY_STAFF = {
    CardEvent.BOOKED: N_("The helpdesk staff booked it for you."),
    CardEvent.MOVED: N_(
        "The helpdesk staff moved it. Sorry for the change: if the new time doesn't suit "
        "you, you can move it."
    ),
    CardEvent.CONFIRMED: N_("The helpdesk has accepted your request."),
}


@dataclass(frozen=True, slots=True)
class CalendarFile:
    filename: str
    data: bytes
    caption: str


@dataclass(frozen=True, slots=True)
class Card:
    text: str
    keyboard: InlineKeyboardMarkup | None
    # None for a request: a calendar entry would say the appointment is certain.
    calendar: CalendarFile | None


def directions(helpdesk: Helpdesk, t: Translator) -> str:
    """How to find the helpdesk, for a citizen reading in `t`'s language: theirs, else the
    Italian ones saying so; cut to fit a message ("" if there are none). The one place
    the card reads them."""
    found = helpdesk.directions_in(t.language)
    if found is None:
        return ""
    text = _shortened(found.text.strip())
    return f"{text} {found.note}" if found.note else text


def _shortened(text: str) -> str:
    # Free text from staff: kept short so the message stays within Telegram's limit.
    if len(text) <= MAX_DIRECTIONS_CHARS:
        return text
    return text[: MAX_DIRECTIONS_CHARS - 1].rstrip() + "…"


def place(helpdesk: Helpdesk, t: Translator, *, with_directions: bool = False) -> str:
    """The helpdesk's name and address, and how to find it when `with_directions`."""
    lines = [f"📍 <b>{html.escape(helpdesk.name)}</b>", html.escape(helpdesk.address)]
    found = directions(helpdesk, t) if with_directions else ""
    if found:
        lines.append(f"🧭 {html.escape(found)}")
    return "\n".join(lines)


def when_line(view: View, moment: datetime) -> str:
    """ "📅 <b>martedì 9 giugno 2026</b> alle <b>09:30</b>", in the program's time zone."""
    return view.t(WHEN, day=long_day(view.t, view.local(moment).date()), time=clock(view, moment))


def booking_details(view: View, booking: Booking, helpdesk: Helpdesk) -> str:
    """The appointment's day and time, place, directions and booking code."""
    return "\n".join(
        [
            when_line(view, booking.starts_at),
            place(helpdesk, view.t, with_directions=True),
            view.t(BOOKING_CODE, code=html.escape(booking.code)),
        ]
    )


def what_to_bring(t: Translator) -> str:
    """ "Please bring:" and the program's list, one item a line."""
    items = "\n".join(f"• {t(item)}" for item in WHAT_TO_BRING)
    return f"{t(PLEASE_BRING)}\n{items}"


def manage_row(t: Translator, booking_id: int) -> list[tuple[str, str]]:
    """ "Move" and "Cancel" for a booking."""
    return [
        (t(BUTTON_MOVE), encode(Cb.MOVE, booking_id)),
        (t(BUTTON_CANCEL), encode(Cb.CANCEL, booking_id)),
    ]


def heading(t: Translator, event: CardEvent, *, by_staff: bool) -> str:
    title = t(HEADINGS[event])
    return f"{title}\n{t(BY_STAFF[event])}" if by_staff and event in BY_STAFF else title


def request_held(view: View, booking: Booking) -> str:
    """Until when a pending request holds its place, and who confirms it."""
    expires_at = booking.request_expires_at or booking.starts_at
    return view.t(REQUEST_HELD, when=when(view, expires_at))


def calendar_file(view: View, booking: Booking, helpdesk: Helpdesk) -> CalendarFile:
    """The appointment as an `.ics` file, with what the card says it is about."""
    t = view.t
    lines = [t(ICS_CODE, code=booking.code)]
    found = directions(helpdesk, t)
    if found:
        lines.append(found)
    lines.append(t(ICS_BRING))
    lines.extend(f"- {t(item)}" for item in WHAT_TO_BRING)
    data = event_ics(
        booking=booking,
        helpdesk=helpdesk,
        tz=view.tz,
        summary=t(ICS_SUMMARY),
        description="\n".join(lines),
        stamp=view.now,
    )
    return CalendarFile(f"ripartire-{booking.code}.ics", data, t(CALENDAR_CAPTION))


def booking_card(
    view: View, booking: Booking, helpdesk: Helpdesk, event: CardEvent, *, by_staff: bool = False
) -> Card:
    """The card of a booking just made or moved: heading, details, what to bring, what
    next, "Move" and "Cancel", and its calendar file. A request's card: heading, details,
    until when the place is held and what comes with the confirmation; no calendar file."""
    t = view.t
    if event is CardEvent.REQUESTED:
        text = join(
            heading(t, event, by_staff=False),
            booking_details(view, booking, helpdesk),
            request_held(view, booking),
            t(REQUEST_NEXT),
        )
        return Card(text, keyboard([manage_row(t, booking.id)]), None)
    text = join(
        heading(t, event, by_staff=by_staff),
        booking_details(view, booking, helpdesk),
        what_to_bring(t),
        f"{t(REMINDED)}\n{t(HOW_TO_CHANGE)}",
    )
    return Card(
        text,
        keyboard([manage_row(t, booking.id)]),
        calendar_file(view, booking, helpdesk),
    )
