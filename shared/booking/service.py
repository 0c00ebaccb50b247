"""The life of a booking: book, cancel, move, check in, no-show (SPEC section 4).

Every function takes the caller's session and never commits: the bot update or the
HTTP request that calls it owns the transaction. A raised `BookingError` means nothing
was written by that call. Helpdesks and hours are in `hours`, free slots in
`availability`, the staff's agenda in `agenda`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.booking import availability, handoff, messages, moderation, places
from shared.booking.errors import (
    AlreadyBooked,
    BookingError,
    BookingNotFound,
    CitizenNotFound,
    IllegalTransition,
    NotAllowedToBook,
    TextTooLong,
)
from shared.booking.models import (
    Booking,
    BookingState,
    Helpdesk,
    Moderation,
    Slot,
    WaitlistEntry,
    WaitlistState,
)
from shared.booking.schedule import SlotTime
from shared.cases import service as cases
from shared.citizens import errors as citizen_errors
from shared.citizens.models import Citizen
from shared.citizens.standing import (
    Booked,
    NotConsented,
    NotEligible,
    Offered,
    QuestionnaireToFinish,
    Standing,
    Waiting,
    citizen_standing,
)
from shared.db import utcnow
from shared.outbox import service as outbox
from shared.settings import Settings

# Staff may check a citizen in this long before the appointment.
CHECK_IN_EARLY = timedelta(hours=1)
# A staff cancellation's reason, as `Booking.cancel_reason` holds it.
MAX_CANCEL_REASON = 200
# The reasons the services give themselves (codes); any other is text staff typed.
REASON_CODES = frozenset({"moved", "erasure"})


def audit_reason(reason: str | None) -> str | None:
    """The cancellation's reason as the audit log keeps it: a code, never typed text (it
    may name the citizen; it stays on the booking, which an erasure reaches)."""
    return reason if reason in REASON_CODES else None


class CancelledBy(StrEnum):
    CITIZEN = "citizen"
    STAFF = "staff"


async def _bookable_slot(
    session: AsyncSession,
    settings: Settings,
    helpdesk_id: int,
    starts_at: datetime,
    now: datetime,
    urgent: bool | None = None,
) -> tuple[availability.FreeSlot, Helpdesk]:
    offered = await availability.bookable_slot(
        session=session, settings=settings, helpdesk_id=helpdesk_id, starts_at=starts_at,
        now=now, urgent=urgent,
    )  # fmt: skip
    helpdesk = await session.get(Helpdesk, helpdesk_id)  # read just above: no statement
    assert helpdesk is not None
    return offered, helpdesk


async def _citizen(session: AsyncSession, citizen_id: int) -> Citizen:
    citizen = await session.get(Citizen, citizen_id)
    if citizen is None:
        raise CitizenNotFound(f"No citizen {citizen_id}.")
    return citizen


async def standing_to_book(
    *,
    session: AsyncSession,
    settings: Settings,
    citizen_id: int,
    now: datetime,
    known: Standing | None = None,
) -> Standing:
    """The citizen's standing, if it lets them book at all; `NotAllowedToBook` otherwise.

    Not consented, questionnaire not completed, not eligible (the coordinator's decision
    first): refused. What they already hold (a booking, a place on the waitlist) is for
    the caller to judge. `known`: the standing the caller read for this citizen in this
    transaction (judged the same way, not read again).
    """
    try:
        standing = known or await citizen_standing(
            session=session, settings=settings, citizen_id=citizen_id, now=now
        )
    except citizen_errors.CitizenNotFound:
        raise CitizenNotFound(f"No citizen {citizen_id}.") from None
    match standing:
        case NotConsented() | QuestionnaireToFinish() | NotEligible():
            raise NotAllowedToBook(standing)
    return standing


async def active_booking(*, session: AsyncSession, citizen_id: int) -> Booking | None:
    """The citizen's current booking, if any."""
    return await session.scalar(
        select(Booking).where(
            Booking.citizen_id == citizen_id, Booking.state == BookingState.BOOKED.value
        )
    )


