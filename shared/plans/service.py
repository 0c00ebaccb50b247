"""The plan of an admitted case: start it, edit it, submit, approve or return, sign, close.

Every function takes the caller's session and never commits; a raised `PlanError` (or
`FundError` on approval) means the caller must roll back: nothing it did is to be kept.
States, who may do what and where it leads are `shared.plans.lifecycle`; the rows are
`shared.plans.models`; money moves through `shared.funds.service`.

After the plan's first approval every change is kept in `PlanChange` with what it was
before and after; a material change (a new support with money, a higher amount, a
longer duration) sends the plan back to the coordinators' queue. A lower amount or a
cancelled support gives its money back to the fund at once.

Every change and every read of a plan is in the audit log, recorded on its case, so the
case's timeline shows it (SPEC J8).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases import access
from shared.cases import interview as interview_form
from shared.cases import service as cases
from shared.cases.models import Case, CaseState, Interview, Outcome
from shared.funds import service as funds
from shared.funds.models import Fund
from shared.i18n import N_, Translator
from shared.plans import catalog
from shared.plans import messages as plan_messages
from shared.plans.errors import (
    CaseNotReady,
    IncompletePlan,
    InvalidInput,
    NotAllowed,
    PlanNotFound,
)
from shared.plans.form import (
    MAX_SUMMARY,
    CommitmentInput,
    ObjectiveInput,
    PlanInput,
    Responsible,
    TeamInput,
)
from shared.plans.lifecycle import SUPPORT_MOVES, Action, require
from shared.plans.models import (
    Plan,
    PlanChange,
    PlanCommitment,
    PlanObjective,
    PlanOutcome,
    PlanState,
    PlanSupport,
    PlanTeamMember,
    SupportState,
    Trend,
)
from shared.settings import Settings
from shared.staff.models import Role, StaffUser

MAX_COMMENT = 2000
MIN_COMMENT = 3

NEEDS_SUMMARY = N_("Write a short summary of the situation.")
NEEDS_OBJECTIVE = N_("Add at least one objective.")
NEEDS_SUPPORT = N_("Add at least one support.")
NEEDS_RESPONSIBLE = N_("Choose who is responsible for this support.")
NEEDS_FUND = N_("Choose the fund that pays for this support.")
NEEDS_DATES = N_("Write when this support starts and ends.")
UNKNOWN_ROW = N_("This row is not part of the plan: reload the page.")
UNKNOWN_FUND = N_("Choose one of the program's funds.")
UNKNOWN_STAFF = N_("Choose one of the program's case workers or coordinators.")
MOVE_REFUSED = N_("A support can't go back to this state.")
CANCEL_INSTEAD = N_("An approved support can't be removed: set it to cancelled instead.")
WRITE_COMMENT = N_("Write what should change in the plan.")
TOO_LONG = N_("This text is too long: at most {max_length} characters.")
SIGNED_IN_FUTURE = N_("The date of the signature can't be in the future.")
SIGNED_BEFORE_APPROVAL = N_("The plan was signed before it was approved: check the date.")
CHOOSE = N_("Choose one of the options.")


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanRows:
    plan: Plan
    objectives: tuple[PlanObjective, ...]
    commitments: tuple[PlanCommitment, ...]
    supports: tuple[PlanSupport, ...]
    team: tuple[PlanTeamMember, ...]


async def plan_rows(session: AsyncSession, plan: Plan) -> PlanRows:
    """The plan with its objectives, commitments, supports and team, each in order."""

    async def of(model: Any) -> tuple[Any, ...]:
        query = select(model).where(model.plan_id == plan.id).order_by(model.position, model.id)
        return tuple((await session.scalars(query)).all())

    return PlanRows(
        plan,
        await of(PlanObjective),
        await of(PlanCommitment),
        await of(PlanSupport),
        await of(PlanTeamMember),
    )


def plan_warnings(
    rows: PlanRows, *, settings: Settings, language: str = "it"
) -> list[catalog.Warning]:
    """What the region's guidance would question in the plan's supports (not refusals),
    each named by the editor's field (`support-<n>.<field>`)."""
    found: list[catalog.Warning] = []
    for n, support in enumerate(rows.supports):
        details = catalog.load_details(support.kind, support.details)
        found += catalog.warnings(
            support.kind, details, support.starts_on, support.ends_on,
            internship_floor_cents=settings.internship_min_allowance_euros * 100,
            language=language, prefix=f"support-{n}.",
        )  # fmt: skip
    return found


