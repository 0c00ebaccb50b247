"""Which state of a plan allows which action, who may take it, and where it leads.

One table, read by the service (to refuse) and by the pages (to offer only the buttons
that would work). A refusal is `IllegalTransition` with the action and the state, which
the front ends translate.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.plans.errors import IllegalTransition, NotAllowed
from shared.plans.models import PlanState, SupportState
from shared.staff.models import Role


class Action(StrEnum):
    EDIT = "edit"
    SUBMIT = "submit"
    APPROVE = "approve"
    RETURN = "return"
    SIGN = "sign"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class Rule:
    allowed_in: frozenset[PlanState]
    roles: frozenset[Role]
    # The state after the action; None: the state doesn't change (editing).
    leads_to: PlanState | None


_STAFF = frozenset({Role.OPERATORE, Role.COORDINATORE})
_COORDINATION = frozenset({Role.COORDINATORE})
S = PlanState

RULES: dict[Action, Rule] = {
    # After approval the plan can still change: each change is kept, and a material one
    # sends the plan back to `submitted`.
    Action.EDIT: Rule(frozenset({S.DRAFT, S.RETURNED, S.APPROVED, S.ACTIVE}), _STAFF, None),
    Action.SUBMIT: Rule(frozenset({S.DRAFT, S.RETURNED}), _STAFF, S.SUBMITTED),
    Action.APPROVE: Rule(frozenset({S.SUBMITTED}), _COORDINATION, S.APPROVED),
    Action.RETURN: Rule(frozenset({S.SUBMITTED}), _COORDINATION, S.RETURNED),
    Action.SIGN: Rule(frozenset({S.APPROVED}), _STAFF, S.ACTIVE),
    # A citizen may stop before signing, too.
    Action.CLOSE: Rule(frozenset({S.APPROVED, S.ACTIVE}), _STAFF, S.CLOSED),
}

# How a support may move when the plan is edited (SPEC: proposed → active → completed |
# cancelled). Signing the plan activates its proposed supports.
SUPPORT_MOVES: dict[SupportState, frozenset[SupportState]] = {
    SupportState.PROPOSED: frozenset(
        {SupportState.PROPOSED, SupportState.ACTIVE, SupportState.CANCELLED}
    ),
    SupportState.ACTIVE: frozenset(
        {SupportState.ACTIVE, SupportState.COMPLETED, SupportState.CANCELLED}
    ),
    SupportState.COMPLETED: frozenset({SupportState.COMPLETED}),
    SupportState.CANCELLED: frozenset({SupportState.CANCELLED}),
}


def can(action: Action, state: str, role: Role) -> bool:
    """True when `role` may take `action` on a plan in `state` (for the pages' buttons)."""
    rule = RULES[action]
    return PlanState(state) in rule.allowed_in and role in rule.roles


def require(action: Action, state: str, role: Role) -> PlanState:
    """The state `action` leads to; `NotAllowed` or `IllegalTransition` if it can't be taken."""
    rule = RULES[action]
    if role not in rule.roles:
        raise NotAllowed(f"{role.value} may not {action.value} a plan")
    if PlanState(state) not in rule.allowed_in:
        raise IllegalTransition(action=action.value, state=state)
    return rule.leads_to or PlanState(state)


def actions_for(state: str, role: Role) -> tuple[Action, ...]:
    return tuple(action for action in Action if can(action, state, role))
