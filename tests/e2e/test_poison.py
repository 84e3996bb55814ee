"""Poison records never stop Orion: each kind, produced straight into the transfers topic
(as another producer or an older version would) in the middle of live traffic on the same
accounts, ends final within seconds, rejected or in the DLQ with its reason, while every
other transfer settles, no partition stays stuck and nothing restarts. The API itself
refuses what the database would (a 422 naming the field).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from orion import status
from orion.config import Settings
from tests.e2e.faults import Load, account_for, record, restarts_grew, seed_accounts, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("audited")]
ACCOUNTS = 100
LOAD_BEFORE_S = 2.0
LOAD_AFTER_S = 4.0
FINAL_WITHIN_S = 20.0  # every poison record final and every partition caught up by then
PACKED = "a packed record with a malformed element"
NOW_MS = int(time.time() * 1000)


def _body(transfer_id: str, debit: str, credit: str, **changes: Any) -> dict[str, Any]:
    body = {"id": transfer_id, "debit": debit, "credit": credit, "amount": 100,
            "currency": "RUB", "accepted_at": NOW_MS}  # fmt: skip
    return {**body, **changes}


def _json(body: dict[str, Any]) -> bytes:
    # ensure_ascii: a lone surrogate or NUL travels as a \\u escape, as JSON allows.
    return json.dumps(body).encode()


# kind -> (value builder from (id, debit, credit), expected end: "rejected" or a DLQ reason)
KINDS: dict[str, tuple[Callable[[str, str, str], bytes | None], str]] = {
    "lone surrogate in metadata": (
        lambda i, d, c: _json(_body(i, d, c, metadata={"note": "\ud800"})),
        "rejected",
    ),
    "NUL in metadata": (
        lambda i, d, c: _json(_body(i, d, c, metadata={"x": "a\u0000"})),
        "rejected",
    ),
    "not JSON": (lambda i, d, c: b"{not json", "not JSON"),
    "JSON but not an object": (lambda i, d, c: b'"a string"', "not a JSON object"),
    "an empty packed record": (lambda i, d, c: b"[]", "non-empty JSON array"),
    "no value (tombstone)": (lambda i, d, c: None, "no value"),
    "amount missing": (
        lambda i, d, c: _json({k: v for k, v in _body(i, d, c).items() if k != "amount"}),
        "'amount'",
    ),
    "amount zero": (lambda i, d, c: _json(_body(i, d, c, amount=0)), "'amount'"),
    "amount past bigint": (lambda i, d, c: _json(_body(i, d, c, amount=2**64)), "'amount'"),
    "four-letter currency": (lambda i, d, c: _json(_body(i, d, c, currency="RUBX")), "currency"),
    "NUL in an account id": (lambda i, d, c: _json(_body(i, d + "\u0000", c)), "'debit'"),
    "time out of range": (
        lambda i, d, c: _json(_body(i, d, c, accepted_at=10**17)),
        "'accepted_at'",
    ),
}


def _dead_letters(settings: Settings, since: dict[TopicPartition, int]) -> dict[bytes, bytes]:
    """DLQ records past `since`: key (partition:offset) -> the orion-error header."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        found: dict[bytes, bytes] = {}
        for records in consumer.poll(timeout_ms=2000, max_records=10_000).values():
            for r in records:
                found[r.key or b""] = dict(r.headers or ()).get("orion-error", b"")
        return found
    finally:
        consumer.close(autocommit=False)


