from __future__ import annotations

import re
import string
from collections.abc import Iterator
from datetime import date

import pytest

from shared.i18n import Translator, available_languages
from shared.intake import questionnaire as q
from shared.intake.errors import UnknownStep
from shared.intake.questionnaire import QUESTIONNAIRE, AnswerType
from shared.settings import Settings

# SPEC section 3, in order.
SPEC_KEYS = [
    "residence",
    "situation",
    "since",
    "pandemic_related",
    "household",
    "benefits",
    "needs",
    "urgent",
    "name",
    "phone",
    "email",
    "fiscal_code",
]
PLACEHOLDERS = {"municipalities", "program_start"}

ELIGIBLE = {
    "residence": "yes",
    "situation": "job_loss",
    "since": "2021-03",
    "pandemic_related": "yes",
    "household": {"members": 3, "minors": 1},
    "benefits": ["naspi"],
    "needs": ["job_search", "microcredit"],
    "urgent": "no",
    "name": "Maria Rossi",
    "phone": "+393316938049",
    "email": None,
    "fiscal_code": None,
}


@pytest.fixture
def settings(clean_environment: None) -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def all_texts() -> Iterator[tuple[str, str]]:
    for s in QUESTIONNAIRE:
        yield f"{s.key}.title", s.title
        yield f"{s.key}.question", s.question
        yield f"{s.key}.reask", s.reask
        for reason, msgid in s.reasks.items():
            yield f"{s.key}.reasks.{reason}", msgid
        for option in s.options:
            yield f"{s.key}.options.{option.key}", option.label
    for rule in q.ELIGIBILITY_RULES:
        yield f"rule.{rule.reason}", rule.explanation
    yield "NOT_GIVEN", q.NOT_GIVEN
    yield "HOUSEHOLD_LABEL", q.HOUSEHOLD_LABEL


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_spec_step_is_present_once_in_order() -> None:
    assert [s.key for s in QUESTIONNAIRE] == SPEC_KEYS
    assert all(q.step(key).key == key for key in SPEC_KEYS)


def test_unknown_step_is_a_domain_error() -> None:
    with pytest.raises(UnknownStep):
        q.step("shoe_size")


@pytest.mark.parametrize(("where", "msgid"), list(all_texts()))
def test_every_text_is_translated_with_the_same_placeholders(where: str, msgid: str) -> None:
    assert msgid.strip() == msgid and msgid, where
    allowed = {"members", "minors"} if where == "HOUSEHOLD_LABEL" else PLACEHOLDERS
    assert _fields(msgid) <= allowed, (where, _fields(msgid))
    # English is the source language: every other catalog must translate the text.
    for lang in available_languages():
        text = Translator(lang)(msgid)
        assert text.strip() == text and text, (where, lang)
        assert _fields(text) == _fields(msgid), (where, lang)
        if lang != "en":
            assert text != msgid, (where, lang, "untranslated")


def test_languages_come_from_the_catalogs() -> None:
    assert available_languages()[:1] == ("it",)
    assert "en" in available_languages()
    assert not hasattr(q, "LANGUAGES")


def test_step_shapes() -> None:
    for s in QUESTIONNAIRE:
        keys = s.option_keys
        assert len(keys) == len(set(keys)), s.key
        assert all(re.fullmatch(r"[a-z_]+", key) for key in keys), s.key
        if s.answer in (AnswerType.YES_NO, AnswerType.CHOICE, AnswerType.MULTI_CHOICE):
            assert len(keys) >= 2, s.key
        else:
            assert keys == (), s.key
        if s.answer is AnswerType.YES_NO:
            assert keys == ("yes", "no")
        if s.condition is not None:
            earlier = SPEC_KEYS[: SPEC_KEYS.index(s.key)]
            assert s.condition.key in earlier, "conditions look at earlier answers only"
    assert [s.key for s in QUESTIONNAIRE if s.optional] == ["email", "fiscal_code"]
    for key in ("benefits", "needs"):
        exclusive = [o.key for o in q.step(key).options if o.exclusive]
        assert len(exclusive) == 1, key
    assert q.step("benefits").option("none") is not None


