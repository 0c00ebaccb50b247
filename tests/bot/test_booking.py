"""Booking on Telegram through the real PTB stack: book, see, move, cancel, waitlist, forgeries.

The bot runs on the fixed clock of `tests.bot.clock` (`MORNING`, a Wednesday morning in
Rome) and so does everything these tests set up: the helpdesks open every day from that
day on, and the services are called at that instant, so the journeys see the same days
and free places whatever the hour or day the suite runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta

import pytest
from babel.dates import format_date
from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import Application, CommandHandler

from bot.callbacks import MAX_CALLBACK_BYTES, Cb, encode
from bot.delivery import OutboxDispatcher
from bot.handlers import booking as booking_handlers
from bot.turn import turn
from shared.audit.models import AuditEvent
from shared.booking import availability, errors, hours
from shared.booking import messages as booking_messages
from shared.booking import service as booking
from shared.booking.models import Booking, BookingState, Slot, WaitlistEntry, WaitlistState
from shared.cases import service as cases
from shared.citizens import service as citizens
from shared.citizens.models import Citizen as CitizenRow
from shared.db import Database
from shared.i18n import Translator
from shared.intake import service as intake
from shared.intake.models import IntakeState
from shared.outbox.models import MessageState, OutboxMessage
from shared.settings import Settings
from shared.staff.models import Role
from tests.bot.clock import MORNING
from tests.bot.fake_telegram import Call, FakeTelegram, buttons, texts
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.bot.sql import counting
from tests.factories import ROME, make_helpdesk
from tests.shared.cases.builders import make_staff, member

ELIGIBLE_ANSWERS = [
    ("residence", "yes"),
    ("situation", "job_loss"),
    ("since", "marzo 2021"),
    ("pandemic_related", "yes"),
    ("household", "3 1"),
    ("benefits", "naspi"),
    ("needs", "job_search"),
    ("urgent", "no"),
    ("name", "Maria Rossi"),
    ("phone", "331 693 8049"),
]
AFTER_INTAKE = "fine_questionario"
DIRECTIONS = "Secondo piano <scala B> & ascensore"


@pytest.fixture(autouse=True)
def no_generic_apology(fake: FakeTelegram) -> Iterator[None]:
    """Every refusal in these journeys is a specific reply, never "something went wrong"."""
    yield
    assert "qualcosa è andato storto" not in texts(fake.calls)
    assert "something went wrong" not in texts(fake.calls)


@pytest.fixture
def app(bot_app: Application) -> Application:  # type: ignore[type-arg]
    """The bot, plus a command that runs `after_intake` as the questionnaire will."""
    handlers = bot_app.handlers[0]
    bot_app.add_handler(CommandHandler(AFTER_INTAKE, turn(booking_handlers.after_intake)))
    # First in the group: before the fallbacks, which would take any message.
    handlers.insert(0, handlers.pop())
    return bot_app


async def new_citizen(
    database: Database,
    settings: Settings,
    user_id: int,
    *,
    language: str = "it",
    answers: Sequence[tuple[str, str]] = ELIGIBLE_ANSWERS,
    confirm: bool = True,
    now: datetime = MORNING,
) -> int:
    """A citizen who consented on Telegram and answered the questionnaire (eligible by default)."""
    async with database.transaction() as session:
        citizen = await citizens.give_consent(
            session=session, telegram_user_id=user_id, chat_id=user_id, language=language, now=now
        )
        row = await intake.start_intake(session=session, citizen_id=citizen.id, now=now)
        for key, raw in answers:
            row = await intake.record_answer(
                session=session, citizen_id=citizen.id, step_key=key, raw=raw, now=now,
                settings=settings,
            )  # fmt: skip
        if row.state == IntakeState.COMPLETED:
            return citizen.id  # ruled out: closed once they left name and phone
        for optional in ("email", "fiscal_code"):
            await intake.skip_step(
                session=session, citizen_id=citizen.id, step_key=optional, now=now
            )
        if confirm:
            await intake.confirm(session=session, citizen_id=citizen.id, now=now, settings=settings)
        return citizen.id


async def open_helpdesks(
    database: Database, *names: str, places: int = 1, now: datetime = MORNING
) -> list[int]:
    """Helpdesks open every day from the day of `now`, 9:00-12:00 in slots of 30 minutes."""
    today = now.astimezone(ROME).date()
    ids = []
    async with database.transaction() as session:
        for name in names:
            helpdesk = await make_helpdesk(
                session, name=name, weekdays=tuple(range(7)), valid_from=today, places=places
            )
            helpdesk.directions = DIRECTIONS
            ids.append(helpdesk.id)
    return ids


def data(calls: list[Call], prefix: str) -> list[str]:
    """Callback data of the buttons that start with `prefix`."""
    return [d for _, d in buttons(calls) if d.startswith(prefix)]


def moment(epoch_data: str) -> datetime:
    """The slot start in `tm:<helpdesk>:<epoch>...` or `bk:...`."""
    return datetime.fromtimestamp(int(epoch_data.split(":")[2]), UTC)


async def bookings_of(database: Database, citizen_id: int) -> list[Booking]:
    async with database.transaction(read_only=True) as session:
        rows = await session.scalars(
            select(Booking).where(Booking.citizen_id == citizen_id).order_by(Booking.id)
        )
        return list(rows.all())


async def count(database: Database, model: type[object]) -> int:
    async with database.transaction(read_only=True) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def book_for(
    database: Database, settings: Settings, citizen_id: int, helpdesk_id: int, starts_at: datetime
) -> Booking:
    async with database.transaction() as session:
        return await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen_id, helpdesk_id=helpdesk_id,
            starts_at=starts_at, actor="test", now=MORNING,
        )  # fmt: skip


async def first_free(session: AsyncSession, settings: Settings, helpdesk_id: int) -> datetime:
    slots = await availability.list_free_slots(
        session=session, settings=settings, helpdesk_id=helpdesk_id, now=MORNING
    )
    return slots[0].starts_at


async def choose_slot(user: TelegramUser, day_calls: list[Call]) -> list[Call]:
    """From a list of days: the first day, its first time; returns the confirmation step."""
    times = await user.press(data(day_calls, "day:")[0])
    return await user.press(data(times, "tm:")[0])


# --- the journey -----------------------------------------------------------------------


async def test_book_see_move_and_cancel(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    comune, villa = await open_helpdesks(database, "Sportello Comune", "Sportello Villa Fiorita")
    citizen_id = await new_citizen(database, bot_settings, 401)
    maria = TelegramUser(app, fake, 401)

    calls = await maria.say(f"/{AFTER_INTAKE}")
    assert "Dove vuoi fare il colloquio?" in texts(calls)
    assert data(calls, "hd:") == [f"hd:{comune}", f"hd:{villa}"]

    calls = await maria.press(f"hd:{comune}")
    days = data(calls, "day:")
    assert len(days) == 8  # a page; the horizon holds about 30 open days
    assert f"days:{comune}:1" in data(calls, "days:")
    first_day = datetime.strptime(days[0].split(":")[2], "%Y%m%d").date()  # noqa: DTZ007
    assert first_day >= MORNING.date()
    assert format_date(first_day, "EEE d MMMM", locale="it") in [b[0] for b in buttons(calls)]
    assert "Secondo piano" not in texts(calls)  # directions come with the confirmation

    more = await maria.press(f"days:{comune}:1")
    assert not set(data(more, "day:")) & set(days)
    assert f"days:{comune}:0" in data(more, "days:")

    times = await maria.press(days[0])
    assert "Scegli l'orario" in texts(times)
    slot = data(times, "tm:")[0]
    confirm = await maria.press(slot)
    assert "Controlla e conferma" in texts(confirm)
    starts_at = moment(slot)
    assert data(confirm, "bk:") == [f"bk:{comune}:{int(starts_at.timestamp())}"]
    assert await bookings_of(database, citizen_id) == []  # nothing until confirmed

    calls = await maria.press(data(confirm, "bk:")[0])
    [booked] = await bookings_of(database, citizen_id)
    assert (booked.helpdesk_id, booked.starts_at, booked.state) == (comune, starts_at, "booked")
    text = texts(calls)
    assert "Il tuo colloquio Ripartire è prenotato" in text
    assert booked.code in text
    assert "Via Roma 1, Cernusco sul Naviglio" in text
    assert "Secondo piano &lt;scala B&gt; &amp; ascensore" in text
    assert "documento d'identità" in text and "ISEE" in text and "partita IVA" in text
    assert "/sposta" in text and "/annulla" in text
    local = starts_at.astimezone(ROME)
    assert format_date(local.date(), "EEEE d MMMM y", locale="it") in text
    assert local.strftime("%H:%M") in text
    [document] = [c for c in calls if c.method == "sendDocument"]
    [ics] = document.files.values()
    event = Calendar.from_ical(ics).walk("VEVENT")[0]
    assert event.decoded("dtstart") == starts_at
    assert event.decoded("dtstart").utcoffset() == local.utcoffset()
    assert booked.code in str(event.get("description"))
    assert "Sportello Comune" in str(event.get("location"))

    # /prenotazione shows it, with Move and Cancel.
    calls = await maria.say("/prenotazione")
    assert booked.code in texts(calls)
    assert data(calls, "mv:") == [f"mv:{booked.id}"]
    assert data(calls, "cx:") == [f"cx:{booked.id}"]

    # /sposta: the same steps carry the booking being moved.
    calls = await maria.say("/sposta")
    assert "Il tuo appuntamento adesso" in texts(calls)
    assert data(calls, "hd:") == [f"hd:{comune}:{booked.id}", f"hd:{villa}:{booked.id}"]
    calls = await maria.press(f"hd:{villa}:{booked.id}")
    confirm = await choose_slot(maria, calls)
    assert "Vuoi spostare il tuo appuntamento?" in texts(confirm)
    [move] = data(confirm, "bk:")
    assert move.endswith(f":{booked.id}")
    calls = await maria.press(move)
    assert "è stato spostato" in texts(calls)
    assert [c.method for c in calls].count("sendDocument") == 1
    old, new = await bookings_of(database, citizen_id)
    assert (old.id, old.state) == (booked.id, BookingState.CANCELLED_BY_CITIZEN)
    assert (new.state, new.moved_from_id, new.helpdesk_id) == ("booked", old.id, villa)
    assert new.starts_at == moment(move)
    assert new.code in texts(calls)

    # /annulla asks first, then cancels and frees the place.
    calls = await maria.say("/annulla")
    assert "Vuoi davvero annullare" in texts(calls)
    assert data(calls, "cxok:") == [f"cxok:{new.id}"]
    calls = await maria.press(f"cxok:{new.id}")
    assert "annullato" in texts(calls)
    assert data(calls, "hds") == ["hds"]  # book again
    _, cancelled = await bookings_of(database, citizen_id)
    assert cancelled.state == BookingState.CANCELLED_BY_CITIZEN
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(select(Slot.taken).where(Slot.id == cancelled.slot_id)) == 0
        assert moment(move) in [
            s.starts_at
            for s in await availability.list_free_slots(
                session=session, settings=bot_settings, helpdesk_id=villa, now=MORNING
            )
        ]
    calls = await maria.say("/prenotazione")
    assert "Non hai appuntamenti prenotati" in texts(calls)
    assert data(calls, "hds") == ["hds"]
    # An old "Yes, cancel it" pressed again, or an old "Move": refused, nothing changes.
    calls = await maria.press(f"cxok:{new.id}")
    assert "non si può più cambiare" in texts(calls)
    assert "Non trovo questo appuntamento" in texts(await maria.press(f"mv:{new.id}"))
    assert [b.state for b in await bookings_of(database, citizen_id)] == [
        BookingState.CANCELLED_BY_CITIZEN
    ] * 2


async def test_one_helpdesk_skips_the_choice_and_english_dates(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    [only] = await open_helpdesks(database, "Sportello Comune")
    await new_citizen(database, bot_settings, 402, language="en")
    john = TelegramUser(app, fake, 402, language="en")
    calls = await john.say(f"/{AFTER_INTAKE}")
    assert data(calls, "hd:") == []
    days = data(calls, "day:")
    assert days[0].startswith(f"day:{only}:")
    first_day = datetime.strptime(days[0].split(":")[2], "%Y%m%d").date()  # noqa: DTZ007
    assert format_date(first_day, "EEE d MMMM", locale="en") in [b[0] for b in buttons(calls)]
    assert "Choose a day" in texts(calls)


async def test_only_eligible_citizens_can_book(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    [helpdesk] = await open_helpdesks(database, "Sportello Comune")
    stranger = TelegramUser(app, fake, 403)
    assert "Scrivi /start" in texts(await stranger.say("/prenotazione"))
    assert "Scrivi /start" in texts(await stranger.press(f"hd:{helpdesk}"))

    await new_citizen(database, bot_settings, 404, confirm=False)
    unfinished = TelegramUser(app, fake, 404)
    calls = await unfinished.press("hds")
    assert "prima rispondi a qualche domanda" in texts(calls)
    assert data(calls, "day:") == []
    calls = await unfinished.say("/prenotazione")
    assert "Non hai appuntamenti" in texts(calls) and data(calls, "hds") == []

    not_resident = [("residence", "no"), ("contact_offer", "yes"), *ELIGIBLE_ANSWERS[-2:]]
    citizen_id = await new_citizen(database, bot_settings, 405, answers=not_resident)
    refused = TelegramUser(app, fake, 405)
    async with database.transaction(read_only=True) as session:
        starts_at = await first_free(session, bot_settings, helpdesk)
    calls = await refused.press(f"bk:{helpdesk}:{int(starts_at.timestamp())}")
    assert "non può prenotarti un colloquio" in texts(calls)
    assert "331 693 8049" in texts(calls)
    assert await bookings_of(database, citizen_id) == []


# --- forged and stale buttons ----------------------------------------------------------


async def test_forged_callback_data_is_refused_and_changes_nothing(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    comune, villa = await open_helpdesks(database, "Sportello Comune", "Sportello Villa Fiorita")
    maria_id = await new_citizen(database, bot_settings, 406)
    other_id = await new_citizen(database, bot_settings, 407)
    maria = TelegramUser(app, fake, 406)
    async with database.transaction(read_only=True) as session:
        free = await first_free(session, bot_settings, comune)
    others = await book_for(database, bot_settings, other_id, comune, free)
    audit_before = await count(database, AuditEvent)

    # An unknown helpdesk, and one too big for any id column.
    for forged in ("hd:999999", "hd:9999999999", f"day:999999:{free:%Y%m%d}"):
        calls = await maria.press(forged)
        assert "Questo sportello ora non prende prenotazioni" in texts(calls)
        assert data(calls, "hd:") == [f"hd:{comune}", f"hd:{villa}"]  # fresh choices

    # A time that is not a slot, at the confirmation step and at the booking step.
    not_a_slot = int(free.timestamp()) + 60
    calls = await maria.press(f"tm:{comune}:{not_a_slot}")
    assert "Questo orario non è libero" in texts(calls)
    # The day's other times (or the days, if that was its last free one); nothing to confirm.
    assert data(calls, "tm:") or data(calls, "day:")
    assert data(calls, "bk:") == []
    calls = await maria.press(f"bk:{comune}:{not_a_slot}")
    assert "non è tra quelli liberi" in texts(calls)
    assert data(calls, "day:")
    # A slot taken by someone else, and one beyond the horizon.
    calls = await maria.press(f"tm:{comune}:{int(free.timestamp())}")
    assert "Questo orario non è libero" in texts(calls)
    far = free + timedelta(days=bot_settings.booking_horizon_days + 7)
    calls = await maria.press(f"bk:{comune}:{int(far.timestamp())}")
    assert "troppo lontano" in texts(calls)
    # A day that does not exist.
    calls = await maria.press(f"day:{comune}:20261399")
    assert "Questo giorno non è disponibile" in texts(calls)
    assert await bookings_of(database, maria_id) == []

    # Someone else's booking, to move, cancel, or confirm attendance.
    for forged in (f"mv:{others.id}", f"cx:{others.id}", f"cxok:{others.id}", f"here:{others.id}"):
        calls = await maria.press(forged)
        assert "Non trovo questo appuntamento tra i tuoi" in texts(calls), forged
        assert data(calls, "cxok:") == [] and data(calls, "hd:") == []
    # ...or as the booking being "moved" through the booking steps.
    later = free + timedelta(minutes=30)
    for forged in (
        f"hd:{comune}:{others.id}",
        f"tm:{comune}:{int(later.timestamp())}:{others.id}",
        f"bk:{comune}:{int(later.timestamp())}:{others.id}",
    ):
        calls = await maria.press(forged)
        assert "Non trovo questo appuntamento tra i tuoi" in texts(calls), forged

    [still] = await bookings_of(database, other_id)
    assert (still.id, still.state, still.starts_at) == (others.id, "booked", free)
    assert await bookings_of(database, maria_id) == []
    assert await count(database, AuditEvent) == audit_before


async def test_slot_taken_between_time_and_confirm(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    [helpdesk] = await open_helpdesks(database, "Sportello Comune")
    maria_id = await new_citizen(database, bot_settings, 408)
    faster_id = await new_citizen(database, bot_settings, 409)
    maria = TelegramUser(app, fake, 408)

    confirm = await choose_slot(maria, await maria.say(f"/{AFTER_INTAKE}"))
    [book] = data(confirm, "bk:")
    await book_for(database, bot_settings, faster_id, helpdesk, moment(book))

    calls = await maria.press(book)
    assert "quel posto è appena stato preso" in texts(calls)
    # Fresh choices: the other times of that day or, if it was the day's last, the days.
    fresh_times, fresh_days = data(calls, "tm:"), data(calls, "day:")
    assert fresh_times or fresh_days
    assert all(moment(choice) != moment(book) for choice in fresh_times)
    assert await bookings_of(database, maria_id) == []
    assert [c.method for c in calls].count("sendDocument") == 0

    # Choosing again works.
    if fresh_times:
        confirm = await maria.press(fresh_times[0])
    else:
        confirm = await choose_slot(maria, calls)
    calls = await maria.press(data(confirm, "bk:")[0])
    assert "è prenotato" in texts(calls)
    assert len(await bookings_of(database, maria_id)) == 1
    # A second booking is refused: the existing one is shown instead.
    async with database.transaction(read_only=True) as session:
        other_slot = await first_free(session, bot_settings, helpdesk)
    calls = await maria.press(f"bk:{helpdesk}:{int(other_slot.timestamp())}")
    assert "Hai già un appuntamento" in texts(calls)
    assert data(calls, "mv:")
    assert len(await bookings_of(database, maria_id)) == 1


async def test_move_to_a_slot_just_taken_keeps_the_old_booking(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    [helpdesk] = await open_helpdesks(database, "Sportello Comune")
    maria_id = await new_citizen(database, bot_settings, 416)
    faster_id = await new_citizen(database, bot_settings, 417)
    async with database.transaction(read_only=True) as session:
        starts_at = await first_free(session, bot_settings, helpdesk)
    booked = await book_for(database, bot_settings, maria_id, helpdesk, starts_at)
    maria = TelegramUser(app, fake, 416)

    confirm = await choose_slot(maria, await maria.say("/sposta"))
    [move] = data(confirm, "bk:")
    await book_for(database, bot_settings, faster_id, helpdesk, moment(move))
    calls = await maria.press(move)
    assert "quel posto è appena stato preso" in texts(calls)
    fresh = data(calls, "tm:") + data(calls, "day:")
    assert fresh and all(choice.endswith(f":{booked.id}") for choice in fresh)
    [still] = await bookings_of(database, maria_id)
    assert (still.id, still.state, still.starts_at) == (booked.id, "booked", starts_at)
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(select(Slot.taken).where(Slot.id == booked.slot_id)) == 1


# --- waitlist --------------------------------------------------------------------------


async def test_waitlist_then_offer_accepted(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    day = MORNING.date() + timedelta(days=3)
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, name="Sportello Comune", weekdays=())
        await hours.add_extra_opening(
            session=session, helpdesk_id=helpdesk.id, day=day, opens_at=time(10),
            closes_at=time(10, 30), slot_minutes=30, places=1, actor="test",
        )  # fmt: skip
        helpdesk_id = helpdesk.id
    only_slot = datetime.combine(day, time(10), tzinfo=ROME)
    giulia_id = await new_citizen(database, bot_settings, 410)
    maria_id = await new_citizen(database, bot_settings, 411)
    taken = await book_for(database, bot_settings, giulia_id, helpdesk_id, only_slot)
    giulia, maria = TelegramUser(app, fake, 410), TelegramUser(app, fake, 411)

    calls = await maria.say(f"/{AFTER_INTAKE}")
    assert "non ci sono posti liberi" in texts(calls)
    assert data(calls, "wl") == ["wl"]
    calls = await maria.press("wl")
    assert "Sei in lista d'attesa" in texts(calls)
    assert f"{bot_settings.waitlist_hold_minutes} minuti" in texts(calls)
    async with database.transaction(read_only=True) as session:
        entry = await session.scalar(select(WaitlistEntry))
        assert entry is not None and (entry.citizen_id, entry.state) == (maria_id, "waiting")
    assert "Sei in lista d'attesa" in texts(await maria.say("/prenotazione"))
    assert "Sei già in lista d'attesa" in texts(await maria.press("wl"))

    # Giulia cancels: the place is held for Maria and the offer is queued for the dispatcher.
    await giulia.say("/annulla")
    await giulia.press(f"cxok:{taken.id}")
    async with database.transaction(read_only=True) as session:
        [offer] = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "waitlist_offer")
            )
        ).all()
        assert (offer.citizen_id, offer.payload["entry_id"]) == (maria_id, entry.id)
        assert await session.scalar(select(Slot.taken).where(Slot.id == taken.slot_id)) == 1

    # Someone else pressing Maria's offer gets nothing.
    calls = await giulia.press(f"oa:{entry.id}")
    assert "Questa proposta non è più disponibile" in texts(calls)
    calls = await giulia.press(f"od:{entry.id}")
    assert "Questa proposta non è più disponibile" in texts(calls)
    assert len(await bookings_of(database, giulia_id)) == 1  # the cancelled one

    # /prenotazione shows the offer too.
    calls = await maria.say("/prenotazione")
    assert "Si è liberato un posto per te" in texts(calls)
    assert data(calls, "oa:") == [f"oa:{entry.id}"]

    calls = await maria.press(f"oa:{entry.id}")
    [booked] = await bookings_of(database, maria_id)
    assert (booked.starts_at, booked.state) == (only_slot, "booked")
    assert "Il tuo colloquio Ripartire è prenotato" in texts(calls)
    assert booked.code in texts(calls)
    [document] = [c for c in calls if c.method == "sendDocument"]
    event = Calendar.from_ical(next(iter(document.files.values()))).walk("VEVENT")[0]
    assert event.decoded("dtstart") == only_slot
    async with database.transaction(read_only=True) as session:
        accepted = await session.get(WaitlistEntry, entry.id)
        assert accepted is not None and accepted.state == WaitlistState.ACCEPTED
    # Pressing it again: the offer is closed, the booking is shown.
    calls = await maria.press(f"oa:{entry.id}")
    assert "Questa proposta non è più disponibile" in texts(calls)
    assert booked.code in texts(calls)


async def test_declined_offer_goes_on(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    day = MORNING.date() + timedelta(days=2)
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, weekdays=())
        await hours.add_extra_opening(
            session=session, helpdesk_id=helpdesk.id, day=day, opens_at=time(10),
            closes_at=time(10, 30), slot_minutes=30, places=1, actor="test",
        )  # fmt: skip
        helpdesk_id = helpdesk.id
    holder_id = await new_citizen(database, bot_settings, 412)
    maria_id = await new_citizen(database, bot_settings, 413)
    taken = await book_for(
        database, bot_settings, holder_id, helpdesk_id, datetime.combine(day, time(10), tzinfo=ROME)
    )
    maria = TelegramUser(app, fake, 413)
    await maria.say(f"/{AFTER_INTAKE}")
    await maria.press("wl")
    async with database.transaction() as session:
        await booking.cancel_booking(
            session=session, settings=bot_settings, booking_id=taken.id,
            by=booking.CancelledBy.CITIZEN, actor="test", now=MORNING,
        )  # fmt: skip
        entry = await session.scalar(select(WaitlistEntry))
        assert entry is not None and entry.state == "offered"
    calls = await maria.press(f"od:{entry.id}")
    assert "il posto passa alla persona successiva" in texts(calls)
    assert await bookings_of(database, maria_id) == []
    async with database.transaction(read_only=True) as session:
        declined = await session.get(WaitlistEntry, entry.id)
        assert declined is not None and declined.state == WaitlistState.DECLINED
        # Nobody else waits: the place is free again, and Maria may take it.
        assert await session.scalar(select(Slot.taken).where(Slot.id == taken.slot_id)) == 0
    assert data(calls, "hds") == ["hds"]
    calls = await maria.press("hds")
    assert data(calls, "tm:") or data(calls, "day:")


# --- reminder buttons ------------------------------------------------------------------


async def test_ill_be_there_is_acknowledged_and_audited(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    [helpdesk] = await open_helpdesks(database, "Sportello Comune")
    maria_id = await new_citizen(database, bot_settings, 414)
    async with database.transaction(read_only=True) as session:
        starts_at = await first_free(session, bot_settings, helpdesk)
    booked = await book_for(database, bot_settings, maria_id, helpdesk, starts_at)
    maria = TelegramUser(app, fake, 414)

    calls = await maria.press(f"here:{booked.id}")
    assert "Grazie! Ti aspettiamo" in texts(calls)
    assert booked.code in texts(calls)
    async with database.transaction(read_only=True) as session:
        events = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "booking.attendance_confirmed")
            )
        ).all()
        assert [(e.actor, e.object_id) for e in events] == [(f"citizen:{maria_id}", str(booked.id))]
    [still] = await bookings_of(database, maria_id)
    assert still.state == "booked"

    # The reminder's "Move it" and "Cancel" buttons start the same steps as the commands.
    calls = await maria.press(f"mv:{booked.id}")
    assert data(calls, "day:")[0].endswith(f":{booked.id}")
    calls = await maria.press(f"cx:{booked.id}")
    assert data(calls, "cxok:") == [f"cxok:{booked.id}"]


async def test_no_other_time_when_moving(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    day = MORNING.date() + timedelta(days=2)
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, weekdays=())
        await hours.add_extra_opening(
            session=session, helpdesk_id=helpdesk.id, day=day, opens_at=time(10),
            closes_at=time(10, 30), slot_minutes=30, places=3, actor="test",
        )  # fmt: skip
        helpdesk_id = helpdesk.id
    maria_id = await new_citizen(database, bot_settings, 415)
    booked = await book_for(
        database, bot_settings, maria_id, helpdesk_id, datetime.combine(day, time(10), tzinfo=ROME)
    )
    maria = TelegramUser(app, fake, 415)
    # Her own slot still has places, but moving to it would change nothing.
    calls = await maria.say("/sposta")
    assert "non ci sono altri orari liberi" in texts(calls)
    assert "resta com'è" in texts(calls)
    assert buttons(calls) == []
    assert [b.state for b in await bookings_of(database, maria_id)] == ["booked"]
    assert booked.code in texts(calls)


def test_callback_data_fits_telegram() -> None:
    """The longest data the flow builds stays within Telegram's 64 bytes."""
    biggest = 2**31 - 1
    far_epoch = int(datetime(2099, 12, 31, tzinfo=UTC).timestamp())
    for kind in (Cb.TIME, Cb.BOOK):
        assert len(encode(kind, biggest, far_epoch, biggest)) <= MAX_CALLBACK_BYTES
    day = date(2099, 12, 31).strftime("%Y%m%d")
    assert len(encode(Cb.DAY, biggest, day, biggest)) <= MAX_CALLBACK_BYTES


