"""Deliver the outbox to citizens on Telegram (SPEC J3): reminders and staff news.

A round (`OutboxDispatcher.run_once`):

1. claim the due messages in one short transaction: a lease, so a dispatcher that dies
   gives them back when it lapses, and two dispatchers never claim the same message;
2. for each message, read the current data (the booking may have changed since it was
   queued) and render it in the citizen's language in a short read-only transaction;
3. send it with no transaction open;
4. record the outcome in its own short transaction.

No database transaction is ever held open while talking to Telegram.

Rate limits. Telegram allows bulk notifications ~30 messages/s overall (`overall_rate`),
for all the instances on one database together: each dispatcher takes its part, the rate
divided by the live dispatchers, and lets its sends out evenly spaced, never more than its
part within any second (`bot.pacing`). Telegram also wants at most ~1
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
import io
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import telegram
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup, InputFile
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot import faults
from bot.flood import retry_after_seconds
from bot.pacing import LoopTimer, Pacer, RateShare, Timer
from bot.screens import offers as offer_screens
from bot.screens import outbox as screens
from bot.screens.card import CardEvent, booking_card
from bot.screens.common import Screen, View
from shared import metrics
from shared.booking import service as booking_service
from shared.booking.messages import MessageKind, booked_again
from shared.booking.models import (
    Booking,
    BookingState,
    Helpdesk,
    Moderation,
    Slot,
    WaitlistEntry,
    WaitlistState,
)
from shared.cases import messages as case_messages
from shared.citizens import standing
from shared.citizens.models import Citizen
from shared.db import Database, utcnow
from shared.i18n import Translator
from shared.intake import service as intake
from shared.intake.models import UNFINISHED
from shared.outbox import service as outbox
from shared.outbox.models import MessageState, OutboxMessage
from shared.plans import messages as plan_messages
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


# --- what a message becomes ----------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    caption: str | None = None


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
    # What went wrong, as a metric's label (`error` is Telegram's text).
    code: str = "unexpected"


@dataclass(frozen=True)
class Failed:
    error: str
    code: str = "bad_request"


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


# --- rendering: the data now, to the screens of bot.screens.outbox ----------------------


class _Stale(Exception):
    """Raised while rendering: the message no longer applies."""


class _Broken(Exception):
    """Raised while rendering: the message refers to something that isn't there."""


@dataclass(frozen=True)
class _Context:
    session: AsyncSession
    settings: Settings
    view: View
    message: Claimed
    chat_id: int

    @property
    def now(self) -> datetime:
        return self.view.now

    def out(self, screen: Screen | str) -> Outgoing:
        text, keyboard = (screen, None) if isinstance(screen, str) else screen
        return Outgoing(self.chat_id, text, keyboard)


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
    if booking.moderation == Moderation.PENDING.value:
        # Reminders wait for the confirmation (`shared.booking.moderation`).
        raise _Stale(f"booking {booking.id} is a request not confirmed yet")
    return ctx.out(screens.reminder(ctx.view, booking, helpdesk))


def _card(ctx: _Context, booking: Booking, helpdesk: Helpdesk, event: CardEvent) -> Outgoing:
    """The booking card the bot replies with, for what the staff did: the same card."""
    card = booking_card(ctx.view, booking, helpdesk, event, by_staff=True)
    calendar = card.calendar
    attachment = (
        None if calendar is None else Attachment(calendar.filename, calendar.data, calendar.caption)
    )
    return Outgoing(ctx.chat_id, card.text, card.keyboard, attachment)


async def _confirmed(ctx: _Context) -> Outgoing:
    return _card(ctx, *await _active_booking(ctx), CardEvent.BOOKED)


async def _moved(ctx: _Context) -> Outgoing:
    return _card(ctx, *await _active_booking(ctx), CardEvent.MOVED)


async def _request_confirmed(ctx: _Context) -> Outgoing:
    """A coordinator confirmed the citizen's request: the full card, with its calendar."""
    booking, helpdesk = await _active_booking(ctx)
    if booking.moderation != Moderation.CONFIRMED.value:
        raise _Stale(f"booking {booking.id} is {booking.moderation}, not a confirmed request")
    return _card(ctx, booking, helpdesk, CardEvent.CONFIRMED)


