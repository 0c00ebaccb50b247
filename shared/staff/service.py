"""Create, find and authenticate staff users; the administrator's account management."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.db import utcnow
from shared.staff.errors import InvalidUsername, StaffError, UnknownStaffUser, UsernameTaken
from shared.staff.models import Role, StaffUser
from shared.staff.passwords import check_strength, hash_password, verify_password

_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive ASCII: `Mario.Rossi` and `mario.rossi` are one account."""
    value = unicodedata.normalize("NFKC", username).strip().lower()
    if not _USERNAME_RE.match(value):
        raise InvalidUsername(
            "A username has 2-40 characters: letters a-z, digits, dot, dash or underscore."
        )
    return value


async def get_by_username(*, session: AsyncSession, username: str) -> StaffUser | None:
    try:
        name = normalise_username(username)
    except InvalidUsername:
        return None
    return await session.scalar(select(StaffUser).where(StaffUser.username == name))


async def add_user(
    *,
    session: AsyncSession,
    username: str,
    password: str,
    role: Role,
    display_name: str | None = None,
    actor: str = "system",
) -> StaffUser:
    """Create a staff account after checking the username is free and the password strong."""
    name = normalise_username(username)
    shown = (display_name or name).strip()[:120] or name
    check_strength(password, user_inputs=(name, shown))
    taken = await session.scalar(select(func.count()).where(StaffUser.username == name))
    if taken:
        raise UsernameTaken(f"The username {name!r} is already taken.")
    user = StaffUser(
        username=name,
        display_name=shown,
        role=role.value,
        password_hash=hash_password(password),
        active=True,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise UsernameTaken(f"The username {name!r} is already taken.") from None
    await audit.record(
        session=session,
        actor=actor,
        action="staff.create",
        object_type="staff_user",
        object_id=str(user.id),
        details={"role": role.value},
    )
    return user


async def authenticate(*, session: AsyncSession, username: str, password: str) -> StaffUser:
    """Return the active user with this password, or raise `UnknownStaffUser` (same for both)."""
    user = await get_by_username(session=session, username=username)
    if user is None or not user.active:
        # Spend the same time as a real check so response timing doesn't reveal usernames.
        verify_password(password, _DUMMY_HASH)
        raise UnknownStaffUser("Wrong username or password.")
    valid, updated_hash = verify_password(password, user.password_hash)
    if not valid:
        raise UnknownStaffUser("Wrong username or password.")
    if updated_hash is not None:
        user.password_hash = updated_hash
    user.last_login_at = utcnow()
    return user


_DUMMY_HASH = hash_password("not-a-real-password-just-for-timing")


# --- administration (SPEC section 6: staff accounts are the administrator's) -----------


class OwnAccount(StaffError):
    """Administrators don't deactivate, demote or reset themselves: no one is locked out."""


async def list_users(*, session: AsyncSession) -> list[StaffUser]:
    """Every staff account, active ones first, by username."""
    query = select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.username)
    return list((await session.scalars(query)).all())


async def get_user(*, session: AsyncSession, user_id: int) -> StaffUser:
    user = await session.get(StaffUser, user_id)
    if user is None:
        raise UnknownStaffUser(f"No staff account {user_id}.")
    return user


def _not_self(user: StaffUser, by_user_id: int, message: str) -> None:
    if user.id == by_user_id:
        raise OwnAccount(message)


async def set_active(
    *,
    session: AsyncSession,
    user_id: int,
    active: bool,
    by_user_id: int,
    actor: str,
    now: datetime,
) -> StaffUser:
    """Let an account sign in again, or stop it: deactivating signs it out everywhere."""
    # sessions imports this module: imported here to keep the import graph one-way at load.
    from shared.staff import sessions

    user = await get_user(session=session, user_id=user_id)
    _not_self(user, by_user_id, "You cannot deactivate your own account.")
    if not active:
        await sessions.revoke_all(session=session, user_id=user.id, now=now)
    if user.active == active:
        return user
    user.active = active
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="staff.reactivate" if active else "staff.deactivate",
        object_type="staff_user",
        object_id=str(user.id),
    )
    return user


async def reset_password(
    *,
    session: AsyncSession,
    user_id: int,
    password: str,
    by_user_id: int,
    actor: str,
    now: datetime,
) -> StaffUser:
    """Give an account a new password (same strength rules); its sessions are signed out."""
    from shared.staff import sessions

    user = await get_user(session=session, user_id=user_id)
    _not_self(user, by_user_id, "Change your own password from the password page.")
    check_strength(password, user_inputs=(user.username, user.display_name))
    user.password_hash = hash_password(password)
    await sessions.revoke_all(session=session, user_id=user.id, now=now)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="staff.password_reset",
        object_type="staff_user",
        object_id=str(user.id),
    )
    return user


async def change_role(
    *, session: AsyncSession, user_id: int, role: Role, by_user_id: int, actor: str
) -> StaffUser:
    """Give an account another role; it applies from the account's next page."""
    user = await get_user(session=session, user_id=user_id)
    _not_self(user, by_user_id, "You cannot change your own role.")
    previous = user.role
    if previous == role.value:
        return user
    user.role = role.value
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="staff.role_change",
        object_type="staff_user",
        object_id=str(user.id),
        details={"from": previous, "to": role.value},
    )
    return user
