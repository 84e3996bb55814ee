"""Contiguous settled offsets per partition (orion.domain.offsets.OffsetTracker)."""

from __future__ import annotations

import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from orion.domain.offsets import OffsetError, OffsetTracker

PARTITIONS = (0, 1, 2)


def test_does_not_commit_past_an_in_flight_message() -> None:
    """Regression: with offsets 0 and 2 settled but 1 in flight, the position offered is 1
    (a crash must replay 1), never 3."""
    tracker = OffsetTracker()
    for offset in (0, 1, 2):
        tracker.track(7, offset)
    tracker.settle(7, 2)
    tracker.settle(7, 0)
    assert tracker.committable() == {7: 1}
    assert tracker.in_flight(7) == 1


def test_commits_everything_once_the_in_flight_message_settles() -> None:
    """Positive control for the test above: settling offset 1 releases the whole prefix."""
    tracker = OffsetTracker()
    for offset in (0, 1, 2):
        tracker.track(7, offset)
    for offset in (2, 0, 1):
        tracker.settle(7, offset)
    assert tracker.committable() == {7: 3}
    assert tracker.in_flight(7) == 0


def test_gaps_between_offsets_do_not_hold_the_position_back() -> None:
    """Offsets Kafka never delivered (markers, compaction) are skipped over."""
    tracker = OffsetTracker()
    for offset in (10, 15, 40):
        tracker.track(0, offset)
    assert tracker.committable() == {}
    tracker.settle(0, 10)
    tracker.settle(0, 15)
    assert tracker.committable() == {0: 16}
    tracker.settle(0, 40)
    assert tracker.committable() == {0: 41}


def test_a_position_is_offered_once_per_advance() -> None:
    """After mark_committed, a partition is not offered again until it moves further."""
    tracker = OffsetTracker()
    tracker.track(0, 0)
    tracker.track(1, 0)
    tracker.settle(0, 0)
    tracker.settle(1, 0)
    tracker.mark_committed({0: 1})
    assert tracker.committable() == {1: 1}
    tracker.mark_committed({1: 1, 9: 5})  # partition 9 unknown (revoked): ignored
    assert tracker.committable() == {}
    tracker.track(0, 1)
    tracker.settle(0, 1)
    assert tracker.committable() == {0: 2}


def test_misuse_raises() -> None:
    """Decreasing offsets, settling what is not in flight and marking past the settled
    prefix all raise OffsetError instead of moving the position."""
    tracker = OffsetTracker()
    tracker.track(0, 5)
    with pytest.raises(OffsetError):
        tracker.track(0, 5)
    with pytest.raises(OffsetError):
        tracker.track(0, 4)
    with pytest.raises(OffsetError):
        tracker.settle(0, 6)
    with pytest.raises(OffsetError):
        tracker.settle(3, 5)
    with pytest.raises(OffsetError):
        tracker.mark_committed({0: 6})
    tracker.settle(0, 5)
    with pytest.raises(OffsetError):
        tracker.settle(0, 5)
    with pytest.raises(OffsetError):
        tracker.mark_committed({0: 7})
    assert tracker.committable() == {0: 6}


def test_reset_forgets_revoked_partitions_only() -> None:
    """A rebalance drops revoked partitions' state; kept partitions are untouched."""
    tracker = OffsetTracker()
    tracker.track(0, 3)
    tracker.track(1, 3)
    tracker.settle(1, 3)
    tracker.reset([0, 42])
    assert tracker.in_flight(0) == 0
    assert tracker.committable() == {1: 4}
    with pytest.raises(OffsetError):
        tracker.settle(0, 3)
    tracker.track(0, 2)  # reassigned later, replayed from an earlier committed position
    assert tracker.in_flight(0) == 1


