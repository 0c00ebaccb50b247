"""The case list's deadline filter finds the cases the figures page counts."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases import access, listing
from shared.cases.errors import InvalidInput
from shared.figures.deadlines import Deadline, deadlines
from shared.settings import Settings
from shared.staff.models import Role
from tests.shared.figures.dataset import NOW, build

COORDINATOR = access.StaffMember(user_id=1, role=Role.COORDINATORE, actor="staff:coordinatore")


async def _listed(session: AsyncSession, settings: Settings, **raw: str) -> list[int]:
    filters = listing.parse_filters(raw)
    page = await listing.list_cases(
        session=session, settings=settings, staff=COORDINATOR, filters=filters
    )
    return [row.id for row in page.rows]


async def test_each_count_is_the_list_it_links_to(
    session: AsyncSession, settings: Settings
) -> None:
    built = await build(session)
    found = await deadlines(session=session, settings=settings, now=NOW)
    interview, plan = found.of(Deadline.INTERVIEW), found.of(Deadline.PLAN)
    overdue = await _listed(session, settings, due="interview", due_to=str(interview.overdue_to))
    soon = await _listed(
        session, settings, due="interview",
        due_from=str(interview.soon_from), due_to=str(interview.soon_to),
    )  # fmt: skip
    assert overdue == [built.cases["C3"]] and len(overdue) == interview.overdue
    assert soon == [built.cases["C5"]] and len(soon) == interview.soon
    plans = await _listed(session, settings, due="plan", due_to=str(plan.overdue_to))
    assert plans == [built.cases["C11"]]
    assert await _listed(session, settings, due="plan", due_from="2027-03-10") == []
    # The day a deadline falls on is included at both ends: C3's interview is due on 2 March.
    assert await _listed(session, settings, due="interview", due_from="2027-03-02",
                         due_to="2027-03-02") == [built.cases["C3"]]  # fmt: skip
    assert await _listed(session, settings, due="interview", due_to="2027-03-01") == []
    assert date(2027, 3, 2) <= interview.overdue_to


def test_bad_deadline_filters_are_named() -> None:
    with pytest.raises(InvalidInput) as refused:
        listing.parse_filters({"due": "review", "due_from": "2027-13-01", "due_to": "x"})
    assert set(refused.value.errors) == {"due", "due_from", "due_to"}
