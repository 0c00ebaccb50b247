"""Domain errors of funds; front ends turn each `code` and its fields into a message.

Amounts are in cents (format them with `shared.money.format_euros`); nothing was written
by the call that raised one of these.
"""

from __future__ import annotations


class FundError(Exception):
    code = "fund_error"


class FundNotFound(FundError):
    code = "fund_not_found"

    def __init__(self, fund_id: int) -> None:
        super().__init__(f"No fund {fund_id}.")
        self.fund_id = fund_id


class FundNameTaken(FundError):
    """Another fund already has this name (compared ignoring case)."""

    code = "fund_name_taken"

    def __init__(self, name: str) -> None:
        super().__init__(f"A fund is already called {name!r}.")
        self.name = name


class FieldMissing(FundError):
    """A required text (`field`) is empty."""

    code = "field_missing"

    def __init__(self, field: str) -> None:
        super().__init__(f"The {field} is required.")
        self.field = field


class TextTooLong(FundError):
    """A text staff wrote is longer than its field keeps (`field`, at most `max_length`)."""

    code = "text_too_long"

    def __init__(self, field: str, max_length: int) -> None:
        super().__init__(f"The {field} has more than {max_length} characters.")
        self.field = field
        self.max_length = max_length


class AmountOutOfRange(FundError):
    """A movement's amount is not between 1 cent and `max_cents`."""

    code = "amount_out_of_range"

    def __init__(self, amount_cents: int, max_cents: int) -> None:
        super().__init__(f"{amount_cents} cents is not between 1 and {max_cents}.")
        self.amount_cents = amount_cents
        self.max_cents = max_cents


class FundInactive(FundError):
    """The fund was closed to new commitments."""

    code = "fund_inactive"

    def __init__(self, fund_id: int, fund_name: str) -> None:
        super().__init__(f"The fund {fund_name!r} takes no new commitments.")
        self.fund_id = fund_id
        self.fund_name = fund_name


class FundExhausted(FundError):
    """What is left in the fund (`left_cents`) is less than the commitment (`needed_cents`)."""

    code = "fund_exhausted"

    def __init__(self, fund_id: int, fund_name: str, left_cents: int, needed_cents: int) -> None:
        super().__init__(
            f"The fund {fund_name!r} has {left_cents} cents left, {needed_cents} needed."
        )
        self.fund_id = fund_id
        self.fund_name = fund_name
        self.left_cents = left_cents
        self.needed_cents = needed_cents


class _ExceedsCommitment(FundError):
    def __init__(
        self, fund_id: int, support_id: int, outstanding_cents: int, requested_cents: int
    ) -> None:
        super().__init__(
            f"Support {support_id} has {outstanding_cents} cents committed and unpaid in "
            f"fund {fund_id}, {requested_cents} requested."
        )
        self.fund_id = fund_id
        self.support_id = support_id
        self.outstanding_cents = outstanding_cents
        self.requested_cents = requested_cents


class PaymentExceedsCommitment(_ExceedsCommitment):
    """The payment is more than the intervention has committed and not yet paid."""

    code = "payment_exceeds_commitment"


class ReleaseExceedsCommitment(_ExceedsCommitment):
    """The release is more than the intervention has committed and not yet paid."""

    code = "release_exceeds_commitment"
