from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.db import Database
from shared.staff import service as staff
from shared.staff.errors import InvalidUsername, UnknownStaffUser, UsernameTaken, WeakPassword
from shared.staff.models import Role, StaffUser

GOOD_PASSWORD = "correct horse battery staple"


async def test_add_user_hashes_with_argon2id(session: AsyncSession) -> None:
    user = await staff.add_user(
        session=session, username="Mario.Rossi", password=GOOD_PASSWORD, role=Role.OPERATORE
    )
    assert user.username == "mario.rossi"
    assert user.role == "operatore"
    assert user.password_hash.startswith("$argon2id$")
    assert GOOD_PASSWORD not in user.password_hash
    events = (await session.scalars(select(AuditEvent))).all()
    assert [(e.action, e.object_id) for e in events] == [("staff.create", str(user.id))]


async def test_duplicate_username_is_refused(database: Database) -> None:
    async with database.transaction() as session:
        await staff.add_user(
            session=session, username="anna", password=GOOD_PASSWORD, role=Role.ADMIN
        )
    with pytest.raises(UsernameTaken, match="already taken"):
        async with database.transaction() as session:
            await staff.add_user(
                session=session, username="ANNA", password=GOOD_PASSWORD, role=Role.OPERATORE
            )
    async with database.transaction(read_only=True) as session:
        assert len((await session.scalars(select(StaffUser))).all()) == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 10"),
        ("password123", "too easy"),
        ("qwertyuiop", "too easy"),
        ("giovanni1990", "too easy"),
        ("x" * 129, "at most 128"),
    ],
)
async def test_weak_password_is_refused(session: AsyncSession, password: str, message: str) -> None:
    with pytest.raises(WeakPassword, match=message):
        await staff.add_user(
            session=session, username="giovanni", password=password, role=Role.OPERATORE
        )
    assert (await session.scalars(select(StaffUser))).all() == []


@pytest.mark.parametrize("username", ["a", "with space", "è-accented", "x" * 41, ""])
async def test_bad_username_is_refused(session: AsyncSession, username: str) -> None:
    with pytest.raises(InvalidUsername):
        await staff.add_user(
            session=session, username=username, password=GOOD_PASSWORD, role=Role.OPERATORE
        )


async def test_password_is_verified(database: Database) -> None:
    async with database.transaction() as session:
        await staff.add_user(
            session=session, username="luca", password=GOOD_PASSWORD, role=Role.COORDINATORE
        )
    async with database.transaction() as session:
        user = await staff.authenticate(session=session, username="Luca", password=GOOD_PASSWORD)
        assert user.last_login_at is not None
    for username, password in [("luca", "wrong password!!"), ("nobody", GOOD_PASSWORD)]:
        async with database.transaction() as session:
            with pytest.raises(UnknownStaffUser, match="Wrong username or password"):
                await staff.authenticate(session=session, username=username, password=password)
