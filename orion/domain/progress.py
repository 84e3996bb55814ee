"""Is settlement moving? Stuck partitions and the oldest accepted-but-unsettled transfer.

Responsibilities: from what Kafka knows about the transfers topic and the orchestrator
group (per partition: end offset, committed position, when it was committed, and the time
the record at that position was accepted), tell per partition whether settlement is stuck,
and how long the oldest unsettled transfer has waited. Pure: every time is passed in.

A partition is stuck when it has unsettled records (lag > 0), the oldest of them was accepted
more than `stuck_after_s` ago, AND its committed position has not moved for that long either.
The second condition keeps a long backlog that is being worked off (commits every fraction of
a second) from counting as stuck; the first keeps a partition that merely had nothing to
commit for an hour from counting as stuck the moment a new record arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MS_PER_S = 1000


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """What Kafka says about one partition of the transfers topic."""

    partition: int
    end: int  # the broker's end offset (next offset to be written)
    position: int  # the group's committed position, or the partition's start if none
    committed_at_ms: int | None  # when that position was committed, when recorded
    oldest_unsettled_ms: int | None  # accept time of the record at `position`, if lag > 0

    @property
    def lag(self) -> int:
        return max(0, self.end - self.position)


@dataclass(frozen=True, slots=True)
class PartitionHealth:
    partition: int
    lag: int
    oldest_unsettled_age_s: float | None
    last_commit_age_s: float | None
    stuck: bool


@dataclass(frozen=True, slots=True)
class Settlement:
    partitions: tuple[PartitionHealth, ...]

    @property
    def stuck(self) -> tuple[int, ...]:
        return tuple(p.partition for p in self.partitions if p.stuck)

    @property
    def oldest_unsettled_age_s(self) -> float | None:
        """Age of the oldest accepted transfer not yet settled, anywhere; None: none."""
        ages = [p.oldest_unsettled_age_s for p in self.partitions]
        known = [age for age in ages if age is not None]
        return max(known) if known else None

    def summary(self) -> str:
        """One line for readiness answers and logs."""
        oldest = self.oldest_unsettled_age_s
        age = "none" if oldest is None else f"{oldest:.0f} s"
        stuck = ", ".join(map(str, self.stuck)) or "none"
        return f"stuck partitions: {stuck}; oldest unsettled transfer: {age}"


def assess(progress: Sequence[PartitionProgress], now_ms: int, stuck_after_s: float) -> Settlement:
    """Health of every partition, in partition order."""
    return Settlement(tuple(_health(p, now_ms, stuck_after_s) for p in sorted(
        progress, key=lambda p: p.partition
    )))  # fmt: skip


def _health(p: PartitionProgress, now_ms: int, stuck_after_s: float) -> PartitionHealth:
    oldest = _age_s(p.oldest_unsettled_ms, now_ms) if p.lag else None
    committed = _age_s(p.committed_at_ms, now_ms)
    stuck = (
        oldest is not None
        and oldest > stuck_after_s
        and (committed is None or committed > stuck_after_s)
    )
    return PartitionHealth(p.partition, p.lag, oldest, committed, stuck)


def _age_s(at_ms: int | None, now_ms: int) -> float | None:
    return None if at_ms is None else max(0.0, (now_ms - at_ms) / MS_PER_S)
