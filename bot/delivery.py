"""Deliver the outbox to citizens on Telegram (SPEC J3): reminders and staff news.

A round (`OutboxDispatcher.run_once`):

1. claim the due messages in one short transaction: a lease, so a dispatcher that dies
   gives them back when it lapses, and two dispatchers never claim the same message;
2. for each message, read the current data (the booking may have changed since it was
   queued) and render it in the citizen's language in a short read-only transaction;
3. send it with no transaction open;
4. record the outcome in its own short transaction.

No database transaction is ever held open while talking to Telegram.

Rate limits. Telegram allows bulk notifications ~30 messages/s overall: the dispatcher's
own limiter (`overall_rate`), shared by all its sends. Telegram also wants at most ~1
message per second in one chat: the messages of a batch are grouped by citizen, each
citizen's messages go out in order with `per_chat_interval` between them (remembered
across rounds), and the citizens are served concurrently, so a citizen with several
messages never holds back the others. The pacing is per dispatcher:
two instances may each write to the same chat within the interval; Telegram then answers
RetryAfter, which is honoured like any other.

Order. A chat's messages arrive in the order they were queued (by due time): when one
is refused or fails and must be tried again, the chat's later messages in the batch are
given back untried, and the outbox holds them until it has gone (see
`shared.outbox.service`); other chats carry on.

Errors. RetryAfter puts back that message, after exactly the delay Telegram asked
for; Forbidden (the citizen blocked the bot) flags the citizen unreachable and stops all
their messages; network errors, timeouts and 5xx answers retry with backoff; BadRequest
(chat not found, text rejected) gives up on the message; anything else is logged and
retried. A message that no longer applies (the reminder of a cancelled booking, an offer
already answered) is withdrawn, not failed: nothing went wrong with its delivery.
"""

from __future__ import annotations

import asyncio
import html
import io
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import telegram
from aiolimiter import AsyncLimiter
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot import faults, texts
from bot.callbacks import Cb, encode
from bot.flood import retry_after_seconds
from shared import money
from shared.booking import service as booking_service
from shared.booking.calendar import booking_ics
from shared.booking.messages import MessageKind
from shared.booking.models import (
    Booking,
    BookingState,
    Helpdesk,
    Slot,
    WaitlistEntry,
    WaitlistState,
)
from shared.citizens.models import Citizen
from shared.db import Database, utcnow
from shared.i18n import N_, Translator
from shared.intake import service as intake
from shared.intake.models import UNFINISHED
from shared.outbox import service as outbox
from shared.outbox.models import MessageState, OutboxMessage
from shared.plans import catalog
from shared.plans import messages as plan_messages
from shared.plans.acknowledgements import shown_hash
from shared.plans.messages import PlanSummary
from shared.plans.models import Plan, PlanState
from shared.settings import Settings

log = logging.getLogger(__name__)

# Citizens served at the same time in one round; the overall rate is `overall_rate`.
MAX_PARALLEL_CHATS = 10
# The lease must outlast a round: a citizen with a whole batch of messages (and their
# calendar files) is paced one per interval, and each send may wait on a slow network.
MIN_LEASE = timedelta(minutes=2)
LEASE_MARGIN = timedelta(minutes=1)
# When pending messages are due but none could be claimed (another dispatcher holds
# them), wait at least this long instead of spinning.
MIN_PAUSE_SECONDS = 0.05
# Telegram refuses texts over 4096 characters; the rest of a message is far shorter.
MAX_DIRECTIONS_CHARS = 600
# The same limit for the plan's summary: the rest is in the citizen's paper copy.
MAX_SUMMARY_ITEMS = 8
MAX_COMMITMENT_CHARS = 160
MAX_PROVIDER_CHARS = 80


# --- what a message becomes ----------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes


@dataclass(frozen=True)
class Outgoing:
    """A message ready for Telegram (HTML), with an optional file sent right after it."""

    chat_id: int
    text: str
    keyboard: InlineKeyboardMarkup | None = None
    attachment: Attachment | None = None


@dataclass(frozen=True)
class Withdrawn:
    """The message no longer applies (its booking was cancelled, the offer answered...)."""

    reason: str


@dataclass(frozen=True)
class Undeliverable:
    """The message can never be sent (no chat, citizen unreachable, unknown kind)."""

    reason: str


Rendered = Outgoing | Withdrawn | Undeliverable


