"""Where a citizen stands: every standing, the coordinator's decision first, one statement."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import hours, waitlist
from shared.booking import service as booking
from shared.booking.models import Booking
from shared.booking.service import CancelledBy
from shared.cases import service as cases
from shared.citizens.errors import CitizenNotFound
from shared.citizens.standing import (
    Booked,
    MayBook,
    NotConsented,
    NotEligible,
    Offered,
    QuestionnaireToFinish,
    Standing,
    StandingCode,
    Waiting,
    citizen_standing,
)
from shared.db import Database
from shared.intake import service as intake_service
from shared.settings import Settings
from shared.staff.models import Role
from tests.factories import make_citizen, make_helpdesk, rome
from tests.shared.cases.builders import make_candidate, make_staff, member

# Monday 7 December 2026, 08:00; the helpdesk of `make_helpdesk` opens at 09:00.
NOW = rome(2026, 12, 7, 8)
TUESDAY_9 = rome(2026, 12, 8, 9)
WEDNESDAY_9 = rome(2026, 12, 9, 9)


async def _standing(session: AsyncSession, settings: Settings, citizen_id: int) -> Standing:
    return await citizen_standing(
        session=session, settings=settings, citizen_id=citizen_id, now=NOW
    )


async def _book(
    session: AsyncSession, settings: Settings, citizen_id: int, helpdesk_id: int
) -> Booking:
    return await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen_id, helpdesk_id=helpdesk_id,
        starts_at=TUESDAY_9, actor="staff:test", now=NOW,
    )  # fmt: skip


async def test_without_consent_nothing_else_counts(
    session: AsyncSession, settings: Settings
) -> None:
    citizen = await make_citizen(session, consented=False)
    standing = await _standing(session, settings, citizen.id)
    assert standing == NotConsented()
    assert (standing.code, standing.may_book) == (StandingCode.NOT_CONSENTED, False)


async def test_a_questionnaire_not_completed_is_to_finish(
    session: AsyncSession, settings: Settings
) -> None:
    citizen = await make_citizen(session, eligible=None)
    assert await _standing(session, settings, citizen.id) == QuestionnaireToFinish(intake=None)
    started = await intake_service.start_intake(session=session, citizen_id=citizen.id, now=NOW)
    standing = await _standing(session, settings, citizen.id)
    assert isinstance(standing, QuestionnaireToFinish) and standing.intake is started
    # Restarting a confirmed questionnaire: to finish again, even with a case open.
    eligible, _case = await make_candidate(session, name="Luigi Verdi")
    await intake_service.start_intake(session=session, citizen_id=eligible.id, now=NOW)
    assert (await _standing(session, settings, eligible.id)).code == StandingCode.QUESTIONNAIRE


async def test_not_eligible_by_the_questionnaire_gives_its_reasons(
    session: AsyncSession, settings: Settings
) -> None:
    citizen = await make_citizen(session, eligible=False)
    standing = await _standing(session, settings, citizen.id)
    assert isinstance(standing, NotEligible)
    assert [r.key for r in standing.reasons] == ["not_resident"]
    assert standing.by_coordinator is False
    # The same with a case open (the case copies the questionnaire's outcome).
    _c, case = await make_candidate(session, eligible=False, answers={"residence": "no"})
    standing = await _standing(session, settings, case.citizen_id)
    assert isinstance(standing, NotEligible) and not standing.by_coordinator
    assert [r.key for r in standing.reasons] == ["not_resident"]


async def test_the_coordinators_decision_comes_first(
    session: AsyncSession, settings: Settings
) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    helpdesk = await make_helpdesk(session)
    ruled_out, ruled_out_case = await make_candidate(
        session, eligible=False, answers={"residence": "no"}
    )
    admitted, admitted_case = await make_candidate(session, name="Luigi Verdi")

    async def decide(case_id: int, eligible: bool | None) -> None:
        await cases.override_eligibility(
            session=session, settings=settings, case_id=case_id, eligible=eligible,
            reason="Visto il caso" if eligible is not None else "", staff=anna, now=NOW,
        )  # fmt: skip

    # Eligible by a coordinator, whatever the questionnaire said: they may book, and do.
    await decide(ruled_out_case.id, True)
    assert await _standing(session, settings, ruled_out.id) == MayBook(by_coordinator=True)
    made = await _book(session, settings, ruled_out.id, helpdesk.id)
    assert await _standing(session, settings, ruled_out.id) == Booked(made, helpdesk)

    # Ruled out by a coordinator, whatever the questionnaire said: no reasons of its own.
    assert await _standing(session, settings, admitted.id) == MayBook(by_coordinator=False)
    await decide(admitted_case.id, False)
    assert await _standing(session, settings, admitted.id) == NotEligible(
        reasons=(), by_coordinator=True
    )
    # Taking the decision back: the questionnaire's outcome stands again.
    await decide(admitted_case.id, None)
    assert await _standing(session, settings, admitted.id) == MayBook(by_coordinator=False)


async def test_ruled_out_comes_before_a_booking_they_hold(
    session: AsyncSession, settings: Settings
) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    helpdesk = await make_helpdesk(session)
    citizen, case = await make_candidate(session)
    await _book(session, settings, citizen.id, helpdesk.id)
    await cases.override_eligibility(
        session=session, settings=settings, case_id=case.id, eligible=False,
        reason="Non residente", staff=anna, now=NOW,
    )  # fmt: skip
    assert (await _standing(session, settings, citizen.id)).code == StandingCode.NOT_ELIGIBLE


async def test_booked_then_free_to_book_again_once_cancelled(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen = await make_citizen(session)
    assert await _standing(session, settings, citizen.id) == MayBook()
    made = await _book(session, settings, citizen.id, helpdesk.id)
    standing = await _standing(session, settings, citizen.id)
    assert standing == Booked(made, helpdesk)
    assert (standing.code, standing.may_book) == (StandingCode.BOOKED, False)
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=made.id, by=CancelledBy.CITIZEN,
        actor=f"citizen:{citizen.id}", now=NOW,
    )  # fmt: skip
    assert await _standing(session, settings, citizen.id) == MayBook()


async def test_waiting_then_offered_then_waiting_when_the_offer_lapses(
    session: AsyncSession, settings: Settings
) -> None:
    # One place on Wednesday only, taken: nothing else is free within the horizon.
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
    citizen = await make_citizen(session)
    entry = await waitlist.join_waitlist(
        session=session, settings=settings, citizen_id=citizen.id, now=NOW
    )
    standing = await _standing(session, settings, citizen.id)
    assert standing == Waiting(entry)
    assert standing.may_book is True  # a free place may still be booked for them

    await booking.cancel_booking(
        session=session, settings=settings, booking_id=taken.id, by=CancelledBy.CITIZEN,
        actor=f"citizen:{holder.id}", now=NOW,
    )  # fmt: skip
    standing = await _standing(session, settings, citizen.id)
    assert isinstance(standing, Offered)
    assert (standing.entry, standing.helpdesk, standing.slot.starts_at) == (
        entry, helpdesk, WEDNESDAY_9,
    )  # fmt: skip
    assert standing.expires_at == entry.offer_expires_at and standing.expires_at > NOW
    # Lapsed, not yet passed on by the expiry job: waiting, not offered.
    later = standing.expires_at + timedelta(seconds=1)
    lapsed = await citizen_standing(
        session=session, settings=settings, citizen_id=citizen.id, now=later
    )
    assert lapsed == Waiting(entry)


async def test_an_unknown_citizen_is_an_error(session: AsyncSession, settings: Settings) -> None:
    with pytest.raises(CitizenNotFound):
        await _standing(session, settings, 424242)


async def test_read_in_one_statement(database: Database, settings: Settings) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        citizen, _case = await make_candidate(session)
        await _book(session, settings, citizen.id, helpdesk.id)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with database.transaction(read_only=True) as session:
            standing = await _standing(session, settings, citizen.id)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert isinstance(standing, Booked)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
