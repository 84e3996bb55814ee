"""`orion lab up | status | kill-node | partition | heal | down | env`.

`up` builds the hosts (network, cgroup, sshd), starts Kafka, PostgreSQL, Redis and the lab's
API front in the infrastructure host, launches the cluster with `ray up` and deploys Orion
with `ray exec`. `down` removes every namespace, link, cgroup, process and file the lab made,
also after a failed `up`. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orion.config import Settings
from orion.infra.api_front import API_REPLICA_PORTS, ApiFront, haproxy_binary
from orion.infra.kafka_broker import KafkaBroker
from orion.infra.process import port_open
from orion.lab import cluster, layout, net, nodes
from orion.lab.layout import Node, Paths

Echo = Callable[[str], None]
INFRA_UP_TIMEOUT_S = 600.0  # Kafka's JVM, PostgreSQL's initdb: a cold start is slow here
SSHD_READY_TIMEOUT_S = 30.0
POLL_S = 0.5
KEYGEN_TIMEOUT_S = 30.0
SSHD_PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it
RAY_STATE_FILES = ("cluster-orion-lab.state", "cluster-orion-lab.lock")
API_PORT = 8000  # the lab's API front, in the infrastructure host
# Redis refuses clients off loopback without a password. The lab's network is private to
# this machine, so a fixed one says what it is: a lab.
LAB_REDIS_PASSWORD = "orion-lab"


@dataclass(frozen=True)
class LabShape:
    nodes: int
    orchestrators: int
    api_replicas: int


def paths_of(settings: Settings) -> Paths:
    return Paths(settings.state_dir.resolve() / "lab")


def infra_env(paths: Paths) -> dict[str, str]:
    """Settings of the infrastructure host's `orion infra up`: it binds the host's address."""
    return {
        "ORION_REDIS_PASSWORD": LAB_REDIS_PASSWORD,
        "ORION_HOST": layout.INFRA_ADDRESS,
        "ORION_STATE_DIR": str(paths.infra_state),
        "ORION_POSTGRES_CLIENTS": f"{layout.SUBNET_PREFIX}.0/{layout.PREFIX_LEN}",
        "ORION_RAY_TEMP_DIR": str(paths.infra_state / "ray"),
    }


def client_env() -> dict[str, str]:
    """Settings that point Orion's tools (and the cluster) at the lab's services."""
    return {
        "ORION_KAFKA_HOST": layout.INFRA_ADDRESS,
        "ORION_POSTGRES_HOST": layout.INFRA_ADDRESS,
        "ORION_REDIS_HOST": layout.INFRA_ADDRESS,
        "ORION_REDIS_PASSWORD": LAB_REDIS_PASSWORD,
        "ORION_MANAGE_INFRA": "false",
    }


def app_env(shape: LabShape) -> dict[str, str]:
    return client_env() | {
        "ORION_RAY_ADDRESS": "auto",
        "ORION_ORCHESTRATORS": str(shape.orchestrators),
        "ORION_API_REPLICAS": str(shape.api_replicas),
        "ORION_STATE_DIR": "/tmp/orion-state",  # the head's private /tmp
    }


def api_url() -> str:
    return f"http://{layout.INFRA_ADDRESS}:{API_PORT}"


# --- up ---------------------------------------------------------------------------------


def up(settings: Settings, shape: LabShape, echo: Echo) -> float:
    """Build the lab and deploy Orion on it; seconds it took."""
    started = time.monotonic()
    paths = paths_of(settings)
    hosts = layout.nodes(shape.nodes)
    if paths.state_file.exists() or layout.BRIDGE in net.links():
        # A half-built lab keeps its logs for a look; `down` removes it whatever its state.
        raise RuntimeError("a lab is up (or a failed `up` left one): `orion lab down` first")
    _require_tools()
    _keys(paths)
    _remember(paths, shape)
    net.ensure_bridge()
    for host in [layout.infra(), *hosts]:
        net.ensure_host(host)
    echo(f"network: bridge {layout.BRIDGE}, {len(hosts)} nodes and the infrastructure host")
    _start_infra(settings, paths, echo)
    _start_front(settings, paths, hosts)
    for node in hosts:
        _start_sshd(node, paths)
    echo("sshd: listening in every node")
    cluster.write_config(hosts, paths)
    cluster.ray_up(paths)
    cluster.await_nodes(hosts[0], {n.address for n in hosts})
    echo(f"ray up: {len(hosts)} nodes in the cluster")
    cluster.ray_exec(paths, cluster.deploy_command(app_env(shape)))
    echo(f"orion up: {shape.orchestrators} orchestrator(s), {shape.api_replicas} API replica(s)")
    return time.monotonic() - started


def _require_tools() -> None:
    missing = [t for t in ("ip", "ssh", "ssh-keygen", "rsync") if shutil.which(t) is None]
    missing += [] if Path(nodes.SSHD).exists() else ["sshd (openssh-server)"]
    missing += [] if haproxy_binary() else ["haproxy"]
    if not (layout.CGROUP_ROOT / "cgroup.procs").exists():
        missing.append(f"cgroup v2 at {layout.CGROUP_ROOT}")
    if missing:
        raise RuntimeError("the lab needs: " + ", ".join(missing) + " (run `make install`)")


def _keys(paths: Paths) -> None:
    """The lab's own SSH client key and sshd host key (never the machine's)."""
    paths.ssh_key.parent.mkdir(parents=True, exist_ok=True)
    for key in (paths.ssh_key, paths.host_key):
        if not key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                check=True, timeout=KEYGEN_TIMEOUT_S, capture_output=True,
            )  # fmt: skip
    authorized = paths.ssh_key.parent / "authorized_keys"
    authorized.write_text(paths.ssh_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)


def _remember(paths: Paths, shape: LabShape) -> None:
    created_privsep = not SSHD_PRIVSEP_DIR.exists()
    old = _state(paths)
    SSHD_PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    state = {
        "nodes": shape.nodes,
        "orchestrators": shape.orchestrators,
        "api_replicas": shape.api_replicas,
        "created_privsep": created_privsep or bool(old.get("created_privsep")),
    }
    paths.state_file.write_text(json.dumps(state))


def _state(paths: Paths) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(paths.state_file.read_text())
        return state
    except FileNotFoundError:
        return {}


def _kafka_jars(settings: Settings, paths: Paths) -> None:
    """The infrastructure host has no network beyond the lab: it uses the jars this machine
    resolved from Maven Central (resolving them here first if need be)."""
    broker = KafkaBroker(settings)
    broker.resolve_jars()
    link = paths.infra_state / "kafka" / "libs"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(broker.libs)


def _start_infra(settings: Settings, paths: Paths, echo: Echo) -> None:
    _kafka_jars(settings, paths)
    orion = str(cluster.REPO / ".venv" / "bin" / "orion")
    proc = nodes.launch(layout.infra(), paths, [orion, "infra", "up"], env=infra_env(paths))
    code = proc.wait(timeout=INFRA_UP_TIMEOUT_S)
    if code != 0:
        tail = paths.log(layout.INFRA).read_text(errors="replace")[-2000:]
        raise RuntimeError(f"orion infra up in the infrastructure host failed:\n{tail}")
    echo(f"infrastructure: Kafka, PostgreSQL, Redis on {layout.INFRA_ADDRESS}")


def _start_front(settings: Settings, paths: Paths, hosts: list[Node]) -> None:
    """HAProxy in the infrastructure host, over every node's replica ports: one API address
    that survives any node."""
    front_settings = settings.model_copy(
        update={"host": layout.INFRA_ADDRESS, "api_port": API_PORT}
    )
    backends = [(n.address, settings.api_replica_port + k)
                for n in hosts for k in range(API_REPLICA_PORTS)]  # fmt: skip
    front = ApiFront(front_settings, backends, across_nodes=True)
    config = paths.root / "haproxy.cfg"
    config.write_text(front.config())
    binary = haproxy_binary() or "haproxy"
    nodes.launch(layout.infra(), paths, [binary, "-db", "-f", str(config)])


def _start_sshd(node: Node, paths: Paths) -> None:
    if not port_open(node.address, layout.SSH_PORT):
        nodes.start_sshd(node, paths)
    deadline = time.monotonic() + SSHD_READY_TIMEOUT_S
    while not port_open(node.address, layout.SSH_PORT):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"sshd of lab node {node.name} did not listen; see {paths.log(node.name)}"
            )
        time.sleep(POLL_S)


# --- status, faults, down ---------------------------------------------------------------


def status(settings: Settings) -> dict[str, Any]:
    """The lab as JSON: its API address and, per node, whether it lives and what runs on it."""
    state = _state(paths_of(settings))
    count = int(state.get("nodes", 0))
    hosts = layout.nodes(count) if count else []
    actors = _actors_by_ip(hosts[0]) if hosts else {}
    return {
        "api": api_url(),
        "nodes": [
            {
                "name": n.name,
                "address": n.address,
                "alive": nodes.alive(n),
                "linked": net.linked(n),
                "head": n.is_head,
                "cpu_seconds": round(nodes.cpu_seconds(n), 1),
                "cpu_seconds_by_part": nodes.cpu_by_part(n),
                "actors": actors.get(n.address, []),
            }
            for n in hosts
        ],
    }


def _actors_by_ip(head: Node) -> dict[str, list[dict[str, str]]]:
    """Orion's actors and the API replicas, by node address (Ray's state API on the head)."""
    try:
        found = cluster.state_api(head, "actors")
        node_ips = {n["node_id"]: n["node_ip"] for n in cluster.state_api(head, "nodes")}
    except (OSError, KeyError, ValueError):
        return {}
    out: dict[str, list[dict[str, str]]] = {}
    for actor in found:
        kind = _kind(actor)
        if kind is None or actor.get("state") != "ALIVE":
            continue
        ip = node_ips.get(actor.get("node_id", ""), "?")
        out.setdefault(ip, []).append({"kind": kind, "id": actor.get("name") or actor["actor_id"]})
    return out


def _kind(actor: dict[str, Any]) -> str | None:
    name, cls = str(actor.get("name") or ""), str(actor.get("class_name") or "")
    if name.startswith("orion-orchestrator"):
        return "orchestrator"
    if name.startswith("orion-shard-"):
        return "shard"
    if "ServeReplica" in cls and "orion-api" in cls:
        return "api"
    return None


def kill_node(settings: Settings, name: str) -> None:
    """kill -9 every process of the node (its cgroup) and cut its link."""
    node = layout.node_named(name, int(_state(paths_of(settings)).get("nodes", 0)))
    nodes.kill(node)
    net.cut(node)


def partition(settings: Settings, name: str) -> None:
    net.cut(layout.node_named(name, int(_state(paths_of(settings)).get("nodes", 0))))


def heal(settings: Settings, name: str) -> None:
    net.heal(layout.node_named(name, int(_state(paths_of(settings)).get("nodes", 0))))


def down(settings: Settings, echo: Echo) -> None:
    """Remove everything the lab made, whatever state it is in."""
    paths = paths_of(settings)
    state = _state(paths)
    hosts = [*layout.nodes(layout.NODES_MAX), layout.infra()]  # whatever an `up` left
    for host in hosts:
        nodes.kill(host)
        nodes.remove_cgroup(host)
        net.remove_host(host)
    net.remove_bridge()
    for name in RAY_STATE_FILES:
        (Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / name).unlink(missing_ok=True)
    if nodes.MACHINE_TMP.is_dir():
        nodes.MACHINE_TMP.rmdir()  # empty outside the hosts' mount namespaces
    if state.get("created_privsep") and SSHD_PRIVSEP_DIR.exists():
        SSHD_PRIVSEP_DIR.rmdir()
    shutil.rmtree(paths.root, ignore_errors=True)
    echo("lab: every namespace, link, cgroup, process and file of the lab removed")


def env_lines() -> list[str]:
    """`eval "$(orion lab env)"`: point `orion accounts seed`, `orion audit` at the lab."""
    return [f"export {k}={v}" for k, v in sorted(client_env().items())]