@dataclass(frozen=True)
class Sent:
    pass


@dataclass(frozen=True)
class Retry:
    error: str
    # The delay Telegram asked for; None means "back off".
    retry_after: float | None = None


@dataclass(frozen=True)
class Failed:
    error: str


@dataclass(frozen=True)
class Unreachable:
    error: str


Outcome = Sent | Retry | Failed | Unreachable | Withdrawn


@dataclass(frozen=True)
class Claimed:
    """What the dispatcher keeps of a claimed message once the claim transaction is over."""

    id: int
    kind: str
    citizen_id: int
    payload: dict[str, Any]

    @classmethod
    def of(cls, message: OutboxMessage) -> Claimed:
        return cls(message.id, message.kind, message.citizen_id, dict(message.payload or {}))


# --- texts (msgids in English; Italian in shared/i18n/locale/it/LC_MESSAGES/delivery.po) ---

WHEN = N_("📅 <b>{day}</b> at <b>{time}</b>")
BOOKING_CODE = N_("🔖 Booking code: <b>{code}</b>")
WHAT_TO_BRING = N_(
    "Please bring an identity document, your fiscal code, your ISEE if you have one, and "
    "the letter of dismissal or the closure of your VAT number."
)

REMINDER_TOMORROW = N_("⏰ <b>Reminder:</b> your Ripartire interview is tomorrow.")
REMINDER_TODAY = N_("⏰ <b>Reminder:</b> your Ripartire interview is today.")
REMINDER_SOON = N_("⏰ <b>Reminder:</b> your Ripartire interview is coming up.")
REMINDER_ASK = N_(
    "Will you come? Tell us with a button. If you can't make it, move or cancel the "
    "appointment, so the place goes to someone else."
)
BUTTON_ATTENDING = N_("✅ I'll be there")
BUTTON_MOVE = N_("🔁 Move")
BUTTON_CANCEL = N_("❌ Cancel")

CONFIRMED = N_(
    "✅ <b>Your Ripartire interview is booked.</b> The helpdesk staff booked it for you:"
)
MOVED = N_(
    "🔁 <b>Your Ripartire interview has been moved</b> by the helpdesk staff. The new appointment:"
)
MOVED_SORRY = N_("Sorry for the change. If the new time doesn't suit you, move it.")
CALENDAR_HINT = N_(
    "The file below adds it to your phone's calendar. To see, move or cancel the "
    "appointment: /prenotazione"
)
ICS_SUMMARY = N_("Ripartire interview")
ICS_CODE = N_("Booking code: {code}")

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


# --- rendering ------------------------------------------------------------------------


class _Stale(Exception):
    """Raised while rendering: the message no longer applies."""


class _Broken(Exception):
    """Raised while rendering: the message refers to something that isn't there."""


@dataclass(frozen=True)
class _Context:
    session: AsyncSession
    settings: Settings
    t: Translator
    now: datetime
    message: Claimed
    chat_id: int


def _day(t: Translator, settings: Settings, moment: datetime) -> str:
    return format_date(_local_date(settings, moment), "EEEE d MMMM", locale=t.language)


def _time(settings: Settings, moment: datetime) -> str:
    return moment.astimezone(settings.tz).strftime("%H:%M")


def _local_date(settings: Settings, moment: datetime) -> date:
    return moment.astimezone(settings.tz).date()


def _when(t: Translator, settings: Settings, moment: datetime) -> str:
    return t(WHEN, day=_day(t, settings, moment), time=_time(settings, moment))


def _where(helpdesk: Helpdesk) -> str:
    lines = [f"📍 <b>{html.escape(helpdesk.name)}</b>", html.escape(helpdesk.address)]
    directions = helpdesk.directions.strip()
    if directions:
        # Free text from staff: kept short so the message stays within Telegram's limit.
        if len(directions) > MAX_DIRECTIONS_CHARS:
            directions = directions[: MAX_DIRECTIONS_CHARS - 1].rstrip() + "…"
        lines.append(f"🚶 {html.escape(directions)}")
    return "\n".join(lines)


def _booking_details(ctx: _Context, booking: Booking, helpdesk: Helpdesk) -> str:
    return "\n".join(
        [
            _when(ctx.t, ctx.settings, booking.starts_at),
            _where(helpdesk),
            ctx.t(BOOKING_CODE, code=html.escape(booking.code)),
        ]
    )


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


