"""A known set of bookings for the bookings board's tests (domain and dashboard).

Now is Monday 7 December 2026, 08:00 in Cernusco. Two helpdesks; the citizens:

| who    | channel, reach           | eligibility           | bookings                                  |
|--------|--------------------------|-----------------------|-------------------------------------------|
| Anna   | Telegram; urgent         | eligible              | Tue 8 Dec 09:00 Centro                    |
| Bruno  | phone (no chat)          | eligible              | 17 Nov attended; Tue 8 Dec 09:30 Centro   |
| Carla  | Telegram, blocked the bot| eligible              | Wed 9 Dec 10:00 Ronco (a pending request) |
| Dario  | Telegram                 | not, overridden: yes  | Tue 8 Dec 09:00 Ronco                     |
| Elena  | walk-in (no chat)        | not eligible          | Wed 9 Dec 09:00 Centro                    |
| Franco | Telegram                 | eligible              | 17 Nov, 24 Nov no-shows; Tue 8 Dec 10:00  |
| Gina   | Telegram                 | eligible              | 17 Nov no-show; Thu 10 Dec cancelled      |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import service as booking
from shared.booking.models import Booking, Helpdesk
from shared.cases.models import Case
from shared.citizens.models import Channel, Citizen
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome

NOW = rome(2026, 12, 7, 8)


@dataclass
class BoardData:
    centro: Helpdesk
    ronco: Helpdesk
    citizens: dict[str, Citizen]
    # (citizen's first name, "upcoming" | "17 Nov" | "24 Nov") -> booking id
    bookings: dict[tuple[str, str], int]

    def ids(self, *names: str, when: str = "upcoming") -> set[int]:
        return {self.bookings[name, when] for name in names}


async def _book(
    session: AsyncSession,
    settings: Settings,
    citizen: Citizen,
    helpdesk: Helpdesk,
    starts_at: datetime,
    now: datetime,
) -> Booking:
    return await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=starts_at, actor="staff:coordinatore", now=now,
    )  # fmt: skip


async def board_data(session: AsyncSession, settings: Settings) -> BoardData:
    centro = await make_helpdesk(session, name="Sportello Centro", places=2)
    ronco = await make_helpdesk(session, name="Sportello Ronco", places=2)
    people = {
        "Anna": await make_citizen(session, name="Anna Colombo", urgent=True),
        "Bruno": await make_citizen(session, name="Bruno Ferrari", telegram=False),
        "Carla": await make_citizen(session, name="Carla Brambilla"),
        "Dario": await make_citizen(session, name="Dario Villa", eligible=False),
        "Elena": await make_citizen(session, name="Elena Sala", telegram=False),
        "Franco": await make_citizen(session, name="Franco Galli"),
        "Gina": await make_citizen(session, name="Gina Riva"),
    }
    people["Bruno"].channel = Channel.PHONE.value
    people["Elena"].channel = Channel.WALK_IN.value
    # Dario's questionnaire found him not eligible; a coordinator decided he is.
    session.add(
        Case(citizen_id=people["Dario"].id, eligible=False, eligibility_override=True, urgent=False)
    )
    await session.flush()
    made: dict[tuple[str, str], int] = {}
    # The past: booked the day before, then checked in or marked as no-shows.
    for name, at, outcome in (
        ("Franco", rome(2026, 11, 17, 9), "no_show"),
        ("Gina", rome(2026, 11, 17, 9, 30), "no_show"),
        ("Bruno", rome(2026, 11, 17, 10), "attended"),
        ("Franco", rome(2026, 11, 24, 9), "no_show"),
    ):
        day_before = rome(at.year, at.month, at.day - 1, 8)
        done = await _book(session, settings, people[name], centro, at, day_before)
        if outcome == "no_show":
            await booking.mark_no_show(
                session=session,
                booking_id=done.id,
                actor="staff:operatore",
                now=at.replace(hour=12),
            )
        else:
            await booking.mark_attended(
                session=session, booking_id=done.id, actor="staff:operatore", now=at
            )
        made[name, f"{at.day} Nov"] = done.id
    for name, helpdesk, at in (
        ("Anna", centro, rome(2026, 12, 8, 9)),
        ("Bruno", centro, rome(2026, 12, 8, 9, 30)),
        ("Franco", centro, rome(2026, 12, 8, 10)),
        ("Dario", ronco, rome(2026, 12, 8, 9)),
        ("Carla", ronco, rome(2026, 12, 9, 10)),
        ("Elena", centro, rome(2026, 12, 9, 9)),
        ("Gina", centro, rome(2026, 12, 10, 9)),
    ):
        made[name, "upcoming"] = (
            await _book(session, settings, people[name], helpdesk, at, NOW)
        ).id
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=made["Gina", "upcoming"],
        by=booking.CancelledBy.CITIZEN, actor="citizen", now=NOW,
    )  # fmt: skip
    # After booking: Elena's questionnaire found her not eligible (no decision taken over
    # it); Carla blocked the bot; her booking is a request waiting for a coordinator.
    await session.execute(
        update(Case).where(Case.citizen_id == people["Elena"].id).values(eligible=False)
    )
    people["Carla"].unreachable = True
    await session.execute(
        update(Booking).where(Booking.id == made["Carla", "upcoming"]).values(moderation="pending")
    )
    await session.flush()
    for citizen in people.values():
        await session.refresh(citizen)
    assert await session.scalar(select(Case.id).where(Case.citizen_id == people["Dario"].id))
    return BoardData(centro, ronco, people, made)
