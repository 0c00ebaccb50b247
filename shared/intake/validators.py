"""Raw answers in, normalised answers out: one validator per answer type.

Each validator takes the text as the citizen typed it (or a button's callback data, which
is never trusted) and returns the value to store, or raises `InvalidAnswer(step_key,
reason)`; the reason picks the re-ask text of the step. Reason codes:

- every type: `empty`, `too_long` (checked first, so a 4,096-character message costs nothing);
- choices: `unknown_option`, `exclusive` (a "none" option chosen together with others);
- month and year: `format`, `future`, `before_start`;
- household: `format`, `members_range`, `minors_range`, `minors_exceed`;
- name: `characters`, `too_short`, `too_long`;
- phone: `letters`, `invalid`; e-mail: `invalid`; fiscal code: `format`, `check_character`,
  `invalid`.

Pass `""` for a message that has no text (sticker, photo, voice): it gets the re-ask.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING

import email_validator
import phonenumbers
from babel.dates import get_month_names
from codicefiscale import codicefiscale

from shared.i18n import Translator, available_languages
from shared.intake.errors import InvalidAnswer
from shared.intake.questionnaire import BACK_WORDS, Answer, AnswerType, Option, Step

if TYPE_CHECKING:
    from shared.settings import Settings

# Longest raw input looked at, per answer type; anything longer is refused unread.
MAX_CHOICE_INPUT = 100
MAX_MULTI_CHOICE_INPUT = 500
MAX_SHORT_INPUT = 40
MAX_NAME_INPUT = 200
MAX_EMAIL_INPUT = 320

NAME_MIN_LENGTH = 2
NAME_MAX_LENGTH = 80
# The person answering is an adult member of the household, so minors <= members - 1.
MAX_HOUSEHOLD_MEMBERS = 20
DEFAULT_PHONE_REGION = "IT"

# The longest answer each typed answer type accepts: what a form may let staff type.
MAX_TYPED_ANSWER = MappingProxyType(
    {
        AnswerType.MONTH_YEAR: MAX_SHORT_INPUT,
        AnswerType.TEXT_NAME: NAME_MAX_LENGTH,
        AnswerType.PHONE: MAX_SHORT_INPUT,
        AnswerType.EMAIL: MAX_EMAIL_INPUT,
        AnswerType.FISCAL_CODE: MAX_SHORT_INPUT,
    }
)


def _bounded(raw: str, step_key: str, limit: int) -> str:
    if len(raw) > limit:
        raise InvalidAnswer(step_key, "too_long")
    value = raw.strip()
    if not value:
        raise InvalidAnswer(step_key, "empty")
    return value


def _fold(value: str) -> str:
    """Case- and accent-insensitive form: "Sì" and "si" match."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


# --- words that aren't answers -----------------------------------------------------------

MAX_BACK_INPUT = 60


@functools.cache
def _back_words() -> frozenset[str]:
    return frozenset(_words(word) for words in BACK_WORDS.values() for word in words)


def _words(value: str) -> str:
    """The words of `value`, folded, without punctuation or emoji: "⬅️ Indietro!" → "indietro"."""
    return " ".join("".join(c if c.isalnum() else " " for c in _fold(value)).split())


def asks_to_go_back(raw: str) -> bool:
    """The message is one of `BACK_WORDS`, in any language: "Indietro!", "Cancel"."""
    return len(raw) <= MAX_BACK_INPUT and _words(raw) in _back_words()


# --- yes/no and choices ------------------------------------------------------------------


@functools.cache
def _typed_forms(option: Option) -> frozenset[str]:
    """The option's key and its label in every language, folded."""
    labels = (Translator(lang)(option.label) for lang in available_languages())
    return frozenset({option.key, *(_fold(label) for label in labels)})


def _pick_option(raw: str, step: Step) -> str:
    value = _bounded(raw, step.key, MAX_CHOICE_INPUT)
    if value in step.option_keys:
        return value
    # A citizen who types "sì" instead of tapping the button is understood too.
    folded = _fold(value)
    for option in step.options:
        if folded in _typed_forms(option):
            return option.key
    raise InvalidAnswer(step.key, "unknown_option")


def validate_yes_no(raw: str, *, step: Step) -> str:
    """ "yes" or "no" (the option keys of `step`)."""
    return _pick_option(raw, step)


def validate_choice(raw: str, *, step: Step) -> str:
    """One option key of `step`; its label, typed in any language, is accepted too."""
    return _pick_option(raw, step)


