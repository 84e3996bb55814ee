"""Per-record isolation of a failing batch (orion.orchestration.isolation), with fakes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orion.orchestration.isolation import Unsettleable, settle_isolating


class PoisonError(ValueError):
    """What the fake database raises for a record it refuses."""


class DownError(ConnectionError):
    """What the fake database raises when it is unreachable."""


class FakeLedger:
    """Settles a batch atomically unless it holds a poison record; counts attempts."""

    def __init__(self, poison: set[int], unstorable: frozenset[int] = frozenset()) -> None:
        self.poison, self.unstorable = poison, unstorable
        self.settled: list[int] = []  # in settlement order
        self.rejected: list[int] = []
        self.attempts = 0

    def settle(self, batch: Sequence[int]) -> list[str]:
        self.attempts += 1
        if any(r in self.poison for r in batch):
            raise PoisonError("refused")
        self.settled.extend(batch)
        return [f"ok {r}" for r in batch]

    def reject(self, record: int, cause: BaseException) -> str:
        assert isinstance(cause, PoisonError)
        if record in self.unstorable:
            raise PoisonError("refused again")
        self.rejected.append(record)
        return f"rejected {record}"


def is_poison(err: BaseException) -> bool:
    return isinstance(err, PoisonError)


def test_one_poison_record_is_rejected_and_the_rest_settle_in_order() -> None:
    """A poison record in the middle becomes its own rejection; every other record settles,
    in the batch's order, with results in batch order."""
    ledger = FakeLedger({5})
    results = settle_isolating(list(range(10)), ledger.settle, is_poison, ledger.reject)
    assert results == [
        *(f"ok {r}" for r in range(5)),
        "rejected 5",
        *(f"ok {r}" for r in range(6, 10)),
    ]
    assert ledger.settled == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert ledger.rejected == [5]


def test_unstorable_record_is_handed_back_for_the_dlq() -> None:
    """A record that even the rejection cannot store comes back as Unsettleable with why."""
    ledger = FakeLedger({2}, frozenset({2}))
    results = settle_isolating([1, 2, 3], ledger.settle, is_poison, ledger.reject)
    assert results[0] == "ok 1" and results[2] == "ok 3"
    assert isinstance(results[1], Unsettleable)
    assert results[1].record == 2 and "refused again" in results[1].error


def test_infrastructure_failure_is_not_isolated() -> None:
    """A failure that is not the records' fault propagates at once, nothing split."""
    calls = []

    def down(batch: Sequence[int]) -> list[str]:
        calls.append(list(batch))
        raise DownError("database unreachable")

    with pytest.raises(DownError):
        settle_isolating([1, 2, 3, 4], down, is_poison, lambda r, e: "never")
    assert calls == [[1, 2, 3, 4]]


def test_clean_batch_is_one_attempt() -> None:
    """Positive control: no poison, one settlement, nothing rejected."""
    ledger = FakeLedger(set())
    assert settle_isolating([1, 2, 3], ledger.settle, is_poison, ledger.reject) == [
        "ok 1", "ok 2", "ok 3"
    ]  # fmt: skip
    assert ledger.attempts == 1


@given(st.integers(1, 1000), st.sets(st.integers(0, 999), max_size=8))
def test_every_record_gets_exactly_one_result_within_the_bound(
    size: int, poison_at: set[int]
) -> None:
    """Any batch with any poison records: one result per record, in order, poison ones
    rejected and the rest settled in order, in at most 2·k·(log2 n + 1) + 1 attempts."""
    poison = {p for p in poison_at if p < size}
    ledger = FakeLedger(poison)
    results = settle_isolating(list(range(size)), ledger.settle, is_poison, ledger.reject)
    assert len(results) == size
    assert ledger.settled == [r for r in range(size) if r not in poison]
    assert sorted(ledger.rejected) == sorted(poison)
    assert ledger.attempts <= 2 * len(poison) * (size.bit_length() + 1) + 1
