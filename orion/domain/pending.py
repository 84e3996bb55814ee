"""The orchestrator's pending queue: transfers received and not yet dispatched, oldest first.

Responsibilities: hold transfers in arrival order for `plan_round`, and drop the ones a round
took without disturbing the order of the rest.

Guarantees:
- FIFO: iteration yields transfers in push order; `remove_taken` keeps the others' order.
- Bounded: never more than `capacity` transfers; `push` on a full queue raises, so the
  caller must stop polling when `is_full` (backpressure) instead of dropping anything.
- One entry per transfer id: a redelivered copy of a transfer that is already pending is
  not queued again (`push` returns False); its one outcome answers both deliveries.
- `remove_taken` costs O(position of the last taken transfer), not O(queue): a round only
  ever takes from the first `scan_transfers_max` items.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Generic, TypeVar

from orion.domain.model import Routable

PENDING_TRANSFERS_MAX = 50_000  # ~15 s of peak API intake; ~20 MB; past it, stop polling

T = TypeVar("T", bound=Routable)


class PendingQueueFullError(OverflowError):
    """`push` on a full queue: the caller polled without checking `is_full`."""


class PendingQueue(Generic[T]):
    """A bounded FIFO of pending transfers, unique by id."""

    def __init__(self, capacity: int = PENDING_TRANSFERS_MAX) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __contains__(self, transfer_id: object) -> bool:
        return transfer_id in self._ids

    @property
    def is_full(self) -> bool:
        """True when no further transfer may be pushed."""
        return len(self._items) >= self.capacity

    @property
    def free_slots(self) -> int:
        """How many transfers may still be pushed: the most the caller should poll."""
        return self.capacity - len(self._items)

    def push(self, transfer: T) -> bool:
        """Append `transfer`; False (and nothing queued) if its id is already pending."""
        if transfer.id in self._ids:
            return False
        if self.is_full:
            raise PendingQueueFullError(f"pending queue holds its maximum of {self.capacity}")
        self._items.append(transfer)
        self._ids.add(transfer.id)
        return True

    def remove_taken(self, ids: AbstractSet[str]) -> int:
        """Remove the pending transfers whose id is in `ids`; how many were removed."""
        remaining = sum(1 for transfer_id in ids if transfer_id in self._ids)
        removed = remaining
        kept: list[T] = []
        while remaining:
            transfer = self._items.popleft()
            if transfer.id in ids:
                self._ids.discard(transfer.id)
                remaining -= 1
            else:
                kept.append(transfer)
        self._items.extendleft(reversed(kept))
        return removed
