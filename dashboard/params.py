"""Typed, bounded parameters: every route declares its ids, days and texts with these types.

The route table itself then carries the bounds (`shared.limits`): FastAPI refuses an id the
database can't hold, a day outside the years we plan for or a text with a NUL character
(PostgreSQL can't store one) before the route runs, and `invalid_request_page` answers
with a 400 page that names the value and says what it must be.

Form fields are taken as raw text (`FormText`, no length limit): a text that is too long
or a number out of range must come back as the form, with a message next to the field
and every other value as typed, so that check belongs to the form's own parsing (and to
the service behind it), against the limits in `dashboard.limits`. `read_day` and
`read_instant` apply the bounds of days to values parsed there.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from starlette.datastructures import FormData

from dashboard.templating import render
from shared.i18n import N_, Translator
from shared.limits import DAY_OUT_OF_RANGE, DAY_RANGE, MAX_ID, is_plausible_day, is_record_id

BAD_DAY = N_("Write a date like 31/12/2026.")
NULL_CHARACTER = "\x00"


class BadDay(ValueError):
    """Not a day we accept; `message` (a msgid, formatted with `DAY_RANGE`, which BAD_DAY
    ignores) says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_day(value: str) -> date | None:
    """A day as `<input type=date>` sends it (2026-12-31) or as typed (31/12/2026), None when
    empty; `BadDay` when it is not a date or falls outside FIRST_DAY..LAST_DAY."""
    value = value.strip()
    if not value:
        return None
    try:
        if "/" in value:
            found = datetime.strptime(value, "%d/%m/%Y").date()  # noqa: DTZ007 - a plain date
        else:
            found = date.fromisoformat(value)
    except ValueError:
        raise BadDay(BAD_DAY) from None
    if not is_plausible_day(found):
        raise BadDay(DAY_OUT_OF_RANGE)
    return found


def read_instant(value: str) -> datetime | None:
    """An aware ISO 8601 instant within the days we accept, else None."""
    try:
        found = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if found.tzinfo is None or not is_plausible_day(found):
        return None
    return found


def read_id(value: str) -> int | None:
    """A record id from a form field; None when empty, not a number or out of range."""
    value = value.strip()
    if not value.isdecimal() or len(value) > len(str(MAX_ID)):
        return None
    found = int(value)
    return found if is_record_id(found) else None


# --- validators behind the types -------------------------------------------------------


def _blank_is_none(value: Any) -> Any:
    """An empty query field (`?helpdesk=`, what a form's "any" option sends) is no value."""
    return None if isinstance(value, str) and not value.strip() else value


def _day(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return read_day(value)
    except BadDay as exc:
        kind = "day_range" if exc.message == DAY_OUT_OF_RANGE else "day_format"
        raise PydanticCustomError(kind, exc.message, DAY_RANGE) from None


def _storable(value: str) -> str:
    if NULL_CHARACTER in value:
        raise PydanticCustomError("null_character", "a NUL character can't be stored")
    return value


_Id = Annotated[int, Field(ge=1, le=MAX_ID)]

# A record's id in a path: /staff/{user_id}.
RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]
# A record's id in a query string, or none (absent or empty): ?helpdesk=3.
QueryId = Annotated[_Id | None, BeforeValidator(_blank_is_none), Query()]
# A day in a query string (2026-12-31 or 31/12/2026), or none.
QueryDay = Annotated[date | None, BeforeValidator(_day), Query()]
# A short word of an address chosen by the app itself (a view, a notice key, a cursor).
QueryWord = Annotated[str, AfterValidator(_storable), Query(max_length=100)]
# Text a person typed into a search or filter form sent by GET: checked by its form.
QueryText = Annotated[str, AfterValidator(_storable), Query()]
# Any form field, as sent: its form checks it and shows the problem next to it.
FormText = Annotated[str, AfterValidator(_storable), Form()]


async def storable_form(request: Request) -> FormData:
    """The submitted form, for routes that read fields generated from data; a field holding
    a NUL character refuses the whole request, as `FormText` does."""
    form = await request.form()
    refused = [
        {"type": "null_character", "loc": ("body", name), "msg": "", "input": ""}
        for name, value in form.multi_items()
        if isinstance(value, str) and NULL_CHARACTER in value
    ]
    if refused:
        raise RequestValidationError(refused)
    return form


# --- the 400 page ------------------------------------------------------------------------

ID_PROBLEM = N_("“{name}” must be a whole number from 1 to {max}.")
_PROBLEMS = {
    "int_parsing": ID_PROBLEM,
    "int_type": ID_PROBLEM,
    "int_from_float": ID_PROBLEM,
    "greater_than_equal": ID_PROBLEM,
    "less_than_equal": ID_PROBLEM,
    "day_format": N_("“{name}” must be a date like 31/12/2026."),
    "day_range": N_("“{name}” must be a date between the years {first} and {last}."),
    "string_too_long": N_("“{name}” is too long: at most {max_length} characters."),
    "null_character": N_("“{name}” contains a NUL character, which can't be stored."),
    "missing": N_("“{name}” is missing."),
}
OTHER_PROBLEM = N_("“{name}” is not valid.")


def problems(exc: RequestValidationError, t: Translator) -> list[str]:
    """What was wrong with each refused value, in the viewer's language."""
    found = []
    for error in exc.errors():
        location = error.get("loc") or ()
        name = str(location[-1]) if location else "?"
        values = {**DAY_RANGE, "max": MAX_ID, **(error.get("ctx") or {})}
        found.append(t(_PROBLEMS.get(error.get("type", ""), OTHER_PROBLEM), name=name, **values))
    return list(dict.fromkeys(found))


def invalid_request_page(request: Request, exc: RequestValidationError) -> HTMLResponse:
    """The 400 page for a request FastAPI refused, listing what was wrong with it."""
    viewer = getattr(request.state, "viewer", None)
    t = Translator(viewer.language if viewer is not None else request.cookies.get("lang", "it"))
    return render(
        request,
        "errors/invalid.html",
        {
            "title": N_("Invalid request"),
            "message": N_("Something in the address or the form was not valid."),
            "problems": problems(exc, t),
        },
        status_code=400,
    )
