"""The orchestrator's consumer against the real Kafka: a partition handed back to the same
consumer by a rebalance starts again at its committed position, and a consumer polled without
waiting (as the busy engine polls) finishes its group joins.

kafka-python keeps a partition's fetch position across a rebalance that returns it to the
same consumer. The engine forgets a revoked partition's unsettled records, so resuming from
the old position would skip them for good (found in the multi-node lab: 2,408 accepted
transfers of one partition never settled). The first test fails without the source's seek.

kafka-python also leaves a join unfinished when a 0 ms poll ends while it is in flight and
the join was asked for by a metadata change (every consumer's second join, ~0.5 s after it
starts); the consumer then reads nothing, ever. The second test fails (every run tried) without
the source's `StalledJoinGuard`.
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
BUSY_POLLING_S = 3.0  # past the metadata refresh that makes a new consumer join again


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
    seen: list[tuple[int, int]] = field(default_factory=list)  # since its last assignment
    assigned: list[set[int]] = field(default_factory=list)
    revoked: list[set[int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll_once(POLL_MS)

    def poll_once(self, timeout_ms: int) -> None:
        self.seen += [(r.partition, r.offset) for r in self.source.poll(100, timeout_ms)]

    def read_all_of_its_partitions(self) -> bool:
        """Its last assignment read in full from the beginning (nothing was committed)."""
        if not self.assigned:
            return False
        everything = [(p, n) for p in sorted(self.assigned[-1]) for n in range(PER_PARTITION)]
        return sorted(set(self.seen)) == everything


def _member(settings: Settings, topic: str, group: str, name: str) -> Member:
    holder: list[Member] = []

    def assigned(partitions: set[int]) -> None:
        # Runs inside the member's `poll`, so before that poll's records are added.
        holder[0].seen.clear()
        holder[0].assigned.append(set(partitions))

    def revoked(partitions: set[int]) -> dict[int, int]:
        holder[0].revoked.append(set(partitions))
        return {}  # nothing settled: nothing to commit on the way out

    source = KafkaTransferSource(
        settings.kafka_bootstrap, topic, group, f"{topic}.dlq", assigned, revoked, name
    )
    holder.append(Member(source))
    return holder[0]


def _produce(settings: Settings, topic: str, per_partition: int) -> None:
    """`per_partition` records into each of the topic's two partitions, acknowledged."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for partition in (0, 1):
        for n in range(per_partition):
            producer.send(topic, f"{partition}-{n}".encode(), partition=partition)
    producer.flush()
    producer.close()


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
    _produce(settings, two_partitions, PER_PARTITION)
    group = f"test-group-{unique}"
    first = _member(settings, two_partitions, group, f"first-{unique}")
    second: Member | None = None
    threads = [threading.Thread(target=first.run, daemon=True)]
    threads[0].start()
    try:
        # A new consumer may join more than once (kafka-python rejoins after its first
        # metadata refresh): wait until it has both partitions and has read them in full.
        assert _wait(
            lambda: first.assigned[-1:] == [{0, 1}] and first.read_all_of_its_partitions(),
            REBALANCE_WITHIN_S,
        ), (first.assigned, first.seen)
        joiner = second = _member(settings, two_partitions, group, f"second-{unique}")
        threads.append(threading.Thread(target=joiner.run, daemon=True))
        threads[1].start()
        # Both members read their partition from its commit (the beginning), the first one
        # included, though its fetch position had reached the end before the rebalance.
        split = _wait(
            lambda: (
                len(first.assigned[-1]) == 1
                and joiner.assigned[-1:] == [{0, 1} - first.assigned[-1]]
                and first.read_all_of_its_partitions()
                and joiner.read_all_of_its_partitions()
            ),
            REBALANCE_WITHIN_S,
        )
        assert split, (first.assigned, first.seen, joiner.assigned, joiner.seen)
    finally:
        for member in (first, second):
            if member is not None:
                member.stop.set()
        for thread in threads:
            thread.join(10)
        for member in (first, second):
            if member is not None:
                member.source.close()


def test_a_consumer_polled_without_waiting_finishes_joining(
    settings: Settings, two_partitions: str, unique: str
) -> None:
    """Polled with a 0 ms timeout, as the busy engine polls, the source still finishes its
    group joins: a record written after the joins settle is read."""
    member = _member(settings, two_partitions, f"test-group-{unique}", f"busy-{unique}")
    try:
        start = time.monotonic()
        while time.monotonic() - start < BUSY_POLLING_S:
            member.source.poll(100, 0)
        _produce(settings, two_partitions, 1)
        deadline = time.monotonic() + REBALANCE_WITHIN_S
        while time.monotonic() < deadline and len(member.seen) < 2:
            member.poll_once(0)
        assert sorted(member.seen) == [(0, 0), (1, 0)], (member.assigned, member.seen)
    finally:
        member.source.close()
