"""Reviews of an active plan, and the follow-up meetings booked from it (SPEC J5, section 5).

A review is a monitoring meeting (the PaIS "piano incontri"): the day it was held, how far
each objective and commitment had come (done, in progress, not done, with a note), notes,
and the next review's date, which becomes the plan's `next_review_on` (`plan_review_days`
after the meeting unless staff choose another day) and moves the citizen's reminder.

A follow-up meeting is a booking for the plan's citizen made through the booking service,
with all its rules (one active booking per citizen, minimum notice, horizon, a slot never
over-filled) and its messages to the citizen, as for any booking staff make.

Only an active plan (signed, not closed) has reviews and follow-ups. Who may work on the
plan is the plan service's rule (`shared.plans.service`); the list of reviews due is
`shared.plans.listing.plans_due_for_review`.

Functions take the caller's session and never commit; a raised `PlanError` or
`BookingError` means nothing they did is to be kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import forms
from shared.booking import service as booking
from shared.booking.models import Booking
from shared.cases import access
from shared.db import utcnow
from shared.forms import Day
from shared.i18n import N_
from shared.limits import DAY_OUT_OF_RANGE, DAY_RANGE, is_plausible_day
from shared.plans import messages as plan_messages
from shared.plans import service as plan_service
from shared.plans.errors import IllegalTransition, InvalidInput
from shared.plans.models import PlanChange, PlanReview, PlanState, ReviewStatus
from shared.settings import Settings

# A note on one objective or commitment, and the review's own notes.
MAX_NOTE = 500
MAX_NOTES = 2000
# Reviews shown for one plan: more than 90-day reviews over any plan's life.
MAX_SHOWN = 100

STATUS_LABELS = {
    ReviewStatus.DONE.value: N_("Done"),
    ReviewStatus.IN_PROGRESS.value: N_("In progress"),
    ReviewStatus.NOT_DONE.value: N_("Not done"),
}
CHOOSE_STATUS = N_("Choose how far this has come.")
UNKNOWN_ITEM = N_("This row is not part of the plan: reload the page.")
TOO_LONG = N_("This text is too long: at most {max_length} characters.")
BAD_DAY = forms.MESSAGES["day"]
WRITE_HELD_ON = N_("Write the date of the meeting.")
HELD_IN_FUTURE = N_("The meeting can't be in the future.")
HELD_BEFORE_SIGNING = N_("The plan was signed after this date: check it.")
HELD_BEFORE_LAST = N_("A review of a later meeting is already recorded: check the date.")
NEXT_NOT_AFTER = N_("The next review comes after this meeting.")
NEXT_IN_PAST = N_("The next review can't be in the past.")

KINDS = ("objective", "commitment")
# A progress key and a form field of the review form: "objective:12", "commitment:3.note".
_KEY = re.compile(r"^(objective|commitment):(\d{1,10})$")
_FIELD = re.compile(r"^(objective|commitment):(\d{1,10})\.(status|note)$")
_DAY = TypeAdapter(Day)


class PlanNotActive(IllegalTransition):
    """Reviews and follow-up meetings are for an active plan (signed, not yet closed)."""

    code = "plan_not_active"


# --- what a review asks about --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One objective or commitment of the plan, as the review form asks about it."""

    key: str
    kind: str
    text: str
    # The objective's expected result ("" for a commitment).
    expected_result: str
    # The commitment's "by when" (None for an objective).
    due_on: date | None


def review_items(rows: plan_service.PlanRows) -> tuple[ReviewItem, ...]:
    """The plan's objectives, then its commitments, in the plan's order."""
    return tuple(
        ReviewItem(f"objective:{o.id}", "objective", o.objective, o.expected_result, None)
        for o in rows.objectives
    ) + tuple(
        ReviewItem(f"commitment:{c.id}", "commitment", c.what, "", c.due_on)
        for c in rows.commitments
    )


Progress = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class ReviewInput:
    held_on: date
    # {"objective:<id>": {"status": "done", "note": "..."}, "commitment:<id>": {...}}
    progress: dict[str, dict[str, str]]
    notes: str
    # None: `plan_review_days` after the meeting.
    next_review_on: date | None


