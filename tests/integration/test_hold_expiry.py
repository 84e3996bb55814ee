"""Expiring holds against the real PostgreSQL and Kafka: a hold past its timeout is found,
its expire record sent once per resend window, and settling that record expires it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from kafka import KafkaConsumer

from orion.adapters import ledger
from orion.adapters.hold_expiry import HoldExpirer
from orion.config import Settings
from orion.domain import Transfer, world_account_id
from orion.domain.model import Kind, hold_action_id
from orion.messages import AcceptedTransfer, QueuedTransfer, decode_transfer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("audited")]
RECORD_WAIT_MS = 10_000


@pytest.fixture
def funded(settings: Settings, unique: str) -> Iterator[tuple[str, str]]:
    a, b, world = f"xa-{unique}", f"xb-{unique}", world_account_id("NOK")
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO accounts (id, currency, overdraft_limit) VALUES (%s,'NOK',NULL)"
            " ON CONFLICT DO NOTHING",
            (world,),
        )
        for account in (a, b):
            conn.execute(
                "INSERT INTO accounts (id, currency, overdraft_limit) VALUES (%s,'NOK',0)",
                (account,),
            )
    _apply(settings, Transfer(str(uuid.uuid4()), world, a, 1_000, "NOK"))
    yield a, b


def _apply(settings: Settings, t: Transfer, expires_at_ms: int | None = None) -> str:
    now_ms = time.time_ns() // 1_000_000
    queued = QueuedTransfer(AcceptedTransfer(t, now_ms, None, expires_at_ms), 0, 0)
    with ledger.connect(settings.postgres_dsn) as conn:
        (outcome,) = ledger.apply_batch(conn, [queued], str(uuid.uuid4()), 0)
    return outcome.status


def test_a_hold_past_its_timeout_is_expired_once(
    settings: Settings, funded: tuple[str, str], topic: str
) -> None:
    a, b = funded
    hold = str(uuid.uuid4())
    past = time.time_ns() // 1_000_000 - 1_000
    assert _apply(settings, Transfer(hold, a, b, 400, "NOK", Kind.PENDING), past) == "pending"
    expirer = HoldExpirer(settings.postgres_dsn, settings.kafka_bootstrap, topic, "test-expiry")
    try:
        assert expirer.scan() >= 1
        assert expirer.scan() == 0  # sent already: not again within the resend window
        counted = expirer.count()  # the gauges' reading: ours is open and past its timeout
        assert counted is not None and counted[0] >= counted[1] >= 1
    finally:
        expirer.close()
    consumer = KafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=RECORD_WAIT_MS,
    )  # fmt: skip
    try:
        mine = [
            decode_transfer(r.value)
            for r in consumer
            if decode_transfer(r.value).transfer.target_id == hold
        ]
    finally:
        consumer.close()
    assert len(mine) == 1
    expire = mine[0].transfer
    assert (expire.id, expire.kind, expire.amount) == (
        hold_action_id(hold, Kind.EXPIRE),
        Kind.EXPIRE,
        400,
    )
    assert (expire.debit_account_id, expire.credit_account_id) == (a, b)
    assert _apply(settings, expire) == "expired"
    assert _apply(settings, expire) == "expired"  # redelivered: the stored outcome
    with psycopg.connect(settings.postgres_dsn) as conn:
        row = conn.execute(
            "SELECT a.pending_debits, t.status FROM accounts a, transfers t"
            " WHERE a.id = %s AND t.id = %s",
            (a, hold),
        ).fetchone()
    assert row == (0, "expired")
