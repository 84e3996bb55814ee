"""Validated field types of the API's request bodies, each failing with a message that says
what is wrong with that one field (the error handler adds the field's name).

Amounts are taken as they came (decimal string, JSON integer, or the Decimal that the exact
JSON parser makes of a JSON number with a fraction) and converted to minor units later,
once the currency is known, by orion.domain.money.parse_amount; floats are refused.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema

from orion.domain.money import AmountError, currency_exponent

ACCOUNT_ID_CHARS_MAX = 64  # the schema's CHECK on accounts.id
METADATA_BYTES_MAX = 4096  # canonical JSON; it rides in every Kafka record and Redis key
SEED_ACCOUNT_DIGITS = 17  # the original system's account numbers

_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SEED_ACCOUNT = re.compile(r"[0-9]{17}")
_ACCOUNT_ID_SCHEMA = {"pattern": "^[A-Za-z0-9_.:-]{1,64}$", "minLength": 1, "maxLength": 64}


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
        description="ISO 4217 code", examples=["RUB"], json_schema_extra={"pattern": "^[A-Z]{3}$"}
    ),
]
AmountIn = Annotated[
    str | int | Decimal,
    PlainValidator(_amount),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "number"}],
            "description": "major units, exactly: a decimal string (preferred) or JSON number",
            "examples": ["12.34"],
        }
    ),
]
Metadata = Annotated[dict[str, Any], AfterValidator(_metadata)]
SeedAccount = Annotated[
    str,
    PlainValidator(_seed_account),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{17}$"}),
]
