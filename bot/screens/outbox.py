"""What the outbox tells citizens (SPEC J3), as pure functions: the current data in, text
and buttons out. `bot.delivery` reads the data, decides whether the message still
applies, and sends what these return; a booking confirmed or moved by the staff is the
booking card (`bot.screens.card`), the same the bot replies with.
"""

from __future__ import annotations

import html
from datetime import date, datetime

from babel.dates import format_date
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.callbacks import Cb, encode
from bot.screens.booking import book_button
from bot.screens.card import booking_details, manage_row, place, what_to_bring, when_line
from bot.screens.common import Screen, View, clock, day_without_year, join, keyboard
from shared import money
from shared.booking.models import Booking, Helpdesk
from shared.i18n import N_, Translator
from shared.plans import catalog
from shared.plans import messages as plan_messages
from shared.plans.acknowledgements import shown_hash
from shared.plans.messages import PlanSummary

# The plan's summary is kept short: the rest is in the citizen's paper copy.
MAX_SUMMARY_ITEMS = 8
MAX_COMMITMENT_CHARS = 160
MAX_PROVIDER_CHARS = 80

REMINDER_TOMORROW = N_("⏰ <b>Reminder:</b> your Ripartire interview is tomorrow.")
REMINDER_TODAY = N_("⏰ <b>Reminder:</b> your Ripartire interview is today.")
REMINDER_SOON = N_("⏰ <b>Reminder:</b> your Ripartire interview is coming up.")
REMINDER_ASK = N_(
    "Will you come? Tell us with a button. If you can't make it, move or cancel the "
    "appointment, so the place goes to someone else."
)
BUTTON_ATTENDING = N_("✅ I'll be there")

CANCELLED = N_(
    "❌ <b>We are sorry:</b> the helpdesk had to cancel your Ripartire interview "
    "planned for {day} at {time}."
)
CANCEL_REASON = N_("Reason: {reason}")
BOOK_AGAIN = N_("You can book a new appointment whenever you like: write /prenotazione.")
QUESTIONS = N_("Questions? You can reach us here:")

NO_SHOW = N_(
    "We missed you at your Ripartire interview planned for {day} at {time}. It can happen!"
)
NO_SHOW_OFFER = N_(
    "If you still want our help, book a new appointment: write /prenotazione (or /start)."
)

CASE_ELIGIBLE = N_(
    "🎉 <b>Good news:</b> a case worker has looked at your situation: you can now book "
    "your Ripartire interview."
)
CASE_ELIGIBLE_HOW = N_(
    "Choose the helpdesk, the day and the time with the button below (or write /prenotazione)."
)

OFFER = N_("🎉 <b>A place has freed up</b> for your Ripartire interview:")
OFFER_HELD_TODAY = N_("We are holding it for you until <b>{time}</b>. Do you want it?")
OFFER_HELD = N_("We are holding it for you until <b>{day} at {time}</b>. Do you want it?")
BUTTON_ACCEPT = N_("✅ Book it")
BUTTON_DECLINE = N_("✖️ No, thanks")

OFFER_EXPIRED = N_(
    "⌛ The place of {day} at {time} that we were holding for you has gone to the next "
    "person in line, because we didn't hear from you in time."
)
OFFER_EXPIRED_NEXT = N_("To look for another appointment, write /prenotazione.")

# A request at a moderated helpdesk, declined or expired (its confirmation is the card).
REQUEST_DECLINED = N_(
    "❌ <b>We are sorry:</b> the helpdesk could not confirm your request for an "
    "appointment on {day} at {time}."
)
REQUEST_EXPIRED = N_(
    "⌛ <b>We are sorry:</b> your request for an appointment on {day} at {time} was not "
    "confirmed in time, so the place is free again."
)
REQUEST_OFFERED = N_(
    "The helpdesk is holding another time for you: answer the message with the proposal."
)
CHOOSE_AGAIN = N_("You can choose another day and time with the button below.")

INTAKE_REMINDER = N_(
    "📝 You started the Ripartire questionnaire but haven't finished it. If you don't "
    "continue, your answers will be deleted on {day}."
)
INTAKE_CONTINUE = N_("Write /start to pick up where you left off: it takes a few minutes.")

PLAN_READY = N_(
    "📝 <b>Your Ripartire plan is ready.</b> It has been approved: now it only needs your "
    "signature."
)
PLAN_UPDATED = N_(
    "📝 <b>Your Ripartire plan has been updated</b> (version {version}) and approved again: "
    "it needs your signature once more."
)
SIGN_AT_APPOINTMENT = N_("Come and sign it at your appointment, where we'll read it together:")
SIGN_BOOK = N_(
    "Come to the helpdesk to read it together and sign it. To choose a day, write "
    "/prenotazione, or get in touch with us:"
)
BRING_ID = N_("Please bring an identity document.")