def validate_multi_choice(raw: str, *, step: Step) -> list[str]:
    """Option keys separated by commas or spaces, returned once each in questionnaire order."""
    value = _bounded(raw, step.key, MAX_MULTI_CHOICE_INPUT)
    chosen = {key for key in re.split(r"[\s,;]+", value) if key}
    if not chosen:
        raise InvalidAnswer(step.key, "empty")
    if not chosen <= set(step.option_keys):
        raise InvalidAnswer(step.key, "unknown_option")
    keys = [option.key for option in step.options if option.key in chosen]
    if len(keys) > 1 and any(option.exclusive and option.key in chosen for option in step.options):
        raise InvalidAnswer(step.key, "exclusive")
    return keys


# --- month and year ----------------------------------------------------------------------

_NUMERIC_MONTH = re.compile(r"(\d{1,2})\s*[/.\-\s]\s*(\d{4}|\d{2})")
_ISO_MONTH = re.compile(r"(\d{4})\s*[/.\-]\s*(\d{1,2})")
_WORD_MONTH = re.compile(r"([^\W\d_]+)\.?\s*[,']?\s*(?:(?:del|di|of)\s+)?(\d{4}|\d{2})")


@functools.cache
def _month_names() -> Mapping[str, int]:
    """ "marzo", "mar", "March", "Mar" → 3, in every language of the questionnaire."""
    names: dict[str, int] = {}
    for lang in available_languages():
        for width in ("wide", "abbreviated"):
            for number, name in get_month_names(width, "stand-alone", locale=lang).items():
                names[_fold(name)] = int(number)
    return MappingProxyType(names)


def _year(digits: str) -> int:
    year = int(digits)
    # "03/21": two-digit years can only mean this century for a program started in 2020.
    return 2000 + year if len(digits) == 2 else year


def _parse_month_year(value: str, step_key: str) -> tuple[int, int]:
    if match := _NUMERIC_MONTH.fullmatch(value):
        month, year = int(match[1]), _year(match[2])
    elif match := _ISO_MONTH.fullmatch(value):
        year, month = int(match[1]), int(match[2])
    elif match := _WORD_MONTH.fullmatch(value):
        found = _month_names().get(_fold(match[1]))
        if found is None:
            raise InvalidAnswer(step_key, "format")
        month, year = found, _year(match[2])
    else:
        raise InvalidAnswer(step_key, "format")
    if not 1 <= month <= 12:
        raise InvalidAnswer(step_key, "format")
    return year, month


def validate_month_year(
    raw: str, *, today: date, program_start: date, step_key: str = "since"
) -> str:
    """ "03/2021", "3-2021", "2021-03", "marzo 2021", "Mar 2021" → "2021-03".

    Refused when after the month of `today` or before the month of `program_start`.
    """
    value = _bounded(raw, step_key, MAX_SHORT_INPUT)
    year, month = _parse_month_year(value, step_key)
    if (year, month) > (today.year, today.month):
        raise InvalidAnswer(step_key, "future")
    if (year, month) < (program_start.year, program_start.month):
        raise InvalidAnswer(step_key, "before_start")
    return f"{year:04d}-{month:02d}"


# --- household ---------------------------------------------------------------------------

_TWO_NUMBERS = re.compile(r"(\d{1,3})(?:\s*(?:[,;/+\-]|e|and)\s*|\s+)(\d{1,3})", re.IGNORECASE)


def validate_household(raw: str, *, step_key: str = "household") -> dict[str, int]:
    """ "3 1", "3,1", "3 e 1" → {"members": 3, "minors": 1}.

    Members count the person answering (an adult): 1-20 members, and minors from 0 to
    members - 1. A lone "1" means living alone.
    """
    value = _bounded(raw, step_key, MAX_SHORT_INPUT)
    if match := _TWO_NUMBERS.fullmatch(value):
        members, minors = int(match[1]), int(match[2])
    elif value.isdecimal() and int(value) == 1:
        members, minors = 1, 0
    else:
        raise InvalidAnswer(step_key, "format")
    if not 1 <= members <= MAX_HOUSEHOLD_MEMBERS:
        raise InvalidAnswer(step_key, "members_range")
    if not 0 <= minors < MAX_HOUSEHOLD_MEMBERS:
        raise InvalidAnswer(step_key, "minors_range")
    if minors > members - 1:
        raise InvalidAnswer(step_key, "minors_exceed")
    return {"members": members, "minors": minors}


# --- name --------------------------------------------------------------------------------

# Phones type typographic apostrophes and hyphens; store one spelling of "D'Amico".
_NAME_TRANSLATION = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2010": "-", "\u2011": "-"}
)
_NAME_PUNCTUATION = frozenset("'-.")
# Zero-width non-joiner: part of the spelling of many Persian names, so allowed between letters.
_ZWNJ = "\u200c"


