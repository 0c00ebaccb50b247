"""Every text the code shows has a translation in every catalog (Italian complete)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from shared.i18n import Translator, available_languages, normalise_language, translations

ROOT = Path(__file__).resolve().parents[2]
# t("..."), turn.t("..."), N_("...") mark texts; t.n("one", "many", n) marks plurals.
KEYWORDS = {"t": None, "N_": None, "n": (1, 2)}


def _msgids() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("bot", "shared", "dashboard"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / package,
            method_map=[
                ("**/node_modules/**", "ignore"),
                ("**.py", "python"),
                ("**.html", "jinja2"),
            ],
            keywords=KEYWORDS,
        ):
            for msgid in message if isinstance(message, tuple) else (message,):
                if msgid:
                    found.setdefault(msgid, f"{package}/{filename}:{lineno}")
    return found


def test_something_is_extracted() -> None:
    assert len(_msgids()) > 20


@pytest.mark.parametrize("language", [lang for lang in available_languages() if lang != "en"])
def test_every_text_is_translated(language: str) -> None:
    catalog = translations(language)
    # A translation may equal its msgid ("Agenda", "Password"): look for the entry itself.
    known = {key for key in catalog._catalog if isinstance(key, str)}
    missing = [
        f"{where}: {msgid!r}"
        for msgid, where in _msgids().items()
        if msgid not in known and not msgid.strip().startswith("{")
    ]
    assert missing == [], f"{len(missing)} texts lack a {language} translation:\n" + "\n".join(
        missing
    )


def test_languages_and_fallback() -> None:
    assert available_languages()[0] == "it"
    assert "en" in available_languages()
    assert normalise_language("en-GB") == "en"
    assert normalise_language("xx") == "it"
    assert normalise_language(None) == "it"
    assert Translator("en")("Write /start to begin.") == "Write /start to begin."
    assert Translator("it")("Write /start to begin.") != "Write /start to begin."
