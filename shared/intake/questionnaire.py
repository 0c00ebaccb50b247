"""The pre-screening questionnaire as data (SPEC section 3), and the eligibility rule.

One definition drives the Telegram conversation, the staff intake form, the labels in
the case view and the exports. Every citizen-facing text lives here, per language
(`{"it": ..., "en": ...}`), until the bot moves them into gettext catalogs.

Texts may contain two placeholders, filled from the settings when rendered:
`{municipalities}` (where residents live, e.g. "Cernusco sul Naviglio") and
`{program_start}` (the month the program covers from, e.g. "febbraio 2020").

Stored answers are JSON values: an option key (`str`) for yes/no and choices, a list of
option keys for multiple choices, `"YYYY-MM"` for a month, `{"members": n, "minors": m}`
for the household, a normalised string for name, phone (E.164), e-mail and fiscal code,
and `None` for a skipped optional step.

The one condition: `since` and `pandemic_related` are asked only when `situation` is not
"other". Both questions are about losing (part of) one's work: "since when?" has no
meaning for someone who did not, and the pandemic question could not make them eligible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

import phonenumbers
from babel.dates import format_date

from shared.intake.errors import UnknownStep

if TYPE_CHECKING:
    from shared.settings import Settings

LANGUAGES = ("it", "en")
DEFAULT_LANGUAGE = "it"

# Text per language code.
Texts = Mapping[str, str]
Answer = str | list[str] | dict[str, int] | None
Answers = Mapping[str, Answer]


class AnswerType(StrEnum):
    YES_NO = "yes_no"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    MONTH_YEAR = "month_year"
    # Two small integers: people living in the home (the person answering included) and minors.
    HOUSEHOLD = "household"
    TEXT_NAME = "text_name"
    PHONE = "phone"
    EMAIL = "email"
    FISCAL_CODE = "fiscal_code"


@dataclass(frozen=True)
class Option:
    key: str
    label: Texts
    # Cannot be combined with other options of a multiple choice ("none", "I don't know").
    exclusive: bool = False


@dataclass(frozen=True)
class ShowIf:
    """Ask a step only when the single-choice answer to step `key` is (not) among some options.

    While `key` is still unanswered the condition holds: the earlier step comes first in the
    questionnaire, so it is always answered before the dependent step is reached.
    """

    key: str
    is_in: tuple[str, ...] | None = None
    not_in: tuple[str, ...] = ()

    def holds(self, answers: Answers) -> bool:
        value = answers.get(self.key)
        if not isinstance(value, str):
            return True
        if self.is_in is not None and value not in self.is_in:
            return False
        return value not in self.not_in


@dataclass(frozen=True)
class Step:
    key: str
    # Short name of the step for summaries, the case view and exports.
    title: Texts
    question: Texts
    answer: AnswerType
    # What to say after an invalid answer; `reasks` holds more specific ones by reason code.
    reask: Texts
    options: tuple[Option, ...] = ()
    optional: bool = False
    condition: ShowIf | None = None
    reasks: Mapping[str, Texts] = field(default_factory=dict)

    @property
    def option_keys(self) -> tuple[str, ...]:
        return tuple(option.key for option in self.options)

    def option(self, key: str) -> Option | None:
        return next((option for option in self.options if option.key == key), None)

    def applies(self, answers: Answers) -> bool:
        """Whether this step is asked, given the answers so far."""
        return self.condition is None or self.condition.holds(answers)


# Situations the program covers (SPEC section 0); "other" is the fourth answer.
COVERED_SITUATIONS = ("job_loss", "self_employment_stopped", "reduced_hours")
_AFFECTED = ShowIf(key="situation", not_in=("other",))

_YES = Option("yes", {"it": "Sì", "en": "Yes"})
_NO = Option("no", {"it": "No", "en": "No"})
_TAP_YES_NO = {"it": "Tocca «Sì» oppure «No».", "en": "Tap “Yes” or “No”."}
_PICK_ONE = {
    "it": "Scegli una delle risposte qui sotto.",
    "en": "Choose one of the answers below.",
}
_MONTH_YEAR = {
    "it": "Scrivi mese e anno, per esempio 03/2021.",
    "en": "Write the month and year, for example 03/2021.",
}
_HOUSEHOLD = {
    "it": "Scrivi due numeri: quante persone siete in casa, contando anche te, "
    "e quanti minorenni. Per esempio: 3 1.",
    "en": "Write two numbers: how many people live in your home, counting yourself, "
    "and how many are under 18. For example: 3 1.",
}

QUESTIONNAIRE: tuple[Step, ...] = (
    Step(
        key="residence",
        title={"it": "Residenza", "en": "Residence"},
        question={
            "it": "Sei residente a {municipalities}?",
            "en": "Are you a resident of {municipalities}?",
        },
        answer=AnswerType.YES_NO,
        options=(_YES, _NO),
        reask=_TAP_YES_NO,
    ),
    Step(
        key="situation",
        title={"it": "Situazione", "en": "Situation"},
        question={
            "it": "Quale frase ti descrive meglio?",
            "en": "Which of these describes you best?",
        },
        answer=AnswerType.CHOICE,
        options=(
            Option(
                "job_loss",
                {"it": "Ho perso il lavoro da dipendente", "en": "I lost my job as an employee"},
            ),
            Option(
                "self_employment_stopped",
                {
                    "it": "Ho dovuto fermare il mio lavoro autonomo",
                    "en": "I had to stop my self-employed work",
                },
            ),
            Option(
                "reduced_hours",
                {
                    "it": "Lavoro meno ore o sono in cassa integrazione",
                    "en": "I work fewer hours or I am on a wage-guarantee scheme",
                },
            ),
            Option("other", {"it": "Altro", "en": "Something else"}),
        ),
        reask=_PICK_ONE,
    ),
    Step(
        key="since",
        title={"it": "Da quando", "en": "Since"},
        question={
            "it": "Da quando? Scrivi mese e anno, per esempio 03/2021.",
            "en": "Since when? Write the month and year, for example 03/2021.",
        },
        answer=AnswerType.MONTH_YEAR,
        condition=_AFFECTED,
        reask=_MONTH_YEAR,
        reasks={
            "future": {
                "it": "Questa data è nel futuro. " + _MONTH_YEAR["it"],
                "en": "That date is in the future. " + _MONTH_YEAR["en"],
            },
            "before_start": {
                "it": "Ripartire riguarda le situazioni iniziate da {program_start} in poi. "
                + _MONTH_YEAR["it"],
                "en": "Ripartire covers situations that started in {program_start} or later. "
                + _MONTH_YEAR["en"],
            },
        },
    ),
    Step(
        key="pandemic_related",
        title={"it": "Causa: pandemia", "en": "Caused by the pandemic"},
        question={
            "it": "È successo a causa della crisi per la pandemia di Covid-19?",
            "en": "Did it happen because of the COVID-19 pandemic crisis?",
        },
        answer=AnswerType.CHOICE,
        options=(
            _YES,
            _NO,
            Option("not_sure", {"it": "Non lo so", "en": "I'm not sure"}),
        ),
        condition=_AFFECTED,
        reask=_PICK_ONE,
    ),
    Step(
        key="household",
        title={"it": "Famiglia", "en": "Household"},
        question={
            "it": "Quante persone siete in casa, contando anche te? E quanti sono minorenni? "
            "Scrivi due numeri, per esempio 3 1 (3 persone, di cui 1 minorenne).",
            "en": "How many people live in your home, counting yourself? And how many are "
            "under 18? Write two numbers, for example 3 1 (3 people, 1 of them under 18).",
        },
        answer=AnswerType.HOUSEHOLD,
        reask=_HOUSEHOLD,
        reasks={
            "members_range": {
                "it": "Le persone in casa vanno da 1 a 20. " + _HOUSEHOLD["it"],
                "en": "The people in your home must be between 1 and 20. " + _HOUSEHOLD["en"],
            },
            "minors_exceed": {
                "it": "I minorenni non possono essere più delle persone in casa escluso te. "
                "Per esempio: 3 1.",
                "en": "There can't be more people under 18 than people in your home "
                "besides you. For example: 3 1.",
            },
        },
    ),
    Step(
        key="benefits",
        title={"it": "Aiuti ricevuti", "en": "Support received"},
        question={
            "it": "Ricevi già qualche aiuto? Puoi sceglierne più di uno.",
            "en": "Are you getting any support now? You can choose more than one.",
        },
        answer=AnswerType.MULTI_CHOICE,
        options=(
            Option(
                "naspi",
                {"it": "Disoccupazione (NASpI)", "en": "Unemployment benefit (NASpI)"},
            ),
            Option(
                "inclusion",
                {
                    "it": "Assegno di inclusione o reddito di cittadinanza",
                    "en": "Inclusion allowance or citizen's income",
                },
            ),
            Option(
                "wage_guarantee",
                {"it": "Cassa integrazione", "en": "Wage-guarantee scheme (cassa integrazione)"},
            ),
            Option("other", {"it": "Un altro aiuto", "en": "Other support"}),
            Option("none", {"it": "Nessuno", "en": "None"}, exclusive=True),
        ),
        reask={
            "it": "Scegli una o più risposte, oppure «Nessuno».",
            "en": "Choose one or more answers, or “None”.",
        },
        reasks={
            "exclusive": {
                "it": "«Nessuno» non si può scegliere insieme ad altre risposte. Scegli di nuovo.",
                "en": "“None” can't go with other answers: please choose again.",
            },
        },
    ),
    Step(
        key="needs",
        title={"it": "Di cosa hai bisogno", "en": "What would help"},
        question={
            "it": "Cosa ti aiuterebbe? Puoi sceglierne più di uno.",
            "en": "What would help you? You can choose more than one.",
        },
        answer=AnswerType.MULTI_CHOICE,
        # The six interventions of the program (SPEC section 0), in plain words.
        options=(
            Option(
                "economic_support",
                {"it": "Un aiuto economico urgente", "en": "Urgent financial help"},
            ),
            Option(
                "microcredit",
                {"it": "Un piccolo prestito (microcredito)", "en": "A small loan (microcredit)"},
            ),
            Option(
                "psychological_support",
                {"it": "Parlare con uno psicologo", "en": "Talking with a psychologist"},
            ),
            Option(
                "benefits_access",
                {
                    "it": "Capire a quali aiuti ho diritto",
                    "en": "Finding out which benefits I can get",
                },
            ),
            Option("job_search", {"it": "Cercare lavoro", "en": "Looking for a job"}),
            Option(
                "internship",
                {"it": "Un tirocinio per imparare un lavoro", "en": "An internship to learn a job"},
            ),
            Option(
                "not_sure", {"it": "Non lo so ancora", "en": "I don't know yet"}, exclusive=True
            ),
        ),
        reask={
            "it": "Scegli una o più risposte, oppure «Non lo so ancora».",
            "en": "Choose one or more answers, or “I don't know yet”.",
        },
        reasks={
            "exclusive": {
                "it": "«Non lo so ancora» non si può scegliere insieme ad altre risposte. "
                "Scegli di nuovo.",
                "en": "“I don't know yet” can't go with other answers: please choose again.",
            },
        },
    ),
    Step(
        key="urgent",
        title={"it": "Urgenza", "en": "Urgent"},
        question={
            "it": "Questo mese hai difficoltà a pagare l'affitto, le bollette o la spesa?",
            "en": "This month, are you struggling to pay rent, bills or food?",
        },
        answer=AnswerType.YES_NO,
        options=(_YES, _NO),
        reask=_TAP_YES_NO,
    ),
    Step(
        key="name",
        title={"it": "Nome e cognome", "en": "Name"},
        question={
            "it": "Come ti chiami? Scrivi nome e cognome.",
            "en": "What is your name? Write your first name and surname.",
        },
        answer=AnswerType.TEXT_NAME,
        reask={
            "it": "Scrivi nome e cognome con sole lettere, per esempio Maria Rossi.",
            "en": "Write your first name and surname with letters only, for example Maria Rossi.",
        },
        reasks={
            "too_long": {
                "it": "È troppo lungo: scrivi solo nome e cognome, al massimo 80 caratteri.",
                "en": "That is too long: write just your name and surname, 80 characters at most.",
            },
        },
    ),
    Step(
        key="phone",
        title={"it": "Telefono", "en": "Phone"},
        question={
            "it": "A quale numero di telefono possiamo chiamarti?",
            "en": "Which phone number can we call you on?",
        },
        answer=AnswerType.PHONE,
        reask={
            "it": "Questo numero non sembra giusto. Scrivilo così: 333 123 4567, "
            "oppure +44 7700 900123 se è straniero.",
            "en": "That number doesn't look right. Write it like this: 333 123 4567, "
            "or +44 7700 900123 for a foreign number.",
        },
    ),
    Step(
        key="email",
        title={"it": "E-mail", "en": "E-mail"},
        question={
            "it": "Se vuoi, scrivi il tuo indirizzo e-mail. Puoi anche saltare questa domanda.",
            "en": "If you like, write your e-mail address. You can also skip this question.",
        },
        answer=AnswerType.EMAIL,
        optional=True,
        reask={
            "it": "Questo indirizzo non sembra giusto. Scrivilo così: nome@esempio.it, "
            "oppure salta la domanda.",
            "en": "That address doesn't look right. Write it like this: name@example.com, "
            "or skip the question.",
        },
    ),
    Step(
        key="fiscal_code",
        title={"it": "Codice fiscale", "en": "Fiscal code"},
        question={
            "it": "Se vuoi, scrivi il tuo codice fiscale. Puoi anche saltare questa domanda.",
            "en": "If you like, write your Italian fiscal code (codice fiscale). "
            "You can also skip this question.",
        },
        answer=AnswerType.FISCAL_CODE,
        optional=True,
        reask={
            "it": "Questo codice fiscale non sembra giusto: controlla i 16 caratteri, "
            "oppure salta la domanda.",
            "en": "That fiscal code doesn't look right: check its 16 characters, "
            "or skip the question.",
        },
        reasks={
            "check_character": {
                "it": "L'ultima lettera non torna: controlla di aver scritto bene "
                "tutti i 16 caratteri, oppure salta la domanda.",
                "en": "The last letter doesn't match: check all 16 characters, "
                "or skip the question.",
            },
        },
    ),
)

_STEPS: Mapping[str, Step] = {s.key: s for s in QUESTIONNAIRE}

NOT_GIVEN = {"it": "non indicato", "en": "not given"}
HOUSEHOLD_LABEL = {
    "it": "persone in casa: {members}, minorenni: {minors}",
    "en": "people at home: {members}, under 18: {minors}",
}
# Joins the last two municipalities of a list: "A, B o C".
_OR = {"it": " o ", "en": " or "}


def step(key: str) -> Step:
    """The step called `key`, or `UnknownStep`."""
    try:
        return _STEPS[key]
    except KeyError:
        raise UnknownStep(key) from None


def language(lang: str | None) -> str:
    """A language the texts exist in: `lang` itself, else Italian."""
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def text(texts: Texts, lang: str | None) -> str:
    """The text in `lang`, falling back to Italian."""
    return texts.get(language(lang)) or texts[DEFAULT_LANGUAGE]


def month_label(value: date, lang: str | None) -> str:
    """A month as words: "marzo 2021", "March 2021"."""
    return format_date(value, "LLLL y", locale=language(lang))


def render(texts: Texts, lang: str | None, *, settings: Settings) -> str:
    """The text in `lang` with `{municipalities}` and `{program_start}` filled in."""
    places = list(settings.municipalities)
    if len(places) > 1:
        places = [", ".join(places[:-1]) + text(_OR, lang) + places[-1]]
    return text(texts, lang).format(
        municipalities=places[0] if places else "",
        program_start=month_label(settings.program_start, lang),
    )


def question_text(step: Step, lang: str | None, *, settings: Settings) -> str:
    """The question of `step`, ready to show."""
    return render(step.question, lang, settings=settings)


def reask_text(step: Step, reason: str, lang: str | None, *, settings: Settings) -> str:
    """What to say after an invalid answer to `step`: specific to `reason` when possible."""
    return render(step.reasks.get(reason, step.reask), lang, settings=settings)


def labels(key: str, value: Answer, lang: str | None) -> str:
    """A stored answer to step `key` as text for people (case view, exports, summary)."""
    s = step(key)
    if value is None:
        return text(NOT_GIVEN, lang)
    if isinstance(value, str) and s.answer in (AnswerType.YES_NO, AnswerType.CHOICE):
        return _option_label(s, value, lang)
    if isinstance(value, list):
        return ", ".join(_option_label(s, item, lang) for item in value)
    if isinstance(value, dict):
        return text(HOUSEHOLD_LABEL, lang).format(
            members=value.get("members", "?"), minors=value.get("minors", "?")
        )
    if s.answer is AnswerType.MONTH_YEAR:
        year, month = (int(part) for part in value.split("-"))
        return month_label(date(year, month, 1), lang)
    if s.answer is AnswerType.PHONE:
        number = phonenumbers.parse(value, None)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return value


def _option_label(s: Step, key: str, lang: str | None) -> str:
    option = s.option(key)
    # An option removed from the definition after it was chosen still shows as its key.
    return text(option.label, lang) if option is not None else key


def summary(answers: Answers, lang: str | None) -> list[tuple[str, str]]:
    """(title, answer) for every step asked with these answers, in questionnaire order."""
    return [
        (text(s.title, lang), labels(s.key, answers.get(s.key), lang))
        for s in QUESTIONNAIRE
        if s.applies(answers) and s.key in answers
    ]


# --- Eligibility -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One requirement: the answer to `step_key`, when that step is asked, is in `accepted`."""

    reason: str
    step_key: str
    accepted: tuple[str, ...]
    # Told to the citizen when the requirement is not met: kind, short, no jargon.
    explanation: Texts


