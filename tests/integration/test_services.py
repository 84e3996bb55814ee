"""The real broker, database and cache answer the way Orion relies on."""

from __future__ import annotations

import time

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer
from psycopg_pool import ConnectionPool

from orion.config import Settings

pytestmark = pytest.mark.integration
POLL_TIMEOUT_S = 20.0


def _consume(consumer: KafkaConsumer, count: int) -> list[bytes]:
    """Poll until `count` records arrived (bounded), committing nothing."""
    got: list[bytes] = []
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500, max_records=count - len(got)).values():
            got.extend(r.value for r in records)
    return got


def _consumer(settings: Settings, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def test_kafka_group_commit_survives_consumer_restart(
    settings: Settings, topic: str, unique: str
) -> None:
    """After a commit, a restarted consumer in the group resumes after it; uncommitted
    records are read again (the at-least-once contract the orchestrator builds on)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for i in range(10):
        producer.send(topic, key=b"k", value=str(i).encode()).get(timeout=10)
    producer.close()

    group = f"g.{unique}"
    first = _consumer(settings, topic, group)
    assert _consume(first, 4) == [b"0", b"1", b"2", b"3"]
    first.commit()  # commits position 4
    assert _consume(first, 2) == [b"4", b"5"]  # read but never committed
    first.close(autocommit=False)

    second = _consumer(settings, topic, group)
    assert _consume(second, 6) == [str(i).encode() for i in range(4, 10)]
    second.close(autocommit=False)


def test_postgres_round_trip_through_pool(settings: Settings, unique: str) -> None:
    """A psycopg pool connection writes and reads back in Orion's own database."""
    table = f"t_{unique}"
    with ConnectionPool(settings.postgres_dsn, min_size=1, max_size=2, open=True) as pool:
        with pool.connection() as conn:
            conn.execute(f"CREATE TEMP TABLE {table} (id int primary key, amount bigint)")
            conn.execute(f"INSERT INTO {table} VALUES (1, 9007199254740993)")
            row = conn.execute(f"SELECT amount FROM {table} WHERE id = 1").fetchone()
        assert row == (9007199254740993,)


def test_redis_set_nx_px(settings: Settings, unique: str) -> None:
    """SET NX PX grants a lease once, refuses a second owner, and expires by itself."""
    client = redis.Redis.from_url(settings.redis_url)
    key = f"test:lock:{unique}"
    assert client.set(key, "owner-a", nx=True, px=300) is True
    assert client.set(key, "owner-b", nx=True, px=300) is None
    assert client.get(key) == b"owner-a"
    time.sleep(0.4)
    assert client.set(key, "owner-b", nx=True, px=300) is True
    client.delete(key)
    client.close()