def _manage_row(t: Translator, booking_id: int) -> list[InlineKeyboardButton]:
    return [
        _button(t(BUTTON_MOVE), encode(Cb.MOVE, booking_id)),
        _button(t(BUTTON_CANCEL), encode(Cb.CANCEL, booking_id)),
    ]


def _payload_id(message: Claimed, key: str) -> int:
    value = message.payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Broken(f"payload has no integer {key!r}")
    return value


async def _booking(ctx: _Context) -> tuple[Booking, Helpdesk]:
    booking_id = _payload_id(ctx.message, "booking_id")
    booking = await ctx.session.get(Booking, booking_id)
    if booking is None or booking.citizen_id != ctx.message.citizen_id:
        raise _Broken(f"booking {booking_id} not found for citizen {ctx.message.citizen_id}")
    helpdesk = await ctx.session.get(Helpdesk, booking.helpdesk_id)
    assert helpdesk is not None  # a foreign key
    return booking, helpdesk


async def _active_booking(ctx: _Context) -> tuple[Booking, Helpdesk]:
    """The booking, only while it is still booked and has not started."""
    booking, helpdesk = await _booking(ctx)
    if booking.state != BookingState.BOOKED.value:
        raise _Stale(f"booking {booking.id} is {booking.state}")
    if booking.starts_at <= ctx.now:
        raise _Stale(f"booking {booking.id} has already started")
    return booking, helpdesk


async def _reminder(ctx: _Context) -> Outgoing:
    booking, helpdesk = await _active_booking(ctx)
    t = ctx.t
    days_left = (
        _local_date(ctx.settings, booking.starts_at) - _local_date(ctx.settings, ctx.now)
    ).days
    headline = {0: REMINDER_TODAY, 1: REMINDER_TOMORROW}.get(days_left, REMINDER_SOON)
    text = "\n\n".join(
        [t(headline), _booking_details(ctx, booking, helpdesk), t(WHAT_TO_BRING), t(REMINDER_ASK)]
    )
    keyboard = InlineKeyboardMarkup(
        [
            [_button(t(BUTTON_ATTENDING), encode(Cb.ATTENDING, booking.id))],
            _manage_row(t, booking.id),
        ]
    )
    return Outgoing(ctx.chat_id, text, keyboard)


def _calendar_file(ctx: _Context, booking: Booking, helpdesk: Helpdesk) -> Attachment:
    t = ctx.t
    data = booking_ics(
        booking=booking,
        helpdesk=helpdesk,
        settings=ctx.settings,
        summary=t(ICS_SUMMARY),
        description=f"{t(ICS_CODE, code=booking.code)}. {t(WHAT_TO_BRING)}",
        stamp=ctx.now,
    )
    return Attachment(f"ripartire-{booking.code}.ics", data)


async def _confirmed(ctx: _Context) -> Outgoing:
    booking, helpdesk = await _active_booking(ctx)
    t = ctx.t
    text = "\n\n".join(
        [t(CONFIRMED), _booking_details(ctx, booking, helpdesk), t(WHAT_TO_BRING), t(CALENDAR_HINT)]
    )
    keyboard = InlineKeyboardMarkup([_manage_row(t, booking.id)])
    return Outgoing(ctx.chat_id, text, keyboard, _calendar_file(ctx, booking, helpdesk))


async def _moved(ctx: _Context) -> Outgoing:
    booking, helpdesk = await _active_booking(ctx)
    t = ctx.t
    text = "\n\n".join(
        [
            t(MOVED),
            _booking_details(ctx, booking, helpdesk),
            t(MOVED_SORRY),
            t(CALENDAR_HINT),
        ]
    )
    keyboard = InlineKeyboardMarkup([_manage_row(t, booking.id)])
    return Outgoing(ctx.chat_id, text, keyboard, _calendar_file(ctx, booking, helpdesk))


async def _cancelled(ctx: _Context) -> Outgoing:
    booking, _helpdesk = await _booking(ctx)
    if booking.state != BookingState.CANCELLED_BY_STAFF.value:
        raise _Stale(f"booking {booking.id} is {booking.state}, not cancelled by staff")
    t, settings = ctx.t, ctx.settings
    parts = [
        t(
            CANCELLED,
            day=_day(t, settings, booking.starts_at),
            time=_time(settings, booking.starts_at),
        )
    ]
    if booking.cancel_reason:
        parts.append(t(CANCEL_REASON, reason=html.escape(booking.cancel_reason)))
    parts.append(t(BOOK_AGAIN))
    parts.append(f"{t(QUESTIONS)}\n{texts.contacts(t)}")
    return Outgoing(ctx.chat_id, "\n\n".join(parts))


