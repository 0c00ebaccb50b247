"""Demo helpdesks, hours, closures and bookings for `ripartire demo`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import availability, hours
from shared.booking import service as booking
from shared.booking.models import Helpdesk
from shared.citizens.models import Channel, Citizen
from shared.citizens.service import PRIVACY_NOTICE_VERSION
from shared.intake.models import Intake, IntakeState
from shared.settings import Settings

# Fixed-date Italian public holidays (month, day, name).
_HOLIDAYS = (
    (1, 1, "Capodanno"),
    (1, 6, "Epifania"),
    (4, 25, "Festa della Liberazione"),
    (5, 1, "Festa del Lavoro"),
    (6, 2, "Festa della Repubblica"),
    (8, 15, "Ferragosto"),
    (11, 1, "Ognissanti"),
    (12, 8, "Immacolata Concezione"),
    (12, 25, "Natale"),
    (12, 26, "Santo Stefano"),
)

_DEMO_CITIZENS = (
    ("Giuseppe Colombo", "+393331234567", True),
    ("Francesca Brambilla", "+393471112233", False),
    ("Ahmed El Amrani", "+393209876543", True),
    ("Elena Sala", "+393405556677", False),
    ("Roberto Galli", "+393388889900", False),
    ("Chiara Villa", "+393351231231", False),
)

# A completed questionnaire that meets every requirement (also the tests' default).
ELIGIBLE_ANSWERS: dict[str, Any] = {
    "residence": "yes",
    "situation": "job_loss",
    "since": "2021-03",
    "pandemic_related": "yes",
    "household": {"members": 2, "minors": 0},
    "benefits": ["none"],
    "needs": ["job_search"],
}


def _holidays_between(first: date, last: date) -> list[tuple[date, str]]:
    found = []
    for year in range(first.year, last.year + 1):
        for month, day, name in _HOLIDAYS:
            holiday = date(year, month, day)
            if first <= holiday <= last:
                found.append((holiday, name))
    return found


async def seed(*, session: AsyncSession, settings: Settings, now: datetime) -> list[Helpdesk]:
    """Two helpdesks with weekly hours, holiday closures and some slots already booked.

    The first has its directions in English too; the second in Italian only, so an
    English reader gets them with the note that they are in Italian.
    """
    today = now.astimezone(settings.tz).date()
    comune = await hours.create_helpdesk(
        session=session,
        name="Sportello Ripartire – Comune",
        address="Via Tizzoni 2, 20063 Cernusco sul Naviglio (MI)",
        directions={
            "it": "Piano terra, ufficio Politiche sociali. Ingresso accessibile dal cortile.",
            "en": "Ground floor, Social Policies office. Step-free entrance from the courtyard.",
        },
        actor="demo",
    )
    farsi = await hours.create_helpdesk(
        session=session,
        name="Sportello Ripartire – Farsi Prossimo",
        address="Via Marcelline 10, 20063 Cernusco sul Naviglio (MI)",
        directions="Citofono 'Farsi Prossimo', primo piano.",
        actor="demo",
    )
    weekly = (
        (comune.id, 0, time(9), time(12, 30), 30, 1),
        (comune.id, 2, time(9), time(12, 30), 30, 1),
        (comune.id, 3, time(14), time(17, 30), 30, 2),
        (farsi.id, 1, time(9, 30), time(12, 30), 45, 2),
        (farsi.id, 4, time(9, 30), time(12, 30), 45, 1),
    )
    for helpdesk_id, weekday, opens, closes, minutes, places in weekly:
        await hours.add_opening_rule(
            session=session,
            helpdesk_id=helpdesk_id,
            weekday=weekday,
            opens_at=opens,
            closes_at=closes,
            slot_minutes=minutes,
            places=places,
            valid_from=today - timedelta(days=60),
            actor="demo",
        )
    horizon = today + timedelta(days=settings.booking_horizon_days)
    closures = _holidays_between(today, horizon) or [
        (today + timedelta(days=10), "Chiusura straordinaria")
    ]
    for day, reason in closures:
        for helpdesk in (comune, farsi):
            await hours.add_closure(
                session=session,
                settings=settings,
                helpdesk_id=helpdesk.id,
                day=day,
                reason=reason,
                actor="demo",
            )
    await hours.add_extra_opening(
        session=session,
        helpdesk_id=comune.id,
        day=today + timedelta(days=(5 - today.weekday()) % 7 or 7),
        opens_at=time(9),
        closes_at=time(12),
        slot_minutes=30,
        places=1,
        note="Apertura straordinaria del sabato",
        actor="demo",
    )
    free = await availability.list_free_slots(session=session, settings=settings, now=now)
    # Book every third free slot for the demo citizens, so some days look busy.
    for (name, phone, urgent), slot in zip(_DEMO_CITIZENS, free[::3], strict=False):
        # Registered by phone, consented and found eligible: `book_slot` asks their standing.
        citizen = Citizen(
            channel=Channel.PHONE.value,
            name=name,
            phone=phone,
            urgent=urgent,
            consent_version=PRIVACY_NOTICE_VERSION,
            consented_at=now,
        )
        session.add(citizen)
        await session.flush()
        answers = {**ELIGIBLE_ANSWERS, "urgent": "yes" if urgent else "no", "name": name}
        session.add(
            Intake(
                citizen_id=citizen.id,
                state=IntakeState.COMPLETED.value,
                answers=answers,
                history=list(answers),
                started_at=now,
                updated_at=now,
                completed_at=now,
                eligible=True,
                urgent=urgent,
            )
        )
        await booking.book_slot(
            session=session,
            settings=settings,
            citizen_id=citizen.id,
            helpdesk_id=slot.helpdesk_id,
            starts_at=slot.starts_at,
            actor="demo",
            now=now,
        )
    return [comune, farsi]
