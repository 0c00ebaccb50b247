"""The limits of the dashboard's form fields, as the services behind them enforce them.

Each value is the service's own constant (or, where the service has none, the width of
the column the value is stored in), so a form's `maxlength`, `min` and `max` can't drift
from what the service accepts. The templates read them as `limits` (see
`dashboard.templating`); a value past one still reaches the service, whose refusal the
route shows next to the field with the rest of the form as it was typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.audit.models import AuditEvent
from shared.booking import hours
from shared.booking import service as booking
from shared.cases import service as cases
from shared.cases.search import MAX_QUERY
from shared.i18n import N_
from shared.intake import validators
from shared.intake.questionnaire import AnswerType
from shared.limits import FIRST_DAY, LAST_DAY
from shared.staff import passwords
from shared.staff.models import StaffUser

# The refusal of a text past its limit, formatted with `max_length`.
TOO_LONG = N_("This text is too long: at most {max_length} characters.")


def _width(column: Any) -> int:
    """The number of characters a `String(n)` column holds."""
    width = column.type.length
    assert isinstance(width, int), f"{column} has no length"
    return width


@dataclass(frozen=True)
class FieldLimits:
    # Date fields (`min`, `max` of <input type=date>).
    first_day: str = FIRST_DAY.isoformat()
    last_day: str = LAST_DAY.isoformat()
    # Agenda.
    cancel_reason: int = booking.MAX_CANCEL_REASON
    # Helpdesks and hours.
    helpdesk_name: int = hours.MAX_HELPDESK_NAME
    address: int = hours.MAX_ADDRESS
    directions: int = hours.MAX_DIRECTIONS
    closure_reason: int = hours.MAX_CLOSURE_REASON
    note: int = hours.MAX_NOTE
    min_slot_minutes: int = hours.MIN_SLOT_MINUTES
    max_slot_minutes: int = hours.MAX_SLOT_MINUTES
    min_places: int = hours.MIN_PLACES
    max_places: int = hours.MAX_PLACES
    # Cases.
    search: int = MAX_QUERY
    override_reason: int = cases.MAX_OVERRIDE_REASON
    close_reason: int = cases.MAX_CLOSE_REASON
    outcome_reason: int = cases.MAX_REASON
    referred_to: int = cases.MAX_REFERRED_TO
    # Phone and walk-in intake (typed answers by answer type, see `typed_answer`).
    household_members: int = validators.MAX_HOUSEHOLD_MEMBERS
    # Staff accounts and sign-in.
    username: int = _width(StaffUser.username)
    display_name: int = _width(StaffUser.display_name)
    password: int = passwords.MAX_LENGTH
    # Audit log filters.
    actor: int = _width(AuditEvent.actor)
    action: int = _width(AuditEvent.action)
    object_type: int = _width(AuditEvent.object_type)
    object_id: int = _width(AuditEvent.object_id)

    def typed_answer(self, answer: str) -> int | None:
        """The `maxlength` of an intake answer typed as text (None for choices)."""
        return validators.MAX_TYPED_ANSWER.get(AnswerType(answer))


FIELD_LIMITS = FieldLimits()
