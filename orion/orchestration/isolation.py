"""Settling a batch that may hold a poison record: split it until the record stands alone.

Responsibilities: given a batch and a way to settle a batch in one transaction, settle it; if
the settlement fails because of the data of some record (the caller's `is_record_failure`
says which failures those are), settle each half on its own, recursively, so every other
record of the batch settles normally, and the failing record ends alone. A lone failing
record gets one more chance as a final rejection (`reject`), and if even that cannot be
stored, it is handed back as `Unsettleable`, for the caller to dead-letter.

Guarantees:
- Bounded: a batch of n records with k poison records costs at most about 2·k·log2(n) + 1
  settlement attempts, each its own transaction; nothing is ever retried as it was.
- Order kept: halves are settled left then right, so transfers of one account settle in the
  order they came (each settlement takes a later settlement sequence than the previous one).
- Results come back in batch order, one per record.
- Any other failure (the database or broker is down, a shard died) propagates untouched:
  infrastructure is retried by the orchestrator with backoff, never isolated record by record.
No I/O here: the caller passes the three operations in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")  # a record of the batch
Out = TypeVar("Out")  # the outcome of one record

ERROR_TEXT_CHARS_MAX = 300  # one line of the database's complaint is enough to diagnose


@dataclass(frozen=True, slots=True)
class Unsettleable(Generic[R]):
    """A record that could not be stored even as a rejection, and why."""

    record: R
    error: str


def settle_isolating(
    batch: Sequence[R],
    settle: Callable[[Sequence[R]], list[Out]],
    is_record_failure: Callable[[BaseException], bool],
    reject: Callable[[R, BaseException], Out],
) -> list[Out | Unsettleable[R]]:
    """Settle `batch`; isolate and finalise the records whose data makes settlement fail."""
    if not batch:
        return []
    try:
        return list(settle(batch))
    except Exception as err:
        if not is_record_failure(err):
            raise
        if len(batch) == 1:
            return [_final_rejection(batch[0], err, is_record_failure, reject)]
    middle = len(batch) // 2
    return [
        *settle_isolating(batch[:middle], settle, is_record_failure, reject),
        *settle_isolating(batch[middle:], settle, is_record_failure, reject),
    ]


def _final_rejection(
    record: R,
    cause: BaseException,
    is_record_failure: Callable[[BaseException], bool],
    reject: Callable[[R, BaseException], Out],
) -> Out | Unsettleable[R]:
    try:
        return reject(record, cause)
    except Exception as err:
        if not is_record_failure(err):
            raise
        return Unsettleable(record, describe(err))


def describe(err: BaseException) -> str:
    """One bounded line naming the failure."""
    first = (str(err).splitlines() or [""])[0]
    return f"{type(err).__name__}: {first}"[:ERROR_TEXT_CHARS_MAX]
