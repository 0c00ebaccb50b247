"""Domain errors of cases; front ends turn each `code` (and field errors) into messages.

Field errors map a field name to an English msgid (marked with `N_`), translated by
the front end; nothing was written when one of these is raised.
"""

from __future__ import annotations

from collections.abc import Mapping


class CaseError(Exception):
    code = "case_error"


class CaseNotFound(CaseError):
    code = "case_not_found"


class CaseNotVisible(CaseError):
    """An operatore asked for a case assigned to someone else (SPEC section 6)."""

    code = "case_not_visible"


class NotAllowed(CaseError):
    """The staff member's role does not allow this action on the case."""

    code = "not_allowed"


class IllegalTransition(CaseError):
    """The case is not in a state that allows this action; `message` is a msgid."""

    code = "illegal_transition"

    def __init__(self, message: str, *, state: str) -> None:
        super().__init__(message)
        self.message = message
        self.state = state


class InvalidInput(CaseError):
    """Some fields are not valid; `errors` maps each field to a msgid (with `params`)."""

    code = "invalid_input"

    def __init__(
        self, errors: Mapping[str, str], params: Mapping[str, Mapping[str, object]] | None = None
    ) -> None:
        super().__init__(", ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = dict(errors)
        self.params = {field: dict(values) for field, values in (params or {}).items()}


class InvalidCursor(CaseError):
    """A page link that was not made by `list_cases` (edited by hand, or truncated)."""

    code = "invalid_cursor"
