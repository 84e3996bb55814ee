"""A packed record (several transfers in one Kafka record, the API's default) survives the
orchestrator's death half-settled: the replay settles the rest, and nothing twice."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
import redis

from orion.adapters.kafka_partitioner import partition_of
from orion.adapters.locks import KEY_PREFIX
from orion.config import Settings
from tests.e2e.conftest import settled_rows, wait_for, wait_settled

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("audited")]
FOREIGN_LEASE_MS = 120_000  # outlives the test; released by the test itself
RESTART_S = 60.0  # Ray restarts a killed orchestrator within seconds
REPLAYED_S = 3.0  # the restarted orchestrator has replayed the record by then


def _same_partition_pair(accounts: list[str], partitions: int) -> tuple[str, str]:
    by_partition: dict[int, str] = {}
    for account in accounts:
        found = by_partition.setdefault(partition_of(account.encode(), partitions), account)
        if found != account:
            return found, account
    raise AssertionError("no two accounts share a partition")


def _transfer(debit: str, credit: str) -> dict[str, str]:
    return {
        "id": str(uuid.uuid4()),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": "1.00",
        "currency": "RUB",
    }


def test_orchestrator_killed_with_a_packed_record_half_settled_settles_it_once(
    settings: Settings,
    api: httpx.Client,
    make_accounts: Callable[..., list[str]],
    ray_driver: Any,
) -> None:
    """Two transfers of one batch request, debiting accounts of one partition, travel in
    one record. The second's account is leased by another owner, so only the first
    settles. kill -9 the orchestrator: the record's offset is not committed, so its
    successor replays the whole record; once the lease goes, the second settles, and the
    first was applied once (its entries, the balances, the audit)."""
    *debits, credit = make_accounts(settings.transfers_partitions + 2)
    free, leased = _same_partition_pair(debits, settings.transfers_partitions)
    first, second = _transfer(free, credit), _transfer(leased, credit)
    locks = redis.Redis.from_url(settings.redis_url)
    locks.set(KEY_PREFIX + leased, "another-orchestrator", px=FOREIGN_LEASE_MS)
    try:
        resp = api.post("/v1/transfers/batch", json={"transfers": [first, second]})
        assert resp.status_code == 200, resp.text
        assert [r["status"] for r in resp.json()["results"]] == ["accepted"] * 2, resp.text
        wait_settled(settings, [first["id"]])
        assert second["id"] not in settled_rows(settings, [second["id"]])
        old = ray_driver.orchestrator_pid()
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: _pid_or_none(ray_driver) not in (None, old), RESTART_S)
        time.sleep(REPLAYED_S)
        assert second["id"] not in settled_rows(settings, [second["id"]])
    finally:
        locks.delete(KEY_PREFIX + leased)
        locks.close()
    rows = wait_settled(settings, [first["id"], second["id"]])
    assert set(rows.values()) == {("completed", None)}
    with psycopg.connect(settings.postgres_dsn) as conn:
        places = conn.execute(
            "SELECT kafka_partition, kafka_offset, kafka_index, (SELECT count(*) FROM entries e"
            " WHERE e.transfer_id = t.id) FROM transfers t WHERE id = ANY(%s::uuid[])"
            " ORDER BY kafka_index",
            ([first["id"], second["id"]],),
        ).fetchall()
    assert [(p[2], p[3]) for p in places] == [(0, 2), (1, 2)], places  # one record, once
    assert places[0][:2] == places[1][:2], places
    balances = [api.get(f"/v1/accounts/{a}").json()["balance"] for a in (free, leased, credit)]
    assert balances == ["99.00", "99.00", "102.00"]


def _pid_or_none(ray_driver: Any) -> int | None:
    from ray.exceptions import RayError  # not at collection: see tests/unit/test_collection.py

    try:
        return int(ray_driver.orchestrator_pid())
    except RayError:  # the actor is restarting: no pid to read yet
        return None
