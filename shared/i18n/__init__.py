"""Translations from gettext catalogs (Babel).

Source strings (msgids) are English; each language has a folder under `locale/` with
one `.po` file per area (`bot.po`, `intake.po`, ...), all merged into one catalog per
language. A new language is a new folder of `.po` files: no code changes. Catalogs are
compiled in memory when first used, so no `.mo` file is built or committed.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).with_name("locale")
DEFAULT_LANGUAGE = "it"


def N_(message: str) -> str:
    """Mark a string for extraction without translating it now (for data definitions)."""
    return message


@cache
def available_languages() -> tuple[str, ...]:
    """Languages with a catalog folder, the default (Italian) first."""
    found = sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES").is_dir())
    return tuple(sorted(found, key=lambda lang: (lang != DEFAULT_LANGUAGE, lang)))


def normalise_language(code: str | None) -> str:
    """A supported language from a Telegram `language_code` like `en-GB`, else Italian."""
    if code:
        base = code.split("-")[0].split("_")[0].lower()
        if base in available_languages():
            return base
    return DEFAULT_LANGUAGE


@cache
def translations(language: str) -> Translations:
    """The merged catalog of `language` (empty, i.e. English source text, if it has none)."""
    merged = Translations()
    folder = LOCALE_DIR / normalise_language(language) / "LC_MESSAGES"
    for po_file in sorted(folder.glob("*.po")):
        with po_file.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        merged.merge(Translations(fp=buffer))
    return merged


class Translator:
    """Texts in one language: `t("Hello")`, `t.n("one booking", "{n} bookings", n)`."""

    def __init__(self, language: str) -> None:
        self.language = normalise_language(language)
        self._catalog = translations(self.language)

    def __call__(self, message: str, **values: object) -> str:
        text = self._catalog.gettext(message)
        return text.format(**values) if values else text

    def n(self, singular: str, plural: str, count: int, **values: object) -> str:
        return self._catalog.ngettext(singular, plural, count).format(n=count, **values)
