"""Every Ray API call Orion makes, in one place: actor classes, naming, lookup, shard pool.

Shards and orchestrators are named, detached actors with unlimited restarts: Ray brings a
crashed one back (on a surviving node if its node died), and its work is dispatched again
(shards) or replayed from Kafka (orchestrators). On a cluster each is pinned softly to a node,
round robin with the workers first (orion.actors.placement), so they spread over the nodes.
They reserve no CPU (on a cluster a token share, see PLACEMENT_TOKEN_CPUS): on two cores the
processes share the machine, and CPU reservations would only keep the Serve replica from
being scheduled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import ray
from ray.exceptions import RayError

from orion.actors.orchestrator import Orchestrator
from orion.actors.placement import Node, placement_order, spread
from orion.actors.shard import Shard
from orion.messages import QueuedTransfer
from orion.orchestration.ports import Completion
from orion.priority import worker_runtime_env

log = logging.getLogger(__name__)

SHARD_NAME = "orion-shard-{}"
SHARD_PREFIX = "orion-shard-"
ORCHESTRATOR_NAME = "orion-orchestrator"  # the first one's; the others add "-<index>"
ERROR_TEXT_CHARS_MAX = 500  # enough to diagnose; an error is logged per retry
ACTOR_OPTIONS: dict[str, Any] = {
    "lifetime": "detached",
    "max_restarts": -1,
    "max_task_retries": 0,  # the orchestrator re-dispatches itself, with the same batch id
    "num_cpus": 0,
    "get_if_exists": True,
    "runtime_env": worker_runtime_env(),  # niceness 0, not Ray's 15: see orion.priority
}


# Shards and orchestrators are placed by soft node affinity (orion.actors.placement), not by
# placement groups: after a node dies a restarted actor is simply scheduled again, while a
# placement group must first have its bundles rescheduled, a path with open liveness bugs in
# Ray (ray-project/ray#65147, #57726: detached actors in a group can stay RESTARTING for good).
# A CI run of the lab saw settlement stall for minutes after a node kill with them.
#
# A raylet can schedule onto a node the GCS lists as alive only once it knows of it, a moment
# after the node joins; a soft affinity to a node it does not know yet may be taken for a dead
# node's and ignored. A zero-CPU task pinned to each alive node returns once the raylet
# schedules onto it; nodes that have not answered within this bound get no actor.
NODES_SEEN_TIMEOUT_S = 60.0
# Ray ignores a soft node affinity for an actor that requests no resources and picks a random
# node (seen on the lab with Ray 2.60: four zero-CPU actors pinned to three nodes landed on
# two); with any resource request it keeps to the node. So a pinned actor reserves this token
# CPU share: 64 shards and orchestrators together hold 0.064 of a core.
PLACEMENT_TOKEN_CPUS = 0.001
# Placement groups earlier versions made; removed on the way up and down.
OLD_GROUPS = ("orion-shards", "orion-orchestrators")


def remove_groups() -> None:
    from ray.util import get_placement_group, remove_placement_group

    for name in OLD_GROUPS:
        try:
            remove_placement_group(get_placement_group(name))
        except ValueError:
            continue  # not there


def orchestrator_name(index: int) -> str:
    return ORCHESTRATOR_NAME if index == 0 else f"{ORCHESTRATOR_NAME}-{index}"


def _is_orion_actor(name: str) -> bool:
    return name == ORCHESTRATOR_NAME or name.startswith((ORCHESTRATOR_NAME + "-", SHARD_PREFIX))


class RayShardPool:
    """The engine's ShardPool over Ray actor handles; tracks the object refs in flight."""

    def __init__(self, shard_count: int) -> None:
        self._handles = [ray.get_actor(SHARD_NAME.format(k)) for k in range(shard_count)]
        self._refs: dict[Any, str] = {}

    @property
    def shard_count(self) -> int:
        return len(self._handles)

    def dispatch(self, shard: int, batch_id: str, batch: Sequence[QueuedTransfer]) -> None:
        self._refs[self._handles[shard].apply.remote(batch_id, list(batch))] = batch_id

    def completed(self, timeout_s: float) -> list[Completion]:
        """Every batch that has finished, waiting up to `timeout_s` for the first one."""
        if not self._refs:
            return []
        refs = list(self._refs)
        # Wake on the FIRST result (waiting for all of them always ran out the timeout), then
        # sweep whatever else is ready without waiting.
        first, pending = ray.wait(refs, num_returns=1, timeout=timeout_s)
        ready = first
        if first and pending:
            more, _ = ray.wait(pending, num_returns=len(pending), timeout=0)
            ready = first + more
        done = []
        for ref in ready:
            batch_id = self._refs.pop(ref)
            try:
                done.append(Completion(batch_id, ray.get(ref)))
            except RayError as err:
                done.append(Completion(batch_id, None, str(err)[:ERROR_TEXT_CHARS_MAX]))
        return done