def _is_variation_selector(char: str) -> bool:
    code = ord(char)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def _check_name_characters(value: str, step_key: str) -> None:
    """Letters of any script (with their combining marks), spaces, ' - and . only.

    Everything else is refused: digits, symbols and emoji, `<` and `>`, control and
    format characters (bidi overrides and isolates U+202A-U+202E, U+2066-U+2069 included).
    """
    previous = ""
    for index, char in enumerate(value):
        category = unicodedata.category(char)
        after_letter = previous[:1] in ("L", "M")
        if (
            category[0] == "L"
            or category == "Zs"
            or char in _NAME_PUNCTUATION
            or (category in ("Mn", "Mc") and after_letter and not _is_variation_selector(char))
            or (char == _ZWNJ and after_letter and value[index + 1 : index + 2].isalpha())
        ):
            pass
        else:
            raise InvalidAnswer(step_key, "characters")
        previous = category


def validate_name(raw: str, *, step_key: str = "name") -> str:
    """NFC, trimmed, inner spaces collapsed; 2-80 characters with at least one letter."""
    if len(raw) > MAX_NAME_INPUT:
        raise InvalidAnswer(step_key, "too_long")
    # Only a typed line's own ends are trimmed before the check: other controls are refused.
    value = unicodedata.normalize("NFC", raw).translate(_NAME_TRANSLATION).strip(" \t\r\n")
    if not value:
        raise InvalidAnswer(step_key, "empty")
    _check_name_characters(value, step_key)
    value = " ".join(value.split())
    if not any(char.isalpha() for char in value):
        raise InvalidAnswer(step_key, "characters")
    if len(value) < NAME_MIN_LENGTH:
        raise InvalidAnswer(step_key, "too_short")
    if len(value) > NAME_MAX_LENGTH:
        raise InvalidAnswer(step_key, "too_long")
    return value


# --- phone, e-mail, fiscal code ----------------------------------------------------------


def _valid_number(value: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_possible_number(number) and phonenumbers.is_valid_number(number):
        return number
    return None


def validate_phone(raw: str, *, step_key: str = "phone", region: str = DEFAULT_PHONE_REGION) -> str:
    """A possible and valid number, Italian unless it has a prefix, in E.164: "+393316938049".

    A number with letters is refused: phonenumbers would read them as a keypad's digits
    ("333-abc-defg" → +39 333 222 3334), and an "I" typed for a "1" would be kept wrong.
    """
    value = _bounded(raw, step_key, MAX_SHORT_INPUT)
    if any(char.isalpha() for char in value):
        raise InvalidAnswer(step_key, "letters")
    number = _valid_number(value, region)
    if number is None and value[0].isdigit():
        # Telegram shares contacts' numbers with the country code but without the "+".
        number = _valid_number("+" + value, None)
    if number is None:
        raise InvalidAnswer(step_key, "invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_email(raw: str, *, step_key: str = "email") -> str:
    """A well-formed address (its domain is not looked up), in normalised form."""
    value = _bounded(raw, step_key, MAX_EMAIL_INPUT)
    try:
        result = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError:
        raise InvalidAnswer(step_key, "invalid") from None
    return result.normalized


_FISCAL_CODE_SHAPE = re.compile(r"[A-Z0-9]{16}")


def validate_fiscal_code(raw: str, *, step_key: str = "fiscal_code") -> str:
    """An Italian fiscal code with a correct check character (omocodia accepted), upper case."""
    if len(raw) > MAX_SHORT_INPUT:
        raise InvalidAnswer(step_key, "too_long")
    value = "".join(raw.split()).upper()
    if not value:
        raise InvalidAnswer(step_key, "empty")
    if not _FISCAL_CODE_SHAPE.fullmatch(value):
        raise InvalidAnswer(step_key, "format")
    if codicefiscale.is_valid(value):
        return value
    if codicefiscale.encode_cin(value) != value[-1]:
        raise InvalidAnswer(step_key, "check_character")
    # Right check character, but no such birth date or birthplace code.
    raise InvalidAnswer(step_key, "invalid")


def validate(step: Step, raw: str, *, today: date, settings: Settings) -> Answer:
    """The normalised answer to `step`, whatever its type; `today` is in the program's zone."""
    match step.answer:
        case AnswerType.YES_NO:
            return validate_yes_no(raw, step=step)
        case AnswerType.CHOICE:
            return validate_choice(raw, step=step)
        case AnswerType.MULTI_CHOICE:
            return validate_multi_choice(raw, step=step)
        case AnswerType.MONTH_YEAR:
            return validate_month_year(
                raw, today=today, program_start=settings.program_start, step_key=step.key
            )
        case AnswerType.HOUSEHOLD:
            return validate_household(raw, step_key=step.key)
        case AnswerType.TEXT_NAME:
            return validate_name(raw, step_key=step.key)
        case AnswerType.PHONE:
            return validate_phone(raw, step_key=step.key)
        case AnswerType.EMAIL:
            return validate_email(raw, step_key=step.key)
        case AnswerType.FISCAL_CODE:
            return validate_fiscal_code(raw, step_key=step.key)
