"""Kafka adapter: the only module that imports kafka-python.

Holds the admin operations Orion needs (readiness, explicit topic creation — topics are never
auto-created) and the producer/consumer construction with Orion's durability settings.
"""

from __future__ import annotations

from collections.abc import Mapping

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

ADMIN_TIMEOUT_MS = 10_000  # an admin call on a healthy local broker takes milliseconds


def admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="orion-admin",
        request_timeout_ms=ADMIN_TIMEOUT_MS,
    )


def ping(bootstrap: str) -> bool:
    """True when the broker answers a metadata request."""
    client = admin(bootstrap)
    try:
        client.list_topics()
        return True
    finally:
        client.close()


def topic_partitions(bootstrap: str) -> dict[str, int]:
    """Partition count of every existing topic."""
    client = admin(bootstrap)
    try:
        described = client.describe_topics()
        return {t["name"]: len(t["partitions"]) for t in described}
    finally:
        client.close()


def ensure_topics(bootstrap: str, wanted: Mapping[str, int]) -> list[str]:
    """Create missing topics with the wanted partition counts; return warnings for drift.

    An existing topic with another partition count is left alone: adding partitions would
    move keys between partitions and break per-account order for records in flight.
    """
    existing = topic_partitions(bootstrap)
    missing = [NewTopic(name, count, 1) for name, count in wanted.items() if name not in existing]
    if missing:
        client = admin(bootstrap)
        try:
            client.create_topics(missing, timeout_ms=ADMIN_TIMEOUT_MS)
        except TopicAlreadyExistsError:
            pass  # a concurrent `up` created it first; the drift check below still runs
        finally:
            client.close()
    return [
        f"topic {name} has {existing[name]} partitions, config says {count}; left unchanged"
        for name, count in wanted.items()
        if name in existing and existing[name] != count
    ]
