from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import demo
from shared.booking import availability
from shared.booking.models import Booking, Closure, Helpdesk
from shared.settings import Settings
from shared.staff.models import StaffUser


async def test_demo_data_covers_every_area(session: AsyncSession, settings: Settings) -> None:
    logins = await demo.seed(session=session, settings=settings)
    assert {login.role.value for login in logins} == {"operatore", "coordinatore", "admin"}
    assert await session.scalar(select(func.count()).select_from(StaffUser)) == len(logins)
    assert await session.scalar(select(func.count()).select_from(Helpdesk)) == 2
    assert await session.scalar(select(func.count()).select_from(Closure)) >= 2
    assert await session.scalar(select(func.count()).select_from(Booking)) >= 3
    free = await availability.list_free_slots(session=session, settings=settings)
    assert len({slot.helpdesk_id for slot in free}) == 2
