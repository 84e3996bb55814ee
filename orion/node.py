"""`orion node start`: Ray on one machine of a cluster, with Orion's settings.

The cluster files' start commands call it on every node (`cluster/orion.yaml`), so the
settings Serve reads at `ray start` (direct ingress, its replica port range, drain period)
are the same on every node and the same as on one machine. The node binds its own address
(never the single-node loopback switch); pass --node-ip on a machine with several.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orion.config import Settings
from orion.stack import ray_env

RAY_START_TIMEOUT_S = 120.0  # a head starts GCS, raylet and dashboard in ~10-20 s


class NodeError(RuntimeError):
    """`ray start` failed or the node's address could not be found."""


def node_address() -> str:
    """The machine's first global IPv4 address (a lab node has exactly one)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True, text=True, timeout=10, check=False,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            return fields[fields.index("inet") + 1].split("/")[0]
    raise NodeError("no global IPv4 address on this machine: pass --node-ip")


def ray_start_argv(
    settings: Settings, node_ip: str, head_address: str | None, extra: list[str]
) -> list[str]:
    """`ray start` for the head (head_address None) or a worker joining head_address."""
    ray_cli = str(Path(sys.executable).parent / "ray")
    common = [ray_cli, "start", "--disable-usage-stats", f"--node-ip-address={node_ip}"]
    if head_address is None:
        return [
            *common, "--head", f"--port={settings.ray_gcs_port}",
            f"--dashboard-host={node_ip}", f"--dashboard-port={settings.ray_dashboard_port}",
            *extra,
        ]  # fmt: skip
    return [*common, f"--address={head_address}", *extra]


def start(settings: Settings, node_ip: str, head_address: str | None, extra: list[str]) -> None:
    cluster = settings.model_copy(update={"ray_address": head_address or "auto"})
    env = dict(os.environ, **ray_env(cluster))
    argv = ray_start_argv(settings, node_ip, head_address, extra)
    done = subprocess.run(argv, env=env, timeout=RAY_START_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise NodeError(f"ray start exited with {done.returncode}")
