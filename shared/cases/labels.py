"""Names for people of the states and events a case shows (English msgids, see `shared.i18n`)."""

from __future__ import annotations

from shared.booking.models import BookingState
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
BOOKING_STATES = {
    BookingState.BOOKED.value: N_("Booked"),
    BookingState.ATTENDED.value: N_("Attended"),
    BookingState.NO_SHOW.value: N_("Did not come"),
    BookingState.CANCELLED_BY_CITIZEN.value: N_("Cancelled by the citizen"),
    BookingState.CANCELLED_BY_STAFF.value: N_("Cancelled by staff"),
}
# Audit actions shown in a case's timeline; others show as their code.
ACTIONS = {
    "case.open": N_("Case opened"),
    "case.intake": N_("Pre-screening confirmed again"),
    "case.booking": N_("Appointment updated"),
    "case.assign": N_("Assignment changed"),
    "case.interview": N_("Interview saved"),
    "case.outcome": N_("Outcome recorded"),
    "case.eligibility": N_("Eligibility decided by staff"),
    "case.close": N_("Case closed"),
    "citizen.consent": N_("Privacy notice accepted"),
    "citizen.unreachable": N_("Unreachable on Telegram: the citizen blocked the bot"),
    "citizen.reachable": N_("Reachable on Telegram again: the citizen wrote to the bot"),
    "booking.create": N_("Booking made"),
    "booking.cancel": N_("Booking cancelled"),
    "booking.attended": N_("Checked in"),
    "booking.no_show": N_("Did not come"),
    "waitlist.accept": N_("Place from the waiting list accepted"),
    "plan.start": N_("Plan started"),
    "plan.save": N_("Plan saved"),
    "plan.submit": N_("Plan submitted for approval"),
    "plan.approve": N_("Plan approved"),
    "plan.return": N_("Plan returned for changes"),
    "plan.sign": N_("Plan signed: active"),
    "plan.close": N_("Plan closed"),
    "plan.scan": N_("Scan of the signed plan saved"),
    "plan.review": N_("Plan reviewed"),
    "plan.follow_up": N_("Follow-up meeting booked"),
    "plan.acknowledge": N_("The citizen read the plan's summary on Telegram"),
}
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