ELIGIBILITY_RULES: tuple[Rule, ...] = (
    Rule(
        reason="not_resident",
        step_key="residence",
        accepted=("yes",),
        explanation={
            "it": "Ripartire è per chi è residente a {municipalities}.",
            "en": "Ripartire is for residents of {municipalities}.",
        },
    ),
    Rule(
        reason="situation_not_covered",
        step_key="situation",
        accepted=COVERED_SITUATIONS,
        explanation={
            "it": "Ripartire è per chi ha perso il lavoro, ha dovuto fermare un lavoro "
            "autonomo o lavora meno ore.",
            "en": "Ripartire is for people who lost their job, had to stop their "
            "self-employed work, or work fewer hours.",
        },
    ),
    Rule(
        reason="not_pandemic_related",
        step_key="pandemic_related",
        # "Not sure" is not a "no": the interview will find out.
        accepted=("yes", "not_sure"),
        explanation={
            "it": "Ripartire è per chi è in difficoltà a causa della crisi per la pandemia.",
            "en": "Ripartire is for people in difficulty because of the pandemic crisis.",
        },
    ),
)


@dataclass(frozen=True)
class Reason:
    """A requirement that was not met: its key and its explanation per language."""

    key: str
    text: Texts


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    # The citizen can't pay rent, bills or food this month: offered the earliest slots.
    urgent: bool
    reasons: tuple[Reason, ...] = ()

    @property
    def reason_keys(self) -> tuple[str, ...]:
        return tuple(reason.key for reason in self.reasons)


def assess(answers: Answers, settings: Settings) -> Eligibility:
    """Eligible when resident, in a covered situation, and not "no" to the pandemic question.

    A rule whose step was not asked (its condition is false) does not count; a missing
    answer to a step that was asked fails its rule.
    """
    failed = tuple(
        Reason(
            key=rule.reason,
            text={lang: render(rule.explanation, lang, settings=settings) for lang in LANGUAGES},
        )
        for rule in ELIGIBILITY_RULES
        if step(rule.step_key).applies(answers) and answers.get(rule.step_key) not in rule.accepted
    )
    return Eligibility(eligible=not failed, urgent=answers.get("urgent") == "yes", reasons=failed)
