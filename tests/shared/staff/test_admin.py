"""The administrator's account management: deactivate, reset, change role, never oneself."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.staff import service as staff
from shared.staff.errors import UnknownStaffUser, WeakPassword
from shared.staff.models import Role, StaffSession, StaffUser
from shared.staff.passwords import verify_password

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "violet tractor under seven moons"
NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


async def users(session: AsyncSession) -> tuple[StaffUser, StaffUser]:
    admin = await staff.add_user(
        session=session, username="anna", password=PASSWORD, role=Role.ADMIN
    )
    worker = await staff.add_user(
        session=session, username="marco", password=PASSWORD, role=Role.OPERATORE
    )
    return admin, worker


async def open_session(session: AsyncSession, user: StaffUser) -> StaffSession:
    record = StaffSession(
        token_hash=f"hash-{user.id}",
        user_id=user.id,
        csrf_token="x",
        created_at=NOW,
        last_seen_at=NOW,
    )
    session.add(record)
    await session.flush()
    return record


async def actions(session: AsyncSession) -> list[tuple[str, str | None]]:
    events = await session.scalars(
        select(AuditEvent).where(AuditEvent.action != "staff.create").order_by(AuditEvent.id)
    )
    return [(e.action, e.object_id) for e in events]


async def test_list_and_get(session: AsyncSession) -> None:
    admin, worker = await users(session)
    await staff.set_active(
        session=session, user_id=admin.id, active=False, by_user_id=worker.id, actor="t", now=NOW
    )
    assert [u.username for u in await staff.list_users(session=session)] == ["marco", "anna"]
    assert await staff.get_user(session=session, user_id=worker.id) is worker
    with pytest.raises(UnknownStaffUser):
        await staff.get_user(session=session, user_id=9999)


async def test_deactivation_revokes_sessions_and_is_audited(session: AsyncSession) -> None:
    admin, worker = await users(session)
    record = await open_session(session, worker)
    await staff.set_active(
        session=session, user_id=worker.id, active=False, by_user_id=admin.id,
        actor="staff:anna", now=NOW,
    )  # fmt: skip
    await session.refresh(record)
    assert worker.active is False
    assert record.revoked_at == NOW
    await staff.set_active(
        session=session, user_id=worker.id, active=True, by_user_id=admin.id,
        actor="staff:anna", now=NOW,
    )  # fmt: skip
    assert worker.active is True
    # Asking for the state it already has changes and records nothing.
    await staff.set_active(
        session=session, user_id=worker.id, active=True, by_user_id=admin.id,
        actor="staff:anna", now=NOW,
    )  # fmt: skip
    assert await actions(session) == [
        ("staff.deactivate", str(worker.id)),
        ("staff.reactivate", str(worker.id)),
    ]


async def test_nobody_locks_themself_out(session: AsyncSession) -> None:
    admin, _ = await users(session)
    with pytest.raises(staff.OwnAccount):
        await staff.set_active(
            session=session, user_id=admin.id, active=False, by_user_id=admin.id,
            actor="staff:anna", now=NOW,
        )  # fmt: skip
    with pytest.raises(staff.OwnAccount):
        await staff.change_role(
            session=session, user_id=admin.id, role=Role.OPERATORE, by_user_id=admin.id,
            actor="staff:anna",
        )  # fmt: skip
    with pytest.raises(staff.OwnAccount):
        await staff.reset_password(
            session=session, user_id=admin.id, password=NEW_PASSWORD, by_user_id=admin.id,
            actor="staff:anna", now=NOW,
        )  # fmt: skip
    assert (admin.active, admin.role) == (True, "admin")
    assert await actions(session) == []


async def test_reset_password_checks_strength_and_signs_out(session: AsyncSession) -> None:
    admin, worker = await users(session)
    record = await open_session(session, worker)
    with pytest.raises(WeakPassword):
        await staff.reset_password(
            session=session, user_id=worker.id, password="marco12345", by_user_id=admin.id,
            actor="staff:anna", now=NOW,
        )  # fmt: skip
    await staff.reset_password(
        session=session, user_id=worker.id, password=NEW_PASSWORD, by_user_id=admin.id,
        actor="staff:anna", now=NOW,
    )  # fmt: skip
    await session.refresh(record)
    assert record.revoked_at == NOW
    assert verify_password(NEW_PASSWORD, worker.password_hash)[0]
    assert not verify_password(PASSWORD, worker.password_hash)[0]
    assert await actions(session) == [("staff.password_reset", str(worker.id))]
    event = await session.scalar(
        select(AuditEvent).where(AuditEvent.action == "staff.password_reset")
    )
    assert event is not None
    assert NEW_PASSWORD not in str(event.details)
    assert "argon2" not in str(event.details)


async def test_change_role(session: AsyncSession) -> None:
    admin, worker = await users(session)
    await staff.change_role(
        session=session, user_id=worker.id, role=Role.COORDINATORE, by_user_id=admin.id,
        actor="staff:anna",
    )  # fmt: skip
    assert worker.role == "coordinatore"
    event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "staff.role_change"))
    assert event is not None
    assert (event.details["from"], event.details["to"]) == ("operatore", "coordinatore")
