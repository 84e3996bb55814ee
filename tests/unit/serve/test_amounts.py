"""Amounts are exact end to end: decimal strings and JSON numbers never pass through float."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from orion.serve.jsonbody import loads_exact
from tests.unit.serve.fakes import FakeProducer


def post_raw(client: TestClient, amount_json: str, currency: str = "RUB") -> tuple[int, str]:
    """POST a transfer whose amount is spliced in as raw JSON text; returns (status, id)."""
    transfer_id = str(uuid.uuid4())
    raw = (
        f'{{"id": "{transfer_id}", "debit_account_id": "alice", "credit_account_id": "bob",'
        f' "currency": "{currency}", "amount": {amount_json}}}'
    )
    response = client.post(
        "/v1/transfers", content=raw.encode(), headers={"content-type": "application/json"}
    )
    return response.status_code, transfer_id


def produced_amount(producer: FakeProducer, transfer_id: str) -> int:
    [found] = [a.transfer.amount for a in producer.transfers if a.transfer.id == transfer_id]
    return found


def test_decimal_strings_with_and_without_trailing_zero_are_one_body(
    client: TestClient, producer: FakeProducer
) -> None:
    """ "12.3" and "12.30" are the same transfer: one record of 1230 minor units."""
    transfer_id = str(uuid.uuid4())
    for amount in ("12.3", "12.30", "1.230E1"):
        body = {
            "id": transfer_id,
            "debit_account_id": "alice",
            "credit_account_id": "bob",
            "amount": amount,
            "currency": "RUB",
        }
        assert client.post("/v1/transfers", json=body).status_code == 202
    assert [a.transfer.amount for a in producer.transfers] == [1230]


@pytest.mark.parametrize(
    ("amount_json", "currency", "minor"),
    [
        ("0.1", "RUB", 10),  # float(0.1) is 0.1000000000000000055...: would need rounding
        ("0.30", "RUB", 30),
        ("9999999999999.99", "RUB", 999_999_999_999_999),  # 15 digits, beyond float's grain
        ("1e2", "RUB", 10_000),
        ("12.345", "KWD", 12_345),
        ("7", "JPY", 7),
        ('"9999999999999.99"', "RUB", 999_999_999_999_999),
    ],
)
def test_json_numbers_convert_exactly(
    client: TestClient, producer: FakeProducer, amount_json: str, currency: str, minor: int
) -> None:
    """A JSON number is read from its text as a Decimal, so its minor units are exact."""
    status, transfer_id = post_raw(client, amount_json, currency)
    assert status == 202
    assert produced_amount(producer, transfer_id) == minor


@pytest.mark.parametrize("amount_json", ["0.30000000000000004", "0.1000000000000000055"])
def test_json_numbers_are_not_rounded_into_validity(
    client: TestClient, producer: FakeProducer, amount_json: str
) -> None:
    """Too many decimals are refused, never rounded into validity: as floats, both would
    have become a plausible amount (0.1000000000000000055 parses to the float 0.1)."""
    status, _ = post_raw(client, amount_json)
    assert status == 422
    assert producer.records == []


def test_loads_exact_keeps_fraction_digits() -> None:
    """The body parser yields Decimal for fractions and int for integers."""
    parsed = loads_exact(b'{"a": 0.30000000000000004, "b": 5, "c": [1.10]}')
    assert parsed == {"a": Decimal("0.30000000000000004"), "b": 5, "c": [Decimal("1.10")]}
    assert isinstance(parsed["b"], int)
    assert str(parsed["c"][0]) == "1.10"
    assert json.loads("0.30000000000000004") != parsed["a"]  # what plain json.loads would do


def test_response_amounts_are_canonical_strings(client: TestClient) -> None:
    """GET answers amounts as decimal strings with exactly the currency's decimals."""
    status, transfer_id = post_raw(client, "5")
    assert status == 202
    view = client.get(f"/v1/transfers/{transfer_id}").json()
    assert (view["status"], view["amount"], view["currency"]) == ("accepted", "5.00", "RUB")
