"""The outbox reaches citizens on Telegram: producer → outbox → dispatcher → Bot API (J3).

Messages are made by the real producers (booking, staff actions, waitlist, housekeeping)
and sent by `OutboxDispatcher` through the real PTB bot (with its rate limiter) to the
fake Bot API. The dispatcher's clock is controlled; pacing uses real (monotonic) time.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import pytest
from sqlalchemy import select, update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application

from bot.delivery import Failed, OutboxDispatcher, Retry, Unreachable, outcome_of
from shared.booking import service as booking_service
from shared.booking import waitlist
from shared.booking.service import CancelledBy
from shared.citizens.models import Citizen
from shared.db import Database
from shared.housekeeping import run_chores
from shared.intake import service as intake
from shared.outbox import service as outbox
from shared.outbox.models import MessageState, OutboxMessage
from shared.settings import Settings
from tests.bot.clock import VirtualTimer, most_in_one_second
from tests.bot.fake_telegram import Call, FakeTelegram, ScriptedError
from tests.factories import make_citizen, make_helpdesk, rome

# A Tuesday in summer time: 09:30 in Rome is 07:30 UTC.
BOOKED_AT = rome(2026, 6, 5, 10)
APPOINTMENT = rome(2026, 6, 9, 9, 30)
DAY_BEFORE = rome(2026, 6, 8, 18)  # settings.reminder_day_before_hour
HOURS_BEFORE = rome(2026, 6, 9, 6, 30)  # settings.reminder_hours_before = 3
HELPDESK_NAME = "Sportello Villa & Parco"

REMINDER_BUTTONS = ["✅ Ci sarò", "🔁 Sposta", "❌ Annulla"]


class FlakyTelegram(FakeTelegram):
    """The fake Bot API, plus connections that drop and the moment of every call (by
    `timer`: real monotonic time unless a test gives the dispatchers' virtual one)."""

    def __init__(self) -> None:
        super().__init__()
        self.drops: dict[str, list[Exception]] = {}
        self.stamps: list[tuple[str, int | None, float]] = []
        self.timer: Callable[[], float] = time.monotonic

    def drop_next(self, method: str, error: Exception) -> None:
        """The next call of `method` never gets an HTTP answer: PTB raises `error`."""
        self.drops.setdefault(method, []).append(error)

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: Any = None,
        read_timeout: object = None,
        write_timeout: object = None,
        connect_timeout: object = None,
        pool_timeout: object = None,
    ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        chat = request_data.parameters.get("chat_id") if request_data is not None else None
        self.stamps.append((api_method, None if chat is None else int(chat), self.timer()))
        dropped = self.drops.get(api_method)
        if dropped:
            self.calls.append(Call(f"{api_method}!dropped", dict(request_data.parameters)))
            raise dropped.pop(0)
        return await super().do_request(
            url,
            method,
            request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )


@pytest.fixture
def fake() -> FlakyTelegram:
    return FlakyTelegram()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment.astimezone(UTC)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass(frozen=True)
class Booked:
    citizen_id: int
    chat_id: int
    booking_id: int
    code: str


@pytest.fixture
async def helpdesk_id(database: Database) -> int:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, name=HELPDESK_NAME, places=30)
        helpdesk.directions = "Secondo piano, porta <B>"
        return helpdesk.id


async def book(
    database: Database,
    settings: Settings,
    helpdesk_id: int,
    *,
    starts_at: datetime = APPOINTMENT,
    language: str = "it",
    by_staff: bool = False,
) -> Booked:
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        citizen.language = language
        booking = await booking_service.book_slot(
            session=session,
            settings=settings,
            citizen_id=citizen.id,
            helpdesk_id=helpdesk_id,
            starts_at=starts_at,
            actor="staff:1" if by_staff else f"citizen:{citizen.id}",
            now=BOOKED_AT,
            confirm_by_message=by_staff,
        )
        assert citizen.telegram_chat_id is not None
        return Booked(citizen.id, citizen.telegram_chat_id, booking.id, booking.code)


def dispatcher(
    app: Application,  # type: ignore[type-arg]
    database: Database,
    settings: Settings,
    clock: Callable[[], datetime],
    worker: str = "w1",
    **options: Any,
) -> OutboxDispatcher:
    options.setdefault("per_chat_interval", 0.0)
    return OutboxDispatcher(
        bot=app.bot, database=database, settings=settings, worker=worker, clock=clock, **options
    )


async def rows(database: Database) -> list[OutboxMessage]:
    async with database.transaction(read_only=True) as session:
        return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def rows_of(database: Database, citizen_id: int) -> dict[str, OutboxMessage]:
    return {m.kind: m for m in await rows(database) if m.citizen_id == citizen_id}


def retry_time(message: OutboxMessage) -> datetime:
    assert message.retry_at is not None
    return message.retry_at


def to_chat(fake: FakeTelegram, chat_id: int, method: str = "sendMessage") -> list[Call]:
    return [c for c in fake.calls if c.method == method and c.params.get("chat_id") == chat_id]


# --- reminders ------------------------------------------------------------------------


