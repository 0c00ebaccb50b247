"""Where a citizen stands on the way to their interview: one answer for every front end.

The bot's booking flow, the staff intake page and the booking services all ask
`citizen_standing` instead of deriving the rule again. In order, the first that holds:

1. `NotConsented`: no accepted privacy notice;
2. `QuestionnaireToFinish`: no completed pre-screening (not started, in progress, in the
   summary, or expired);
3. `NotEligible`: the coordinator's decision on the open case when there is one (an
   override to eligible admits whatever the questionnaire said; to ineligible rules the
   citizen out), else the questionnaire's outcome, with its reasons;
4. `Booked`: an active booking;
5. `Offered`: a place held for them by a waitlist offer still open;
6. `Waiting`: on the waitlist (an offer that lapsed, not yet passed on, is waiting too);
7. `MayBook`.

`book_slot` accepts `may_book` standings (a waiting citizen may still book a free place:
the waitlist is then withdrawn); `join_waitlist` only `MayBook`.

Apart from those, `notice_to_accept`: a citizen who accepted a privacy notice other
than the current one (`shared.privacy.notice.VERSION`) is asked to read and accept the
new one before the bot handles anything else they send. It reads only the citizen's row,
which every update has already loaded. It is not a standing: staff may still book for
them (a citizen who came by phone or to the desk hears the notice from staff).

Everything is read in one statement (`read_facts`): the citizen and, outer-joined, the
rows of which the database keeps at most one each (the intake, the open case, the active
booking, the open waitlist entry) with their helpdesk and slot. `decide` is the rule,
pure, for a caller that already holds the facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shared.booking.models import Booking, BookingState, Helpdesk, Slot, WaitlistEntry
from shared.booking.models import WaitlistState as Wait
from shared.cases.models import Case, CaseState
from shared.citizens.errors import CitizenNotFound
from shared.citizens.models import Citizen
from shared.intake.models import Intake, IntakeState
from shared.intake.questionnaire import Reason, assess
from shared.privacy import notice

if TYPE_CHECKING:
    from shared.settings import Settings


class StandingCode(StrEnum):
    NOT_CONSENTED = "not_consented"
    QUESTIONNAIRE = "questionnaire"
    NOT_ELIGIBLE = "not_eligible"
    BOOKED = "booked"
    OFFERED = "offered"
    WAITING = "waiting"
    MAY_BOOK = "may_book"


@dataclass(frozen=True, slots=True)
class NotConsented:
    code: ClassVar[StandingCode] = StandingCode.NOT_CONSENTED
    may_book: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class QuestionnaireToFinish:
    # None: never started (or erased); else in progress, in the summary, or expired.
    intake: Intake | None
    code: ClassVar[StandingCode] = StandingCode.QUESTIONNAIRE
    may_book: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class NotEligible:
    # The questionnaire's unmet requirements; none when a coordinator ruled them out.
    reasons: tuple[Reason, ...]
    by_coordinator: bool
    code: ClassVar[StandingCode] = StandingCode.NOT_ELIGIBLE
    may_book: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Booked:
    booking: Booking
    helpdesk: Helpdesk
    code: ClassVar[StandingCode] = StandingCode.BOOKED
    may_book: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Offered:
    """A place held for the citizen until `expires_at`: accept or decline it."""

    entry: WaitlistEntry
    slot: Slot
    helpdesk: Helpdesk
    expires_at: datetime
    code: ClassVar[StandingCode] = StandingCode.OFFERED
    may_book: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Waiting:
    entry: WaitlistEntry
    code: ClassVar[StandingCode] = StandingCode.WAITING
    may_book: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class MayBook:
    # Eligible by a coordinator's decision (whatever the questionnaire said).
    by_coordinator: bool = False
    code: ClassVar[StandingCode] = StandingCode.MAY_BOOK
    may_book: ClassVar[bool] = True


Standing = NotConsented | QuestionnaireToFinish | NotEligible | Booked | Offered | Waiting | MayBook


@dataclass(frozen=True, slots=True)
class Facts:
    """What a citizen's standing is decided from (each row at most one, or None)."""

    citizen: Citizen
    intake: Intake | None
    # The open case (a citizen has at most one).
    case: Case | None
    booking: Booking | None
    booking_helpdesk: Helpdesk | None
    # The waiting or offered waitlist entry, and the slot and helpdesk of its offer.
    entry: WaitlistEntry | None
    offered_slot: Slot | None
    offered_helpdesk: Helpdesk | None