def test_questions_render_with_settings(settings: Settings) -> None:
    assert q.question_text(q.step("residence"), "it", settings=settings) == (
        "Sei residente a Cernusco sul Naviglio?"
    )
    assert q.question_text(q.step("residence"), "en", settings=settings) == (
        "Are you a resident of Cernusco sul Naviglio?"
    )
    several = settings.model_copy(update={"municipalities": ("Cernusco", "Cassina", "Pioltello")})
    assert q.question_text(q.step("residence"), "it", settings=several) == (
        "Sei residente a Cernusco, Cassina o Pioltello?"
    )
    # A Translator works as well as a language code.
    assert q.question_text(q.step("residence"), Translator("en"), settings=settings) == (
        "Are you a resident of Cernusco sul Naviglio?"
    )
    # Any other language falls back to Italian until it gets its catalog.
    assert q.question_text(q.step("urgent"), "de", settings=settings) == (
        "Questo mese hai difficoltà a pagare l'affitto, le bollette o la spesa?"
    )
    for s in QUESTIONNAIRE:
        for lang in available_languages():
            assert "{" not in q.question_text(s, lang, settings=settings)
            for reason in (*s.reasks, "anything"):
                assert "{" not in q.reask_text(s, reason, lang, settings=settings)


def test_reasks_are_specific(settings: Settings) -> None:
    since = q.step("since")
    assert q.reask_text(since, "format", "it", settings=settings) == (
        "Scrivi mese e anno, per esempio 03/2021."
    )
    assert "febbraio 2020" in q.reask_text(since, "before_start", "it", settings=settings)
    assert "February 2020" in q.reask_text(since, "before_start", "en", settings=settings)
    assert "futuro" in q.reask_text(since, "future", "it", settings=settings)
    assert q.reask_text(q.step("name"), "too_long", "en", settings=settings).startswith(
        "That is too long"
    )
    # A reason without its own text gets the step's general re-ask.
    assert q.reask_text(q.step("name"), "empty", "it", settings=settings) == (
        "Scrivi nome e cognome con sole lettere, per esempio Maria Rossi."
    )


def test_program_start_month_is_in_the_readers_language(settings: Settings) -> None:
    later = settings.model_copy(update={"program_start": date(2021, 9, 1)})
    since = q.step("since")
    assert "settembre 2021" in q.reask_text(since, "before_start", "it", settings=later)
    assert "September 2021" in q.reask_text(since, "before_start", Translator("en"), settings=later)
    several = settings.model_copy(update={"municipalities": ("Cernusco", "Cassina")})
    assert q.render(q.step("residence").question, "en", settings=several) == (
        "Are you a resident of Cernusco or Cassina?"
    )


def test_the_condition_skips_the_job_loss_questions_for_other_situations() -> None:
    since, pandemic = q.step("since"), q.step("pandemic_related")
    assert since.condition == pandemic.condition == q.ShowIf(key="situation", not_in=("other",))
    for situation in q.COVERED_SITUATIONS:
        assert since.applies({"situation": situation})
        assert pandemic.applies({"situation": situation})
    assert not since.applies({"situation": "other"})
    assert not pandemic.applies({"situation": "other"})
    assert since.applies({})  # not decided yet: "situation" is asked first anyway
    assert q.ShowIf(key="situation", is_in=("job_loss",)).holds({"situation": "job_loss"})
    assert not q.ShowIf(key="situation", is_in=("job_loss",)).holds({"situation": "other"})


def test_eligible(settings: Settings) -> None:
    result = q.assess(ELIGIBLE, settings)
    assert result.eligible
    assert result.reasons == ()
    assert not result.urgent


@pytest.mark.parametrize("situation", q.COVERED_SITUATIONS)
@pytest.mark.parametrize("pandemic", ["yes", "not_sure"])
def test_covered_situations_are_eligible(settings: Settings, situation: str, pandemic: str) -> None:
    answers = ELIGIBLE | {"situation": situation, "pandemic_related": pandemic}
    assert q.assess(answers, settings).eligible


