"""Amounts are exact end to end: decimal strings and JSON numbers never pass through float."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from orion.serve.fields import ExponentDecimal
from orion.serve.jsonbody import loads_exact
from orion.serve.ports import TransferRow
from tests.unit.serve.fakes import NOW, FakeLedger, FakeProducer


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
    for amount in ("12.3", "12.30", "012.300"):
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
        ("12.5", "RUB", 1_250),
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


@pytest.mark.parametrize(
    "amount_json", ["1e3", "1E3", "1.5E2", "1e+2", "100e-2", '"1e3"', '"1.230E1"']
)
def test_exponent_amounts_are_refused(
    client: TestClient, producer: FakeProducer, amount_json: str
) -> None:
    """An amount has one spelling, plain decimal notation: a JSON number or a string written
    with an exponent is a 422 naming "amount", though its value would be a valid amount."""
    transfer_id = str(uuid.uuid4())
    raw = (
        f'{{"id": "{transfer_id}", "debit_account_id": "alice", "credit_account_id": "bob",'
        f' "currency": "RUB", "amount": {amount_json}}}'
    )
    response = client.post(
        "/v1/transfers", content=raw.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert [p["field"] for p in response.json()["detail"]] == ["amount"]
    assert producer.records == []


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        (
            "/v1/accounts",
            '{"id": "a1", "currency": "RUB", "overdraft_limit": 1e3}',
            "overdraft_limit",
        ),
        (
            "/v1/accounts",
            '{"id": "a1", "currency": "RUB", "overdraft_limit": "0e0"}',
            "overdraft_limit",
        ),
        (
            "/v1/accounts",
            '{"id": "a1", "currency": "RUB", "opening_balance": 1.5E2}',
            "opening_balance",
        ),
        (
            "/v1/accounts",
            '{"id": "a1", "currency": "RUB", "opening_balance": "1e3"}',
            "opening_balance",
        ),
        (
            "/transactions/",
            '{"sender_account": "40817810000000001", "receiver_account": "40817810000000002",'
            ' "amount": 1e3}',
            "amount",
        ),
    ],
)
def test_exponent_amounts_are_refused_in_every_amount_field(
    client: TestClient, producer: FakeProducer, ledger: FakeLedger, path: str, raw: str, field: str
) -> None:
    """Overdraft limits, opening balances and seed amounts follow the same rule, each
    refusal naming its own field; nothing is written."""
    response = client.post(path, content=raw.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert [p["field"] for p in response.json()["detail"]] == [field]
    assert (producer.records, ledger.creates) == ([], 0)


def test_plain_json_numbers_stay_accepted_in_account_fields(client: TestClient) -> None:
    """Positive control for the exponent rule: plain JSON numbers (12.5, 7, 0) are read
    exactly as before."""
    body = '{"id": "a2", "currency": "RUB", "overdraft_limit": 12.5, "opening_balance": 7}'
    response = client.post(
        "/v1/accounts", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["overdraft_limit"] == "12.50"
    zero = '{"id": "a3", "currency": "RUB", "overdraft_limit": 0}'
    assert client.post("/v1/accounts", content=zero.encode()).status_code == 201


def test_metadata_keeps_exponent_numbers(client: TestClient, producer: FakeProducer) -> None:
    """Metadata is opaque JSON: a number written with an exponent there is accepted."""
    raw = (
        '{"debit_account_id": "alice", "credit_account_id": "bob", "currency": "RUB",'
        ' "amount": "1", "metadata": {"ratio": 1e3, "tiny": 1.5E-7}}'
    )
    response = client.post(
        "/v1/transfers", content=raw.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    [record] = producer.transfers
    assert record.metadata == {"ratio": 1000.0, "tiny": 1.5e-7}


def test_loads_exact_marks_exponent_numbers() -> None:
    """The parser keeps the spelling's kind: ExponentDecimal for 1e3, plain Decimal for 1.5;
    both exact."""
    parsed = loads_exact(b'{"a": 1e3, "b": 1.5, "c": 2.50E1}')
    assert [type(parsed[k]) for k in "abc"] == [ExponentDecimal, Decimal, ExponentDecimal]
    assert parsed == {"a": Decimal(1000), "b": Decimal("1.5"), "c": Decimal("25.0")}


def test_loads_exact_keeps_fraction_digits() -> None:
    """The body parser yields Decimal for fractions and int for integers."""
    parsed = loads_exact(b'{"a": 0.30000000000000004, "b": 5, "c": [1.10]}')
    assert parsed == {"a": Decimal("0.30000000000000004"), "b": 5, "c": [Decimal("1.10")]}
    assert isinstance(parsed["b"], int)
    assert str(parsed["c"][0]) == "1.10"
    assert json.loads("0.30000000000000004") != parsed["a"]  # what plain json.loads would do


def test_response_amounts_are_canonical_strings(client: TestClient, ledger: FakeLedger) -> None:
    """GET answers amounts as decimal strings with exactly the currency's decimals. Before
    settlement only the id, `accepted` and its time are known (Redis keeps no body)."""
    status, transfer_id = post_raw(client, "5")
    assert status == 202
    view = client.get(f"/v1/transfers/{transfer_id}").json()
    assert (view["status"], view["amount"], view["accepted_at"] is not None) == (
        "accepted", None, True
    )  # fmt: skip
    ledger.transfers[transfer_id] = TransferRow(
        transfer_id, "completed", None, "alice", "bob", 500, "RUB", NOW, NOW
    )
    view = client.get(f"/v1/transfers/{transfer_id}").json()
    assert (view["status"], view["amount"], view["currency"]) == ("completed", "5.00", "RUB")
