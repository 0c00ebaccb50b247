"""What the outbox says, without PTB or a database: the current data in, text and buttons out."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.screens import outbox as screens
from bot.screens.card import booking_details, what_to_bring
from bot.screens.common import View
from shared.booking.models import Booking, Helpdesk
from shared.i18n import Translator
from tests.factories import ROME, rome

STARTS = rome(2026, 6, 9, 9, 30)  # a Tuesday
HELPDESK = Helpdesk(id=3, name="Sportello Comune", address="Via Roma 1", directions="Scala B")


def view(now: datetime, language: str = "it") -> View:
    return View(Translator(language), ROME, now, horizon_days=30, hold_minutes=15)


def booking(reason: str = "") -> Booking:
    return Booking(
        id=7, code="ACD347", helpdesk_id=3, starts_at=STARTS,
        ends_at=STARTS + timedelta(minutes=30), cancel_reason=reason,
    )  # fmt: skip


def test_the_reminder_shows_the_card_details_and_what_to_bring() -> None:
    seen = view(rome(2026, 6, 8, 18))
    text, markup = screens.reminder(seen, booking(), HELPDESK)
    assert text.startswith("⏰ <b>Promemoria:</b>") and "domani" in text.split("\n")[0]
    assert booking_details(seen, booking(), HELPDESK) in text
    assert what_to_bring(seen.t) in text
    assert markup is not None
    assert [b.callback_data for row in markup.inline_keyboard for b in row] == [
        "here:7", "mv:7", "cx:7",
    ]  # fmt: skip
    today, _ = screens.reminder(view(rome(2026, 6, 9, 6, 30)), booking(), HELPDESK)
    assert "oggi" in today.split("\n")[0]
    soon, _ = screens.reminder(view(rome(2026, 6, 5, 10)), booking(), HELPDESK)
    assert "domani" not in soon.split("\n")[0] and "oggi" not in soon.split("\n")[0]


def test_a_cancellation_escapes_the_staffs_reason() -> None:
    text = screens.cancelled_by_staff(view(rome(2026, 6, 7, 11)), booking("Chiuso <sciopero>"))
    assert "martedì 9 giugno alle 09:30" in text
    assert "Chiuso &lt;sciopero&gt;" in text
    assert "331 693 8049" in text
    assert "Motivo" not in screens.cancelled_by_staff(view(rome(2026, 6, 7, 11)), booking())


def test_an_offer_says_until_when_it_is_held() -> None:
    now = rome(2026, 6, 5, 10)
    today, markup = screens.waitlist_offer(
        view(now), 5, STARTS, now + timedelta(minutes=15), HELPDESK
    )
    assert "<b>10:15</b>" in today and "Scala B" in today
    assert markup is not None
    assert [b.callback_data for b in markup.inline_keyboard[0]] == ["oa:5", "od:5"]
    later, _ = screens.waitlist_offer(
        view(rome(2026, 6, 5, 23, 55)), 5, STARTS, rome(2026, 6, 6, 0, 10), HELPDESK
    )
    assert "sabato 6 giugno alle 00:10" in later


def test_a_coordinators_admission_says_so_with_the_bots_book_button() -> None:
    text, markup = screens.case_eligible(view(rome(2026, 6, 8, 18)))
    assert text.startswith("🎉 <b>Buone notizie:</b> un operatore ha esaminato la tua situazione")
    assert "ora puoi prenotare" in text
    assert markup is not None
    assert [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row] == [
        ("📅 Prenota un colloquio", "hds"),
    ]
    english, _ = screens.case_eligible(view(rome(2026, 6, 8, 18), "en"))
    assert english.startswith("🎉 <b>Good news:</b> a case worker has looked at your situation")