PLAN_STARTED = N_(
    "✅ <b>Your Ripartire plan has started.</b> Thank you for signing it! Here it is in short."
)
YOUR_COMMITMENTS = N_("<b>What you'll do</b>")
# Not "by {date}": the printed plan's, whose date has no weekday ("entro il 20 gennaio").
COMMITMENT_BY = N_("by {day}")
OUR_SUPPORTS = N_("<b>How we'll help you</b>")
SUPPORT_TOTAL = N_("{amount} in total")
SUPPORT_WITH = N_("with {provider}")
MORE_IN_COPY = N_("… and the rest is in your copy of the plan.")
NEXT_REVIEW = N_(
    "📅 The next review of your plan is on <b>{date}</b>: we'll look together at how it's going."
)
READ_ASK = N_(
    "Read it calmly. When you have, tap the button below: it lets us know you've read it. "
    "It isn't a signature."
)
BUTTON_READ = N_("✅ I've read it")

REVIEW_COMING = N_(
    "📅 <b>Your plan's review is coming up:</b> it's on <b>{date}</b>, and we'll look together "
    "at how it's going."
)
REVIEW_APPOINTMENT = N_("Your appointment:")
REVIEW_CONTACT = N_(
    "We'll get in touch to agree on the time. If you prefer, you can book an appointment "
    "yourself: write /prenotazione."
)

PLAN_CLOSED = N_(
    "🌱 <b>Your Ripartire plan is now closed.</b> Thank you for the path we walked together, "
    "and for everything you put into it."
)
IF_YOU_NEED_US = N_("If you need us again, we're here:")


def _day(view: View, moment: datetime) -> str:
    return day_without_year(view.t, view.local(moment).date())


def _contacts(t: Translator, opening: str) -> str:
    return f"{t(opening)}\n{texts.contacts(t)}"


# --- bookings and the waitlist -------------------------------------------------------


def reminder(view: View, booking: Booking, helpdesk: Helpdesk) -> Screen:
    """The reminder of an appointment still to come, with "I'll be there", "Move", "Cancel"."""
    t = view.t
    days_left = (view.local(booking.starts_at).date() - view.today).days
    headline = {0: REMINDER_TODAY, 1: REMINDER_TOMORROW}.get(days_left, REMINDER_SOON)
    text = join(
        t(headline), booking_details(view, booking, helpdesk), what_to_bring(t), t(REMINDER_ASK)
    )
    rows = [[(t(BUTTON_ATTENDING), encode(Cb.ATTENDING, booking.id))], manage_row(t, booking.id)]
    return text, keyboard(rows)


def cancelled_by_staff(view: View, booking: Booking) -> str:
    t = view.t
    reason = booking.cancel_reason
    return join(
        t(CANCELLED, day=_day(view, booking.starts_at), time=clock(view, booking.starts_at)),
        t(CANCEL_REASON, reason=html.escape(reason)) if reason else "",
        t(BOOK_AGAIN),
        _contacts(t, QUESTIONS),
    )


def request_declined(view: View, booking: Booking, *, offered: bool = False) -> Screen:
    """A coordinator declined the request, with their reason; `offered`: they proposed
    another time (its own message, with its buttons), else "choose again"."""
    t = view.t
    reason = booking.cancel_reason
    text = join(
        t(REQUEST_DECLINED, day=_day(view, booking.starts_at), time=clock(view, booking.starts_at)),
        t(CANCEL_REASON, reason=html.escape(reason)) if reason else "",
        t(REQUEST_OFFERED) if offered else t(CHOOSE_AGAIN),
        _contacts(t, QUESTIONS),
    )
    return text, None if offered else keyboard(book_button(t))


def request_expired(view: View, booking: Booking) -> Screen:
    """Nobody confirmed the request in time: the place is free again; choose again."""
    t = view.t
    text = join(
        t(REQUEST_EXPIRED, day=_day(view, booking.starts_at), time=clock(view, booking.starts_at)),
        t(CHOOSE_AGAIN),
        _contacts(t, QUESTIONS),
    )
    return text, keyboard(book_button(t))


def rebook_after_no_show(view: View, booking: Booking) -> str:
    t = view.t
    return join(
        t(NO_SHOW, day=_day(view, booking.starts_at), time=clock(view, booking.starts_at)),
        t(NO_SHOW_OFFER),
    )


def case_eligible(view: View) -> Screen:
    """A coordinator admitted a citizen who could not book: they can now, with the bot's own
    "Book an interview" button."""
    t = view.t
    return join(t(CASE_ELIGIBLE), t(CASE_ELIGIBLE_HOW)), keyboard(book_button(t))


def waitlist_offer(
    view: View, entry_id: int, starts_at: datetime, expires_at: datetime, helpdesk: Helpdesk
) -> Screen:
    """A place held for a waiting citizen until `expires_at`: "Book it" or "No, thanks"."""
    t = view.t
    if view.local(expires_at).date() == view.today:
        held = t(OFFER_HELD_TODAY, time=clock(view, expires_at))
    else:
        held = t(OFFER_HELD, day=_day(view, expires_at), time=clock(view, expires_at))
    where = place(helpdesk, t, with_directions=True)
    text = join(t(OFFER), f"{when_line(view, starts_at)}\n{where}", held)
    rows = [
        [
            (t(BUTTON_ACCEPT), encode(Cb.OFFER_ACCEPT, entry_id)),
            (t(BUTTON_DECLINE), encode(Cb.OFFER_DECLINE, entry_id)),
        ]
    ]
    return text, keyboard(rows)


