"""Validated field types of the API's request bodies, each failing with a message that says
what is wrong with that one field (the error handler adds the field's name), and each with a
JSON Schema as strict as the check where JSON Schema can say it (what /docs shows and what a
schema-driven fuzzer generates from).

Amounts are taken as they came (decimal string, JSON integer, or the Decimal that the exact
JSON parser makes of a JSON number with a fraction) and converted to minor units later,
once the currency is known, by orion.domain.money.parse_amount; floats are refused, and so is
a JSON number written with an exponent (the parser makes it an ExponentDecimal), as the text
"1e3" is: an amount has one spelling, plain decimal notation. What the schemas cannot say:
an amount's decimals depend on its currency (another field), and metadata's size is counted
in bytes of canonical JSON.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema

from orion.domain.money import (
    AMOUNT_MINOR_MAX,
    AMOUNT_TEXT_CHARS_MAX,
    CURRENCY_EXPONENTS,
    AmountError,
    currency_exponent,
)

ACCOUNT_ID_CHARS_MAX = 64  # the schema's CHECK on accounts.id
METADATA_BYTES_MAX = 4096  # canonical JSON; it rides in every Kafka record and Redis key
SEED_ACCOUNT_DIGITS = 17  # the original system's account numbers

_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SEED_ACCOUNT = re.compile(r"[0-9]{17}")
_ACCOUNT_ID_SCHEMA = {"pattern": "^[A-Za-z0-9_.:-]{1,64}$", "minLength": 1, "maxLength": 64}
# A path may name a system account too ("@world:RUB"): the same characters after an "@".
ACCOUNT_ID_PATH_PATTERN = "^@?[A-Za-z0-9_.:-]{1,64}$"
# ECMA regexes without lookahead, so a fuzzer can generate from them: plain decimal notation
# as orion.domain.money reads it; a positive one has a non-zero digit before or after the point.
_POSITIVE_AMOUNT_TEXT = r"^(?:[0-9]*[1-9][0-9]*(?:\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)$"
_NON_NEGATIVE_AMOUNT_TEXT = r"^[0-9]+(?:\.[0-9]+)?$"
# As JSON numbers, in major units: no currency has fewer than 0 decimals, so no amount is
# above the first; none has more than 3, so no positive amount is below the second.
_AMOUNT_MAJOR_MAX = AMOUNT_MINOR_MAX
_AMOUNT_MAJOR_MIN = 10.0 ** -max(CURRENCY_EXPONENTS.values())


class ExponentDecimal(Decimal):
    """What the exact JSON parser makes of a number written with an exponent (1e3, 1.5E2):
    exact, but not plain decimal notation, so amount fields refuse it (metadata keeps it)."""


def _account_id(value: str) -> str:
    if value.startswith("@"):
        raise ValueError("ids starting with '@' are reserved for system accounts")
    if not _ACCOUNT_ID.fullmatch(value):
        raise ValueError("must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', ':', '-'")
    return value


def _currency(value: str) -> str:
    try:
        currency_exponent(value)
    except AmountError as err:
        raise ValueError(str(err).removeprefix(f"{err.field}: ")) from None
    return value


def _amount(value: object) -> str | int | Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError('must be a decimal string such as "12.34", or a JSON number')
    if isinstance(value, ExponentDecimal):
        raise ValueError(f"must be written without an exponent, not {value}")
    return value


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    """JSON-native copy of the metadata (numbers with a fraction become floats: metadata is
    opaque to Orion, exact values belong in strings), refused beyond METADATA_BYTES_MAX."""
    try:
        native = json.loads(json.dumps(value, default=_decimal_to_float))
        size = len(json.dumps(native, sort_keys=True, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError):
        raise ValueError("must be a JSON object") from None
    if size > METADATA_BYTES_MAX:
        raise ValueError(f"larger than {METADATA_BYTES_MAX} bytes of JSON")
    return dict(native)


def _decimal_to_float(value: object) -> float:
    if isinstance(value, Decimal) and value.is_finite():
        return float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _seed_account(value: object) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _SEED_ACCOUNT.fullmatch(text):
        raise ValueError(f"must be exactly {SEED_ACCOUNT_DIGITS} digits")
    return text


StrictStr = Annotated[str, Field(strict=True)]
AccountId = Annotated[
    StrictStr, AfterValidator(_account_id), Field(json_schema_extra=_ACCOUNT_ID_SCHEMA)
]
Currency = Annotated[
    StrictStr,
    AfterValidator(_currency),
    Field(
        description="ISO 4217 code",
        examples=["RUB"],
        json_schema_extra={"enum": sorted(CURRENCY_EXPONENTS)},
    ),
]


def _amount_schema(text_pattern: str, zero_allowed: bool, what: str) -> WithJsonSchema:
    text = {"type": "string", "pattern": text_pattern, "maxLength": AMOUNT_TEXT_CHARS_MAX}
    number = {"type": "number", "minimum": _AMOUNT_MAJOR_MIN, "maximum": _AMOUNT_MAJOR_MAX}
    zero = [{"type": "integer", "minimum": 0, "maximum": 0}] if zero_allowed else []
    return WithJsonSchema(
        {
            "anyOf": [text, number, *zero],
            "description": f"{what} in major units, exactly: a decimal string (preferred) or a"
            " JSON number, in plain notation (no exponent), with at most the currency's decimals",
            "examples": ["12.34"],
        }
    )


AmountIn = Annotated[
    str | int | Decimal,
    PlainValidator(_amount),
    _amount_schema(_POSITIVE_AMOUNT_TEXT, False, "positive"),
]
# Zero is allowed (no overdraft, no opening balance): convert.minor_or_zero reads these.
AmountOrZeroIn = Annotated[
    str | int | Decimal,
    PlainValidator(_amount),
    _amount_schema(_NON_NEGATIVE_AMOUNT_TEXT, True, "zero or positive"),
]
# Every string of a body, keys included, matches this: the parser (jsonbody) refuses NUL and
# lone surrogates. Regex escapes, not characters, so the OpenAPI text is plain ASCII.
SAFE_TEXT_PATTERN = r"^[^\u0000\ud800-\udfff]*$"
_SAFE_KEYS = {"pattern": SAFE_TEXT_PATTERN}
_JSON_VALUE_REF = {"$ref": "#/components/schemas/JsonValue"}
# Schemas that fields reference but no model declares; app.py adds them to the OpenAPI.
SHARED_SCHEMAS: dict[str, dict[str, Any]] = {
    "JsonValue": {
        "description": "any JSON value whose strings hold no NUL and no lone surrogate",
        "anyOf": [
            {"type": "string", "pattern": SAFE_TEXT_PATTERN},
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": _JSON_VALUE_REF},
            {
                "type": "object",
                "propertyNames": _SAFE_KEYS,
                "additionalProperties": _JSON_VALUE_REF,
            },
        ],
    }
}
Metadata = Annotated[
    dict[str, Any],
    AfterValidator(_metadata),
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": _SAFE_KEYS,
            "additionalProperties": _JSON_VALUE_REF,
            "description": f"opaque to Orion; at most {METADATA_BYTES_MAX} bytes of compact JSON",
        }
    ),
]
# As a JSON integer (no leading zero): 10**16 <= n < 10**17. FastAPI's OpenAPI model turns
# bounds into floats, exact for these powers of ten but not for 10**17 - 1, hence "exclusive".
_SEED_ACCOUNT_MIN = 10 ** (SEED_ACCOUNT_DIGITS - 1)
SeedAccount = Annotated[
    str,
    PlainValidator(_seed_account),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": "^[0-9]{17}$"},
                {
                    "type": "integer",
                    "minimum": _SEED_ACCOUNT_MIN,
                    "exclusiveMaximum": 10 * _SEED_ACCOUNT_MIN,
                },
            ]
        }
    ),
]
