"""The pieces every screen is made of: the citizen's language and clock, dates, buttons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from babel.dates import format_date
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from shared.i18n import Translator
from shared.settings import Settings

Screen = tuple[str, InlineKeyboardMarkup | None]
Rows = list[list[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class View:
    """Who a screen is for and when: their language, the program's time zone, now, and
    the booking rules a screen mentions (how far ahead one can book, how long a place is
    held for the waitlist)."""

    t: Translator
    tz: tzinfo
    now: datetime
    horizon_days: int
    hold_minutes: int

    @classmethod
    def of(cls, t: Translator, settings: Settings, now: datetime) -> View:
        return cls(
            t, settings.tz, now, settings.booking_horizon_days, settings.waitlist_hold_minutes
        )

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    @property
    def today(self) -> date:
        return self.local(self.now).date()


def keyboard(rows: Rows) -> InlineKeyboardMarkup | None:
    """Buttons from (label, callback data) rows; empty rows dropped, None if none is left."""
    rows = [row for row in rows if row]
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


def chunks(items: Sequence[tuple[str, str]], size: int) -> Rows:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def join(*parts: str) -> str:
    """Paragraphs, the empty ones left out."""
    return "\n\n".join(part for part in parts if part)


def day_label(t: Translator, day: date) -> str:
    """A short day for a button: "mer 9 dicembre", "Wed 9 December"."""
    return format_date(day, "EEE d MMMM", locale=t.language)


def long_day(t: Translator, day: date) -> str:
    """ "lunedì 7 dicembre 2026", "Monday 7 December 2026"."""
    return format_date(day, "EEEE d MMMM y", locale=t.language)


def day_without_year(t: Translator, day: date) -> str:
    """ "lunedì 7 dicembre": for news about a day close to now."""
    return format_date(day, "EEEE d MMMM", locale=t.language)


def clock(view: View, moment: datetime) -> str:
    """The time of day in the program's time zone: "09:30"."""
    return view.local(moment).strftime("%H:%M")


def when(view: View, moment: datetime) -> str:
    """Day and time in the program's time zone: "lunedì 7 dicembre 2026 alle 09:30"."""
    return view.t(
        "{day} at {time}", day=long_day(view.t, view.local(moment).date()), time=clock(view, moment)
    )
