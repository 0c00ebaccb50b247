from __future__ import annotations

from datetime import date, time, timedelta

from shared.booking import hours, waitlist
from shared.booking import service as booking
from shared.db import Database
from shared.housekeeping import housekeeping_component, run_chores
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 12, 7, 8)


async def test_chores_expire_lapsed_offers(database: Database, settings: Settings) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, weekdays=())
        await hours.add_extra_opening(
            session=session, helpdesk_id=helpdesk.id, day=date(2026, 12, 9), opens_at=time(9),
            closes_at=time(9, 30), slot_minutes=30, places=1, actor="t",
        )  # fmt: skip
        holder, waiting = await make_citizen(session), await make_citizen(session)
        made = await booking.book_slot(
            session=session, settings=settings, citizen_id=holder.id, helpdesk_id=helpdesk.id,
            starts_at=rome(2026, 12, 9, 9), actor="t", now=NOW,
        )  # fmt: skip
        await waitlist.join_waitlist(
            session=session, settings=settings, citizen_id=waiting.id, now=NOW
        )
        await booking.cancel_booking(
            session=session, settings=settings, booking_id=made.id,
            by=booking.CancelledBy.CITIZEN, actor="t", now=NOW,
        )  # fmt: skip
    later = NOW + timedelta(minutes=settings.waitlist_hold_minutes + 1)
    assert (await run_chores(database=database, settings=settings, now=NOW)).expired_offers == 0
    assert (await run_chores(database=database, settings=settings, now=later)).expired_offers == 1
    assert (await run_chores(database=database, settings=settings, now=later)).expired_offers == 0


async def test_component_starts_and_stops(database: Database, settings: Settings) -> None:
    component = housekeeping_component(settings=settings, database=database)
    async with component.lifespan():
        pass


async def test_stale_questionnaires_are_reminded_then_erased(
    database: Database, settings: Settings
) -> None:
    from sqlalchemy import select

    from shared.intake import service as intake
    from shared.intake.models import Intake
    from shared.outbox.models import OutboxMessage

    async with database.transaction() as session:
        citizen = await make_citizen(session)
        await intake.start_intake(session=session, citizen_id=citizen.id, now=NOW)
        await intake.record_answer(
            session=session, citizen_id=citizen.id, step_key="residence", raw="yes",
            now=NOW, settings=settings,
        )  # fmt: skip
    days = timedelta(days=1)
    reminder_day = NOW + (settings.intake_expiry_days - settings.intake_reminder_days_before) * days
    done = await run_chores(database=database, settings=settings, now=reminder_day - days)
    assert (done.expiry_reminders, done.expired_intakes) == (0, 0)
    done = await run_chores(
        database=database, settings=settings, now=reminder_day + timedelta(hours=1)
    )
    assert (done.expiry_reminders, done.expired_intakes) == (1, 0)
    done = await run_chores(
        database=database, settings=settings, now=reminder_day + 2 * timedelta(hours=1)
    )
    assert done.expiry_reminders == 0  # reminded once
    done = await run_chores(
        database=database,
        settings=settings,
        now=NOW + settings.intake_expiry_days * days + timedelta(hours=1),
    )
    assert done.expired_intakes == 1
    async with database.transaction(read_only=True) as session:
        kinds = (await session.scalars(select(OutboxMessage.kind))).all()
        assert kinds == ["intake_expiry_reminder"]
        stored = await session.scalar(select(Intake))
        assert stored is not None
        assert (stored.state, stored.answers) == ("expired", {})


async def test_retention_runs_in_the_first_round_of_each_local_day(
    database: Database, settings: Settings
) -> None:
    from shared.privacy.retention import RetentionCounts

    first = await run_chores(database=database, settings=settings, now=NOW)
    assert first.retention == RetentionCounts()
    again = await run_chores(database=database, settings=settings, now=NOW + timedelta(hours=1))
    assert again.retention is None
    tomorrow = await run_chores(database=database, settings=settings, now=NOW + timedelta(days=1))
    assert tomorrow.retention == RetentionCounts()