class OrchestratorWithRayShards(Orchestrator):
    """The orchestrator as deployed: its shard pool is the named shard actors; its static
    group identity is its actor name."""

    def __init__(self, shard_count: int, index: int = 0) -> None:
        super().__init__(
            lambda: RayShardPool(shard_count),
            actor_restarts,
            member=orchestrator_name(index),
        )


STATE_API_TIMEOUT_S = 10  # Ray's state API answers from the head in milliseconds


def actor_restarts() -> dict[str, int]:
    """How often Ray restarted each of Orion's live actors: {"orchestrator": n,
    "orchestrator-1": n, "shard-0": n, ...}."""
    return {_label(a.name): int(a.num_restarts) for a in _live_orion_actors()}


def _label(name: str) -> str:
    return name.removeprefix("orion-")


def _live_orion_actors() -> list[Any]:
    from ray.util.state import list_actors

    found = list_actors(
        filters=[("state", "!=", "DEAD")], detail=True, timeout=STATE_API_TIMEOUT_S, limit=10_000
    )
    return [a for a in found if a.name and _is_orion_actor(a.name)]


def actor_nodes() -> dict[str, str]:
    """Where each live Orion actor runs: actor label -> its node's IP address."""
    from ray.util.state import list_nodes

    ips = {n.node_id: n.node_ip for n in list_nodes(timeout=STATE_API_TIMEOUT_S)}
    return {_label(a.name): ips.get(a.node_id, "?") for a in _live_orion_actors()}


def start_actors(shard_count: int, orchestrators: int = 1) -> None:
    """Create (or find) the shard actors, then the orchestrators; remove any left over from
    a configuration with more of them."""
    wanted = {SHARD_NAME.format(k) for k in range(shard_count)}
    wanted |= {orchestrator_name(i) for i in range(orchestrators)}
    _kill_named([n for n in ray.util.list_named_actors() if _is_orion_actor(n) and n not in wanted])
    remove_groups()
    where = _placements(shard_count + orchestrators)
    shards: list[Any] = [
        ray.remote(Shard).options(name=SHARD_NAME.format(k), **ACTOR_OPTIONS | where[k]).remote(k)
        for k in range(shard_count)
    ]
    ray.get([s.ping.remote() for s in shards])
    handles: list[Any] = [
        ray.remote(OrchestratorWithRayShards)
        .options(
            name=orchestrator_name(i),
            max_concurrency=4,
            **ACTOR_OPTIONS | where[shard_count + i],
        )
        .remote(shard_count, i)
        for i in range(orchestrators)
    ]
    ray.get([h.pid.remote() for h in handles])


def _placements(count: int) -> list[dict[str, Any]]:
    """The scheduling options of `count` actors: on one node Ray's default; on a cluster a
    soft affinity to each node in turn, workers first (orion.actors.placement). Shards come
    first, then orchestrators, so the two kinds continue one round robin."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    order = _schedulable_nodes()
    if len(order) < 2:
        return [{} for _ in range(count)]
    return [
        {
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True),
            "num_cpus": PLACEMENT_TOKEN_CPUS,
        }
        for node in spread(order, count)
    ]


def _where() -> str:
    return str(ray.get_runtime_context().get_node_id())


def _schedulable_nodes() -> list[str]:
    """The alive nodes this driver's raylet can schedule onto, in placement order (see
    NODES_SEEN_TIMEOUT_S); a node that does not answer in time is left out, and logged."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    from ray.util.state import list_nodes

    found = list_nodes(filters=[("state", "=", "ALIVE")], timeout=STATE_API_TIMEOUT_S)
    alive = [Node(n.node_id, n.node_ip, bool(n.is_head_node)) for n in found]
    if len(alive) < 2:
        return placement_order(alive)
    probe = ray.remote(num_cpus=0)(_where)
    refs = {
        probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False)
        ).remote(): n
        for n in alive
    }
    ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=NODES_SEEN_TIMEOUT_S)
    for ref in late:
        log.warning("node %s not schedulable after %.0f s; no actor goes there",
                    refs[ref].ip, NODES_SEEN_TIMEOUT_S)  # fmt: skip
        ray.cancel(ref, force=True)
    seen = []
    for ref in ready:
        try:
            ray.get(ref)
            seen.append(refs[ref])
        except RayError as err:  # the node died meanwhile
            log.warning("node %s not schedulable (%s); no actor goes there", refs[ref].ip, err)
    return placement_order(seen)


