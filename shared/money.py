"""Money as integer cents: shown in the reader's language, read from what a case worker types.

Amounts are never floats: text goes to `Decimal` (Babel's `parse_decimal`) and then to a
whole number of cents, and cents go back to `Decimal` for Babel's `format_currency`.

How typed amounts are read, in Italian (in English the two symbols swap roles):

- the comma is the decimal separator, with at most two decimals: "1234,5", "1.234,50";
- a dot followed by groups of exactly three digits is a thousands separator, so "1.234"
  is one thousand two hundred thirty-four euros, as an Italian reads it;
- with no comma, one dot followed by one or two digits at the end is a decimal point
  ("1234.50", "12.5"): no thousands group has fewer than three digits, and the numeric
  keypad of an Italian keyboard types a dot;
- "€" before or after the number and spaces around it are ignored.

Anything else is refused with an `InvalidAmount` carrying a `code`: a sign, more than two
decimals (fractions of a cent), separators that read both ways ("1,234.50", "1,500",
"1234.567" or "0.500" in Italian), letters, exponents, digits of other scripts.
"""

from __future__ import annotations

import re
from decimal import Decimal

from babel.numbers import (
    format_currency,
    format_decimal,
    get_decimal_symbol,
    get_group_symbol,
    parse_decimal,
)

from shared.i18n import normalise_language

CURRENCY = "EUR"
# One billion euros: more than any fund this programme will hold, and far inside 64 bits
# (the amount columns are BIGINT, so totals of many such amounts still fit).
MAX_CENTS = 100_000_000_000
_MAX_EURO_DIGITS = len(str(MAX_CENTS // 100))

_MINUS_SIGNS = ("-", "\u2212")
_SPACES = " \t\u00a0\u202f"


class InvalidAmount(ValueError):
    """Typed text that is not an amount of euros; `text` is what was typed."""

    code = "invalid_amount"

    def __init__(self, text: str) -> None:
        super().__init__(f"{self.code}: {text!r}")
        self.text = text


class AmountMissing(InvalidAmount):
    code = "amount_missing"


class AmountNotANumber(InvalidAmount):
    code = "amount_not_a_number"


class AmountNegative(InvalidAmount):
    code = "amount_negative"


class AmountTooPrecise(InvalidAmount):
    """More than two decimals: fractions of a cent."""

    code = "amount_too_precise"


class AmountAmbiguous(InvalidAmount):
    """Separators that read two ways ("1234.567", "0.500") or both conventions mixed."""

    code = "amount_ambiguous"


class AmountTooLarge(InvalidAmount):
    """Above `MAX_CENTS`; `max_cents` says the limit."""

    code = "amount_too_large"

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.max_cents = MAX_CENTS


def format_euros(cents: int, language: str = "it") -> str:
    """`123450` → "1.234,50 €" in Italian (a no-break space before €), "€1,234.50" in English."""
    return format_currency(Decimal(cents).scaleb(-2), CURRENCY, locale=normalise_language(language))


def format_amount(cents: int, language: str = "it") -> str:
    """`123450` → "1.234,50" in Italian, "1,234.50" in English: for a form's input to show.

    Without the currency sign, and read back to the same cents by `parse_euros`.
    """
    return format_decimal(
        Decimal(cents).scaleb(-2), format="#,##0.00", locale=normalise_language(language)
    )


def _grouped(integer: str, group: str) -> bool:
    """A whole number written with thousands groups: "1.234", "12.345.678" (not "0.500")."""
    return re.fullmatch(rf"[1-9][0-9]{{0,2}}(?:{re.escape(group)}[0-9]{{3}})+", integer) is not None


def _canonical(text: str, body: str, decimal: str, group: str) -> tuple[str, str]:
    """The digits before and after the decimal separator, by the rules of the module."""
    if decimal in body:
        integer, _, fraction = body.partition(decimal)
        # "1,234.50" or "1,500" in Italian: a whole number as English writes it.
        if group in fraction or _grouped(body, decimal):
            raise AmountAmbiguous(text)
        if decimal in fraction or not integer or not fraction:
            raise AmountNotANumber(text)
        if len(fraction) > 2:
            raise AmountTooPrecise(text)
        if group in integer:
            if not _grouped(integer, group):
                raise AmountNotANumber(text)
            integer = integer.replace(group, "")
        return integer, fraction
    if group not in body:
        return body, ""
    if _grouped(body, group):
        return body.replace(group, ""), ""
    integer, _, fraction = body.partition(group)
    if not integer or group in fraction or not fraction:
        raise AmountNotANumber(text)
    if len(fraction) <= 2:
        # No thousands group is this short: the case worker typed a decimal point.
        return integer, fraction
    if len(fraction) == 3:
        raise AmountAmbiguous(text)
    raise AmountNotANumber(text)


def parse_euros(text: str, language: str = "it") -> int:
    """What a case worker typed ("1.234,50", "1234,5", "1234", "1234.50 €") as cents."""
    locale = normalise_language(language)
    decimal, group = get_decimal_symbol(locale), get_group_symbol(locale)
    body = text.strip(_SPACES).removeprefix("€").removesuffix("€").strip(_SPACES)
    if not body:
        raise AmountMissing(text)
    if body.startswith(_MINUS_SIGNS) or body.endswith(_MINUS_SIGNS):
        raise AmountNegative(text)
    # ASCII digits only: `Decimal` would also take "NaN", "1e5" and other scripts' digits.
    if re.fullmatch(f"[0-9{re.escape(decimal + group)}]+", body) is None:
        raise AmountNotANumber(text)
    integer, fraction = _canonical(text, body, decimal, group)
    if len(integer.lstrip("0")) > _MAX_EURO_DIGITS:
        raise AmountTooLarge(text)
    canonical = f"{integer}{decimal}{fraction}" if fraction else integer
    # At most two decimals by now, so the scaled value is a whole number of cents.
    cents = int(parse_decimal(canonical, locale=locale, strict=True).scaleb(2))
    if cents > MAX_CENTS:
        raise AmountTooLarge(text)
    return cents