def check_review(
    items: Sequence[ReviewItem],
    *,
    held_on: date | None,
    progress: Progress,
    notes: str,
    next_review_on: date | None,
    today: date,
    signed_on: date | None = None,
    last_held_on: date | None = None,
) -> tuple[dict[str, str], dict[str, dict[str, object]]]:
    """What is wrong with a review of `items`, field by field, and the messages' values.

    Every objective and commitment needs a status; a key naming anything else (a forged
    or stale form) is refused as a whole under "progress". `held_on` None: not checked
    (the form's own parsing already named the problem).
    """
    errors: dict[str, str] = {}
    params: dict[str, dict[str, object]] = {}
    known = {item.key for item in items}
    if any(key not in known for key in progress):
        errors["progress"] = UNKNOWN_ITEM
    for item in items:
        entry = progress.get(item.key)
        status = entry.get("status") if isinstance(entry, Mapping) else None
        if status not in STATUS_LABELS:
            errors[f"{item.key}.status"] = CHOOSE_STATUS
        note = entry.get("note", "") if isinstance(entry, Mapping) else ""
        if not isinstance(note, str):
            errors[f"{item.key}.note"] = CHOOSE_STATUS
        elif len(note.strip()) > MAX_NOTE:
            errors[f"{item.key}.note"] = TOO_LONG
            params[f"{item.key}.note"] = {"max_length": MAX_NOTE}
    if len(notes.strip()) > MAX_NOTES:
        errors["notes"] = TOO_LONG
        params["notes"] = {"max_length": MAX_NOTES}
    if held_on is not None:
        if not is_plausible_day(held_on):
            errors["held_on"] = DAY_OUT_OF_RANGE
            params["held_on"] = dict(DAY_RANGE)
        elif held_on > today:
            errors["held_on"] = HELD_IN_FUTURE
        elif signed_on is not None and held_on < signed_on:
            errors["held_on"] = HELD_BEFORE_SIGNING
        elif last_held_on is not None and held_on < last_held_on:
            errors["held_on"] = HELD_BEFORE_LAST
    if next_review_on is not None:
        if not is_plausible_day(next_review_on):
            errors["next_review_on"] = DAY_OUT_OF_RANGE
            params["next_review_on"] = dict(DAY_RANGE)
        elif held_on is not None and next_review_on <= held_on:
            errors["next_review_on"] = NEXT_NOT_AFTER
        elif next_review_on < today:
            errors["next_review_on"] = NEXT_IN_PAST
    return errors, params


def _day_field(value: str, name: str, errors: dict[str, str]) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return _DAY.validate_python(value)
    except ValidationError:
        errors[name] = BAD_DAY
        return None


def parse_review_form(
    *,
    held_on: str,
    next_review_on: str,
    notes: str,
    fields: Mapping[str, str],
    rows: plan_service.PlanRows,
    today: date,
) -> ReviewInput:
    """The review form's values (each item's "<key>.status" and "<key>.note" in `fields`,
    other fields ignored); `InvalidInput` names every problem at once."""
    errors: dict[str, str] = {}
    held = _day_field(held_on, "held_on", errors)
    if held is None and "held_on" not in errors:
        errors["held_on"] = WRITE_HELD_ON
    following = _day_field(next_review_on, "next_review_on", errors)
    progress: dict[str, dict[str, str]] = {}
    for name, value in fields.items():
        match = _FIELD.fullmatch(name)
        if match is None:
            if name.startswith(KINDS):
                errors["progress"] = UNKNOWN_ITEM
            continue
        progress.setdefault(f"{match[1]}:{match[2]}", {})[match[3]] = value
    found, params = check_review(
        review_items(rows), held_on=held, progress=progress, notes=notes,
        next_review_on=following, today=today, signed_on=rows.plan.signed_on,
    )  # fmt: skip
    errors = {**found, **errors}
    if errors or held is None:
        raise InvalidInput(errors, params)
    return ReviewInput(held, progress, notes.strip(), following)


# --- recording -----------------------------------------------------------------------------


def _stored(items: Sequence[ReviewItem], progress: Progress) -> dict[str, dict[str, str]]:
    """The progress as kept: each item's status and note, and what the item said that day."""
    return {
        item.key: {
            "status": str(progress[item.key]["status"]),
            "note": str(progress[item.key].get("note", "")).strip(),
            "text": item.text,
        }
        for item in items
    }


