"""The plan page as staff see it: the case, its plan and every row the page shows.

Read in three statements built once: the case with its citizen and plan; the plan's
rows (objectives, commitments, supports, team, history, signed scans) and the editor's
choices (staff, funds) in one UNION ALL; and the audit event of the read (SPEC J8), as
the case page does (`shared.cases.view`). `service.get_plan` stays for the other callers.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Integer,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from shared.cases import access
from shared.cases.errors import CaseNotFound, CaseNotVisible
from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.crypto import EncryptedJSON
from shared.db import Base, UTCDateTime, for_reading
from shared.funds.models import Fund
from shared.plans.errors import NotAllowed
from shared.plans.models import (
    Plan,
    PlanChange,
    PlanCommitment,
    PlanObjective,
    PlanSupport,
    PlanTeamMember,
    SignedScan,
)
from shared.plans.service import PlanRows
from shared.staff.models import Role, StaffUser

# Who can be responsible for a support or be on the team: the editor's people.
_CHOOSABLE_ROLES = (Role.OPERATORE.value, Role.COORDINATORE.value)


@dataclass(frozen=True, slots=True)
class StaffOption:
    id: int
    display_name: str


@dataclass(frozen=True, slots=True)
class FundOption:
    id: int
    name: str
    active: bool


@dataclass(frozen=True, slots=True)
class PlanPage:
    """Everything the plan page shows; `rows` is None while the case has no plan."""

    case: Case
    citizen: Citizen
    rows: PlanRows | None
    # Newest first.
    history: tuple[PlanChange, ...]
    scans: tuple[SignedScan, ...]
    # Active case workers and coordinators, by name; every fund, by name.
    staff: tuple[StaffOption, ...]
    funds: tuple[FundOption, ...]


@functools.cache
def _keys(model: type[Base]) -> tuple[str, ...]:
    """The attribute keys of a model's mapped columns, in the mapper's order."""
    return tuple(a.key for a in sa_inspect(model, raiseerr=True).column_attrs)


@functools.cache
def _case_statement() -> Any:
    """The case with its citizen and (outer) its plan: one row of plain columns, built once."""
    columns = [getattr(model, key) for model in (Case, Citizen, Plan) for key in _keys(model)]
    return (
        select(*columns)
        .join(Citizen, Citizen.id == Case.citizen_id)
        .outerjoin(Plan, Plan.case_id == Case.id)
        .where(Case.id == bindparam("case_id"))
    )


def _head(row: Sequence[Any]) -> tuple[Case, Citizen, Plan | None]:
    """The case, citizen and plan of `_case_statement`'s row, for reading only."""
    values = iter(row)
    case, citizen, plan = (
        {key: next(values) for key in _keys(model)} for model in (Case, Citizen, Plan)
    )
    return (
        for_reading(Case, case),
        for_reading(Citizen, citizen),
        None if plan["id"] is None else for_reading(Plan, plan),
    )


# The columns every part of the rows' UNION ALL has, with their types.
_COLUMNS: tuple[tuple[str, type[TypeEngine[Any]]], ...] = (
    ("position", Integer),
    ("n1", Integer),
    ("n2", Integer),
    ("n3", Integer),
    ("t1", String),
    ("t2", String),
    ("t3", String),
    ("t4", String),
    ("d1", Date),
    ("d2", Date),
    ("at", UTCDateTime),
    ("flag", Boolean),
    # Encrypted JSON: the changes' before and after are encrypted at rest, and a plain
    # document (a support's details) reads as it is (shared.crypto).
    ("j1", EncryptedJSON),
    ("j2", EncryptedJSON),
)


def _part(kind: str, id_: Any, **values: Any) -> list[ColumnElement[Any]]:
    """One part's columns, in `_COLUMNS`' order; typed NULLs where it has no value."""
    unknown = set(values) - {name for name, _ in _COLUMNS}
    assert not unknown, unknown
    return [
        literal_column(f"'{kind}'", String).label("kind"),
        id_.label("id"),
        *(
            (cast(null(), type_()) if values.get(name) is None else values[name]).label(name)
            for name, type_ in _COLUMNS
        ),
    ]


