"""Formatting helpers of the templates."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime

from dashboard.templating import datetime_pattern
from shared.i18n import available_languages

ROME = ZoneInfo("Europe/Rome")
MOMENTS = [
    datetime(2026, 3, 5, 9, 30, tzinfo=UTC),  # winter time, morning
    datetime(2026, 7, 25, 23, 5, 7, tzinfo=UTC),  # summer time, past midnight in Rome
]


@pytest.mark.parametrize("language", available_languages())
@pytest.mark.parametrize("style", ["full", "long", "medium", "short"])
def test_the_parsed_pattern_formats_as_babel_does(language: str, style: str) -> None:
    for moment in MOMENTS:
        local = moment.astimezone(ROME)
        expected = format_datetime(local, style, locale=language)
        assert datetime_pattern(language, style).apply(local, language) == expected
