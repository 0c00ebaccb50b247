"""Urgent first, on Telegram: the soonest free days for an urgent citizen, and what a
citizen reads when staff offer them a place (`shared.booking.offers`): an earlier place
for their appointment, or a place of its own, with "Accept" / "Decline" (the waitlist's
buttons: one tap), and the note when the hold lapsed. Pure functions.
"""

from __future__ import annotations

import html
from datetime import datetime

from bot.callbacks import Cb, encode
from bot.screens.card import booking_details, place, when_line
from bot.screens.common import (
    Screen,
    View,
    clock,
    day_label,
    day_without_year,
    join,
    keyboard,
)
from shared.booking.availability import FreeSlot
from shared.booking.models import Booking, Helpdesk
from shared.i18n import N_

# The soonest days an urgent citizen is offered first, whatever the helpdesk.
EARLIEST_DAYS = 4
SOONEST = N_("These are the soonest days with a free place, at any helpdesk:")
OR_HELPDESK = N_("Or choose the helpdesk first:")

EARLIER = N_("🎉 <b>An earlier place</b> has come up for your Ripartire interview:")
EARLIER_NOW = N_("<b>Your appointment now</b> (it stays as it is if you say no):")
EARLIER_ASK = N_(
    "We're holding the earlier place for you until <b>{until}</b>. Do you want to move "
    "your appointment there?"
)
BUTTON_MOVE = N_("✅ Yes, move it there")
BUTTON_KEEP = N_("✖️ No, keep mine")

PROPOSED = N_("📅 <b>We can offer you this place</b> for your Ripartire interview:")
PROPOSED_ASK = N_("We're holding it for you until <b>{until}</b>. Do you want it?")
BUTTON_BOOK = N_("✅ Yes, book it")
BUTTON_NO = N_("✖️ No, thanks")

HOLD_TODAY = N_("{time}")
HOLD_ON = N_("{day} at {time}")

LAPSED = N_(
    "⌛ We were holding the place of {day} at {time} for you, but we didn't hear from you "
    "in time, so it has gone to someone else."
)
LAPSED_KEPT = N_("Your appointment stays as it is: write /prenotazione to see it.")
LAPSED_NEXT = N_("To look for an appointment, write /prenotazione.")

DECLINED_KEPT = N_("All right: your appointment stays as it is.")


def _until(view: View, expires_at: datetime) -> str:
    t = view.t
    if view.local(expires_at).date() == view.today:
        return t(HOLD_TODAY, time=clock(view, expires_at))
    day = day_without_year(t, view.local(expires_at).date())
    return t(HOLD_ON, day=day, time=clock(view, expires_at))


def place_offer(
    view: View,
    entry_id: int,
    starts_at: datetime,
    expires_at: datetime,
    helpdesk: Helpdesk,
    replaced: tuple[Booking, Helpdesk] | None,
) -> Screen:
    """The place held until `expires_at`; `replaced`: the appointment accepting it moves."""
    t = view.t
    offered = f"{when_line(view, starts_at)}\n{place(helpdesk, t, with_directions=True)}"
    until = _until(view, expires_at)
    if replaced is not None:
        text = join(
            t(EARLIER),
            offered,
            f"{t(EARLIER_NOW)}\n{booking_details(view, *replaced)}",
            t(EARLIER_ASK, until=until),
        )
        yes, no = t(BUTTON_MOVE), t(BUTTON_KEEP)
    else:
        text = join(t(PROPOSED), offered, t(PROPOSED_ASK, until=until))
        yes, no = t(BUTTON_BOOK), t(BUTTON_NO)
    rows = [
        [(yes, encode(Cb.OFFER_ACCEPT, entry_id))],
        [(no, encode(Cb.OFFER_DECLINE, entry_id))],
    ]
    return text, keyboard(rows)


def place_offer_lapsed(view: View, starts_at: datetime, kept_appointment: bool) -> str:
    """The hold lapsed; `kept_appointment`: the citizen still has the one it would move."""
    t = view.t
    day = day_without_year(t, view.local(starts_at).date())
    return join(
        t(LAPSED, day=html.escape(day), time=clock(view, starts_at)),
        t(LAPSED_KEPT) if kept_appointment else t(LAPSED_NEXT),
    )


def declined_keeping(view: View) -> str:
    return view.t(DECLINED_KEPT)


def soonest_days_screen(
    view: View,
    slots: list[FreeSlot],
    helpdesks: list[Helpdesk],
    extra: tuple[int, ...],
    note: str = "",
) -> Screen:
    """For an urgent citizen: the soonest free days across the helpdesks first (each opens
    that day's times), then the helpdesks, as for anyone. `slots`: free, earliest first."""
    t = view.t
    names = {h.id: h.name for h in helpdesks}
    days: list[tuple[int, str, str]] = []
    seen: set[tuple[int, str]] = set()
    for slot in slots:
        day = view.local(slot.starts_at).date()
        key = (slot.helpdesk_id, day.strftime("%Y%m%d"))
        if slot.helpdesk_id in names and key not in seen:
            seen.add(key)
            label = f"{day_label(t, day)} · {names[slot.helpdesk_id]}"
            days.append((slot.helpdesk_id, key[1], label))
        if len(days) == EARLIEST_DAYS:
            break
    rows = [[(label, encode(Cb.DAY, hd, day, *extra))] for hd, day, label in days]
    rows += [[(f"📍 {h.name}", encode(Cb.HELPDESK, h.id, *extra))] for h in helpdesks]
    return join(note, t(SOONEST), t(OR_HELPDESK)), keyboard(rows)
