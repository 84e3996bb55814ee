"""Route behaviour with fake dependencies: accounts, paging, transfer states, auth, health."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from orion.seeding import opening_transfer_id
from orion.serve.app import create_app
from orion.serve.ports import ApiDeps, EntryRow, TransferRow
from tests.unit.serve.fakes import NOW, FakeLedger, FakeProducer, fake_deps

TRANSFER = {
    "debit_account_id": "alice",
    "credit_account_id": "bob",
    "amount": "1",
    "currency": "RUB",
}


def test_create_account_then_get_it(client: TestClient, ledger: FakeLedger) -> None:
    """201 with canonical amounts; GET shows it; @world:<CUR> exists as well."""
    created = client.post("/v1/accounts", json={"id": "acc-1", "currency": "USD"})
    assert created.status_code == 201
    assert created.json()["balance"] == "0.00"
    assert created.json()["overdraft_limit"] == "0.00"
    got = client.get("/v1/accounts/acc-1")
    assert got.status_code == 200
    assert got.json()["currency"] == "USD"
    assert "@world:USD" in ledger.accounts


def test_create_is_idempotent_only_when_identical(client: TestClient) -> None:
    """Same currency and limit: 200 with the current state; anything else: 409."""
    body = {"id": "acc-2", "currency": "RUB", "overdraft_limit": "10.5"}
    assert client.post("/v1/accounts", json=body).status_code == 201
    again = client.post("/v1/accounts", json={**body, "overdraft_limit": "10.50"})
    assert again.status_code == 200
    assert again.json()["overdraft_limit"] == "10.50"
    assert client.post("/v1/accounts", json={**body, "overdraft_limit": "11"}).status_code == 409
    assert client.post("/v1/accounts", json={**body, "currency": "EUR"}).status_code == 409


def test_opening_balance_is_one_deterministic_transfer_from_world(
    client: TestClient, producer: FakeProducer
) -> None:
    """The opening balance is produced as a transfer @world:RUB -> account, with the id
    `orion accounts seed` also uses, so neither a retried create nor a seed funds twice."""
    body = {"id": "acc-3", "currency": "RUB", "opening_balance": "100"}
    first = client.post("/v1/accounts", json=body)
    again = client.post("/v1/accounts", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    expected_id = str(opening_transfer_id("acc-3"))  # the seeder's id: never funded twice
    assert first.json()["opening_transfer_id"] == again.json()["opening_transfer_id"] == expected_id
    [opening] = producer.transfers
    assert opening.transfer.debit_account_id == "@world:RUB"
    assert (opening.transfer.credit_account_id, opening.transfer.amount) == ("acc-3", 10_000)


def test_unknown_account_is_404(client: TestClient) -> None:
    """Reads of a missing account answer 404, for the account and its entries."""
    assert client.get("/v1/accounts/nobody").status_code == 404
    assert client.get("/v1/accounts/nobody/entries").status_code == 404


def test_entries_page_newest_first_with_cursor(client: TestClient, ledger: FakeLedger) -> None:
    """Keyset paging: pages are disjoint, newest first, and the last page has no cursor."""
    client.post("/v1/accounts", json={"id": "acc-4", "currency": "RUB"})
    ledger.entries["acc-4"] = [
        EntryRow(i, str(uuid.uuid4()), 100, 100 * i, NOW) for i in range(1, 8)
    ]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/accounts/acc-4/entries", params=params).json()
        seen.extend(item["balance_after"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"{i}.00" for i in range(7, 0, -1)]


def test_get_transfer_states(client: TestClient, ledger: FakeLedger) -> None:
    """404 when unknown; 'accepted' once produced; the ledger's status once settled."""
    transfer_id = str(uuid.uuid4())
    assert client.get(f"/v1/transfers/{transfer_id}").status_code == 404
    client.post("/v1/transfers", json={**TRANSFER, "id": transfer_id})
    assert client.get(f"/v1/transfers/{transfer_id}").json()["status"] == "accepted"
    settled = datetime(2026, 1, 1, tzinfo=UTC)
    ledger.transfers[transfer_id] = TransferRow(
        transfer_id, "rejected", "insufficient_funds", "alice", "bob", 100, "RUB", settled, settled
    )
    view = client.get(f"/v1/transfers/{transfer_id}").json()
    assert (view["status"], view["reason"], view["amount"]) == (
        "rejected",
        "insufficient_funds",
        "1.00",
    )


