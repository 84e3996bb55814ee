"""Where Orion's shards and orchestrators go on a cluster, importable without Ray.

Each actor is pinned softly to one node, round robin over the nodes with the workers first
and the head last: the head also holds the cluster's control plane (and dies with it), so it
gets an actor only once every worker has one. Soft means Ray restarts an actor elsewhere when
its node is gone. Ray's SPREAD strategy, used before, is best effort: a lab came up with every
shard and orchestrator on the head (CI, 2026-12-04).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    node_id: str
    ip: str
    head: bool


def placement_order(nodes: Sequence[Node]) -> list[str]:
    """Node ids, workers first (by address, so the same cluster places the same way), the
    head last."""
    return [n.node_id for n in sorted(nodes, key=lambda n: (n.head, n.ip, n.node_id))]


def spread(order: Sequence[str], count: int) -> list[str]:
    """The node of each of `count` actors, round robin over `order`."""
    if not order:
        raise ValueError("no node to place actors on")
    return [order[k % len(order)] for k in range(count)]
