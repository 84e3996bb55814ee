"""`orion infra` as an operator uses it: idempotent up, honest status, down keeps data."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer

from orion.config import Settings

pytestmark = pytest.mark.integration
CLI_TIMEOUT_S = 300  # a restart of the whole stack, Kafka's JVM being the slowest


def orion(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orion.cli", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def test_second_up_is_a_no_op_and_status_is_healthy() -> None:
    """With everything running, `up` starts nothing and `status` reports four healthy lines."""
    again = orion("infra", "up")
    assert again.returncode == 0, again.stderr
    assert "already up: nothing to do" in again.stdout
    status = orion("infra", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    lines = [line.split() for line in status.stdout.splitlines()]
    assert [(f[0], f[1]) for f in lines] == [
        ("postgres", "up"),
        ("redis", "up"),
        ("kafka", "up"),
        ("prometheus", "up"),
    ]
    assert all(f[2].startswith("127.0.0.1:") for f in lines)


def test_redis_memory_is_capped_with_ttl_keys_evicted_first(settings: Settings) -> None:
    """`orion infra up` caps Redis at ORION_REDIS_MAXMEMORY_MB and evicts only keys with a
    TTL, least recently used first (every key Orion writes has one)."""
    import redis

    with redis.Redis.from_url(settings.redis_url) as conn:
        assert int(conn.config_get("maxmemory")["maxmemory"]) == (
            settings.redis_maxmemory_mb * 2**20
        )
        assert conn.config_get("maxmemory-policy")["maxmemory-policy"] == "volatile-lru"


def test_down_then_up_keeps_data(settings: Settings, topic: str, unique: str) -> None:
    """A row in PostgreSQL and a record in Kafka written before `down` are there after `up`;
    while down, `status` says so and exits non-zero."""
    table = f"keep_{unique}"
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (v text)")
        conn.execute(f"INSERT INTO {table} VALUES ('kept')")
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    producer.send(topic, value=b"kept").get(timeout=10)
    producer.close()

    assert orion("infra", "down").returncode == 0
    status = orion("infra", "status")
    assert status.returncode == 1
    assert all(" down " in line for line in status.stdout.splitlines())
    up = orion("infra", "up")
    assert up.returncode == 0, up.stderr

    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        assert conn.execute(f"SELECT v FROM {table}").fetchall() == [("kept",)]
        conn.execute(f"DROP TABLE {table}")
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15_000,
    )
    assert next(iter(consumer)).value == b"kept"
    consumer.close()
