"""Domain errors of plans; front ends turn each `code` (and field errors) into messages.

Nothing was written when one of these is raised. Field errors map a field name to an
English msgid (marked with `N_`), translated by the front end with its `params`.
"""

from __future__ import annotations

from collections.abc import Mapping


class PlanError(Exception):
    code = "plan_error"


class PlanNotFound(PlanError):
    code = "plan_not_found"


class NotAllowed(PlanError):
    """The staff member's role (or the case's assignment) doesn't allow this action."""

    code = "not_allowed"


class IllegalTransition(PlanError):
    """The plan's state doesn't allow `action` (e.g. approving a draft)."""

    code = "illegal_transition"

    def __init__(self, *, action: str, state: str) -> None:
        super().__init__(f"{action} is not allowed in state {state}")
        self.action = action
        self.state = state


class CaseNotReady(PlanError):
    """Only an admitted case (interviewed, outcome admitted) can have a plan."""

    code = "case_not_ready"


class InvalidInput(PlanError):
    """Some fields are not valid; `errors` maps each field to a msgid (with `params`)."""

    code = "invalid_input"

    def __init__(
        self, errors: Mapping[str, str], params: Mapping[str, Mapping[str, object]] | None = None
    ) -> None:
        super().__init__(", ".join(errors))
        self.errors = dict(errors)
        self.params = {field: dict(values) for field, values in (params or {}).items()}


class IncompletePlan(InvalidInput):
    """The plan can be saved but not submitted: what is missing, field by field."""

    code = "incomplete_plan"
