"""What an audit event says to people: one phrase per action code, and how its details read.

The case timeline and the audit log both ask `describe`, so an event reads the same on
both pages: "Appointment moved from … to …", never `booking.create` or `moved_from`.
Texts are English msgids (translated by the catalogs); the values a sentence carries are
plain text and numbers, `Label`s (msgids to translate) and `Moment`s (shown by the page
in its one date-time format). `tests/shared/test_audit_phrases.py` finds every code the
code base records and fails for one without a phrase here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.cases.labels import BOOKING_STATES, CASE_STATES, OUTCOMES
from shared.i18n import N_


@dataclass(frozen=True, slots=True)
class Moment:
    """A moment the page formats (local time, the dashboard's one format)."""

    value: datetime


@dataclass(frozen=True, slots=True)
class Label:
    """A text to translate (a msgid)."""

    msgid: str


Value = str | int | Moment | Label


@dataclass(frozen=True, slots=True)
class Sentence:
    """An event as people read it: `text` (a msgid) with `values` filled in, and the
    details it does not say as (label msgid, value), for the audit log."""

    text: str
    values: Mapping[str, Value] = field(default_factory=dict)
    extra: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True, slots=True)
class Known:
    """What the page knows beyond the event: bookings' start times and staff names by id."""

    starts: Mapping[int, datetime] = field(default_factory=dict)
    staff: Mapping[int, str] = field(default_factory=dict)


# (details, what the page knows, the event's object id) → (msgid, values).
Reader = Callable[[Mapping[str, Any], Known, str | None], tuple[str, dict[str, Value]]]


@dataclass(frozen=True, slots=True)
class Phrase:
    text: str
    # How the details change the sentence; None: always `text`.
    read: Reader | None = None
    # The details the sentence says (not listed again under it).
    says: frozenset[str] = frozenset()
    # Names of this action's details where the general ones would mislead ("from", "to").
    labels: Mapping[str, str] = field(default_factory=dict)


