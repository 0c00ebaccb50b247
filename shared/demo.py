"""Sample data for `ripartire demo`: every domain package adds its own part here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import demo as booking_demo
from shared.cases import demo as case_demo
from shared.db import utcnow
from shared.figures import demo as history_demo
from shared.plans import demo as plan_demo
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: Role


DEMO_LOGINS = (
    DemoLogin("operatore", "sportello-demo-operatore", Role.OPERATORE),
    DemoLogin("operatrice", "sportello-demo-operatrice", Role.OPERATORE),
    DemoLogin("coordinatore", "sportello-demo-coordinatore", Role.COORDINATORE),
    DemoLogin("admin", "sportello-demo-admin", Role.ADMIN),
)
_DISPLAY_NAMES = {
    "operatore": "Luca Bianchi",
    "operatrice": "Giulia Ferri",
    "coordinatore": "Anna Colombo",
    "admin": "Marco Riva",
}


async def seed(*, session: AsyncSession, settings: Settings) -> tuple[DemoLogin, ...]:
    """Fill an empty database with demo data and return the staff logins to print."""
    for login in DEMO_LOGINS:
        await staff.add_user(
            session=session,
            username=login.username,
            password=login.password,
            role=login.role,
            display_name=_DISPLAY_NAMES[login.username],
            actor="demo",
        )
    # One moment for every part, so the dates each part sets agree with the others'.
    now = utcnow()
    await booking_demo.seed(session=session, settings=settings, now=now)
    await case_demo.seed(session=session, settings=settings, now=now)
    history = await history_demo.seed(session=session, settings=settings, now=now)
    await plan_demo.seed(session=session, settings=settings, now=now, extra=history)
    return DEMO_LOGINS
