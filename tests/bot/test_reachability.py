"""A citizen who blocked the bot and writes to it again can be reached again (and staff see it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select
from telegram.ext import Application

from shared.audit.models import AuditEvent
from shared.booking import service as booking
from shared.booking.service import CancelledBy
from shared.cases import view
from shared.citizens.models import Citizen
from shared.db import Database
from shared.outbox import service as outbox
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from shared.staff.models import Role
from tests.bot.fake_telegram import Call, FakeTelegram
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.factories import make_helpdesk
from tests.shared.cases.builders import NOW, book, make_candidate, make_staff, member

USER_ID = 4242

Write = Callable[[TelegramUser], Awaitable[list[Call]]]
UPDATES: dict[str, Write] = {
    "/start": lambda user: user.say("/start"),
    "/prenotazione": lambda user: user.say("/prenotazione"),
    "a button of an old message": lambda user: user.press("mv:1"),
    "a photo": lambda user: user.send(
        photo=[{"file_id": "p1", "file_unique_id": "p1u", "width": 90, "height": 90}]
    ),
}


@pytest.mark.parametrize("update", list(UPDATES))
async def test_any_update_from_a_citizen_who_blocked_the_bot_clears_the_mark(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    update: str,
) -> None:
    async with database.transaction() as session:
        citizen, case = await make_candidate(session, telegram_id=USER_ID)
        helpdesk = await make_helpdesk(session)
        booked = await book(session, bot_settings, citizen, helpdesk)
        coordinator = await make_staff(session, "anna", Role.COORDINATORE)
        citizen_id, case_id, booking_id = citizen.id, case.id, booked.id
    # A reminder was refused with 403: the citizen blocked the bot.
    async with database.transaction() as session:
        await outbox.mark_citizen_unreachable(
            session=session,
            citizen_id=citizen_id,
            now=NOW,
            error="Forbidden: bot was blocked by the user",
        )

    # They unblock it and write again: whatever they send, they can be reached again.
    await UPDATES[update](TelegramUser(bot_app, fake, USER_ID))
    async with database.transaction(read_only=True) as session:
        assert (await session.get_one(Citizen, citizen_id)).unreachable is False

    # So a later cancellation by staff reaches them.
    async with database.transaction() as session:
        await booking.cancel_booking(
            session=session,
            settings=bot_settings,
            booking_id=booking_id,
            by=CancelledBy.STAFF,
            actor="staff:anna",
            reason="Sportello chiuso",
            now=NOW,
        )
        queued = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "booking_cancelled", OutboxMessage.state == "pending")
        )
        assert queued == 1

        # The case page tells the story: unreachable, then reachable again.
        detail = await view.get_case_detail(
            session=session, case_id=case_id, staff=member(coordinator), now=NOW
        )
    events = [(e.what, e.who) for e in detail.timeline if e.kind == "event"]
    assert ("citizen.unreachable", "telegram") in events
    assert ("citizen.reachable", f"citizen:{citizen_id}") in events
    assert events.index(("citizen.reachable", f"citizen:{citizen_id}")) < events.index(
        ("citizen.unreachable", "telegram")
    )  # the newest first


async def test_an_update_from_a_reachable_citizen_records_nothing(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    async with database.transaction() as session:
        citizen, _case = await make_candidate(session, telegram_id=USER_ID)
        citizen_id = citizen.id
    await TelegramUser(bot_app, fake, USER_ID).say("/start")
    async with database.transaction(read_only=True) as session:
        assert (await session.get_one(Citizen, citizen_id)).unreachable is False
        recorded = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action.in_(("citizen.reachable", "citizen.unreachable")))
        )
    assert recorded == 0
