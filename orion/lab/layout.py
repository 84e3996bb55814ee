"""The lab's names, addresses and paths: one place, pure.

Node n (1-based) is namespace `orion-lab-n<n>` at 10.77.0.(10 + n); the infrastructure
namespace `orion-lab-infra` is at 10.77.0.2; the root namespace has 10.77.0.1 on the bridge.
Node 1 is the Ray head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SUBNET_PREFIX = "10.77.0"  # a private /24 no Orion machine is expected to use otherwise
PREFIX_LEN = 24
BRIDGE = "orionlab0"
ROOT_ADDRESS = f"{SUBNET_PREFIX}.1"
INFRA = "infra"
INFRA_ADDRESS = f"{SUBNET_PREFIX}.2"
NODE_ADDRESS_BASE = 10  # node n is at .(10 + n)
NODES_MAX = 9  # .11-.19; two cores carry three comfortably
NAMESPACE_PREFIX = "orion-lab-"
CGROUP_ROOT = Path("/sys/fs/cgroup/unified")  # cgroup v2 (cgroup.kill needs Linux 5.14)
CLUSTER_NAME = "orion-lab"
SSH_PORT = 22


@dataclass(frozen=True, slots=True)
class Node:
    """One lab host: a node of the Ray cluster, or the infrastructure host."""

    name: str  # "n1", "n2", ..., or "infra"
    address: str

    @property
    def namespace(self) -> str:
        return NAMESPACE_PREFIX + self.name

    @property
    def host_link(self) -> str:
        """The veth end in the root namespace, on the bridge (15 characters at most)."""
        return f"olab-{self.name}"

    @property
    def cgroup(self) -> Path:
        return CGROUP_ROOT / (NAMESPACE_PREFIX + self.name)

    @property
    def is_head(self) -> bool:
        return self.name == "n1"


def nodes(count: int) -> list[Node]:
    """The cluster's nodes, head first."""
    if not 1 <= count <= NODES_MAX:
        raise ValueError(f"--nodes must be in 1..{NODES_MAX}, got {count}")
    return [Node(f"n{n}", f"{SUBNET_PREFIX}.{NODE_ADDRESS_BASE + n}") for n in range(1, count + 1)]


def infra() -> Node:
    return Node(INFRA, INFRA_ADDRESS)


def node_named(name: str, count: int) -> Node:
    for node in nodes(count):
        if node.name == name:
            return node
    raise ValueError(f"no lab node named {name!r}; nodes are n1..n{count}")


@dataclass(frozen=True, slots=True)
class Paths:
    """Everything the lab writes, under the state dir's `lab/` (removed by `lab down`)."""

    root: Path

    @property
    def ssh_key(self) -> Path:
        return self.root / "ssh" / "lab_key"

    @property
    def host_key(self) -> Path:
        return self.root / "ssh" / "host_key"

    @property
    def cluster_file(self) -> Path:
        return self.root / "orion-lab.yaml"

    @property
    def state_file(self) -> Path:
        return self.root / "lab.json"

    @property
    def infra_state(self) -> Path:
        return self.root / "infra-state"

    def node_dir(self, node: Node) -> Path:
        return self.root / "nodes" / node.name

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"
