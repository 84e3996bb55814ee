"""Stable shard routing (orion.domain.routing.shard_for)."""

from __future__ import annotations

from collections import Counter

import pytest

from orion.domain.routing import shard_for

PINNED = {
    "@world": [0, 1, 3, 2, 15],
    "alice": [0, 1, 1, 2, 9],
    "bob": [0, 0, 2, 0, 2],
    "40817810000000001": [0, 1, 3, 2, 7],
    "": [0, 0, 0, 0, 4],
}
SHARD_COUNTS = (1, 2, 4, 7, 16)


@pytest.mark.parametrize(("account_id", "shards"), sorted(PINNED.items()))
def test_shard_for_is_pinned(account_id: str, shards: list[int]) -> None:
    """Known ids map to known shards: the hash can never silently change between
    releases, processes or Python versions (built-in hash() would fail this)."""
    assert [shard_for(account_id, count) for count in SHARD_COUNTS] == shards


def test_shard_for_is_roughly_even() -> None:
    """10k seed-style account ids spread over 4 shards within 10% of the mean each."""
    counts = Counter(shard_for(f"4081781{n:010d}", 4) for n in range(10_000))
    assert set(counts) == {0, 1, 2, 3}
    assert all(2_250 <= count <= 2_750 for count in counts.values())


def test_shard_for_stays_in_range() -> None:
    """Every result is a valid shard index."""
    assert all(0 <= shard_for(str(n), 3) < 3 for n in range(1_000))


@pytest.mark.parametrize("count", [0, -1])
def test_shard_for_refuses_no_shards(count: int) -> None:
    """A shard count below one is a configuration error, not a division by zero."""
    with pytest.raises(ValueError, match="shard_count"):
        shard_for("alice", count)
