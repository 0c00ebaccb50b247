"""Erasure at the citizen's request (GDPR art. 17, SPEC J8), and a case's anonymisation.

Who calls what:

- `erase_citizen`: the bot's /cancella (through `shared.citizens.service.erase`), a
  coordinator from the case page (`erase_on_request`), and retention for the candidates
  who never booked;
- `anonymise_case`: `erase_citizen`, for each of the citizen's cases, and retention for
  the cases closed longer than the retention period.

The design: an anonymous tombstone, not a deletion. The citizen's row stays with every
identifying column emptied (`Citizen.erased_at` set), and so do the rows that hang off
it, reduced to their non-identifying skeleton: dates, helpdesk, states, kinds, amounts,
outcomes. Every free-text and identifying field is wiped; what does nothing but identify
is deleted (the name's search terms, the outside members of the plan team, the signed
scans, the messages). So the figures (`shared.figures`) count an erased citizen exactly
as before, and no row left says who they were: no name, contact, fiscal code, Telegram
id, answer, note, scan or booking code. Deleting the rows instead would change every
figure that counted them, and cannot be done to the plans and supports money was
committed to (the ledger's foreign keys refuse it).

The one change to the figures is the one the citizen asked for: their appointment still
to come is cancelled (its place offered to the waiting list, as any cancellation's), and
they leave the waiting list. A questionnaire they had not finished is wiped as the
expiry sweep would wipe it (it no longer counts as open, but as abandoned). Open cases
and plans keep their state: the case page says the data was erased, and staff close
them as they would any other.

What goes and what stays, table by table (wiped / kept). The tables not named hold no
citizen's data: helpdesks, hours, slots, staff, funds, the anonymous tallies and
refusals, the update ids.

- citizen: name, phone, e-mail, fiscal code, Telegram user and chat ids, the notice
  version accepted (so nothing can be booked or sent for the tombstone), the language
  (back to the default); `unreachable` set / channel, urgency, first contact and
  consent times (the funnel's cohort and its "consented"), `erased_at`.
- intake: answers, history, the current question; an unfinished one becomes expired
  (counted where it stood), a refusal's eligibility (its count and reasons go to
  `screening_tally`) / state, dates, urgency (the funnel counts who completed it).
- booking: the code (made from the id: `~` and base 36, which no real code can be), a
  reason staff typed / times, helpdesk, slot, state, moderation, who made and closed it
  (staff, or `citizen:<id>`).
- waitlist_entry: an open one is left / dates, states, helpdesk, slot.
- outbox_message: deleted (payloads hold names, codes and texts).
- case_file: the eligibility decision's reason, a closing reason staff typed / states,
  dates, helpdesk, eligibility, outcome codes, `anonymised_at`.
- case_name_prefix: deleted.
- interview: the whole form (work, household, income, debts, wellbeing, notes), why not
  admitted, to whom referred / outcome, interviewer, dates.
- plan: situation, return comment, outcome notes / state, version, dates, outcome, the
  closure check's trends, owner.
- plan_objective, plan_commitment: their texts / positions, due dates.
- plan_support: the details' free-text fields (payee, lender, provider, host, notes...)
  / kind, state, the details' choices, numbers and amounts, responsible, dates, fund,
  `amount_cents` (what the figures and the ledger read).
- plan_team_member: the rows of people without an account (named) deleted / staff
  members and their part.
- plan_change: before and after (copies of the texts) / when, who, what, material.
- plan_review: notes, each item's note and text / each item's status, dates.
- plan_acknowledgement: - / version, time, a SHA-256 of the plan's content.
- plan_signed_scan: deleted.
- fund_movement: the note / fund, kind, amount, dates, payee category, method.
- audit_event: - (append-only; it names people by id and holds no personal data) / one
  `citizen.erase` event more.

The money paid is public money, and the law requires the payments to be kept on record
(the municipality's accounting, for the years its rules set): that record is the
municipality's own accounting system, outside Ripartire, which keeps its ledger's
amounts and dates only, linked to no person once the citizen is erased. Nothing else
Ripartire holds needs keeping against an erasure request: the program's own reporting
needs only the anonymous counts the figures keep. (For docs/privacy.md and the notice.)

The services don't commit: the caller's transaction erases all or nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.booking import service as booking
from shared.booking import waitlist
from shared.booking.models import Booking
from shared.cases.errors import CaseNotFound, NotAllowed
from shared.cases.models import Case, CaseNamePrefix, Interview, Outcome
from shared.citizens.errors import CitizenNotFound
from shared.citizens.models import Citizen
from shared.forms import Widget, meta_of
from shared.funds.models import FundMovement
from shared.i18n import DEFAULT_LANGUAGE
from shared.intake import tally
from shared.intake.models import UNFINISHED, Intake, IntakeState
from shared.outbox.models import OutboxMessage
from shared.plans import catalog
from shared.plans.models import (
    Plan,
    PlanChange,
    PlanCommitment,
    PlanObjective,
    PlanReview,
    PlanSupport,
    PlanTeamMember,
    SignedScan,
)
from shared.settings import Settings
from shared.staff.models import Role

log = logging.getLogger(__name__)

# What an erased booking's code becomes: this, then the booking's id in base 36 (at most
# seven characters in the column's eight). No real code has it (`places.CODE_ALPHABET`).
ERASED_CODE_MARK = "~"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
# The free-text inputs of a support's details (the rest are choices, numbers, amounts).
_FREE_TEXT = (Widget.TEXT.value, Widget.TEXTAREA.value)
# A case's closing reason that is a code (`record_outcome`), not text staff typed.
_CLOSE_CODES = frozenset(o.value for o in Outcome)


def erased_code(booking_id: int) -> str:
    """The code an erased booking keeps: unique (made from its id), unrelated to the old
    code, and never a code the booking service hands out or the case search looks up."""
    digits = ""
    number = booking_id
    while True:
        number, rest = divmod(number, 36)
        digits = _BASE36[rest] + digits
        if number == 0:
            return ERASED_CODE_MARK + digits


async def erase_citizen(
    *, session: AsyncSession, settings: Settings, citizen_id: int, now: datetime, actor: str
) -> None:
    """Erase a citizen's personal data everywhere, keeping the anonymous skeleton the
    figures count (see the module docstring); their future appointment is cancelled and
    its place freed. A citizen already erased is left as they are (nothing recorded).

    `actor`: who erases, for the audit log (`citizen:<id>` from the bot, `staff:<name>`
    for a coordinator, `system:retention`). `CitizenNotFound` for an unknown id.
    """
    citizen = await session.scalar(
        select(Citizen)
        .where(Citizen.id == citizen_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if citizen is None:
        raise CitizenNotFound(citizen_id)
    if citizen.erased_at is not None:
        return
    await _free_places(session, settings, citizen_id, now, actor)
    await _wipe_questionnaire(session, settings, citizen_id, now)
    await _wipe_bookings(session, citizen_id)
    case_ids = (await session.scalars(select(Case.id).where(Case.citizen_id == citizen_id))).all()
    for case_id in case_ids:
        await anonymise_case(session=session, settings=settings, case_id=case_id, now=now)
    await session.execute(delete(OutboxMessage).where(OutboxMessage.citizen_id == citizen_id))
    citizen.name = citizen.phone = citizen.email = citizen.fiscal_code = None
    citizen.telegram_user_id = citizen.telegram_chat_id = None
    citizen.consent_version = None
    citizen.language = DEFAULT_LANGUAGE
    citizen.unreachable = True
    citizen.updated_at = citizen.erased_at = now
    await session.flush()
    await audit.record(
        session=session, actor=actor, action="citizen.erase", object_type="citizen",
        object_id=str(citizen_id),
    )  # fmt: skip
    log.info("citizen %d erased (%d cases anonymised)", citizen_id, len(case_ids))


async def _free_places(
    session: AsyncSession, settings: Settings, citizen_id: int, now: datetime, actor: str
) -> None:
    """Cancel the appointment still to come (a past one that nobody closed stays as it
    is: it held no place anyone could still use) and leave the waiting list."""
    active = await booking.active_booking(session=session, citizen_id=citizen_id)
    if active is not None and active.starts_at > now:
        await booking.cancel_booking(
            session=session, settings=settings, booking_id=active.id,
            by=booking.CancelledBy.CITIZEN, actor=actor, reason="erasure", now=now,
        )  # fmt: skip
    await waitlist.leave_waitlist(
        session=session, settings=settings, citizen_id=citizen_id, now=now
    )


async def _wipe_questionnaire(
    session: AsyncSession, settings: Settings, citizen_id: int, now: datetime
) -> None:
    """Wipe the answers and keep the row's state and dates; what the figures counted of
    the answers goes to the anonymous tally first (`tally.on_erasure`)."""
    intake = await session.scalar(
        select(Intake).where(Intake.citizen_id == citizen_id).with_for_update()
    )
    if intake is None:
        return
    await tally.on_erasure(session=session, intake=intake, settings=settings)
    if intake.state in UNFINISHED:
        intake.state = IntakeState.EXPIRED.value
    elif intake.state == IntakeState.COMPLETED.value and intake.eligible is False:
        # Counted as ruled out (with its reasons) by the tally now.
        intake.eligible = None
    intake.current_step = None
    intake.answers = {}
    intake.history = []
    intake.updated_at = now


async def _wipe_bookings(session: AsyncSession, citizen_id: int) -> None:
    for row in await session.scalars(select(Booking).where(Booking.citizen_id == citizen_id)):
        row.code = erased_code(row.id)
        if row.cancel_reason not in booking.REASON_CODES:
            row.cancel_reason = None
    await session.flush()


async def anonymise_case(
    *, session: AsyncSession, settings: Settings, case_id: int, now: datetime
) -> None:
    """Wipe a case's personal data, keeping what the figures count (the module docstring
    lists it): the interview's form and texts, the plan's texts, its supports' free text,
    the outside members of its team, its history's copies, its reviews' notes, its signed
    scans, its fund movements' notes, and the name's search terms. Again on the same
    case, it finds nothing left to wipe. `CaseNotFound` for an unknown id.

    The citizen's own data (contacts, questionnaire, bookings) is `erase_citizen`'s.
    """
    del settings  # the retention's signature: its rules may come to need them
    case = await session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if case is None:
        raise CaseNotFound(f"No case {case_id}.")
    case.override_reason = None
    if case.close_reason not in _CLOSE_CODES:
        case.close_reason = None
    case.anonymised_at = case.anonymised_at or now
    await session.execute(delete(CaseNamePrefix).where(CaseNamePrefix.case_id == case_id))
    await session.execute(
        update(Interview)
        .where(Interview.case_id == case_id)
        .values(answers={}, outcome_reason=None, referred_to=None)
    )
    plan_id = await session.scalar(select(Plan.id).where(Plan.case_id == case_id))
    if plan_id is not None:
        await _wipe_plan(session, plan_id)
    await session.flush()


async def _wipe_plan(session: AsyncSession, plan_id: int) -> None:
    await session.execute(
        update(Plan)
        .where(Plan.id == plan_id)
        .values(summary="", return_comment=None, outcome_notes=None)
    )
    await session.execute(
        update(PlanObjective)
        .where(PlanObjective.plan_id == plan_id)
        .values(objective="", expected_result="")
    )
    await session.execute(
        update(PlanCommitment).where(PlanCommitment.plan_id == plan_id).values(what="")
    )
    await session.execute(
        delete(PlanTeamMember).where(
            PlanTeamMember.plan_id == plan_id, PlanTeamMember.staff_id.is_(None)
        )
    )
    await session.execute(
        update(PlanTeamMember).where(PlanTeamMember.plan_id == plan_id).values(name=None)
    )
    await session.execute(
        update(PlanChange).where(PlanChange.plan_id == plan_id).values(before=null(), after=null())
    )
    await session.execute(delete(SignedScan).where(SignedScan.plan_id == plan_id))
    supports = (
        await session.scalars(select(PlanSupport).where(PlanSupport.plan_id == plan_id))
    ).all()
    for support in supports:
        support.details = _without_free_text(support.kind, support.details)
    for review in await session.scalars(select(PlanReview).where(PlanReview.plan_id == plan_id)):
        review.notes = ""
        review.progress = {
            key: {"status": item.get("status", ""), "note": "", "text": ""}
            for key, item in (review.progress or {}).items()
            if isinstance(item, dict)
        }
    support_ids = [s.id for s in supports]
    await session.execute(
        update(FundMovement)
        .where(or_(FundMovement.plan_id == plan_id, FundMovement.support_id.in_(support_ids)))
        .values(note="")
    )


def _without_free_text(kind: str, details: dict[str, Any]) -> dict[str, Any]:
    """A support's details with its free-text fields emptied (all of them, for a kind
    the catalog no longer has: nothing says which of its values are free text)."""
    try:
        fields = catalog.intervention(kind).fields.model_fields
    except (KeyError, ValueError):
        return {}
    free = {name for name, info in fields.items() if meta_of(info).get("widget") in _FREE_TEXT}
    kept = {}
    for name, value in (details or {}).items():
        if name not in fields:
            continue  # a field the catalog dropped: it can't be told apart, so it goes
        kept[name] = None if name in free else value
    return kept


# --- a coordinator's erasure, from the case page ----------------------------------------


@dataclass(frozen=True, slots=True)
class ErasureTarget:
    """The case whose citizen a coordinator is about to erase, as the confirmation shows it
    (no personal data: the case page they came from showed who it is)."""

    case_id: int
    citizen_id: int
    state: str
    opened_at: datetime
    erased_at: datetime | None


def _require_coordinator(role: Role) -> None:
    if role is not Role.COORDINATORE:
        raise NotAllowed("Only coordinators erase a citizen's data.")


async def erasure_target(*, session: AsyncSession, case_id: int, role: Role) -> ErasureTarget:
    """What the confirmation page shows; `NotAllowed` unless a coordinator asks,
    `CaseNotFound` for an unknown case."""
    _require_coordinator(role)
    row = (
        await session.execute(
            select(Case.id, Case.citizen_id, Case.state, Case.opened_at, Citizen.erased_at)
            .join(Citizen, Citizen.id == Case.citizen_id)
            .where(Case.id == case_id)
        )
    ).first()
    if row is None:
        raise CaseNotFound(f"No case {case_id}.")
    return ErasureTarget(*row)


async def erase_on_request(
    *,
    session: AsyncSession,
    settings: Settings,
    case_id: int,
    role: Role,
    actor: str,
    now: datetime,
) -> int:
    """A coordinator erases the citizen of a case, who asked them to (by phone, at the
    helpdesk, in writing); the citizen's id. Only coordinators (`NotAllowed`); again on
    an erased citizen, nothing changes."""
    target = await erasure_target(session=session, case_id=case_id, role=role)
    await erase_citizen(
        session=session, settings=settings, citizen_id=target.citizen_id, now=now, actor=actor
    )
    return target.citizen_id
