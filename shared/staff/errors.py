from __future__ import annotations


class StaffError(Exception):
    """A staff-account operation was refused; the message is safe to show."""


class UsernameTaken(StaffError):
    pass


class InvalidUsername(StaffError):
    pass


class WeakPassword(StaffError):
    pass


class UnknownStaffUser(StaffError):
    pass