def test_seed_contract_answers_queued(client: TestClient, producer: FakeProducer) -> None:
    """POST /transactions/ keeps the original contract: 200 queued with the id, in RUB."""
    body = {
        "sender_account": "40817810000000001",
        "receiver_account": "40817810000000002",
        "amount": "100.5",
    }
    response = client.post("/transactions/", json=body)
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    [queued] = producer.transfers
    assert queued.transfer.id == response.json()["transaction_id"]
    assert (queued.transfer.amount, queued.transfer.currency) == (10_050, "RUB")


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": "Bearer k1"}, 202)],
)
def test_api_keys_guard_v1_and_seed_routes(headers: dict[str, str], status: int) -> None:
    """With keys configured, money routes need a matching bearer key; health stays open."""
    deps = fake_deps(api_keys=frozenset({"k1", "k2"}))
    with TestClient(create_app(deps)) as client:
        assert client.post("/v1/transfers", json=TRANSFER, headers=headers).status_code == status
        seed_status = client.post("/transactions/", json={}, headers=headers).status_code
        assert seed_status == (401 if status == 401 else 422)
        assert client.get("/healthz").status_code == 200
        assert client.get("/docs").status_code == 200


def test_unauthenticated_start_logs_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Without API keys the app says, once, that it must stay on loopback."""
    with caplog.at_level("WARNING"), TestClient(create_app(fake_deps())):
        pass
    assert [r.getMessage() for r in caplog.records if "unauthenticated" in r.getMessage()]


def test_readyz_names_the_failed_dependency(client: TestClient, producer: FakeProducer) -> None:
    """/readyz is 200 when all answer and 503 naming Kafka when the broker is down."""
    assert client.get("/readyz").status_code == 200
    producer.down = True
    response = client.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["failed"]) == ["kafka"]
    assert client.get("/healthz").json() == {"status": "ok", "failed": {}, "warnings": {}}


class StuckProgress:
    stuck_summary: str | None = "stuck partitions: 3; oldest unsettled transfer: 45 s"


def test_readyz_reports_stuck_settlement_without_failing(deps: ApiDeps) -> None:
    """A stuck partition is named in /readyz's warnings while it stays 200 (every replica
    reads the same Kafka: failing would take the whole API out for one partition)."""
    deps.progress = StuckProgress()
    with TestClient(create_app(deps)) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["warnings"] == {"settlement": StuckProgress.stuck_summary}


def test_openapi_documents_every_route(client: TestClient) -> None:
    """/docs is served and the schema lists the public routes."""
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/accounts", "/v1/transfers", "/v1/transfers/batch", "/transactions/"):
        assert path in paths


def test_batch_mixes_per_item_results(client: TestClient, producer: FakeProducer) -> None:
    """Good items are accepted, bad ones answered per item (field, 422), in request order;
    a reused id with another body is a per-item 409."""
    taken = str(uuid.uuid4())
    client.post("/v1/transfers", json={**TRANSFER, "id": taken})
    items = [
        TRANSFER,
        {**TRANSFER, "amount": "1.001"},
        {**TRANSFER, "id": taken, "amount": "2"},
        "not an object",
        {**TRANSFER, "credit_account_id": "alice"},
    ]
    response = client.post("/v1/transfers/batch", json={"transfers": items})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == ["accepted", "error", "error", "error", "error"]
    assert [r.get("http_status") for r in results] == [None, 422, 409, 422, 422]
    assert [r.get("error", {}).get("field") for r in results] == [
        None,
        "amount",
        "id",
        "transfer",
        "credit_account_id",
    ]
    assert len(producer.records) == 2  # the earlier single post and item 0