async def _rebook_after_no_show(ctx: _Context) -> Outgoing:
    booking, _helpdesk = await _booking(ctx)
    if booking.state != BookingState.NO_SHOW.value:
        raise _Stale(f"booking {booking.id} is {booking.state}, not a no-show")
    newer = await booking_service.active_booking(
        session=ctx.session, citizen_id=ctx.message.citizen_id
    )
    if newer is not None:
        raise _Stale(f"the citizen has booked again (booking {newer.id})")
    t, settings = ctx.t, ctx.settings
    text = "\n\n".join(
        [
            t(
                NO_SHOW,
                day=_day(t, settings, booking.starts_at),
                time=_time(settings, booking.starts_at),
            ),
            t(NO_SHOW_OFFER),
        ]
    )
    return Outgoing(ctx.chat_id, text)


async def _offer_slot(ctx: _Context) -> tuple[WaitlistEntry, Slot, Helpdesk]:
    entry_id = _payload_id(ctx.message, "entry_id")
    slot_id = _payload_id(ctx.message, "slot_id")
    entry = await ctx.session.get(WaitlistEntry, entry_id)
    slot = await ctx.session.get(Slot, slot_id)
    if entry is None or slot is None or entry.citizen_id != ctx.message.citizen_id:
        raise _Broken(f"waitlist entry {entry_id} or slot {slot_id} not found")
    helpdesk = await ctx.session.get(Helpdesk, slot.helpdesk_id)
    assert helpdesk is not None  # a foreign key
    return entry, slot, helpdesk


async def _waitlist_offer(ctx: _Context) -> Outgoing:
    entry, slot, helpdesk = await _offer_slot(ctx)
    if (
        entry.state != WaitlistState.OFFERED.value
        or entry.offered_slot_id != slot.id
        or entry.offer_expires_at is None
    ):
        raise _Stale(f"waitlist entry {entry.id} is {entry.state}: the offer is closed")
    if entry.offer_expires_at <= ctx.now:
        raise _Stale(f"the offer of waitlist entry {entry.id} has expired")
    t, settings = ctx.t, ctx.settings
    until = entry.offer_expires_at
    if _local_date(settings, until) == _local_date(settings, ctx.now):
        held = t(OFFER_HELD_TODAY, time=_time(settings, until))
    else:
        held = t(OFFER_HELD, day=_day(t, settings, until), time=_time(settings, until))
    text = "\n\n".join(
        [t(OFFER), f"{_when(t, settings, slot.starts_at)}\n{_where(helpdesk)}", held]
    )
    keyboard = InlineKeyboardMarkup(
        [
            [
                _button(t(BUTTON_ACCEPT), encode(Cb.OFFER_ACCEPT, entry.id)),
                _button(t(BUTTON_DECLINE), encode(Cb.OFFER_DECLINE, entry.id)),
            ]
        ]
    )
    return Outgoing(ctx.chat_id, text, keyboard)


async def _waitlist_offer_expired(ctx: _Context) -> Outgoing:
    _entry, slot, _helpdesk = await _offer_slot(ctx)
    t, settings = ctx.t, ctx.settings
    text = "\n\n".join(
        [
            t(
                OFFER_EXPIRED,
                day=_day(t, settings, slot.starts_at),
                time=_time(settings, slot.starts_at),
            ),
            t(OFFER_EXPIRED_NEXT),
        ]
    )
    return Outgoing(ctx.chat_id, text)


