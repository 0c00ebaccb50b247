"""The citizen's "I've read it" under the summary of their plan (not a signature).

The button carries the plan, its version and the start of the summary's hash as the
citizen saw it (`PlanSummary.content_hash`). A tap is recorded only while that is still
what the plan says: the plan is active, at that version, and its summary has the same
hash; otherwise `PlanChanged`, and nothing is written. The record keeps the version and
the whole hash, so the plan page can show which version was read and whether the plan
still says the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.db import upsert_insert
from shared.plans.errors import PlanError, PlanNotFound
from shared.plans.messages import PlanSummary, citizens_plan, plan_summary
from shared.plans.models import Plan, PlanAcknowledgement, PlanState

# How much of the hash a button carries: 64 bits tell two summaries apart, and keep the
# callback data well within Telegram's 64 bytes.
SHOWN_HASH_CHARS = 16


class PlanChanged(PlanError):
    """The summary the citizen read is no longer what the plan says.

    `state` and `version` are the plan's now; `current` is its summary when it is active
    (so the citizen can be shown the new one at once), else None.
    """

    code = "plan_changed"

    def __init__(self, *, state: str, version: int, current: PlanSummary | None) -> None:
        super().__init__(f"the plan is now {state}, version {version}")
        self.state = state
        self.version = version
        self.current = current


def shown_hash(summary: PlanSummary) -> str:
    """The part of the summary's hash that its button carries."""
    return summary.content_hash()[:SHOWN_HASH_CHARS]


@dataclass(frozen=True, slots=True)
class Acknowledged:
    acknowledgement: PlanAcknowledgement
    # False: this summary had already been acknowledged (a second tap).
    new: bool


async def acknowledge_plan(
    *,
    session: AsyncSession,
    citizen_id: int,
    plan_id: int,
    version: int,
    shown: str,
    now: datetime,
) -> Acknowledged:
    """Note that the citizen read the summary of `version` of their plan (`shown`: the start
    of its hash, from the button).

    `PlanNotFound` for a plan that isn't theirs (a forged button: no more said);
    `PlanChanged` when the plan changed since they were shown it. Nothing is written
    when either is raised.
    """
    plan = await citizens_plan(session=session, plan_id=plan_id, citizen_id=citizen_id)
    if plan is None:
        raise PlanNotFound(f"citizen {citizen_id} has no plan {plan_id}")
    summary = await plan_summary(session=session, plan=plan)
    content_hash = summary.content_hash()
    active = plan.state == PlanState.ACTIVE.value
    if not active or plan.version != version or not shown or not content_hash.startswith(shown):
        raise PlanChanged(
            state=plan.state, version=plan.version, current=summary if active else None
        )
    # Two taps at once: the unique key lets one in, the other finds it.
    inserted = await session.scalar(
        upsert_insert(session, PlanAcknowledgement)
        .values(plan_id=plan.id, version=version, content_hash=content_hash, acknowledged_at=now)
        .on_conflict_do_nothing()
        .returning(PlanAcknowledgement.id)
    )
    found = await session.scalar(
        select(PlanAcknowledgement).where(
            PlanAcknowledgement.plan_id == plan.id,
            PlanAcknowledgement.version == version,
            PlanAcknowledgement.content_hash == content_hash,
        )
    )
    assert found is not None
    if inserted is not None:
        await _record(session, plan, citizen_id, found)
    return Acknowledged(found, new=inserted is not None)


async def _record(
    session: AsyncSession, plan: Plan, citizen_id: int, acknowledgement: PlanAcknowledgement
) -> None:
    # On the case, like every other step of the plan, so its timeline shows it.
    await audit.record(
        session=session,
        actor=f"citizen:{citizen_id}",
        action="plan.acknowledge",
        object_type="case",
        object_id=str(plan.case_id),
        details={
            "plan_id": plan.id,
            "version": acknowledgement.version,
            "content_hash": acknowledgement.content_hash,
        },
    )


async def acknowledgements_of(*, session: AsyncSession, plan_id: int) -> list[PlanAcknowledgement]:
    """Every "I've read it" of the plan, newest first, for the plan page."""
    rows = await session.scalars(
        select(PlanAcknowledgement)
        .where(PlanAcknowledgement.plan_id == plan_id)
        .order_by(PlanAcknowledgement.acknowledged_at.desc(), PlanAcknowledgement.id.desc())
    )
    return list(rows.all())