async def case_for_plan(
    session: AsyncSession, case_id: int, staff: access.StaffMember, *, lock: bool
) -> Case:
    """The case whose plan `staff` works on (`lock`: for this transaction); `PlanNotFound`
    when they may not see it, `NotAllowed` for an administrator."""
    if staff.role is Role.ADMIN:
        raise NotAllowed("administrators don't work on plans")
    query = select(Case).where(Case.id == case_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    case = await session.scalar(query)
    if case is None or not access.can_see(staff, case.assigned_to_id):
        raise PlanNotFound(f"No plan for case {case_id} visible to {staff.actor}.")
    return case


async def plan_of(session: AsyncSession, case: Case, *, lock: bool) -> Plan:
    """The case's plan; `PlanNotFound` when it has none yet."""
    query = select(Plan).where(Plan.case_id == case.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    plan = await session.scalar(query)
    if plan is None:
        raise PlanNotFound(f"Case {case.id} has no plan.")
    return plan


async def get_plan(*, session: AsyncSession, case_id: int, staff: access.StaffMember) -> PlanRows:
    """The case's plan with its rows, for the plan page (the read is in the audit log)."""
    case = await case_for_plan(session, case_id, staff, lock=False)
    plan = await plan_of(session, case, lock=False)
    await access.record(session, staff.actor, "plan.read", case, {"plan_id": plan.id})
    return await plan_rows(session, plan)


async def plan_history(*, session: AsyncSession, plan_id: int) -> list[PlanChange]:
    """Every kept change of the plan, newest first."""
    rows = await session.scalars(
        select(PlanChange).where(PlanChange.plan_id == plan_id).order_by(PlanChange.id.desc())
    )
    return list(rows.all())


# --- starting ----------------------------------------------------------------------------


def summary_from_interview(answers: dict[str, Any]) -> str:
    """A first draft of the situation summary: the interview's answers, one line each."""
    form = interview_form.load(answers)
    lines = [
        f"{title}: " + "; ".join(f"{label}: {value}" for label, value in rows)
        for title, rows in interview_form.filled(form, Translator("it"))
    ]
    return "\n".join(lines)[:MAX_SUMMARY]


async def start_plan(
    *, session: AsyncSession, case_id: int, staff: access.StaffMember, now: datetime
) -> Plan:
    """Open the plan of an admitted case as a draft, its summary prefilled from the
    interview; the plan that exists already if there is one."""
    case = await case_for_plan(session, case_id, staff, lock=True)
    existing = await session.scalar(select(Plan).where(Plan.case_id == case.id))
    if existing is not None:
        return existing
    interview = await session.scalar(select(Interview).where(Interview.case_id == case.id))
    if (
        case.state != CaseState.INTERVIEWED.value
        or interview is None
        or interview.outcome != Outcome.ADMITTED.value
    ):
        raise CaseNotReady(f"Case {case_id} is not admitted.")
    plan = Plan(
        case_id=case.id,
        state=PlanState.DRAFT.value,
        summary=summary_from_interview(interview.answers),
        owner_id=case.assigned_to_id or (staff.user_id if staff.role is Role.OPERATORE else None),
        created_at=now,
        updated_at=now,
    )
    session.add(plan)
    await session.flush()
    await access.record(session, staff.actor, "plan.start", case, {"plan_id": plan.id})
    return plan


# --- editing -----------------------------------------------------------------------------


def _objective_snapshot(row: PlanObjective | ObjectiveInput) -> dict[str, Any]:
    return {"objective": row.objective, "expected_result": row.expected_result}


def _commitment_snapshot(row: PlanCommitment | CommitmentInput) -> dict[str, Any]:
    return {"what": row.what, "due_on": row.due_on.isoformat() if row.due_on else None}


def _support_snapshot(row: PlanSupport) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "details": row.details,
        "responsible_id": row.responsible_id,
        "organisation": row.organisation,
        "starts_on": row.starts_on.isoformat() if row.starts_on else None,
        "ends_on": row.ends_on.isoformat() if row.ends_on else None,
        "state": row.state,
        "fund_id": row.fund_id,
        "amount_cents": row.amount_cents,
    }


def _team_snapshot(row: PlanTeamMember) -> dict[str, Any]:
    return {
        "staff_id": row.staff_id,
        "name": row.name,
        "organisation": row.organisation,
        "role": row.role,
    }


def _is_material(before: PlanSupport | None, after: PlanSupport) -> bool:
    """A new support with money, a higher amount, or a longer duration."""
    if after.state == SupportState.CANCELLED.value:
        return False
    if before is None:
        return after.amount_cents > 0
    if after.amount_cents > before.amount_cents:
        return True
    # Longer: a later end, or no end any more.
    return before.ends_on is not None and (after.ends_on is None or after.ends_on > before.ends_on)


@dataclass
class _Changes:
    tracked: bool
    actor: str
    now: datetime
    rows: list[PlanChange] = field(default_factory=list)

    def add(
        self,
        what: str,
        item_id: int | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        material: bool = False,
    ) -> None:
        if before == after:
            return
        self.rows.append(
            PlanChange(
                at=self.now, actor=self.actor, what=what, item_id=item_id,
                before=before, after=after, material=material,
            )
        )  # fmt: skip

    @property
    def material(self) -> bool:
        return any(change.material for change in self.rows)


async def _check_references(session: AsyncSession, data: PlanInput) -> None:
    """Staff and funds the form names must exist (the form could be forged)."""
    errors: dict[str, str] = {}
    staff_ids = {s.responsible.staff_id for s in data.supports} | {
        m.member.staff_id for m in data.team
    }
    staff_ids.discard(None)
    known_staff = set(
        (
            await session.scalars(
                select(StaffUser.id).where(
                    StaffUser.id.in_(staff_ids),
                    StaffUser.role.in_([Role.OPERATORE.value, Role.COORDINATORE.value]),
                )
            )
        ).all()
    ) if staff_ids else set()  # fmt: skip
    fund_ids = {s.fund_id for s in data.supports if s.fund_id is not None}
    known_funds = (
        set((await session.scalars(select(Fund.id).where(Fund.id.in_(fund_ids)))).all())
        if fund_ids
        else set()
    )
    for n, support in enumerate(data.supports):
        if (
            support.responsible.staff_id is not None
            and support.responsible.staff_id not in known_staff
        ):
            errors[f"support-{n}.responsible"] = UNKNOWN_STAFF
        if support.fund_id is not None and support.fund_id not in known_funds:
            errors[f"support-{n}.fund_id"] = UNKNOWN_FUND
    for n, member in enumerate(data.team):
        if member.member.staff_id is not None and member.member.staff_id not in known_staff:
            errors[f"team-{n}.member"] = UNKNOWN_STAFF
    if errors:
        raise InvalidInput(errors)


def _by_id(rows: Sequence[Any], inputs: Sequence[Any], name: str) -> dict[int, Any]:
    """The stored rows by id; an input naming a row that isn't this plan's is refused."""
    stored = {row.id: row for row in rows}
    unknown = {
        f"{name}-{n}.id": UNKNOWN_ROW
        for n, item in enumerate(inputs)
        if item.id is not None and item.id not in stored
    }
    if unknown:
        raise InvalidInput(unknown)
    return stored


def _apply_responsible(row: PlanSupport | PlanTeamMember, who: Responsible) -> None:
    if isinstance(row, PlanSupport):
        row.responsible_id = who.staff_id
    else:
        row.staff_id = who.staff_id
    row.organisation = who.organisation


@dataclass(frozen=True, slots=True)
class SaveResult:
    plan: Plan
    # The plan was approved and a material change sent it back to the coordinators.
    sent_back: bool
    warnings: tuple[catalog.Warning, ...]


async def save_plan(
    *,
    session: AsyncSession,
    case_id: int,
    data: PlanInput,
    staff: access.StaffMember,
    settings: Settings,
    now: datetime,
) -> SaveResult:
    """Save the editor's plan (any part of it: a draft can be completed later)."""
    case = await case_for_plan(session, case_id, staff, lock=True)
    plan = await plan_of(session, case, lock=True)
    require(Action.EDIT, plan.state, staff.role)
    await _check_references(session, data)
    current = await plan_rows(session, plan)
    review_before = plan.next_review_on
    changes = _Changes(tracked=plan.approved_at is not None, actor=staff.actor, now=now)

    if plan.summary != data.summary:
        changes.add("summary", None, {"text": plan.summary}, {"text": data.summary})
        plan.summary = data.summary
    if plan.next_review_on != data.next_review_on:
        changes.add(
            "review",
            None,
            {"on": plan.next_review_on.isoformat() if plan.next_review_on else None},
            {"on": data.next_review_on.isoformat() if data.next_review_on else None},
        )
        plan.next_review_on = data.next_review_on

    await _save_rows(
        session, plan, current.objectives, data.objectives, changes, what="objective",
        model=PlanObjective, snapshot=_objective_snapshot, fill=_fill_objective,
    )  # fmt: skip
    await _save_rows(
        session, plan, current.commitments, data.commitments, changes, what="commitment",
        model=PlanCommitment, snapshot=_commitment_snapshot, fill=_fill_commitment,
    )  # fmt: skip
    await _save_rows(
        session, plan, current.team, data.team, changes, what="team",
        model=PlanTeamMember, snapshot=_team_snapshot, fill=_fill_member,
    )  # fmt: skip
    await _save_supports(session, plan, current.supports, data, changes)

    sent_back = False
    if changes.tracked and changes.rows:
        for change in changes.rows:
            change.plan_id = plan.id
            session.add(change)
        if changes.material and plan.state in (PlanState.APPROVED.value, PlanState.ACTIVE.value):
            before = plan.state
            plan.state = PlanState.SUBMITTED.value
            plan.submitted_at = now
            sent_back = True
            session.add(
                PlanChange(
                    plan_id=plan.id, at=now, actor=staff.actor, what="state",
                    before={"state": before}, after={"state": plan.state}, material=True,
                )
            )  # fmt: skip
    plan.updated_at = now
    await session.flush()
    await access.record(
        session, staff.actor, "plan.save", case,
        {"plan_id": plan.id, "changes": len(changes.rows), "sent_back": sent_back},
    )  # fmt: skip
    if plan.next_review_on != review_before:
        # The citizen's reminder follows the new date (SPEC J3).
        await plan_messages.queue_review_reminder(
            session=session, settings=settings, citizen_id=case.citizen_id, plan=plan, now=now
        )
    warnings = plan_warnings(await plan_rows(session, plan), settings=settings)
    return SaveResult(plan, sent_back, tuple(warnings))


async def _save_rows(
    session: AsyncSession,
    plan: Plan,
    stored: Sequence[Any],
    inputs: Sequence[Any],
    changes: _Changes,
    *,
    what: str,
    model: type[Any],
    snapshot: Callable[[Any], dict[str, Any]],
    fill: Callable[[Any, Any], None],
) -> None:
    """Save one of the plan's simple lists (objectives, commitments, team) as the editor
    sent it: rows kept in order, new ones added, missing ones removed, each change noted."""
    by_id = _by_id(stored, inputs, what)
    kept = set()
    for position, item in enumerate(inputs):
        row = by_id.get(item.id) if item.id is not None else None
        before = snapshot(row) if row is not None else None
        if row is None:
            row = model(plan_id=plan.id)
            session.add(row)
        else:
            kept.add(row.id)
        row.position = position
        fill(row, item)
        await session.flush()
        changes.add(what, row.id, before, snapshot(row))
    for row in stored:
        if row.id not in kept:
            changes.add(what, row.id, snapshot(row), None)
            await session.delete(row)


def _fill_objective(row: PlanObjective, item: ObjectiveInput) -> None:
    row.objective, row.expected_result = item.objective, item.expected_result


def _fill_commitment(row: PlanCommitment, item: CommitmentInput) -> None:
    row.what, row.due_on = item.what, item.due_on


def _fill_member(row: PlanTeamMember, item: TeamInput) -> None:
    row.name, row.role = item.name or None, item.role
    _apply_responsible(row, item.member)


async def _save_supports(
    session: AsyncSession,
    plan: Plan,
    stored: Sequence[PlanSupport],
    data: PlanInput,
    changes: _Changes,
) -> None:
    by_id = _by_id(stored, data.supports, "support")
    errors: dict[str, str] = {}
    kept = set()
    for position, item in enumerate(data.supports):
        prefix = f"support-{position}."
        row = by_id.get(item.id) if item.id is not None else None
        if (
            row is not None
            and SupportState(item.state) not in SUPPORT_MOVES[SupportState(row.state)]
        ):
            errors[prefix + "state"] = MOVE_REFUSED
            continue
        before_row = None
        if row is None:
            row = PlanSupport(plan_id=plan.id)
            session.add(row)
        else:
            kept.add(row.id)
            before_row = PlanSupport(**_support_columns(row))
        before_amount = row.amount_cents or 0
        row.position = position
        row.kind = item.kind.value
        row.details = catalog.stored_details(item.details)
        _apply_responsible(row, item.responsible)
        row.starts_on, row.ends_on = item.starts_on, item.ends_on
        row.state = item.state.value
        row.fund_id = item.fund_id if catalog.intervention(item.kind).uses_fund else None
        row.amount_cents = 0 if item.state is SupportState.CANCELLED else item.amount_cents
        await session.flush()
        if before_row is not None and row.amount_cents < before_amount:
            await _release_excess(session, plan, row, changes.actor, changes.now)
        changes.add(
            "support", row.id,
            _support_snapshot(before_row) if before_row is not None else None,
            _support_snapshot(row), material=_is_material(before_row, row),
        )  # fmt: skip
    for row in stored:
        if row.id in kept:
            continue
        if plan.approved_at is not None:
            errors.setdefault("supports", CANCEL_INSTEAD)
            continue
        changes.add("support", row.id, _support_snapshot(row), None)
        await session.delete(row)
    if errors:
        raise InvalidInput(errors)


def _support_columns(row: PlanSupport) -> dict[str, Any]:
    return {
        name: getattr(row, name)
        for name in ("id", "kind", "details", "responsible_id", "organisation", "starts_on",
                     "ends_on", "state", "fund_id", "amount_cents")
    }  # fmt: skip


async def _release_excess(
    session: AsyncSession, plan: Plan, support: PlanSupport, actor: str, now: datetime
) -> None:
    """Give back to the fund what the support had committed beyond its new amount."""
    if support.fund_id is None:
        return
    outstanding = await funds.outstanding_for_support(session=session, support_id=support.id)
    paid = await funds.paid_for_support(session=session, support_id=support.id)
    excess = outstanding - max(support.amount_cents - paid, 0)
    if excess > 0:
        await funds.release_funds(
            session=session, fund_id=support.fund_id, support_id=support.id, plan_id=plan.id,
            amount_cents=excess, actor=actor, now=now,
        )  # fmt: skip


# --- the lifecycle -----------------------------------------------------------------------


def _record_step(plan: Plan, actor: str, now: datetime, before: str, **details: Any) -> PlanChange:
    return PlanChange(
        plan_id=plan.id, at=now, actor=actor, what="state",
        before={"state": before}, after={"state": plan.state, **details},
    )  # fmt: skip


def check_complete(rows: PlanRows) -> None:
    """What the plan needs before it is submitted; `IncompletePlan` names each gap."""
    missing: dict[str, str] = {}
    if not rows.plan.summary.strip():
        missing["summary"] = NEEDS_SUMMARY
    if not rows.objectives:
        missing["objectives"] = NEEDS_OBJECTIVE
    live = [s for s in rows.supports if s.state != SupportState.CANCELLED.value]
    if not live:
        missing["supports"] = NEEDS_SUPPORT
    for n, support in enumerate(rows.supports):
        if support.state == SupportState.CANCELLED.value:
            continue
        prefix = f"support-{n}."
        details = catalog.load_details(support.kind, support.details)
        missing.update(catalog.missing(support.kind, details, prefix=prefix))
        if support.responsible_id is None and support.organisation is None:
            missing[prefix + "responsible"] = NEEDS_RESPONSIBLE
        if support.starts_on is None or support.ends_on is None:
            missing[prefix + "starts_on"] = NEEDS_DATES
        if support.amount_cents > 0 and support.fund_id is None:
            missing[prefix + "fund_id"] = NEEDS_FUND
    if missing:
        raise IncompletePlan(missing)


async def submit_plan(
    *, session: AsyncSession, case_id: int, staff: access.StaffMember, now: datetime
) -> Plan:
    """Send a complete draft (or a returned plan) to the coordinators for approval."""
    case = await case_for_plan(session, case_id, staff, lock=True)
    plan = await plan_of(session, case, lock=True)
    before = plan.state
    leads_to = require(Action.SUBMIT, plan.state, staff.role)
    check_complete(await plan_rows(session, plan))
    plan.state = leads_to.value
    plan.submitted_at = plan.updated_at = now
    session.add(_record_step(plan, staff.actor, now, before))
    await session.flush()
    await access.record(session, staff.actor, "plan.submit", case, {"plan_id": plan.id})
    return plan


async def approve_plan(
    *, session: AsyncSession, case_id: int, staff: access.StaffMember, now: datetime
) -> Plan:
    """Approve a submitted plan and commit its supports' money against their funds.

    `FundExhausted` when a fund can't cover a support: the caller rolls back (the
    dashboard with `all_or_nothing`), so no commitment of this approval is kept
    (whatever the concurrency: the guarded update of `funds.commit_funds` decides which
    of two racing approvals gets the last euros).
    """
    case = await case_for_plan(session, case_id, staff, lock=True)
    plan = await plan_of(session, case, lock=True)
    before = plan.state
    leads_to = require(Action.APPROVE, plan.state, staff.role)
    rows = await plan_rows(session, plan)
    check_complete(rows)
    # Funds in id order: two approvals drawing on the same funds lock them in one order,
    # so they can't deadlock (PostgreSQL).
    for support in sorted(rows.supports, key=lambda s: (s.fund_id or 0, s.id)):
        if support.fund_id is None or support.state == SupportState.CANCELLED.value:
            continue
        outstanding = await funds.outstanding_for_support(session=session, support_id=support.id)
        paid = await funds.paid_for_support(session=session, support_id=support.id)
        needed = support.amount_cents - paid - outstanding
        if needed > 0:
            await funds.commit_funds(
                session=session, fund_id=support.fund_id, support_id=support.id,
                plan_id=plan.id, amount_cents=needed, actor=staff.actor, now=now,
            )  # fmt: skip
    plan.state = leads_to.value
    if plan.approved_at is not None:
        plan.version += 1
    plan.approved_at = plan.decided_at = plan.updated_at = now
    plan.decided_by = staff.actor
    plan.return_comment = None
    session.add(_record_step(plan, staff.actor, now, before, version=plan.version))
    await session.flush()
    await access.record(
        session, staff.actor, "plan.approve", case, {"plan_id": plan.id, "version": plan.version}
    )
    # The citizen is told on Telegram: come and sign (SPEC J3).
    await plan_messages.queue_plan_approved(
        session=session, citizen_id=case.citizen_id, plan=plan, now=now
    )
    return plan


def _comment(comment: str) -> str:
    comment = comment.strip()
    if len(comment) < MIN_COMMENT:
        raise InvalidInput({"comment": WRITE_COMMENT})
    if len(comment) > MAX_COMMENT:
        raise InvalidInput({"comment": TOO_LONG}, {"comment": {"max_length": MAX_COMMENT}})
    return comment


async def return_plan(
    *,
    session: AsyncSession,
    case_id: int,
    comment: str,
    staff: access.StaffMember,
    now: datetime,
) -> Plan:
    """Send a submitted plan back to its case worker with what should change."""
    comment = _comment(comment)
    case = await case_for_plan(session, case_id, staff, lock=True)
    plan = await plan_of(session, case, lock=True)
    before = plan.state
    plan.state = require(Action.RETURN, plan.state, staff.role).value
    plan.decided_at = plan.updated_at = now
    plan.decided_by = staff.actor
    plan.return_comment = comment
    session.add(_record_step(plan, staff.actor, now, before, comment=comment))
    await session.flush()
    await access.record(session, staff.actor, "plan.return", case, {"plan_id": plan.id})
    return plan


async def record_signature(
    *,
    session: AsyncSession,
    case_id: int,
    signed_on: date,
    staff: access.StaffMember,
    settings: Settings,
    now: datetime,
) -> Plan:
    """The citizen signed the approved plan on paper: it becomes active, and so do its
    proposed supports; the first review is due `plan_review_days` later unless set."""
    case = await case_for_plan(session, case_id, staff, lock=True)
    plan = await plan_of(session, case, lock=True)
    today = now.astimezone(settings.tz).date()
    if signed_on > today:
        raise InvalidInput({"signed_on": SIGNED_IN_FUTURE})
    approved_on = plan.approved_at.astimezone(settings.tz).date() if plan.approved_at else None
    if approved_on is not None and signed_on < approved_on:
        raise InvalidInput({"signed_on": SIGNED_BEFORE_APPROVAL})
    before = plan.state
    plan.state = require(Action.SIGN, plan.state, staff.role).value
    plan.signed_on = signed_on
    plan.activated_at = plan.updated_at = now
    if plan.next_review_on is None or plan.next_review_on <= signed_on:
        plan.next_review_on = signed_on + timedelta(days=settings.plan_review_days)
    for support in (await plan_rows(session, plan)).supports:
        if support.state == SupportState.PROPOSED.value:
            support.state = SupportState.ACTIVE.value
    session.add(
        _record_step(
            plan, staff.actor, now, before, signed_on=signed_on.isoformat(), version=plan.version
        )
    )
    await session.flush()
    await access.record(
        session, staff.actor, "plan.sign", case, {"plan_id": plan.id, "version": plan.version}
    )
    # The citizen gets the summary of what they signed, and a reminder before the review.
    await plan_messages.queue_plan_active(
        session=session, citizen_id=case.citizen_id, plan=plan, now=now
    )
    await plan_messages.queue_review_reminder(
        session=session, settings=settings, citizen_id=case.citizen_id, plan=plan, now=now
    )
    return plan


@dataclass(frozen=True, slots=True)
class Closure:
    outcome: PlanOutcome
    income: Trend
    debts: Trend
    urgent_expenses: Trend
    notes: str = ""


def parse_closure(
    *, outcome: str, income: str, debts: str, urgent_expenses: str, notes: str
) -> Closure:
    """The closing form's values; `InvalidInput` names each missing or unknown one."""
    errors: dict[str, str] = {}
    outcomes = {o.value for o in PlanOutcome}
    trends = {t.value for t in Trend}
    if outcome not in outcomes:
        errors["outcome"] = CHOOSE
    for name, value in (("income", income), ("debts", debts), ("urgent_expenses", urgent_expenses)):
        if value not in trends:
            errors[name] = CHOOSE
    notes = notes.strip()
    if len(notes) > MAX_COMMENT:
        errors["notes"] = TOO_LONG
    if errors:
        raise InvalidInput(errors, {"notes": {"max_length": MAX_COMMENT}})
    return Closure(PlanOutcome(outcome), Trend(income), Trend(debts), Trend(urgent_expenses), notes)


async def close_plan(
    *,
    session: AsyncSession,
    case_id: int,
    closure: Closure,
    staff: access.StaffMember,
    now: datetime,
) -> Plan:
    """Close the plan with its outcome and closure check, and the case with it; money
    committed and not paid goes back to its funds."""
    case = await case_for_plan(session, case_id, staff, lock=True)
    plan = await plan_of(session, case, lock=True)
    before = plan.state
    plan.state = require(Action.CLOSE, plan.state, staff.role).value
    for support in (await plan_rows(session, plan)).supports:
        if support.state == SupportState.ACTIVE.value:
            support.state = SupportState.COMPLETED.value
        elif support.state == SupportState.PROPOSED.value:
            support.state = SupportState.CANCELLED.value
        paid = (
            await funds.paid_for_support(session=session, support_id=support.id)
            if support.fund_id is not None
            else 0
        )
        support.amount_cents = min(support.amount_cents, paid)
        await session.flush()
        await _release_excess(session, plan, support, staff.actor, now)
    plan.outcome = closure.outcome.value
    plan.income_trend = closure.income.value
    plan.debts_trend = closure.debts.value
    plan.urgent_expenses_trend = closure.urgent_expenses.value
    plan.outcome_notes = closure.notes or None
    plan.closed_at = plan.updated_at = now
    session.add(_record_step(plan, staff.actor, now, before, outcome=plan.outcome))
    await session.flush()
    await access.record(
        session, staff.actor, "plan.close", case, {"plan_id": plan.id, "outcome": plan.outcome}
    )
    await cases.close_case(
        session=session,
        case_id=case.id,
        reason=f"plan closed: {plan.outcome}",
        staff=staff,
        now=now,
    )
    # The citizen is told; their review reminders are withdrawn.
    await plan_messages.queue_plan_closed(
        session=session, citizen_id=case.citizen_id, plan=plan, now=now
    )
    return plan
