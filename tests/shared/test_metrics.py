"""The database's gauges for `/metrics` (shared.metrics): bounded reads, the day in Rome."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from shared import metrics
from shared.booking import service as booking_service
from shared.booking.models import Booking, BookingState
from shared.db import Database
from shared.inbox.models import InboundUpdate
from shared.outbox import service as outbox
from shared.outbox.models import MessageState, OutboxMessage
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

# Twenty past midnight in Rome, 22:20 UTC the day before: "today" is Rome's.
NOW = rome(2026, 6, 9, 0, 20).astimezone(UTC)
APPOINTMENT = rome(2026, 6, 9, 9, 30)
BOOKED_AT = rome(2026, 6, 5, 10)
ROME_TZ = ZoneInfo("Europe/Rome")


async def _book(database: Database, settings: Settings, helpdesk_id: int, minute: int) -> int:
    async with database.transaction() as session:
        citizen = await make_citizen(session)
        booking = await booking_service.book_slot(
            session=session, settings=settings, citizen_id=citizen.id,
            helpdesk_id=helpdesk_id, starts_at=APPOINTMENT.replace(minute=minute),
            actor=f"citizen:{citizen.id}", now=BOOKED_AT,
        )  # fmt: skip
        return booking.id


async def test_bookings_today_by_state_in_the_helpdesks_day(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk_id = (await make_helpdesk(session, places=30)).id
    made = {
        # (created at, state): two today in Rome, one just before its midnight
        "today, booked": (rome(2026, 6, 9, 0, 5), BookingState.BOOKED),
        "today, cancelled": (rome(2026, 6, 9, 0, 15), BookingState.CANCELLED_BY_CITIZEN),
        "yesterday": (rome(2026, 6, 8, 23, 55), BookingState.BOOKED),
    }
    for minute, (created_at, state) in zip((0, 30, 30), made.values(), strict=True):
        booking_id = await _book(database, settings, helpdesk_id, minute)
        async with database.transaction() as session:
            await session.execute(
                update(Booking)
                .where(Booking.id == booking_id)
                .values(created_at=created_at, state=state.value)
            )
    async with database.transaction(read_only=True) as session:
        found = await metrics.database_figures(session=session, now=NOW, tz=settings.tz)
    assert found.bookings_made_today == {
        "booked": 1, "attended": 0, "no_show": 0, "cancelled_by_citizen": 1,
        "cancelled_by_staff": 0,
    }  # fmt: skip
    # All three appointments are at 09:30 or 10:00 today.
    assert found.appointments_today["booked"] == 2
    assert found.appointments_today["cancelled_by_citizen"] == 1
    async with database.transaction(read_only=True) as session:
        tomorrow = await metrics.database_figures(
            session=session, now=NOW + timedelta(days=1), tz=settings.tz
        )
    assert sum(tomorrow.bookings_made_today.values()) == 0
    assert sum(tomorrow.appointments_today.values()) == 0


async def test_the_outbox_backlog_counts_due_unsent_messages_and_the_oldest_age(
    database: Database,
) -> None:
    async with database.transaction() as session:
        citizen_id = (await make_citizen(session)).id
        ids = {}
        for key, due in (
            ("late", NOW - timedelta(minutes=10)), ("sending", NOW - timedelta(minutes=5)),
            ("sent", NOW - timedelta(hours=2)), ("failed", NOW - timedelta(hours=3)),
            ("later", NOW + timedelta(minutes=1)),
        ):  # fmt: skip
            message = await outbox.enqueue(
                session=session, kind="booking_confirmed", citizen_id=citizen_id,
                due_at=due, idempotency_key=key,
            )  # fmt: skip
            assert message is not None
            ids[key] = message.id
        for key, state in (
            ("sending", MessageState.SENDING), ("sent", MessageState.SENT),
            ("failed", MessageState.FAILED),
        ):  # fmt: skip
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == ids[key]).values(state=state.value)
            )
    async with database.transaction(read_only=True) as session:
        found = await metrics.database_figures(session=session, now=NOW, tz=ROME_TZ)
    assert found.outbox_backlog == 2
    assert found.outbox_oldest_seconds == 600.0
    async with database.transaction(read_only=True) as session:
        empty = await metrics.database_figures(
            session=session, now=NOW - timedelta(hours=4), tz=ROME_TZ
        )
    assert (empty.outbox_backlog, empty.outbox_oldest_seconds) == (0, 0.0)


async def test_the_exposition_parses_with_every_family_and_its_help() -> None:
    figures = metrics.DatabaseFigures(
        outbox_backlog=3, outbox_oldest_seconds=42.5, inbox_backlog=1, inbox_oldest_seconds=0.5,
        bookings_made_today={"booked": 4, "attended": 0},
        appointments_today={"booked": 2, "no_show": 1},
    )  # fmt: skip
    families = {
        f.name: f for f in text_string_to_metric_families(metrics.exposition(figures).decode())
    }
    for name in (
        "ripartire_bot_update_seconds", "ripartire_outbox_sent", "ripartire_outbox_not_sent",
        "ripartire_outbox_backlog", "ripartire_outbox_oldest_due_seconds",
        "ripartire_inbox_backlog", "ripartire_inbox_oldest_seconds",
        "ripartire_bookings_made_today", "ripartire_appointments_today", "process_cpu_seconds",
    ):  # fmt: skip
        assert name in families, name
    assert "Per instance" in families["ripartire_outbox_sent"].documentation
    assert "same on every instance" in families["ripartire_outbox_backlog"].documentation
    assert families["ripartire_outbox_oldest_due_seconds"].samples[0].value == 42.5
    today = {s.labels["state"]: s.value for s in families["ripartire_bookings_made_today"].samples}
    assert today == {"booked": 4.0, "attended": 0.0}


async def test_the_inbox_backlog_counts_kept_updates_and_the_oldest_age(
    database: Database,
) -> None:
    async with database.transaction(read_only=True) as session:
        empty = await metrics.database_figures(session=session, now=NOW, tz=ROME_TZ)
    assert (empty.inbox_backlog, empty.inbox_oldest_seconds) == (0, 0.0)
    async with database.transaction() as session:
        for update_id, seconds_ago in ((101, 90), (102, 30), (103, 5)):
            session.add(
                InboundUpdate(
                    update_id=update_id, chat_id=7, payload={"update_id": update_id},
                    received_at=NOW - timedelta(seconds=seconds_ago),
                )
            )  # fmt: skip
    async with database.transaction(read_only=True) as session:
        found = await metrics.database_figures(session=session, now=NOW, tz=ROME_TZ)
    assert (found.inbox_backlog, found.inbox_oldest_seconds) == (3, 90.0)
