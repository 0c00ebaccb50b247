"""Domain errors of booking; front ends turn each `code` into a message in the user's language."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.citizens.standing import Standing


class BookingError(Exception):
    """Base of every refusal; nothing was written when one is raised."""

    code = "booking_error"


class HelpdeskNotFound(BookingError):
    code = "helpdesk_not_found"


class HelpdeskInactive(BookingError):
    code = "helpdesk_inactive"


class CitizenNotFound(BookingError):
    code = "citizen_not_found"


class BookingNotFound(BookingError):
    code = "booking_not_found"


class SlotNotOffered(BookingError):
    """No such slot in the helpdesk's hours (closed, or a forged time)."""

    code = "slot_not_offered"


class SlotInPast(BookingError):
    code = "slot_in_past"


class SlotTooSoon(BookingError):
    """Inside the minimum notice."""

    code = "slot_too_soon"


class SlotTooFar(BookingError):
    """Beyond the booking horizon."""

    code = "slot_too_far"


class SlotTaken(BookingError):
    """The last place was just taken by someone else: offer fresh choices."""

    code = "slot_taken"


class AlreadyBooked(BookingError):
    """The citizen already holds an active booking."""

    code = "already_booked"


class NotAllowedToBook(BookingError):
    """The citizen may not book (or wait) yet: `code` is their standing's, `standing` it whole.

    "not_consented", "questionnaire" (not completed) or "not_eligible" (its reasons, or a
    coordinator's decision, in `standing`); see `shared.citizens.standing`.
    """

    code = "not_allowed_to_book"

    def __init__(self, standing: Standing) -> None:
        super().__init__(f"The citizen may not book: {standing.code}.")
        self.code = standing.code.value
        self.standing = standing


class IllegalTransition(BookingError):
    """The booking is not in a state that allows this action."""

    code = "illegal_transition"


class InvalidSchedule(BookingError):
    """Opening hours or closure that make no sense (end before start, bad lengths)."""

    code = "invalid_schedule"


class OverlappingRules(InvalidSchedule):
    code = "overlapping_rules"


class TextTooLong(BookingError):
    """A text staff wrote is longer than its field keeps (`field`, at most `max_length`)."""

    code = "text_too_long"

    def __init__(self, field: str, max_length: int) -> None:
        super().__init__(f"The {field} has more than {max_length} characters.")
        self.field = field
        self.max_length = max_length


class AlreadyWaiting(BookingError):
    code = "already_waiting"


class SlotsAvailable(BookingError):
    """The waitlist is only for when nothing is free: book one of the free slots instead."""

    code = "slots_available"


class NoOffer(BookingError):
    """No open waitlist offer for this citizen (answered, withdrawn or never made)."""

    code = "no_offer"


class OfferExpired(BookingError):
    code = "offer_expired"


# --- read-only queries and small services for the staff dashboard ---------------------


class ScheduleItemNotFound(BookingError):
    """No such opening rule, closure or extra opening."""

    code = "schedule_item_not_found"
