"""Where shards and orchestrators go on a cluster: every worker before the head, round robin,
the same way for the same cluster."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orion.actors.placement import Node, placement_order, spread

HEAD = Node("h", "10.0.0.1", head=True)
W1 = Node("w1", "10.0.0.2", head=False)
W2 = Node("w2", "10.0.0.3", head=False)


def test_workers_come_first_by_address_and_the_head_last() -> None:
    assert placement_order([HEAD, W2, W1]) == ["w1", "w2", "h"]


def test_the_lab_shape_gives_every_worker_an_actor_and_the_shards_distinct_nodes() -> None:
    """Two shards then two orchestrators on a head and two workers."""
    where = spread(placement_order([HEAD, W1, W2]), 4)
    shards, orchestrators = where[:2], where[2:]
    assert shards == ["w1", "w2"]
    assert orchestrators == ["h", "w1"]


def test_no_node_is_an_error_not_an_empty_placement() -> None:
    with pytest.raises(ValueError, match="no node"):
        spread([], 1)


@given(nodes=st.integers(1, 6), count=st.integers(0, 40))
def test_counts_differ_by_at_most_one_and_workers_fill_first(nodes: int, count: int) -> None:
    cluster = [Node(f"n{i}", f"10.0.0.{i}", head=i == 0) for i in range(nodes)]
    order = placement_order(cluster)
    where = spread(order, count)
    per_node = [where.count(n) for n in order]
    assert sum(per_node) == count
    assert max(per_node) - min(per_node) <= 1
    assert per_node == sorted(per_node, reverse=True)  # the head (last) never gets more
