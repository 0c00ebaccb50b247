from __future__ import annotations

import time
from datetime import date

import pytest
from codicefiscale import codicefiscale

from shared.intake import staff
from shared.intake import validators as v
from shared.intake.errors import InvalidAnswer
from shared.intake.questionnaire import reask_text, step
from shared.settings import Settings

TODAY = date(2024, 5, 10)
PROGRAM_START = date(2020, 2, 1)
HUGE = "x" * 4096
SETTINGS = Settings(  # type: ignore[call-arg]
    database_url="sqlite+aiosqlite://", secret_key="x" * 40, _env_file=None
)

# Letters that replace digits in the fiscal codes of people whose codes would collide.
_OMOCODIA = str.maketrans("0123456789", "LMNPQRSTUV")


def omocodic(code: str) -> str:
    """Replace the last digit of `code` with its omocodia letter and recompute the check character."""
    last_digit = max(i for i, c in enumerate(code[:15]) if c.isdigit())
    body = code[:last_digit] + code[last_digit].translate(_OMOCODIA) + code[last_digit + 1 : 15]
    return body + codicefiscale.encode_cin(body)


def refused(reason: str | None = None) -> pytest.RaisesExc[InvalidAnswer]:
    return pytest.raises(InvalidAnswer, match=reason or "")


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Mario Rossi", "Mario Rossi"),
        ("  maria   de   angelis  ", "maria de angelis"),
        ("Anna-Maria D'Amico", "Anna-Maria D'Amico"),
        ("Anna D’Amico", "Anna D'Amico"),  # typographic apostrophe from a phone keyboard
        ("J. R. R. Tolkien", "J. R. R. Tolkien"),
        ("Jose\u0301 Nu\u0301n\u0303ez", "José Núñez"),  # NFC-normalised
        ("Zoë\u00a0Brontë", "Zoë Brontë"),  # no-break space collapsed
        ("Мария Иванова", "Мария Иванова"),
        ("محمد علي", "محمد علي"),
        ("محمد\u200cرضا", "محمد\u200cرضا"),  # Persian zero-width non-joiner between letters
        ("李小龙", "李小龙"),
        ("देवनागरी नाम", "देवनागरी नाम"),  # combining vowel signs
        ("Li", "Li"),
        ("A" * 80, "A" * 80),
        ("Mario Rossi\n", "Mario Rossi"),
    ],
)
def test_valid_names(raw: str, expected: str) -> None:
    assert v.validate_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("M", "too_short"),
        ("A" * 81, "too_long"),
        (HUGE, "too_long"),
        ("😀", "characters"),
        ("😀😀😀", "characters"),
        ("Mario 😀 Rossi", "characters"),
        ("Mario\u202eissoR", "characters"),  # right-to-left override
        ("Mario\u2066Rossi\u2069", "characters"),  # bidi isolates
        ("Mario\u202aRossi", "characters"),
        ("<b>Mario</b>", "characters"),
        ("Mario Rossi 2", "characters"),
        ("Mario\x00Rossi", "characters"),
        ("Mario Rossi\x1f", "characters"),  # a separator control, though str.strip() eats it
        ("Mario Rossi\x85", "characters"),
        ("Mario\tRossi", "characters"),
        ("Mario\nRossi", "characters"),
        ("Mario\u200bRossi", "characters"),  # zero-width space
        ("Mario\u200dRossi", "characters"),  # zero-width joiner
        ("Mario\ufe0f", "characters"),  # variation selector
        ("\u0301Mario", "characters"),  # combining mark with no letter
        ("Mario@Rossi", "characters"),
        ("- . '", "characters"),
        ("Robert'); DROP TABLE citizen;--", "characters"),
    ],
)
def test_invalid_names(raw: str, reason: str) -> None:
    with refused(reason) as error:
        v.validate_name(raw)
    assert error.value.step_key == "name"
    assert error.value.reason == reason


# --- phone -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+39 331 693 8049", "+393316938049"),
        ("3316938049", "+393316938049"),
        ("331-6938049", "+393316938049"),
        ("0039 331 6938049", "+393316938049"),
        ("393316938049", "+393316938049"),  # as Telegram shares a contact: no "+"
        ("02 1234 5678", "+390212345678"),  # a Milan landline
        ("+44 7911 123456", "+447911123456"),
        ("447911123456", "+447911123456"),
    ],
)
def test_valid_phones(raw: str, expected: str) -> None:
    assert v.validate_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("123", "invalid"),
        # Letters are never read as digits (phonenumbers' vanity mapping: "abc" → 222).
        ("abc", "letters"),
        ("333-abc-defg", "letters"),
        ("+39 33I 693 8049", "letters"),
        ("Tel. 3316938049", "letters"),
        ("331 693 8049 interno 2", "letters"),
        ("+39 331", "invalid"),
        ("+39 331 693 8049 1234567", "invalid"),
        ("😀", "invalid"),
        (HUGE, "too_long"),
        ("3" * 4096, "too_long"),
    ],
)
def test_invalid_phones(raw: str, reason: str) -> None:
    with refused(reason):
        v.validate_phone(raw)


