"""The orchestrator's Kafka side (kafka-python): its consumer of accepted transfers, the
handover of partitions on a rebalance, and its dead-letter producer.

Guarantees: the records of a newly assigned partition start at its committed position (or
its beginning, never committed): `poll` seeks each there explicitly (after a rebalance that
returns a partition to this consumer kafka-python keeps its old fetch position, and records
the engine dropped on the revocation would never be seen again, or, with the position
already at the log's end, nothing would come at all: both found in the multi-node lab);
offsets are committed only as the engine hands them (never auto-committed); each commit
carries its wall-clock time in the offset metadata (`orion status` reads it); a commit
the broker refuses raises SourceUnavailableError having changed nothing; a revoked
partition's settled prefix is committed before it moves (an awaited commit on kafka-python's
I/O thread, where a blocking one is refused); a group join that kafka-python would leave
unfinished is asked for again (`StalledJoinGuard`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from orion.adapters.kafka import RECONNECT_BACKOFF_MAX_MS, RecordProducer
from orion.orchestration.ports import DeadLetter, SourceRecord, SourceUnavailableError

log = logging.getLogger(__name__)

SESSION_TIMEOUT_MS = 10_000  # a crashed orchestrator's partitions move on within ~10 s
HEARTBEAT_INTERVAL_MS = 2_000  # at most a third of the session timeout, as Kafka advises
MAX_POLL_INTERVAL_MS = 120_000  # the engine polls every few ms; this only catches a hang
# Before joining the group, the consumer must know the topic's partitions: a member that
# assigns while its metadata lacks them gives every member nothing ("No partition metadata
# for topic"), and kafka-python does not rejoin until its next metadata refresh (5 min).
TOPIC_METADATA_WAIT_S = 30.0
TOPIC_METADATA_RETRY_S = 0.2


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
        self.fresh: set[int] = set()  # assigned, not yet sought to their commit

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.fresh -= {tp.partition for tp in revoked}
        positions = self._revoked({tp.partition for tp in revoked})
        if not positions:
            return
        try:
            await self._consumer.commit_async(_stamped(self._topic, positions))
        except KafkaError as err:
            # The next owner replays from the last commit; shards dedupe by transfer id.
            log.warning("handover commit of %s failed: %s", sorted(positions), err)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        partitions = {tp.partition for tp in assigned}
        self.fresh |= partitions
        self._assigned(partitions)

    async def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        """Taken away without a revocation (this consumer was cut off): nothing to commit
        (the group moved on), only state to forget."""
        self._revoked({tp.partition for tp in lost})


def _stamped(topic: str, positions: Mapping[int, int]) -> dict[TopicPartition, Any]:
    """Commit positions with the wall-clock time in each offset's metadata: how `orion status`
    tells a partition that stopped committing (stuck) from one that had nothing to do."""
    stamp = str(time.time_ns() // 1_000_000)
    return {
        TopicPartition(topic, p): OffsetAndMetadata(pos, stamp, -1) for p, pos in positions.items()
    }


def _await_partitions(consumer: KafkaConsumer, topic: str) -> None:
    """Return once `consumer` knows `topic`'s partitions; raise (closing it) after
    TOPIC_METADATA_WAIT_S: the caller retries with a fresh client, as for any outage."""
    deadline = time.monotonic() + TOPIC_METADATA_WAIT_S
    try:
        while not consumer.partitions_for_topic(topic):
            if time.monotonic() >= deadline:
                raise SourceUnavailableError(
                    f"topic {topic}: no partition metadata after {TOPIC_METADATA_WAIT_S:.0f} s"
                )
            time.sleep(TOPIC_METADATA_RETRY_S)
    except BaseException:
        consumer.close()
        raise


JOIN_STATE = ("rejoining", "need_rejoin", "request_rejoin")  # what the guard reads and calls


class StalledJoinGuard:
    """Asks kafka-python for a new group join when its current one would never finish.

    kafka-python (3.0.12 and its main branch) keeps a JoinGroup/SyncGroup round in flight
    when `poll`'s timeout ends first, and awaits it on a later `poll` only while its
    coordinator still reports a rejoin as needed. When the rejoin was asked for by a
    metadata change (the second join every consumer makes just after it starts, or a
    partition count change), the leader's own assignment inside that round clears the
    report: the round's answer is never applied, its partitions stay revoked, and the
    consumer reads nothing, for good. The engine polls with a 0 ms timeout whenever it is
    busy, so an orchestrator restarted under load could stall there. Java's client counts a
    pending join as a needed one; so does `check`, which asks again (one more rebalance at
    most) when a join was prepared, not finished, and is no longer driven. It logs a
    warning: a library fault worked around is worth an operator's look.

    It reads the consumer's private coordinator, as no public API shows this state. A
    kafka-python whose coordinator lacks any of JOIN_STATE gets the guard switched off with
    a warning, not a crash on every poll; `tests/integration/test_kafka_source.py` shows
    whether that version still stalls.
    """

    def __init__(self, consumer: KafkaConsumer) -> None:
        coordinator = getattr(consumer, "_coordinator", None)
        missing = [name for name in JOIN_STATE if not hasattr(coordinator, name)]
        self._coordinator = None if missing else coordinator
        if missing:
            names = ", ".join(missing)
            log.warning("kafka-python's group coordinator has no %s: join guard off", names)

    def check(self) -> bool:
        """Ask for a new join if the current one is stalled; whether it asked."""
        coordinator = self._coordinator
        if coordinator is None or not coordinator.rejoining or coordinator.need_rejoin():
            return False
        log.warning("group join left unfinished by kafka-python: asking for it again")
        coordinator.request_rejoin()
        return True


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
        self._listener = _Rebalance(self._consumer, topic, on_assigned, on_revoked)
        self._join_guard = StalledJoinGuard(self._consumer)
        _await_partitions(self._consumer, topic)
        self._consumer.subscribe([topic], listener=self._listener)
        self._dlq = RecordProducer(bootstrap, f"{group}-dlq")

    def poll(self, max_records: int, timeout_ms: int) -> list[SourceRecord]:
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max(1, max_records))
        self._join_guard.check()
        fresh = self._start_fresh()
        return [
            SourceRecord(r.partition, r.offset, r.value)
            for tp, records in batches.items()
            if tp.partition not in fresh
            for r in records
        ]

    def _start_fresh(self) -> set[int]:
        """Seek every newly assigned partition to its committed position (its beginning if
        never committed); the partitions that were fresh, whose records of this poll are
        dropped (they may come from a stale position; they come again from the commit).
        One whose commit cannot be read now stays fresh and is tried on the next poll."""
        fresh = set(self._listener.fresh)
        if not fresh:
            return fresh
        assigned = {tp.partition: tp for tp in self._consumer.assignment()}
        for partition in fresh:
            tp = assigned.get(partition)
            if tp is None:  # gone again before we got to it
                self._listener.fresh.discard(partition)
                continue
            try:
                start = self._consumer.committed(tp)
                if start is None:
                    start = self._consumer.beginning_offsets([tp])[tp]
            except KafkaError as err:
                log.warning("partition %d: committed position unknown yet: %s", partition, err)
                continue
            log.info("partition %d assigned: starting at its commit, %d", partition, start)
            self._consumer.seek(tp, start)
            self._listener.fresh.discard(partition)
        return fresh

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
