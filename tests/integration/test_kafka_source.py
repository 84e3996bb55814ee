"""The orchestrator's consumer against the real Kafka: a partition handed back to the same
consumer by a rebalance starts again at its committed position.

kafka-python keeps a partition's fetch position across a rebalance that returns it to the
same consumer. The engine forgets a revoked partition's unsettled records, so resuming from
the old position would skip them for good (found in the multi-node lab: 2,408 accepted
transfers of one partition never settled). This test fails without the source's seek.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from orion.adapters.kafka_source import KafkaTransferSource
from orion.config import Settings

PER_PARTITION = 10
REBALANCE_WITHIN_S = 60.0  # the second member's join; ~3-10 s with a 10 s session timeout
POLL_MS = 200


@pytest.fixture
def two_partitions(settings: Settings, unique: str) -> Iterator[str]:
    name = f"test.rebalance.{unique}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(name, 2, 1)])
    try:
        yield name
    finally:
        admin.delete_topics([name])
        admin.close()


@dataclass
class Member:
    """A source polling on its own thread, recording what it was given and when."""

    source: KafkaTransferSource
    seen: list[tuple[int, int]] = field(default_factory=list)
    assigned: list[set[int]] = field(default_factory=list)
    revoked: list[set[int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            self.seen += [(r.partition, r.offset) for r in self.source.poll(100, POLL_MS)]


def _member(settings: Settings, topic: str, group: str, name: str) -> Member:
    holder: list[Member] = []

    def assigned(partitions: set[int]) -> None:
        holder[0].assigned.append(set(partitions))

    def revoked(partitions: set[int]) -> dict[int, int]:
        holder[0].revoked.append(set(partitions))
        return {}  # nothing settled: nothing to commit on the way out

    source = KafkaTransferSource(
        settings.kafka_bootstrap, topic, group, f"{topic}.dlq", assigned, revoked, name
    )
    holder.append(Member(source))
    return holder[0]


def _wait(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_a_partition_handed_back_starts_again_at_its_commit(
    settings: Settings, two_partitions: str, unique: str
) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for partition in (0, 1):
        for n in range(PER_PARTITION):
            producer.send(two_partitions, f"{partition}-{n}".encode(), partition=partition)
    producer.flush()
    producer.close()
    group = f"test-group-{unique}"
    first = _member(settings, two_partitions, group, f"first-{unique}")
    second: Member | None = None
    threads = [threading.Thread(target=first.run, daemon=True)]
    threads[0].start()
    try:
        assert _wait(lambda: len(first.seen) == 2 * PER_PARTITION, REBALANCE_WITHIN_S)
        first.seen.clear()  # read to the end of both partitions, nothing committed
        second = _member(settings, two_partitions, group, f"second-{unique}")
        threads.append(threading.Thread(target=second.run, daemon=True))
        threads[1].start()
        assert _wait(lambda: first.revoked and second.assigned, REBALANCE_WITHIN_S)
        kept = first.assigned[-1]
        assert len(kept) == 1, first.assigned  # the other partition went to the second
        expected = [(p, n) for p in sorted(kept) for n in range(PER_PARTITION)]
        # Both members read their partition from its commit (the beginning), the first one
        # included, though its fetch position had reached the end before the rebalance.
        handed_back = _wait(lambda: sorted(set(first.seen)) == expected, REBALANCE_WITHIN_S)
        assert handed_back, first.seen
        assert _wait(lambda: len(set(second.seen)) == PER_PARTITION, REBALANCE_WITHIN_S)
    finally:
        for member in (first, second):
            if member is not None:
                member.stop.set()
        for thread in threads:
            thread.join(10)
        for member in (first, second):
            if member is not None:
                member.source.close()