_OPEN_WAIT = (Wait.WAITING.value, Wait.OFFERED.value)


async def read_facts(*, session: AsyncSession, citizen_id: int) -> Facts:
    """The citizen and what their standing depends on, in one statement."""
    booking_desk = aliased(Helpdesk)
    offered_slot = aliased(Slot)
    offered_desk = aliased(Helpdesk)
    query = (
        select(
            Citizen, Intake, Case, Booking, booking_desk, WaitlistEntry, offered_slot, offered_desk
        )
        .outerjoin(Intake, Intake.citizen_id == Citizen.id)
        .outerjoin(Case, and_(Case.citizen_id == Citizen.id, Case.state != CaseState.CLOSED.value))
        .outerjoin(
            Booking,
            and_(Booking.citizen_id == Citizen.id, Booking.state == BookingState.BOOKED.value),
        )
        .outerjoin(booking_desk, booking_desk.id == Booking.helpdesk_id)
        .outerjoin(
            WaitlistEntry,
            and_(WaitlistEntry.citizen_id == Citizen.id, WaitlistEntry.state.in_(_OPEN_WAIT)),
        )
        .outerjoin(offered_slot, offered_slot.id == WaitlistEntry.offered_slot_id)
        .outerjoin(offered_desk, offered_desk.id == offered_slot.helpdesk_id)
        .where(Citizen.id == citizen_id)
    )
    row = (await session.execute(query)).first()
    if row is None:
        raise CitizenNotFound(citizen_id)
    return Facts(*row)


def decide(facts: Facts, *, settings: Settings, now: datetime) -> Standing:
    """The citizen's standing from what `read_facts` read (the rule, in the module's order)."""
    if facts.citizen.consent_version is None:
        return NotConsented()
    intake = facts.intake
    if intake is None or intake.state != IntakeState.COMPLETED.value:
        return QuestionnaireToFinish(intake)
    case = facts.case
    # The case's rule (the coordinator's decision first); a case staff opened without a
    # questionnaire has no outcome of its own, the questionnaire's then stands.
    eligible = case.is_eligible if case is not None else None
    if eligible is None:
        eligible = intake.eligible
    by_coordinator = case is not None and case.eligibility_override is not None
    if not eligible:
        reasons = () if by_coordinator else assess(intake.answers, settings).reasons
        return NotEligible(reasons=reasons, by_coordinator=by_coordinator)
    if facts.booking is not None:
        assert facts.booking_helpdesk is not None  # a foreign key of the booking
        return Booked(facts.booking, facts.booking_helpdesk)
    entry = facts.entry
    if entry is not None:
        expires_at = entry.offer_expires_at
        slot, desk = facts.offered_slot, facts.offered_helpdesk
        if (
            entry.state == Wait.OFFERED.value
            and expires_at is not None
            and expires_at > now
            and slot is not None
            and desk is not None
        ):
            return Offered(entry, slot, desk, expires_at)
        return Waiting(entry)
    return MayBook(by_coordinator=by_coordinator)


async def citizen_standing(
    *, session: AsyncSession, settings: Settings, citizen_id: int, now: datetime
) -> Standing:
    """Where the citizen stands: what they must do before booking, or what they hold."""
    facts = await read_facts(session=session, citizen_id=citizen_id)
    return decide(facts, settings=settings, now=now)


def notice_to_accept(citizen: Citizen | None) -> bool:
    """Whether the citizen accepted a privacy notice other than the current one: they
    must read and accept the new one before anything else they ask is handled."""
    return (
        citizen is not None
        and citizen.consent_version is not None
        and citizen.consent_version != notice.VERSION
    )
