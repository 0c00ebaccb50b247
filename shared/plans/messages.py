"""What the plan tells the citizen on Telegram, queued in the outbox (delivered by the bot).

Four events, each queued once (the idempotency key carries the plan's version):

- approved: an invitation to come and sign (the bot adds their appointment, if booked);
- active (signed): a plain-language summary of their commitments and supports, with an
  "I've read it" button (`shared.plans.acknowledgements`);
- a review coming up: a reminder a few days before `Plan.next_review_on`, replaced when
  the date changes, withdrawn when the plan closes;
- closed.

Only ids travel in the payload: the bot renders each message from the data as it is when
it is sent, and withdraws one that no longer applies (a newer version was approved, the
plan went back to the coordinators, the review date moved). A citizen without a Telegram
chat (came by phone or at the desk) gets nothing queued.

The kinds are their own `MessageKind`, like `shared.booking.messages`' one: the outbox
stores a kind as a plain string and the bot maps each string to its renderer, so every
domain keeps the kinds of its messages and no module has to know them all. Their values
start with "plan_" so they can't meet another domain's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import program
from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.outbox import service as outbox
from shared.outbox.models import MessageState, OutboxMessage
from shared.plans.models import Plan, PlanCommitment, PlanState, PlanSupport, SupportState
from shared.settings import Settings
from shared.staff.models import StaffUser

# The review reminder goes out this many days before the review, at this local time (or
# at once, when the date is set closer than that).
REVIEW_NOTICE_DAYS = 3
REVIEW_NOTICE_AT = time(10)

_LIVE = (MessageState.PENDING.value, MessageState.SENDING.value)


class MessageKind(StrEnum):
    PLAN_APPROVED = "plan_approved"
    PLAN_ACTIVE = "plan_active"
    PLAN_REVIEW_DUE = "plan_review_due"
    PLAN_CLOSED = "plan_closed"


def subject(plan: Plan) -> str:
    return f"plan:{plan.id}"


def review_subject(plan: Plan) -> str:
    """Review reminders have a subject of their own: withdrawing them leaves the rest."""
    return f"plan:{plan.id}:review"


# --- the summary the citizen reads ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SummaryCommitment:
    what: str
    due_on: date | None


@dataclass(frozen=True, slots=True)
class SummarySupport:
    # A `catalog.Kind` value: the bot shows the catalog's label in the citizen's language.
    kind: str
    amount_cents: int
    starts_on: date | None
    ends_on: date | None
    # The organisation's or the case worker's name: proper names, never translated.
    provider: str


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """What the citizen's summary says: their commitments and the supports, no internal
    notes (no situation summary, fund, payee or team roles)."""

    plan_id: int
    version: int
    commitments: tuple[SummaryCommitment, ...]
    supports: tuple[SummarySupport, ...]
    review_on: date | None

    def content_hash(self) -> str:
        """SHA-256 over what the citizen is asked to read, in no language.

        The plan, its version, the commitments and the supports as stored values (ISO
        dates, cents, catalog keys), not as any language shows them: the same summary
        read in Italian or in English, today or after a change of wording in the
        catalogs, has the same hash, and anyone can recompute it from the database. The
        review date is shown for information and left out: it moves at every review.
        """
        content = {
            "plan_id": self.plan_id,
            "version": self.version,
            "commitments": [[c.what, _iso(c.due_on)] for c in self.commitments],
            "supports": [
                [s.kind, s.amount_cents, _iso(s.starts_on), _iso(s.ends_on), s.provider]
                for s in self.supports
            ],
        }
        encoded = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


async def plan_summary(*, session: AsyncSession, plan: Plan) -> PlanSummary:
    """The plan as its citizen's summary states it, from the rows as they are now."""
    commitments = await session.scalars(
        select(PlanCommitment)
        .where(PlanCommitment.plan_id == plan.id)
        .order_by(PlanCommitment.position, PlanCommitment.id)
    )
    supports = (
        await session.scalars(
            select(PlanSupport)
            .where(
                PlanSupport.plan_id == plan.id,
                PlanSupport.state != SupportState.CANCELLED.value,
            )
            .order_by(PlanSupport.position, PlanSupport.id)
        )
    ).all()
    staff_ids = {s.responsible_id for s in supports if s.responsible_id is not None}
    names: dict[int, str] = (
        dict(
            (
                await session.execute(
                    select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(staff_ids))
                )
            ).tuples()
        )
        if staff_ids
        else {}
    )
    return PlanSummary(
        plan_id=plan.id,
        version=plan.version,
        commitments=tuple(SummaryCommitment(c.what, c.due_on) for c in commitments),
        supports=tuple(
            SummarySupport(
                kind=s.kind,
                amount_cents=s.amount_cents,
                starts_on=s.starts_on,
                ends_on=s.ends_on,
                provider=names.get(s.responsible_id, "")
                if s.responsible_id is not None
                else program.organisation_name(s.organisation or ""),
            )
            for s in supports
        ),
        review_on=plan.next_review_on,
    )


