"""Jinja2 templates: base → layout → page, texts through gettext (`t("...")`)."""

from __future__ import annotations

import functools
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Literal

import phonenumbers
from babel import Locale
from babel.dates import DateTimePattern, format_date, get_datetime_format, parse_pattern
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from dashboard.limits import FIELD_LIMITS
from shared.audit import phrases
from shared.i18n import Translator

Style = Literal["full", "long", "medium", "short"]
TEMPLATES = Path(__file__).with_name("templates")

templates = Jinja2Templates(directory=TEMPLATES)
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
# Templates ship with the code: no file-system check on every render (restart to reload).
templates.env.auto_reload = False


def _local(value: datetime, request: Request) -> datetime:
    return value.astimezone(request.app.state.settings.tz)


@functools.cache
def _babel_locale(language: str) -> Locale:
    """Parsed once: Babel parses a locale name again on every call given a string."""
    return Locale.parse(language)


@functools.cache
def datetime_pattern(language: str, style: Style) -> DateTimePattern:
    """Babel's date-and-time pattern of a style ("medium"...) for a language, parsed once:
    `format_datetime` looks up and formats the date and time parts anew on every call."""
    locale = _babel_locale(language)
    return parse_pattern(
        str(get_datetime_format(style, locale=locale))
        .replace("{0}", locale.time_formats[style].pattern)
        .replace("{1}", locale.date_formats[style].pattern)
    )


@functools.cache
def moment_pattern(language: str) -> DateTimePattern:
    """The one way every page shows a moment: the day, month and year as Babel's medium
    date ("5 mar 2026"), then hours and minutes ("09:30"): no seconds, no two-digit year."""
    locale = _babel_locale(language)
    return parse_pattern(
        str(get_datetime_format("medium", locale=locale))
        .replace("{0}", "HH:mm")
        .replace("{1}", locale.date_formats["medium"].pattern)
    )


def format_moment(value: datetime, language: str, tz: tzinfo) -> str:
    """A moment in local time as every page shows it: "5 mar 2026, 09:30"."""
    return moment_pattern(language).apply(value.astimezone(tz), _babel_locale(language))


@functools.lru_cache(maxsize=4096)
def format_phone(value: str | None) -> str:
    """A stored phone number (E.164) grouped as people write it: "+39 333 101 2020".

    Anything that is not a number is shown as it is; no number is "—".
    """
    if not value:
        return "—"
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@pass_context
def _moment_filter(context: Context, value: datetime | None) -> str:
    """`{{ booking.starts_at|moment }}`: the viewer's language, the program's time zone."""
    if value is None:
        return "—"
    request: Request = context["request"]
    t = context.get("t")
    language = t.language if isinstance(t, Translator) else "it"
    return format_moment(value, language, request.app.state.settings.tz)


templates.env.filters["moment"] = _moment_filter
templates.env.filters["phone"] = format_phone


def say(sentence: phrases.Sentence, t: Translator, tz: tzinfo) -> str:
    """An audit event's sentence in the viewer's language (its moments in the one format)."""
    return t(sentence.text, **{k: _said(v, t, tz) for k, v in sentence.values.items()})


def said_details(sentence: phrases.Sentence, t: Translator, tz: tzinfo) -> list[tuple[str, str]]:
    """The details a sentence leaves out, as (name, value) in the viewer's language."""
    return [(t(label), _said(value, t, tz)) for label, value in sentence.extra]


def _said(value: phrases.Value, t: Translator, tz: tzinfo) -> str:
    if isinstance(value, phrases.Moment):
        return format_moment(value.value, t.language, tz)
    if isinstance(value, phrases.Label):
        return t(value.msgid)
    return str(value)


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page with the viewer, their language and the CSRF token in the context."""
    viewer = getattr(request.state, "viewer", None)
    language = viewer.language if viewer is not None else request.cookies.get("lang", "it")
    t = Translator(language)
    tz = request.app.state.settings.tz
    locale = _babel_locale(t.language)

    def when(value: datetime, style: Style = "medium") -> str:
        # One format on every page (`style` is kept for the callers that still pass one):
        # the same as the `moment` filter.
        return format_moment(value, t.language, tz)

    def day(value: datetime, style: str = "full") -> str:
        return format_date(value.astimezone(tz).date(), style, locale=locale)

    def hour(value: datetime) -> str:
        # 24-hour "HH:mm" in every language we have: no need for Babel's pattern machinery.
        return value.astimezone(tz).strftime("%H:%M")

    return templates.TemplateResponse(
        request,
        template,
        {
            "t": t,
            "viewer": viewer,
            "csrf_token": getattr(request.state, "csrf_token", ""),
            "nav": request.app.state.nav,
            "flashes": (),
            "when": when,
            "say": lambda sentence: say(sentence, t, tz),
            "said_details": lambda sentence: said_details(sentence, t, tz),
            "day": day,
            "hour": hour,
            # Form fields' `maxlength`, `min` and `max`: the services' own limits.
            "limits": FIELD_LIMITS,
            **(context or {}),
        },
        status_code=status_code,
    )