async def test_reminder_is_delivered_once_with_buttons_and_rome_time(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id)
    clock = Clock(DAY_BEFORE)
    sender = dispatcher(bot_app, database, bot_settings, clock)

    assert await sender.run_once() == 1
    [reminder] = fake.sent("sendMessage")
    assert reminder.params["chat_id"] == booked.chat_id
    assert reminder.params["parse_mode"] == "HTML"
    text = reminder.text
    assert "domani" in text
    assert "martedì 9 giugno" in text
    assert "<b>09:30</b>" in text
    assert "07:30" not in text
    assert booked.code in text
    assert "Sportello Villa &amp; Parco" in text
    assert "Via Roma 1, Cernusco sul Naviglio" in text
    assert "porta &lt;B&gt;" in text
    assert "documento d'identità" in text
    assert reminder.buttons == [
        ("✅ Ci sarò", f"here:{booked.booking_id}"),
        ("🔁 Sposta", f"mv:{booked.booking_id}"),
        ("❌ Annulla", f"cx:{booked.booking_id}"),
    ]
    # Sent once: a second round finds nothing, even later the same evening.
    assert await sender.run_once() == 0
    clock.advance(hours=1)
    assert await sender.run_once() == 0
    assert len(fake.sent("sendMessage")) == 1
    states = await rows_of(database, booked.citizen_id)
    assert states["reminder_day_before"].state == MessageState.SENT
    assert states["reminder_day_before"].sent_at == DAY_BEFORE
    assert states["reminder_hours_before"].state == MessageState.PENDING

    # The morning of the appointment, the second reminder says "today".
    clock.set(HOURS_BEFORE)
    assert await sender.run_once() == 1
    second = fake.sent("sendMessage")[-1]
    assert "oggi" in second.text
    assert "<b>09:30</b>" in second.text
    assert [label for label, _ in second.buttons] == REMINDER_BUTTONS
    assert await sender.run_once() == 0
    assert len(fake.sent("sendMessage")) == 2


async def test_reminder_in_the_citizens_language(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id, language="en")
    sender = dispatcher(bot_app, database, bot_settings, Clock(DAY_BEFORE))
    assert await sender.run_once() == 1
    [reminder] = fake.sent("sendMessage")
    assert "tomorrow" in reminder.text
    assert "Tuesday 9 June" in reminder.text
    assert "<b>09:30</b>" in reminder.text
    assert reminder.buttons == [
        ("✅ I'll be there", f"here:{booked.booking_id}"),
        ("🔁 Move", f"mv:{booked.booking_id}"),
        ("❌ Cancel", f"cx:{booked.booking_id}"),
    ]


async def test_reminder_of_a_cancelled_booking_is_not_sent(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id)
    async with database.transaction() as session:
        await booking_service.cancel_booking(
            session=session,
            settings=bot_settings,
            booking_id=booked.booking_id,
            by=CancelledBy.CITIZEN,
            actor=f"citizen:{booked.citizen_id}",
            now=BOOKED_AT + timedelta(hours=1),
        )
    clock = Clock(DAY_BEFORE)
    sender = dispatcher(bot_app, database, bot_settings, clock)
    assert await sender.run_once() == 0
    clock.set(HOURS_BEFORE)
    assert await sender.run_once() == 0
    assert fake.calls == [c for c in fake.calls if c.method == "getMe"]
    assert {m.state for m in await rows(database)} == {MessageState.CANCELLED}


async def test_reminder_claimed_before_the_booking_was_cancelled_is_withdrawn(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id)
    # A dispatcher claims the reminder and dies; meanwhile the citizen cancels, which
    # withdraws only the pending messages: the claimed one is still `sending`.
    async with database.transaction() as session:
        [claimed] = await outbox.claim_due(session=session, worker="dead", now=DAY_BEFORE)
        await booking_service.cancel_booking(
            session=session,
            settings=bot_settings,
            booking_id=booked.booking_id,
            by=CancelledBy.CITIZEN,
            actor=f"citizen:{booked.citizen_id}",
            now=DAY_BEFORE,
        )
    clock = Clock(DAY_BEFORE + timedelta(minutes=5))
    assert await dispatcher(bot_app, database, bot_settings, clock).run_once() == 1
    assert fake.sent("sendMessage") == []
    withdrawn = (await rows_of(database, booked.citizen_id))["reminder_day_before"]
    assert withdrawn.id == claimed.id
    assert withdrawn.state == MessageState.CANCELLED
    assert withdrawn.last_error is not None
    assert "cancelled_by_citizen" in withdrawn.last_error