def _id(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    return None


def _start(known: Known, booking_id: Any) -> Moment | None:
    found = _id(booking_id)
    start = known.starts.get(found) if found is not None else None
    return Moment(start) if start is not None else None


def _booking_made(details: Mapping[str, Any], known: Known, object_id: str | None) -> Any:
    after = _start(known, object_id)
    if details.get("moved_from") is not None:
        before = _start(known, details["moved_from"])
        if before is not None and after is not None:
            return N_("Appointment moved from {before} to {after}"), {
                "before": before,
                "after": after,
            }
        if after is not None:
            return N_("Appointment moved to {after}"), {"after": after}
        return N_("Appointment moved"), {}
    if after is not None:
        return N_("Booking made for {when}"), {"when": after}
    return N_("Booking made"), {}


def _booking_cancelled(details: Mapping[str, Any], known: Known, object_id: str | None) -> Any:
    when = _start(known, object_id)
    if details.get("reason") == "moved":
        if when is not None:
            return N_("Appointment of {when} left for another time"), {"when": when}
        return N_("Appointment left for another time"), {}
    by_citizen = details.get("by") == "citizen"
    if when is not None:
        text = (
            N_("Appointment of {when} cancelled by the citizen")
            if by_citizen
            else N_("Appointment of {when} cancelled by staff")
        )
        return text, {"when": when}
    return (
        N_("Booking cancelled by the citizen") if by_citizen else N_("Booking cancelled by staff")
    ), {}


def _with_when(with_time: str, without: str) -> Reader:
    def read(details: Mapping[str, Any], known: Known, object_id: str | None) -> Any:
        when = _start(known, object_id)
        return (with_time, {"when": when}) if when is not None else (without, {})

    return read


def _case_follows(details: Mapping[str, Any], known: Known, object_id: str | None) -> Any:
    state = details.get("to")
    if state in CASE_STATES:
        return N_("The case is now: {state}"), {"state": Label(CASE_STATES[state])}
    return N_("The case follows its appointment"), {}


def _assigned(details: Mapping[str, Any], known: Known, object_id: str | None) -> Any:
    to = _id(details.get("to"))
    if to is None:
        return N_("Case given back: nobody follows it"), {}
    if to in known.staff:
        return N_("Case assigned to {name}"), {"name": known.staff[to]}
    return N_("Case assigned"), {}


def _outcome(details: Mapping[str, Any], known: Known, object_id: str | None) -> Any:
    outcome = details.get("outcome")
    if outcome in OUTCOMES:
        return N_("Outcome recorded: {outcome}"), {"outcome": Label(OUTCOMES[outcome])}
    return N_("Outcome recorded"), {}


def _eligibility(details: Mapping[str, Any], known: Known, object_id: str | None) -> Any:
    decided = details.get("to")
    if decided is True:
        return N_("Eligibility decided by staff: eligible"), {}
    if decided is False:
        return N_("Eligibility decided by staff: not eligible"), {}
    return N_("Staff's eligibility decision removed: the questionnaire decides"), {}


def _case_read(details: Mapping[str, Any], known: Known, object_id: str | None) -> Any:
    if details.get("page") == "interview":
        return N_("Interview read"), {}
    return N_("Case record read"), {}


def _pruned(details: Mapping[str, Any], known: Known, object_id: str | None) -> Any:
    count = _id(details.get("pruned"))
    if count is None:
        return N_("Older events removed from the audit log (retention)"), {}
    return N_("Events removed from the audit log by retention: {count}"), {"count": count}


# The hours' "from" and "to" are times of day.
_HOURS = {"from": N_("Opens at"), "to": N_("Closes at")}

PHRASES: dict[str, Phrase] = {
    # Cases.
    "case.open": Phrase(N_("Case opened")),
    "case.intake": Phrase(N_("Pre-screening confirmed again")),
    "case.booking": Phrase(
        N_("The case follows its appointment"),
        _case_follows,
        frozenset({"booking_id", "booking_state", "from", "to"}),
    ),
    "case.assign": Phrase(N_("Case assigned"), _assigned, frozenset({"from", "to"})),
    "case.interview": Phrase(N_("Interview saved")),
    "case.outcome": Phrase(N_("Outcome recorded"), _outcome, frozenset({"outcome"})),
    "case.eligibility": Phrase(
        N_("Eligibility decided by staff"), _eligibility, frozenset({"from", "to"})
    ),
    "case.close": Phrase(N_("Case closed")),
    "case.read": Phrase(N_("Case record read"), _case_read, frozenset({"page"})),
    "case.search": Phrase(N_("Cases searched")),
    # Citizens.
    "citizen.consent": Phrase(N_("Privacy notice accepted")),
    "citizen.unreachable": Phrase(N_("Unreachable on Telegram: the citizen blocked the bot")),
    "citizen.reachable": Phrase(N_("Reachable on Telegram again: the citizen wrote to the bot")),
    # Who asked (the citizen, a coordinator, retention) is the event's actor.
    "citizen.erase": Phrase(N_("The citizen's data erased")),
    "citizen.create": Phrase(N_("Citizen registered by staff")),
    "citizen.read": Phrase(N_("Record read"), says=frozenset({"page"})),
    "citizen.data_export": Phrase(N_("Copy of the data sent to the citizen")),
    "intake.complete": Phrase(N_("Questionnaire filled in by staff")),
    # Bookings and the waiting list.
    "booking.create": Phrase(
        N_("Booking made"), _booking_made, frozenset({"moved_from", "citizen_id"})
    ),
    "booking.cancel": Phrase(
        N_("Booking cancelled"), _booking_cancelled, frozenset({"by", "reason"})
    ),
    "booking.attended": Phrase(
        N_("Check-in recorded"),
        _with_when(N_("Check-in recorded for the appointment of {when}"), N_("Check-in recorded")),
    ),
    "booking.no_show": Phrase(
        N_("No-show recorded"),
        _with_when(N_("No-show recorded for the appointment of {when}"), N_("No-show recorded")),
    ),
    "booking.attendance_confirmed": Phrase(N_("The citizen confirmed they will come")),
    "booking.request_confirmed": Phrase(
        N_("Request confirmed"),
        _with_when(N_("Request for {when} confirmed"), N_("Request confirmed")),
    ),
    "booking.request_declined": Phrase(
        N_("Request declined"),
        _with_when(N_("Request for {when} declined"), N_("Request declined")),
    ),
    "booking.request_expired": Phrase(
        N_("Request expired: nobody confirmed it in time"),
        _with_when(
            N_("Request for {when} expired: nobody confirmed it in time"),
            N_("Request expired: nobody confirmed it in time"),
        ),
    ),
    # The coordinators' bookings board (each booking's own events are recorded too).
    "booking.bulk_move": Phrase(N_("Bookings moved together from the bookings board")),
    "booking.bulk_cancel": Phrase(N_("Bookings cancelled together from the bookings board")),
    "booking.export": Phrase(N_("Bookings downloaded as CSV")),
    "export.download": Phrase(N_("Export downloaded (CSV or Excel)")),
    "offer.make": Phrase(N_("A place offered to the citizen by staff")),
    "waitlist.join": Phrase(N_("Joined the waiting list")),
    "waitlist.accept": Phrase(N_("Place from the waiting list accepted")),
    # Plans.
    "plan.start": Phrase(N_("Plan started")),
    "plan.save": Phrase(N_("Plan saved")),
    "plan.submit": Phrase(N_("Plan submitted for approval")),
    "plan.approve": Phrase(N_("Plan approved")),
    "plan.return": Phrase(N_("Plan returned for changes")),
    "plan.sign": Phrase(N_("Plan signed: active")),
    "plan.close": Phrase(N_("Plan closed")),
    "plan.scan": Phrase(N_("Scan of the signed plan saved")),
    "plan.scan_read": Phrase(N_("Scan of the signed plan read")),
    "plan.read": Phrase(N_("Plan read")),
    "plan.review": Phrase(N_("Plan reviewed")),
    "plan.follow_up": Phrase(N_("Follow-up meeting booked")),
    "plan.acknowledge": Phrase(N_("The citizen read the plan's summary on Telegram")),
    # Funds.
    "fund.create": Phrase(N_("Fund created")),
    "fund.update": Phrase(N_("Fund changed")),
    "fund.deposit": Phrase(N_("Deposit recorded")),
    "fund.commit": Phrase(N_("Money committed to a plan")),
    "fund.release": Phrase(N_("Committed money released")),
    "fund.payment": Phrase(N_("Payment recorded")),
    # Helpdesks and their hours.
    "helpdesk.create": Phrase(N_("Helpdesk created")),
    "helpdesk.update": Phrase(N_("Helpdesk changed")),
    "helpdesk.activate": Phrase(N_("Helpdesk taking bookings again")),
    "helpdesk.deactivate": Phrase(N_("Helpdesk no longer taking bookings")),
    "helpdesk.moderation": Phrase(
        N_("Confirmation of requests changed"),
        labels={"moderated": N_("Requests confirmed by staff")},
    ),
    "opening_rule.create": Phrase(N_("Opening hours added"), labels=_HOURS),
    "opening_rule.end": Phrase(N_("Opening hours ended")),
    "opening_rule.delete": Phrase(N_("Opening hours removed"), labels=_HOURS),
    "closure.create": Phrase(N_("Closure added")),
    "closure.delete": Phrase(N_("Closure removed")),
    "extra_opening.create": Phrase(N_("Extra opening added"), labels=_HOURS),
    "extra_opening.delete": Phrase(N_("Extra opening removed")),
    # The audit log itself: the checkpoint keeps the rest verifiable.
    "audit.prune": Phrase(
        N_("Older events removed from the audit log (retention)"),
        _pruned,
        frozenset({"pruned"}),
        labels={
            "before": N_("Recorded before"),
            "through_id": N_("Up to event"),
            "last_hash": N_("Fingerprint of the last event removed"),
        },
    ),
    # Retention (shared.privacy.retention): what each rule removed, as counts.
    "retention.run": Phrase(
        N_("Retention rules applied: personal data past its period removed"),
        labels={
            "questionnaires": N_("Unfinished questionnaires deleted"),
            "never_booked": N_("Candidates who never booked erased"),
            "closed_cases": N_("Closed cases anonymised"),
            "past_candidates": N_("Citizens erased after their cases' retention period"),
            "audit_events": N_("Audit events pruned"),
        },
    ),
    # The data key (`ripartire keys rotate`): counts only.
    "keys.rotate": Phrase(
        N_("Encrypted notes re-encrypted with the first data key"),
        labels={
            "reencrypted": N_("Values re-encrypted"),
            "encrypted_plain": N_("Plain values encrypted"),
            "keys": N_("Keys in the setting"),
        },
    ),
    # The whole database (`ripartire backup|restore`): counts only.
    "database.backup": Phrase(
        N_("Database backed up"),
        labels={"tables": N_("Tables"), "rows": N_("Rows")},
    ),
    "database.restore": Phrase(
        N_("Database restored from a backup"),
        labels={
            "tables": N_("Tables"),
            "rows": N_("Rows"),
            "from_revision": N_("Schema version of the backup"),
            "forced": N_("Replaced the data the database held"),
        },
    ),
    # Staff accounts.
    "staff.login": Phrase(N_("Signed in")),
    "staff.login_failed": Phrase(N_("Sign-in failed")),
    "staff.password_change": Phrase(N_("Password changed")),
    "staff.create": Phrase(N_("Staff account created")),
    "staff.deactivate": Phrase(N_("Staff account deactivated")),
    "staff.reactivate": Phrase(N_("Staff account reactivated")),
    "staff.password_reset": Phrase(N_("Password reset")),
    "staff.role_change": Phrase(
        N_("Role changed"), labels={"from": N_("Role before"), "to": N_("New role")}
    ),
}

# An action without a phrase (a code added since) still reads as words: by what it concerns.
FALLBACKS = {
    "booking": N_("Change to a booking"),
    "case": N_("Change to a case"),
    "citizen": N_("Change to a citizen's data"),
    "intake": N_("Change to a questionnaire"),
    "plan": N_("Change to a plan"),
    "fund": N_("Change to a fund"),
    "helpdesk": N_("Change to a helpdesk"),
    "opening_rule": N_("Change to a helpdesk's hours"),
    "closure": N_("Change to a helpdesk's hours"),
    "extra_opening": N_("Change to a helpdesk's hours"),
    "staff": N_("Change to a staff account"),
    "waitlist": N_("Change to the waiting list"),
    "offer": N_("Change to the waiting list"),
}
OTHER_ACTION = N_("Other recorded action")

# What an event was done to: (the kind, one of them with its id).
OBJECTS = {
    "booking": (N_("Bookings"), N_("Booking {id}")),
    "case": (N_("Cases"), N_("Case {id}")),
    "citizen": (N_("Citizens"), N_("Citizen {id}")),
    "intake": (N_("Questionnaires"), N_("Questionnaire {id}")),
    "fund": (N_("Funds"), N_("Fund {id}")),
    "helpdesk": (N_("Helpdesks"), N_("Helpdesk {id}")),
    "staff_user": (N_("Staff accounts"), N_("Staff account {id}")),
    "waitlist_entry": (N_("Waiting list"), N_("Waiting-list entry {id}")),
    "audit_checkpoint": (N_("Audit log checkpoints"), N_("Audit log checkpoint {id}")),
    "retention": (N_("Retention runs"), N_("Retention run {id}")),
    "database": (N_("The database"), N_("The database")),
}
OTHER_OBJECT = (N_("Other"), N_("Other record {id}"))


def object_label(object_type: str, object_id: str | None) -> Sentence:
    """What an event was done to, as people read it: "Booking 12"."""
    kind, one = OBJECTS.get(object_type, OTHER_OBJECT)
    return Sentence(one, {"id": object_id}) if object_id else Sentence(kind)


# How the details of events are named; a detail not named here is "Other detail".
DETAIL_LABELS = {
    "active": N_("Active"),
    "address": N_("Address"),
    "affected_bookings": N_("Bookings concerned"),
    "amount_cents": N_("Amount (cents)"),
    "before": N_("Before"),
    "booking_id": N_("Booking"),
    "booking_state": N_("Booking state"),
    "by": N_("Cancelled by"),
    "by_text": N_("Searched by name, phone or code"),
    "bytes": N_("Size (bytes)"),
    "changes": N_("Changes"),
    "citizen_id": N_("Citizen"),
    "closure_id": N_("Closure"),
    "code": N_("Booking code"),
    "content_hash": N_("Fingerprint of the text read"),
    "day": N_("Day"),
    "directions": N_("Directions (languages)"),
    "eligible": N_("Eligible by the questionnaire"),
    "entry_id": N_("Waiting-list entry"),
    "expires_at": N_("Held until"),
    "from": N_("From"),
    "fund_id": N_("Fund"),
    "funder": N_("Funder"),
    "held_on": N_("Held on"),
    "interview_id": N_("Interview"),
    "last_day": N_("Last day"),
    "locks_account": N_("Account locked after too many failures"),
    "method": N_("Payment method"),
    "movement_id": N_("Ledger entry"),
    "moved_from": N_("Moved from booking"),
    "name": N_("Name"),
    "next_review_on": N_("Next review"),
    "notice_version": N_("Privacy notice version"),
    "opening_id": N_("Extra opening"),
    "outcome": N_("Outcome"),
    "page": N_("Page"),
    "paid_on": N_("Paid on"),
    "paid_to": N_("Paid to"),
    "plan_id": N_("Plan"),
    "previous": N_("Earlier case"),
    "questionnaire": N_("Eligible by the questionnaire"),
    "reason": N_("Reason"),
    "replaces_booking_id": N_("Booking it would replace"),
    "referred_to": N_("Referred to"),
    "results": N_("Results"),
    "review_id": N_("Review"),
    "role": N_("Role"),
    "rule_id": N_("Opening hours"),
    "scan_id": N_("Scan"),
    "slot_id": N_("Place offered"),
    "sent_back": N_("Sent back to draft"),
    "starts_at": N_("Appointment"),
    "support_id": N_("Support"),
    "text": N_("Searched for"),
    "to": N_("To"),
    "urgent": N_("Urgent"),
    "username": N_("Username"),
    "valid_from": N_("Valid from"),
    "version": N_("Version"),
    "weekday": N_("Weekday"),
    "while_locked": N_("Tried while the account was locked"),
}
OTHER_DETAIL = N_("Other detail")
# Detail values that are codes themselves.
_VALUE_LABELS: dict[str, Mapping[str, str]] = {
    "by": {"citizen": N_("the citizen"), "staff": N_("staff")},
    "page": {
        "detail": N_("case page"),
        "interview": N_("interview"),
        "intake": N_("intake result"),
    },
    "booking_state": BOOKING_STATES,
    "outcome": OUTCOMES,
}
YES, NO = N_("yes"), N_("no")


def _value(key: str, value: Any) -> Value:
    if isinstance(value, bool):
        return Label(YES if value else NO)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        labels = _VALUE_LABELS.get(key, {})
        if value in labels:
            return Label(labels[value])
        if key == "reason" and value == "moved":
            return Label(N_("moved to another time"))
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def describe(
    action: str,
    details: Mapping[str, Any] | None = None,
    known: Known | None = None,
    *,
    object_id: str | None = None,
) -> Sentence:
    """What an event says: its phrase with its details, and the details it leaves out."""
    details = details if isinstance(details, Mapping) else {}
    known = known or Known()
    phrase = PHRASES.get(action)
    if phrase is None:
        text = FALLBACKS.get(action.partition(".")[0], OTHER_ACTION)
        values: dict[str, Value] = {}
        says: frozenset[str] = frozenset()
        labels: Mapping[str, str] = {}
    else:
        text, values = phrase.read(details, known, object_id) if phrase.read else (phrase.text, {})
        says, labels = phrase.says, phrase.labels
    extra = tuple(
        (labels.get(key) or DETAIL_LABELS.get(key, OTHER_DETAIL), _value(key, value))
        for key, value in sorted(details.items(), key=lambda item: str(item[0]))
        if key not in says and value is not None and value != "" and value != []
    )
    return Sentence(text, values, extra)


def booking_ids(action: str, details: Mapping[str, Any], object_id: str | None) -> set[int]:
    """The bookings whose start times make the event's sentence (for the page to look up)."""
    found = set()
    if action.startswith("booking.") and object_id is not None:
        found.add(_id(object_id))
    if isinstance(details, Mapping):
        found.add(_id(details.get("moved_from")))
    return {i for i in found if i is not None}


def staff_ids(action: str, details: Mapping[str, Any]) -> set[int]:
    """The staff whose names make the event's sentence (case assignments)."""
    if action != "case.assign" or not isinstance(details, Mapping):
        return set()
    return {i for i in (_id(details.get("to")),) if i is not None}