def test_non_resident_is_not_eligible(settings: Settings) -> None:
    result = q.assess(ELIGIBLE | {"residence": "no"}, settings)
    assert not result.eligible
    assert result.reason_keys == ("not_resident",)
    (reason,) = result.reasons
    assert reason.text("it", settings=settings) == (
        "Ripartire è per chi è residente a Cernusco sul Naviglio."
    )
    assert reason.text(Translator("en"), settings=settings) == (
        "Ripartire is for residents of Cernusco sul Naviglio."
    )


def test_not_pandemic_related_is_not_eligible(settings: Settings) -> None:
    result = q.assess(ELIGIBLE | {"pandemic_related": "no"}, settings)
    assert not result.eligible
    assert result.reason_keys == ("not_pandemic_related",)
    assert "pandemia" in result.reasons[0].text("it", settings=settings)


def test_other_situation_fails_only_on_the_situation(settings: Settings) -> None:
    answers = {k: v for k, v in ELIGIBLE.items() if k not in ("since", "pandemic_related")}
    result = q.assess(answers | {"situation": "other"}, settings)
    assert result.reason_keys == ("situation_not_covered",)


def test_every_failed_rule_is_reported(settings: Settings) -> None:
    result = q.assess(ELIGIBLE | {"residence": "no", "pandemic_related": "no"}, settings)
    assert result.reason_keys == ("not_resident", "not_pandemic_related")


def test_a_missing_answer_fails_its_rule(settings: Settings) -> None:
    answers = {k: v for k, v in ELIGIBLE.items() if k != "residence"}
    assert q.assess(answers, settings).reason_keys == ("not_resident",)


def test_urgency_comes_from_the_urgent_answer(settings: Settings) -> None:
    assert q.assess(ELIGIBLE | {"urgent": "yes"}, settings).urgent
    assert q.assess(ELIGIBLE | {"urgent": "yes", "residence": "no"}, settings).urgent


@pytest.mark.parametrize(
    ("key", "value", "lang", "expected"),
    [
        ("residence", "yes", "it", "Sì"),
        ("residence", "yes", "en", "Yes, I am"),
        ("pandemic_related", "no", "it", "No"),
        ("pandemic_related", "no", "en", "No, it didn't"),
        ("situation", "reduced_hours", "it", "Lavoro meno ore o sono in cassa integrazione"),
        ("situation", "retired_option", "it", "retired_option"),
        ("since", "2021-03", "it", "marzo 2021"),
        ("since", "2021-03", "en", "March 2021"),
        ("household", {"members": 3, "minors": 1}, "it", "persone in casa: 3, minorenni: 1"),
        ("household", {"members": 1, "minors": 0}, "en", "people at home: 1, under 18: 0"),
        (
            "benefits",
            ["naspi", "wage_guarantee"],
            "it",
            "Disoccupazione (NASpI), Cassa integrazione",
        ),
        ("needs", ["not_sure"], "en", "I don't know yet"),
        ("name", "Maria Rossi", "en", "Maria Rossi"),
        ("phone", "+393316938049", "it", "+39 331 693 8049"),
        ("email", None, "it", "non indicato"),
        ("fiscal_code", None, "en", "not given"),
        ("fiscal_code", "RSSMRA85D03F205P", "en", "RSSMRA85D03F205P"),
    ],
)
def test_labels(key: str, value: q.Answer, lang: str, expected: str) -> None:
    assert q.labels(key, value, lang) == expected


def test_summary_lists_the_asked_steps_in_order() -> None:
    answers = {k: v for k, v in ELIGIBLE.items() if k not in ("since", "pandemic_related")}
    rows = q.summary(answers | {"situation": "other"}, "it")
    assert [title for title, _ in rows] == [
        Translator("it")(q.step(key).title)
        for key in SPEC_KEYS
        if key not in ("since", "pandemic_related")
    ]
    assert rows[1] == ("Situazione", "Altro")
    assert rows[-1] == ("Codice fiscale", "non indicato")


def test_summary_in_english_with_a_translator() -> None:
    rows = q.summary({"residence": "no", "email": None}, Translator("en"))
    assert rows == [("Residence", "No, I'm not"), ("E-mail address", "not given")]


def test_month_label() -> None:
    assert q.month_label(date(2020, 2, 1), "it") == "febbraio 2020"
    assert q.month_label(date(2020, 2, 1), Translator("en")) == "February 2020"
