"""Waiters for final transfer outcomes, fed from another thread (the results-topic consumer).

Responsibilities: requests register an asyncio future per transfer id they wait on; the
consumer thread calls `deliver` for every outcome it reads. Guarantees:
- `deliver` is safe from any thread: futures are resolved on their own event loop through
  `call_soon_threadsafe`, and it costs one dict lookup when nobody waits on that id.
- The number of registered waiters is bounded (WAITERS_MAX); past it `register` returns None
  and the caller answers with the current status instead of waiting.
- An outcome read before a waiter registered is not seen here: callers check PostgreSQL once
  after registering (shards publish only after commit, so the row is there by then).

Listening on demand (`on_demand=True`, what the API's feed uses): every outcome of the whole
system flows through the results topic, and reading it cost an API replica a fifth of its CPU
under batch load while nobody waited. So the feed reads only while someone waits: it stops
once no one has waited for a while (`try_quiet`), and a waiter's `register` wakes it
(`wanted`); it then repositions at the topic's end and calls `mark_listening`. A waiter awaits
`listening()` before its PostgreSQL check: an outcome published before the feed's new
position was committed before it, so that check sees it; every later one reaches `deliver`.
Without `on_demand` (no feed behind it, as in unit tests) `listening()` is true until a feed
says otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from orion.messages import OutcomeRecord

WAITERS_MAX = 10_000  # each holds an open HTTP request; beyond this, answer without waiting


class OutcomeWaiters:
    def __init__(self, waiters_max: int = WAITERS_MAX, on_demand: bool = False) -> None:
        self._waiters_max = waiters_max
        self._lock = threading.Lock()
        self._by_id: dict[str, list[asyncio.Future[OutcomeRecord]]] = {}
        self._count = 0
        self._listening = not on_demand  # the feed reads every outcome from here on
        self._listeners: list[asyncio.Future[None]] = []
        self.wanted = threading.Event()  # set while a waiter needs a feed that is not listening

    def register(self, transfer_id: str) -> asyncio.Future[OutcomeRecord] | None:
        """A future resolved with the outcome of `transfer_id`; None when at capacity."""
        future: asyncio.Future[OutcomeRecord] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._count >= self._waiters_max:
                return None
            self._by_id.setdefault(transfer_id, []).append(future)
            self._count += 1
            if not self._listening:
                self.wanted.set()
        return future

    async def listening(self, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until the feed reads every outcome published from now on;
        False if it did not get there in time (the broker is away)."""
        with self._lock:
            if self._listening:
                return True
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._listeners.append(ready)
            self.wanted.set()
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                if ready in self._listeners:
                    self._listeners.remove(ready)

    def mark_listening(self) -> None:
        """The feed's thread: positioned at the topic's end, it now reads every outcome."""
        with self._lock:
            self._listening = True
            self.wanted.clear()
            listeners, self._listeners = self._listeners, []
        for ready in listeners:
            _on_its_loop(ready, _set_done, ready)

    def mark_deaf(self) -> None:
        """The feed's thread: it lost its place (reconnecting); waiters from now on wait
        for `mark_listening`."""
        with self._lock:
            self._listening = False
            if self._count or self._listeners:
                self.wanted.set()

    def try_quiet(self) -> bool:
        """The feed's thread: stop listening if nobody waits (atomically with `register`)."""
        with self._lock:
            if self._count or self._listeners:
                return False
            self._listening = False
            return True

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
            _on_its_loop(future, _resolve, future, outcome)

    @property
    def count(self) -> int:
        return self._count


def _on_its_loop(future: asyncio.Future[Any], callback: Callable[..., None], *args: Any) -> None:
    """Run `callback(*args)` on `future`'s event loop, from any thread."""
    with contextlib.suppress(RuntimeError):  # that request's loop is closed: nobody to tell
        future.get_loop().call_soon_threadsafe(callback, *args)


def _set_done(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _resolve(future: asyncio.Future[OutcomeRecord], outcome: OutcomeRecord) -> None:
    if not future.done():
        future.set_result(outcome)
