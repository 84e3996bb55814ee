"""Every Ray API call Orion makes, in one place: actor classes, naming, lookup, shard pool.

Shards and the orchestrator are named, detached actors with unlimited restarts: Ray brings a
crashed one back, and its work is dispatched again (shards) or replayed from Kafka
(orchestrator). They reserve no CPU: on two cores the processes share the machine, and CPU
reservations would only keep the Serve replica from being scheduled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import ray
from ray.exceptions import RayError

from orion.actors.orchestrator import Orchestrator
from orion.actors.shard import Shard
from orion.messages import QueuedTransfer
from orion.orchestration.ports import Completion

SHARD_NAME = "orion-shard-{}"
ORCHESTRATOR_NAME = "orion-orchestrator"
ERROR_TEXT_CHARS_MAX = 500  # enough to diagnose; an error is logged per retry
ACTOR_OPTIONS: dict[str, Any] = {
    "lifetime": "detached",
    "max_restarts": -1,
    "max_task_retries": 0,  # the orchestrator re-dispatches itself, with the same batch id
    "num_cpus": 0,
    "get_if_exists": True,
}


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
    """The orchestrator as deployed: its shard pool is the named shard actors."""

    def __init__(self, shard_count: int) -> None:
        super().__init__(
            lambda: RayShardPool(shard_count),
            lambda: actor_restarts(shard_count),
            member=ORCHESTRATOR_NAME,
        )


STATE_API_TIMEOUT_S = 10  # Ray's state API answers from the head in milliseconds


def actor_restarts(shard_count: int) -> dict[str, int]:
    """How often Ray restarted each of Orion's actors: {"orchestrator": n, "shard-0": n, ...}."""
    from ray.util.state import list_actors

    names = {ORCHESTRATOR_NAME: "orchestrator"}
    names |= {SHARD_NAME.format(k): f"shard-{k}" for k in range(shard_count)}
    found = list_actors(
        filters=[("state", "!=", "DEAD")], detail=True, timeout=STATE_API_TIMEOUT_S, limit=10_000
    )
    return {names[a.name]: int(a.num_restarts) for a in found if a.name in names}


def start_actors(shard_count: int) -> Any:
    """Create (or find) the shard actors, then the orchestrator; returns its handle."""
    shards: list[Any] = [
        ray.remote(Shard).options(name=SHARD_NAME.format(k), **ACTOR_OPTIONS).remote(k)
        for k in range(shard_count)
    ]
    ray.get([s.ping.remote() for s in shards])
    orchestrator: Any = (
        ray.remote(OrchestratorWithRayShards)
        .options(name=ORCHESTRATOR_NAME, max_concurrency=4, **ACTOR_OPTIONS)
        .remote(shard_count)
    )
    ray.get(orchestrator.pid.remote())
    return orchestrator


def orchestrator() -> Any:
    return ray.get_actor(ORCHESTRATOR_NAME)


def shard(k: int) -> Any:
    return ray.get_actor(SHARD_NAME.format(k))


def kill_actors(shard_count: int) -> None:
    """Kill the named actors without restart (used by `orion down` after draining)."""
    for name in [ORCHESTRATOR_NAME, *(SHARD_NAME.format(k) for k in range(shard_count))]:
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


def deploy_api(host: str, port: int) -> None:
    """Start Serve's HTTP proxy on host:port (loopback by default) and run the API app."""
    from ray import serve  # imported here: Serve starts threads on import-time use

    from orion.serve.deployment import application

    serve.start(http_options={"host": host, "port": port})
    serve.run(application(), name=API_APP, route_prefix="/", blocking=False)


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


def drain_orchestrator(timeout_s: float) -> bool:
    """Ask the orchestrator to finish in-flight work and commit; False if absent, unable
    (dead, restarting, crash-looping) or late: the caller stops everything regardless."""
    try:
        handle = orchestrator()
        wait_s = timeout_s + DRAIN_REPLY_MARGIN_S
        return bool(ray.get(handle.drain.remote(timeout_s), timeout=wait_s))
    except (ValueError, RayError):
        return False


STATS_TIMEOUT_S = 10  # a live orchestrator answers at once


def orchestrator_stats() -> dict[str, Any] | None:
    """The orchestrator's counters, or None when it is absent or does not answer."""
    try:
        handle = orchestrator()
        stats: dict[str, Any] = ray.get(handle.stats.remote(), timeout=STATS_TIMEOUT_S)
    except (ValueError, RayError):
        return None
    return stats


PID_TIMEOUT_S = 60  # a restarting actor answers once Ray has brought it back


def shard_pid(k: int) -> int:
    return int(ray.get(shard(k).pid.remote(), timeout=PID_TIMEOUT_S))


def orchestrator_pid() -> int:
    return int(ray.get(orchestrator().pid.remote(), timeout=PID_TIMEOUT_S))
