"""Optional moderation per helpdesk: a citizen's choice as a request a coordinator decides.

At a helpdesk with `Helpdesk.moderated`, what a citizen books or moves to on Telegram is
a request: a normal `booked` row that holds its place (so the one-active-booking index
and the never-overfilled slot keep guarding it), with `moderation = pending` and
`request_expires_at` a number of working days ahead (`moderation_expiry_working_days`;
Monday to Friday, Italian public holidays excluded). What the staff book there (phone
and walk-in intake, a staff move, a follow-up) is confirmed at once, by them.

A pending request then ends exactly once, by a compare-and-set on `moderation =
'pending'` (one UPDATE each, so a confirmation racing the expiry sweep has one winner on
SQLite and PostgreSQL alike):

- `confirm_request`: the appointment stands; the citizen gets the booking card;
- `decline_request` (a reason, required): the booking is cancelled by the staff and the
  place freed as a staff cancellation frees it (the waitlist first);
- `expire_requests` (a housekeeping chore): the same for requests nobody handled in time;
- cancelled or moved first (by the citizen or the staff): `withdrawn`, in
  `booking.service._close`; checked in or marked a no-show: `confirmed`.

Reminders wait for the confirmation: a pending request queues none (`book_slot`), and
`confirm_request` queues the ones still ahead. A reminder says "your interview is
tomorrow, will you come?", which for a request the helpdesk may still decline would be
a promise nobody made; the request card says instead that the confirmation, the
calendar file and the reminders come together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.booking import handoff, hours, messages
from shared.booking.errors import BookingError, BookingNotFound, TextTooLong
from shared.booking.models import Booking, BookingState, Helpdesk, Moderation
from shared.cases import service as cases
from shared.cases.models import Case, CaseState
from shared.citizens.models import Citizen
from shared.db import utcnow
from shared.outbox import service as outbox
from shared.settings import Settings

# A decline's reason is told to the citizen and kept as the booking's cancel reason.
MAX_DECLINE_REASON = 200
# Who expires a request nobody handled in time (the audit's and the booking's actor).
EXPIRY_ACTOR = "system:moderation"
# Expired requests the coordinators' page still lists, so someone can phone the citizen.
RECENTLY_EXPIRED_DAYS = 7
# Requests one round of the expiry chore handles; the next round takes the rest.
EXPIRY_BATCH = 200

PENDING = Moderation.PENDING.value
ACTIVE = BookingState.BOOKED.value


class RequestNotPending(BookingError):
    """The request was already confirmed, declined, expired or withdrawn (by someone else,
    or by the expiry sweep); `moderation` says which (None: not a request at all)."""

    code = "request_not_pending"

    def __init__(self, moderation: str | None) -> None:
        super().__init__(f"The request is {moderation or 'not a request'}, not pending.")
        self.moderation = moderation


class ReasonRequired(BookingError):
    """A decline needs a reason: the citizen is told it."""

    code = "reason_required"


# --- the rule: working days and who makes a request --------------------------------------


@cache
def _italian_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("IT", years=year, language="it_IT")


def is_working_day(day: date) -> bool:
    """Monday to Friday, and not an Italian public holiday."""
    return day.weekday() < 5 and day not in _italian_holidays(day.year)


def public_holidays_between(first: date, last: date) -> list[tuple[date, str]]:
    """Italian public holidays from `first` to `last` (both included), with their names."""
    found = []
    for year in range(first.year, last.year + 1):
        for day, name in sorted(_italian_holidays(year).items()):
            if first <= day <= last:
                found.append((day, name))
    return found


def add_working_days(moment: datetime, days: int, tz: ZoneInfo) -> datetime:
    """`days` working days after `moment`, at the same local time (DST-safe).

    A request made on Friday at 17:00 with 2 days expires on Tuesday at 17:00; one made
    on Saturday, on Tuesday at the same time (Monday is the first working day).
    """
    local = moment.astimezone(tz)
    day, left = local.date(), days
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    wall = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=tz)
    return wall.astimezone(moment.tzinfo or tz)


def request_expiry(*, settings: Settings, now: datetime, starts_at: datetime) -> datetime:
    """Until when a request made `now` for an appointment at `starts_at` holds its place.

    The working-day deadline, but no later than the booking's minimum notice before the
    appointment, so nobody walks in on a request still undecided; and yet at least that
    notice from now (or until the appointment, if it is sooner), so the coordinators
    have some time for a request made at the last moment.
    """
    notice = timedelta(minutes=settings.booking_min_notice_minutes)
    deadline = add_working_days(now, settings.moderation_expiry_working_days, settings.tz)
    return max(min(deadline, starts_at - notice), min(starts_at, now + notice))


def moderation_of_new_booking(
    *,
    helpdesk: Helpdesk,
    by_citizen: bool,
    actor: str,
    settings: Settings,
    now: datetime,
    starts_at: datetime,
) -> dict[str, Any]:
    """The moderation columns of a booking just made at `helpdesk` (empty: not moderated).

    A citizen's choice is a pending request; what the staff book is confirmed by them.
    A request's `created_at` is `now`, the clock its expiry is counted on (the page shows
    how long it has waited).
    """
    if not helpdesk.moderated:
        return {}
    if by_citizen:
        return {
            "created_at": now,
            "moderation": PENDING,
            "request_expires_at": request_expiry(settings=settings, now=now, starts_at=starts_at),
        }
    return {"moderation": Moderation.CONFIRMED.value, "moderated_at": now, "moderated_by": actor}


def is_pending(booking: Booking) -> bool:
    """An active booking still awaiting a coordinator's decision."""
    return booking.moderation == PENDING and booking.state == ACTIVE


