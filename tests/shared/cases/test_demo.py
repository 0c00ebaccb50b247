"""The demo has candidates at every stage, so every case page has something to show."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import demo
from shared.booking.models import Booking, Slot, WaitlistEntry, WaitlistState
from shared.cases import access, listing, view
from shared.cases.listing import CaseFilters
from shared.cases.models import Case, Interview
from shared.settings import Settings
from shared.staff.models import Role, StaffUser


async def test_demo_candidates_cover_every_stage(session: AsyncSession, settings: Settings) -> None:
    await demo.seed(session=session, settings=settings)
    states = Counter((await session.scalars(select(Case.state))).all())
    assert {"new", "booked", "checked_in", "interviewed", "closed"} <= set(states)
    outcomes = set((await session.scalars(select(Interview.outcome))).all())
    assert {"admitted", "not_admitted", "referred", None} <= outcomes
    assert await session.scalar(select(func.count()).where(Case.urgent.is_(True))) >= 2
    assert await session.scalar(select(func.count()).where(Case.eligible.is_(False))) >= 1
    assert await session.scalar(select(func.count()).where(Case.no_shows > 0)) >= 1
    assert await session.scalar(select(func.count()).where(Case.previous_case_id.is_not(None))) == 1
    # Every place taken is a booking (or a held waitlist place): the demo kept counts right.
    taken = await session.scalar(select(func.sum(Slot.taken)))
    # Cancelled bookings (an expired request's too) hold none; an open offer holds one.
    booked = select(func.count()).where(Booking.state.not_like("cancelled%"))
    offered = select(func.count()).where(WaitlistEntry.state == WaitlistState.OFFERED.value)
    assert taken == await session.scalar(booked) + await session.scalar(offered)

    workers = (await session.scalars(select(StaffUser).where(StaffUser.role == "operatore"))).all()
    assert {w.username for w in workers} == {"operatore", "operatrice"}
    for worker in workers:
        mine = await listing.list_cases(
            session=session, settings=settings, filters=CaseFilters(assigned="me"),
            staff=access.StaffMember(worker.id, Role.OPERATORE, f"staff:{worker.username}"),
        )  # fmt: skip
        assert len(mine.rows) >= 2, worker.username
    coordinator = await session.scalar(
        select(StaffUser).where(StaffUser.username == "coordinatore")
    )
    assert coordinator is not None
    everyone = access.StaffMember(coordinator.id, Role.COORDINATORE, "staff:coordinatore")
    duplicates = 0
    for row in (
        await listing.list_cases(
            session=session, settings=settings, staff=everyone, filters=CaseFilters(), limit=100
        )
    ).rows:
        detail = await view.get_case_detail(
            session=session, case_id=row.id, staff=everyone, now=row.opened_at
        )
        duplicates += bool(detail.duplicates)
    assert duplicates >= 2