async def _intake_expiry_reminder(ctx: _Context) -> Outgoing:
    raw = ctx.message.payload.get("expires_at")
    try:
        expires_at = datetime.fromisoformat(str(raw))
    except ValueError:
        raise _Broken(f"payload has no valid 'expires_at': {raw!r}") from None
    if expires_at.tzinfo is None:
        raise _Broken(f"'expires_at' has no time zone: {raw!r}")
    if expires_at <= ctx.now:
        raise _Stale("the questionnaire has already expired")
    found = await intake.get_intake(session=ctx.session, citizen_id=ctx.message.citizen_id)
    if found is None or found.state not in UNFINISHED:
        raise _Stale("the questionnaire is no longer unfinished")
    t = ctx.t
    text = "\n\n".join(
        [t(INTAKE_REMINDER, day=_day(t, ctx.settings, expires_at)), t(INTAKE_CONTINUE)]
    )
    return Outgoing(ctx.chat_id, text)


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
    parts.append(f"{t(QUESTIONS)}\n{texts.contacts(t)}")
    data = encode(Cb.PLAN_READ, summary.plan_id, summary.version, shown_hash(summary))
    keyboard = InlineKeyboardMarkup([[_button(t(BUTTON_READ), data)]])
    return "\n\n".join(parts), keyboard


async def _plan(ctx: _Context) -> Plan:
    plan_id = _payload_id(ctx.message, "plan_id")
    plan = await plan_messages.citizens_plan(
        session=ctx.session, plan_id=plan_id, citizen_id=ctx.message.citizen_id
    )
    if plan is None:
        raise _Broken(f"plan {plan_id} not found for citizen {ctx.message.citizen_id}")
    return plan


async def _plan_at(ctx: _Context, state: PlanState) -> Plan:
    """The plan, only while it is still in `state` at the version the message is about."""
    plan = await _plan(ctx)
    version = _payload_id(ctx.message, "version")
    if plan.state != state.value:
        raise _Stale(f"plan {plan.id} is {plan.state}, not {state.value}")
    if plan.version != version:
        raise _Stale(f"plan {plan.id} is at version {plan.version}, not {version}")
    return plan


async def _next_booking(ctx: _Context) -> tuple[Booking, Helpdesk] | None:
    """The citizen's appointment still to come, if they have one."""
    booking = await booking_service.active_booking(
        session=ctx.session, citizen_id=ctx.message.citizen_id
    )
    if booking is None or booking.starts_at <= ctx.now:
        return None
    helpdesk = await ctx.session.get(Helpdesk, booking.helpdesk_id)
    assert helpdesk is not None  # a foreign key
    return booking, helpdesk


async def _plan_approved(ctx: _Context) -> Outgoing:
    plan = await _plan_at(ctx, PlanState.APPROVED)
    t = ctx.t
    parts = [t(PLAN_READY) if plan.version == 1 else t(PLAN_UPDATED, version=plan.version)]
    booked = await _next_booking(ctx)
    if booked is not None:
        parts.append(f"{t(SIGN_AT_APPOINTMENT)}\n{_booking_details(ctx, *booked)}")
    else:
        parts.append(f"{t(SIGN_BOOK)}\n{texts.contacts(t)}")
    parts.append(t(BRING_ID))
    return Outgoing(ctx.chat_id, "\n\n".join(parts))


async def _plan_active(ctx: _Context) -> Outgoing:
    plan = await _plan_at(ctx, PlanState.ACTIVE)
    summary = await plan_messages.plan_summary(session=ctx.session, plan=plan)
    text, keyboard = plan_summary_message(ctx.t, summary, ctx.t(PLAN_STARTED))
    return Outgoing(ctx.chat_id, text, keyboard)


async def _plan_review_due(ctx: _Context) -> Outgoing:
    plan = await _plan(ctx)
    raw = ctx.message.payload.get("review_on")
    try:
        review_on = date.fromisoformat(str(raw))
    except ValueError:
        raise _Broken(f"payload has no valid 'review_on': {raw!r}") from None
    if plan.state == PlanState.CLOSED.value:
        raise _Stale(f"plan {plan.id} is closed")
    if plan.next_review_on != review_on:
        raise _Stale(f"the review of plan {plan.id} is no longer on {review_on}")
    if review_on <= _local_date(ctx.settings, ctx.now):
        raise _Stale(f"the review of plan {plan.id} is today or past")
    t = ctx.t
    parts = [t(REVIEW_COMING, date=_date(t, review_on, "EEEE d MMMM"))]
    booked = await _next_booking(ctx)
    if booked is not None:
        parts.append(f"{t(REVIEW_APPOINTMENT)}\n{_booking_details(ctx, *booked)}")
    else:
        parts.append(f"{t(REVIEW_CONTACT)}\n{texts.contacts(t)}")
    return Outgoing(ctx.chat_id, "\n\n".join(parts))


