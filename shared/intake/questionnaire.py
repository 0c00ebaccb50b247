"""The pre-screening questionnaire as data (SPEC section 3), and the eligibility rule.

One definition drives the Telegram conversation, the staff intake form, the labels in
the case view and the exports. Every citizen-facing text is an English msgid marked with
`N_`; its translations live in the gettext catalogs (`shared/i18n/locale/*/intake.po`),
so a new language is a catalog file, not code. The rendering functions below take a
`Translator`, or a language code and build one.

Texts are plain text (front ends escape them for HTML) and may contain two placeholders,
filled from the settings after translation: `{municipalities}` (where residents live,
e.g. "Cernusco sul Naviglio") and `{program_start}` (the month the program covers from,
e.g. "febbraio 2020", with the month name in the reader's language).

Stored answers are JSON values: an option key (`str`) for yes/no and choices, a list of
option keys for multiple choices, `"YYYY-MM"` for a month, `{"members": n, "minors": m}`
for the household, a normalised string for name, phone (E.164), e-mail and fiscal code,
and `None` for a skipped optional step.

The one condition: `since` and `pandemic_related` are asked only when `situation` is not
"other". Both questions are about losing (part of) one's work: "since when?" has no
meaning for someone who did not, and the pandemic question could not make them eligible.

An answer that one of the eligibility rules refuses ends the questionnaire there
(`asked_steps`): the citizen is asked instead whether they want to leave their name and
phone (`CONTACT_OFFER`), so that a case worker can look at their situation (staff can
override the outcome, SPEC J2); only if they say yes are `CONTACT_STEPS` asked. Nothing
else is collected from someone the program can't take. The staff form asks every step
(a case worker is there to hear the whole story).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

import phonenumbers
from babel.dates import format_date

from shared.i18n import N_, Translator
from shared.intake.errors import UnknownStep

if TYPE_CHECKING:
    from shared.settings import Settings

Answer = str | list[str] | dict[str, int] | None
Answers = Mapping[str, Answer]
# Who reads a text: a Translator, or a language code (anything unknown reads Italian).
Reader = Translator | str | None


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
    # msgid of the label.
    label: str
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
    # Short name of the step for summaries, the case view and exports (msgid).
    title: str
    question: str
    answer: AnswerType
    # What to say after an invalid answer; `reasks` holds more specific ones by reason code.
    reask: str
    options: tuple[Option, ...] = ()
    optional: bool = False
    condition: ShowIf | None = None
    reasks: Mapping[str, str] = field(default_factory=dict)

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

# English answers a yes/no question the way it was asked ("Are you…?" "Yes, I am"); Italian
# simply says "Sì" / "No".
_YES_I_AM = Option("yes", N_("Yes, I am"))
_NO_I_AM_NOT = Option("no", N_("No, I'm not"))
_TAP_YES_NO = N_("Tap “Yes” or “No”.")
_PICK_ONE = N_("Choose one of the answers below.")

QUESTIONNAIRE: tuple[Step, ...] = (
    Step(
        key="residence",
        title=N_("Residence"),
        question=N_("Are you a resident of {municipalities}?"),
        answer=AnswerType.YES_NO,
        options=(_YES_I_AM, _NO_I_AM_NOT),
        reask=_TAP_YES_NO,
    ),
    Step(
        key="situation",
        title=N_("Situation"),
        question=N_("Which of these describes you best?"),
        answer=AnswerType.CHOICE,
        options=(
            Option("job_loss", N_("I lost my job as an employee")),
            Option("self_employment_stopped", N_("I had to stop my self-employed work")),
            Option("reduced_hours", N_("I work fewer hours or I am on a wage-guarantee scheme")),
            Option("other", N_("Something else")),
        ),
        reask=_PICK_ONE,
    ),
    Step(
        key="since",
        title=N_("Since"),
        question=N_("Since when? Write the month and year, for example 03/2021."),
        answer=AnswerType.MONTH_YEAR,
        condition=_AFFECTED,
        reask=N_("Write the month and year, for example 03/2021."),
        reasks={
            "future": N_(
                "That date is in the future. Write the month and year, for example 03/2021."
            ),
            "before_start": N_(
                "Ripartire covers situations that started in {program_start} or later. "
                "Write the month and year, for example 03/2021."
            ),
        },
    ),
    Step(
        key="pandemic_related",
        title=N_("Caused by the pandemic"),
        question=N_("Did it happen because of the COVID-19 pandemic crisis?"),
        answer=AnswerType.CHOICE,
        options=(
            Option("yes", N_("Yes, it did")),
            Option("no", N_("No, it didn't")),
            Option("not_sure", N_("I'm not sure")),
        ),
        condition=_AFFECTED,
        reask=_PICK_ONE,
    ),
    Step(
        key="household",
        title=N_("Household"),
        question=N_(
            "How many people live in your home, counting yourself? And how many are "
            "under 18? Write two numbers, for example 3 1 (3 people, 1 of them under 18)."
        ),
        answer=AnswerType.HOUSEHOLD,
        reask=N_(
            "Write two numbers: how many people live in your home, counting yourself, "
            "and how many are under 18. For example: 3 1."
        ),
        reasks={
            "members_range": N_(
                "The people in your home must be between 1 and 20. Write two numbers: "
                "how many people live in your home, counting yourself, and how many are "
                "under 18. For example: 3 1."
            ),
            "minors_exceed": N_(
                "There can't be more people under 18 than people in your home besides you. "
                "For example: 3 1."
            ),
        },
    ),
    Step(
        key="benefits",
        title=N_("Support received"),
        question=N_("Are you getting any support now? You can choose more than one."),
        answer=AnswerType.MULTI_CHOICE,
        options=(
            Option("naspi", N_("Unemployment benefit (NASpI)")),
            Option("inclusion", N_("Inclusion allowance or citizen's income")),
            Option("wage_guarantee", N_("Wage-guarantee scheme (cassa integrazione)")),
            Option("other", N_("Other support")),
            Option("none", N_("None"), exclusive=True),
        ),
        reask=N_("Choose one or more answers, or “None”."),
        reasks={
            "exclusive": N_("“None” can't go with other answers: please choose again."),
        },
    ),
    Step(
        key="needs",
        title=N_("What would help"),
        question=N_("What would help you? You can choose more than one."),
        answer=AnswerType.MULTI_CHOICE,
        # The six interventions of the program (SPEC section 0), in plain words.
        options=(
            Option("economic_support", N_("Urgent financial help")),
            Option("microcredit", N_("A small loan (microcredit)")),
            Option("psychological_support", N_("Talking with a psychologist")),
            Option("benefits_access", N_("Finding out which benefits I can get")),
            Option("job_search", N_("Looking for a job")),
            Option("internship", N_("An internship to learn a job")),
            Option("not_sure", N_("I don't know yet"), exclusive=True),
        ),
        reask=N_("Choose one or more answers, or “I don't know yet”."),
        reasks={
            "exclusive": N_("“I don't know yet” can't go with other answers: please choose again."),
        },
    ),
    Step(
        key="urgent",
        title=N_("Urgent"),
        question=N_("This month, are you struggling to pay rent, bills or food?"),
        answer=AnswerType.YES_NO,
        options=(_YES_I_AM, _NO_I_AM_NOT),
        reask=_TAP_YES_NO,
    ),
    Step(
        key="name",
        title=N_("Name"),
        question=N_("What is your name? Write your first name and surname."),
        answer=AnswerType.TEXT_NAME,
        reask=N_("Write your first name and surname with letters only, for example Maria Rossi."),
        reasks={
            "too_long": N_(
                "That is too long: write just your name and surname, 80 characters at most."
            ),
        },
    ),
    Step(
        key="phone",
        title=N_("Phone"),
        question=N_("Which phone number can we call you on?"),
        answer=AnswerType.PHONE,
        reask=N_(
            "That number doesn't look right. Write it like this: 333 123 4567, "
            "or +44 7700 900123 for a foreign number."
        ),
        reasks={
            "letters": N_(
                "A phone number has digits only, no letters. Write it like this: "
                "333 123 4567, or +44 7700 900123 for a foreign number."
            ),
        },
    ),
    Step(
        key="email",
        title=N_("E-mail address"),
        question=N_("If you like, write your e-mail address. You can also skip this question."),
        answer=AnswerType.EMAIL,
        optional=True,
        reask=N_(
            "That address doesn't look right. Write it like this: name@example.com, "
            "or skip the question."
        ),
    ),
    Step(
        key="fiscal_code",
        title=N_("Fiscal code"),
        question=N_(
            "If you like, write your Italian fiscal code (codice fiscale). "
            "You can also skip this question."
        ),
        answer=AnswerType.FISCAL_CODE,
        optional=True,
        reask=N_(
            "That fiscal code doesn't look right: check its 16 characters, or skip the question."
        ),
        reasks={
            "check_character": N_(
                "The last letter doesn't match: check all 16 characters, or skip the question."
            ),
        },
    ),
)

# Asked, instead of the rest, once an answer rules the citizen out (see the module docstring).
CONTACT_OFFER = Step(
    key="contact_offer",
    title=N_("Asked to be called"),
    question=N_(
        "Would you like to leave your name and phone number, so that a case worker can "
        "look at your situation and call you?"
    ),
    answer=AnswerType.YES_NO,
    options=(Option("yes", N_("Yes, please")), Option("no", N_("No, thank you"))),
    reask=_TAP_YES_NO,
)
# What a citizen ruled out is asked when they accept the offer.
CONTACT_STEPS = ("name", "phone")

# What people type to go back one question, per language: a front end treats these as its
# Back button (which, while an answer is being changed, cancels the change). Compared as
# `validators.asks_to_go_back` does: whole message, any case, accents and punctuation.
BACK_WORDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "it": (
            "indietro",
            "torna indietro",
            "tornare indietro",
            "vai indietro",
            "un passo indietro",
            "torna alla domanda precedente",
            "domanda precedente",
            "annulla",
            "annullare",
        ),
        "en": (
            "back",
            "go back",
            "step back",
            "one step back",
            "previous",
            "previous question",
            "undo",
            "cancel",
        ),
    }
)

_STEPS: Mapping[str, Step] = {s.key: s for s in (*QUESTIONNAIRE, CONTACT_OFFER)}
# The order answers are shown in: the offer comes where the contacts are asked.
_SHOWN: tuple[Step, ...] = tuple(
    shown
    for s in QUESTIONNAIRE
    for shown in ((CONTACT_OFFER, s) if s.key == CONTACT_STEPS[0] else (s,))
)

NOT_GIVEN = N_("not given")
HOUSEHOLD_LABEL = N_("people at home: {members}, under 18: {minors}")
# Joins the last two municipalities of a list: "A, B or C".
_OR = N_("{first} or {last}")


def step(key: str) -> Step:
    """The step called `key`, or `UnknownStep`."""
    try:
        return _STEPS[key]
    except KeyError:
        raise UnknownStep(key) from None


def translator(reader: Reader) -> Translator:
    """`reader` itself, or a Translator for that language code (Italian when unknown)."""
    return reader if isinstance(reader, Translator) else Translator(reader or "")


def month_label(value: date, reader: Reader) -> str:
    """A month as words in the reader's language: "marzo 2021", "March 2021"."""
    return _month_words(value.year, value.month, translator(reader).language)


