"""Kafka basics (kafka-python): admin operations (readiness, explicit topic creation; topics
are never auto-created) and the durable, self-healing RecordProducer.

Its siblings: kafka_source (the orchestrator's consumer), kafka_progress (settlement
progress), api_kafka (the API's producer, outcome feed and monitor), ledger_audit (the
audit's reads of the topics).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from orion.adapters.kafka_partitioner import KeyPartitioner, partition_of
from orion.messages import PACKED_BYTES_MAX, PACKED_TRANSFERS_MAX, encode_packed
from orion.orchestration.ports import DeadLetter

log = logging.getLogger(__name__)
# Every client's longest pause between reconnection attempts. kafka-python's default (30 s,
# reached by doubling) kept clients away for up to half a minute after a broker returned.
RECONNECT_BACKOFF_MAX_MS = 1_000
ADMIN_TIMEOUT_MS = 10_000  # an admin call on a healthy local broker takes milliseconds


def admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="orion-admin",
        request_timeout_ms=ADMIN_TIMEOUT_MS,
        reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
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


# The API's readiness probes write one tiny record per probe: an hour of them is plenty.
HEALTH_TOPIC_CONFIG = {"retention.ms": str(3_600_000), "segment.ms": str(3_600_000)}


def ensure_topics(
    bootstrap: str,
    wanted: Mapping[str, int],
    replication: int = 1,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Create missing topics with the wanted partition counts, `replication` copies and any
    per-topic `configs`; return warnings for drift.

    An existing topic with another partition count is left alone: adding partitions would
    move keys between partitions and break per-account order for records in flight.
    """
    existing = topic_partitions(bootstrap)
    extra = configs or {}
    missing = [
        NewTopic(name, count, replication, topic_configs=dict(extra.get(name, {})))
        for name, count in wanted.items()
        if name not in existing
    ]
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


# acks=all from a local broker takes ms, a three-broker failover ~4 s. Past this the send has
# failed: the caller's batch is dispatched again (its outcomes re-published from PostgreSQL),
# so waiting longer only delays recovery (a 30 s wait held settlement 24 s past a broker's
# return).
PRODUCE_TIMEOUT_S = 6.0
BOOTSTRAP_TIMEOUT_MS = 3_000  # a new client gives up on an absent broker after this
# Bytes per producer batch (kafka-python's default is 16 KiB). A shard's ~900-transfer batch
# puts ~30 KB of outcomes in each of 8 partitions: one packed record each, or (with
# ORION_RESULTS_RECORDS=single) ~110 records each, which at 16 KiB made two batches per
# partition, each a buffer, a sender wake-up and a batch for the broker to check. Measured
# alone for single records (870 outcomes per call, 8 partitions, 8 interleaved runs each):
# client CPU 30.2 -> 25.5 us per record, broker 9.1 -> 7.9 us (medians).
PRODUCE_BATCH_BYTES = 64 * 1024
DEAD_LETTER_ERROR_HEADER = "orion-error"  # why the record is in the DLQ
DEAD_LETTER_TOPIC_HEADER = "orion-topic"  # where it came from (the key says partition:offset)


def dead_letter_key(partition: int, offset: int, index: int | None = None) -> bytes:
    """The DLQ key of a record, `partition:offset`, or of one transfer of a packed record,
    `partition:offset:index`: where it sat in the transfers topic (the audit reads it)."""
    if index is None:
        return f"{partition}:{offset}".encode()
    return f"{partition}:{offset}:{index}".encode()


@dataclass(slots=True)
class Pack:
    """Records of one produce call bound for one partition, sent as one packed record."""

    partition: int
    indexes: list[int] = field(default_factory=list)  # their places in the call
    values: list[bytes] = field(default_factory=list)
    size: int = 2  # of the packed record: the brackets, each value and its comma


def pack(
    records: Sequence[tuple[bytes, bytes]], partition_of: Callable[[bytes], int]
) -> list[Pack]:
    """Group (key, value) records by the partition of their key, keeping their order in each
    group; a group is split, in order, before it passes PACKED_TRANSFERS_MAX or
    PACKED_BYTES_MAX (the bounds of every packed record, transfers or outcomes)."""
    open_: dict[int, Pack] = {}
    done: list[Pack] = []
    for index, (key, value) in enumerate(records):
        partition = partition_of(key)
        group = open_.get(partition)
        if group is not None and (
            len(group.values) >= PACKED_TRANSFERS_MAX
            or group.size + len(value) + 1 > PACKED_BYTES_MAX
        ):
            done.append(group)
            group = None
        if group is None:
            group = open_[partition] = Pack(partition)
        group.indexes.append(index)
        group.values.append(value)
        group.size += len(value) + 1
    return done + list(open_.values())


class RecordProducer:
    """A durable producer (acks=all, idempotent) that sends a batch and waits for every ack.

    Heals itself: after any failed send the underlying client is closed and the next send
    builds a fresh one. kafka-python's idempotent producer can stay wedged after a broker
    restart (its producer id reset and never re-initialised: every later send times out),
    and a fresh client is the one remedy that always works; the caller retries the batch.
    """

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self._bootstrap, self._client_id = bootstrap, client_id
        self._producer: KafkaProducer | None = None

    def _client(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=2,
                batch_size=PRODUCE_BATCH_BYTES,
                compression_type=None,
                partitioner=KeyPartitioner(),  # outcome keys are transfer ids: never repeat
                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            )
        return self._producer

    def send_all(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]]
        | Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
    ) -> None:
        """Send every (key, value[, headers]); return only when the broker acked all of them."""
        if not records:
            return
        producer = self._client()
        try:
            futures = [
                producer.send(topic, key=r[0], value=r[1], headers=r[2] if len(r) > 2 else None)
                for r in records
            ]
            self._wait(producer, futures)
        except Exception:
            self._discard()
            raise

    def send_packed(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Send (key, value) records as packed ones: the values of the keys that share a
        partition joined into one JSON array (`pack`), key null, in the partition those keys
        would have had. Returns only when the broker acked all of them."""
        if not records:
            return
        producer = self._client()
        try:
            partitions = len(producer.partitions_for(topic) or ())
            if not partitions:
                raise KafkaError(f"topic {topic} has no partitions")
            futures = [
                producer.send(topic, value=encode_packed(group.values), partition=group.partition)
                for group in pack(records, lambda key: partition_of(key, partitions))
            ]
            self._wait(producer, futures)
        except Exception:
            self._discard()
            raise

    @staticmethod
    def _wait(producer: KafkaProducer, futures: Sequence[Any]) -> None:
        producer.flush(timeout=PRODUCE_TIMEOUT_S)
        for future in futures:
            future.get(timeout=PRODUCE_TIMEOUT_S)

    def send_dead_letters(
        self, topic: str, source_topic: str, letters: Sequence[DeadLetter]
    ) -> None:
        """Send records to the DLQ, keyed by their place in `source_topic`, with the reason."""
        self.send_all(
            topic,
            [
                (
                    dead_letter_key(d.partition, d.offset, d.index),
                    d.value,
                    [
                        (DEAD_LETTER_ERROR_HEADER, d.error.encode(errors="replace")),
                        (DEAD_LETTER_TOPIC_HEADER, source_topic.encode()),
                    ],
                )
                for d in letters
            ],
        )

    def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=0)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=PRODUCE_TIMEOUT_S)
            self._producer = None
