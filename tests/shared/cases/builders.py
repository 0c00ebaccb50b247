"""Candidates at a given point of their path, for the case tests (service and dashboard)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import service as booking
from shared.booking.models import Booking, Helpdesk
from shared.cases import access
from shared.cases import service as cases
from shared.cases.models import Case
from shared.citizens.models import Channel, Citizen
from shared.citizens.service import PRIVACY_NOTICE_VERSION
from shared.intake.models import Intake, IntakeState
from shared.settings import Settings
from shared.staff.models import Role, StaffUser
from tests.factories import rome

# Monday 7 December 2026, 08:00 in Cernusco; the helpdesk of `make_helpdesk` opens at 09:00.
NOW = rome(2026, 12, 7, 8)
TUESDAY_9 = rome(2026, 12, 8, 9)
WEDNESDAY_9 = rome(2026, 12, 9, 9)

ANSWERS: dict[str, Any] = {
    "residence": "yes",
    "situation": "job_loss",
    "since": "2021-03",
    "pandemic_related": "yes",
    "household": {"members": 3, "minors": 1},
    "benefits": ["naspi"],
    "needs": ["job_search", "microcredit"],
    "urgent": "no",
    "name": "Maria Rossi",
    "phone": "+393316938049",
    "email": None,
    "fiscal_code": None,
}


async def make_staff(
    session: AsyncSession, username: str, role: Role = Role.OPERATORE, *, active: bool = True
) -> StaffUser:
    user = StaffUser(
        username=username,
        display_name=username.title(),
        role=role.value,
        password_hash="not-a-hash",
        active=active,
    )
    session.add(user)
    await session.flush()
    return user


def member(user: StaffUser) -> access.StaffMember:
    return access.StaffMember(user.id, Role(user.role), f"staff:{user.username}")


async def make_candidate(
    session: AsyncSession,
    *,
    name: str = "Maria Rossi",
    phone: str | None = None,
    fiscal_code: str | None = None,
    urgent: bool = False,
    eligible: bool = True,
    telegram_id: int | None = None,
    answers: dict[str, Any] | None = None,
    now: datetime = NOW,
) -> tuple[Citizen, Case]:
    """A citizen who confirmed the pre-screening: their case is new."""
    citizen = Citizen(
        channel=Channel.TELEGRAM.value if telegram_id else Channel.PHONE.value,
        telegram_user_id=telegram_id,
        telegram_chat_id=telegram_id,
        name=name,
        phone=phone,
        fiscal_code=fiscal_code,
        urgent=urgent,
        consent_version=PRIVACY_NOTICE_VERSION,
        consented_at=now,
        created_at=now,
    )
    session.add(citizen)
    await session.flush()
    given = {
        **ANSWERS,
        "name": name,
        "phone": phone,
        "fiscal_code": fiscal_code,
        "urgent": "yes" if urgent else "no",
        **(answers or {}),
    }
    session.add(
        Intake(
            citizen_id=citizen.id,
            state=IntakeState.COMPLETED.value,
            answers=given,
            history=list(given),
            completed_at=now,
            eligible=eligible,
            urgent=urgent,
        )
    )
    case = await cases.on_intake_confirmed(
        session=session, citizen_id=citizen.id, eligible=eligible, urgent=urgent, now=now
    )
    return citizen, case


async def book(
    session: AsyncSession,
    settings: Settings,
    citizen: Citizen,
    helpdesk: Helpdesk,
    starts_at: datetime = TUESDAY_9,
    now: datetime = NOW,
) -> Booking:
    return await booking.book_slot(
        session=session,
        settings=settings,
        citizen_id=citizen.id,
        helpdesk_id=helpdesk.id,
        starts_at=starts_at,
        actor="staff:test",
        now=now,
    )


async def checked_in(
    session: AsyncSession,
    settings: Settings,
    helpdesk: Helpdesk,
    *,
    starts_at: datetime = TUESDAY_9,
    **candidate: Any,
) -> tuple[Citizen, Case, Booking]:
    """A candidate who came to their appointment: ready for the interview's outcome."""
    citizen, case = await make_candidate(session, **candidate)
    made = await book(session, settings, citizen, helpdesk, starts_at)
    await booking.mark_attended(
        session=session, booking_id=made.id, actor="staff:test", now=starts_at
    )
    await session.refresh(case)
    return citizen, case, made
