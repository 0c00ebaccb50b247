"""Request-scoped dependencies: the unit of work, who is signed in, roles, CSRF.

Every route declares who may use it with `Depends(allow(...))`; the test
`tests/dashboard/test_authorization.py` sweeps the route table against its own
expectations, so a route without a declared rule fails the build.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

from shared.cases import access
from shared.db import Database, utcnow
from shared.i18n import N_
from shared.settings import Settings
from shared.staff import sessions
from shared.staff.models import Role

ROLE_LABELS = {
    Role.OPERATORE: N_("case worker"),
    Role.COORDINATORE: N_("coordinator"),
    Role.ADMIN: N_("administrator"),
}
SESSION_COOKIE = "ripartire_session"
LOGIN_CSRF_COOKIE = "ripartire_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class SignInRequired(Exception):
    """No valid session: the error handler redirects to /login."""


@dataclass(frozen=True)
class Viewer:
    """Who is signed in: plain values, usable even after the request's transaction ended."""

    user_id: int
    username: str
    display_name: str
    role: Role
    session_id: int
    csrf_token: str
    language: str

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"

    @property
    def member(self) -> access.StaffMember:
        """Who is acting, as the case and plan services take it."""
        return access.StaffMember(user_id=self.user_id, role=self.role, actor=self.actor)


def settings_of(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


def writes_on_read(
    when: Callable[[Request], bool] | None = None,
) -> Callable[[Endpoint], Endpoint]:
    """Mark a GET route that writes (an audited read, a cache it fills), or writes `when`
    the request asks something (a search, which is audited): its unit of work takes the
    write lock up front, as a POST's does."""

    def mark(endpoint: Endpoint) -> Endpoint:
        endpoint.writes_on_read = when or _always  # type: ignore[attr-defined]
        return endpoint

    return mark


def _always(_request: Request) -> bool:
    return True


def only_reads(request: Request) -> bool:
    """Whether the request's unit of work is a read transaction: a GET, HEAD or OPTIONS to
    a route not marked `writes_on_read`.

    On SQLite a read transaction takes no lock (WAL), so staff reading pages neither wait
    behind the bot's and the outbox's writes nor make them wait; and it refuses writes
    (`shared.db`), so a GET route that writes without its mark fails in its tests instead
    of meeting "database is locked" under load. A write upgraded mid-transaction would.
    """
    if request.method in UNSAFE_METHODS:
        return False
    writes: Callable[[Request], bool] | None = getattr(
        request.scope.get("endpoint"), "writes_on_read", None
    )
    return writes is None or not writes(request)


@dataclass(frozen=True)
class PendingTouch:
    session_id: int
    now: datetime


async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed after the route, rolled back if it raises.

    A write transaction for changes (and GET routes marked `writes_on_read`), a read
    transaction for the rest (see `only_reads`). A reading request whose staff session is
    due a touch touches it in a short write transaction of its own once the read one has
    ended: one connection at a time, so many requests at once can't take the pool's
    connections in pairs.
    """
    database: Database = request.app.state.database
    async with database.transaction(read_only=only_reads(request)) as session:
        yield session
    touch: PendingTouch | None = getattr(request.state, "touch", None)
    if touch is not None:
        async with database.transaction() as writing:
            await sessions.touch(session=writing, session_id=touch.session_id, now=touch.now)


def all_or_nothing(session: AsyncSession) -> AsyncSessionTransaction:
    """A savepoint around one change: if the service raises, what it had written is undone.

    The request's unit of work commits whenever the route returns, also when it answers a
    refused change with the form and "nothing was changed": a service may have written
    part of its work before refusing (a plan's state before the check of its funds, the
    first support's money before the second's didn't fit). Routes that turn a domain
    error into a page make the call inside this, so the page tells the truth.
    """
    return session.begin_nested()


async def commit_early(session: AsyncSession) -> None:
    """End the request's unit of work now, before long work that only reads.

    What the route wrote until then is committed and its locks are released (SQLite's
    write lock, which a writing request's transaction takes up front; the audit chain's end
    on PostgreSQL): a minute of writing a file must not keep other requests, the bot and the
    outbox waiting. The route reads on in a transaction of its own and writes nothing more
    through `session`.
    """
    await session.commit()


# Function scope: the transaction ends when the route returns, before the response is sent
# (FastAPI's default would commit only after the client has it, so a browser following a
# redirect at once could read the database before the change is there).
Session = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]


async def optional_viewer(request: Request, session: Session) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    policy = sessions.SessionPolicy.from_settings(settings_of(request))
    now = utcnow()
    found = await sessions.resume(session=session, token=token, now=now, policy=policy)
    if found is None:
        return None
    user, record = found.user, found.record
    if found.touch_due:
        await _touch(request, session, record.id, now)
    viewer = Viewer(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        session_id=record.id,
        csrf_token=record.csrf_token,
        language=request.cookies.get("lang", "it"),
    )
    request.state.viewer = viewer
    request.state.csrf_token = record.csrf_token
    return viewer


async def _touch(request: Request, session: AsyncSession, session_id: int, now: datetime) -> None:
    """Record the session's use (at most once a minute, `sessions.TOUCH_INTERVAL`): in the
    request's transaction when it writes anyway, else once its read transaction has ended
    (`unit_of_work`)."""
    if only_reads(request):
        request.state.touch = PendingTouch(session_id=session_id, now=now)
    else:
        await sessions.touch(session=session, session_id=session_id, now=now)


async def _submitted_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def from_another_site(request: Request) -> bool:
    """True when the browser says the request was started by another site.

    Defence in depth next to the CSRF token: `Sec-Fetch-Site` where the browser sends it,
    else `Origin` (`null` comes from sandboxed frames and the like, never from our pages,
    whose referrer policy keeps the origin on same-origin requests).
    """
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    host = request.headers.get("host", "").lower()
    return origin == "null" or urlsplit(origin).netloc.lower() != host


async def _check_unsafe_request(request: Request, expected_csrf: str) -> None:
    """A state-changing request must come from our own pages and carry the CSRF token."""
    if request.method not in UNSAFE_METHODS:
        return
    if from_another_site(request) or not _same(await _submitted_csrf(request), expected_csrf):
        raise HTTPException(status_code=403, detail="csrf")


async def check_csrf(request: Request, viewer: Viewer | None) -> None:
    """State-changing requests must carry the session's CSRF token (403 otherwise)."""
    await _check_unsafe_request(request, viewer.csrf_token if viewer is not None else "")


def allow(*roles: Role) -> Callable[..., Coroutine[Any, Any, Viewer]]:
    """A dependency admitting signed-in users with one of `roles` (and checking CSRF)."""

    async def dependency(
        request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]
    ) -> Viewer:
        if viewer is None:
            raise SignInRequired
        await check_csrf(request, viewer)
        if viewer.role not in roles:
            raise HTTPException(status_code=403)
        return viewer

    dependency.allowed_roles = frozenset(roles)  # type: ignore[attr-defined]
    return dependency


def public() -> Callable[..., Coroutine[Any, Any, None]]:
    """A dependency admitting everyone (the sign-in page); CSRF via a pre-session cookie."""

    async def dependency(request: Request) -> None:
        await _check_unsafe_request(request, request.cookies.get(LOGIN_CSRF_COOKIE, ""))

    dependency.allowed_roles = None  # type: ignore[attr-defined]
    return dependency


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


STAFF = (Role.OPERATORE, Role.COORDINATORE)
COORDINATION = (Role.COORDINATORE,)
ADMINISTRATION = (Role.ADMIN,)
EVERYONE = (Role.OPERATORE, Role.COORDINATORE, Role.ADMIN)
