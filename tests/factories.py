"""Small builders for test data; each flushes and returns what it made."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import demo, hours
from shared.booking.availability import FreeSlot, booking_window
from shared.booking.models import Helpdesk
from shared.citizens.models import Citizen
from shared.citizens.service import PRIVACY_NOTICE_VERSION
from shared.intake.models import Intake, IntakeState
from shared.settings import Settings

ROME = ZoneInfo("Europe/Rome")
_ids = itertools.count(1000)
CONSENTED_AT = datetime(2026, 1, 1, 9, tzinfo=ROME)


def rome(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


def well_inside(
    slots: list[FreeSlot], settings: Settings, now: datetime, margin: timedelta = timedelta(hours=6)
) -> list[FreeSlot]:
    """The slots at least `margin` inside both ends of the booking window at `now`: still
    bookable by a test that books at an earlier `now` or acts on the real clock a little
    later, whatever the hour the suite runs at (the window's ends move with the clock)."""
    earliest, latest = booking_window(settings, now)
    inside = [s for s in slots if earliest + margin <= s.starts_at < latest - margin]
    assert inside, "no slot well inside the booking window"
    return inside


# A completed questionnaire that meets every requirement: the demo's, not urgent.
ELIGIBLE_ANSWERS: dict[str, Any] = {**demo.ELIGIBLE_ANSWERS, "urgent": "no"}


async def make_citizen(
    session: AsyncSession,
    *,
    urgent: bool = False,
    telegram: bool = True,
    name: str = "Maria Rossi",
    consented: bool = True,
    eligible: bool | None = True,
) -> Citizen:
    """A citizen who may book: consented, with a completed questionnaire that found them
    `eligible` (None: no questionnaire at all)."""
    number = next(_ids)
    citizen = Citizen(
        telegram_user_id=number if telegram else None,
        telegram_chat_id=number if telegram else None,
        name=name,
        urgent=urgent,
        consent_version=PRIVACY_NOTICE_VERSION if consented else None,
        consented_at=CONSENTED_AT if consented else None,
    )
    session.add(citizen)
    await session.flush()
    if eligible is not None:
        answers = {
            **ELIGIBLE_ANSWERS,
            "urgent": "yes" if urgent else "no",
            **({} if eligible else {"residence": "no"}),
            "name": name,
        }
        session.add(
            Intake(
                citizen_id=citizen.id,
                state=IntakeState.COMPLETED.value,
                answers=answers,
                history=list(answers),
                completed_at=CONSENTED_AT,
                eligible=eligible,
                urgent=urgent,
            )
        )
        await session.flush()
    return citizen


async def make_helpdesk(
    session: AsyncSession,
    *,
    name: str = "Sportello Comune",
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4),
    opens_at: time = time(9),
    closes_at: time = time(12),
    slot_minutes: int = 30,
    places: int = 1,
    valid_from: date = date(2026, 1, 1),
) -> Helpdesk:
    helpdesk = await hours.create_helpdesk(
        session=session, name=name, address="Via Roma 1, Cernusco sul Naviglio", actor="test"
    )
    for weekday in weekdays:
        await hours.add_opening_rule(
            session=session,
            helpdesk_id=helpdesk.id,
            weekday=weekday,
            opens_at=opens_at,
            closes_at=closes_at,
            slot_minutes=slot_minutes,
            places=places,
            valid_from=valid_from,
            actor="test",
        )
    return helpdesk