def orchestrator(index: int = 0) -> Any:
    return ray.get_actor(orchestrator_name(index))


def orchestrator_names() -> list[str]:
    """Every orchestrator that exists now, first one first."""
    names = [n for n in ray.util.list_named_actors() if n.startswith(ORCHESTRATOR_NAME)]
    return sorted(names, key=lambda n: (len(n), n))


def shard(k: int) -> Any:
    return ray.get_actor(SHARD_NAME.format(k))


def kill_actors() -> None:
    """Kill every Orion actor without restart (used by `orion down` after draining)."""
    _kill_named([n for n in ray.util.list_named_actors() if _is_orion_actor(n)])
    remove_groups()


def _kill_named(names: Sequence[str]) -> None:
    for name in names:
        try:
            ray.kill(ray.get_actor(name), no_restart=True)
        except (ValueError, RayError):
            continue  # not running, or already dying


def connect(address: str, namespace: str, env: dict[str, str]) -> None:
    """Attach this process as a driver; detached actors and Serve outlive it."""
    ray.init(
        address=address,
        namespace=namespace,
        runtime_env={"env_vars": env},
        log_to_driver=False,
        logging_level=logging.WARNING,
    )


def disconnect() -> None:
    ray.shutdown()


def deploy_api(
    host: str,
    port: int,
    replicas: int = 1,
    per_node_max: int | None = None,
    access_log: bool = False,
) -> None:
    """Start Serve's HTTP proxy on host:port (loopback by default) and run the API app with
    `replicas` replicas, at most `per_node_max` on one node, Serve's access log on or off."""
    from ray import serve  # imported here: Serve starts threads on import-time use

    from orion.serve.deployment import application

    serve.start(http_options={"host": host, "port": port})
    app = application(replicas, per_node_max, access_log)
    serve.run(app, name=API_APP, route_prefix="/", blocking=False)


def shutdown_api() -> None:
    from ray import serve

    serve.shutdown()  # type: ignore[no-untyped-call]


API_APP = "orion"


def api_status() -> str | None:
    """Serve's status of the API application (RUNNING, DEPLOYING, DEPLOY_FAILED, ...)."""
    from ray import serve

    app = serve.status().applications.get(API_APP)
    return None if app is None else str(getattr(app.status, "value", app.status))


def delete_api() -> None:
    """Remove the API application (a failed deployment must go before a new one)."""
    from ray import serve

    serve.delete(API_APP)


DRAIN_REPLY_MARGIN_S = 10  # the drain call itself is bounded; its reply needs a moment more


def drain_orchestrators(timeout_s: float) -> bool:
    """Ask every orchestrator to finish in-flight work and commit, all at once; False if one
    is absent, unable (dead, restarting, crash-looping) or late: the caller stops everything
    regardless."""
    try:
        handles: list[Any] = [ray.get_actor(n) for n in orchestrator_names()]
        calls = [h.drain.remote(timeout_s) for h in handles]
        wait_s = timeout_s + DRAIN_REPLY_MARGIN_S
        return bool(calls) and all(ray.get(calls, timeout=wait_s))
    except (ValueError, RayError):
        return False


STATS_TIMEOUT_S = 10  # a live orchestrator answers at once


def orchestrator_stats() -> dict[str, dict[str, Any] | None]:
    """Each orchestrator's counters, None for one that is absent or does not answer."""
    out: dict[str, dict[str, Any] | None] = {}
    for name in orchestrator_names():
        try:
            handle: Any = ray.get_actor(name)
            out[name] = ray.get(handle.stats.remote(), timeout=STATS_TIMEOUT_S)
        except (ValueError, RayError):
            out[name] = None
    return out


PID_TIMEOUT_S = 60  # a restarting actor answers once Ray has brought it back


def shard_pid(k: int) -> int:
    return int(ray.get(shard(k).pid.remote(), timeout=PID_TIMEOUT_S))


def orchestrator_pid(index: int = 0) -> int:
    return int(ray.get(orchestrator(index).pid.remote(), timeout=PID_TIMEOUT_S))
