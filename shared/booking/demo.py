"""Demo helpdesks, hours, closures and bookings for `ripartire demo`.

A third helpdesk is moderated: its citizens' choices are requests, a few waiting for a
coordinator (one about to expire) and one that expired yesterday.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import availability, hours, moderation
from shared.booking import service as booking
from shared.booking.models import Booking, Helpdesk
from shared.citizens.models import Channel, Citizen
from shared.citizens.service import PRIVACY_NOTICE_VERSION
from shared.intake.models import Intake, IntakeState
from shared.settings import Settings

_DEMO_CITIZENS = (
    ("Giuseppe Colombo", "+393331234567", True),
    ("Francesca Brambilla", "+393471112233", False),
    ("Ahmed El Amrani", "+393209876543", True),
    ("Elena Sala", "+393405556677", False),
    ("Roberto Galli", "+393388889900", False),
    ("Chiara Villa", "+393351231231", False),
)

# Requests at the moderated helpdesk: (name, phone, urgent, hours waited, hours left).
# Registered by phone in the demo (no Telegram chat: nobody real is written to), they
# stand for citizens who chose on Telegram.
_DEMO_REQUESTS = (
    ("Marco Ferrari", "+393391230001", False, 40, 1),
    ("Laura Conti", "+393391230002", True, 20, 26),
    ("Davide Ricci", "+393391230003", False, 2, 46),
)
# Expired yesterday, nobody having confirmed it: the page lists it to phone them.
_DEMO_EXPIRED = ("Sara Moretti", "+393391230004", False)

# How far back the helpdesks' hours go: the demo's history (shared.figures.demo) is that long.
HISTORY_DAYS = 160

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


async def _demo_citizen(
    session: AsyncSession, now: datetime, name: str, phone: str, urgent: bool
) -> Citizen:
    """Registered by phone, consented and found eligible: `book_slot` asks their standing."""
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
    return citizen


async def _request(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    citizen: Citizen,
    slot: availability.FreeSlot,
    *,
    waited: timedelta,
    left: timedelta,
) -> Booking:
    """A citizen's request at the moderated helpdesk, made `waited` ago, `left` to go."""
    made = await booking.book_slot(
        session=session,
        settings=settings,
        citizen_id=citizen.id,
        helpdesk_id=slot.helpdesk_id,
        starts_at=slot.starts_at,
        actor=f"citizen:{citizen.id}",
        now=now,
        by_citizen=True,
    )
    # Demo history: as if made earlier (the service counts its expiry from `now`).
    made.created_at = now - waited
    made.request_expires_at = now + left
    await session.flush()
    return made


async def _seed_requests(
    session: AsyncSession, settings: Settings, now: datetime, helpdesk: Helpdesk
) -> None:
    """Pending requests (one about to expire) and one that expired yesterday."""
    free = await availability.list_free_slots(
        session=session, settings=settings, now=now, helpdesk_id=helpdesk.id
    )
    # Days a little ahead, so each request holds a place still to come.
    later = [slot for slot in free if slot.starts_at >= now + timedelta(days=3)] or free
    chosen = iter(later[::2])
    for name, phone, urgent, waited, left in _DEMO_REQUESTS:
        slot = next(chosen, None)
        if slot is None:
            return
        citizen = await _demo_citizen(session, now, name, phone, urgent)
        await _request(
            session, settings, now, citizen, slot,
            waited=timedelta(hours=waited), left=timedelta(hours=left),
        )  # fmt: skip
    slot = next(chosen, None)
    if slot is None:
        return
    name, phone, urgent = _DEMO_EXPIRED
    citizen = await _demo_citizen(session, now, name, phone, urgent)
    yesterday = now - timedelta(days=1)
    await _request(
        session, settings, now, citizen, slot,
        waited=timedelta(days=3), left=-timedelta(days=1),
    )  # fmt: skip
    # The housekeeping chore's work, a day ago: the place freed, the request expired.
    await moderation.expire_requests(session=session, settings=settings, now=yesterday)


async def seed(*, session: AsyncSession, settings: Settings, now: datetime) -> list[Helpdesk]:
    """Three helpdesks with weekly hours, holiday closures and some slots already booked.

    The first has its directions in English too; the second in Italian only, so an
    English reader gets them with the note that they are in Italian. The third is
    moderated: a coordinator confirms what citizens book there (pending requests, one
    about to expire, and an expired one).
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
    famiglia = await hours.create_helpdesk(
        session=session,
        name="Sportello Ripartire – Centro per la Famiglia",
        address="Piazza Matteotti 3, 20063 Cernusco sul Naviglio (MI)",
        directions="Secondo piano, sala colloqui. Suonare al citofono 'Centro per la Famiglia'.",
        actor="demo",
    )
    await moderation.set_moderated(
        session=session, helpdesk_id=famiglia.id, moderated=True, actor="demo"
    )
    weekly = (
        (comune.id, 0, time(9), time(12, 30), 30, 1),
        (comune.id, 2, time(9), time(12, 30), 30, 1),
        (comune.id, 3, time(14), time(17, 30), 30, 2),
        (farsi.id, 1, time(9, 30), time(12, 30), 45, 2),
        (farsi.id, 4, time(9, 30), time(12, 30), 45, 1),
        (famiglia.id, 0, time(14), time(17), 30, 1),
        (famiglia.id, 2, time(14), time(17), 30, 1),
        (famiglia.id, 4, time(14), time(17), 30, 1),
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
            valid_from=today - timedelta(days=HISTORY_DAYS),
            actor="demo",
        )
    horizon = today + timedelta(days=settings.booking_horizon_days)
    closures = moderation.public_holidays_between(today, horizon) or [
        (today + timedelta(days=10), "Chiusura straordinaria")
    ]
    for day, reason in closures:
        for helpdesk in (comune, farsi, famiglia):
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
    free = [
        slot
        for slot in await availability.list_free_slots(session=session, settings=settings, now=now)
        if slot.helpdesk_id != famiglia.id
    ]
    # Book every third free slot for the demo citizens, so some days look busy.
    for (name, phone, urgent), slot in zip(_DEMO_CITIZENS, free[::3], strict=False):
        citizen = await _demo_citizen(session, now, name, phone, urgent)
        await booking.book_slot(
            session=session,
            settings=settings,
            citizen_id=citizen.id,
            helpdesk_id=slot.helpdesk_id,
            starts_at=slot.starts_at,
            actor="demo",
            now=now,
        )
    await _seed_requests(session, settings, now, famiglia)
    return [comune, farsi, famiglia]