async def _ended_request(ctx: _Context, outcome: Moderation) -> tuple[Booking, standing.Standing]:
    """A declined or expired request, and where its citizen stands now."""
    booking, _helpdesk = await _booking(ctx)
    if booking.moderation != outcome.value:
        raise _Stale(f"booking {booking.id} is {booking.moderation}, not {outcome.value}")
    found = await standing.citizen_standing(
        session=ctx.session, settings=ctx.settings, citizen_id=ctx.message.citizen_id, now=ctx.now
    )
    return booking, found


async def _request_declined(ctx: _Context) -> Outgoing:
    booking, found = await _ended_request(ctx, Moderation.DECLINED)
    return ctx.out(
        screens.request_declined(ctx.view, booking, offered=isinstance(found, standing.Offered))
    )


async def _request_expired(ctx: _Context) -> Outgoing:
    booking, found = await _ended_request(ctx, Moderation.EXPIRED)
    if isinstance(found, standing.Booked):
        raise _Stale(f"the citizen has booked again (booking {found.booking.id})")
    if not found.may_book:
        raise _Stale(f"the citizen's standing is {found.code}: choosing again is not for them")
    return ctx.out(screens.request_expired(ctx.view, booking))


async def _cancelled(ctx: _Context) -> Outgoing:
    booking, _helpdesk = await _booking(ctx)
    if booking.state != BookingState.CANCELLED_BY_STAFF.value:
        raise _Stale(f"booking {booking.id} is {booking.state}, not cancelled by staff")
    return ctx.out(screens.cancelled_by_staff(ctx.view, booking))


async def _rebook_after_no_show(ctx: _Context) -> Outgoing:
    booking, _helpdesk = await _booking(ctx)
    if booking.state != BookingState.NO_SHOW.value:
        raise _Stale(f"booking {booking.id} is {booking.state}, not a no-show")
    found = await standing.citizen_standing(
        session=ctx.session, settings=ctx.settings, citizen_id=ctx.message.citizen_id, now=ctx.now
    )
    if isinstance(found, standing.Booked):
        raise _Stale(f"the citizen has booked again (booking {found.booking.id})")
    if await booked_again(session=ctx.session, booking=booking):
        raise _Stale("the citizen has booked again since the no-show")
    if not found.may_book:
        raise _Stale(f"the citizen's standing is {found.code}: booking again is not for them")
    return ctx.out(screens.rebook_after_no_show(ctx.view, booking))


async def _case_eligible(ctx: _Context) -> Outgoing:
    """A coordinator admitted the citizen: only while the case is open and they may book
    (not if they booked meanwhile, are waiting, or the decision changed)."""
    case_id = _payload_id(ctx.message, "case_id")
    facts = await standing.read_facts(session=ctx.session, citizen_id=ctx.message.citizen_id)
    if facts.case is None or facts.case.id != case_id:
        raise _Stale(f"case {case_id} is not the citizen's open case")
    found = standing.decide(facts, settings=ctx.settings, now=ctx.now)
    if not isinstance(found, standing.MayBook):
        raise _Stale(f"the citizen's standing is {found.code}, not may_book")
    return ctx.out(screens.case_eligible(ctx.view))


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
    return ctx.out(
        screens.waitlist_offer(ctx.view, entry.id, slot.starts_at, entry.offer_expires_at, helpdesk)
    )


async def _waitlist_offer_expired(ctx: _Context) -> Outgoing:
    _entry, slot, _helpdesk = await _offer_slot(ctx)
    return ctx.out(screens.waitlist_offer_expired(ctx.view, slot.starts_at))


async def _replaced(ctx: _Context, entry: WaitlistEntry) -> tuple[Booking, Helpdesk] | None:
    """The appointment a staff offer would move, while it is still active."""
    if entry.replaces_booking_id is None:
        return None
    booking = await ctx.session.get(Booking, entry.replaces_booking_id)
    if booking is None or booking.state != BookingState.BOOKED.value:
        return None
    helpdesk = await ctx.session.get(Helpdesk, booking.helpdesk_id)
    assert helpdesk is not None  # a foreign key
    return booking, helpdesk


