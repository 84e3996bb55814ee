"""The lab's Ray cluster: launched by `ray up` on a variant of cluster/orion.yaml, Orion
deployed onto it by `ray exec` of `orion up`: the same path a user takes with real machines.

The variant differs from the shipped file only where a lab must: the nodes' addresses, the
lab's SSH user and key, and no copy or install step (every lab node sees this repository and
its virtualenv at the same path, as nodes sharing a home directory would).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from orion.lab.layout import CLUSTER_NAME, Node, Paths

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "cluster" / "orion.yaml"
RAY_UP_TIMEOUT_S = 600.0  # SSH, then the head's Ray: ~1 min here; bounded all the same
RAY_EXEC_TIMEOUT_S = 600.0
NODES_JOIN_TIMEOUT_S = 300.0  # the head's autoscaler starts the workers over SSH
POLL_S = 2.0
DASHBOARD_PORT = 8265
HTTP_TIMEOUT_S = 5.0


def cluster_config(nodes: list[Node], paths: Paths) -> dict[str, Any]:
    """cluster/orion.yaml, pointed at the lab's nodes."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    head, workers = nodes[0], nodes[1:]
    orion = REPO / ".venv" / "bin" / "orion"
    config["cluster_name"] = CLUSTER_NAME
    config["provider"] = {
        "type": "local",
        "head_ip": head.address,
        "worker_ips": [w.address for w in workers],
    }
    config["auth"] = {"ssh_user": "root", "ssh_private_key": str(paths.ssh_key)}
    config["min_workers"] = config["max_workers"] = len(workers)
    config["file_mounts"] = {}
    config["setup_commands"] = [f"test -x {orion}"]
    config["head_start_ray_commands"] = [
        c.replace("~/orion/.venv/bin/orion", str(orion)) for c in config["head_start_ray_commands"]
    ]
    config["worker_start_ray_commands"] = [
        c.replace("~/orion/.venv/bin/orion", str(orion))
        for c in config["worker_start_ray_commands"]
    ]
    return config


def write_config(nodes: list[Node], paths: Paths) -> Path:
    paths.cluster_file.parent.mkdir(parents=True, exist_ok=True)
    paths.cluster_file.write_text(yaml.safe_dump(cluster_config(nodes, paths), sort_keys=False))
    return paths.cluster_file


def _ray(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    ray_cli = str(Path(sys.executable).parent / "ray")
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    return subprocess.run(
        [ray_cli, *args], capture_output=True, text=True, timeout=timeout_s, check=False,
        env=env,
    )  # fmt: skip


def ray_up(paths: Paths) -> None:
    done = _ray(
        "up", "-y", "--no-config-cache", str(paths.cluster_file), timeout_s=RAY_UP_TIMEOUT_S
    )
    if done.returncode != 0:
        raise RuntimeError("ray up failed: " + (done.stdout + done.stderr)[-3000:])


def ray_exec(paths: Paths, command: str) -> str:
    """Run `command` on the head over SSH (`ray exec`); its output."""
    done = _ray("exec", str(paths.cluster_file), command, timeout_s=RAY_EXEC_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"ray exec failed: {(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


def deploy_command(settings_env: dict[str, str], verb: str = "up") -> str:
    """`orion up` (or down) on the head, onto the running cluster, with the lab's settings."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(settings_env.items()))
    return f"cd {REPO} && env {exports} {REPO / '.venv' / 'bin' / 'orion'} {verb}"


def state_api(head: Node, path: str) -> list[dict[str, Any]]:
    """A list from Ray's state API on the head's dashboard (HTTP from the root namespace:
    nothing listens there)."""
    url = f"http://{head.address}:{DASHBOARD_PORT}/api/v0/{path}?limit=10000&detail=1"
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
        body = json.load(resp)
    result: list[dict[str, Any]] = body["data"]["result"]["result"]
    return result


def alive_node_ips(head: Node) -> set[str]:
    try:
        return {n["node_ip"] for n in state_api(head, "nodes") if n.get("state") == "ALIVE"}
    except (OSError, KeyError, ValueError):
        return set()


def await_nodes(head: Node, addresses: set[str]) -> None:
    deadline = time.monotonic() + NODES_JOIN_TIMEOUT_S
    while not addresses <= alive_node_ips(head):
        if time.monotonic() > deadline:
            missing = sorted(addresses - alive_node_ips(head))
            raise RuntimeError(
                f"lab nodes not in the Ray cluster after {NODES_JOIN_TIMEOUT_S:.0f} s: {missing}"
            )
        time.sleep(POLL_S)
