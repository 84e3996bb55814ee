"""What the orchestration engine needs from the outside world, as small Protocols.

The engine is driven through these only, so it runs in unit tests with fakes and a fake
clock; the Ray actor plugs in Kafka, Redis and Ray-handle adapters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from orion.messages import QueuedTransfer, Verdicts


@dataclass(frozen=True, slots=True)
class SourceRecord:
    partition: int
    offset: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record, or one transfer of a packed record (`index`), that goes to the DLQ."""

    partition: int
    offset: int
    value: bytes | None
    error: str
    index: int | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """A dispatched batch came back: its verdicts, or the error that ended it."""

    batch_id: str
    verdicts: Verdicts | None
    error: str | None = None


class SourceUnavailableError(ConnectionError):
    """The broker did not take a commit; nothing changed, so it may simply be tried again."""


class TransferSource(Protocol):
    def poll(self, max_records: int, timeout_ms: int) -> list[SourceRecord]: ...
    def commit(self, positions: Mapping[int, int]) -> None:
        """Commit these positions, or raise SourceUnavailableError having changed nothing."""

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def dead_letter(self, records: Sequence[DeadLetter]) -> None: ...


class LocksUnavailableError(ConnectionError):
    """The lock store did not answer; the call changed nothing we rely on."""


class AccountLocks(Protocol):
    """Leases on accounts; every method raises LocksUnavailableError when the store is down."""

    def acquire(self, accounts: Iterable[str]) -> set[str]: ...
    def renew(self, accounts: Iterable[str]) -> int: ...
    def release(self, accounts: Iterable[str]) -> int: ...


class ShardPool(Protocol):
    @property
    def shard_count(self) -> int: ...
    def dispatch(self, shard: int, batch_id: str, batch: Sequence[QueuedTransfer]) -> None: ...
    def completed(self, timeout_s: float) -> list[Completion]: ...


class Clock(Protocol):
    def __call__(self) -> float: ...
