"""Money: cents shown the Italian (and English) way, and read back from what staff type."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.money import (
    MAX_CENTS,
    AmountAmbiguous,
    AmountMissing,
    AmountNegative,
    AmountNotANumber,
    AmountTooLarge,
    AmountTooPrecise,
    InvalidAmount,
    format_amount,
    format_euros,
    parse_euros,
)

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("cents", "italian", "english"),
    [
        (0, f"0,00{NBSP}€", "€0.00"),
        (5, f"0,05{NBSP}€", "€0.05"),
        (123450, f"1.234,50{NBSP}€", "€1,234.50"),
        (100_000, f"1.000,00{NBSP}€", "€1,000.00"),
        (14_000_000, f"140.000,00{NBSP}€", "€140,000.00"),
        (MAX_CENTS, f"1.000.000.000,00{NBSP}€", "€1,000,000,000.00"),
        (-123450, f"-1.234,50{NBSP}€", "-€1,234.50"),
    ],
)
def test_format_euros(cents: int, italian: str, english: str) -> None:
    assert format_euros(cents) == italian
    assert format_euros(cents, "it") == italian
    assert format_euros(cents, "en") == english
    # A Telegram-style code, and a language without a catalog (Italian, as everywhere).
    assert format_euros(cents, "en-GB") == english
    assert format_euros(cents, "xx") == italian


def test_format_amount_is_what_an_input_shows() -> None:
    assert format_amount(123450) == "1.234,50"
    assert format_amount(123450, "en") == "1,234.50"
    assert format_amount(7) == "0,07"
    assert format_amount(100) == "1,00"


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("1.234,50", 123450),
        ("1234,5", 123450),
        ("1234,50", 123450),
        ("1234", 123400),
        ("1234.50", 123450),  # the numeric keypad's dot, with one or two decimals
        ("1234.5", 123450),
        ("0.5", 50),
        ("1.234", 123400),  # as an Italian reads it: one thousand two hundred thirty-four
        ("12.345.678", 1_234_567_800),
        ("12.345.678,99", 1_234_567_899),
        ("0,05", 5),
        ("0", 0),
        ("007", 700),
        (" 250 ", 25000),
        ("€ 1.234,50", 123450),
        ("1.234,50 €", 123450),
        (f"1.234,50{NBSP}€", 123450),
        ("€250", 25000),
        ("1000000000", MAX_CENTS),
    ],
)
def test_parse_italian(text: str, cents: int) -> None:
    assert parse_euros(text) == cents


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("1,234.50", 123450),
        ("1234.5", 123450),
        ("1,234", 123400),
        ("1234,50", 123450),  # a comma followed by two digits can't be a thousands group
        ("€1,234.50", 123450),
    ],
)
def test_parse_english(text: str, cents: int) -> None:
    assert parse_euros(text, "en") == cents


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", AmountMissing),
        ("   ", AmountMissing),
        ("€", AmountMissing),
        ("-5", AmountNegative),
        ("\u22125", AmountNegative),  # the typographic minus
        ("5-", AmountNegative),
        ("€ -12,50", AmountNegative),
        ("-€12,50", AmountNegative),
        ("1234,567", AmountTooPrecise),  # fractions of a cent
        ("0,001", AmountTooPrecise),
        ("1,234.50", AmountAmbiguous),  # the English way, in an Italian form
        ("1,500", AmountAmbiguous),  # 1,5 € or 1500 €?
        ("1234.567", AmountAmbiguous),  # a decimal point with three decimals, or a typo?
        ("0.500", AmountAmbiguous),
        ("1.23,50", AmountNotANumber),  # thousands groups have three digits
        ("1.234.5", AmountNotANumber),
        ("12,", AmountNotANumber),
        (",50", AmountNotANumber),
        ("1,2,3", AmountNotANumber),
        ("1 234", AmountNotANumber),
        ("+5", AmountNotANumber),
        ("1e5", AmountNotANumber),
        ("NaN", AmountNotANumber),
        ("Infinity", AmountNotANumber),
        ("dieci", AmountNotANumber),
        ("١٢٣", AmountNotANumber),  # digits of another script, which Decimal would take
        ("€€5", AmountNotANumber),
        ("1000000000,01", AmountTooLarge),
        ("99999999999", AmountTooLarge),
        ("9" * 5000, AmountTooLarge),
    ],
)
def test_parse_refusals_carry_a_code(text: str, error: type[InvalidAmount]) -> None:
    with pytest.raises(error) as raised:
        parse_euros(text)
    assert isinstance(raised.value, ValueError)
    assert raised.value.code == error.code
    assert raised.value.text == text


def test_refusal_codes_are_distinct() -> None:
    errors = [
        AmountMissing,
        AmountNotANumber,
        AmountNegative,
        AmountTooPrecise,
        AmountAmbiguous,
        AmountTooLarge,
    ]
    assert len({e.code for e in errors}) == len(errors)
    assert AmountTooLarge("x").max_cents == MAX_CENTS


def test_english_reads_the_other_way_round() -> None:
    with pytest.raises(AmountAmbiguous):
        parse_euros("1.234,50", "en")
    with pytest.raises(AmountAmbiguous):
        parse_euros("1.234", "en")
    with pytest.raises(AmountTooPrecise):
        parse_euros("1234.567", "en")


languages = st.sampled_from(["it", "en"])
cents_values = st.integers(min_value=0, max_value=MAX_CENTS)


@given(cents=cents_values, language=languages)
def test_format_then_parse_gives_the_same_cents(cents: int, language: str) -> None:
    assert parse_euros(format_euros(cents, language), language) == cents
    assert parse_euros(format_amount(cents, language), language) == cents


@given(cents=cents_values)
def test_typed_without_grouping_either_separator(cents: int) -> None:
    euros, rest = divmod(cents, 100)
    assert parse_euros(f"{euros},{rest:02d}") == cents
    # With a dot and two decimals there is no thousands reading: it is a decimal point.
    assert parse_euros(f"{euros}.{rest:02d}") == cents
    if rest % 10 == 0:
        assert parse_euros(f"{euros},{rest // 10}") == cents


@given(cents=st.integers(min_value=1, max_value=MAX_CENTS))
def test_negative_amounts_are_refused(cents: int) -> None:
    with pytest.raises(AmountNegative):
        parse_euros(format_euros(-cents))
