"""The bookings board's bulk actions: move a selection to another day or helpdesk, or cancel
it with a message (SPEC J6, issue 12).

Each booking goes through the single action's own service (`service.move_booking`,
`service.cancel_booking`): the same rules, the same audit events, the same one message
to the citizen through the outbox. The whole selection is the caller's one transaction;
a booking that can't be moved or cancelled is refused on its own, with a reason, and
nothing changes for it. The result says whom the outbox can't reach (no Telegram chat,
or the citizen blocked the bot), so that staff phone them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.booking import availability, board
from shared.booking import service as booking
from shared.booking.board import BoardRow
from shared.booking.errors import (
    BookingError,
    HelpdeskInactive,
    HelpdeskNotFound,
    IllegalTransition,
    NotAllowedToBook,
    SlotInPast,
    SlotNotOffered,
    SlotTaken,
    SlotTooFar,
    SlotTooSoon,
)
from shared.cases.errors import InvalidInput
from shared.db import utcnow
from shared.i18n import N_
from shared.settings import Settings

# More than any page of the board holds (`board.PAGE_SIZE`).
MAX_SELECTION = 200


class Refusal(StrEnum):
    """Why a booking of the selection was left as it was."""

    NOT_FOUND = "not_found"
    NOT_ACTIVE = "not_active"
    ALREADY_THERE = "already_there"
    NO_FREE_PLACE = "no_free_place"
    HELPDESK_CLOSED = "helpdesk_closed"
    NOT_ALLOWED = "not_allowed"
    FAILED = "failed"


REFUSALS = {
    Refusal.NOT_FOUND: N_("This booking does not exist any more."),
    Refusal.NOT_ACTIVE: N_("This booking is no longer active: nothing was changed."),
    Refusal.ALREADY_THERE: N_("The appointment is already on that day at that helpdesk."),
    Refusal.NO_FREE_PLACE: N_("No free place that day at that helpdesk: not moved."),
    Refusal.HELPDESK_CLOSED: N_("That helpdesk is not taking bookings: not moved."),
    Refusal.NOT_ALLOWED: N_("This citizen may not book now (see their case): not moved."),
    Refusal.FAILED: N_("The booking could not be changed."),
}


class Unreachable(StrEnum):
    NO_TELEGRAM = "no_telegram"
    BLOCKED = "blocked"


UNREACHABLE = {
    Unreachable.NO_TELEGRAM: N_("No Telegram chat (booked by phone or at the desk)"),
    Unreachable.BLOCKED: N_("Unreachable on Telegram: the citizen blocked the bot"),
}


@dataclass(frozen=True, slots=True)
class Done:
    """A booking moved (to `starts_at` at `helpdesk_id`, as booking `new_id`) or cancelled."""

    row: BoardRow
    new_id: int | None = None
    starts_at: datetime | None = None
    helpdesk_id: int | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    booking_id: int
    reason: Refusal
    # None when the booking does not exist.
    row: BoardRow | None = None


@dataclass(frozen=True, slots=True)
class NotTold:
    """A citizen the outbox can't reach: staff phone them."""

    row: BoardRow
    why: Unreachable


@dataclass(slots=True)
class BulkResult:
    done: list[Done] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    not_told: list[NotTold] = field(default_factory=list)

    def _told(self, row: BoardRow) -> None:
        if not row.on_telegram:
            self.not_told.append(NotTold(row, Unreachable.NO_TELEGRAM))
        elif row.unreachable:
            self.not_told.append(NotTold(row, Unreachable.BLOCKED))


def _selection(
    booking_ids: list[int],
    errors: dict[str, str],
    params: dict[str, dict[str, object]] | None = None,
) -> tuple[int, ...]:
    """The chosen bookings, each once; `InvalidInput` with the other fields' `errors` too
    (all at once) when there are any, or when none is chosen, or too many."""
    params = dict(params or {})
    chosen = tuple(dict.fromkeys(booking_ids))
    if not chosen:
        errors["booking"] = N_("Choose at least one booking.")
    elif len(chosen) > MAX_SELECTION:
        errors["booking"] = N_("Choose at most {max} bookings at a time.")
        params["booking"] = {"max": MAX_SELECTION}
    if errors:
        raise InvalidInput(errors, params)
    return chosen


async def _rows(
    session: AsyncSession, settings: Settings, chosen: tuple[int, ...], result: BulkResult
) -> list[BoardRow]:
    """The selection's active bookings (urgent citizens first, then the soonest); the others
    refused."""
    rows = {
        r.id: r for r in await board.rows_of(session=session, settings=settings, booking_ids=chosen)
    }
    active = []
    for booking_id in chosen:
        row = rows.get(booking_id)
        if row is None:
            result.refused.append(Refused(booking_id, Refusal.NOT_FOUND))
        elif not row.active:
            result.refused.append(Refused(booking_id, Refusal.NOT_ACTIVE, row))
        else:
            active.append(row)
    return sorted(active, key=lambda r: (not r.urgent, r.starts_at, r.id))