async def citizens_plan(*, session: AsyncSession, plan_id: int, citizen_id: int) -> Plan | None:
    """The plan, only if it is `citizen_id`'s own (a button's or a message's id is checked)."""
    plan: Plan | None = await session.scalar(
        select(Plan)
        .join(Case, Case.id == Plan.case_id)
        .where(Plan.id == plan_id, Case.citizen_id == citizen_id)
    )
    return plan


# --- queueing -----------------------------------------------------------------------------


async def _chat_citizen(session: AsyncSession, citizen_id: int) -> Citizen | None:
    citizen = await session.get(Citizen, citizen_id)
    # Citizens who came by phone or at the desk have no chat to write to.
    if citizen is None or citizen.telegram_chat_id is None:
        return None
    return citizen


async def _queue(
    session: AsyncSession,
    citizen_id: int,
    kind: MessageKind,
    key: str,
    due_at: datetime,
    payload: dict[str, Any],
    about: str,
) -> None:
    if await _chat_citizen(session, citizen_id) is None:
        return
    await outbox.enqueue(
        session=session,
        kind=kind.value,
        citizen_id=citizen_id,
        due_at=due_at,
        idempotency_key=key,
        payload=payload,
        subject=about,
    )


async def _queue_event(
    session: AsyncSession, citizen_id: int, plan: Plan, kind: MessageKind, event: str, now: datetime
) -> None:
    """One message per plan, version and event: queueing it again is a no-op."""
    await _queue(
        session,
        citizen_id,
        kind,
        f"{subject(plan)}:v{plan.version}:{event}",
        now,
        {"plan_id": plan.id, "version": plan.version},
        subject(plan),
    )


async def queue_plan_approved(
    *, session: AsyncSession, citizen_id: int, plan: Plan, now: datetime
) -> None:
    """Invite the citizen to come and sign the version of the plan just approved."""
    await _queue_event(session, citizen_id, plan, MessageKind.PLAN_APPROVED, "approved", now)


async def queue_plan_active(
    *, session: AsyncSession, citizen_id: int, plan: Plan, now: datetime
) -> None:
    """Send the citizen the summary of the plan they signed, with "I've read it"."""
    await _queue_event(session, citizen_id, plan, MessageKind.PLAN_ACTIVE, "active", now)


async def queue_plan_closed(
    *, session: AsyncSession, citizen_id: int, plan: Plan, now: datetime
) -> None:
    """Tell the citizen their plan is closed; the review reminders still waiting are withdrawn."""
    await outbox.cancel_pending(session=session, subject=review_subject(plan))
    await _queue_event(session, citizen_id, plan, MessageKind.PLAN_CLOSED, "closed", now)


def review_notice_at(review_on: date, settings: Settings, now: datetime) -> datetime | None:
    """When to remind of a review on `review_on`: at 10:00 three days before; at once if
    that has passed but the day hasn't come; None on the day or after."""
    planned = datetime.combine(
        review_on - timedelta(days=REVIEW_NOTICE_DAYS), REVIEW_NOTICE_AT, tzinfo=settings.tz
    ).astimezone(UTC)
    if planned > now:
        return planned
    if now.astimezone(settings.tz).date() < review_on:
        return now
    return None


async def queue_review_reminder(
    *, session: AsyncSession, settings: Settings, citizen_id: int, plan: Plan, now: datetime
) -> None:
    """Remind the citizen of their plan's next review; call it whenever the date changes.

    A reminder for another date still waiting is withdrawn; one for this date already
    waiting is kept (so a second call queues nothing). Only a plan that has started (it
    was signed) and isn't closed has reviews to remind of.
    """
    about = review_subject(plan)
    review_on = plan.next_review_on
    if plan.activated_at is None or plan.state == PlanState.CLOSED.value:
        review_on = None
    if review_on is not None:
        waiting = await session.scalars(
            select(OutboxMessage.payload).where(
                OutboxMessage.subject == about, OutboxMessage.state.in_(_LIVE)
            )
        )
        if any(payload.get("review_on") == review_on.isoformat() for payload in waiting):
            return
    await outbox.cancel_pending(session=session, subject=about)
    if review_on is None:
        return
    due_at = review_notice_at(review_on, settings, now)
    if due_at is None:
        return
    # A date can come back after a change (1 March, 8 March, 1 March again): the key
    # counts the reminders queued before, so each queueing has a key of its own.
    earlier = await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.subject == about)
    )
    await _queue(
        session,
        citizen_id,
        MessageKind.PLAN_REVIEW_DUE,
        f"{about}:{review_on.isoformat()}:{earlier or 0}",
        due_at,
        {"plan_id": plan.id, "review_on": review_on.isoformat()},
        about,
    )
