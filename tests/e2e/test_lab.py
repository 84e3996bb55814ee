"""Orion on a three-node Ray cluster (`orion lab`: network namespaces on this machine,
launched by `ray up` over SSH) with two orchestrators and two API replicas keeps every
transfer exactly once, in order, while a node is partitioned, a node holding shards is
killed, and a node holding an API replica is killed.

The module stops the single-machine stack first (two cores cannot carry both), builds the
lab, runs the faults in order on one lab under seed-shaped load, and removes the lab; it runs
after every other e2e test. Numbers go to load/out/faults.json. A failure's message carries
the cluster's state (nodes, placement groups, actors, the orchestrators' logs);
ORION_LAB_KEEP=1 leaves the lab up afterwards to look further (`orion lab down` removes it).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orion.audit import run_audit
from orion.config import Settings
from orion.lab import cluster, layout, nodes
from orion.lab.commands import client_env
from tests.e2e.faults import (
    Load,
    account_for,
    orion,
    outcome_arrives,
    record,
    seed_accounts,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.stack_switch]
NODES, ORCHESTRATORS, API_REPLICAS = 3, 2, 2
ACCOUNTS = 200
WARMUP_S = 4.0
PARTITION_S = 20.0
AFTER_S = 8.0
ACCEPT_AGAIN_S = 30.0  # the lab accepts again this soon after a fault
# Serve replaces a replica lost with its node on a live node without one (one per node) by
# then; the API-node fault waits this long for a live worker that runs one.
API_REPLACED_S = 60.0
STATUS_POLL_S = 2.0


@pytest.fixture(scope="module")
def lab(system: str) -> Iterator[dict[str, Any]]:
    """The single-machine stack down, the lab up; the lab removed afterwards."""
    for args in (("down",), ("lab", "down")):  # the single-machine stack, any old lab
        done = orion(*args)
        assert done.returncode == 0, done.stdout + done.stderr
    started = time.monotonic()
    up = orion("lab", "up", "--nodes", str(NODES), "--orchestrators", str(ORCHESTRATORS),
               "--api-replicas", str(API_REPLICAS))  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        record("lab up", seconds=round(time.monotonic() - started, 1), nodes=NODES)
        status = _status()
        kinds = [[a["kind"] for a in n["actors"]] for n in status["nodes"]]
        # Each shard and orchestrator is pinned softly to a node, workers first, round robin
        # (orion.actors.placement): every worker holds one, and the shards differ in node.
        record("lab placement", kinds_by_node=kinds)
        workers = [k for n, k in zip(status["nodes"], kinds, strict=True) if not n["head"]]
        assert all({"shard", "orchestrator"} & set(k) for k in workers), kinds
        assert sum(k.count("shard") > 0 for k in kinds) == min(NODES, _shards(kinds)), kinds
        assert sum(k.count("orchestrator") for k in kinds) == ORCHESTRATORS, kinds
        assert sum(k.count("api") for k in kinds) == API_REPLICAS, kinds
        yield {"api": status["api"]}
    finally:
        if not os.environ.get("ORION_LAB_KEEP"):
            done = orion("lab", "down")
            assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def lab_settings(lab: dict[str, Any]) -> Settings:
    env = client_env()
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        kafka_host=env["ORION_KAFKA_HOST"],
        postgres_host=env["ORION_POSTGRES_HOST"],
        redis_host=env["ORION_REDIS_HOST"],
        redis_password=env["ORION_REDIS_PASSWORD"],
        manage_infra=False,
    )


def _status() -> dict[str, Any]:
    done = orion("lab", "status", "--json")
    assert done.returncode == 0, done.stderr
    status: dict[str, Any] = json.loads(done.stdout)
    return status


def _shards(kinds: list[list[str]]) -> int:
    return sum(k.count("shard") for k in kinds)


def _actor_worker(fault: str) -> str:
    """The worker the shard or orchestrator fault hits: a live, linked worker node (never the
    head: it holds the cluster) running an orchestrator (partition) or a shard (kill), else
    one running the other kind: its batches hang, or its partitions move, all the same. The
    placement puts one on every worker, and a fault moves only the actors of the node it
    hits, so one is there."""
    kinds = (
        ("orchestrator", "shard") if fault.startswith("partition") else ("shard", "orchestrator")
    )
    nodes = _status()["nodes"]
    found = _worker_among(nodes, kinds)
    placed = {str(n["name"]): [a["kind"] for a in n["actors"]] for n in nodes}
    assert found is not None, f"no live worker runs a shard or an orchestrator: {placed}"
    return found


def _worker_among(nodes: list[dict[str, Any]], kinds: tuple[str, ...]) -> str | None:
    for kind in kinds:
        for node in nodes:
            running = {a["kind"] for a in node["actors"]}
            if not node["head"] and node["alive"] and node["linked"] and kind in running:
                return str(node["name"])
    return None


def _api_worker() -> str:
    """A live worker running an API replica, waiting up to API_REPLACED_S for Serve to replace
    one an earlier fault killed. Serve places replicas itself (at most one per node): a lab has
    come up with the head and one worker holding them; the shard fault then killed that
    worker, and the only live worker had no replica to kill when this fault came. Then this
    fault is skipped, saying so in faults.json: the API still runs (its replica on the head),
    with no worker replica to take away."""
    nodes: list[dict[str, Any]] = []

    def placed() -> bool:
        nonlocal nodes
        nodes = _status()["nodes"]
        return _worker_among(nodes, ("api",)) is not None

    if wait_until(placed, API_REPLACED_S, STATUS_POLL_S):
        return str(_worker_among(nodes, ("api",)))
    kinds = {str(n["name"]): [a["kind"] for a in n["actors"]] for n in nodes}
    alive = {str(n["name"]): bool(n["alive"]) for n in nodes}
    record("lab: kill an API node", skipped="no live worker runs an API replica", kinds=kinds,
           alive=alive)  # fmt: skip
    pytest.skip(f"no live worker runs an API replica after {API_REPLACED_S:.0f} s: {kinds}")


@pytest.mark.parametrize(
    "fault", ["partition an orchestrator's node", "kill a node with shards", "kill an API node"]
)
def test_cluster_keeps_every_transfer_exactly_once_through_node_faults(
    lab: dict[str, Any], lab_settings: Settings, fault: str
) -> None:
    """Under load through the lab's one API address: the fault, then every 2xx transfer
    settled exactly once, per-account order and every invariant (the audit), and accepting
    again within 30 s."""
    target = _api_worker() if fault == "kill an API node" else _actor_worker(fault)
    first = seed_accounts(ACCOUNTS, env=client_env())
    load = Load(lab["api"], first, ACCOUNTS).start()
    try:
        time.sleep(WARMUP_S)
        started = time.monotonic()
        target, target_kinds = _inflict(fault, target)
        accepting = wait_until(lambda: load.first_success_after(started) is not None, 60)
        resumed = load.first_success_after(started)
        if fault.startswith("partition"):
            time.sleep(max(0.0, PARTITION_S - (time.monotonic() - started)))
            orion("lab", "heal", target)
        time.sleep(AFTER_S)
    finally:
        stopped = time.monotonic()
        load.stop()
    try:
        settled = account_for(lab_settings, load)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{_diagnose()}") from None
    report = run_audit(lab_settings)
    accepted = [a.transfer_id for a in load.answers if a.status == 200]
    record(
        f"lab: {fault}",
        node=target,
        node_ran=target_kinds,
        fault_to_first_2xx_s=round(resumed or -1, 2),
        # Within the load's life: after it stops, no answers is not a gap.
        longest_gap_without_2xx_s=round(
            load.longest_gap_s(started, min(stopped, started + ACCEPT_AGAIN_S)), 2
        ),
        longest_partition_settle_gap_s=_settle_gap_s(lab_settings, accepted),
        accepted=settled.accepted,
        lost=settled.lost,
        applied_twice=settled.applied_twice,
        unanswered_but_settled=settled.unknown_applied,
        node_cpu_s={n["name"]: n["cpu_seconds_by_part"] for n in _status()["nodes"]},
    )
    assert accepting and resumed is not None and resumed <= ACCEPT_AGAIN_S, resumed
    assert (settled.lost, settled.applied_twice) == (0, 0), settled
    assert report.ok, "\n".join(report.lines())
    assert outcome_arrives(lab["api"], first), "?wait= got no outcome after the fault"


def _diagnose() -> str:
    """What the cluster looks like now, for a failure's message: nodes, placement groups and
    Orion's actors as Ray's state API reports them, and the orchestrators' last log lines."""
    head = layout.nodes(NODES)[0]
    lines = []
    for what in ("nodes", "placement_groups", "actors"):
        try:
            rows = cluster.state_api(head, what)
        except (OSError, KeyError, ValueError) as err:
            lines.append(f"{what}: unreadable ({err})")
            continue
        for row in rows:
            name = row.get("name") or row.get("node_ip") or row.get("placement_group_id")
            if what == "actors" and not str(name).startswith("orion-"):
                continue
            keep = ("state", "node_ip", "node_id", "num_restarts", "death_cause", "bundles")
            lines.append(f"{what}: {name} " + str({k: row.get(k) for k in keep if k in row})[:600])
    for node in layout.nodes(NODES):
        for pid in nodes.cgroup_pids(node):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
                if "Orchestrator" not in title:
                    continue
                logs = next(Path(f"/proc/{pid}/root/tmp/ray").glob("session_2*/logs"))
                text = "".join(
                    f.read_text(errors="replace")[-3000:]
                    for f in sorted(logs.glob(f"worker-*-{pid}.*"))
                    if f.suffix in (".out", ".err")
                )
            except (OSError, StopIteration):
                continue
            lines.append(f"orchestrator pid {pid} on {node.name}:\n" + text)
    return "\n".join(lines)


def _settle_gap_s(settings: Settings, ids: list[str]) -> float:
    """The failover time of settlement: the longest any Kafka partition went without
    settling one of these transfers (ledger times), while load kept coming."""
    with psycopg.connect(settings.postgres_dsn) as conn:
        row = conn.execute(
            "SELECT max(gap) FROM (SELECT extract(epoch FROM settled_at - lag(settled_at)"
            " OVER (PARTITION BY kafka_partition ORDER BY settled_at)) AS gap"
            " FROM transfers WHERE id = ANY(%s::uuid[])) gaps",
            (ids,),
        ).fetchone()
    return round(float(row[0] or 0.0), 2) if row else 0.0


def _kinds_on(name: str) -> set[str]:
    return {a["kind"] for n in _status()["nodes"] if n["name"] == name for a in n["actors"]}


def _inflict(fault: str, node: str) -> tuple[str, list[str]]:
    """Inflict the fault on `node`, chosen before the load started (`_actor_worker`,
    `_api_worker`); the node hit and the kinds of actor it ran just before."""
    verb = "partition" if fault.startswith("partition") else "kill-node"
    kinds = sorted(_kinds_on(node))
    assert orion("lab", verb, node).returncode == 0
    return node, kinds
