"""Booking and the waitlist ask the citizen's standing: who may not book is refused, with a code."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.booking import hours, waitlist
from shared.booking import service as booking
from shared.booking.errors import AlreadyBooked, BookingError, NotAllowedToBook
from shared.booking.models import Booking, BookingState, Slot, WaitlistEntry, WaitlistState
from shared.booking.service import CancelledBy
from shared.cases import service as cases
from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.citizens.standing import NotEligible
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from shared.staff.models import Role
from tests.factories import make_citizen, make_helpdesk, rome
from tests.shared.cases.builders import make_candidate, make_staff, member

NOW = rome(2026, 12, 7, 8)
TUESDAY_9 = rome(2026, 12, 8, 9)
WEDNESDAY_9 = rome(2026, 12, 9, 9)

_coordinators = itertools.count()
# How each citizen who may not book is made, and the code of the refusal.
REFUSED = {
    "not_consented": {"consented": False},
    "questionnaire": {"eligible": None},
    "not_eligible": {"eligible": False},
}


async def _count(session: AsyncSession, model: type[object]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _nothing_written(session: AsyncSession) -> None:
    assert [await _count(session, m) for m in (Booking, Slot, OutboxMessage, Case)] == [0, 0, 0, 0]
    assert await _count(session, WaitlistEntry) == 0
    created = await session.scalar(
        select(func.count()).where(AuditEvent.action.in_(("booking.create", "waitlist.join")))
    )
    assert created == 0


async def _book(
    session: AsyncSession, settings: Settings, citizen: Citizen, helpdesk_id: int
) -> Booking:
    return await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk_id,
        starts_at=TUESDAY_9, actor="staff:test", now=NOW, confirm_by_message=True,
    )  # fmt: skip


async def _decide(
    session: AsyncSession, settings: Settings, case: Case, eligible: bool | None
) -> None:
    anna = member(await make_staff(session, f"anna{next(_coordinators)}", Role.COORDINATORE))
    await cases.override_eligibility(
        session=session, settings=settings, case_id=case.id, eligible=eligible,
        reason="Visto il caso", staff=anna, now=NOW,
    )  # fmt: skip


@pytest.mark.parametrize("code", list(REFUSED))
async def test_book_slot_refuses_who_may_not_book(
    session: AsyncSession, settings: Settings, code: str
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session, **REFUSED[code])
    with pytest.raises(NotAllowedToBook) as refused:
        await _book(session, settings, citizen, helpdesk.id)
    assert isinstance(refused.value, BookingError)
    assert (refused.value.code, refused.value.standing.code) == (code, code)
    await _nothing_written(session)


@pytest.mark.parametrize("code", list(REFUSED))
async def test_join_waitlist_refuses_who_may_not_book(
    session: AsyncSession, settings: Settings, code: str
) -> None:
    # No helpdesk, nothing free: only the standing can refuse.
    citizen = await make_citizen(session, **REFUSED[code])
    with pytest.raises(NotAllowedToBook) as refused:
        await waitlist.join_waitlist(
            session=session, settings=settings, citizen_id=citizen.id, now=NOW
        )
    assert refused.value.code == code
    await _nothing_written(session)


async def test_the_reasons_travel_with_the_refusal(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session, eligible=False)
    with pytest.raises(NotAllowedToBook) as refused:
        await _book(session, settings, citizen, helpdesk.id)
    standing = refused.value.standing
    assert isinstance(standing, NotEligible)
    assert [r.key for r in standing.reasons] == ["not_resident"]


async def test_a_coordinators_decision_opens_and_closes_booking(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, places=2)
    admitted, admitted_case = await make_candidate(
        session, eligible=False, answers={"residence": "no"}
    )
    ruled_out, ruled_out_case = await make_candidate(session, name="Luigi Verdi")
    await _decide(session, settings, admitted_case, True)
    await _decide(session, settings, ruled_out_case, False)
    made = await _book(session, settings, admitted, helpdesk.id)
    assert (made.citizen_id, made.state) == (admitted.id, BookingState.BOOKED)
    with pytest.raises(NotAllowedToBook) as refused:
        await _book(session, settings, ruled_out, helpdesk.id)
    assert refused.value.code == "not_eligible"
    assert refused.value.standing == NotEligible(reasons=(), by_coordinator=True)
    assert await _count(session, Booking) == 1


async def test_a_booked_citizen_ruled_out_can_not_move_it(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen, case = await make_candidate(session)
    made = await _book(session, settings, citizen, helpdesk.id)
    await _decide(session, settings, case, False)
    with pytest.raises(NotAllowedToBook):
        await booking.move_booking(
            session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk.id,
            starts_at=WEDNESDAY_9, by=CancelledBy.STAFF, actor="staff:test", now=NOW,
        )  # fmt: skip
    await session.refresh(made)
    assert (made.state, made.starts_at) == (BookingState.BOOKED, TUESDAY_9)
    # Still one booking, the same: a second one is refused for what it is.
    with pytest.raises(NotAllowedToBook):
        await _book(session, settings, citizen, helpdesk.id)
    await _decide(session, settings, case, None)
    with pytest.raises(AlreadyBooked):
        await _book(session, settings, citizen, helpdesk.id)


async def test_an_offer_is_not_taken_by_a_citizen_ruled_out_meanwhile(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, weekdays=())
    await hours.add_extra_opening(
        session=session, helpdesk_id=helpdesk.id, day=date(2026, 12, 9), opens_at=WEDNESDAY_9.time(),
        closes_at=(WEDNESDAY_9 + timedelta(minutes=30)).time(), slot_minutes=30, places=1, actor="t",
    )  # fmt: skip
    holder = await make_citizen(session, name="Anna Bianchi")
    taken = await booking.book_slot(
        session=session, settings=settings, citizen_id=holder.id, helpdesk_id=helpdesk.id,
        starts_at=WEDNESDAY_9, actor="t", now=NOW,
    )  # fmt: skip
    citizen, case = await make_candidate(session)
    entry = await waitlist.join_waitlist(
        session=session, settings=settings, citizen_id=citizen.id, now=NOW
    )
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=taken.id, by=CancelledBy.CITIZEN,
        actor=f"citizen:{holder.id}", now=NOW,
    )  # fmt: skip
    await session.refresh(entry)
    assert entry.state == WaitlistState.OFFERED
    await _decide(session, settings, case, False)
    with pytest.raises(NotAllowedToBook):
        await waitlist.accept_offer(
            session=session, settings=settings, entry_id=entry.id, citizen_id=citizen.id,
            now=NOW + timedelta(minutes=1),
        )  # fmt: skip
    await session.refresh(entry)
    assert entry.state == WaitlistState.OFFERED
    assert await session.scalar(select(func.count()).where(Booking.citizen_id == citizen.id)) == 0