# Case pages show a few of these each (Babel parses and formats in ~80 µs): made once.
@functools.lru_cache(maxsize=1024)
def _month_words(year: int, month: int, language: str) -> str:
    return format_date(date(year, month, 1), "LLLL y", locale=language)


@functools.lru_cache(maxsize=1024)
def _phone_for_people(value: str) -> str:
    """A stored E.164 number as people write it: "+39 331 693 8049"."""
    number = phonenumbers.parse(value, None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def render(message: str, reader: Reader, *, settings: Settings) -> str:
    """The translation of `message` with `{municipalities}` and `{program_start}` filled in."""
    t = translator(reader)
    places = list(settings.municipalities)
    if len(places) > 1:
        places = [t(_OR, first=", ".join(places[:-1]), last=places[-1])]
    return t(
        message,
        municipalities=places[0] if places else "",
        program_start=month_label(settings.program_start, t),
    )


def question_text(step: Step, reader: Reader, *, settings: Settings) -> str:
    """The question of `step`, ready to show."""
    return render(step.question, reader, settings=settings)


def reask_text(step: Step, reason: str, reader: Reader, *, settings: Settings) -> str:
    """What to say after an invalid answer to `step`: specific to `reason` when possible."""
    return render(step.reasks.get(reason, step.reask), reader, settings=settings)


def option_label(s: Step, key: str, reader: Reader) -> str:
    """The label of option `key` of step `s`; an option removed since shows as its key."""
    option = s.option(key)
    return translator(reader)(option.label) if option is not None else key


def labels(key: str, value: Answer, reader: Reader) -> str:
    """A stored answer to step `key` as text for people (case view, exports, summary)."""
    s = step(key)
    t = translator(reader)
    if value is None:
        return t(NOT_GIVEN)
    if isinstance(value, str) and s.answer in (AnswerType.YES_NO, AnswerType.CHOICE):
        return option_label(s, value, t)
    if isinstance(value, list):
        return ", ".join(option_label(s, item, t) for item in value)
    if isinstance(value, dict):
        return t(
            HOUSEHOLD_LABEL, members=value.get("members", "?"), minors=value.get("minors", "?")
        )
    if s.answer is AnswerType.MONTH_YEAR:
        year, month = (int(part) for part in value.split("-"))
        return month_label(date(year, month, 1), t)
    if s.answer is AnswerType.PHONE:
        return _phone_for_people(value)
    return value


def summary(answers: Answers, reader: Reader) -> list[tuple[str, str]]:
    """(title, answer) for every step asked with these answers, in questionnaire order."""
    t = translator(reader)
    return [
        (t(s.title), labels(s.key, answers.get(s.key), t))
        for s in _SHOWN
        if s.applies(answers) and s.key in answers
    ]


# --- Eligibility -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One requirement: the answer to `step_key`, when that step is asked, is in `accepted`."""

    reason: str
    step_key: str
    accepted: tuple[str, ...]
    # Told to the citizen when the requirement is not met: kind, short, no jargon (msgid).
    explanation: str


ELIGIBILITY_RULES: tuple[Rule, ...] = (
    Rule(
        reason="not_resident",
        step_key="residence",
        accepted=("yes",),
        explanation=N_("Ripartire is for residents of {municipalities}."),
    ),
    Rule(
        reason="situation_not_covered",
        step_key="situation",
        accepted=COVERED_SITUATIONS,
        explanation=N_(
            "Ripartire is for people who lost their job, had to stop their "
            "self-employed work, or work fewer hours."
        ),
    ),
    Rule(
        reason="not_pandemic_related",
        step_key="pandemic_related",
        # "Not sure" is not a "no": the interview will find out.
        accepted=("yes", "not_sure"),
        explanation=N_("Ripartire is for people in difficulty because of the pandemic crisis."),
    ),
)


@dataclass(frozen=True)
class Reason:
    """A requirement that was not met: its key and the msgid of its explanation."""

    key: str
    explanation: str

    def text(self, reader: Reader, *, settings: Settings) -> str:
        """The explanation in the reader's language, placeholders filled in."""
        return render(self.explanation, reader, settings=settings)


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

    A rule whose step was not asked (its condition is false, or an earlier answer already
    ruled the citizen out) does not count; a missing answer to a step that was asked fails
    its rule. No rule reads `settings` today; the explanations are rendered with them by
    `Reason.text`.
    """
    asked = {s.key for s in asked_steps(answers)}
    failed = tuple(
        Reason(key=rule.reason, explanation=rule.explanation)
        for rule in ELIGIBILITY_RULES
        if step(rule.step_key).applies(answers)
        and (rule.step_key in answers or rule.step_key in asked)
        and answers.get(rule.step_key) not in rule.accepted
    )
    return Eligibility(eligible=not failed, urgent=answers.get("urgent") == "yes", reasons=failed)


def _refused(s: Step, answers: Answers) -> bool:
    """An answer to `s` that an eligibility rule does not accept."""
    return s.key in answers and any(
        answers[s.key] not in rule.accepted for rule in ELIGIBILITY_RULES if rule.step_key == s.key
    )


def asked_steps(answers: Answers) -> tuple[Step, ...]:
    """The steps asked, in order, given these answers (see the module docstring).

    Every step whose condition holds, up to the first answer the rules refuse; after that
    one, the offer and, unless it was declined, the contact steps. While the offer is
    unanswered the contact steps count as asked, as a step whose condition waits on an
    unanswered step does.
    """
    asked: list[Step] = []
    for s in QUESTIONNAIRE:
        if not s.applies(answers):
            continue
        asked.append(s)
        if _refused(s, answers):
            asked.append(CONTACT_OFFER)
            if answers.get(CONTACT_OFFER.key) != "no":
                asked += [step(key) for key in CONTACT_STEPS if step(key) not in asked]
            break
    return tuple(asked)


def ruled_out(answers: Answers) -> bool:
    """An answer has already decided that the citizen can't take part (staff may override)."""
    return any(s is CONTACT_OFFER for s in asked_steps(answers))
