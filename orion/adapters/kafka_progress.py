"""Settlement progress of the transfers topic, read from Kafka alone (kafka-python).

Reads only: joins no consumer group, commits nothing. Works whatever state the orchestrator
is in, which is the point: `orion status`, the API's /readyz and its metrics use it.
"""

from __future__ import annotations

from collections.abc import Mapping

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from orion.adapters.kafka import RECONNECT_BACKOFF_MAX_MS, admin
from orion.domain.progress import PartitionProgress

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
        committed = self.committed()
        starts, ends = self.bounds()
        return [
            self._one(TopicPartition(self._topic, p), committed, starts[p], ends[p])
            for p in sorted(ends)
        ]

    def committed(self) -> dict[int, tuple[int, str]]:
        """Per partition the group committed: (offset, metadata)."""
        offsets = self._admin.list_group_offsets({self._group: None}).get(self._group, {})
        return {
            tp.partition: (int(om.offset), str(om.metadata or ""))
            for tp, om in offsets.items()
            if tp.topic == self._topic and om.offset >= 0
        }

    def bounds(self) -> tuple[dict[int, int], dict[int, int]]:
        """Per partition of the topic now: its first offset and its end offset."""
        known = self._consumer.partitions_for_topic(self._topic) or ()
        parts = [TopicPartition(self._topic, p) for p in sorted(known)]
        starts = self._consumer.beginning_offsets(parts)
        ends = self._consumer.end_offsets(parts)
        return (
            {tp.partition: int(starts[tp]) for tp in parts},
            {tp.partition: int(ends[tp]) for tp in parts},
        )

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