def waitlist_offer_expired(view: View, starts_at: datetime) -> str:
    t = view.t
    return join(
        t(OFFER_EXPIRED, day=_day(view, starts_at), time=clock(view, starts_at)),
        t(OFFER_EXPIRED_NEXT),
    )


def intake_expiry_reminder(view: View, expires_at: datetime) -> str:
    t = view.t
    return join(t(INTAKE_REMINDER, day=_day(view, expires_at)), t(INTAKE_CONTINUE))


# --- the plan (shared.plans.messages) ----------------------------------------------------


def _text(text: str) -> str:
    """Free text in an HTML message: only what Telegram would read as markup is escaped."""
    return html.escape(text, quote=False)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _date(t: Translator, day: date, pattern: str = "EEEE d MMMM y") -> str:
    return format_date(day, pattern, locale=t.language)


def _listed(t: Translator, items: list[str]) -> str:
    """At most `MAX_SUMMARY_ITEMS` lines, then where to read the others."""
    shown = items[:MAX_SUMMARY_ITEMS]
    if len(items) > len(shown):
        shown.append(t(MORE_IN_COPY))
    return "\n".join(shown)


def _commitment_line(t: Translator, commitment: plan_messages.SummaryCommitment) -> str:
    line = f"• {_text(_shorten(commitment.what, MAX_COMMITMENT_CHARS))}"
    if commitment.due_on is not None:
        line += f" — {t(COMMITMENT_BY, day=_date(t, commitment.due_on))}"
    return line


def _support_line(t: Translator, support: plan_messages.SummarySupport) -> str:
    label = t(catalog.intervention(support.kind).label)
    bits = []
    if support.amount_cents:
        bits.append(t(SUPPORT_TOTAL, amount=money.format_euros(support.amount_cents, t.language)))
    if support.starts_on is not None and support.ends_on is not None:
        bits.append(
            f"{_date(t, support.starts_on, 'd MMMM y')} – {_date(t, support.ends_on, 'd MMMM y')}"
        )
    if support.provider:
        provider = _text(_shorten(support.provider, MAX_PROVIDER_CHARS))
        bits.append(t(SUPPORT_WITH, provider=provider))
    line = f"• <b>{_text(label)}</b>"
    return f"{line}\n   {' · '.join(bits)}" if bits else line


def plan_summary_message(
    t: Translator, summary: PlanSummary, opening: str
) -> tuple[str, InlineKeyboardMarkup]:
    """The citizen's summary of their plan after `opening`, with "I've read it".

    One renderer: the outbox's message when the plan starts and the bot's reply to a tap
    on an outdated summary are this same text. The button carries the plan, the version
    and the start of the summary's hash: what the citizen is shown is what a tap records.
    """
    parts = [opening]
    if summary.commitments:
        lines = [_commitment_line(t, c) for c in summary.commitments]
        parts.append(f"{t(YOUR_COMMITMENTS)}\n{_listed(t, lines)}")
    if summary.supports:
        lines = [_support_line(t, s) for s in summary.supports]
        parts.append(f"{t(OUR_SUPPORTS)}\n{_listed(t, lines)}")
    if summary.review_on is not None:
        parts.append(t(NEXT_REVIEW, date=_date(t, summary.review_on)))
    parts.append(t(READ_ASK))
    parts.append(_contacts(t, QUESTIONS))
    data = encode(Cb.PLAN_READ, summary.plan_id, summary.version, shown_hash(summary))
    markup = InlineKeyboardMarkup([[InlineKeyboardButton(t(BUTTON_READ), callback_data=data)]])
    return "\n\n".join(parts), markup


def plan_started(t: Translator, summary: PlanSummary) -> tuple[str, InlineKeyboardMarkup]:
    return plan_summary_message(t, summary, t(PLAN_STARTED))


Appointment = tuple[Booking, Helpdesk]


def plan_approved(view: View, version: int, appointment: Appointment | None) -> str:
    """The plan awaits the citizen's signature: at their appointment, or at the helpdesk."""
    t = view.t
    ready = t(PLAN_READY) if version == 1 else t(PLAN_UPDATED, version=version)
    if appointment is not None:
        where = f"{t(SIGN_AT_APPOINTMENT)}\n{booking_details(view, *appointment)}"
    else:
        where = _contacts(t, SIGN_BOOK)
    return join(ready, where, t(BRING_ID))


def plan_review_due(view: View, review_on: date, appointment: Appointment | None) -> str:
    t = view.t
    if appointment is not None:
        when = f"{t(REVIEW_APPOINTMENT)}\n{booking_details(view, *appointment)}"
    else:
        when = _contacts(t, REVIEW_CONTACT)
    return join(t(REVIEW_COMING, date=_date(t, review_on, "EEEE d MMMM")), when)


def plan_closed(t: Translator) -> str:
    return join(t(PLAN_CLOSED), _contacts(t, IF_YOU_NEED_US))
