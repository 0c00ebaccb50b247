"""The signed paper's scan: accepted by what its bytes are, kept with the plan's version.

A scan is refused when it is empty, larger than `MAX_SCAN_BYTES`, or not a PDF, JPEG or
PNG by its content (`filetype` reads the file's signature: a renamed executable stays an
executable). It is served back only to staff who may see its plan, for that plan.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import filetype
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from shared.cases import access
from shared.plans.errors import IllegalTransition, PlanError, PlanNotFound
from shared.plans.models import Plan, PlanState, SignedScan
from shared.plans.service import case_for_plan, plan_of

MAX_SCAN_BYTES = 10 * 1024 * 1024
ACCEPTED_TYPES = ("application/pdf", "image/jpeg", "image/png")
# A scan belongs to a plan the citizen has signed (or is signing: the form sends both).
SCANNED_STATES = (PlanState.APPROVED.value, PlanState.ACTIVE.value, PlanState.CLOSED.value)


class ScanRefused(PlanError):
    """`reason`: "empty", "too_large" or "wrong_type"."""

    code = "scan_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def media_type_of(content: bytes) -> str:
    """The accepted type the content really is; `ScanRefused` otherwise."""
    if not content:
        raise ScanRefused("empty")
    if len(content) > MAX_SCAN_BYTES:
        raise ScanRefused("too_large")
    kind = filetype.guess(content)
    if kind is None or kind.mime not in ACCEPTED_TYPES:
        raise ScanRefused("wrong_type")
    return str(kind.mime)


async def attach_signed_scan(
    *,
    session: AsyncSession,
    case_id: int,
    content: bytes,
    staff: access.StaffMember,
    now: datetime,
) -> SignedScan:
    """Keep the scan of the signed plan (of its current version)."""
    media_type = media_type_of(content)
    case = await case_for_plan(session, case_id, staff, lock=True)
    plan = await plan_of(session, case, lock=True)
    if plan.state not in SCANNED_STATES:
        raise IllegalTransition(action="scan", state=plan.state)
    scan = SignedScan(
        plan_id=plan.id,
        version=plan.version,
        media_type=media_type,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_at=now,
        uploaded_by=staff.actor,
    )
    session.add(scan)
    await session.flush()
    await access.record(
        session, staff.actor, "plan.scan", case,
        {"plan_id": plan.id, "scan_id": scan.id, "version": plan.version, "bytes": len(content)},
    )  # fmt: skip
    return scan


async def scans_of(*, session: AsyncSession, plan_id: int) -> list[SignedScan]:
    """The plan's scans, newest first (without their content)."""
    rows = await session.scalars(
        select(SignedScan).where(SignedScan.plan_id == plan_id).order_by(SignedScan.id.desc())
    )
    return list(rows.all())


async def get_signed_scan(
    *, session: AsyncSession, case_id: int, scan_id: int, staff: access.StaffMember
) -> SignedScan:
    """A scan of this case's plan, with its content; `PlanNotFound` for any other scan."""
    case = await case_for_plan(session, case_id, staff, lock=False)
    scan = await session.scalar(
        select(SignedScan)
        .join(Plan, Plan.id == SignedScan.plan_id)
        .where(SignedScan.id == scan_id, Plan.case_id == case.id)
        .options(undefer(SignedScan.content))
    )
    if scan is None:
        raise PlanNotFound(f"No scan {scan_id} for case {case_id}.")
    await access.record(
        session, staff.actor, "plan.scan_read", case, {"plan_id": scan.plan_id, "scan_id": scan.id}
    )
    return scan
