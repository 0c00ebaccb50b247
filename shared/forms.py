"""Staff forms as typed data: a pydantic model per form (or section), each field carrying
its label, widget, options and bounds, so one definition validates what was submitted,
renders the inputs, shows a filled form for reading and prints it.

Used by the interview (`shared.cases.interview`) and the intervention catalog of the
plan (`shared.plans.catalog`). Labels, help texts and options are msgids (`N_`),
translated where they are shown. Amounts of money are integer cents (`Money`), typed
and shown the Italian way ("1.234,50"); dates are `date` (typed 31/12/2026 or
2026-12-31).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from annotated_types import Ge, Le, MaxLen
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from shared import money
from shared.i18n import N_, Translator
from shared.limits import FIRST_DAY, LAST_DAY

SHORT_TEXT = 200
LONG_TEXT = 4000


class Widget(StrEnum):
    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    MONTH = "month"
    YES_NO = "yes_no"
    CHOICE = "choice"
    MULTI = "multi"


Options = tuple[tuple[str, str], ...]


def field(
    label: str,
    widget: Widget,
    *,
    options: Options = (),
    help: str | None = None,
    rows: int | None = None,
    extra: JsonDict | None = None,
    **constraints: Any,
) -> Any:
    """A form field: its label (msgid), widget, options and constraints."""
    meta: JsonDict = {"widget": widget.value, **(extra or {})}
    if options:
        meta["options"] = [[key, text] for key, text in options]
    if help is not None:
        meta["help"] = help
    if rows is not None:
        meta["rows"] = rows
    if widget is Widget.TEXT:
        constraints.setdefault("max_length", SHORT_TEXT)
    if widget is Widget.TEXTAREA:
        constraints.setdefault("max_length", LONG_TEXT)
    if widget is Widget.MULTI:
        return Field(default_factory=list, title=label, json_schema_extra=meta, **constraints)
    return Field(default=None, title=label, json_schema_extra=meta, **constraints)


def meta_of(info: FieldInfo) -> JsonDict:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def widget_of(info: FieldInfo) -> Widget:
    return Widget(str(meta_of(info).get("widget", Widget.TEXT.value)))


def declared_options(info: FieldInfo) -> Options:
    """The (key, msgid) options written in the field's definition."""
    options = meta_of(info).get("options")
    if not isinstance(options, list):
        return ()
    return tuple((str(pair[0]), str(pair[1])) for pair in options if isinstance(pair, list))


def bounds(info: FieldInfo) -> tuple[int | None, int | None, int | None]:
    """(minimum, maximum, maximum length) of a field, from its constraints."""
    minimum = maximum = max_length = None
    for item in info.metadata:
        if isinstance(item, Ge):
            minimum = int(str(item.ge))
        elif isinstance(item, Le):
            maximum = int(str(item.le))
        elif isinstance(item, MaxLen):
            max_length = item.max_length
    return minimum, maximum, max_length


class FormModel(BaseModel):
    """A form or a section of one: unknown inputs ignored, texts stripped, options checked."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @classmethod
    def option_keys(cls, info: FieldInfo) -> tuple[str, ...] | None:
        """The keys a choice field accepts (None for fields without options)."""
        options = declared_options(info)
        return tuple(key for key, _text in options) if options else None

    @classmethod
    def exclusive_keys(cls, info: FieldInfo) -> set[str]:
        """Options that can't be chosen together with others."""
        return set()

    @field_validator("*", mode="after")
    @classmethod
    def _known_options(cls, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None
        field_info = cls.model_fields[info.field_name]
        keys = cls.option_keys(field_info)
        if keys is None or value is None:
            return value
        chosen = value if isinstance(value, list) else [value]
        if any(item not in keys for item in chosen):
            raise PydanticCustomError("unknown_option", "not one of the options")
        if len(chosen) > 1 and set(chosen) & cls.exclusive_keys(field_info):
            raise PydanticCustomError("exclusive", "an exclusive option with others")
        # Multiple choices are kept once each, in the order of the options.
        return [key for key in keys if key in chosen] if isinstance(value, list) else value


# --- typed values ------------------------------------------------------------------------


def _cents(value: Any) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if not isinstance(value, str):
        return value
    try:
        return money.parse_euros(value)
    except ValueError:
        raise PydanticCustomError("money", "not an amount of euros") from None


Money = Annotated[int | None, BeforeValidator(_cents)]

_DAY = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})")


def _day(value: Any) -> Any:
    """ "31/12/2026", "31.12.2026" or "2026-12-31" → a date within the planning range."""
    if value is None or isinstance(value, date) or not isinstance(value, str):
        found = value
    else:
        text = value.strip()
        match = _DAY.fullmatch(text)
        try:
            if match is not None:
                found = date(int(match[3]), int(match[2]), int(match[1]))
            else:
                found = date.fromisoformat(text)
        except ValueError:
            raise PydanticCustomError("day", "not a date") from None
    if isinstance(found, date) and not FIRST_DAY <= found <= LAST_DAY:
        raise PydanticCustomError("day", "not a date")
    return found


