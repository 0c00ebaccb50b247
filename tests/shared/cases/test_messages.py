"""A coordinator admits a citizen who could not book: they are told on Telegram (outbox)."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases import messages
from shared.cases import service as cases
from shared.cases.models import Case
from shared.outbox.models import MessageState, OutboxMessage
from shared.settings import Settings
from shared.staff.models import Role
from tests.factories import make_helpdesk
from tests.shared.cases.builders import NOW, book, make_candidate, make_staff, member

_telegram_ids = itertools.count(7000)
RULED_OUT = {"eligible": False, "answers": {"residence": "no"}}


async def _decide(
    session: AsyncSession, settings: Settings, case: Case, eligible: bool | None, minutes: int = 0
) -> None:
    coordinator = member(await make_staff(session, f"anna{next(_telegram_ids)}", Role.COORDINATORE))
    await cases.override_eligibility(
        session=session, settings=settings, case_id=case.id, eligible=eligible,
        reason="" if eligible is None else "Residente da gennaio", staff=coordinator,
        now=NOW + timedelta(minutes=minutes),
    )  # fmt: skip


async def _messages(session: AsyncSession) -> list[OutboxMessage]:
    return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def test_admitting_a_ruled_out_citizen_tells_them_they_can_book(
    session: AsyncSession, settings: Settings
) -> None:
    citizen, case = await make_candidate(session, telegram_id=next(_telegram_ids), **RULED_OUT)
    await _decide(session, settings, case, True)
    (sent,) = await _messages(session)
    assert (sent.kind, sent.citizen_id, sent.payload, sent.state) == (
        messages.MessageKind.CASE_ELIGIBLE.value, citizen.id, {"case_id": case.id},
        MessageState.PENDING.value,
    )  # fmt: skip
    assert (sent.subject, sent.due_at) == (f"case:{case.id}:eligibility", NOW)
    # Deciding the same again (a better reason): told once.
    await _decide(session, settings, case, True, minutes=5)
    assert len(await _messages(session)) == 1


async def test_taking_the_decision_back_withdraws_the_message_and_a_new_one_tells_again(
    session: AsyncSession, settings: Settings
) -> None:
    _citizen, case = await make_candidate(session, telegram_id=next(_telegram_ids), **RULED_OUT)
    await _decide(session, settings, case, True)
    await _decide(session, settings, case, None, minutes=1)
    (withdrawn,) = await _messages(session)
    assert withdrawn.state == MessageState.CANCELLED.value
    await _decide(session, settings, case, True, minutes=2)
    states = [m.state for m in await _messages(session)]
    assert states == [MessageState.CANCELLED.value, MessageState.PENDING.value]


async def test_nothing_is_queued_when_nothing_changes_for_the_citizen(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, places=3)
    # Eligible by the questionnaire already: a confirming decision tells nothing new.
    _c1, already = await make_candidate(
        session, name="Anna Bianchi", telegram_id=next(_telegram_ids)
    )
    await _decide(session, settings, already, True)
    # No Telegram chat (came by phone): staff tell them.
    _c2, by_phone = await make_candidate(session, name="Luigi Verdi", **RULED_OUT)
    await _decide(session, settings, by_phone, True)
    # Booked, ruled out, then admitted again: they already hold their booking.
    booked_citizen, booked = await make_candidate(
        session, name="Carla Neri", telegram_id=next(_telegram_ids)
    )
    await book(session, settings, booked_citizen, helpdesk)
    await _decide(session, settings, booked, False)
    await _decide(session, settings, booked, True, minutes=1)
    # Ruling out tells nothing either.
    _c4, ruled = await make_candidate(session, name="Dario Blu", telegram_id=next(_telegram_ids))
    await _decide(session, settings, ruled, False)
    assert all(m.kind != messages.MessageKind.CASE_ELIGIBLE.value for m in await _messages(session))
