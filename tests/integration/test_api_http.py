"""The HTTP API against the real Kafka, Redis and PostgreSQL (lifespan on, real deps)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from orion.bootstrap import api_app
from orion.config import Settings
from orion.messages import AcceptedTransfer, decode_record

pytestmark = pytest.mark.integration
CONSUME_TIMEOUT_S = 20.0  # reading back a few records from a local broker takes milliseconds
TWINS = 8


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    """One app for the module, started and stopped through its lifespan."""
    with TestClient(api_app()) as client:
        yield client


def end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(settings.topic_transfers)
        tps = [TopicPartition(settings.topic_transfers, p) for p in sorted(partitions)]
        return dict(consumer.end_offsets(tps))
    finally:
        consumer.close()


def produced_since(settings: Settings, start: dict[TopicPartition, int]) -> list[AcceptedTransfer]:
    """Every transfer of the transfers topic between `start` and the current end offsets
    (packed records unpacked, in order)."""
    stop = end_offsets(settings)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    found: list[AcceptedTransfer] = []
    try:
        consumer.assign(list(stop))
        for tp in stop:
            consumer.seek(tp, start.get(tp, 0))
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while any(consumer.position(tp) < stop[tp] for tp in stop):
            assert time.monotonic() < deadline, "records did not arrive in time"
            for records in consumer.poll(timeout_ms=200).values():
                found.extend(
                    item
                    for r in records
                    if r.offset < stop[TopicPartition(r.topic, r.partition)]
                    for _, item in decode_record(r.value)
                    if isinstance(item, AcceptedTransfer)
                )
    finally:
        consumer.close()
    return found


def transfer(unique: str, **changes: Any) -> dict[str, Any]:
    return {
        "debit_account_id": f"it-a-{unique}",
        "credit_account_id": f"it-b-{unique}",
        "amount": "12.30",
        "currency": "RUB",
        **changes,
    }


def test_readyz_is_200_with_everything_up(api: TestClient) -> None:
    """With Kafka, PostgreSQL and Redis running, the real deps report ready."""
    response = api.get("/readyz")
    assert response.status_code == 200, response.text


def test_create_account_then_get_it(api: TestClient, unique: str) -> None:
    """POST /v1/accounts writes the account to PostgreSQL (201); GET reads it back; a
    repeated identical create is 200 and a conflicting one 409."""
    account_id = f"it-acc-{unique}"
    created = api.post("/v1/accounts", json={"id": account_id, "currency": "EUR"})
    assert created.status_code == 201, created.text
    got = api.get(f"/v1/accounts/{account_id}").json()
    assert (got["id"], got["currency"], got["balance"]) == (account_id, "EUR", "0.00")
    assert api.get("/v1/accounts/@world:EUR").json()["overdraft_limit"] is None
    again = api.post("/v1/accounts", json={"id": account_id, "currency": "EUR"})
    assert again.status_code == 200
    assert api.post("/v1/accounts", json={"id": account_id, "currency": "USD"}).status_code == 409
    assert api.get(f"/v1/accounts/{account_id}/entries").json() == {
        "items": [],
        "next_cursor": None,
    }


def test_opening_balance_is_produced_once(api: TestClient, settings: Settings, unique: str) -> None:
    """An opening balance is one record @world:RUB -> account, even when the create is retried."""
    account_id = f"it-open-{unique}"
    start = end_offsets(settings)
    body = {"id": account_id, "currency": "RUB", "opening_balance": "50"}
    first = api.post("/v1/accounts", json=body)
    assert first.status_code == 201, first.text
    assert api.post("/v1/accounts", json=body).status_code == 200
    opening_id = first.json()["opening_transfer_id"]
    mine = [a for a in produced_since(settings, start) if a.transfer.id == opening_id]
    assert len(mine) == 1
    assert (mine[0].transfer.debit_account_id, mine[0].transfer.amount) == ("@world:RUB", 5_000)


def test_accepted_transfer_is_really_in_the_topic(
    api: TestClient, settings: Settings, unique: str
) -> None:
    """202 means the record is in Kafka: read back from the offsets taken before the post,
    keyed by the debit account, with the amount in minor units."""
    start = end_offsets(settings)
    response = api.post("/v1/transfers", json=transfer(unique, metadata={"ref": unique}))
    assert response.status_code == 202, response.text
    transfer_id = response.json()["id"]
    mine = [a for a in produced_since(settings, start) if a.transfer.id == transfer_id]
    assert len(mine) == 1
    assert (mine[0].transfer.amount, mine[0].metadata) == (1230, {"ref": unique})
    assert api.get(f"/v1/transfers/{transfer_id}").json()["status"] in (
        "accepted",
        "completed",
        "rejected",
    )


def test_concurrent_identical_posts_produce_one_record(
    api: TestClient, settings: Settings, unique: str
) -> None:
    """Eight threads post the same transfer at once: all get 202 with the same id and
    exactly one record reaches the topic."""
    transfer_id = str(uuid.uuid4())
    body = transfer(unique, id=transfer_id)
    start = end_offsets(settings)
    barrier = threading.Barrier(TWINS)
    responses: list[httpx.Response] = []

    def post() -> None:
        barrier.wait()
        responses.append(api.post("/v1/transfers", json=body))

    threads = [threading.Thread(target=post) for _ in range(TWINS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [r.status_code for r in responses] == [202] * TWINS
    assert {r.json()["id"] for r in responses} == {transfer_id}
    mine = [a for a in produced_since(settings, start) if a.transfer.id == transfer_id]
    assert len(mine) == 1


def test_same_id_other_body_is_409(api: TestClient, unique: str) -> None:
    """The idempotency key in Redis refuses a different body under an accepted id."""
    transfer_id = str(uuid.uuid4())
    assert api.post("/v1/transfers", json=transfer(unique, id=transfer_id)).status_code == 202
    conflict = api.post("/v1/transfers", json=transfer(unique, id=transfer_id, amount="99"))
    assert conflict.status_code == 409
    assert transfer_id in conflict.json()["detail"]


def test_seed_contract_answers_queued(api: TestClient, settings: Settings) -> None:
    """POST /transactions/ answers 200 queued after the broker acked; the record is there."""
    start = end_offsets(settings)
    digits = str(uuid.uuid4().int)[:16]
    body = {"sender_account": "1" + digits, "receiver_account": "2" + digits, "amount": 100.5}
    response = api.post("/transactions/", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    transfer_id = response.json()["transaction_id"]
    mine = [a for a in produced_since(settings, start) if a.transfer.id == transfer_id]
    assert [(a.transfer.amount, a.transfer.currency) for a in mine] == [(10_050, "RUB")]


def test_batch_with_good_and_bad_items(api: TestClient, settings: Settings, unique: str) -> None:
    """Good items are produced (one record each), bad items answered per item, in order."""
    start = end_offsets(settings)
    items = [
        transfer(unique),
        transfer(unique, amount="0.001"),
        transfer(unique, currency="XXX"),
        transfer(unique, amount="3"),
    ]
    response = api.post("/v1/transfers/batch", json={"transfers": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "error", "error", "accepted"]
    assert [r.get("error", {}).get("field") for r in results[1:3]] == ["amount", "currency"]
    good = {results[0]["id"], results[3]["id"]}
    produced = [a.transfer.id for a in produced_since(settings, start) if a.transfer.id in good]
    assert sorted(produced) == sorted(good)


def test_get_unknown_transfer_is_404_and_malformed_id_422(api: TestClient) -> None:
    """An id nobody accepted is 404; a non-UUID id is 422 naming `id`."""
    assert api.get(f"/v1/transfers/{uuid.uuid4()}").status_code == 404
    malformed = api.get("/v1/transfers/12345")
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["field"] == "id"
