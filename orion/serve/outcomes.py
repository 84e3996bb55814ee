"""Waiters for final transfer outcomes, fed from another thread (the results-topic consumer).

Responsibilities: requests register an asyncio future per transfer id they wait on; the
consumer thread calls `deliver` for every outcome it reads. Guarantees:
- `deliver` is safe from any thread: futures are resolved on their own event loop through
  `call_soon_threadsafe`, and it costs one dict lookup when nobody waits on that id.
- The number of registered waiters is bounded (WAITERS_MAX); past it `register` returns None
  and the caller answers with the current status instead of waiting.
- An outcome read before a waiter registered is not seen here: callers check PostgreSQL once
  after registering (shards publish only after commit, so the row is there by then).
"""

from __future__ import annotations

import asyncio
import threading

from orion.messages import OutcomeRecord

WAITERS_MAX = 10_000  # each holds an open HTTP request; beyond this, answer without waiting


class OutcomeWaiters:
    def __init__(self, waiters_max: int = WAITERS_MAX) -> None:
        self._waiters_max = waiters_max
        self._lock = threading.Lock()
        self._by_id: dict[str, list[asyncio.Future[OutcomeRecord]]] = {}
        self._count = 0

    def register(self, transfer_id: str) -> asyncio.Future[OutcomeRecord] | None:
        """A future resolved with the outcome of `transfer_id`; None when at capacity."""
        future: asyncio.Future[OutcomeRecord] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._count >= self._waiters_max:
                return None
            self._by_id.setdefault(transfer_id, []).append(future)
            self._count += 1
        return future

    def unregister(self, transfer_id: str, future: asyncio.Future[OutcomeRecord]) -> None:
        with self._lock:
            futures = self._by_id.get(transfer_id)
            if futures is None or future not in futures:
                return
            futures.remove(future)
            self._count -= 1
            if not futures:
                del self._by_id[transfer_id]

    def waiting(self, transfer_id: bytes | str) -> bool:
        """Whether anyone waits on this id; callable from any thread, without the lock."""
        key = (
            transfer_id.decode(errors="replace") if isinstance(transfer_id, bytes) else transfer_id
        )
        return key in self._by_id

    def deliver(self, outcome: OutcomeRecord) -> None:
        """Resolve every waiter of this outcome's transfer; callable from any thread."""
        if outcome.transfer_id not in self._by_id:  # the common case: nobody waits
            return
        with self._lock:
            futures = list(self._by_id.get(outcome.transfer_id, ()))
        for future in futures:
            try:
                future.get_loop().call_soon_threadsafe(_resolve, future, outcome)
            except RuntimeError:  # that request's loop is closed: nobody left to tell
                continue

    @property
    def count(self) -> int:
        return self._count


def _resolve(future: asyncio.Future[OutcomeRecord], outcome: OutcomeRecord) -> None:
    if not future.done():
        future.set_result(outcome)
