"""The privacy notice: versioned text in both languages, filled from the settings, in
Telegram-sized messages."""

from __future__ import annotations

import re

import pytest

from shared.i18n import available_languages
from shared.privacy import notice
from shared.settings import Settings

# What an art. 13 notice must say, found in each language's text.
REQUIRED = {
    "it": (
        "Titolare del trattamento", "responsabile della protezione dei dati", "CS&L Consorzio",
        "Farsi Prossimo", "Cardinal Martini", "art. 6, par. 1, lett. e)", "art. 9, par. 2, lett. b)",
        "lett. g)", "2-sexies", "Telegram", "fuori dallo Spazio economico europeo",
        "/miei_dati", "/cancella", "/privacy", "Garante",
    ),
    "en": (
        "data controller", "data protection officer", "CS&L Consorzio", "Farsi Prossimo",
        "Cardinal Martini", "art. 6(1)(e)", "art. 9(2)(b)", "9(2)(g)", "2-sexies", "Telegram",
        "outside the European Economic Area", "/miei_dati", "/cancella", "/privacy", "Garante",
    ),
}  # fmt: skip


@pytest.fixture
def custom(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "privacy_controller": "Comune di Prova <Ufficio> & co.",
            "privacy_dpo_contact": "rpd@comune.example.it",
            "intake_expiry_days": 21,
            "retention_never_booked_days": 111,
            "retention_closed_case_days": 999,
            "retention_audit_days": 400,
        }
    )


def test_every_language_of_the_bot_has_a_notice() -> None:
    assert notice.languages() == available_languages()


@pytest.mark.parametrize("language", ["it", "en"])
def test_the_notice_says_what_article_13_asks_with_the_settings(
    language: str, custom: Settings
) -> None:
    text = notice.markdown(language, settings=custom)
    for required in REQUIRED[language]:
        assert required in text, required
    for value in ("Comune di Prova <Ufficio> & co.", "rpd@comune.example.it", notice.VERSION):
        assert value in text
    for days in (21, 111, 999, 400):
        assert re.search(rf"\b{days}\b", text), days
    assert "{" not in text and "}" not in text


def test_without_a_dpo_contact_the_notice_says_where_to_find_it(settings: Settings) -> None:
    assert settings.privacy_dpo_contact is None
    assert "sito del titolare" in notice.markdown("it", settings=settings)
    assert "controller's website" in notice.markdown("en", settings=settings)


def test_both_languages_have_the_same_sections_and_the_short_one_first(
    settings: Settings,
) -> None:
    italian = notice.notice("it", settings=settings)
    english = notice.notice("en", settings=settings)
    assert len(italian.sections) == len(english.sections) >= 8
    assert (italian.summary.heading, english.summary.heading) == ("In breve", "In short")
    assert notice.notice("xx", settings=settings).language == "it"


@pytest.mark.parametrize("limit", [notice.TELEGRAM_LIMIT, 900, 300])
def test_telegram_gets_the_whole_notice_in_messages_within_the_limit(
    limit: int, custom: Settings
) -> None:
    found = notice.notice("it", settings=custom)
    messages = notice.telegram_messages(found, limit=limit)
    assert all(len(m) <= limit for m in messages)
    whole = " ".join(" ".join(messages).split())
    for section in found.sections:
        assert f"<b>{section.heading}</b>" in whole
        for word in re.findall(r"\w{6,}", section.body):
            assert word in whole
    # Escaped for Telegram's HTML; the Markdown's bold and lists are Telegram's.
    assert "Comune di Prova &lt;Ufficio&gt; &amp; co." in whole
    assert "<b>Chi</b>" in whole and "• " in whole and "**" not in whole
    if limit == notice.TELEGRAM_LIMIT:
        # Breaks between sections: each message starts with a heading.
        assert all(m.startswith("<b>") for m in messages)


def test_the_short_version_fits_the_consent_screen(custom: Settings) -> None:
    for language in notice.languages():
        summary = notice.telegram_summary(notice.notice(language, settings=custom))
        assert len(summary) < 2000
        assert "/privacy" in summary and "/cancella" in summary and "21" in summary


def test_the_texts_are_those_of_their_version() -> None:
    """Change the text, change `VERSION` (citizens are asked again), then the digest."""
    assert notice.texts_digest() == notice.TEXTS_DIGEST, (
        "the notice's text changed: give it a new VERSION and set TEXTS_DIGEST to "
        f"{notice.texts_digest()!r}"
    )


def test_the_copies_with_the_default_settings_are_up_to_date() -> None:
    defaults = notice.default_settings()
    for language in notice.languages():
        written = (notice.DEFAULTS / f"{language}.md").read_text(encoding="utf-8")
        assert written == notice.defaults_text(language, settings=defaults), (
            "run `python -m shared.privacy.notice`"
        )
