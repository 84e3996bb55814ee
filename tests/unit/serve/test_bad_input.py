"""Bad input is a 4xx naming the field, and nothing is claimed, produced or written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from orion.serve.schemas import BATCH_REQUEST_TRANSFERS_MAX, REQUEST_BODY_BYTES_MAX
from tests.unit.serve.fakes import FakeLedger, FakeProducer, FakeStore

GOOD = {"debit_account_id": "alice", "credit_account_id": "bob", "amount": "1", "currency": "RUB"}
SEED_GOOD = {
    "sender_account": "40817810000000001",
    "receiver_account": "40817810000000002",
    "amount": 100,
}
UUID = "5f0c3b0e-2f7e-4d1a-9f3e-1a2b3c4d5e6f"


def transfer(**changes: Any) -> dict[str, Any]:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not None}


def seed(**changes: Any) -> dict[str, Any]:
    body = {**SEED_GOOD, **changes}
    return {k: v for k, v in body.items() if v is not None}


# (path, body, expected status, field named in the answer)
BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("/v1/transfers", transfer(amount="1.001"), 422, "amount"),
    ("/v1/transfers", transfer(amount="0"), 422, "amount"),
    ("/v1/transfers", transfer(amount="-5"), 422, "amount"),
    ("/v1/transfers", transfer(amount="12,30"), 422, "amount"),
    ("/v1/transfers", transfer(amount="1e999999"), 422, "amount"),
    ("/v1/transfers", transfer(amount=True), 422, "amount"),
    ("/v1/transfers", transfer(amount=[1]), 422, "amount"),
    ("/v1/transfers", transfer(amount=None), 422, "amount"),
    ("/v1/transfers", transfer(currency="XXX"), 422, "currency"),
    ("/v1/transfers", transfer(currency="rub"), 422, "currency"),
    ("/v1/transfers", transfer(currency=643), 422, "currency"),
    ("/v1/transfers", transfer(credit_account_id="alice"), 422, "credit_account_id"),
    ("/v1/transfers", transfer(debit_account_id="@world:RUB"), 422, "debit_account_id"),
    ("/v1/transfers", transfer(credit_account_id="a" * 65), 422, "credit_account_id"),
    ("/v1/transfers", transfer(credit_account_id="bob smith"), 422, "credit_account_id"),
    ("/v1/transfers", transfer(debit_account_id=7), 422, "debit_account_id"),
    ("/v1/transfers", transfer(id="not-a-uuid"), 422, "id"),
    ("/v1/transfers", transfer(metadata=[1, 2]), 422, "metadata"),
    ("/v1/transfers", transfer(metadata={"x": "y" * 5000}), 422, "metadata"),
    ("/v1/transfers", transfer(surprise=1), 422, "surprise"),
    ("/v1/transfers", [GOOD], 422, "body"),
    ("/v1/transfers/batch", {"transfers": []}, 422, "transfers"),
    (
        "/v1/transfers/batch",
        {"transfers": [GOOD] * (BATCH_REQUEST_TRANSFERS_MAX + 1)},
        422,
        "transfers",
    ),
    ("/v1/transfers/batch", {"transfers": [GOOD], "more": 1}, 422, "more"),
    ("/v1/accounts", {"id": "@world:RUB", "currency": "RUB"}, 422, "id"),
    ("/v1/accounts", {"id": "", "currency": "RUB"}, 422, "id"),
    ("/v1/accounts", {"id": "acc", "currency": "ABC"}, 422, "currency"),
    (
        "/v1/accounts",
        {"id": "acc", "currency": "RUB", "overdraft_limit": "-1"},
        422,
        "overdraft_limit",
    ),
    (
        "/v1/accounts",
        {"id": "acc", "currency": "RUB", "overdraft_limit": "0.001"},
        422,
        "overdraft_limit",
    ),
    (
        "/v1/accounts",
        {"id": "acc", "currency": "JPY", "opening_balance": "1.5"},
        422,
        "opening_balance",
    ),
    ("/v1/accounts", {"id": "acc", "currency": "RUB", "balance": "5"}, 422, "balance"),
    ("/transactions/", seed(sender_account="4081781000000000"), 422, "sender_account"),
    ("/transactions/", seed(receiver_account="4081781000000000x"), 422, "receiver_account"),
    ("/transactions/", seed(receiver_account=SEED_GOOD["sender_account"]), 422, "receiver_account"),
    ("/transactions/", seed(amount=-1), 422, "amount"),
    ("/transactions/", seed(amount="0.001"), 422, "amount"),
    ("/transactions/", seed(amount="ten"), 422, "amount"),
    ("/transactions/", seed(transaction_id="42"), 422, "transaction_id"),
    ("/transactions/", seed(extra="x"), 422, "extra"),
]

RAW_BODIES: list[tuple[bytes, str]] = [
    (b'{"debit_account_id": "a", ', "body"),  # truncated JSON
    (b'{"amount": NaN}', "body"),
    (b'{"amount": Infinity}', "body"),
    (b'{"amount": 1' + b"0" * 100 + b"}", "body"),  # hostile integer
]


@pytest.mark.parametrize(("path", "body", "status", "field"), BAD_BODIES)
def test_bad_body_names_the_field_and_writes_nothing(
    client: TestClient,
    producer: FakeProducer,
    store: FakeStore,
    ledger: FakeLedger,
    path: str,
    body: Any,
    status: int,
    field: str,
) -> None:
    """Each bad request is refused with the offending field named, before any write."""
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert field in [p["field"] for p in response.json()["detail"]], response.text
    assert producer.records == []
    assert store.values == {}
    assert ledger.creates == 0


@pytest.mark.parametrize(("raw", "field"), RAW_BODIES)
def test_malformed_json_is_422_not_500(
    client: TestClient, producer: FakeProducer, raw: bytes, field: str
) -> None:
    """Broken JSON, NaN / Infinity and absurd integers are refused as invalid JSON."""
    response = client.post(
        "/v1/transfers", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field
    assert producer.records == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/transfers/not-a-uuid", "id"),
        ("/v1/transfers/" + UUID + "?wait=0", "wait"),
        ("/v1/transfers/" + UUID + "?wait=11", "wait"),
        ("/v1/accounts/alice/entries?limit=501", "limit"),
        ("/v1/accounts/alice/entries?cursor=!!", "cursor"),
        ("/v1/accounts/" + "a" * 65, "id"),
    ],
)
def test_bad_path_or_query_names_it(client: TestClient, path: str, field: str) -> None:
    """Path and query parameters are validated like bodies, with the same error shape."""
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field


def test_oversized_body_is_413(client: TestClient, producer: FakeProducer) -> None:
    """A body above REQUEST_BODY_BYTES_MAX is refused before it is parsed."""
    big = b'{"metadata": "' + b"x" * REQUEST_BODY_BYTES_MAX + b'"}'
    response = client.post(
        "/v1/transfers", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert producer.records == []
