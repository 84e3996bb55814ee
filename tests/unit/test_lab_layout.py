"""The lab's pure parts: node addresses and the checkout paths a host's private /tmp must
bind back (a clone under /tmp, as CI may make, must stay visible inside every lab host)."""

from __future__ import annotations

from pathlib import Path

from orion.lab import layout
from orion.lab.nodes import _outermost_under_tmp


def test_paths_under_tmp_are_bound_back_outermost_only() -> None:
    repo, state = Path("/tmp/fresh"), Path("/tmp/fresh/.orion/lab")
    assert _outermost_under_tmp([repo, state]) == [repo]
    assert _outermost_under_tmp([Path("/work/main"), Path("/work/main/.orion/lab")]) == []
    assert _outermost_under_tmp([Path("/work/main"), Path("/tmp/state/lab")]) == [
        Path("/tmp/state/lab")
    ]
    assert _outermost_under_tmp([Path("/tmpfoo/x")]) == []  # not under /tmp


def test_nodes_have_distinct_addresses_on_the_lab_subnet() -> None:
    nodes = layout.nodes(3)
    assert [n.name for n in nodes] == ["n1", "n2", "n3"]
    addresses = {n.address for n in nodes} | {layout.INFRA_ADDRESS}
    assert len(addresses) == 4
    assert all(a.startswith(layout.SUBNET_PREFIX + ".") for a in addresses)
    assert nodes[0].is_head and not nodes[1].is_head