async def _place_offer(ctx: _Context) -> Outgoing:
    """A place staff offer (`shared.booking.offers`), while the offer is open."""
    entry, slot, helpdesk = await _offer_slot(ctx)
    expires_at = entry.offer_expires_at
    if entry.state != WaitlistState.OFFERED.value or entry.offered_slot_id != slot.id:
        raise _Stale(f"waitlist entry {entry.id} is {entry.state}: the offer is closed")
    if expires_at is None or expires_at <= ctx.now:
        raise _Stale(f"the offer of waitlist entry {entry.id} has expired")
    replaced = await _replaced(ctx, entry)
    return ctx.out(
        offer_screens.place_offer(
            ctx.view, entry.id, slot.starts_at, expires_at, helpdesk, replaced
        )
    )


async def _place_offer_expired(ctx: _Context) -> Outgoing:
    entry, slot, _helpdesk = await _offer_slot(ctx)
    kept = await _replaced(ctx, entry) is not None
    return ctx.out(offer_screens.place_offer_lapsed(ctx.view, slot.starts_at, kept))


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
    return ctx.out(screens.intake_expiry_reminder(ctx.view, expires_at))


# --- the plan (shared.plans.messages) ----------------------------------------------------


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
    return ctx.out(screens.plan_approved(ctx.view, plan.version, await _next_booking(ctx)))


async def _plan_active(ctx: _Context) -> Outgoing:
    plan = await _plan_at(ctx, PlanState.ACTIVE)
    summary = await plan_messages.plan_summary(session=ctx.session, plan=plan)
    return ctx.out(screens.plan_started(ctx.view.t, summary))


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
    if review_on <= ctx.view.today:
        raise _Stale(f"the review of plan {plan.id} is today or past")
    return ctx.out(screens.plan_review_due(ctx.view, review_on, await _next_booking(ctx)))


async def _plan_closed(ctx: _Context) -> Outgoing:
    plan = await _plan(ctx)
    if plan.state != PlanState.CLOSED.value:
        raise _Stale(f"plan {plan.id} is {plan.state}, not closed")
    return ctx.out(screens.plan_closed(ctx.view.t))