async def record_review(
    *,
    session: AsyncSession,
    case_id: int,
    held_on: date,
    progress: Progress,
    notes: str,
    next_review_on: date | None,
    staff: access.StaffMember,
    settings: Settings,
    now: datetime,
) -> PlanReview:
    """Record a monitoring meeting of the active plan: progress of each objective and
    commitment, notes, and the next review (the given day, or `plan_review_days` after
    the meeting), which the citizen's reminder follows."""
    # The plan service's own rule on who may work on which plan (admins refused).
    case = await plan_service.case_for_plan(session, case_id, staff, lock=True)
    plan = await plan_service.plan_of(session, case, lock=True)
    if plan.state != PlanState.ACTIVE.value:
        raise PlanNotActive(action="review", state=plan.state)
    items = review_items(await plan_service.plan_rows(session, plan))
    last_held_on = await session.scalar(
        select(func.max(PlanReview.held_on)).where(PlanReview.plan_id == plan.id)
    )
    errors, params = check_review(
        items, held_on=held_on, progress=progress, notes=notes, next_review_on=next_review_on,
        today=now.astimezone(settings.tz).date(), signed_on=plan.signed_on,
        last_held_on=last_held_on,
    )  # fmt: skip
    if errors:
        raise InvalidInput(errors, params)
    following = next_review_on or held_on + timedelta(days=settings.plan_review_days)
    review = PlanReview(
        plan_id=plan.id, held_on=held_on, progress=_stored(items, progress),
        notes=notes.strip(), next_review_on=following, actor=staff.actor, recorded_at=now,
    )  # fmt: skip
    session.add(review)
    await session.flush()
    before = plan.next_review_on
    plan.next_review_on = following
    plan.updated_at = now
    # The plan's history keeps the date it moved, as for a date changed in the editor.
    session.add(
        PlanChange(
            plan_id=plan.id, at=now, actor=staff.actor, what="review", item_id=review.id,
            before={"on": before.isoformat() if before else None},
            after={"on": following.isoformat(), "held_on": held_on.isoformat()},
        )
    )  # fmt: skip
    await session.flush()
    await access.record(
        session, staff.actor, "plan.review", case,
        {"plan_id": plan.id, "review_id": review.id, "held_on": held_on.isoformat(),
         "next_review_on": following.isoformat()},
    )  # fmt: skip
    if following != before:
        # The reminder of the old date is withdrawn and one for the new date queued (J3).
        await plan_messages.queue_review_reminder(
            session=session, settings=settings, citizen_id=case.citizen_id, plan=plan, now=now
        )
    return review


async def reviews_of(
    *, session: AsyncSession, plan_id: int, limit: int = MAX_SHOWN
) -> list[PlanReview]:
    """The plan's reviews, the latest meeting first."""
    rows = await session.scalars(
        select(PlanReview)
        .where(PlanReview.plan_id == plan_id)
        .order_by(PlanReview.held_on.desc(), PlanReview.id.desc())
        .limit(limit)
    )
    return list(rows.all())


# --- showing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShownItem:
    kind: str
    text: str
    status: str
    # A msgid of `STATUS_LABELS` (translated where shown), "" for a status we don't know.
    status_label: str
    note: str


@dataclass(frozen=True, slots=True)
class ShownReview:
    id: int
    held_on: date
    next_review_on: date
    # Who recorded it: the username of "staff:<username>".
    recorded_by: str
    recorded_at: datetime
    notes: str
    items: tuple[ShownItem, ...]


def shown(review: PlanReview) -> ShownReview:
    """A review as the pages list it, from what it kept (whatever the plan says now)."""
    items = []
    for key, entry in (review.progress or {}).items():
        match = _KEY.fullmatch(key)
        if match is None or not isinstance(entry, Mapping):
            continue
        status = str(entry.get("status", ""))
        items.append(
            ShownItem(
                kind=match[1], text=str(entry.get("text", "")), status=status,
                status_label=STATUS_LABELS.get(status, ""), note=str(entry.get("note", "")),
            )
        )  # fmt: skip
    return ShownReview(
        id=review.id,
        held_on=review.held_on,
        next_review_on=review.next_review_on,
        recorded_by=review.actor.partition(":")[2] or review.actor,
        recorded_at=review.recorded_at,
        notes=review.notes,
        items=tuple(items),
    )


# --- follow-up meetings --------------------------------------------------------------------


async def book_follow_up(
    *,
    session: AsyncSession,
    settings: Settings,
    case_id: int,
    helpdesk_id: int,
    starts_at: datetime,
    staff: access.StaffMember,
    now: datetime | None = None,
) -> Booking:
    """Book a follow-up meeting for the citizen of the active plan, by the booking
    service's rules; the citizen is told (and reminded) by its messages."""
    now = now or utcnow()
    case = await plan_service.case_for_plan(session, case_id, staff, lock=True)
    plan = await plan_service.plan_of(session, case, lock=True)
    if plan.state != PlanState.ACTIVE.value:
        raise PlanNotActive(action="follow_up", state=plan.state)
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=case.citizen_id,
        helpdesk_id=helpdesk_id, starts_at=starts_at, actor=staff.actor, now=now,
        confirm_by_message=True,
    )  # fmt: skip
    await access.record(
        session, staff.actor, "plan.follow_up", case,
        {"plan_id": plan.id, "booking_id": made.id, "starts_at": made.starts_at.isoformat()},
    )  # fmt: skip
    return made
