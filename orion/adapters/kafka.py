"""Kafka adapter: the only module that imports kafka-python.

Holds the admin operations Orion needs (readiness, explicit topic creation — topics are never
auto-created) and the producer/consumer construction with Orion's durability settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition

from orion.domain.progress import PartitionProgress
from orion.orchestration.ports import DeadLetter, SourceRecord, SourceUnavailableError

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
DEAD_LETTER_ERROR_HEADER = "orion-error"  # why the record is in the DLQ
DEAD_LETTER_TOPIC_HEADER = "orion-topic"  # where it came from (the key says partition:offset)


def dead_letter_key(partition: int, offset: int) -> bytes:
    """The DLQ key of a record: where it sat in the transfers topic (the audit reads it)."""
    return f"{partition}:{offset}".encode()


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
                compression_type=None,
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
            producer.flush(timeout=PRODUCE_TIMEOUT_S)
            for future in futures:
                future.get(timeout=PRODUCE_TIMEOUT_S)
        except Exception:
            self._discard()
            raise

    def send_dead_letters(
        self, topic: str, source_topic: str, letters: Sequence[DeadLetter]
    ) -> None:
        """Send records to the DLQ, keyed by their place in `source_topic`, with the reason."""
        self.send_all(
            topic,
            [
                (
                    dead_letter_key(d.partition, d.offset),
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


SESSION_TIMEOUT_MS = 10_000  # a crashed orchestrator's partitions move on within ~10 s
HEARTBEAT_INTERVAL_MS = 2_000  # at most a third of the session timeout, as Kafka advises
MAX_POLL_INTERVAL_MS = 120_000  # the engine polls every few ms; this only catches a hang


class _Rebalance(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Runs on kafka-python's I/O thread, while the consumer's owner waits in `poll` (so it
    may touch the owner's state), and must not block that thread: the handover commit is
    awaited, not made with the blocking `commit` (kafka-python 3 refuses that in here)."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        topic: str,
        assigned: Callable[[set[int]], None],
        revoked: Callable[[set[int]], Mapping[int, int]],
    ) -> None:
        self._consumer, self._topic = consumer, topic
        self._assigned, self._revoked = assigned, revoked

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        positions = self._revoked({tp.partition for tp in revoked})
        if not positions:
            return
        try:
            await self._consumer.commit_async(_stamped(self._topic, positions))
        except KafkaError as err:
            # The next owner replays from the last commit; shards dedupe by transfer id.
            log.warning("handover commit of %s failed: %s", sorted(positions), err)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._assigned({tp.partition for tp in assigned})


def _stamped(topic: str, positions: Mapping[int, int]) -> dict[TopicPartition, Any]:
    """Commit positions with the wall-clock time in each offset's metadata: how `orion status`
    tells a partition that stopped committing (stuck) from one that had nothing to do."""
    stamp = str(time.time_ns() // 1_000_000)
    return {
        TopicPartition(topic, p): OffsetAndMetadata(pos, stamp, -1) for p, pos in positions.items()
    }


class KafkaTransferSource:
    """The orchestrator's consumer of accepted transfers (group, no auto-commit) and DLQ."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        dlq_topic: str,
        on_assigned: Callable[[set[int]], None],
        on_revoked: Callable[[set[int]], Mapping[int, int]],
        instance_id: str | None = None,
    ) -> None:
        """`instance_id` makes this a static group member (KIP-345): a restarted process
        with the same id takes its partitions back at once instead of waiting out the dead
        one's session, and a second live process with that id is fenced by the broker."""
        self._topic, self._dlq_topic = topic, dlq_topic
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            group_instance_id=instance_id,
            client_id=f"{group}-consumer",
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        )
        listener = _Rebalance(self._consumer, topic, on_assigned, on_revoked)
        self._consumer.subscribe([topic], listener=listener)
        self._dlq = RecordProducer(bootstrap, f"{group}-dlq")

    def poll(self, max_records: int, timeout_ms: int) -> list[SourceRecord]:
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max(1, max_records))
        return [
            SourceRecord(r.partition, r.offset, r.value)
            for records in batches.values()
            for r in records
        ]

    def commit(self, positions: Mapping[int, int]) -> None:
        """Commit (stamped with the time, see `_stamped`); SourceUnavailableError if the
        broker did not take it."""
        try:
            self._consumer.commit(_stamped(self._topic, positions))
        except KafkaError as err:
            raise SourceUnavailableError(f"commit failed: {err}") from err

    def lag(self) -> dict[int, int]:
        """Per assigned partition: the broker's end offset minus the committed offset; empty
        when the broker does not answer (it is a report, read again a few seconds later)."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        try:
            ends = self._consumer.end_offsets(assigned)
            return {tp.partition: ends[tp] - (self._consumer.committed(tp) or 0) for tp in assigned}
        except KafkaError:
            return {}

    def pause(self) -> None:
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        self._consumer.resume(*self._consumer.paused())

    def dead_letter(self, records: Sequence[DeadLetter]) -> None:
        self._dlq.send_dead_letters(self._dlq_topic, self._topic, records)

    def close(self) -> None:
        self._consumer.close(autocommit=False)
        self._dlq.close()


def consumer_lag(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    """Per partition: the broker's end offset minus the group's committed offset (measured)."""
    client = admin(bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        committed = client.list_group_offsets(group).get(group, {})
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        return {
            tp.partition: ends[tp] - (committed[tp].offset if tp in committed else 0)
            for tp in parts
        }
    finally:
        consumer.close()
        client.close()


PROGRESS_FETCH_MS = 1_000  # one record at a known offset of a local broker comes at once


class ProgressReader:
    """Reads settlement progress of `topic` for `group`, reusing its two clients (they
    reconnect on their own). Reads only; joins no group, commits nothing."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self._topic, self._group = topic, group
        self._admin = admin(bootstrap)
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id="orion-progress",
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            group_id=None,
            enable_auto_commit=False,
        )

    def read(self) -> list[PartitionProgress]:
        """Per partition: end offset, the group's position and when it was committed (the
        orchestrator stamps it in the offset metadata), and when the record at that
        position (the oldest one not yet settled) was produced."""
        offsets = self._admin.list_group_offsets({self._group: None}).get(self._group, {})
        committed = {
            tp.partition: (int(om.offset), str(om.metadata or ""))
            for tp, om in offsets.items()
            if tp.topic == self._topic and om.offset >= 0
        }
        known = self._consumer.partitions_for_topic(self._topic) or ()
        parts = [TopicPartition(self._topic, p) for p in sorted(known)]
        starts = self._consumer.beginning_offsets(parts)
        ends = self._consumer.end_offsets(parts)
        return [self._one(tp, committed, int(starts[tp]), int(ends[tp])) for tp in parts]

    def _one(
        self, tp: TopicPartition, committed: Mapping[int, tuple[int, str]], start: int, end: int
    ) -> PartitionProgress:
        position, stamp = committed.get(tp.partition, (start, ""))
        position = max(position, start)  # retention may have deleted past it
        oldest = _produced_at(self._consumer, tp, position) if end > position else None
        committed_at = int(stamp) if stamp.isdigit() else None
        return PartitionProgress(tp.partition, end, position, committed_at, oldest)

    def close(self) -> None:
        self._consumer.close(autocommit=False)
        self._admin.close()


def partition_progress(bootstrap: str, topic: str, group: str) -> list[PartitionProgress]:
    """One reading of settlement progress (see ProgressReader.read)."""
    reader = ProgressReader(bootstrap, topic, group)
    try:
        return reader.read()
    finally:
        reader.close()


def _produced_at(consumer: KafkaConsumer, tp: TopicPartition, offset: int) -> int | None:
    """Timestamp (ms) of the record at `offset`, or None if it could not be read in time."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    for records in consumer.poll(timeout_ms=PROGRESS_FETCH_MS, max_records=1).values():
        for record in records:
            return int(record.timestamp)
    return None