async def book_slot(
    *,
    session: AsyncSession,
    settings: Settings,
    citizen_id: int,
    helpdesk_id: int,
    starts_at: datetime,
    actor: str,
    now: datetime | None = None,
    moved_from_id: int | None = None,
    confirm_by_message: bool = False,
    standing: Standing | None = None,
    by_citizen: bool = False,
) -> Booking:
    """Book one place of a slot for a citizen; raises `SlotTaken` if someone was faster.

    Only a citizen whose standing allows it (`standing_to_book`; `standing`: the one the
    caller read for them in this transaction, not read again), and who holds no other
    booking; a place they wait for on the waitlist is given up. Every refusal comes
    before the first write, and the place is taken in a savepoint of its own: a refused
    call leaves nothing behind, and needs no savepoint of the caller's.

    `confirm_by_message` queues a confirmation for the citizen's chat: for bookings made
    by staff on their behalf (the bot confirms its own bookings in the conversation).

    `by_citizen`: the citizen chose it themselves (on Telegram). At a moderated helpdesk
    that makes it a pending request, with no reminders until it is confirmed; what the
    staff book there is confirmed at once (`shared.booking.moderation`).
    """
    now = now or utcnow()
    standing = await standing_to_book(
        session=session, settings=settings, citizen_id=citizen_id, now=now, known=standing
    )
    citizen = await _citizen(session, citizen_id)  # read with the standing: no statement
    offered, helpdesk = await _bookable_slot(
        session, settings, helpdesk_id, starts_at, now, citizen.urgent
    )
    if isinstance(standing, Booked):
        raise AlreadyBooked("You already have an active booking.")
    booking = await places.book_place(
        session=session,
        citizen_id=citizen_id,
        slot=SlotTime(offered.starts_at, offered.helpdesk_id, offered.ends_at, offered.capacity),
        actor=actor,
        moved_from_id=moved_from_id,
    )
    moderated = moderation.moderation_of_new_booking(
        helpdesk=helpdesk,
        by_citizen=by_citizen,
        actor=actor,
        settings=settings,
        now=now,
        starts_at=booking.starts_at,
    )
    for column, value in moderated.items():
        setattr(booking, column, value)
    # Booked by other means: waiting (or a held place) is no longer needed. The standing
    # read the citizen's open entry: without one there is nothing to withdraw.
    if isinstance(standing, Waiting | Offered):
        await handoff.withdraw(session=session, settings=settings, citizen_id=citizen_id, now=now)
    if not moderation.is_pending(booking):
        await messages.queue_reminders(
            session=session, settings=settings, citizen=citizen, booking=booking, now=now
        )
    if confirm_by_message:
        await messages.notify_booking(
            session=session,
            citizen=citizen,
            booking=booking,
            kind=messages.MessageKind.BOOKING_CONFIRMED,
            now=now,
        )
    event = audit.Event(
        actor,
        "booking.create",
        "booking",
        str(booking.id),
        {
            "citizen_id": citizen_id,
            "moved_from": moved_from_id,
            **({"moderation": booking.moderation} if booking.moderation else {}),
        },
    )
    # The booking's event is written with the case's, in one INSERT.
    await cases.on_booking_changed(session=session, booking=booking, now=now, events=[event])
    return booking


async def get_booking(
    *, session: AsyncSession, booking_id: int, citizen_id: int | None = None
) -> Booking:
    """A booking by id; with `citizen_id`, only if it is that citizen's (else not found)."""
    booking = await session.get(Booking, booking_id)
    if booking is None or (citizen_id is not None and booking.citizen_id != citizen_id):
        raise BookingNotFound(f"No booking {booking_id}.")
    return booking


async def find_booking_by_code(*, session: AsyncSession, code: str) -> Booking | None:
    normalised = "".join(code.split()).upper()
    return await session.scalar(select(Booking).where(Booking.code == normalised))