def _dlq_end(settings: Settings) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        parts = consumer.partitions_for_topic(settings.topic_dlq) or set()
        tps = [TopicPartition(settings.topic_dlq, p) for p in parts]
        return {tp: int(o) for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def _final_rows(settings: Settings, ids: list[str]) -> dict[str, tuple[str, str | None, int]]:
    with psycopg.connect(settings.postgres_dsn) as conn:
        rows = conn.execute(
            "SELECT id::text, status, reason, amount FROM transfers"
            " WHERE id = ANY(%s::uuid[]) AND status <> 'claimed'",
            (ids,),
        ).fetchall()
    return {str(r[0]): (str(r[1]), r[2], int(r[3])) for r in rows}


def test_every_kind_of_poison_record_ends_final_and_the_rest_settles(
    system: str, settings: Settings, ray_driver: Any
) -> None:
    """Poison records interleaved with live load on the same accounts (so on the same
    partitions): metadata the database refuses is settled `rejected` / `invalid_record`;
    every other kind, and a settled id reused for another transfer, goes to the DLQ with its
    reason; the load settles exactly once, every partition catches up (lag 0) within 20 s,
    and no actor restarts."""
    first = seed_accounts(ACCOUNTS)
    accounts = [str(first + n) for n in range(ACCOUNTS)]
    before = ray_driver.actor_restarts()
    dlq_from = _dlq_end(settings)
    load = Load(system, first, ACCOUNTS).start()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        time.sleep(LOAD_BEFORE_S)
        sent = _send_poison(producer, settings, accounts, load)
        time.sleep(LOAD_AFTER_S)
    finally:
        load.stop()
        producer.close()
    settled = account_for(settings, load)
    assert (settled.lost, settled.applied_twice) == (0, 0), settled
    ids = [tid for tid, _, _ in sent.values() if tid]
    assert wait_until(lambda: _all_final(settings, sent, dlq_from), FINAL_WITHIN_S)
    caught_up = wait_until(
        lambda: _lag(settings) == 0 and not status.settlement(settings).stuck, 30
    )
    rows = _final_rows(settings, ids)
    letters = _dead_letters(settings, dlq_from)
    record(
        "poison records",
        kinds=len(KINDS) + 2,
        rejected_invalid_record=sum(1 for s, r, _ in rows.values() if r == "invalid_record"),
        dead_lettered=len(letters),
        load_accepted=settled.accepted,
        lost=settled.lost,
        applied_twice=settled.applied_twice,
    )
    assert rows[sent[PACKED][0]][:2] == ("completed", None)  # its neighbour settled
    for kind, (tid, where, expected) in sent.items():
        if expected == "rejected":
            assert rows[tid][:2] == ("rejected", "invalid_record"), kind
        else:
            assert expected.encode() in letters.get(where, b""), (kind, letters.get(where))
    assert caught_up, "a partition stayed behind its poison record"
    assert not restarts_grew(before, ray_driver.actor_restarts(), {})


def _send_poison(
    producer: KafkaProducer, settings: Settings, accounts: list[str], load: Load
) -> dict[str, tuple[str, bytes, str]]:
    """Produce every kind on live accounts; kind -> (transfer id, DLQ key, expected end)."""
    sent: dict[str, tuple[str, bytes, str]] = {}
    for n, (kind, (build, expected)) in enumerate(KINDS.items()):
        debit, credit = accounts[n % len(accounts)], accounts[(n + 1) % len(accounts)]
        tid = str(uuid.uuid4())
        meta = producer.send(
            settings.topic_transfers, key=debit.encode(), value=build(tid, debit, credit)
        ).get(timeout=10)
        sent[kind] = (tid, f"{meta.partition}:{meta.offset}".encode(), expected)
    reused = load.accepted()[0]  # settled by now: reuse its id for another transfer
    debit, credit = accounts[0], accounts[1]
    meta = producer.send(
        settings.topic_transfers,
        key=debit.encode(),
        value=_json(_body(reused, debit, credit, amount=12_345)),
    ).get(timeout=10)
    sent["settled id reused for another transfer"] = (
        "",
        f"{meta.partition}:{meta.offset}".encode(),
        "duplicate_id",
    )
    # A packed record whose second element is not a transfer: that element goes to the DLQ
    # alone (keyed by its index), the first settles.
    debit, credit = accounts[2], accounts[3]
    good = str(uuid.uuid4())
    meta = producer.send(
        settings.topic_transfers,
        key=debit.encode(),
        value=b"[" + _json(_body(good, debit, credit)) + b", 1]",
    ).get(timeout=10)
    sent[PACKED] = (good, f"{meta.partition}:{meta.offset}:1".encode(), "not a JSON object")
    return sent


def _all_final(
    settings: Settings, sent: dict[str, tuple[str, bytes, str]], dlq_from: dict[TopicPartition, int]
) -> bool:
    stored = [tid for tid, _, expected in sent.values() if expected == "rejected"]
    stored.append(sent[PACKED][0])  # the packed record's good element: settled, not rejected
    letters = _dead_letters(settings, dlq_from)
    dlq_keys = [where for _, where, expected in sent.values() if expected != "rejected"]
    return len(_final_rows(settings, stored)) == len(stored) and all(k in letters for k in dlq_keys)


def _lag(settings: Settings) -> int:
    return sum(p.lag for p in status.settlement(settings).partitions)


def test_api_refuses_what_the_database_would_refuse(api: httpx.Client) -> None:
    """A lone surrogate or a NUL anywhere in a body, path or query is a 422 naming the
    field, never a 202 that could poison settlement, never a 500."""
    body = (
        b'{"debit_account_id": "a1", "credit_account_id": "b1", "amount": "1.00",'
        b' "currency": "RUB", "metadata": {"note": "\\ud800"}}'
    )
    resp = api.post("/v1/transfers", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert "metadata" in resp.text
    nul = api.post(
        "/v1/transfers",
        content=body.replace(b"\\ud800", b"\\u0000"),
        headers={"content-type": "application/json"},
    )
    assert nul.status_code == 422, nul.text
    assert api.get("/v1/accounts/a%00b").status_code == 422