def test_a_phone_with_letters_is_reasked_in_the_staff_form_too() -> None:
    raw = {"residence": "yes", "situation": "other", "household": "1", "phone": "333-abc-defg"}
    with pytest.raises(staff.InvalidSubmission) as refusal:
        staff.validate_answers(raw, today=TODAY, settings=SETTINGS)
    assert refusal.value.errors["phone"] == "letters"
    reask = reask_text(step("phone"), "letters", "it", settings=SETTINGS)
    assert "solo cifre" in reask


# --- e-mail ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mario.rossi@example.com", "mario.rossi@example.com"),
        ("  Mario.Rossi@EXAMPLE.IT ", "Mario.Rossi@example.it"),
        ("anna+ripartire@comune.cernusco.mi.it", "anna+ripartire@comune.cernusco.mi.it"),
    ],
)
def test_valid_emails(raw: str, expected: str) -> None:
    assert v.validate_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("mario", "invalid"),
        ("mario@", "invalid"),
        ("mario rossi@example.com", "invalid"),
        ("Mario <mario@example.com>", "invalid"),
        ("mario@example..com", "invalid"),
        ("😀@😀", "invalid"),
        ("a" * 250 + "@example.com", "invalid"),
        (HUGE, "too_long"),
        ("a" * 4084 + "@example.com", "too_long"),
    ],
)
def test_invalid_emails(raw: str, reason: str) -> None:
    with refused(reason):
        v.validate_email(raw)


# --- fiscal code -------------------------------------------------------------------------

VALID_CODE = codicefiscale.encode(
    lastname="Rossi", firstname="Mario", gender="M", birthdate="03/04/1985", birthplace="Milano"
)


def test_the_generated_code_is_the_expected_one() -> None:
    assert VALID_CODE == "RSSMRA85D03F205P"
    assert omocodic(VALID_CODE) == "RSSMRA85D03F20RK"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (VALID_CODE, VALID_CODE),
        ("rssmra85d03f205p", VALID_CODE),
        (" RSS MRA 85D03 F205P ", VALID_CODE),
        (omocodic(VALID_CODE), "RSSMRA85D03F20RK"),
        (omocodic(omocodic(VALID_CODE)), omocodic(omocodic(VALID_CODE))),
    ],
)
def test_valid_fiscal_codes(raw: str, expected: str) -> None:
    assert v.validate_fiscal_code(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("RSSMRA85D03F205", "format"),
        ("RSSMRA85D03F205PX", "format"),
        ("RSSMRA85D03F205-", "format"),
        ("RSSMRA85D03F205X", "check_character"),
        ("RSSMRA85D03F20RP", "check_character"),  # omocodic, old check character
        ("😀" * 16, "format"),
        ("RSSMRA85Z03F205" + codicefiscale.encode_cin("RSSMRA85Z03F205"), "invalid"),  # no month Z
        (HUGE, "too_long"),
    ],
)
def test_invalid_fiscal_codes(raw: str, reason: str) -> None:
    with refused(reason):
        v.validate_fiscal_code(raw)


# --- month and year ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("03/2021", "2021-03"),
        ("3/2021", "2021-03"),
        ("03-2021", "2021-03"),
        ("03.2021", "2021-03"),
        ("3 2021", "2021-03"),
        ("3/21", "2021-03"),
        ("2021-03", "2021-03"),
        ("marzo 2021", "2021-03"),
        ("Marzo 2021", "2021-03"),
        ("march 2021", "2021-03"),
        ("Mar. 2021", "2021-03"),
        ("settembre del 2022", "2022-09"),
        ("feb 2020", "2020-02"),  # the program's first month
        ("05/2024", "2024-05"),  # this month
    ],
)
def test_valid_months(raw: str, expected: str) -> None:
    assert v.validate_month_year(raw, today=TODAY, program_start=PROGRAM_START) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("2021", "format"),
        ("marzo", "format"),
        ("13/2021", "format"),
        ("0/2021", "format"),
        ("smarch 2021", "format"),
        ("03/2021/01", "format"),
        ("😀", "format"),
        ("06/2024", "future"),
        ("giugno 2024", "future"),
        ("01/2030", "future"),
        ("01/2020", "before_start"),
        ("dicembre 2019", "before_start"),
        (HUGE, "too_long"),
    ],
)
def test_invalid_months(raw: str, reason: str) -> None:
    with refused(reason):
        v.validate_month_year(raw, today=TODAY, program_start=PROGRAM_START)


