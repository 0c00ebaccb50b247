from __future__ import annotations


class CitizenError(Exception):
    code = "citizen_error"


class NoConsent(CitizenError):
    """The citizen has not accepted the privacy notice: nothing may be stored."""

    code = "no_consent"
