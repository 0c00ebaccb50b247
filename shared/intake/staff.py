"""Phone and walk-in intake: staff submit a whole questionnaire on a citizen's behalf (SPEC J7).

The same definition, validators and eligibility rule as the Telegram conversation: every
answer goes through `validators.validate`, conditional steps are checked only when their
condition holds, and the result is stored in the same `Intake` row the bot uses, completed
at once; the citizen's case opens through the same hook as the bot's confirmation.
Booking afterwards goes through `booking.book_slot`, rules and all, and the pages show
only what the citizen's case would show to that member of staff.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.booking import service as booking
from shared.booking.models import Booking
from shared.cases import access
from shared.cases import service as cases
from shared.cases.errors import CaseNotVisible
from shared.cases.models import CaseState
from shared.citizens import standing
from shared.citizens.errors import CitizenNotFound
from shared.citizens.models import Channel, Citizen
from shared.citizens.service import PRIVACY_NOTICE_VERSION
from shared.citizens.standing import Standing
from shared.db import utcnow
from shared.intake.errors import IntakeError, IntakeNotFound, InvalidAnswer
from shared.intake.models import Intake, IntakeState
from shared.intake.questionnaire import QUESTIONNAIRE, Answer, Eligibility, assess
from shared.intake.validators import validate

if TYPE_CHECKING:
    from shared.settings import Settings

# Citizens who reach the program through staff rather than the bot.
STAFF_CHANNELS = (Channel.PHONE.value, Channel.WALK_IN.value)
# Answers copied onto the citizen record (the step keys are the column names).
CITIZEN_FIELDS = ("name", "phone", "email", "fiscal_code")
# Form fields checked besides the questionnaire's steps, with their reason codes.
CHANNEL_FIELD = "channel"
CONSENT_FIELD = "consent"
MAX_DUPLICATES = 10

# Raw text per step key, as typed or picked in the staff form: an option key for yes/no
# and choices, option keys separated by commas for multiple choices, "members minors"
# for the household (see `household_input`), free text for the rest.
RawAnswers = Mapping[str, str]


class InvalidSubmission(IntakeError):
    """Some fields of the staff form are wrong; `errors` maps each field to a reason code.

    Field names are step keys (reason codes of `validators`), `channel` (`unknown`) and
    `consent` (`missing`). Nothing was written.
    """

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("invalid fields: " + ", ".join(sorted(errors)))
        self.errors = dict(errors)


class DuplicatesFound(IntakeError):
    """The phone or fiscal code already belongs to other citizens; nothing was written.

    Staff look at `duplicates` and submit again acknowledging their ids to go on.
    """

    def __init__(self, duplicates: list[Citizen]) -> None:
        super().__init__("possible duplicates: " + ", ".join(str(c.id) for c in duplicates))
        self.duplicates = duplicates


@dataclass(frozen=True)
class Submission:
    """A citizen registered by staff, their completed questionnaire and its outcome."""

    citizen: Citizen
    intake: Intake
    eligibility: Eligibility
    # The citizen's open case (SPEC section 5), where staff follow them from now on.
    case_id: int | None
    # A coordinator's decision over the questionnaire's outcome, on the case (None: none).
    override: bool | None = None
    # Where the citizen stands (None right after `submit_intake`: read it with
    # `get_submission`): whether they may book, why not, or what they hold.
    standing: Standing | None = None
    # Where their case is (`CaseState`): past the appointment, no interview is to be booked.
    case_state: str | None = None

    @property
    def came(self) -> bool:
        """The citizen came to their interview (checked in, or interviewed since)."""
        return self.case_state in (CaseState.CHECKED_IN.value, CaseState.INTERVIEWED.value)

    @property
    def may_book(self) -> bool:
        """Their standing lets them book (eligible, by the questionnaire or a coordinator)."""
        return self.standing is not None and self.standing.may_book


def household_input(members: str, minors: str) -> str:
    """The validator's input ("3 1") from the form's two number fields.

    Minors left blank count as none; anything but whole numbers becomes an input the
    validator refuses as badly formatted, so the form shows the household's own message.
    """
    members, minors = members.strip(), minors.strip()
    if not members and not minors:
        return ""
    if not members.isdecimal() or not (minors.isdecimal() or not minors):
        return "?"
    return f"{members} {minors or 0}"


def validate_answers(raw: RawAnswers, *, today: date, settings: Settings) -> dict[str, Answer]:
    """Every applicable step's answer, normalised; `InvalidSubmission` names all the bad ones.

    A step whose condition is false for the valid answers is neither checked nor kept; one
    whose condition depends on an invalid answer is left unchecked until that is fixed. A
    blank optional step is stored as skipped (None).
    """
    answers: dict[str, Answer] = {}
    errors: dict[str, str] = {}
    for step in QUESTIONNAIRE:
        if step.condition is not None and step.condition.key in errors:
            continue
        if not step.applies(answers):
            continue
        text = raw.get(step.key, "")
        if step.optional and not text.strip():
            answers[step.key] = None
            continue
        try:
            answers[step.key] = validate(step, text, today=today, settings=settings)
        except InvalidAnswer as exc:
            errors[step.key] = exc.reason
    if errors:
        raise InvalidSubmission(errors)
    return answers


async def find_duplicates(
    *,
    session: AsyncSession,
    phone: str | None,
    fiscal_code: str | None,
    exclude_citizen_id: int | None = None,
) -> list[Citizen]:
    """Other citizens with this phone (E.164) or fiscal code, newest first (SPEC section 5)."""
    matches = []
    if phone:
        matches.append(Citizen.phone == phone)
    if fiscal_code:
        matches.append(Citizen.fiscal_code == fiscal_code)
    if not matches:
        return []
    query = select(Citizen).where(or_(*matches))
    if exclude_citizen_id is not None:
        query = query.where(Citizen.id != exclude_citizen_id)
    found = await session.scalars(query.order_by(Citizen.id.desc()).limit(MAX_DUPLICATES))
    return list(found.all())


async def submit_intake(
    *,
    session: AsyncSession,
    settings: Settings,
    channel: str,
    raw: RawAnswers,
    consent: bool,
    actor: str,
    now: datetime,
    acknowledged: Collection[int] = (),
) -> Submission:
    """Register a citizen who phoned or walked in, with their completed questionnaire.

    Raises `InvalidSubmission` (every bad field at once) or `DuplicatesFound` when the
    phone or fiscal code belongs to citizens not in `acknowledged`; nothing is written then.
    """
    errors: dict[str, str] = {}
    if channel not in STAFF_CHANNELS:
        errors[CHANNEL_FIELD] = "unknown"
    if not consent:
        errors[CONSENT_FIELD] = "missing"
    try:
        answers = validate_answers(raw, today=now.astimezone(settings.tz).date(), settings=settings)
    except InvalidSubmission as exc:
        errors |= exc.errors
    if errors:
        raise InvalidSubmission(errors)

    phone, fiscal_code = answers.get("phone"), answers.get("fiscal_code")
    duplicates = await find_duplicates(
        session=session,
        phone=phone if isinstance(phone, str) else None,
        fiscal_code=fiscal_code if isinstance(fiscal_code, str) else None,
    )
    if {c.id for c in duplicates} - set(acknowledged):
        raise DuplicatesFound(duplicates)

    eligibility = assess(answers, settings)
    citizen = Citizen(
        channel=channel,
        consent_version=PRIVACY_NOTICE_VERSION,
        consented_at=now,
        urgent=eligibility.urgent,
        created_at=now,
    )
    for field in CITIZEN_FIELDS:
        value = answers.get(field)
        if isinstance(value, str):
            setattr(citizen, field, value)
    session.add(citizen)
    await session.flush()
    intake = Intake(
        citizen_id=citizen.id,
        state=IntakeState.COMPLETED.value,
        current_step=None,
        answers=answers,
        history=list(answers),
        started_at=now,
        updated_at=now,
        completed_at=now,
        eligible=eligibility.eligible,
        urgent=eligibility.urgent,
    )
    session.add(intake)
    await session.flush()
    # No names or contacts in the audit log: it outlives an erasure (SPEC J8).
    await audit.record(
        session=session,
        actor=actor,
        action="citizen.create",
        object_type="citizen",
        object_id=str(citizen.id),
        details={
            "channel": channel,
            "consent_version": PRIVACY_NOTICE_VERSION,
            "duplicates_acknowledged": sorted(c.id for c in duplicates),
        },
    )
    await audit.record(
        session=session,
        actor=actor,
        action="intake.complete",
        object_type="intake",
        object_id=str(intake.id),
        details={
            "citizen_id": citizen.id,
            "eligible": eligibility.eligible,
            "urgent": eligibility.urgent,
            "reasons": list(eligibility.reason_keys),
        },
    )
    # The same hook the bot's confirmation calls: the citizen's case opens now.
    case = await cases.on_intake_confirmed(
        session=session,
        citizen_id=citizen.id,
        eligible=eligibility.eligible,
        urgent=eligibility.urgent,
        now=now,
        actor=actor,
    )
    return Submission(citizen, intake, eligibility, case.id)


async def get_submission(
    *,
    session: AsyncSession,
    settings: Settings,
    citizen_id: int,
    staff: access.StaffMember,
    now: datetime | None = None,
) -> Submission:
    """A questionnaire completed through staff, with its outcome; `IntakeNotFound` otherwise.

    The same visibility as the case (SPEC section 6): `CaseNotVisible` when the citizen's
    open case is assigned to another case worker. One statement, the standing's.
    """
    try:
        facts = await standing.read_facts(session=session, citizen_id=citizen_id)
    except CitizenNotFound:
        raise IntakeNotFound(citizen_id) from None
    citizen, intake, case = facts.citizen, facts.intake, facts.case
    if (
        citizen.channel not in STAFF_CHANNELS
        or intake is None
        or intake.state != IntakeState.COMPLETED.value
    ):
        raise IntakeNotFound(citizen_id)
    if case is not None and not access.can_see(staff, case.assigned_to_id):
        raise CaseNotVisible(f"Case {case.id} is not visible to {staff.actor}.")
    # The recorded outcome stands; the reasons are read again from the rules.
    reasons = () if intake.eligible else assess(intake.answers, settings).reasons
    eligibility = Eligibility(eligible=bool(intake.eligible), urgent=intake.urgent, reasons=reasons)
    return Submission(
        citizen,
        intake,
        eligibility,
        case.id if case is not None else None,
        case.eligibility_override if case is not None else None,
        standing.decide(facts, settings=settings, now=now or utcnow()),
        case.state if case is not None else None,
    )


async def book_after_intake(
    *,
    session: AsyncSession,
    settings: Settings,
    citizen_id: int,
    helpdesk_id: int,
    starts_at: datetime,
    staff: access.StaffMember,
    now: datetime | None = None,
) -> Booking:
    """Book the interview of a citizen registered by staff (same rules as the bot: the
    booking service refuses one whose standing doesn't allow it)."""
    await get_submission(
        session=session, settings=settings, citizen_id=citizen_id, staff=staff, now=now
    )
    return await booking.book_slot(
        session=session,
        settings=settings,
        citizen_id=citizen_id,
        helpdesk_id=helpdesk_id,
        starts_at=starts_at,
        actor=staff.actor,
        now=now,
        confirm_by_message=True,
    )
