from __future__ import annotations


class CitizenError(Exception):
    code = "citizen_error"


class NoConsent(CitizenError):
    """The citizen has not accepted the privacy notice: nothing may be stored."""

    code = "no_consent"


class CitizenNotFound(CitizenError):
    code = "citizen_not_found"

    def __init__(self, citizen_id: int) -> None:
        super().__init__(f"No citizen {citizen_id}.")
        self.citizen_id = citizen_id