# Every refusal the services behind the bot's buttons and commands can raise.
CITIZEN_FACING_ERRORS = (
    errors.HelpdeskNotFound,
    errors.HelpdeskInactive,
    errors.CitizenNotFound,
    errors.BookingNotFound,
    errors.SlotNotOffered,
    errors.SlotInPast,
    errors.SlotTooSoon,
    errors.SlotTooFar,
    errors.SlotTaken,
    errors.AlreadyBooked,
    errors.IllegalTransition,
    errors.AlreadyWaiting,
    errors.SlotsAvailable,
    errors.NoOffer,
    errors.OfferExpired,
)


def _subclasses(cls: type[errors.BookingError]) -> list[type[errors.BookingError]]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


@pytest.mark.parametrize("language", ["it", "en"])
def test_every_booking_error_has_a_reply(language: str) -> None:
    """Each refusal has its own reply; any other `BookingError` gets a polite general one."""
    t = Translator(language)
    replies = {
        error: t(booking_handlers.ERROR_TEXTS[error.code], days=30)
        for error in CITIZEN_FACING_ERRORS
    }
    assert all(reply and "{" not in reply for reply in replies.values())
    # Distinct refusals get distinct replies (the two "helpdesk" ones say the same thing).
    assert len(set(replies.values())) == len(replies) - 1
    general = t(booking_handlers.ERROR_TEXTS[errors.BookingError.code])
    assert general not in replies.values()
    for error in _subclasses(errors.BookingError):
        assert t(booking_handlers.ERROR_TEXTS.get(error.code, general), days=30)


