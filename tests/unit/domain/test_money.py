"""Exact amount parsing and formatting (orion.domain.money)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.domain.money import (
    AMOUNT_MINOR_MAX,
    CURRENCY_EXPONENTS,
    AmountError,
    currency_exponent,
    format_amount,
    parse_amount,
)

GOOD = [
    ("12.30", "USD", 1230),
    ("12.3", "USD", 1230),
    ("12", "USD", 1200),
    (5, "USD", 500),
    ("0.01", "USD", 1),
    ("7", "JPY", 7),
    ("7.00", "JPY", 7),
    ("1.234", "BHD", 1_234),
    ("0.001", "KWD", 1),
    (Decimal("12.30"), "EUR", 1_230),
    (Decimal("1E+2"), "GBP", 10_000),
    ("10000000000000", "USD", AMOUNT_MINOR_MAX),
    ("000012.50", "USD", 1_250),
    ("10000000000000.000000000000000", "USD", AMOUNT_MINOR_MAX),  # 30 chars, exact
]

BAD = [
    ("NaN", "USD"),
    ("nan", "USD"),
    ("Infinity", "USD"),
    ("-Infinity", "USD"),
    ("inf", "USD"),
    (Decimal("NaN"), "USD"),
    (Decimal("sNaN"), "USD"),
    (Decimal("Infinity"), "USD"),
    ("-1", "USD"),
    (-1, "USD"),
    (Decimal("-1"), "USD"),
    ("0", "USD"),
    (0, "USD"),
    ("0.00", "USD"),
    ("-0", "USD"),
    ("1.001", "USD"),
    ("1.0000000000000000000000000001", "USD"),  # 30 chars: past Decimal's 28-digit context
    ("1.5", "JPY"),
    ("0.0001", "BHD"),
    ("1E+2", "USD"),  # text with an exponent: one spelling per amount, plain decimals only
    ("1e2", "USD"),
    ("1.5E1", "USD"),
    ("123E-2", "USD"),
    ("1.230E1", "JPY"),
    ("1E-3", "USD"),
    ("1e-999999", "USD"),
    ("1e400", "USD"),
    ("1e999999", "USD"),
    ("10000000000000.01", "USD"),
    (10**13 + 1, "USD"),
    (10**4000, "USD"),
    ("9" * 31, "USD"),
    (Decimal("1." + "0" * 40), "USD"),
    (" 1", "USD"),
    ("1 ", "USD"),
    ("1\n", "USD"),
    ("", "USD"),
    ("abc", "USD"),
    ("1,00", "USD"),
    ("1_000", "USD"),
    ("+1", "USD"),
    (".5", "USD"),
    ("5.", "USD"),
    ("0x10", "USD"),
    ("\u0661", "USD"),  # ARABIC-INDIC DIGIT ONE: Decimal takes it, we do not
    (True, "USD"),
    (False, "USD"),
    (1.5, "USD"),
    (1.0, "USD"),
    (None, "USD"),
]

BAD_CURRENCIES = ["usd", "US", "USDX", "", "XXX", "ABC", "U$D", 840]


@pytest.mark.parametrize(("value", "currency", "minor"), GOOD)
def test_parse_amount_accepts_exact_amounts(value: object, currency: str, minor: int) -> None:
    """Well-formed amounts convert exactly to minor units of their currency."""
    assert parse_amount(value, currency) == minor  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "currency"), BAD)
def test_parse_amount_rejects_bad_amounts(value: object, currency: str) -> None:
    """Floats, non-finite, non-positive, over-precise, huge or malformed input is refused
    with an AmountError naming the field, never rounded or truncated."""
    with pytest.raises(AmountError) as caught:
        parse_amount(value, currency, field="transfers[3].amount")  # type: ignore[arg-type]
    assert caught.value.field == "transfers[3].amount"
    assert str(caught.value).startswith("transfers[3].amount: ")


@pytest.mark.parametrize("currency", BAD_CURRENCIES)
def test_unknown_currency_is_refused_as_currency_field(currency: object) -> None:
    """Unknown or malformed currency codes raise AmountError(field="currency")."""
    with pytest.raises(AmountError) as caught:
        parse_amount("1", currency)  # type: ignore[arg-type]
    assert caught.value.field == "currency"
    with pytest.raises(AmountError):
        currency_exponent(currency)  # type: ignore[arg-type]


def test_amount_error_is_a_value_error() -> None:
    """Callers that catch ValueError also catch AmountError."""
    with pytest.raises(ValueError, match="more than 2 decimals"):
        parse_amount("1.001", "USD")


@pytest.mark.parametrize("text", ["1e2", "1E+2", "1.230E1", "1e0"])
def test_exponent_text_is_refused_while_the_same_decimal_converts(text: str) -> None:
    """The text rule is about spelling only: "1e2" is refused as not a plain decimal, while
    the Decimal a caller already holds (Decimal("1e2")) still converts exactly."""
    with pytest.raises(AmountError, match="not a plain decimal"):
        parse_amount(text, "USD")
    assert parse_amount(Decimal(text), "USD") == int(Decimal(text) * 100)


def test_exponent_table_is_broad_and_correct() -> None:
    """The table knows the common currencies with their ISO 4217 exponents."""
    expected = {"USD": 2, "EUR": 2, "RUB": 2, "GBP": 2, "JPY": 0, "KRW": 0, "BHD": 3}
    expected |= {"KWD": 3, "CHF": 2, "CNY": 2, "OMR": 3, "ISK": 0, "VND": 0, "INR": 2}
    assert {code: CURRENCY_EXPONENTS[code] for code in expected} == expected
    assert len(CURRENCY_EXPONENTS) >= 30
    assert all(currency_exponent(code) == e for code, e in CURRENCY_EXPONENTS.items())


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1230, "USD", "12.30"),
        (-500, "USD", "-5.00"),
        (5, "USD", "0.05"),
        (-5, "USD", "-0.05"),
        (0, "USD", "0.00"),
        (7, "JPY", "7"),
        (-7, "JPY", "-7"),
        (1, "BHD", "0.001"),
        (AMOUNT_MINOR_MAX, "USD", "10000000000000.00"),
    ],
)
def test_format_amount_is_canonical(minor: int, currency: str, text: str) -> None:
    """Minor units format with exactly the currency's number of decimals."""
    assert format_amount(minor, currency) == text


def test_format_amount_refuses_non_integers() -> None:
    """Formatting a bool or float is a programming error, refused loudly."""
    with pytest.raises(AmountError):
        format_amount(True, "USD")
    with pytest.raises(AmountError):
        format_amount(1.5, "USD")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    minor=st.integers(min_value=1, max_value=AMOUNT_MINOR_MAX),
    currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)),
)
def test_parse_of_format_round_trips(minor: int, currency: str) -> None:
    """parse(format(x)) == x for every valid amount in every currency, also via Decimal."""
    text = format_amount(minor, currency)
    assert parse_amount(text, currency) == minor
    assert parse_amount(Decimal(text), currency) == minor


@settings(max_examples=300, deadline=None)
@given(
    value=st.decimals(allow_nan=True, allow_infinity=True, places=None),
    currency=st.sampled_from(["USD", "JPY", "BHD"]),
)
def test_parse_never_rounds(value: Decimal, currency: str) -> None:
    """Whatever Decimal comes in, the result is either exact or an AmountError."""
    try:
        minor = parse_amount(value, currency)
    except AmountError:
        return
    assert Decimal(minor) == value.scaleb(currency_exponent(currency))
    assert 0 < minor <= AMOUNT_MINOR_MAX