async def _plan_closed(ctx: _Context) -> Outgoing:
    plan = await _plan(ctx)
    if plan.state != PlanState.CLOSED.value:
        raise _Stale(f"plan {plan.id} is {plan.state}, not closed")
    t = ctx.t
    text = "\n\n".join([t(PLAN_CLOSED), f"{t(IF_YOU_NEED_US)}\n{texts.contacts(t)}"])
    return Outgoing(ctx.chat_id, text)


# Each domain has its own kinds (the outbox stores plain strings); their values don't meet.
_RENDERERS = {
    MessageKind.REMINDER_DAY_BEFORE.value: _reminder,
    MessageKind.REMINDER_HOURS_BEFORE.value: _reminder,
    MessageKind.BOOKING_CONFIRMED.value: _confirmed,
    MessageKind.BOOKING_MOVED.value: _moved,
    MessageKind.BOOKING_CANCELLED.value: _cancelled,
    MessageKind.REBOOK_AFTER_NO_SHOW.value: _rebook_after_no_show,
    MessageKind.WAITLIST_OFFER.value: _waitlist_offer,
    MessageKind.WAITLIST_OFFER_EXPIRED.value: _waitlist_offer_expired,
    MessageKind.INTAKE_EXPIRY_REMINDER.value: _intake_expiry_reminder,
    plan_messages.MessageKind.PLAN_APPROVED.value: _plan_approved,
    plan_messages.MessageKind.PLAN_ACTIVE.value: _plan_active,
    plan_messages.MessageKind.PLAN_REVIEW_DUE.value: _plan_review_due,
    plan_messages.MessageKind.PLAN_CLOSED.value: _plan_closed,
}


async def render(
    *, session: AsyncSession, settings: Settings, message: Claimed, now: datetime
) -> Rendered:
    """The message as it should reach the citizen now, from the current data."""
    citizen = await session.get(Citizen, message.citizen_id)
    if citizen is None:
        return Undeliverable(f"citizen {message.citizen_id} not found")
    if citizen.unreachable:
        return Undeliverable("the citizen is unreachable (blocked the bot)")
    if citizen.telegram_chat_id is None:
        return Undeliverable("the citizen has no Telegram chat")
    renderer = _RENDERERS.get(message.kind)
    if renderer is None:
        return Undeliverable(f"unknown message kind {message.kind!r}")
    ctx = _Context(
        session, settings, Translator(citizen.language), now, message, citizen.telegram_chat_id
    )
    try:
        return await renderer(ctx)
    except _Stale as exc:
        return Withdrawn(str(exc))
    except _Broken as exc:
        return Undeliverable(str(exc))


# --- Telegram's answers ---------------------------------------------------------------


def outcome_of(exc: Exception) -> Sent | Retry | Failed | Unreachable:
    """What to do with a message whose sending raised `exc`."""
    said = faults.describe(exc)
    if isinstance(exc, RetryAfter):
        return Retry(said, retry_after=retry_after_seconds(exc))
    if isinstance(exc, Forbidden):
        return Unreachable(said)
    # BadRequest is a NetworkError in PTB: test it first.
    if isinstance(exc, BadRequest):
        return Failed(said)
    # NetworkError (TimedOut, and the 5xx answers, which PTB raises as NetworkError) is
    # transient; so, until proven otherwise, is anything unexpected: both back off.
    return Retry(said)


def _retry_news(message: Claimed, outcome: Retry, retried: OutboxMessage | None) -> str:
    said = f"outbox message {message.id} not sent: {outcome.error}"
    if retried is None:
        return said
    if retried.state == MessageState.FAILED.value:
        return f"{said}; given up after {retried.attempts} attempts"
    return f"{said}; to be tried again at {retried.retry_at:%H:%M:%S} UTC"


# --- the dispatcher -------------------------------------------------------------------