# --- one card, whoever booked ----------------------------------------------------------


def without_stamp(ics: bytes) -> bytes:
    """The calendar file without DTSTAMP (when it was written)."""
    return b"".join(line for line in ics.splitlines(keepends=True) if b"DTSTAMP" not in line)


async def test_the_bot_and_the_outbox_send_the_same_card(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    await open_helpdesks(database, "Sportello Comune")
    citizen_id = await new_citizen(database, bot_settings, 420)
    maria = TelegramUser(app, fake, 420)
    confirm = await choose_slot(maria, await maria.say(f"/{AFTER_INTAKE}"))
    by_bot = await maria.press(data(confirm, "bk:")[0])
    [booked] = await bookings_of(database, citizen_id)
    [bot_card] = [c for c in by_bot if c.method == "editMessageText"]
    [bot_file] = [c for c in by_bot if c.method == "sendDocument"]

    # The same booking, as the outbox tells it when the helpdesk staff made it.
    async with database.transaction() as session:
        citizen = await session.get(CitizenRow, citizen_id)
        assert citizen is not None
        await booking_messages.notify_booking(
            session=session, citizen=citizen, booking=booked,
            kind=booking_messages.MessageKind.BOOKING_CONFIRMED, now=MORNING,
        )  # fmt: skip
    fake.calls.clear()
    sender = OutboxDispatcher(
        bot=app.bot, database=database, settings=bot_settings, worker="card",
        per_chat_interval=0.0, clock=lambda: booked.starts_at - timedelta(hours=1),
    )  # fmt: skip
    assert await sender.run_once() >= 1  # a reminder may be due as well
    [outbox_card] = [c for c in fake.calls if c.method == "sendMessage" and "è prenotato" in c.text]
    [outbox_file] = [c for c in fake.calls if c.method == "sendDocument"]

    # The same heading, then one line saying the staff booked it; the rest is identical.
    bot_lines, outbox_lines = bot_card.text.split("\n"), outbox_card.text.split("\n")
    assert outbox_lines[0] == bot_lines[0] == "✅ <b>Il tuo colloquio Ripartire è prenotato.</b>"
    assert outbox_lines[1] == "L'ha prenotato per te il personale dello sportello."
    assert outbox_lines[2:] == bot_lines[1:]
    assert "Secondo piano &lt;scala B&gt; &amp; ascensore" in bot_card.text
    assert "documento d'identità" in bot_card.text and "tessera sanitaria" in bot_card.text
    assert (
        outbox_card.buttons
        == bot_card.buttons
        == [
            ("🔁 Sposta", f"mv:{booked.id}"),
            ("❌ Annulla", f"cx:{booked.id}"),
        ]
    )
    assert outbox_file.params["caption"] == bot_file.params["caption"]
    [bot_ics], [outbox_ics] = bot_file.files.values(), outbox_file.files.values()
    assert without_stamp(outbox_ics) == without_stamp(bot_ics)
    event = Calendar.from_ical(bot_ics).walk("VEVENT")[0]
    description = str(event.get("description"))
    assert booked.code in description
    assert "Secondo piano" in description and "tessera sanitaria" in description


# --- the booking horizon ---------------------------------------------------------------


async def test_a_day_beyond_the_horizon_is_too_far_not_full(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    [helpdesk] = await open_helpdesks(database, "Sportello Comune")
    await new_citizen(database, bot_settings, 418)
    maria = TelegramUser(app, fake, 418)
    first = datetime.strptime(  # noqa: DTZ007
        data(await maria.say(f"/{AFTER_INTAKE}"), "day:")[0].split(":")[2], "%Y%m%d"
    ).date()
    horizon = bot_settings.booking_horizon_days

    # A stale or forged day past the horizon: too far ahead, and the days that can be booked.
    far = first + timedelta(days=horizon + 1)
    calls = await maria.press(f"day:{helpdesk}:{far:%Y%m%d}")
    said = texts(calls)
    assert "troppo lontano" in said and f"fino a {horizon} giorni" in said
    assert "Non ci sono più posti liberi" not in said
    assert data(calls, "day:")[0] == f"day:{helpdesk}:{first:%Y%m%d}"
    assert data(calls, "tm:") == []

    # A day already gone says so too.
    past = first - timedelta(days=horizon + 1)
    calls = await maria.press(f"day:{helpdesk}:{past:%Y%m%d}")
    assert "già passato" in texts(calls)
    assert "Non ci sono più posti liberi" not in texts(calls)
    assert data(calls, "day:")

    # "More days" past the last page: the last page, and why there is nothing later.
    calls = await maria.press(f"days:{helpdesk}:99")
    assert "Non ci sono giorni più avanti" in texts(calls)
    assert data(calls, "day:")
    assert not [d for d in data(calls, "days:") if d.startswith(f"days:{helpdesk}:100")]


async def test_a_full_day_within_the_horizon_is_still_full(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    [helpdesk] = await open_helpdesks(database, "Sportello Comune")
    await new_citizen(database, bot_settings, 419)
    maria = TelegramUser(app, fake, 419)
    days = data(await maria.say(f"/{AFTER_INTAKE}"), "day:")
    day = datetime.strptime(days[1].split(":")[2], "%Y%m%d").date()  # noqa: DTZ007
    async with database.transaction() as session:
        await hours.add_closure(
            session=session, settings=bot_settings, helpdesk_id=helpdesk, day=day,
            reason="Festa", actor="test",
        )  # fmt: skip
    calls = await maria.press(days[1])
    assert "Non ci sono più posti liberi" in texts(calls)
    assert "troppo lontano" not in texts(calls)


# --- a coordinator's decision comes first ------------------------------------------------

NOT_RESIDENT = [("residence", "no"), ("contact_offer", "yes"), *ELIGIBLE_ANSWERS[-2:]]


async def decide(
    database: Database, settings: Settings, citizen_id: int, *, eligible: bool
) -> None:
    """A coordinator overrides the questionnaire's outcome on the citizen's case."""
    async with database.transaction() as session:
        coordinator = member(await make_staff(session, "coordinatrice", Role.COORDINATORE))
        case = await cases.open_case_of(session=session, citizen_id=citizen_id)
        assert case is not None  # opened when the questionnaire closed
        await cases.override_eligibility(
            session=session, settings=settings, case_id=case.id, eligible=eligible,
            reason="Visto il caso allo sportello", staff=coordinator, now=MORNING,
        )  # fmt: skip


def dispatcher(app: Application, database: Database, settings: Settings) -> OutboxDispatcher:  # type: ignore[type-arg]
    return OutboxDispatcher(
        bot=app.bot, database=database, settings=settings, worker="test",
        per_chat_interval=0.0, clock=lambda: MORNING,
    )  # fmt: skip


async def test_a_citizen_a_coordinator_admits_is_told_and_books(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    [helpdesk] = await open_helpdesks(database, "Sportello Comune")
    citizen_id = await new_citizen(database, bot_settings, 430, answers=NOT_RESIDENT)
    luca = TelegramUser(app, fake, 430)
    calls = await luca.press("hds")
    assert "non può prenotarti un colloquio" in texts(calls) and data(calls, "day:") == []

    await decide(database, bot_settings, citizen_id, eligible=True)
    fake.calls.clear()
    assert await dispatcher(app, database, bot_settings).run_once() == 1
    [told] = [c for c in fake.calls if c.method == "sendMessage"]
    assert int(told.params["chat_id"]) == 430
    assert "un operatore ha esaminato la tua situazione" in told.text
    assert "ora puoi prenotare" in told.text
    assert told.buttons == [("📅 Prenota un colloquio", "hds")]

    # The button starts the bot's own booking steps.
    confirm = await choose_slot(luca, await luca.press("hds"))
    calls = await luca.press(data(confirm, "bk:")[0])
    assert "è prenotato" in texts(calls)
    [booked] = await bookings_of(database, citizen_id)
    assert (booked.helpdesk_id, booked.state) == (helpdesk, "booked")
    # Sent once: nothing left to send.
    assert await dispatcher(app, database, bot_settings).run_once() == 0


async def test_the_admission_is_withdrawn_if_the_citizen_booked_meanwhile(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    [helpdesk] = await open_helpdesks(database, "Sportello Comune")
    citizen_id = await new_citizen(database, bot_settings, 431, answers=NOT_RESIDENT)
    await decide(database, bot_settings, citizen_id, eligible=True)
    async with database.transaction(read_only=True) as session:
        starts_at = await first_free(session, bot_settings, helpdesk)
    await book_for(database, bot_settings, citizen_id, helpdesk, starts_at)  # at the desk
    fake.calls.clear()
    await dispatcher(app, database, bot_settings).run_once()
    assert not [c for c in fake.calls if "un operatore ha esaminato" in c.text]
    async with database.transaction(read_only=True) as session:
        [message] = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "case_eligible")
            )
        ).all()
        # Withdrawn (it no longer applies), not failed: nothing went wrong with delivery.
        assert message.state == MessageState.CANCELLED, message.state


async def test_a_citizen_a_coordinator_rules_out_cannot_book(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    [helpdesk] = await open_helpdesks(database, "Sportello Comune")
    citizen_id = await new_citizen(database, bot_settings, 432)
    await decide(database, bot_settings, citizen_id, eligible=False)
    anna = TelegramUser(app, fake, 432)
    async with database.transaction(read_only=True) as session:
        starts_at = await first_free(session, bot_settings, helpdesk)
    epoch = int(starts_at.timestamp())

    for calls in (
        await anna.say(f"/{AFTER_INTAKE}"),
        await anna.say("/prenotazione"),
        await anna.press("hds"),
        await anna.press(f"day:{helpdesk}:{starts_at.astimezone(ROME):%Y%m%d}"),
        await anna.press(f"tm:{helpdesk}:{epoch}"),
        await anna.press(f"bk:{helpdesk}:{epoch}"),  # forged: never offered to her
        await anna.press("wl"),
    ):
        said = texts(calls)
        assert "Un operatore ha esaminato la tua situazione" in said, said
        assert "Dalle tue risposte" not in said
        assert "331 693 8049" in said  # the contacts
        assert data(calls, "day:") == data(calls, "tm:") == data(calls, "bk:") == []
        assert data(calls, "hds") == []
    assert await bookings_of(database, citizen_id) == []

    # The service refuses her too, whoever calls it.
    with pytest.raises(errors.NotAllowedToBook) as refused:
        await book_for(database, bot_settings, citizen_id, helpdesk, starts_at)
    assert refused.value.code == "not_eligible"
    assert await bookings_of(database, citizen_id) == []


# --- SQL per update ----------------------------------------------------------------------

# What each update sent before the flow asked the citizen's standing (one statement for
# the intake, the booking and the waitlist): it may take fewer, never more.
STATEMENTS_BEFORE = {"/prenotazione": 5, "hds": 7, "day": 5, "tm": 5, "bk": 20, "booked": 4}


async def test_the_standing_adds_no_statement_to_any_step(
    app: Application, fake: FakeTelegram, database: Database, bot_settings: Settings
) -> None:  # type: ignore[type-arg]
    await open_helpdesks(database, "Sportello Comune")
    await new_citizen(database, bot_settings, 433)
    maria = TelegramUser(app, fake, 433)
    sent: dict[str, int] = {}

    async def step(name: str, update: Awaitable[list[Call]]) -> list[Call]:
        with counting(database) as statements:
            calls = await update
        sent[name] = len(statements)
        return calls

    await step("/prenotazione", maria.say("/prenotazione"))
    days = await step("hds", maria.press("hds"))
    times = await step("day", maria.press(data(days, "day:")[2]))
    confirm = await step("tm", maria.press(data(times, "tm:")[0]))
    booked = await step("bk", maria.press(data(confirm, "bk:")[0]))
    assert "è prenotato" in texts(booked)
    await step("booked", maria.say("/prenotazione"))
    assert all(sent[name] <= before for name, before in STATEMENTS_BEFORE.items()), sent
    # Who may book and what they hold: read once, not the intake, booking, waitlist apart.
    assert sent["/prenotazione"] < STATEMENTS_BEFORE["/prenotazione"], sent
    assert sent["hds"] < STATEMENTS_BEFORE["hds"], sent