Day = Annotated[date | None, BeforeValidator(_day)]


# --- reading a submitted form ------------------------------------------------------------

MESSAGES = {
    "int_parsing": N_("Write a whole number, without dots or commas."),
    "int_from_float": N_("Write a whole number, without dots or commas."),
    "int_type": N_("Write a whole number, without dots or commas."),
    "greater_than_equal": N_("The number must be at least {ge}."),
    "less_than_equal": N_("The number must be at most {le}."),
    "string_too_long": N_("This text is too long: at most {max_length} characters."),
    "too_long": N_("This text is too long: at most {max_length} characters."),
    "bool_parsing": N_("Choose yes or no."),
    "bool_type": N_("Choose yes or no."),
    "unknown_option": N_("Choose one of the options."),
    "month": N_("Write the month and year, for example 03/2021."),
    "money": N_("Write an amount in euros, for example 1.234,50."),
    "day": N_("Write a date like 31/12/2026."),
}
INVALID_VALUE = N_("This value is not valid.")


def raw_value(info: FieldInfo, raw: Sequence[str]) -> Any:
    """What a field's inputs submitted, as the model takes it (None when left empty)."""
    if widget_of(info) is Widget.MULTI:
        return [item.strip() for item in raw if item.strip()]
    value = raw[-1].strip() if raw else ""
    return value or None


def field_errors(
    exc: ValidationError,
    *,
    prefix: str = "",
    depth: int = 1,
    messages: Mapping[str, str] = MESSAGES,
) -> tuple[dict[str, str], dict[str, dict[str, object]]]:
    """(field name → msgid, field name → message values) from pydantic's errors.

    `depth` is how many parts of an error's location name the field ("section.field" is
    2); `prefix` goes before each name; `messages` maps error types to msgids.
    """
    errors: dict[str, str] = {}
    params: dict[str, dict[str, object]] = {}
    for error in exc.errors():
        name = prefix + ".".join(str(part) for part in error["loc"][:depth])
        if name in errors:
            continue
        errors[name] = messages.get(error["type"], INVALID_VALUE)
        params[name] = {k: v for k, v in (error.get("ctx") or {}).items() if k != "error"}
    return errors, params


def submitted_value(info: FieldInfo, value: Any, language: str = "it") -> list[str]:
    """A stored value as the strings its inputs show (the reverse of `raw_value`)."""
    if value is None:
        return []
    widget = widget_of(info)
    if widget is Widget.MONTH:
        year, month = str(value).split("-")
        return [f"{month}/{year}"]
    if widget is Widget.MONEY:
        return [money.format_amount(int(value), language)]
    if widget is Widget.DATE and isinstance(value, date):
        return [value.strftime("%d/%m/%Y")]
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)]


# --- showing a form ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldView:
    """One input, ready for the template: everything already in the reader's language."""

    name: str
    label: str
    widget: str
    value: str
    values: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    error: str
    help: str
    minimum: int | None
    maximum: int | None
    max_length: int | None
    rows: int

    @property
    def dom_id(self) -> str:
        return "f-" + re.sub(r"[^a-z0-9]+", "-", self.name.lower())


def field_view(
    name: str,
    info: FieldInfo,
    t: Translator,
    *,
    options: tuple[tuple[str, str], ...] | None = None,
    values: Sequence[str] = (),
    error: str = "",
) -> FieldView:
    """The input `name` of field `info` in `t`'s language, with its values and error."""
    meta = meta_of(info)
    minimum, maximum, max_length = bounds(info)
    if options is None:
        if widget_of(info) is Widget.YES_NO:
            # Lower case: "No" would read the same in Italian, and so look untranslated.
            options = (("yes", t("yes")), ("no", t("no")))
        else:
            options = tuple((key, t(text)) for key, text in declared_options(info))
    raw = tuple(values)
    return FieldView(
        name=name,
        label=t(info.title or name),
        widget=widget_of(info).value,
        value=raw[-1] if raw else "",
        values=raw,
        options=options,
        error=error,
        help=t(str(meta["help"])) if "help" in meta else "",
        minimum=minimum,
        maximum=maximum,
        max_length=max_length,
        rows=int(str(meta.get("rows", 3))),
    )


def shown_value(view: FieldView, raw: Sequence[str]) -> str:
    """A filled field as a reader sees it: option labels instead of keys."""
    labels = dict(view.options)
    return ", ".join(labels.get(v, v) for v in raw)


def translated_errors(
    errors: Mapping[str, str], params: Mapping[str, Mapping[str, object]], t: Translator
) -> dict[str, str]:
    return {name: t(msgid, **params.get(name, {})) for name, msgid in errors.items()}