def _refusal(exc: BookingError) -> Refusal:
    if isinstance(exc, IllegalTransition):
        return Refusal.NOT_ACTIVE
    if isinstance(exc, HelpdeskInactive | HelpdeskNotFound):
        return Refusal.HELPDESK_CLOSED
    if isinstance(exc, NotAllowedToBook):
        return Refusal.NOT_ALLOWED
    return Refusal.FAILED


# The place went (or its time passed) between reading the free places and taking one:
# the next free place is tried.
_PLACE_GONE = (SlotTaken, SlotNotOffered, SlotInPast, SlotTooSoon, SlotTooFar)


def _nearest_first(places: dict[datetime, int], wanted: time, settings: Settings) -> list[datetime]:
    """The free places' times, the one nearest to `wanted` (time of day) first."""

    def distance(at: datetime) -> tuple[float, datetime]:
        local = at.astimezone(settings.tz)
        minutes = local.hour * 60 + local.minute - (wanted.hour * 60 + wanted.minute)
        return (abs(minutes), at)

    return sorted((at for at, left in places.items() if left > 0), key=distance)


async def move_bookings(
    *,
    session: AsyncSession,
    settings: Settings,
    booking_ids: list[int],
    day: date | None,
    helpdesk_id: int | None,
    actor: str,
    now: datetime | None = None,
) -> BulkResult:
    """Move each booking to a free place on `day` at `helpdesk_id` (either may be None: the
    booking's own), as near to its time of day as there is one; urgent citizens are
    placed first. Each citizen moved is told once (the move's own message)."""
    now = now or utcnow()
    errors: dict[str, str] = {}
    if day is None and helpdesk_id is None:
        errors["day"] = N_("Choose the day or the helpdesk to move the bookings to.")
    chosen = _selection(booking_ids, errors)
    result = BulkResult()
    tz = settings.tz
    free: dict[tuple[int, date], dict[datetime, int]] = {}
    for row in await _rows(session, settings, chosen, result):
        local = row.starts_at.astimezone(tz)
        target = (helpdesk_id or row.helpdesk_id, day or local.date())
        if target == (row.helpdesk_id, local.date()):
            result.refused.append(Refused(row.id, Refusal.ALREADY_THERE, row))
            continue
        if target not in free:
            since = datetime.combine(target[1], time.min, tzinfo=tz)
            slots = await availability.list_free_slots(
                session=session, settings=settings, now=now, helpdesk_id=target[0],
                since=since, until=since + timedelta(days=1),
            )  # fmt: skip
            free[target] = {s.starts_at: s.places_left for s in slots}
        places = free[target]
        refusal: Refusal | None = Refusal.NO_FREE_PLACE
        for at in _nearest_first(places, local.time(), settings):
            try:
                moved = await booking.move_booking(
                    session=session, settings=settings, booking_id=row.id,
                    helpdesk_id=target[0], starts_at=at, by=booking.CancelledBy.STAFF,
                    actor=actor, now=now,
                )  # fmt: skip
            except _PLACE_GONE:
                places[at] = 0
                continue
            except BookingError as exc:
                refusal = _refusal(exc)
                break
            places[at] -= 1
            result.done.append(Done(row, moved.id, moved.starts_at, moved.helpdesk_id))
            result._told(row)
            refusal = None
            break
        if refusal is not None:
            result.refused.append(Refused(row.id, refusal, row))
    await audit.record(
        session=session, actor=actor, action="booking.bulk_move", object_type="booking",
        details={
            "day": day.isoformat() if day else None, "helpdesk_id": helpdesk_id,
            "moved": len(result.done), "refused": len(result.refused),
            "not_told": len(result.not_told),
        },
    )  # fmt: skip
    return result


async def cancel_bookings(
    *,
    session: AsyncSession,
    settings: Settings,
    booking_ids: list[int],
    message: str,
    actor: str,
    now: datetime | None = None,
) -> BulkResult:
    """Cancel each booking with `message` as the staff's reason, which each citizen is told
    once (the cancellation's own message)."""
    now = now or utcnow()
    message = message.strip()
    errors: dict[str, str] = {}
    params: dict[str, dict[str, object]] = {}
    if not message:
        errors["message"] = N_("Write the message the citizens get: why it is cancelled.")
    elif len(message) > booking.MAX_CANCEL_REASON:
        errors["message"] = N_("This text is too long: at most {max_length} characters.")
        params["message"] = {"max_length": booking.MAX_CANCEL_REASON}
    chosen = _selection(booking_ids, errors, params)
    result = BulkResult()
    for row in await _rows(session, settings, chosen, result):
        try:
            async with session.begin_nested():
                await booking.cancel_booking(
                    session=session, settings=settings, booking_id=row.id,
                    by=booking.CancelledBy.STAFF, actor=actor, reason=message, now=now,
                )  # fmt: skip
        except BookingError as exc:
            result.refused.append(Refused(row.id, _refusal(exc), row))
            continue
        result.done.append(Done(row))
        result._told(row)
    await audit.record(
        session=session, actor=actor, action="booking.bulk_cancel", object_type="booking",
        details={
            "cancelled": len(result.done), "refused": len(result.refused),
            "not_told": len(result.not_told),
        },
    )  # fmt: skip
    return result