async def _close(
    session: AsyncSession,
    booking: Booking,
    state: BookingState,
    actor: str,
    now: datetime,
    reason: str | None,
) -> None:
    """Move an active booking to a final state, guarded so two callers can't both do it.

    A request still pending ends with it: checked in or a no-show, it was confirmed by
    whoever recorded that; cancelled or moved, withdrawn before anyone decided. So a
    pending request is always an active booking.
    """
    ends_request = (
        Moderation.CONFIRMED
        if state in (BookingState.ATTENDED, BookingState.NO_SHOW)
        else Moderation.WITHDRAWN
    )
    pending = Booking.moderation == Moderation.PENDING.value
    result = await session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.state == BookingState.BOOKED.value)
        .values(
            state=state.value,
            closed_at=now,
            closed_by=actor,
            cancel_reason=reason,
            moderation=case((pending, ends_request.value), else_=Booking.moderation),
            moderated_at=case((pending, now), else_=Booking.moderated_at),
            moderated_by=case((pending, actor), else_=Booking.moderated_by),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise IllegalTransition(f"The booking is {booking.state}, not booked.")
    await session.refresh(booking)


async def cancel_booking(
    *,
    session: AsyncSession,
    settings: Settings,
    booking_id: int,
    by: CancelledBy,
    actor: str,
    reason: str | None = None,
    citizen_id: int | None = None,
    now: datetime | None = None,
    notify: bool = True,
) -> Booking:
    """Cancel a booking and free its place (offered first to the waitlist)."""
    now = now or utcnow()
    reason = (reason or "").strip()
    if len(reason) > MAX_CANCEL_REASON:
        raise TextTooLong("reason", MAX_CANCEL_REASON)
    booking = await get_booking(session=session, booking_id=booking_id, citizen_id=citizen_id)
    if by is CancelledBy.CITIZEN and booking.starts_at <= now:
        raise IllegalTransition("The appointment has already started.")
    state = (
        BookingState.CANCELLED_BY_CITIZEN
        if by is CancelledBy.CITIZEN
        else BookingState.CANCELLED_BY_STAFF
    )
    await _close(session, booking, state, actor, now, reason or None)
    await handoff.pass_on_place(
        session=session, settings=settings, slot_id=booking.slot_id, now=now
    )
    await outbox.cancel_pending(session=session, subject=messages.subject(booking))
    if by is CancelledBy.STAFF and notify:
        await messages.notify_booking(
            session=session,
            citizen=await _citizen(session, booking.citizen_id),
            booking=booking,
            kind=messages.MessageKind.BOOKING_CANCELLED,
            now=now,
        )
    event = audit.Event(
        actor,
        "booking.cancel",
        "booking",
        str(booking.id),
        {"by": by.value, "reason": audit_reason(booking.cancel_reason)},
    )
    await cases.on_booking_changed(session=session, booking=booking, now=now, events=[event])
    return booking


async def move_booking(
    *,
    session: AsyncSession,
    settings: Settings,
    booking_id: int,
    helpdesk_id: int,
    starts_at: datetime,
    by: CancelledBy,
    actor: str,
    citizen_id: int | None = None,
    now: datetime | None = None,
) -> Booking:
    """Move a booking to another slot: the old one is cancelled and linked to the new one.

    If the new slot can't be had, the old booking stays as it was. A citizen moving to a
    moderated helpdesk makes a new request (`book_slot`'s `by_citizen`).
    """
    now = now or utcnow()
    try:
        async with session.begin_nested():
            old = await cancel_booking(
                session=session,
                settings=settings,
                booking_id=booking_id,
                by=by,
                actor=actor,
                reason="moved",
                citizen_id=citizen_id,
                now=now,
                notify=False,
            )
            new = await book_slot(
                session=session,
                settings=settings,
                citizen_id=old.citizen_id,
                helpdesk_id=helpdesk_id,
                starts_at=starts_at,
                actor=actor,
                now=now,
                moved_from_id=old.id,
                by_citizen=by is CancelledBy.CITIZEN,
            )
    except BookingError:
        # The savepoint rolled back in the database; make the session forget what it saw.
        stale = await session.get(Booking, booking_id)
        if stale is not None:
            await session.refresh(stale)
        raise
    if by is CancelledBy.STAFF:
        await messages.notify_booking(
            session=session,
            citizen=await _citizen(session, new.citizen_id),
            booking=new,
            kind=messages.MessageKind.BOOKING_MOVED,
            now=now,
        )
    return new


async def mark_attended(
    *, session: AsyncSession, booking_id: int, actor: str, now: datetime | None = None
) -> Booking:
    """Check a citizen in at the helpdesk."""
    now = now or utcnow()
    booking = await get_booking(session=session, booking_id=booking_id)
    if now < booking.starts_at - CHECK_IN_EARLY:
        raise IllegalTransition("Check-in opens one hour before the appointment.")
    await _close(session, booking, BookingState.ATTENDED, actor, now, None)
    await outbox.cancel_pending(session=session, subject=messages.subject(booking))
    event = audit.Event(actor, "booking.attended", "booking", str(booking.id))
    await cases.on_booking_changed(session=session, booking=booking, now=now, events=[event])
    return booking


async def mark_no_show(
    *,
    session: AsyncSession,
    booking_id: int,
    actor: str,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> Booking:
    """Record that the citizen did not come; they are offered a new booking the next day,
    once per case (`messages.offer_rebooking`).

    `settings`: for the program's time zone (without them, the settings' default zone).
    """
    now = now or utcnow()
    booking = await get_booking(session=session, booking_id=booking_id)
    if now < booking.starts_at:
        raise IllegalTransition("A no-show can only be recorded after the appointment starts.")
    await _close(session, booking, BookingState.NO_SHOW, actor, now, None)
    await places.follow_no_shows(session=session, citizen_id=booking.citizen_id)
    event = audit.Event(actor, "booking.no_show", "booking", str(booking.id))
    followed = await cases.on_booking_changed(
        session=session, booking=booking, now=now, events=[event]
    )
    default_zone = Settings.model_fields["timezone"].default
    await messages.offer_rebooking(
        session=session,
        tz=settings.tz if settings is not None else ZoneInfo(default_zone),
        citizen=await _citizen(session, booking.citizen_id),
        booking=booking,
        case_id=followed.id if followed is not None else None,
        now=now,
    )
    return booking


async def bookings_between(
    *, session: AsyncSession, since: datetime, until: datetime, helpdesk_id: int | None = None
) -> list[Booking]:
    """Bookings (any state) starting in [since, until), for agendas."""
    query = select(Booking).where(and_(Booking.starts_at >= since, Booking.starts_at < until))
    if helpdesk_id is not None:
        query = query.where(Booking.helpdesk_id == helpdesk_id)
    return list((await session.scalars(query.order_by(Booking.starts_at, Booking.id))).all())


@dataclass(frozen=True, slots=True)
class HeldPlace:
    """A place held for a waiting citizen by an open waitlist offer."""

    entry_id: int
    helpdesk: Helpdesk
    starts_at: datetime
    ends_at: datetime
    expires_at: datetime


async def held_place(
    *, session: AsyncSession, citizen_id: int, now: datetime | None = None
) -> HeldPlace | None:
    """The place offered to the citizen from the waitlist, if the offer is open and not lapsed.

    Read-only: accepting or declining is `waitlist.accept_offer` / `decline_offer`.
    """
    now = now or utcnow()
    row = (
        await session.execute(
            select(WaitlistEntry, Slot, Helpdesk)
            .join(Slot, Slot.id == WaitlistEntry.offered_slot_id)
            .join(Helpdesk, Helpdesk.id == Slot.helpdesk_id)
            .where(
                WaitlistEntry.citizen_id == citizen_id,
                WaitlistEntry.state == WaitlistState.OFFERED.value,
                WaitlistEntry.offer_expires_at > now,
            )
        )
    ).first()
    if row is None:
        return None
    entry, slot, helpdesk = row
    assert entry.offer_expires_at is not None  # guaranteed by the comparison above
    return HeldPlace(entry.id, helpdesk, slot.starts_at, slot.ends_at, entry.offer_expires_at)
