"""Exact money: ISO 4217 minor units, parsing and formatting.

Responsibilities: turn a client's major-unit amount ("12.30", 5, Decimal("1E+2")) into an
integer count of minor units for its currency, and back into a canonical decimal string.
Amount text is plain decimal notation: "1e2" is refused (one spelling per amount, and what
the API's OpenAPI pattern says); a Decimal object handed in directly may have any exponent.

Guarantees:
- No float ever touches an amount: floats are refused, conversion is integer arithmetic on
  the Decimal's digits, so nothing is rounded (the Decimal context's precision is never used).
- `parse_amount` returns an int in 1..AMOUNT_MINOR_MAX or raises `AmountError` naming the
  field; an amount with more decimals than its currency has is refused, never truncated.
- `format_amount(parse_amount(s, c), c)` is canonical, and parsing it gives the same int.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

AMOUNT_MINOR_MAX = 10**15  # ~9,000 such amounts still sum inside a bigint (9.2e18)
AMOUNT_TEXT_CHARS_MAX = 30  # longer than any honest amount; caps parsing work on hostile input
AMOUNT_DIGITS_MAX = AMOUNT_TEXT_CHARS_MAX  # the same cap for Decimal objects handed in directly

# Plain decimal notation, no exponent; ASCII digits only (re's \d is Unicode). The sign is
# matched so "-5" is refused as "must be positive", which says more than "not a decimal".
_AMOUNT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")

# ISO 4217 minor-unit exponents (decimals) of the currencies Orion accepts.
# fmt: off
CURRENCY_EXPONENTS: Mapping[str, int] = MappingProxyType({
    # Two decimals: the common case.
    "AED": 2, "ARS": 2, "AUD": 2, "BDT": 2, "BGN": 2, "BRL": 2, "BYN": 2, "CAD": 2,
    "CHF": 2, "CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2,
    "GEL": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "KES": 2, "KZT": 2,
    "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2, "NZD": 2, "PEN": 2, "PHP": 2, "PKR": 2,
    "PLN": 2, "QAR": 2, "RON": 2, "RUB": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2,
    "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "ZAR": 2,
    # No minor unit in circulation.
    "CLP": 0, "ISK": 0, "JPY": 0, "KRW": 0, "PYG": 0, "UGX": 0, "VND": 0, "XAF": 0,
    "XOF": 0,
    # Three decimals (fils, baisa, millimes, dirhams).
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
})
# fmt: on


class AmountError(ValueError):
    """A client-supplied amount or currency is unacceptable; `field` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def currency_exponent(currency: str) -> int:
    """Number of decimals of `currency` (ISO 4217); AmountError for anything unknown."""
    if not isinstance(currency, str) or not _CURRENCY_CODE.fullmatch(currency):
        raise AmountError("currency", "must be a 3-letter upper-case ISO 4217 code")
    exponent = CURRENCY_EXPONENTS.get(currency)
    if exponent is None:
        raise AmountError("currency", f"unsupported currency {currency!r}")
    return exponent


def parse_amount(value: str | int | Decimal, currency: str, field: str = "amount") -> int:
    """Exact positive amount in minor units of `currency`, from major units."""
    exponent = currency_exponent(currency)
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise AmountError(field, "must be a decimal string or an integer, not a float")
    if isinstance(value, int):
        # Bound the major units first so a 10**9999 int costs nothing to refuse.
        return _checked(field, _checked(field, value) * 10**exponent)
    decimal = _decimal_of_text(value, field) if isinstance(value, str) else value
    return _checked(field, _minor_units(decimal, exponent, field))


def format_amount(minor: int, currency: str) -> str:
    """Canonical decimal text of `minor` units: exactly the currency's decimals ("-5.00")."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise AmountError("amount", "minor units must be an integer")
    exponent = currency_exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**exponent)
    if exponent == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def _decimal_of_text(text: str, field: str) -> Decimal:
    if len(text) > AMOUNT_TEXT_CHARS_MAX:
        raise AmountError(field, f"longer than {AMOUNT_TEXT_CHARS_MAX} characters")
    if not _AMOUNT_TEXT.fullmatch(text):
        raise AmountError(field, f"not a plain decimal number: {text!r}")
    return Decimal(text)


def _minor_units(value: Decimal, exponent: int, field: str) -> int:
    """value * 10**exponent as an int, refusing anything that would need rounding."""
    if not value.is_finite():
        raise AmountError(field, "must be a finite number")
    sign, digits, power = value.as_tuple()
    if len(digits) > AMOUNT_DIGITS_MAX:
        raise AmountError(field, f"more than {AMOUNT_DIGITS_MAX} digits")
    if not isinstance(power, int):  # only NaN and Infinity have a letter here
        raise AmountError(field, "must be a finite number")
    coefficient = int("".join(map(str, digits)))
    if sign or coefficient == 0:
        return -coefficient
    shift = power + exponent
    if shift >= 0:
        # Bound before 10**shift so Decimal("1e999999") costs nothing.
        if len(digits) + shift > len(str(AMOUNT_MINOR_MAX)):
            raise AmountError(field, f"above the maximum of {AMOUNT_MINOR_MAX} minor units")
        scale: int = 10**shift
        return coefficient * scale
    # A non-zero coefficient shorter than the shift can never divide evenly.
    if -shift > len(digits):
        raise AmountError(field, f"more than {exponent} decimals for this currency")
    divisor: int = 10**-shift
    whole, rest = divmod(coefficient, divisor)
    if rest:
        raise AmountError(field, f"more than {exponent} decimals for this currency")
    return whole


def _checked(field: str, minor: int) -> int:
    if minor <= 0:
        raise AmountError(field, "must be positive")
    if minor > AMOUNT_MINOR_MAX:
        raise AmountError(field, f"above the maximum of {AMOUNT_MINOR_MAX} minor units")
    return minor
