"""The booking flow's screens, without PTB or a database: free places in, text and buttons out."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from telegram import InlineKeyboardMarkup

from bot.screens import booking as screens
from bot.screens.booking import DAYS_PER_PAGE, Moving, Places
from bot.screens.common import View
from shared.booking.availability import FreeSlot
from shared.booking.errors import SlotTooFar
from shared.booking.models import Booking, Helpdesk, Slot, WaitlistEntry, WaitlistState
from shared.citizens.standing import (
    Booked,
    MayBook,
    NotConsented,
    NotEligible,
    Offered,
    QuestionnaireToFinish,
    Waiting,
)
from shared.i18n import Translator
from tests.factories import ROME, rome

NOW = rome(2026, 6, 5, 8)
COMUNE = Helpdesk(id=1, name="Sportello Comune", address="Via Roma 1", directions="")
VILLA = Helpdesk(id=2, name="Villa <Fiorita>", address="Via Verdi 2", directions="")


def view(language: str = "it") -> View:
    return View(Translator(language), ROME, NOW, horizon_days=30, hold_minutes=15)


def slot(helpdesk: Helpdesk, day: date, hour: int = 9) -> FreeSlot:
    starts = datetime.combine(day, time(hour), tzinfo=ROME)
    return FreeSlot(helpdesk.id, starts, starts + timedelta(minutes=30), capacity=1, taken=0)


def days_from_today(count: int, helpdesk: Helpdesk = COMUNE) -> list[FreeSlot]:
    return [slot(helpdesk, NOW.date() + timedelta(days=n)) for n in range(count)]


def data(markup: InlineKeyboardMarkup | None) -> list[str]:
    rows = markup.inline_keyboard if markup is not None else ()
    return [str(b.callback_data) for row in rows for b in row]


def test_one_helpdesk_goes_straight_to_its_days_a_page_at_a_time() -> None:
    places = Places(days_from_today(20), [COMUNE])
    text, markup = screens.start_screen(view(), places, None)
    assert "Scegli il giorno" in text
    days = [d for d in data(markup) if d.startswith("day:")]
    assert len(days) == DAYS_PER_PAGE
    assert days[0] == f"day:1:{NOW.date():%Y%m%d}"
    assert "days:1:1" in data(markup)
    assert "hds" not in data(markup)  # no other helpdesk to go back to


def test_paging_past_the_last_day_says_nothing_later_can_be_booked() -> None:
    places = Places(days_from_today(20), [COMUNE])
    last_text, last = screens.days_screen(view(), places, COMUNE, 2, None)
    past_text, past = screens.days_screen(view(), places, COMUNE, 99, None)
    assert data(past) == data(last)  # the last page
    assert "Non ci sono giorni più avanti da scegliere" in past_text
    assert "fino a 30 giorni" in past_text
    assert "Non ci sono giorni più avanti" not in last_text
    assert "days:1:3" not in data(past)


def test_two_helpdesks_are_a_choice_and_a_moving_booking_rides_along() -> None:
    places = Places(days_from_today(3) + days_from_today(2, VILLA), [COMUNE, VILLA])
    text, markup = screens.start_screen(view(), places, Moving(42, 1, NOW + timedelta(days=1)))
    assert "Dove vuoi fare il colloquio?" in text
    assert "Villa &lt;Fiorita&gt;" in text
    assert data(markup) == ["hd:1:42", "hd:2:42"]


def test_a_helpdesk_without_days_falls_back_to_the_others() -> None:
    places = Places(days_from_today(2, VILLA), [VILLA])
    text, markup = screens.days_screen(view(), places, COMUNE, 0, None)
    assert text.startswith("Non ci sono più posti liberi a Sportello Comune.")
    assert all(d.startswith("day:2:") for d in data(markup) if d.startswith("day:"))


def test_nothing_free_offers_the_waitlist_except_while_moving() -> None:
    text, markup = screens.start_screen(view(), Places([], []), None)
    assert "lista d'attesa" in text and "15 minuti" in text
    assert data(markup) == ["wl"]
    text, markup = screens.start_screen(view(), Places([], []), Moving(42, 1, NOW))
    assert "resta com'è" in text
    assert markup is None


def test_times_and_confirmation() -> None:
    day = NOW.date() + timedelta(days=2)
    slots = [slot(COMUNE, day, 9), slot(COMUNE, day, 10)]
    text, markup = screens.times_screen(view(), COMUNE, day, slots, None)
    epoch = int(slots[0].starts_at.timestamp())
    assert "Scegli l'orario" in text
    assert data(markup)[:2] == [f"tm:1:{epoch}", f"tm:1:{epoch + 3600}"]
    text, markup = screens.confirm_screen(
        view(), COMUNE, slots[0].starts_at, Moving(42, 2, NOW + timedelta(days=1)), VILLA
    )
    assert "Vuoi spostare il tuo appuntamento?" in text and "Villa &lt;Fiorita&gt;" in text
    assert data(markup) == [f"bk:1:{epoch}:42", f"day:1:{day:%Y%m%d}:42"]


def test_why_a_day_cannot_be_booked_is_said_for_each_reason() -> None:
    notes = {
        screens.beyond_horizon_note(view()),
        screens.past_day_note(view()),
        screens.full_day_note(view(), NOW.date()),
        screens.no_later_days_note(view()),
    }
    assert len(notes) == 4
    assert "troppo lontano" in screens.beyond_horizon_note(view())
    assert "30" in screens.beyond_horizon_note(view())
    english = screens.beyond_horizon_note(view("en"))
    assert english.startswith("That day is too far ahead")


def test_refusals_mention_the_horizon() -> None:
    assert "30 giorni" in screens.refusal(view(), SlotTooFar.code)
    assert screens.refusal(view(), "some_new_refusal") == screens.refusal(view(), "booking_error")


def test_who_may_not_book_is_told_why_kindly_by_the_standings_code() -> None:
    assert "/start" in screens.refusal(view(), "not_consented")
    assert "prima rispondi a qualche domanda" in screens.refusal(view(), "questionnaire")
    not_eligible = screens.refusal(view(), "not_eligible")
    assert "non può prenotarti un colloquio" in not_eligible and "331 693 8049" in not_eligible
    by_answers = NotEligible(reasons=(), by_coordinator=False)
    assert screens.not_yet_text(view(), by_answers) == not_eligible


def test_a_coordinators_ruling_is_told_as_such_with_the_contacts() -> None:
    ruled = screens.not_yet_text(view(), NotEligible(reasons=(), by_coordinator=True))
    assert ruled.startswith("Un operatore ha esaminato la tua situazione")
    assert "Dalle tue risposte" not in ruled and "331 693 8049" in ruled
    english = screens.not_yet_text(view("en"), NotEligible(reasons=(), by_coordinator=True))
    assert english.startswith("A case worker has looked at your situation")


def test_the_standing_decides_what_is_shown() -> None:
    starts = NOW + timedelta(days=2)
    booked = Booking(
        id=7, code="ACD347", helpdesk_id=1, starts_at=starts,
        ends_at=starts + timedelta(minutes=30),
    )  # fmt: skip
    text, markup = screens.where_you_stand(view(), Booked(booked, COMUNE)) or ("", None)
    assert "ACD347" in text and data(markup) == ["mv:7", "cx:7"]
    entry = WaitlistEntry(id=5, citizen_id=1, state=WaitlistState.WAITING.value)
    text, markup = screens.where_you_stand(view(), Waiting(entry)) or ("", None)
    assert "Sei in lista d'attesa" in text and markup is None
    place = Slot(id=9, helpdesk_id=2, starts_at=starts, ends_at=starts + timedelta(minutes=30))
    offered = WaitlistEntry(id=6, citizen_id=1, state=WaitlistState.OFFERED.value)
    held = Offered(offered, place, VILLA, NOW + timedelta(minutes=15))
    text, markup = screens.where_you_stand(view(), held) or ("", None)
    assert "Si è liberato un posto per te" in text and data(markup) == ["oa:6", "od:6"]
    assert screens.where_you_stand(view(), MayBook()) is None
    assert screens.where_you_stand(view(), MayBook(by_coordinator=True)) is None
    for not_yet, said in (
        (NotConsented(), "/start"),
        (QuestionnaireToFinish(None), "prima rispondi a qualche domanda"),
        (NotEligible(reasons=(), by_coordinator=True), "Un operatore"),
    ):
        text, markup = screens.where_you_stand(view(), not_yet) or ("", None)
        assert said in text and markup is None
        # /prenotazione with nothing booked: why not, never a "Book" button.
        text, markup = screens.nothing_booked_screen(view(), "Nessun appuntamento.", not_yet)
        assert said in text and markup is None
    _, markup = screens.nothing_booked_screen(view(), "Nessun appuntamento.", MayBook())
    assert data(markup) == ["hds"]