# Each domain has its own kinds (the outbox stores plain strings); their values don't meet.
_RENDERERS = {
    MessageKind.REMINDER_DAY_BEFORE.value: _reminder,
    MessageKind.REMINDER_HOURS_BEFORE.value: _reminder,
    MessageKind.BOOKING_CONFIRMED.value: _confirmed,
    MessageKind.BOOKING_MOVED.value: _moved,
    MessageKind.BOOKING_CANCELLED.value: _cancelled,
    MessageKind.REQUEST_CONFIRMED.value: _request_confirmed,
    MessageKind.REQUEST_DECLINED.value: _request_declined,
    MessageKind.REQUEST_EXPIRED.value: _request_expired,
    MessageKind.REBOOK_AFTER_NO_SHOW.value: _rebook_after_no_show,
    MessageKind.WAITLIST_OFFER.value: _waitlist_offer,
    MessageKind.WAITLIST_OFFER_EXPIRED.value: _waitlist_offer_expired,
    MessageKind.PLACE_OFFER.value: _place_offer,
    MessageKind.PLACE_OFFER_EXPIRED.value: _place_offer_expired,
    MessageKind.INTAKE_EXPIRY_REMINDER.value: _intake_expiry_reminder,
    case_messages.MessageKind.CASE_ELIGIBLE.value: _case_eligible,
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
    view = View.of(Translator(citizen.language), settings, now)
    ctx = _Context(session, settings, view, message, citizen.telegram_chat_id)
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
        return Retry(said, retry_after=retry_after_seconds(exc), code="rate_limited")
    if isinstance(exc, Forbidden):
        return Unreachable(said)
    # BadRequest is a NetworkError in PTB: test it first.
    if isinstance(exc, BadRequest):
        return Failed(said)
    # NetworkError (TimedOut, and the 5xx answers, which PTB raises as NetworkError) is
    # transient; so, until proven otherwise, is anything unexpected: both back off.
    if isinstance(exc, TimedOut):
        return Retry(said, code="timed_out")
    return Retry(said, code="network" if isinstance(exc, NetworkError) else "unexpected")


def _retry_news(message: Claimed, outcome: Retry, retried: OutboxMessage | None) -> str:
    said = f"outbox message {message.id} not sent: {outcome.error}"
    if retried is None:
        return said
    if retried.state == MessageState.FAILED.value:
        return f"{said}; given up after {retried.attempts} attempts"
    return f"{said}; to be tried again at {retried.retry_at:%H:%M:%S} UTC"


def _count(outcome: Outcome) -> None:
    """The outcome in /metrics (shared.metrics), by reason code, never by error text."""
    match outcome:
        case Sent():
            metrics.OUTBOX_SENT.inc()
        case Retry(code=code):
            metrics.OUTBOX_NOT_SENT.labels(outcome="retry", reason=code).inc()
        case Failed(code=code):
            metrics.OUTBOX_NOT_SENT.labels(outcome="failed", reason=code).inc()
        case Unreachable():
            metrics.OUTBOX_NOT_SENT.labels(outcome="unreachable", reason="forbidden").inc()
        case Withdrawn():
            metrics.OUTBOX_NOT_SENT.labels(outcome="withdrawn", reason="stale").inc()


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
        timer: Timer | None = None,
    ) -> None:
        """`clock`: the time messages are due by; `timer`: the monotonic one the sends are
        paced by (the event loop's unless a test gives its own)."""
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
        self.timer = timer if timer is not None else LoopTimer()
        # Twice the time a whole batch for one chat takes (text and calendar file each).
        self.lease = max(MIN_LEASE, timedelta(seconds=2 * batch * per_chat_interval) + LEASE_MARGIN)
        # Monotonic time of the last call to each chat (pruned every round).
        self._last_call: dict[int, float] = {}
        # Calls over all chats: this dispatcher's part of `overall_rate`, evenly spaced.
        self.share = RateShare(
            database=database, holder=worker, overall=overall_rate, timer=self.timer, clock=clock
        )
        self._pacer = Pacer(self.share, timer=self.timer)
        self._wake = asyncio.Event()
        # Set by `run`'s stop: a round sends no further message and gives the rest back.
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        """Look at the outbox now rather than at the next planned time (e.g. just queued)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; an error is logged and the loop goes on.

        On stop the messages being sent finish; those claimed but not yet sent are given
        back, so that the next start (this process's or another's) sends them at once
        rather than when their lease lapses.
        """
        watcher = asyncio.create_task(self._watch(stop))
        try:
            await self._rounds(stop)
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            await self.share.leave()

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping.set()

    async def _rounds(self, stop: asyncio.Event) -> None:
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
            # Nothing to send: the other dispatchers take this one's part of the rate (it
            # joins again, and waits for them to count it, when it has messages again).
            await self.share.leave()
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
                if self._stopping.is_set():
                    await self._release(queue[position:])
                    return
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
            return await self._record(
                message, Retry(f"rendering: {faults.describe(exc)}", code="rendering")
            )
        if isinstance(rendered, Withdrawn):
            return await self._record(message, rendered)
        if isinstance(rendered, Undeliverable):
            return await self._record(message, Failed(rendered.reason, code="undeliverable"))
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
                        caption=attachment.caption,
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
        last = self._last_call.get(chat_id)
        if last is not None:
            wait = last + self.per_chat_interval - self.timer.now()
            if wait > 0:
                await self.timer.sleep(wait)
        try:
            async with self._pacer.slot():
                await request()
        finally:
            self._last_call[chat_id] = self.timer.now()

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
        _count(outcome)
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
        horizon = self.timer.now() - self.per_chat_interval
        for chat_id in [c for c, at in self._last_call.items() if at <= horizon]:
            del self._last_call[chat_id]