@functools.cache
def _rows_statement() -> Any:
    """The plan's rows and the editor's choices: one UNION ALL, built once. Parameter:
    `plan_id` (NULL while there is no plan: only the choices come back).

    The staff and funds carry their place in SQL's order by name (`row_number`), so the
    collation that sorts them is the database's, as it was with an ORDER BY.
    """
    plan_id = bindparam("plan_id", type_=Integer)
    parts = [
        select(
            *_part(
                "objective",
                PlanObjective.id,
                position=PlanObjective.position,
                t1=PlanObjective.objective,
                t2=PlanObjective.expected_result,
            )
        ).where(PlanObjective.plan_id == plan_id),
        select(
            *_part(
                "commitment",
                PlanCommitment.id,
                position=PlanCommitment.position,
                t1=PlanCommitment.what,
                d1=PlanCommitment.due_on,
            )
        ).where(PlanCommitment.plan_id == plan_id),
        select(
            *_part(
                "support",
                PlanSupport.id,
                position=PlanSupport.position,
                n1=PlanSupport.responsible_id,
                n2=PlanSupport.fund_id,
                n3=PlanSupport.amount_cents,
                t1=PlanSupport.kind,
                t2=PlanSupport.organisation,
                t3=PlanSupport.state,
                d1=PlanSupport.starts_on,
                d2=PlanSupport.ends_on,
                j1=PlanSupport.details,
            )
        ).where(PlanSupport.plan_id == plan_id),
        select(
            *_part(
                "team",
                PlanTeamMember.id,
                position=PlanTeamMember.position,
                n1=PlanTeamMember.staff_id,
                t1=PlanTeamMember.name,
                t2=PlanTeamMember.organisation,
                t3=PlanTeamMember.role,
            )
        ).where(PlanTeamMember.plan_id == plan_id),
        select(
            *_part(
                "change",
                PlanChange.id,
                n1=PlanChange.item_id,
                t1=PlanChange.actor,
                t2=PlanChange.what,
                at=PlanChange.at,
                flag=PlanChange.material,
                j1=PlanChange.before,
                j2=PlanChange.after,
            )
        ).where(PlanChange.plan_id == plan_id),
        select(
            *_part(
                "scan",
                SignedScan.id,
                n1=SignedScan.version,
                n2=SignedScan.size_bytes,
                t1=SignedScan.media_type,
                t2=SignedScan.sha256,
                t3=SignedScan.uploaded_by,
                at=SignedScan.uploaded_at,
            )
        ).where(SignedScan.plan_id == plan_id),
        select(
            *_part(
                "staff",
                StaffUser.id,
                position=func.row_number().over(order_by=(StaffUser.display_name, StaffUser.id)),
                t1=StaffUser.display_name,
            )
        ).where(StaffUser.active.is_(True), StaffUser.role.in_(_CHOOSABLE_ROLES)),
        select(
            *_part(
                "fund",
                Fund.id,
                position=func.row_number().over(order_by=(Fund.name, Fund.id)),
                t1=Fund.name,
                flag=Fund.active,
            )
        ),
    ]
    # SQLite accepts a window function in a compound's part only inside a subquery.
    return union_all(*(select(*part.subquery().c) for part in parts))


def _in_order(rows: Sequence[Any]) -> list[Any]:
    return sorted(rows, key=lambda r: (r.position, r.id))


async def get_plan_page(
    *, session: AsyncSession, case_id: int, staff: access.StaffMember
) -> PlanPage:
    """The plan page of a case, in three statements; a read of a plan is audited.

    `CaseNotFound` when there is no such case, `NotAllowed` for an administrator,
    `CaseNotVisible` when it is another case worker's.
    """
    row = (await session.execute(_case_statement(), {"case_id": case_id})).first()
    if row is None:
        raise CaseNotFound(f"No case {case_id}.")
    case, citizen, plan = _head(row)
    if staff.role is Role.ADMIN:
        raise NotAllowed("administrators don't work on plans")
    if not access.can_see(staff, case.assigned_to_id):
        raise CaseNotVisible(f"Case {case_id} is not visible to {staff.actor}.")
    found = await session.execute(_rows_statement(), {"plan_id": plan.id if plan else None})
    parts: defaultdict[str, list[Any]] = defaultdict(list)
    for part in found.all():
        parts[part.kind].append(part)
    page_staff = tuple(StaffOption(r.id, r.t1) for r in _in_order(parts["staff"]))
    funds = tuple(FundOption(r.id, r.t1, bool(r.flag)) for r in _in_order(parts["fund"]))
    if plan is None:
        return PlanPage(case, citizen, None, (), (), page_staff, funds)
    # Rows for reading only (`for_reading`): objects no session holds or flushes.
    rows = PlanRows(
        plan,
        tuple(
            for_reading(PlanObjective, {
                "id": r.id, "plan_id": plan.id, "position": r.position, "objective": r.t1,
                "expected_result": r.t2,
            })
            for r in _in_order(parts["objective"])
        ),
        tuple(
            for_reading(PlanCommitment, {
                "id": r.id, "plan_id": plan.id, "position": r.position, "what": r.t1,
                "due_on": r.d1,
            })
            for r in _in_order(parts["commitment"])
        ),
        tuple(
            for_reading(PlanSupport, {
                "id": r.id, "plan_id": plan.id, "position": r.position, "kind": r.t1,
                "details": dict(r.j1 or {}), "responsible_id": r.n1, "organisation": r.t2,
                "starts_on": r.d1, "ends_on": r.d2, "state": r.t3, "fund_id": r.n2,
                "amount_cents": r.n3,
            })
            for r in _in_order(parts["support"])
        ),
        tuple(
            for_reading(PlanTeamMember, {
                "id": r.id, "plan_id": plan.id, "position": r.position, "staff_id": r.n1,
                "name": r.t1, "organisation": r.t2, "role": r.t3,
            })
            for r in _in_order(parts["team"])
        ),
    )  # fmt: skip
    history = tuple(
        for_reading(PlanChange, {
            "id": r.id, "plan_id": plan.id, "at": r.at, "actor": r.t1, "what": r.t2,
            "item_id": r.n1, "before": r.j1, "after": r.j2, "material": bool(r.flag),
        })
        for r in sorted(parts["change"], key=lambda r: r.id, reverse=True)
    )  # fmt: skip
    scans = tuple(
        for_reading(SignedScan, {
            "id": r.id, "plan_id": plan.id, "version": r.n1, "media_type": r.t1,
            "size_bytes": r.n2, "sha256": r.t2, "uploaded_at": r.at, "uploaded_by": r.t3,
        })
        for r in sorted(parts["scan"], key=lambda r: r.id, reverse=True)
    )  # fmt: skip
    await access.record(session, staff.actor, "plan.read", case, {"plan_id": plan.id})
    return PlanPage(case, citizen, rows, history, scans, page_staff, funds)