async def test_reminder_after_the_appointment_started_is_withdrawn(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    # E.g. the bot was down for the whole morning: a late reminder would only confuse.
    booked = await book(database, bot_settings, helpdesk_id)
    sender = dispatcher(bot_app, database, bot_settings, Clock(APPOINTMENT + timedelta(minutes=1)))
    assert await sender.run_once() == 2
    assert fake.sent("sendMessage") == []
    states = await rows_of(database, booked.citizen_id)
    assert {m.state for m in states.values()} == {MessageState.CANCELLED}
    assert "already started" in (states["reminder_hours_before"].last_error or "")


# --- staff actions and the waitlist -------------------------------------------------


async def test_booking_made_by_staff_is_confirmed_with_a_calendar_file(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id, by_staff=True)
    sender = dispatcher(bot_app, database, bot_settings, Clock(BOOKED_AT))
    assert await sender.run_once() == 1
    [confirmation] = to_chat(fake, booked.chat_id)
    assert "prenotato" in confirmation.text
    assert "martedì 9 giugno" in confirmation.text
    assert "<b>09:30</b>" in confirmation.text
    assert booked.code in confirmation.text
    assert "/prenotazione" in confirmation.text
    assert confirmation.buttons == [
        ("🔁 Sposta", f"mv:{booked.booking_id}"),
        ("❌ Annulla", f"cx:{booked.booking_id}"),
    ]
    [document] = to_chat(fake, booked.chat_id, "sendDocument")
    [ics] = document.files.values()
    assert b"BEGIN:VCALENDAR" in ics
    assert b"DTSTART;TZID=Europe/Rome:20260609T093000" in ics
    assert f"booking-{booked.code}@ripartire".encode() in ics
    # The text comes first, then the file.
    methods = [c.method for c in fake.calls if c.method != "getMe"]
    assert methods == ["sendMessage", "sendDocument"]
    assert (await rows_of(database, booked.citizen_id))["booking_confirmed"].state == "sent"


async def test_calendar_file_failure_does_not_send_the_text_again(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id, by_staff=True)
    fake.fail_next("sendDocument", ScriptedError(500, "Internal Server Error"))
    clock = Clock(BOOKED_AT)
    sender = dispatcher(bot_app, database, bot_settings, clock)
    assert await sender.run_once() == 1
    clock.advance(hours=1)
    assert await sender.run_once() == 0
    assert len(to_chat(fake, booked.chat_id)) == 1
    assert (await rows_of(database, booked.citizen_id))["booking_confirmed"].state == "sent"


async def test_staff_move_and_cancellation_reach_the_citizen(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id)
    moved_at = rome(2026, 6, 6, 9)
    async with database.transaction() as session:
        new = await booking_service.move_booking(
            session=session,
            settings=bot_settings,
            booking_id=booked.booking_id,
            helpdesk_id=helpdesk_id,
            starts_at=rome(2026, 6, 10, 10),
            by=CancelledBy.STAFF,
            actor="staff:1",
            now=moved_at,
        )
        new_id, new_code = new.id, new.code
    clock = Clock(moved_at)
    sender = dispatcher(bot_app, database, bot_settings, clock)
    assert await sender.run_once() == 1
    [moved] = to_chat(fake, booked.chat_id)
    assert "spostato" in moved.text
    assert "mercoledì 10 giugno" in moved.text
    assert "<b>10:00</b>" in moved.text
    assert new_code in moved.text
    assert moved.buttons == [("🔁 Sposta", f"mv:{new_id}"), ("❌ Annulla", f"cx:{new_id}")]
    [document] = to_chat(fake, booked.chat_id, "sendDocument")
    assert b"DTSTART;TZID=Europe/Rome:20260610T100000" in next(iter(document.files.values()))

    cancelled_at = rome(2026, 6, 7, 11)
    async with database.transaction() as session:
        await booking_service.cancel_booking(
            session=session,
            settings=bot_settings,
            booking_id=new_id,
            by=CancelledBy.STAFF,
            actor="staff:1",
            reason="Sportello chiuso <sciopero>",
            now=cancelled_at,
        )
    clock.set(cancelled_at)
    assert await sender.run_once() == 1
    cancelled = to_chat(fake, booked.chat_id)[-1]
    assert "Ci dispiace" in cancelled.text
    assert "mercoledì 10 giugno alle 10:00" in cancelled.text
    assert "Sportello chiuso &lt;sciopero&gt;" in cancelled.text
    assert "/prenotazione" in cancelled.text
    assert "331 693 8049" in cancelled.text
    assert cancelled.buttons == []
    # The reminders of both bookings were withdrawn: nothing else ever goes out.
    clock.set(rome(2026, 6, 10, 9))
    assert await sender.run_once() == 0
    assert len(to_chat(fake, booked.chat_id)) == 2


async def test_no_show_is_offered_a_new_booking_and_stale_reminders_are_dropped(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id)
    after = APPOINTMENT + timedelta(hours=1)
    async with database.transaction() as session:
        await booking_service.mark_no_show(
            session=session,
            settings=bot_settings,
            booking_id=booked.booking_id,
            actor="staff:1",
            now=after,
        )
    # The bot was down: both reminders are still due, but make no sense now.
    clock = Clock(after)
    sender = dispatcher(bot_app, database, bot_settings, clock)
    assert await sender.run_once() == 2
    assert to_chat(fake, booked.chat_id) == []
    # The offer to book again goes out the next day at ten.
    clock.set(rome(2026, 6, 10, 10))
    assert await sender.run_once() == 1
    [offer] = to_chat(fake, booked.chat_id)
    assert "Non ti abbiamo visto" in offer.text
    assert "martedì 9 giugno alle 09:30" in offer.text
    assert "/prenotazione" in offer.text
    assert "/start" in offer.text
    states = await rows_of(database, booked.citizen_id)
    assert states["rebook_after_no_show"].state == MessageState.SENT
    assert states["reminder_day_before"].state == MessageState.CANCELLED


@pytest.fixture
def short_horizon(bot_settings: Settings) -> Settings:
    """Bookable: only Tuesday 9 June, as seen from `BOOKED_AT`."""
    return bot_settings.model_copy(update={"booking_horizon_days": 5})


async def _offer_freed_place(database: Database, settings: Settings) -> tuple[int, int, int]:
    """A takes the only place, B waits, A cancels: (B's citizen id, chat id, entry id)."""
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(
            session, weekdays=(1,), opens_at=clock_time(9), closes_at=clock_time(9, 30)
        )
        first = await make_citizen(session)
        second = await make_citizen(session)
        taken = await booking_service.book_slot(
            session=session,
            settings=settings,
            citizen_id=first.id,
            helpdesk_id=helpdesk.id,
            starts_at=rome(2026, 6, 9, 9),
            actor="citizen",
            now=BOOKED_AT,
        )
        entry = await waitlist.join_waitlist(
            session=session, settings=settings, citizen_id=second.id, now=BOOKED_AT
        )
        await booking_service.cancel_booking(
            session=session,
            settings=settings,
            booking_id=taken.id,
            by=CancelledBy.CITIZEN,
            actor="citizen",
            now=OFFERED_AT,
        )
        assert second.telegram_chat_id is not None
        return second.id, second.telegram_chat_id, entry.id


OFFERED_AT = rome(2026, 6, 6, 10)


async def test_waitlist_offer_and_its_expiry(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    short_horizon: Settings,
) -> None:
    citizen_id, chat_id, entry_id = await _offer_freed_place(database, short_horizon)
    clock = Clock(OFFERED_AT)
    sender = dispatcher(bot_app, database, short_horizon, clock)
    assert await sender.run_once() == 1
    [offer] = fake.sent("sendMessage")
    assert offer.params["chat_id"] == chat_id
    assert "Si è liberato un posto" in offer.text
    assert "martedì 9 giugno" in offer.text
    assert "<b>09:00</b>" in offer.text
    assert "fino alle <b>10:30</b>" in offer.text  # held for waitlist_hold_minutes = 30
    assert offer.buttons == [("✅ Prenota", f"oa:{entry_id}"), ("✖️ No, grazie", f"od:{entry_id}")]

    lapsed = OFFERED_AT + timedelta(minutes=31)
    async with database.transaction() as session:
        assert (
            await waitlist.expire_offers(session=session, settings=short_horizon, now=lapsed) == 1
        )
    clock.set(lapsed)
    assert await sender.run_once() == 1
    expired = fake.sent("sendMessage")[-1]
    assert expired.params["chat_id"] == chat_id
    assert "Il posto di martedì 9 giugno alle 09:00" in expired.text
    assert "/prenotazione" in expired.text
    assert {m.state for m in (await rows_of(database, citizen_id)).values()} == {"sent"}


async def test_offer_answered_before_delivery_is_withdrawn(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    short_horizon: Settings,
) -> None:
    citizen_id, _chat_id, entry_id = await _offer_freed_place(database, short_horizon)
    async with database.transaction() as session:
        await waitlist.decline_offer(
            session=session,
            settings=short_horizon,
            entry_id=entry_id,
            citizen_id=citizen_id,
            now=OFFERED_AT,
        )
    sender = dispatcher(bot_app, database, short_horizon, Clock(OFFERED_AT + timedelta(minutes=1)))
    assert await sender.run_once() == 1
    assert fake.sent("sendMessage") == []
    offer = (await rows_of(database, citizen_id))["waitlist_offer"]
    assert offer.state == MessageState.CANCELLED
    assert "declined" in (offer.last_error or "")


async def test_unfinished_questionnaire_reminder(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    started = rome(2026, 5, 1, 12)
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        await intake.start_intake(session=session, citizen_id=citizen.id, now=started)
        chat_id = citizen.telegram_chat_id
    now = started + timedelta(days=28)
    await run_chores(database=database, settings=bot_settings, now=now)
    assert await dispatcher(bot_app, database, bot_settings, Clock(now)).run_once() == 1
    [reminder] = fake.sent("sendMessage")
    assert reminder.params["chat_id"] == chat_id
    assert "non l'hai finito" in reminder.text
    assert "domenica 31 maggio" in reminder.text  # 30 days after the last answer
    assert "/start" in reminder.text


# --- Telegram's answers ---------------------------------------------------------------


async def test_retry_after_delays_only_that_message_then_it_is_sent_once(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PTB 22 warns unless opted in to timedelta periods; warnings are errors here.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    chats = [(await book(database, bot_settings, helpdesk_id)).chat_id for _ in range(3)]
    fake.fail_next("sendMessage", ScriptedError(429, "Too Many Requests: retry after 2", 2))
    clock = Clock(DAY_BEFORE)
    sender = dispatcher(bot_app, database, bot_settings, clock)

    assert await sender.run_once() == 3
    assert len(fake.sent("sendMessage")) == 2
    assert len(fake.sent("sendMessage!failed")) == 1
    reminders = [m for m in await rows(database) if m.kind == "reminder_day_before"]
    [delayed] = [m for m in reminders if m.state == MessageState.PENDING]
    assert (delayed.due_at, delayed.retry_at) == (DAY_BEFORE, DAY_BEFORE + timedelta(seconds=2))
    assert delayed.attempts == 1
    assert "Flood control" in (delayed.last_error or "")
    assert sum(m.state == MessageState.SENT for m in reminders) == 2

    # Not before the time Telegram asked for...
    clock.advance(seconds=1)
    assert await sender.run_once() == 0
    # ...then exactly once.
    clock.advance(seconds=1)
    assert await sender.run_once() == 1
    assert await sender.run_once() == 0
    per_chat = Counter(c.params["chat_id"] for c in fake.sent("sendMessage"))
    assert per_chat == dict.fromkeys(chats, 1)
    reminders = [m for m in await rows(database) if m.kind == "reminder_day_before"]
    assert {m.state for m in reminders} == {MessageState.SENT}


async def test_a_refused_message_holds_back_the_later_ones_of_its_chat_only(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Telegram refuses the first of a chat's three messages: they still arrive in order."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    # Three messages due for one chat: the confirmation, then both reminders.
    busy = await book(database, bot_settings, helpdesk_id, by_staff=True)
    # The other chat has its confirmation due (its reminders are for the next day).
    other = await book(
        database, bot_settings, helpdesk_id, starts_at=rome(2026, 6, 10, 9, 30), by_staff=True
    )
    fake.fail_next_in(
        busy.chat_id, "sendMessage", ScriptedError(429, "Too Many Requests: retry after 3", 3)
    )
    clock = Clock(HOURS_BEFORE)
    sender = dispatcher(bot_app, database, bot_settings, clock)

    assert await sender.run_once() == 4
    # The other chat is not held up; the refused chat gets nothing until its first goes.
    assert len(to_chat(fake, other.chat_id)) == 1
    assert to_chat(fake, busy.chat_id) == []
    assert len(to_chat(fake, busy.chat_id, "sendMessage!failed")) == 1
    states = await rows_of(database, busy.citizen_id)
    assert {m.state for m in states.values()} == {MessageState.PENDING}
    assert states["booking_confirmed"].attempts == 1
    # The messages that waited were not tried: no attempt is counted against them.
    assert states["reminder_day_before"].attempts == 0
    assert states["reminder_hours_before"].attempts == 0

    # Before the 3 s Telegram asked for, nothing of that chat goes out.
    clock.advance(seconds=2)
    assert await sender.run_once() == 0
    clock.advance(seconds=1)
    assert await sender.run_once() == 3
    arrived = [
        c for c in fake.calls if c.params.get("chat_id") == busy.chat_id and "!" not in c.method
    ]
    assert [c.method for c in arrived] == [
        "sendMessage",
        "sendDocument",
        "sendMessage",
        "sendMessage",
    ]
    assert "prenotato" in arrived[0].text
    assert all("Promemoria" in c.text for c in arrived[2:])
    assert {m.state for m in (await rows_of(database, busy.citizen_id)).values()} == {
        MessageState.SENT
    }


async def test_blocked_bot_marks_the_citizen_unreachable(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    # Three messages due for the blocker: the confirmation and both reminders.
    blocker = await book(database, bot_settings, helpdesk_id, by_staff=True)
    other = await book(database, bot_settings, helpdesk_id, starts_at=rome(2026, 6, 10, 9, 30))
    fake.fail_next("sendMessage", ScriptedError(403, "Forbidden: bot was blocked by the user"))
    clock = Clock(HOURS_BEFORE)
    sender = dispatcher(bot_app, database, bot_settings, clock, per_chat_interval=0.01)

    assert await sender.run_once() == 3
    assert len(fake.sent("sendMessage!failed")) == 1  # one call, then nothing more
    assert to_chat(fake, blocker.chat_id) == []
    assert to_chat(fake, blocker.chat_id, "sendDocument") == []
    async with database.transaction(read_only=True) as session:
        citizen = await session.get(Citizen, blocker.citizen_id)
        assert citizen is not None
        assert citizen.unreachable
    states = await rows_of(database, blocker.citizen_id)
    assert {m.state for m in states.values()} == {MessageState.FAILED}
    assert all("blocked" in (m.last_error or "") for m in states.values())
    # Nothing new is queued for them; others are served as usual.
    async with database.transaction() as session:
        refused = await outbox.enqueue(
            session=session,
            kind="booking_cancelled",
            citizen_id=blocker.citizen_id,
            due_at=HOURS_BEFORE,
            idempotency_key="later",
        )
        assert refused is None
    clock.set(rome(2026, 6, 9, 18))
    assert await sender.run_once() == 1
    assert len(to_chat(fake, other.chat_id)) == 1
    assert to_chat(fake, blocker.chat_id) == []


async def test_handled_telegram_errors_are_one_warning_each_without_a_traceback(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    # Each booked by staff: one confirmation due now, for each of three chats.
    refused, failing, blocker = [
        await book(database, bot_settings, helpdesk_id, by_staff=True) for _ in range(3)
    ]
    fake.fail_next_in(
        refused.chat_id, "sendMessage", ScriptedError(429, "Too Many Requests: retry after 3", 3)
    )
    fake.fail_next_in(failing.chat_id, "sendMessage", ScriptedError(502, "Bad Gateway"))
    fake.fail_next_in(
        blocker.chat_id, "sendMessage", ScriptedError(403, "Forbidden: bot was blocked by the user")
    )
    caplog.set_level(logging.DEBUG)
    assert await dispatcher(bot_app, database, bot_settings, Clock(BOOKED_AT)).run_once() == 3

    noted = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r for r in noted if r.exc_info or r.exc_text] == []
    assert [r.levelname for r in noted] == ["WARNING"] * 3, [r.getMessage() for r in noted]
    states = {
        b.chat_id: (await rows_of(database, b.citizen_id))["booking_confirmed"]
        for b in (refused, failing, blocker)
    }
    for booked, message in states.items():
        [line] = [r.getMessage() for r in noted if f"message {message.id} " in r.getMessage()]
        assert message.last_error is not None and message.last_error in line, booked
    assert states[blocker.chat_id].last_error == "Forbidden: bot was blocked by the user"
    assert states[failing.chat_id].last_error == "NetworkError: Bad Gateway"
    # Each was tried once, the refused one as much as the others.
    assert [m.attempts for m in states.values()] == [1, 1, 1]


async def test_network_errors_are_retried_with_backoff(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id)
    fake.drop_next("sendMessage", NetworkError("Connection reset by peer"))
    clock = Clock(DAY_BEFORE)
    sender = dispatcher(bot_app, database, bot_settings, clock)

    assert await sender.run_once() == 1
    assert fake.sent("sendMessage") == []
    message = (await rows_of(database, booked.citizen_id))["reminder_day_before"]
    assert message.state == MessageState.PENDING
    assert message.attempts == 1
    # 30 s, ±10% jitter.
    assert message.retry_at is not None
    assert (
        DAY_BEFORE + timedelta(seconds=27) <= message.retry_at <= DAY_BEFORE + timedelta(seconds=33)
    )
    assert "Connection reset" in (message.last_error or "")
    clock.advance(seconds=26)
    assert await sender.run_once() == 0

    # A timeout and a 502 from Telegram's side are retried the same way, backing off more.
    fake.drop_next("sendMessage", TimedOut("Timed out"))
    clock.set(retry_time(message))
    assert await sender.run_once() == 1
    fake.fail_next("sendMessage", ScriptedError(502, "Bad Gateway"))
    message = (await rows_of(database, booked.citizen_id))["reminder_day_before"]
    assert message.attempts == 2
    assert retry_time(message) - clock() >= timedelta(seconds=54)  # 60 s -10%
    clock.set(retry_time(message))
    assert await sender.run_once() == 1
    message = (await rows_of(database, booked.citizen_id))["reminder_day_before"]
    assert (message.state, message.attempts) == (MessageState.PENDING, 3)
    assert retry_time(message) - clock() >= timedelta(seconds=108)  # 120 s -10%

    clock.set(retry_time(message))
    assert await sender.run_once() == 1
    assert len(to_chat(fake, booked.chat_id)) == 1
    message = (await rows_of(database, booked.citizen_id))["reminder_day_before"]
    assert message.state == MessageState.SENT


async def test_bad_request_gives_up_on_that_message_only(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    for _ in range(3):
        await book(database, bot_settings, helpdesk_id)
    fake.fail_next("sendMessage", ScriptedError(400, "Bad Request: chat not found"))
    clock = Clock(DAY_BEFORE)
    sender = dispatcher(bot_app, database, bot_settings, clock)
    assert await sender.run_once() == 3
    reminders = [m for m in await rows(database) if m.kind == "reminder_day_before"]
    assert Counter(m.state for m in reminders) == {"sent": 2, "failed": 1}
    [failed] = [m for m in reminders if m.state == MessageState.FAILED]
    assert "chat not found" in (failed.last_error or "").lower()
    clock.advance(hours=1)
    assert await sender.run_once() == 0
    assert len(fake.sent("sendMessage")) == 2


async def test_messages_that_cannot_be_delivered_fail_without_calling_telegram(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id)
    async with database.transaction() as session:
        walk_in = await make_citizen(session, telegram=False)
        for key, citizen_id, kind in (
            ("no-chat", walk_in.id, "booking_cancelled"),
            ("unknown", booked.citizen_id, "horoscope"),
            ("no-payload", booked.citizen_id, "booking_moved"),
        ):
            await outbox.enqueue(
                session=session,
                kind=kind,
                citizen_id=citizen_id,
                due_at=BOOKED_AT,
                idempotency_key=key,
            )
    sender = dispatcher(bot_app, database, bot_settings, Clock(BOOKED_AT))
    assert await sender.run_once() == 3
    failed = {m.idempotency_key: m for m in await rows(database) if m.state == "failed"}
    assert set(failed) == {"no-chat", "unknown", "no-payload"}
    assert "no Telegram chat" in (failed["no-chat"].last_error or "")
    assert "unknown message kind" in (failed["unknown"].last_error or "")
    assert "booking_id" in (failed["no-payload"].last_error or "")

    # Flagged unreachable after its reminders were queued: they fail, unsent.
    async with database.transaction() as session:
        await session.execute(
            update(Citizen).where(Citizen.id == booked.citizen_id).values(unreachable=True)
        )
    assert await dispatcher(bot_app, database, bot_settings, Clock(DAY_BEFORE)).run_once() == 1
    assert (await rows_of(database, booked.citizen_id))["reminder_day_before"].state == "failed"
    assert [c.method for c in fake.calls if c.method != "getMe"] == []


def test_telegram_errors_map_to_outcomes() -> None:
    assert isinstance(outcome_of(Forbidden("Forbidden: user is deactivated")), Unreachable)
    assert isinstance(outcome_of(BadRequest("Bad Request: message is too long")), Failed)
    assert outcome_of(TimedOut()) == Retry("TimedOut: Timed out", None, code="timed_out")
    assert outcome_of(NetworkError("Bad Gateway")) == Retry(
        "NetworkError: Bad Gateway", None, "network"
    )
    assert isinstance(outcome_of(ChatMigrated(5)), Retry)
    assert outcome_of(RuntimeError("boom")) == Retry("RuntimeError: boom", None, "unexpected")
    # The codes are /metrics labels (shared.metrics): a few fixed words, no Telegram text.
    limited = outcome_of(RetryAfter(3))
    assert isinstance(limited, Retry)
    assert (limited.retry_after, limited.code) == (3.0, "rate_limited")


# --- pacing, concurrency, restarts ---------------------------------------------------


async def test_one_chat_is_paced_without_holding_back_the_others(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    busy = await book(database, bot_settings, helpdesk_id)  # both reminders due
    calm = await book(database, bot_settings, helpdesk_id, starts_at=rome(2026, 6, 10, 9, 30))
    # calm's day-before reminder (9 June 18:00) is not due yet; give it one message now.
    async with database.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.citizen_id == calm.citizen_id,
                OutboxMessage.kind == "reminder_day_before",
            )
            .values(due_at=HOURS_BEFORE)
        )
    interval = 0.2
    sender = dispatcher(
        bot_app, database, bot_settings, Clock(HOURS_BEFORE), per_chat_interval=interval
    )
    assert await sender.run_once() == 3

    def stamps(chat_id: int) -> list[float]:
        return [
            at for method, chat, at in fake.stamps if method == "sendMessage" and chat == chat_id
        ]

    first, second = stamps(busy.chat_id)
    [other] = stamps(calm.chat_id)
    assert second - first >= interval - 0.01
    # The other chat did not wait for the busy one.
    assert other < second
    assert other - first < interval / 2

    # The pacing holds across rounds too.
    async with database.transaction() as session:
        await outbox.enqueue(
            session=session,
            kind="reminder_hours_before",
            citizen_id=busy.citizen_id,
            due_at=HOURS_BEFORE,
            idempotency_key="again",
            payload={"booking_id": busy.booking_id},
        )
    assert await sender.run_once() == 1
    third = stamps(busy.chat_id)[-1]
    assert third - second >= interval - 0.01


async def test_the_overall_rate_holds_across_chats(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    """Bulk notifications stay within `overall_rate` per second however many chats wait."""
    for _ in range(12):
        await book(database, bot_settings, helpdesk_id)
    rate = 4.0
    sender = dispatcher(bot_app, database, bot_settings, Clock(DAY_BEFORE), overall_rate=rate)
    assert await sender.run_once() == 12
    sent = sorted(at for method, _chat, at in fake.stamps if method == "sendMessage")
    assert len(sent) == 12
    # Evenly spaced from the first: no burst. Real time, so only a loose bound (a busy
    # machine may delay a send and bunch it with the next); the exact one is below.
    assert sent[-1] - sent[0] >= 11 / rate - 0.1
    for i, j in itertools.combinations(range(len(sent)), 2):
        assert j - i <= rate * (sent[j] - sent[i] + 0.25), (i, j)


async def _due_reminders(
    database: Database, settings: Settings, helpdesk_id: int, count: int
) -> list[Booked]:
    """`count` citizens with a reminder due at DAY_BEFORE, one each (30 places an
    appointment: three appointments the same morning)."""
    starts = [APPOINTMENT + timedelta(minutes=30 * (n % 3)) for n in range(count)]
    return [await book(database, settings, helpdesk_id, starts_at=at) for at in starts]


async def _drain(sender: OutboxDispatcher) -> int:
    total = 0
    while handled := await sender.run_once():
        total += handled
    return total


@pytest.mark.parametrize("instances", [1, 2])
async def test_the_limit_holds_in_every_second_of_a_drain_across_dispatchers(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
    instances: int,
) -> None:
    """Telegram's 30 a second is for the bot, not for each instance: with one dispatcher or
    two on one database, no second of a drain sees more, the first one included, and each
    message goes once.

    Real time, yet exact on a loaded machine: the fake stamps a call while it is being
    made, and a dispatcher counts each send from before the call until it has returned,
    so a delay can only spread the stamps out (the bound only asserts what the design
    promises; the drain's pace is not asserted)."""
    citizens = await _due_reminders(database, bot_settings, helpdesk_id, 80)
    clock = Clock(DAY_BEFORE)
    engines = [database] + [Database(database.url) for _ in range(instances - 1)]
    try:
        senders = [
            dispatcher(bot_app, engine, bot_settings, clock, worker=f"host:{n}")
            for n, engine in enumerate(engines)
        ]
        handled = await asyncio.gather(*(_drain(sender) for sender in senders))
    finally:
        for engine in engines[1:]:
            await engine.dispose()
    assert sum(handled) == 80
    assert all(handled), handled  # each took part
    per_chat = Counter(c.params["chat_id"] for c in fake.sent("sendMessage"))
    assert sorted(per_chat) == sorted(c.chat_id for c in citizens)
    assert set(per_chat.values()) == {1}
    sent = [at for method, _chat, at in fake.stamps if method == "sendMessage"]
    assert most_in_one_second(sent) <= 30


async def test_a_drain_is_evenly_spaced_from_its_first_send(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    """No burst when a drain starts: one send every 1/30 s from the first (a bucket would
    let 30 out at once, then 30 more within the same second). Virtual time."""
    await _due_reminders(database, bot_settings, helpdesk_id, 45)
    timer = VirtualTimer()
    fake.timer = timer.now
    sender = dispatcher(bot_app, database, bot_settings, Clock(DAY_BEFORE), timer=timer)
    assert await _drain(sender) == 45
    sent = sorted(at for method, _chat, at in fake.stamps if method == "sendMessage")
    assert most_in_one_second(sent) == 30
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) == pytest.approx(1 / 30)
    assert sent[-1] - sent[0] == pytest.approx(44 / 30)


async def test_two_dispatchers_send_every_message_exactly_once(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    citizens = [await book(database, bot_settings, helpdesk_id, by_staff=True) for _ in range(20)]
    clock = Clock(HOURS_BEFORE + timedelta(minutes=1))
    second_engine = Database(database.url)
    try:
        first = dispatcher(bot_app, database, bot_settings, clock, worker="a", batch=7)
        second = dispatcher(bot_app, second_engine, bot_settings, clock, worker="b", batch=7)

        async def drain(sender: OutboxDispatcher) -> int:
            total = 0
            while handled := await sender.run_once():
                total += handled
            return total

        handled = await asyncio.gather(drain(first), drain(second))
    finally:
        await second_engine.dispose()

    assert sum(handled) == 60
    assert all(handled), handled  # both took part
    messages = fake.sent("sendMessage")
    assert len(messages) == 60
    for citizen in citizens:
        sent = [c.text for c in messages if c.params["chat_id"] == citizen.chat_id]
        assert len(sent) == 3
        assert sum("prenotato" in text for text in sent) == 1
        assert sum("Promemoria" in text for text in sent) == 2
        assert len(to_chat(fake, citizen.chat_id, "sendDocument")) == 1
    assert {m.state for m in await rows(database)} == {MessageState.SENT}


async def test_message_of_a_dispatcher_that_died_is_sent_after_its_lease(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    booked = await book(database, bot_settings, helpdesk_id)
    async with database.transaction() as session:
        [claimed] = await outbox.claim_due(session=session, worker="died", now=DAY_BEFORE)
    clock = Clock(DAY_BEFORE + timedelta(minutes=1))
    restarted = dispatcher(bot_app, database, bot_settings, clock, worker="restarted")
    assert await restarted.run_once() == 0  # the lease (2 minutes) still holds
    clock.set(DAY_BEFORE + timedelta(minutes=2, seconds=1))
    assert await restarted.run_once() == 1
    assert await restarted.run_once() == 0
    [sent] = to_chat(fake, booked.chat_id)
    assert "domani" in sent.text
    message = (await rows_of(database, booked.citizen_id))["reminder_day_before"]
    assert (message.id, message.state) == (claimed.id, MessageState.SENT)


# --- the loop -------------------------------------------------------------------------


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_run_wakes_up_when_asked_and_stops_promptly(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    await book(database, bot_settings, helpdesk_id)
    clock = Clock(DAY_BEFORE - timedelta(hours=1))
    sender = dispatcher(bot_app, database, bot_settings, clock, idle_poll=30.0)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        await asyncio.sleep(0.3)  # first round: nothing due, next one in an hour
        assert fake.sent("sendMessage") == []
        clock.set(DAY_BEFORE)
        sender.wake()
        await _until(lambda: len(fake.sent("sendMessage")) == 1, seconds=2.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=2.0)
    assert task.result() is None


async def test_run_sleeps_until_the_next_due_message(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    await book(database, bot_settings, helpdesk_id)
    # Scenario time flows with real time, starting just before the reminder is due.
    lead, started = 0.4, time.monotonic()

    def clock() -> datetime:
        elapsed = time.monotonic() - started
        return (DAY_BEFORE - timedelta(seconds=lead - elapsed)).astimezone(UTC)

    # The poll is long: only sleeping until the due time delivers it in time.
    sender = dispatcher(bot_app, database, bot_settings, clock, idle_poll=30.0)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        await _until(lambda: len(fake.sent("sendMessage")) == 1, seconds=2.0)
        assert time.monotonic() - started >= lead - 0.05  # not before it was due
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=2.0)


async def test_run_survives_a_failing_round(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await book(database, bot_settings, helpdesk_id)
    real_claim = outbox.claim_due
    failures = [RuntimeError("database went away")]

    async def flaky_claim(**kwargs: Any) -> list[OutboxMessage]:
        if failures:
            raise failures.pop()
        return await real_claim(**kwargs)

    monkeypatch.setattr(outbox, "claim_due", flaky_claim)
    sender = dispatcher(bot_app, database, bot_settings, Clock(DAY_BEFORE), idle_poll=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        await _until(lambda: len(fake.sent("sendMessage")) == 1, seconds=3.0)
        assert failures == []
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=2.0)
    assert len(fake.sent("sendMessage")) == 1


async def test_a_stopped_dispatcher_gives_back_what_it_claimed_but_did_not_send(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FlakyTelegram,
    database: Database,
    bot_settings: Settings,
    helpdesk_id: int,
) -> None:
    """SIGTERM mid-round: the message being sent goes out, the rest are pending again at
    once (unclaimed, no attempt counted) instead of waiting for their lease to lapse."""
    booked = await book(database, bot_settings, helpdesk_id)
    async with database.transaction() as session:
        for n in range(4):
            await outbox.enqueue(
                session=session,
                kind="booking_confirmed",
                citizen_id=booked.citizen_id,
                due_at=BOOKED_AT,
                idempotency_key=f"card-{n}",
                payload={"booking_id": booked.booking_id},
            )
    sender = dispatcher(bot_app, database, bot_settings, Clock(BOOKED_AT), per_chat_interval=0.3)
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop))
    deadline = time.monotonic() + 5
    while not fake.sent("sendMessage") and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(running, 3)
    kept = await rows(database)
    states = Counter(m.state for m in kept)
    assert 1 <= states["sent"] < len(kept)
    assert states["sent"] + states["pending"] == len(kept)
    for message in kept:
        if message.state == "pending":
            assert (message.claimed_by, message.claimed_until, message.attempts) == (None, None, 0)
    assert len(fake.sent("sendMessage")) == states["sent"]
