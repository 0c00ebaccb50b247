"""Names for people of the states and events a case shows (English msgids, see `shared.i18n`)."""

from __future__ import annotations

from shared.booking.models import BookingState, Moderation
from shared.cases.models import CaseState, Outcome
from shared.i18n import N_

CASE_STATES = {
    CaseState.NEW.value: N_("New"),
    CaseState.BOOKED.value: N_("Booked"),
    CaseState.CHECKED_IN.value: N_("Checked in"),
    CaseState.INTERVIEWED.value: N_("Interviewed"),
    CaseState.CLOSED.value: N_("Closed"),
}
OUTCOMES = {
    Outcome.ADMITTED.value: N_("Admitted"),
    Outcome.NOT_ADMITTED.value: N_("Not admitted"),
    Outcome.REFERRED.value: N_("Referred"),
}
# One word per booking state on every page (the agenda, the case page, the intake result,
# the bookings board): import these, don't write new ones.
BOOKING_STATES = {
    BookingState.BOOKED.value: N_("Booked"),
    BookingState.ATTENDED.value: N_("Checked in"),
    BookingState.NO_SHOW.value: N_("No-show"),
    BookingState.CANCELLED_BY_CITIZEN.value: N_("Cancelled by the citizen"),
    BookingState.CANCELLED_BY_STAFF.value: N_("Cancelled by staff"),
}
# A booked place at a moderated helpdesk that nobody confirmed yet (`Moderation.PENDING`).
PENDING_REQUEST = N_("Request to be confirmed")


def booking_state(state: str, moderation: str | None = None) -> str:
    """The word for a booking's state (a msgid): a pending request is not yet "booked"."""
    if state == BookingState.BOOKED.value and moderation == Moderation.PENDING.value:
        return PENDING_REQUEST
    return BOOKING_STATES.get(state, state)


# Outbox message kinds (shared.booking.messages.MessageKind and others).
MESSAGES = {
    "booking_confirmed": N_("Booking confirmation"),
    "reminder_day_before": N_("Reminder the day before"),
    "reminder_hours_before": N_("Reminder a few hours before"),
    "booking_moved": N_("Appointment moved"),
    "booking_cancelled": N_("Appointment cancelled"),
    "rebook_after_no_show": N_("Offer to book again after a missed appointment"),
    "waitlist_offer": N_("Place offered from the waiting list"),
    "waitlist_offer_expired": N_("Waiting-list offer expired"),
    "place_offer": N_("Place offered by a coordinator"),
    "place_offer_expired": N_("Offered place expired"),
    "request_confirmed": N_("Request confirmed"),
    "request_declined": N_("Request declined"),
    "request_expired": N_("Request expired"),
    "case_eligible": N_("Admitted by a coordinator: may book"),
    "intake_expiry_reminder": N_("Reminder to finish the questionnaire"),
    "plan_approved": N_("Plan approved: come and sign it"),
    "plan_active": N_("Summary of the active plan"),
    "plan_review_due": N_("Reminder of the plan's review"),
    "plan_closed": N_("Plan closed"),
}
MESSAGE_STATES = {
    "pending": N_("to be sent"),
    "sending": N_("being sent"),
    "sent": N_("sent"),
    "cancelled": N_("withdrawn"),
    "failed": N_("not delivered"),
}
