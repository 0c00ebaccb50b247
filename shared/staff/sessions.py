"""Staff sign-in: server-side sessions with idle and absolute expiry, and lockout.

The browser holds a random token; the database holds only its SHA-256, so a leaked
database can't be replayed as cookies. Failures are counted per username, existing or
not, so the answers (and the lockout) never reveal which usernames exist.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.errors import StaffError, UnknownStaffUser, WeakPassword
from shared.staff.models import LoginThrottle, StaffSession, StaffUser
from shared.staff.passwords import check_strength, hash_password, verify_password


class SignInRefused(StaffError):
    """Wrong username or password (deliberately the same message for both)."""


class AccountLocked(StaffError):
    """Too many failures for this username: try again later."""


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta
    max_failures: int
    lockout: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_absolute_hours),
            max_failures=settings.login_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
        )


@dataclass(frozen=True)
class SignedIn:
    user: StaffUser
    record: StaffSession
    token: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _throttle_key(username: str) -> str:
    return username.strip().lower()[:80]


async def _record_failure(session: AsyncSession, username: str, details: dict[str, bool]) -> None:
    """Audit a refused sign-in under the account tried, by id; what was typed is not kept
    (a username is personal data of staff, a mistyped one may be a password)."""
    user = await staff.get_by_username(session=session, username=username)
    await audit.record(
        session=session, actor="anonymous", action="staff.login_failed",
        object_type="staff_user", object_id=str(user.id) if user is not None else None,
        details=details,
    )  # fmt: skip


async def sign_in(
    *,
    session: AsyncSession,
    username: str,
    password: str,
    now: datetime,
    policy: SessionPolicy,
) -> SignedIn:
    """Check the credentials and open a session; failures are counted even when raised."""
    key = _throttle_key(username)
    throttle = await session.get(LoginThrottle, key)
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
        await _record_failure(session, username, {"while_locked": True})
        raise AccountLocked("Too many failed attempts. Try again later.")
    try:
        user = await staff.authenticate(session=session, username=username, password=password)
    except UnknownStaffUser:
        if throttle is None:
            throttle = LoginThrottle(username=key, failures=0)
            session.add(throttle)
        throttle.failures += 1
        locks = throttle.failures >= policy.max_failures
        if locks:
            throttle.failures = 0
            throttle.locked_until = now + policy.lockout
        await session.flush()
        await _record_failure(session, username, {"locks_account": True} if locks else {})
        raise SignInRefused("Wrong username or password.") from None
    if throttle is not None:
        await session.delete(throttle)
    token = secrets.token_urlsafe(32)
    record = StaffSession(
        token_hash=token_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
    )
    session.add(record)
    await session.flush()
    await audit.record(
        session=session, actor=f"staff:{user.username}", action="staff.login",
        object_type="staff_user", object_id=str(user.id),
    )  # fmt: skip
    return SignedIn(user=user, record=record, token=token)


# How often a session's use is written down. A session used more often is touched once in
# this interval, so reading a page needs no write (on SQLite, no wait for the write lock
# behind the bot); the idle expiry is exact to this interval (see `resume`).
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class Resumed:
    user: StaffUser
    record: StaffSession
    # The session's last recorded use is TOUCH_INTERVAL old or more: record this one.
    touch_due: bool


async def resume(
    *, session: AsyncSession, token: str, now: datetime, policy: SessionPolicy
) -> Resumed | None:
    """The user behind a session cookie, or None if unknown, revoked, idle or too old.

    Only reads. A session is idle once more than `policy.idle` has passed since its last
    recorded use (`last_seen_at`, refused when `now - last_seen_at > idle`). Uses are
    recorded by `touch`, at most once a TOUCH_INTERVAL, so the recorded use is less than
    TOUCH_INTERVAL older than the real last one: a session lapses after between
    `idle - TOUCH_INTERVAL` (exclusive) and `idle` (inclusive) of real inactivity, never
    later than the limit. A refused session's times never move again, so it stays refused.
    """
    if not token or len(token) > 200:
        return None
    found = (
        await session.execute(
            select(StaffSession, StaffUser)
            .join(StaffUser, StaffUser.id == StaffSession.user_id)
            .where(StaffSession.token_hash == token_hash(token), StaffSession.revoked_at.is_(None))
        )
    ).first()
    if found is None:
        return None
    record, user = found
    if (
        not user.active
        or now - record.last_seen_at > policy.idle
        or now - record.created_at > policy.absolute
    ):
        return None
    return Resumed(user=user, record=record, touch_due=now - record.last_seen_at >= TOUCH_INTERVAL)


async def touch(*, session: AsyncSession, session_id: int, now: datetime) -> None:
    """Record a use of the session now, unless one was recorded less than TOUCH_INTERVAL ago
    (by a request running at the same time)."""
    await session.execute(
        update(StaffSession)
        .where(StaffSession.id == session_id, StaffSession.last_seen_at <= now - TOUCH_INTERVAL)
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )


async def sign_out(*, session: AsyncSession, record: StaffSession, now: datetime) -> None:
    """Revoke this session: its cookie is worthless from now on."""
    record.revoked_at = now
    await session.flush()


async def revoke_all(*, session: AsyncSession, user_id: int, now: datetime) -> None:
    """Sign a user out everywhere (password changed, account deactivated)."""
    await session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def change_password(
    *,
    session: AsyncSession,
    user: StaffUser,
    current_password: str,
    new_password: str,
    keep: StaffSession,
    now: datetime,
) -> None:
    """Change one's own password; every other session of the user is signed out."""
    valid, _ = verify_password(current_password, user.password_hash)
    if not valid:
        raise SignInRefused("The current password is wrong.")
    if new_password == current_password:
        raise WeakPassword("The new password must be different from the current one.")
    check_strength(new_password, user_inputs=(user.username, user.display_name))
    user.password_hash = hash_password(new_password)
    await session.execute(
        update(StaffSession)
        .where(
            StaffSession.user_id == user.id,
            StaffSession.revoked_at.is_(None),
            StaffSession.id != keep.id,
        )
        .values(revoked_at=now)
    )
    await audit.record(
        session=session, actor=f"staff:{user.username}", action="staff.password_change",
        object_type="staff_user", object_id=str(user.id),
    )  # fmt: skip