# --- household ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "members", "minors"),
    [
        ("3 1", 3, 1),
        ("3,1", 3, 1),
        ("3, 1", 3, 1),
        ("3 e 1", 3, 1),
        ("3 E 1", 3, 1),
        ("3 and 1", 3, 1),
        ("3/1", 3, 1),
        ("1 0", 1, 0),
        ("1", 1, 0),  # living alone
        ("20 19", 20, 19),
        ("٣ ١", 3, 1),  # Arabic-Indic digits
    ],
)
def test_valid_households(raw: str, members: int, minors: int) -> None:
    assert v.validate_household(raw) == {"members": members, "minors": minors}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("3", "format"),
        ("tre e uno", "format"),
        ("3 1 2", "format"),
        ("-3 1", "format"),
        ("😀 😀", "format"),
        ("0 0", "members_range"),
        ("21 0", "members_range"),
        ("3 4", "minors_exceed"),
        ("3 3", "minors_exceed"),  # the person answering is an adult member
        ("1 1", "minors_exceed"),
        (HUGE, "too_long"),
    ],
)
def test_invalid_households(raw: str, reason: str) -> None:
    with refused(reason):
        v.validate_household(raw)


# --- choices -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("residence", "yes", "yes"),
        ("residence", "no", "no"),
        ("residence", "Sì", "yes"),
        ("residence", "si", "yes"),
        ("residence", "YES", "yes"),
        ("situation", "job_loss", "job_loss"),
        ("situation", "altro", "other"),
        ("pandemic_related", "not_sure", "not_sure"),
        ("pandemic_related", "non lo so", "not_sure"),
    ],
)
def test_valid_choices(key: str, raw: str, expected: str) -> None:
    s = step(key)
    validate = v.validate_yes_no if key == "residence" else v.validate_choice
    assert validate(raw, step=s) == expected


@pytest.mark.parametrize(
    ("key", "raw", "reason"),
    [
        ("residence", "", "empty"),
        ("residence", "maybe", "unknown_option"),
        ("residence", "yes no", "unknown_option"),
        ("situation", "job_loss' OR 1=1", "unknown_option"),
        ("situation", "JOB_LOSS_", "unknown_option"),
        ("situation", HUGE, "too_long"),
    ],
)
def test_invalid_choices(key: str, raw: str, reason: str) -> None:
    with refused(reason):
        v.validate_choice(raw, step=step(key))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("naspi", ["naspi"]),
        ("other,naspi", ["naspi", "other"]),  # questionnaire order
        ("naspi naspi, wage_guarantee", ["naspi", "wage_guarantee"]),
        ("none", ["none"]),
    ],
)
def test_valid_multi_choices(raw: str, expected: list[str]) -> None:
    assert v.validate_multi_choice(raw, step=step("benefits")) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        (" , ", "empty"),
        ("naspi,bogus", "unknown_option"),
        ("none,naspi", "exclusive"),
        ("economic_support", "unknown_option"),  # an option of another step
        ("naspi," * 1000, "too_long"),
    ],
)
def test_invalid_multi_choices(raw: str, reason: str) -> None:
    with refused(reason):
        v.validate_multi_choice(raw, step=step("benefits"))


def test_exclusive_option_of_needs() -> None:
    needs = step("needs")
    assert v.validate_multi_choice("not_sure", step=needs) == ["not_sure"]
    with refused("exclusive"):
        v.validate_multi_choice("not_sure job_search", step=needs)


# --- every type at once ------------------------------------------------------------------


def test_huge_inputs_are_refused_quickly() -> None:
    validators = [
        lambda raw: v.validate_name(raw),
        lambda raw: v.validate_phone(raw),
        lambda raw: v.validate_email(raw),
        lambda raw: v.validate_fiscal_code(raw),
        lambda raw: v.validate_household(raw),
        lambda raw: v.validate_month_year(raw, today=TODAY, program_start=PROGRAM_START),
        lambda raw: v.validate_choice(raw, step=step("situation")),
        lambda raw: v.validate_multi_choice(raw, step=step("needs")),
    ]
    payloads = [HUGE, "😀" * 4096, "\u202e" * 4096, "1" * 4096, " " * 4095 + "a", "a@" * 2048]
    started = time.perf_counter()
    for validate in validators:
        for payload in payloads:
            with refused("too_long"):
                validate(payload)
    assert time.perf_counter() - started < 1.0