# --- deciding a request ------------------------------------------------------------------


async def _decide(session: AsyncSession, booking_id: int, values: dict[str, Any]) -> Booking:
    """Move a pending request on, once: the compare-and-set every decision goes through."""
    result = await session.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.moderation == PENDING, Booking.state == ACTIVE)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    booking = await session.get(Booking, booking_id)
    if booking is None:
        raise BookingNotFound(f"No booking {booking_id}.")
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(booking)
        raise RequestNotPending(booking.moderation)
    await session.refresh(booking)
    return booking


async def _citizen(session: AsyncSession, citizen_id: int) -> Citizen:
    citizen = await session.get(Citizen, citizen_id)
    assert citizen is not None  # a foreign key of the booking
    return citizen


async def confirm_request(
    *,
    session: AsyncSession,
    settings: Settings,
    booking_id: int,
    actor: str,
    now: datetime | None = None,
) -> Booking:
    """Confirm a citizen's request: the appointment stands, and they get its card.

    Allowed while the request is pending, also a moment past `request_expires_at` if the
    sweep has not expired it yet: the database's state decides, not the clock.
    """
    now = now or utcnow()
    booking = await _decide(
        session,
        booking_id,
        {"moderation": Moderation.CONFIRMED.value, "moderated_at": now, "moderated_by": actor},
    )
    citizen = await _citizen(session, booking.citizen_id)
    await messages.queue_reminders(
        session=session, settings=settings, citizen=citizen, booking=booking, now=now
    )
    await messages.notify_booking(
        session=session,
        citizen=citizen,
        booking=booking,
        kind=messages.MessageKind.REQUEST_CONFIRMED,
        now=now,
    )
    await audit.record(
        session=session,
        actor=actor,
        action="booking.request_confirmed",
        object_type="booking",
        object_id=str(booking.id),
    )
    return booking


def clean_reason(reason: str) -> str:
    """A decline's reason as kept, or `ReasonRequired` / `TextTooLong`."""
    reason = " ".join(reason.split())
    if not reason:
        raise ReasonRequired("Write why the request is declined.")
    if len(reason) > MAX_DECLINE_REASON:
        raise TextTooLong("reason", MAX_DECLINE_REASON)
    return reason


async def _free_place(
    session: AsyncSession, settings: Settings, booking: Booking, now: datetime
) -> None:
    """What a staff cancellation does with the place and the messages queued about it."""
    await handoff.pass_on_place(
        session=session, settings=settings, slot_id=booking.slot_id, now=now
    )
    await outbox.cancel_pending(session=session, subject=messages.subject(booking))


async def decline_request(
    *,
    session: AsyncSession,
    settings: Settings,
    booking_id: int,
    actor: str,
    reason: str,
    now: datetime | None = None,
    propose_at: datetime | None = None,
) -> Booking:
    """Decline a citizen's request with a reason they are told: the place is freed (the
    waitlist first) and the booking cancelled by the staff.

    `propose_at`: another time at the same helpdesk, held for the citizen as a staff
    offer (`shared.booking.offers.offer_place`) they accept or decline on Telegram; its
    refusals (the place was just taken...) come after the decline was written, so the
    caller runs this in a savepoint to keep both or neither.
    """
    now = now or utcnow()
    reason = clean_reason(reason)
    booking = await _decide(
        session,
        booking_id,
        {
            "moderation": Moderation.DECLINED.value,
            "moderated_at": now,
            "moderated_by": actor,
            "state": BookingState.CANCELLED_BY_STAFF.value,
            "closed_at": now,
            "closed_by": actor,
            "cancel_reason": reason,
        },
    )
    await _free_place(session, settings, booking, now)
    await messages.notify_booking(
        session=session,
        citizen=await _citizen(session, booking.citizen_id),
        booking=booking,
        kind=messages.MessageKind.REQUEST_DECLINED,
        now=now,
    )
    # The reason is typed text, told to the citizen and kept on the booking: not logged.
    details: dict[str, Any] = {}
    if propose_at is not None:
        details["proposed"] = propose_at.isoformat()
    event = audit.Event(actor, "booking.request_declined", "booking", str(booking.id), details)
    await cases.on_booking_changed(session=session, booking=booking, now=now, events=[event])
    if propose_at is not None:
        # Imported here: `offers` imports the booking service, which imports this module.
        from shared.booking import offers

        await offers.offer_place(
            session=session,
            settings=settings,
            citizen_id=booking.citizen_id,
            helpdesk_id=booking.helpdesk_id,
            starts_at=propose_at,
            actor=actor,
            now=now,
        )
    return booking


