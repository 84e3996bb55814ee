"""Which Kafka offsets are safe to commit: the contiguous settled prefix per partition.

Responsibilities: remember every record received (`track`) until its outcome is known
(`settle`: once per transfer it carries, a packed record carrying several), and say, per
partition, how far the consumer group may commit.

Guarantees:
- Never past an in-flight record: the position offered for a partition is one past the
  highest tracked offset such that it and every tracked offset before it are settled.
  After a crash, Kafka replays from there, so every unsettled record is delivered again
  (settled ones may be too; the shards dedupe them by transfer id).
- Out-of-order settling is fine: a record settled early just waits for the earlier ones.
- Gaps are fine: offsets Kafka never delivers (compaction, transaction markers) are not
  tracked and so never hold the position back.
- A position is offered once per advance: `committable` lists only partitions that moved
  past what `mark_committed` last recorded.
- A record is settled when every transfer it carries is: a packed record half settled when
  the orchestrator dies is replayed whole.
- Misuse raises instead of corrupting the position: offsets that do not increase, a record
  carrying no transfer, settling a record not in flight (or more often than it carries
  transfers), or marking a position beyond the settled prefix.
Memory is one entry per in-flight record; the orchestrator bounds those (pending queue and
batches in flight), so this needs no bound of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class OffsetError(ValueError):
    """The tracker was used against its contract; committing now could lose a record."""


@dataclass(slots=True)
class _Partition:
    order: deque[int] = field(default_factory=deque)  # tracked, not yet passed, increasing
    in_flight: dict[int, int] = field(default_factory=dict)  # offset -> transfers unsettled
    last_tracked: int = -1
    position: int | None = None  # one past the contiguous settled prefix
    committed: int | None = None


class OffsetTracker:
    """Contiguous settled offsets per partition of one consumer."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}

    def track(self, partition: int, offset: int, transfers: int = 1) -> None:
        """Record that the record at `offset`, carrying `transfers`, was received and awaits
        their outcomes."""
        state = self._partitions.setdefault(partition, _Partition())
        if offset <= state.last_tracked:
            raise OffsetError(f"partition {partition}: offset {offset} after {state.last_tracked}")
        if transfers < 1:
            raise OffsetError(f"partition {partition}: offset {offset} carries {transfers}")
        state.last_tracked = offset
        state.order.append(offset)
        state.in_flight[offset] = transfers

    def settle(self, partition: int, offset: int) -> None:
        """Record that the outcome of one transfer of the record at `offset` is durable."""
        state = self._partitions.get(partition)
        left = None if state is None else state.in_flight.get(offset)
        if state is None or left is None:
            raise OffsetError(f"partition {partition}: offset {offset} is not in flight")
        if left > 1:
            state.in_flight[offset] = left - 1
            return
        del state.in_flight[offset]
        while state.order and state.order[0] not in state.in_flight:
            state.position = state.order.popleft() + 1

    def in_flight(self, partition: int) -> int:
        """How many records of `partition` are tracked and not yet settled."""
        state = self._partitions.get(partition)
        return 0 if state is None else len(state.in_flight)

    def committable(self) -> dict[int, int]:
        """Commit position (next offset to read) of every partition that advanced."""
        return {
            partition: state.position
            for partition, state in self._partitions.items()
            if state.position is not None
            and (state.committed is None or state.position > state.committed)
        }

    def mark_committed(self, positions: Mapping[int, int]) -> None:
        """Record that Kafka accepted these commit positions."""
        for partition, position in positions.items():
            state = self._partitions.get(partition)
            if state is None:
                continue  # revoked while the commit was in flight
            if state.position is None or position > state.position:
                raise OffsetError(
                    f"partition {partition}: position {position} is past the settled prefix"
                )
            state.committed = max(position, state.committed or 0)

    def reset(self, partitions: Iterable[int]) -> None:
        """Forget `partitions` (revoked by a rebalance); their records will be replayed."""
        for partition in partitions:
            self._partitions.pop(partition, None)
