"""Browse the audit log: filters, newest first, keyset pages (read-only by design).

Event ids are handed out in insertion order, which is time order, so "newest first" is
`id DESC` on the primary key and the next page starts below the last id shown: a page
costs the same at the end of a million events as at the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import phrases
from shared.audit.models import AuditEvent
from shared.booking.models import Booking
from shared.staff.models import StaffUser

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class AuditFilter:
    """What to look for; empty fields match everything."""

    # Who did it: the start of the actor ("staff:", "staff:anna", "citizen:").
    actor: str = ""
    # What was done: the start of the action ("booking.", "staff.create").
    action: str = ""
    # What it was done to: exact type ("booking") and id ("42").
    object_type: str = ""
    object_id: str = ""
    # When: from `since` (included) to `until` (excluded).
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    # Pass as `before` to get the next, older page; None on the last page.
    older: int | None


async def browse(
    *,
    session: AsyncSession,
    filters: AuditFilter | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> AuditPage:
    """Events matching `filters`, newest first, older than event `before` when given."""
    filters = filters or AuditFilter()
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    query = select(AuditEvent)
    if filters.actor:
        query = query.where(AuditEvent.actor.startswith(filters.actor, autoescape=True))
    if filters.action:
        query = query.where(AuditEvent.action.startswith(filters.action, autoescape=True))
    if filters.object_type:
        query = query.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        query = query.where(AuditEvent.object_id == filters.object_id)
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    # One row more than shown tells whether an older page exists.
    rows = list(await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    events = rows[:limit]
    older = events[-1].id if len(rows) > limit else None
    return AuditPage(events=events, older=older)


async def known_for(*, session: AsyncSession, events: list[AuditEvent]) -> phrases.Known:
    """What the events' sentences name beyond themselves: the start times of the bookings
    and the names of the staff they concern (two statements at most, none if not needed)."""
    booking_ids: set[int] = set()
    staff_ids: set[int] = set()
    for event in events:
        booking_ids |= phrases.booking_ids(event.action, event.details, event.object_id)
        staff_ids |= phrases.staff_ids(event.action, event.details)
    starts: dict[int, datetime] = {}
    if booking_ids:
        query = select(Booking.id, Booking.starts_at).where(Booking.id.in_(booking_ids))
        starts = {id_: at for id_, at in await session.execute(query)}
    names: dict[int, str] = {}
    if staff_ids:
        named = select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(staff_ids))
        names = {id_: name for id_, name in await session.execute(named)}
    return phrases.Known(starts=starts, staff=names)
