"""Browsing the audit log: filters and keyset pages, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import queries
from shared.audit.models import AuditEvent

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def seed(session: AsyncSession) -> None:
    rows = [
        ("staff:anna", "booking.create", "booking", "1"),
        ("staff:anna", "booking.cancel", "booking", "1"),
        ("staff:marco", "citizen.read", "citizen", "7"),
        ("citizen:7", "booking.create", "booking", "2"),
        ("staff:anna_b", "staff.create", "staff_user", "3"),
        ("staff:a%", "staff.login", "staff_user", "4"),
    ]
    for day, (actor, action, object_type, object_id) in enumerate(rows):
        session.add(
            AuditEvent(
                at=START + timedelta(days=day), actor=actor, action=action,
                object_type=object_type, object_id=object_id, details={},
            )
        )  # fmt: skip
    await session.flush()


async def found(session: AsyncSession, **filters: object) -> list[tuple[str, str]]:
    page = await queries.browse(session=session, filters=queries.AuditFilter(**filters))  # type: ignore[arg-type]
    return [(e.actor, e.action) for e in page.events]


async def test_filters(session: AsyncSession) -> None:
    await seed(session)
    assert len(await found(session)) == 6
    assert await found(session, actor="staff:anna") == [
        ("staff:anna_b", "staff.create"),
        ("staff:anna", "booking.cancel"),
        ("staff:anna", "booking.create"),
    ]
    # The start of a name, not a pattern: % and _ are plain characters.
    assert await found(session, actor="staff:a%") == [("staff:a%", "staff.login")]
    assert await found(session, actor="staff:anna_") == [("staff:anna_b", "staff.create")]
    assert await found(session, action="booking.create") == [
        ("citizen:7", "booking.create"),
        ("staff:anna", "booking.create"),
    ]
    assert await found(session, object_type="booking", object_id="1") == [
        ("staff:anna", "booking.cancel"),
        ("staff:anna", "booking.create"),
    ]
    assert await found(
        session, since=START + timedelta(days=1), until=START + timedelta(days=3)
    ) == [("staff:marco", "citizen.read"), ("staff:anna", "booking.cancel")]
    assert await found(session, action="booking.", actor="citizen:") == [
        ("citizen:7", "booking.create")
    ]


async def test_keyset_pages(session: AsyncSession) -> None:
    for n in range(7):
        session.add(AuditEvent(at=START, actor="t", action=f"a.{n}", object_type="x", details={}))
    await session.flush()
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        page = await queries.browse(session=session, before=before, limit=3)
        seen += [e.action for e in page.events]
        pages += 1
        if page.older is None:
            break
        before = page.older
    assert pages == 3
    assert seen == [f"a.{n}" for n in reversed(range(7))]


async def test_limit_is_bounded(session: AsyncSession) -> None:
    for n in range(3):
        session.add(AuditEvent(at=START, actor="t", action=f"a.{n}", object_type="x", details={}))
    await session.flush()
    page = await queries.browse(session=session, limit=0)
    assert len(page.events) == 1
    assert page.older is not None
    exact = await queries.browse(session=session, limit=3)
    assert (len(exact.events), exact.older) == (3, None)
