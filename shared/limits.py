"""Bounds that hold wherever a value comes from: record ids and days.

A value outside them is refused where it arrives (an address, a form, a message), before
it reaches a query or a date computation: an id the database's INTEGER can't hold makes
the driver raise, and a day at the edge of Python's calendar overflows as soon as a day is
added to it or it is moved to another time zone.
"""

from __future__ import annotations

from datetime import date, datetime

from shared.i18n import N_

# PostgreSQL's INTEGER is 32-bit (SQLite's is 64-bit): ids stay within the smaller one.
MAX_ID = 2**31 - 1
# Any day staff could plan for or look back to, with room on both sides for date arithmetic.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2200, 12, 31)
# What to tell someone who gave a day outside them, and the values it is formatted with.
DAY_OUT_OF_RANGE = N_("Choose a date between the years {first} and {last}.")
DAY_RANGE = {"first": FIRST_DAY.year, "last": LAST_DAY.year}


def is_record_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


def is_plausible_day(value: date | datetime) -> bool:
    """Within FIRST_DAY..LAST_DAY (a datetime by its own calendar day)."""
    day = value.date() if isinstance(value, datetime) else value
    return FIRST_DAY <= day <= LAST_DAY