def test_a_packed_record_is_settled_once_every_transfer_it_carries_is() -> None:
    """A record carrying three transfers holds the position until its third settles; a
    fourth settle, or a record carrying none, is misuse."""
    tracker = OffsetTracker()
    with pytest.raises(OffsetError):
        tracker.track(0, 1, 0)
    tracker.track(0, 1, 3)
    tracker.track(0, 2)
    tracker.settle(0, 2)
    tracker.settle(0, 1)
    tracker.settle(0, 1)
    assert tracker.committable() == {}
    assert tracker.in_flight(0) == 1
    tracker.settle(0, 1)
    assert tracker.committable() == {0: 3}
    with pytest.raises(OffsetError):
        tracker.settle(0, 1)


class OffsetMachine(RuleBasedStateMachine):
    """Random interleavings of track / settle / commit / reset across partitions, with
    records carrying one to four transfers, checked against a plain model: the offered
    position is always exactly one past the settled prefix, so it never passes a record
    with a transfer unsettled."""

    @initialize()
    def start(self) -> None:
        self.tracker = OffsetTracker()
        self.tracked: dict[int, list[int]] = {p: [] for p in PARTITIONS}
        self.left: dict[int, dict[int, int]] = {p: {} for p in PARTITIONS}  # offset -> unsettled
        self.committed: dict[int, int | None] = dict.fromkeys(PARTITIONS)

    def expected_position(self, partition: int) -> int | None:
        position = None
        for offset in self.tracked[partition]:
            if self.left[partition][offset]:
                break
            position = offset + 1
        return position

    def expected_committable(self) -> dict[int, int]:
        expected = {}
        for partition in PARTITIONS:
            position = self.expected_position(partition)
            committed = self.committed[partition]
            if position is not None and (committed is None or position > committed):
                expected[partition] = position
        return expected

    @rule(partition=st.sampled_from(PARTITIONS), gap=st.integers(1, 3), transfers=st.integers(1, 4))
    def track(self, partition: int, gap: int, transfers: int) -> None:
        offsets = self.tracked[partition]
        offset = (offsets[-1] if offsets else -1) + gap
        self.tracker.track(partition, offset, transfers)
        offsets.append(offset)
        self.left[partition][offset] = transfers

    @precondition(lambda self: any(self.unsettled(p) for p in PARTITIONS))
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        choices = [(p, o) for p in PARTITIONS for o in self.unsettled(p)]
        partition, offset = data.draw(st.sampled_from(choices))
        self.tracker.settle(partition, offset)
        self.left[partition][offset] -= 1

    @rule()
    def commit(self) -> None:
        positions = self.tracker.committable()
        assert positions == self.expected_committable()
        self.tracker.mark_committed(positions)
        self.committed.update(positions)
        assert self.tracker.committable() == {}

    @rule(partition=st.sampled_from(PARTITIONS))
    def revoke(self, partition: int) -> None:
        self.tracker.reset([partition])
        self.tracked[partition] = []
        self.left[partition] = {}
        self.committed[partition] = None

    @rule(seed=st.integers(0, 2**32))
    def drain(self, seed: int) -> None:
        """Settling everything, in any order, brings each partition to last + 1."""
        pending = [
            (p, o) for p in PARTITIONS for o in self.unsettled(p) for _ in range(self.left[p][o])
        ]
        random.Random(seed).shuffle(pending)
        for partition, offset in pending:
            self.tracker.settle(partition, offset)
            self.left[partition][offset] -= 1
        for partition in PARTITIONS:
            if self.tracked[partition]:
                assert self.expected_position(partition) == self.tracked[partition][-1] + 1

    @invariant()
    def agrees_with_model(self) -> None:
        assert self.tracker.committable() == self.expected_committable()
        for partition in PARTITIONS:
            assert self.tracker.in_flight(partition) == len(self.unsettled(partition))

    def unsettled(self, partition: int) -> list[int]:
        return [o for o in self.tracked[partition] if self.left[partition][o]]


TestOffsetMachine = OffsetMachine.TestCase
TestOffsetMachine.settings = settings(max_examples=250, stateful_step_count=40, deadline=None)
