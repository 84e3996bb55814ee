"""Following the results topic during a run: which of the run's transfers settled, and when.

Responsibilities: before the run, take the end offset of every partition of
`orion.transfer-results`; while the load runs, read nothing: count the records published
since then for the progress line, and once the load is answered wait until the orchestrators
committed past every record then on the transfers topic (`wait_settled`: offsets requests at
most every PUBLISHED_REFRESH_S; a record is committed only after its outcomes were acked on
the results topic); then read everything from the start offsets (no consumer group, nothing
committed), keep the first outcome of each of the run's transfer ids (matched
by the run's id prefix, decoded with orion.messages.decode_outcomes from records of one
outcome or packed ones), count repeats and statuses.

Why count first and read afterwards: the bench runs on the same 2 cores as the system it
measures, and decoding every outcome as it arrived (this thread, and the broker serving its
fetches) cost the measured window about 8 % of the box's CPU per transfer (load/RESULTS.md,
2026-12-04), a tax the baselines (bare uvicorn, raw apply_batch) never paid.
The timings come from the outcomes themselves (accepted_at_ms and settled_at_ms are set by
Orion), so reading them later changes no number but the CPU the measured window sees.

Guarantees:
- Read-only, and positioned before the first request, so no outcome of the run is missed.
- Settling is judged by the transfers topic's records, anyone's traffic included (the CPU
  window ends when all of it settled); the read waits for what of this run is really
  missing, so the checks do not depend on it.
- Memory is two int64 arrays of the run's size; other runs' outcomes are skipped by key (or,
  in a packed record, by the id of each element) before decoding.
- The thread stops on `stop()` within one poll; a broker that goes away (someone restarts
  Kafka) is retried with a pause, since kafka-python reconnects on the next poll.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from load.shapes import ID_PREFIX_CHARS, index_of
from orion.adapters.kafka_progress import ProgressReader
from orion.messages import MessageError, OutcomeRecord, decode_outcomes

POLL_MS = 200  # one poll's wait; short so stop() is quick
POLL_RECORDS_MAX = 5_000  # bounds the memory of one poll
RETRY_PAUSE_S = 1.0  # after a broker error, before polling again
JOIN_S = 5.0
DRAIN_POLL_S = 0.25
PUBLISHED_REFRESH_S = 1.0  # `published()` and `wait_settled` ask the broker at most this often


class OutcomeWatcher:
    def __init__(self, bootstrap: str, topic: str, id_prefix: str, count: int) -> None:
        self._bootstrap, self._topic, self._prefix = bootstrap, topic, id_prefix
        self._key_prefix = id_prefix.encode()
        self.settled_at_ms = array("q", bytes(8 * count))  # 0: no outcome seen yet
        self.accepted_at_ms = array("q", bytes(8 * count))
        self.statuses: Counter[str] = Counter()
        self.seen = 0  # distinct transfers of this run with an outcome
        self.duplicates = 0  # repeated outcomes of one transfer (at-least-once publishing)
        self.undecodable = 0
        self.broker_errors = 0
        self.start_offsets: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-outcomes", daemon=True)
        self._consumer: Any = None
        self._tps: list[TopicPartition] = []
        self._published = (0, -PUBLISHED_REFRESH_S)  # (count, when asked: monotonic s)

    def start(self) -> None:
        """Position at the current end of every partition; nothing is read until `read()`."""
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="orion-bench-outcomes",
        )
        partitions = consumer.partitions_for_topic(self._topic)
        if not partitions:
            consumer.close(autocommit=False)
            raise RuntimeError(f"topic {self._topic} has no partitions (is Orion up?)")
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, ends[tp])
        self.start_offsets = {tp.partition: int(ends[tp]) for tp in tps}
        self._consumer, self._tps = consumer, tps

    def published(self) -> int:
        """Records published to the topic since `start()`, asked of the broker at most every
        PUBLISHED_REFRESH_S (the last answer otherwise). Only before `read()`: the consumer
        is not shared with the reading thread."""
        if self._thread.is_alive():
            raise RuntimeError("published() is for before read(); count `seen` after it")
        count, asked = self._published
        now = time.monotonic()
        if now - asked >= PUBLISHED_REFRESH_S:
            try:
                ends = self._consumer.end_offsets(self._tps)
            except KafkaError:
                self.broker_errors += 1
                return count
            count = sum(int(ends[tp]) - self.start_offsets[tp.partition] for tp in self._tps)
            self._published = (count, now)
        return count

    def wait_settled(
        self,
        transfers_topic: str,
        group: str,
        timeout_s: float,
        idle_s: float,
        on_tick: Callable[[int], None] | None = None,
    ) -> str | None:
        """Wait until `group` (the orchestrators) committed past every record on
        `transfers_topic` now: None; else why it stopped waiting (`timeout_s` passed, or
        `idle_s` without a commit moving). A shard answers only once its outcomes are acked,
        and a record is committed only after its transfers' answers, so then the results topic
        holds every outcome of the run, in whichever form (one per record or packed). Counted
        in the transfers topic's records, from offsets alone (nothing is read, so the measured
        window pays for no decoding); `on_tick(records still unsettled)` every poll."""
        if self._thread.is_alive():
            raise RuntimeError("wait_settled() is for before read()")
        reader = ProgressReader(self._bootstrap, transfers_topic, group)
        try:
            starts, ends = reader.bounds()
            count, asked = sum(ends[p] - starts[p] for p in ends), -PUBLISHED_REFRESH_S

            def unsettled() -> int:
                nonlocal count, asked
                now = time.monotonic()
                if now - asked < PUBLISHED_REFRESH_S:
                    return count
                try:
                    at = reader.committed()
                except KafkaError:
                    self.broker_errors += 1
                    return count
                count = sum(
                    max(0, end - max(at.get(p, (0, ""))[0], starts[p])) for p, end in ends.items()
                )
                asked = now
                return count

            stopped = _wait(unsettled, unsettled, timeout_s, idle_s, on_tick)
        finally:
            reader.close()
        return None if stopped is None else f"{stopped[0]} records not settled{stopped[1]}"

    def read(self) -> None:
        """Read the topic from the start offsets on, in a thread, until `stop()`."""
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=JOIN_S)
        if self._consumer is not None:
            self._consumer.close(autocommit=False)

    def missing(self, indices: Sequence[int]) -> list[int]:
        return [i for i in indices if self.settled_at_ms[i] == 0]

    def wait_drained(
        self,
        accepted: Sequence[int],
        timeout_s: float,
        idle_s: float,
        on_tick: Callable[[int], None] | None = None,
    ) -> str | None:
        """Wait until every accepted index has an outcome: None; else why it stopped waiting
        (`timeout_s` passed, or `idle_s` without any new outcome of this run).
        `on_tick(still missing)` is called every poll."""
        left, seen = self.missing(accepted), self.seen

        def missing() -> int:
            nonlocal left, seen
            if self.seen != seen:  # only what was missing can still be missing
                seen, left = self.seen, self.missing(left)
            return len(left)

        stopped = _wait(missing, lambda: self.seen, timeout_s, idle_s, on_tick)
        return None if stopped is None else f"{stopped[0]} without an outcome{stopped[1]}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batches = self._consumer.poll(timeout_ms=POLL_MS, max_records=POLL_RECORDS_MAX)
            except KafkaError:
                self.broker_errors += 1
                self._stop.wait(RETRY_PAUSE_S)
                continue
            for records in batches.values():
                for record in records:
                    self._take(record.key, record.value)

    def _take(self, key: bytes | None, value: bytes | None) -> None:
        if key is not None and key[:ID_PREFIX_CHARS] != self._key_prefix:
            return
        try:  # a packed record: only this run's outcomes are decoded
            outcomes = decode_outcomes(value, self._ours)
        except MessageError:
            self.undecodable += 1
            return
        for outcome in outcomes:
            self._count(outcome)

    def _ours(self, transfer_id: str) -> bool:
        return transfer_id.startswith(self._prefix)

    def _count(self, outcome: OutcomeRecord) -> None:
        index = index_of(self._prefix, outcome.transfer_id)
        if index is None or index >= len(self.settled_at_ms):
            return
        if self.settled_at_ms[index]:
            self.duplicates += 1
            return
        self.accepted_at_ms[index] = outcome.accepted_at_ms
        self.settled_at_ms[index] = outcome.settled_at_ms
        reason = f":{outcome.reason}" if outcome.reason else ""
        self.statuses[outcome.status + reason] += 1
        self.seen += 1


def _wait(
    remaining: Callable[[], int],
    progress: Callable[[], int],
    timeout_s: float,
    idle_s: float,
    on_tick: Callable[[int], None] | None,
) -> tuple[int, str] | None:
    """Poll every DRAIN_POLL_S until `remaining()` is 0: None. Else (what remains, why it
    stopped): `timeout_s` passed, or `idle_s` went by without `progress()` changing."""
    deadline = time.monotonic() + timeout_s
    mark, idle_since = progress(), time.monotonic()
    while (left := remaining()) > 0:
        if on_tick is not None:
            on_tick(left)
        now = time.monotonic()
        if now > deadline:
            return left, f" after {timeout_s:.0f} s"
        if now - idle_since > idle_s:
            return left, f", none new for {idle_s:.0f} s"
        time.sleep(DRAIN_POLL_S)
        if (moved := progress()) != mark:
            mark, idle_since = moved, time.monotonic()
    return None
