"""Who sees which cases (SPEC section 6), and the record of what staff did with them (J8).

A coordinatore sees and works on every case; an operatore sees the cases assigned to
them and the unassigned ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, or_, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shared.audit import service as audit
from shared.cases.models import Case
from shared.staff.models import Role


@dataclass(frozen=True, slots=True)
class StaffMember:
    """Who is acting on cases: plain values the dashboard takes from its signed-in viewer."""

    user_id: int
    role: Role
    actor: str

    @property
    def sees_all(self) -> bool:
        return self.role is Role.COORDINATORE


def can_see(staff: StaffMember, assigned_to_id: int | None) -> bool:
    """Coordinators see every case; case workers their own and the unassigned ones."""
    if staff.role is Role.COORDINATORE:
        return True
    return staff.role is Role.OPERATORE and assigned_to_id in (None, staff.user_id)


def visible_to(staff: StaffMember) -> ColumnElement[bool]:
    """`can_see` as a condition on `Case`, for queries."""
    if staff.role is Role.COORDINATORE:
        return true()
    if staff.role is Role.OPERATORE:
        return or_(Case.assigned_to_id == staff.user_id, Case.assigned_to_id.is_(None))
    return false()


# Case workers and coordinators can be given cases; admins can't.
ASSIGNABLE_ROLES = (Role.OPERATORE.value, Role.COORDINATORE.value)


async def record(
    session: AsyncSession, actor: str, action: str, case: Case, details: dict[str, Any]
) -> None:
    """Record what staff did to or read of a case in the audit log (SPEC J8)."""
    await audit.record(
        session=session,
        actor=actor,
        action=action,
        object_type="case",
        object_id=str(case.id),
        details=details,
    )