async def expire_requests(*, session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Expire the pending requests whose time is up: free each place, tell each citizen
    (with a button to choose again). Idempotent; two instances at once expire each
    request once (the compare-and-set), and a coordinator's confirmation racing it wins
    or loses whole."""
    due = (
        await session.scalars(
            select(Booking.id)
            .where(
                Booking.moderation == PENDING,
                Booking.state == ACTIVE,
                Booking.request_expires_at <= now,
            )
            .order_by(Booking.request_expires_at, Booking.id)
            .limit(EXPIRY_BATCH)
        )
    ).all()
    expired = 0
    for booking_id in due:
        try:
            booking = await _decide(
                session,
                booking_id,
                {
                    "moderation": Moderation.EXPIRED.value,
                    "moderated_at": now,
                    "moderated_by": EXPIRY_ACTOR,
                    "state": BookingState.CANCELLED_BY_STAFF.value,
                    "closed_at": now,
                    "closed_by": EXPIRY_ACTOR,
                },
            )
        except RequestNotPending:
            continue  # confirmed, declined or expired by someone else meanwhile
        expired += 1
        await _free_place(session, settings, booking, now)
        await messages.notify_booking(
            session=session,
            citizen=await _citizen(session, booking.citizen_id),
            booking=booking,
            kind=messages.MessageKind.REQUEST_EXPIRED,
            now=now,
        )
        event = audit.Event(EXPIRY_ACTOR, "booking.request_expired", "booking", str(booking.id))
        await cases.on_booking_changed(session=session, booking=booking, now=now, events=[event])
    return expired


# --- the coordinators' queue -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestLine:
    """A request as the coordinators' page lists it."""

    booking_id: int
    code: str
    # A `Moderation` value (None: not a request).
    moderation: str | None
    helpdesk_id: int
    starts_at: datetime
    created_at: datetime
    request_expires_at: datetime | None
    moderated_at: datetime | None
    helpdesk_name: str
    citizen_name: str
    phone: str | None
    urgent: bool
    has_telegram: bool
    # The citizen's open case, when there is one (the name links to it).
    case_id: int | None


def _lines_query() -> Any:
    return (
        select(Booking, Helpdesk.name, Citizen, Case.id)
        .join(Helpdesk, Helpdesk.id == Booking.helpdesk_id)
        .join(Citizen, Citizen.id == Booking.citizen_id)
        .outerjoin(Case, (Case.citizen_id == Citizen.id) & (Case.state != CaseState.CLOSED.value))
    )


def _line(row: Any) -> RequestLine:
    booking, helpdesk_name, citizen, case_id = row
    return RequestLine(
        booking_id=booking.id,
        code=booking.code,
        moderation=booking.moderation,
        helpdesk_id=booking.helpdesk_id,
        starts_at=booking.starts_at,
        created_at=booking.created_at,
        request_expires_at=booking.request_expires_at,
        moderated_at=booking.moderated_at,
        helpdesk_name=helpdesk_name,
        citizen_name=citizen.name or "",
        phone=citizen.phone,
        urgent=citizen.urgent,
        has_telegram=citizen.telegram_chat_id is not None,
        case_id=case_id,
    )


async def pending_requests(*, session: AsyncSession) -> list[RequestLine]:
    """Every pending request, oldest first (the one waiting longest on top)."""
    rows = await session.execute(
        _lines_query()
        .where(Booking.moderation == PENDING, Booking.state == ACTIVE)
        .order_by(Booking.created_at, Booking.id)
    )
    return [_line(row) for row in rows]


async def get_request(*, session: AsyncSession, booking_id: int) -> RequestLine:
    """One booking as the coordinators' page shows a request (`BookingNotFound` if none)."""
    row = (await session.execute(_lines_query().where(Booking.id == booking_id))).first()
    if row is None:
        raise BookingNotFound(f"No booking {booking_id}.")
    return _line(row)


async def recently_expired(
    *, session: AsyncSession, now: datetime, days: int = RECENTLY_EXPIRED_DAYS
) -> list[RequestLine]:
    """Requests that expired in the last `days` days, newest first: citizens to phone."""
    rows = await session.execute(
        _lines_query()
        .where(
            Booking.moderation == Moderation.EXPIRED.value,
            Booking.moderated_at >= now - timedelta(days=days),
        )
        .order_by(Booking.moderated_at.desc(), Booking.id.desc())
    )
    return [_line(row) for row in rows]


# --- the helpdesk's setting --------------------------------------------------------------


async def set_moderated(
    *, session: AsyncSession, helpdesk_id: int, moderated: bool, actor: str
) -> Helpdesk:
    """Turn moderation on or off at a helpdesk (audited when it changes).

    Requests already pending stay pending: they are decided, or expire, as before.
    """
    helpdesk = await hours.get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    if helpdesk.moderated == moderated:
        return helpdesk
    helpdesk.moderated = moderated
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="helpdesk.moderation",
        object_type="helpdesk",
        object_id=str(helpdesk_id),
        details={"moderated": moderated},
    )
    return helpdesk
