"""The booking card, without PTB or a database: plain data in, text, buttons and .ics out."""

from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar

from bot.screens.card import (
    MAX_DIRECTIONS_CHARS,
    CardEvent,
    booking_card,
    booking_details,
    what_to_bring,
)
from bot.screens.common import View
from shared.booking.models import Booking, Helpdesk
from shared.i18n import Translator
from tests.factories import ROME, rome

NOW = rome(2026, 6, 5, 10)
STARTS = rome(2026, 6, 9, 9, 30)


def view(language: str = "it") -> View:
    return View(Translator(language), ROME, NOW, horizon_days=30, hold_minutes=15)


def helpdesk(directions: str = "Secondo piano, porta <B>") -> Helpdesk:
    return Helpdesk(
        id=3, name="Sportello Villa & Parco", address="Via Roma 1", directions=directions
    )


def booking() -> Booking:
    return Booking(
        id=7, code="ACD347", helpdesk_id=3, starts_at=STARTS, ends_at=STARTS + timedelta(minutes=30)
    )


def buttons(card_keyboard: object) -> list[tuple[str, str]]:
    rows = getattr(card_keyboard, "inline_keyboard", ())
    return [(b.text, str(b.callback_data)) for row in rows for b in row]


def test_the_card_says_when_where_what_to_bring_and_how_to_change() -> None:
    card = booking_card(view(), booking(), helpdesk(), CardEvent.BOOKED)
    text = card.text
    assert text.startswith("✅ <b>Il tuo colloquio Ripartire è prenotato.</b>\n\n")
    assert "📅 <b>martedì 9 giugno 2026</b> alle <b>09:30</b>" in text
    assert (
        "📍 <b>Sportello Villa &amp; Parco</b>\nVia Roma 1\n🧭 Secondo piano, porta &lt;B&gt;"
        in text
    )
    assert "🔖 Codice di prenotazione: <b>ACD347</b>" in text
    assert what_to_bring(Translator("it")) in text
    assert "tessera sanitaria" in text and "partita IVA" in text
    assert "/sposta" in text and "/annulla" in text and "/prenotazione" in text
    assert buttons(card.keyboard) == [("🔁 Sposta", "mv:7"), ("❌ Annulla", "cx:7")]
    assert card.calendar.filename == "ripartire-ACD347.ics"
    assert card.calendar.caption == "📆 Aggiungi l'appuntamento al tuo calendario."


def test_staff_actions_add_one_line_under_the_same_heading() -> None:
    # A request is the citizen's own (`REQUESTED`): the staff never send one.
    for event in [e for e in CardEvent if e is not CardEvent.REQUESTED]:
        mine = booking_card(view(), booking(), helpdesk(), event)
        staff = booking_card(view(), booking(), helpdesk(), event, by_staff=True)
        mine_lines, staff_lines = mine.text.split("\n"), staff.text.split("\n")
        assert staff_lines[0] == mine_lines[0]
        assert "personale dello sportello" in staff_lines[1]
        assert staff_lines[2:] == mine_lines[1:]
        assert staff.calendar == mine.calendar
        assert buttons(staff.keyboard) == buttons(mine.keyboard)
    moved = booking_card(view(), booking(), helpdesk(), CardEvent.MOVED, by_staff=True).text
    assert "è stato spostato" in moved and "Ci scusiamo" in moved


def test_the_calendar_file_is_the_appointment_in_rome_with_the_same_facts() -> None:
    card = booking_card(view(), booking(), helpdesk(), CardEvent.BOOKED)
    event = Calendar.from_ical(card.calendar.data).walk("VEVENT")[0]
    assert event.decoded("dtstart") == STARTS
    assert b"DTSTART;TZID=Europe/Rome:20260609T093000" in card.calendar.data
    assert str(event.get("summary")) == "Colloquio Ripartire"
    assert str(event.get("location")) == "Sportello Villa & Parco, Via Roma 1"
    description = str(event.get("description"))
    assert "ACD347" in description
    assert "Secondo piano, porta <B>" in description  # plain text, not HTML
    assert "un documento d'identità" in description and "tessera sanitaria" in description


def test_in_english() -> None:
    card = booking_card(view("en"), booking(), helpdesk(""), CardEvent.MOVED)
    assert card.text.startswith("✅ <b>Your Ripartire interview has been moved.</b>")
    assert "📅 <b>Tuesday 9 June 2026</b> at <b>09:30</b>" in card.text
    assert "<b>Please bring:</b>\n• an identity document" in card.text
    assert "🧭" not in card.text  # no directions, no empty line for them
    assert buttons(card.keyboard) == [("🔁 Move", "mv:7"), ("❌ Cancel", "cx:7")]


def test_long_directions_are_cut_to_fit_a_message() -> None:
    details = booking_details(view(), booking(), helpdesk("scala " * 500))
    [line] = [line for line in details.split("\n") if line.startswith("🧭")]
    assert line.endswith("…")
    assert len(line) <= MAX_DIRECTIONS_CHARS + 2


def test_directions_in_the_readers_language_else_the_italian_ones_saying_so() -> None:
    both = helpdesk("Secondo piano")
    both.directions_translations = {"en": "Second floor"}
    italian_only = helpdesk("Secondo piano")
    english = view("en")
    assert "🧭 Second floor\n" in booking_details(english, booking(), both)
    assert "🧭 Secondo piano (in Italian)" in booking_details(english, booking(), italian_only)
    assert "🧭 Secondo piano\n" in booking_details(view(), booking(), both)
    card = booking_card(english, booking(), italian_only, CardEvent.BOOKED)
    description = str(Calendar.from_ical(card.calendar.data).walk("VEVENT")[0].get("description"))
    assert "Secondo piano (in Italian)" in description
