"""Create, find and authenticate staff users."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.db import utcnow
from shared.staff.errors import InvalidUsername, UnknownStaffUser, UsernameTaken
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
        details={"username": name, "role": role.value},
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