class OutboxDispatcher:
    """Claims due outbox messages and delivers them on Telegram (see the module docstring)."""

    def __init__(
        self,
        *,
        bot: telegram.Bot,
        database: Database,
        settings: Settings,
        worker: str,
        batch: int = 30,
        per_chat_interval: float = 1.0,
        overall_rate: float = 30.0,
        idle_poll: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if per_chat_interval < 0 or idle_poll <= 0 or overall_rate <= 0:
            raise ValueError("per_chat_interval must be >= 0, idle_poll and overall_rate > 0")
        self.bot = bot
        self.database = database
        self.settings = settings
        self.worker = worker
        self.batch = batch
        self.per_chat_interval = per_chat_interval
        self.idle_poll = idle_poll
        self.clock = clock
        # Twice the time a whole batch for one chat takes (text and calendar file each).
        self.lease = max(MIN_LEASE, timedelta(seconds=2 * batch * per_chat_interval) + LEASE_MARGIN)
        # Monotonic time of the last call to each chat (pruned every round).
        self._last_call: dict[int, float] = {}
        # Calls per second over all chats (a burst of up to `overall_rate` at once).
        self._overall = AsyncLimiter(overall_rate, 1.0)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the outbox now rather than at the next planned time (e.g. just queued)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; an error is logged and the loop goes on."""
        while not stop.is_set():
            self._wake.clear()
            try:
                handled = await self.run_once()
                pause = 0.0 if handled >= self.batch else await self._until_next_due()
            except Exception as exc:
                if faults.database_unavailable(exc):
                    log.warning(
                        "outbox round failed: the database did not answer (%s); "
                        "trying again in %.1f s",
                        type(exc).__name__,
                        self.idle_poll,
                    )
                else:
                    log.exception("outbox round failed; trying again in %.1f s", self.idle_poll)
                pause = self.idle_poll
            if pause > 0:
                await self._pause(stop, pause)

    async def run_once(self) -> int:
        """Claim the due messages, send them, record the outcomes; how many were handled."""
        async with self.database.transaction() as session:
            claimed = await outbox.claim_due(
                session=session,
                worker=self.worker,
                now=self.clock(),
                limit=self.batch,
                lease=self.lease,
            )
            messages = [Claimed.of(m) for m in claimed]
        if not messages:
            return 0
        self._forget_quiet_chats()
        by_citizen: dict[int, list[Claimed]] = {}
        for message in messages:
            by_citizen.setdefault(message.citizen_id, []).append(message)
        slots = asyncio.Semaphore(MAX_PARALLEL_CHATS)
        await asyncio.gather(*(self._serve(queue, slots) for queue in by_citizen.values()))
        log.info("outbox: %d message(s) handled by %s", len(messages), self.worker)
        return len(messages)

    async def _serve(self, queue: list[Claimed], slots: asyncio.Semaphore) -> None:
        """One citizen's messages, in order; a blocked bot stops the rest, and so does one
        that must be tried again (the rest wait for it)."""
        for position, message in enumerate(queue):
            # A slot per message, not per citizen: one with many messages takes turns.
            async with slots:
                outcome = await self._deliver(message)
            if isinstance(outcome, Unreachable):
                # mark_citizen_unreachable has already failed the rest of the queue.
                return
            if outcome is None or isinstance(outcome, Retry):
                await self._release(queue[position + 1 :])
                return

    async def _release(self, messages: list[Claimed]) -> None:
        """Give back, untried, messages that must wait for an earlier one of their chat."""
        if not messages:
            return
        try:
            async with self.database.transaction() as session:
                await outbox.release(
                    session=session, message_ids=[m.id for m in messages], worker=self.worker
                )
        except Exception as exc:
            # Their lease lapses and they are claimed again, behind the earlier one.
            log.warning(
                "outbox: %d message(s) not given back (%s); their lease will lapse",
                len(messages),
                type(exc).__name__,
            )

    async def _deliver(self, message: Claimed) -> Outcome | None:
        try:
            async with self.database.transaction(read_only=True) as session:
                rendered = await render(
                    session=session, settings=self.settings, message=message, now=self.clock()
                )
        except Exception as exc:
            # Most likely the database: the next attempt may well work. Anything else is a
            # bug in a renderer, whose traceback is wanted.
            if not faults.database_unavailable(exc):
                log.exception(
                    "outbox message %s (%s) could not be rendered", message.id, message.kind
                )
            return await self._record(message, Retry(f"rendering: {faults.describe(exc)}"))
        if isinstance(rendered, Withdrawn):
            return await self._record(message, rendered)
        if isinstance(rendered, Undeliverable):
            return await self._record(message, Failed(rendered.reason))
        return await self._record(message, await self._send(message, rendered))

    async def _send(self, message: Claimed, out: Outgoing) -> Sent | Retry | Failed | Unreachable:
        try:
            await self._call(
                out.chat_id,
                lambda: self.bot.send_message(
                    out.chat_id, out.text, parse_mode=ParseMode.HTML, reply_markup=out.keyboard
                ),
            )
        except Exception as exc:
            # Logged once, with what became of the message, when it is recorded.
            return outcome_of(exc)
        attachment = out.attachment
        if attachment is not None:
            try:
                await self._call(
                    out.chat_id,
                    lambda: self.bot.send_document(
                        out.chat_id,
                        InputFile(io.BytesIO(attachment.data), filename=attachment.filename),
                    ),
                )
            except TelegramError as exc:
                # The text, with every detail, has arrived: sending it again to get the file
                # through would be worse than the missing file.
                log.warning(
                    "outbox message %s: calendar file not sent: %s",
                    message.id,
                    faults.describe(exc),
                )
        return Sent()

    async def _call(self, chat_id: int, request: Callable[[], Awaitable[object]]) -> None:
        """Await a Bot API call to `chat_id`, at least `per_chat_interval` after the last one
        and within the overall rate."""
        loop = asyncio.get_running_loop()
        last = self._last_call.get(chat_id)
        if last is not None:
            wait = last + self.per_chat_interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        await self._overall.acquire()
        try:
            await request()
        finally:
            self._last_call[chat_id] = loop.time()

    async def _record(self, message: Claimed, outcome: Outcome) -> Outcome | None:
        """Store the outcome in its own transaction, and say what became of the message (one
        line); None if that failed (the lease will lapse)."""
        try:
            async with self.database.transaction() as session:
                now, message_id, worker = self.clock(), message.id, self.worker
                if isinstance(outcome, Sent):
                    kept = await outbox.mark_sent(
                        session=session, message_id=message_id, worker=worker, now=now
                    )
                    news = None
                elif isinstance(outcome, Retry):
                    retried = await outbox.mark_retry(
                        session=session,
                        message_id=message_id,
                        worker=worker,
                        now=now,
                        error=outcome.error,
                        retry_after=outcome.retry_after,
                    )
                    kept = retried is not None
                    news = _retry_news(message, outcome, retried)
                elif isinstance(outcome, Failed):
                    kept = await outbox.mark_failed(
                        session=session,
                        message_id=message_id,
                        worker=worker,
                        now=now,
                        error=outcome.error,
                    )
                    news = f"outbox message {message_id} not sent, given up: {outcome.error}"
                elif isinstance(outcome, Withdrawn):
                    kept = await outbox.mark_withdrawn(
                        session=session,
                        message_id=message_id,
                        worker=worker,
                        now=now,
                        reason=outcome.reason,
                    )
                    log.info("outbox message %s withdrawn: %s", message_id, outcome.reason)
                    news = None
                else:
                    stopped = await outbox.mark_citizen_unreachable(
                        session=session,
                        citizen_id=message.citizen_id,
                        now=now,
                        error=outcome.error,
                        message_id=message_id,
                    )
                    kept = True
                    news = (
                        f"outbox message {message_id} not sent: {outcome.error}; citizen "
                        f"{message.citizen_id} unreachable, {stopped} message(s) stopped"
                    )
        except Exception as exc:
            if faults.database_unavailable(exc):
                log.warning(
                    "outbox message %s: outcome not recorded, the database did not answer "
                    "(%s); its lease will lapse",
                    message.id,
                    type(exc).__name__,
                )
            else:
                log.exception("outcome of outbox message %s not recorded", message.id)
            return None
        if news is not None:
            log.warning("%s", news)
        if not kept:
            # Our lease lapsed and another dispatcher took the message over.
            log.warning("outbox message %s: claim lost before recording %s", message.id, outcome)
        return outcome

    async def _until_next_due(self) -> float:
        async with self.database.transaction(read_only=True) as session:
            due = await outbox.next_due_at(session=session, now=self.clock())
        if due is None:
            return self.idle_poll
        seconds = (due - self.clock()).total_seconds()
        return min(max(seconds, MIN_PAUSE_SECONDS), self.idle_poll)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            for waiter in waiters:
                with suppress(asyncio.CancelledError):
                    await waiter

    def _forget_quiet_chats(self) -> None:
        horizon = asyncio.get_running_loop().time() - self.per_chat_interval
        for chat_id in [c for c, at in self._last_call.items() if at <= horizon]:
            del self._last_call[chat_id]
