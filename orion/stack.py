"""`orion up` / `orion down` / `orion status`: infrastructure, schema, local Ray, shards,
orchestrator, API.

The Ray head runs as `ray start --head --block`, a process Orion owns by pid like the other
services: stopping it stops every Ray process it started (its session), and nothing else.

Guarantees:
- `up` is idempotent and never breaks a running API: it asks Serve for the application's
  state and redeploys only when it is absent or failed (DEPLOY_FAILED is deleted first); an
  application that is (re)starting a replica is waited for. Dead actors are created again.
- `down` always stops, whatever state the actors are in (crash-looping, unreachable): the
  drain and the Serve shutdown are best effort within a bound, then the Ray head and every
  process of its session are stopped by pid.
- `status` reads settlement progress from Kafka itself, so it tells the truth even when the
  orchestrator is dead: per partition lag, last commit, oldest unsettled transfer, stuck.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orion.adapters import postgres as pg
from orion.config import Settings
from orion.db import migrate
from orion.infra import manager
from orion.infra.api_front import API_REPLICA_PORTS, ApiFront
from orion.infra.process import POLL_INTERVAL_S, Managed, ServiceError, port_open

Echo = Callable[[str], None]
RAY_READY_TIMEOUT_S = 90.0  # the head starts GCS, raylet and dashboard: ~10-20 s here
API_READY_TIMEOUT_S = 180.0  # Serve's controller, proxy and the first replica
DRAIN_TIMEOUT_S = 60.0  # in-flight batches finish in well under a second each
# The whole polite part of `down` (attach, drain, Serve shutdown, actor kills) gets this long;
# past it, stopping the Ray head stops everything anyway.
STOP_APP_TIMEOUT_S = DRAIN_TIMEOUT_S + 60.0
HTTP_TIMEOUT_S = 2.0
PORT_FREE_TIMEOUT_S = 30.0  # a stopped Ray's workers release their sockets within seconds
# Ray otherwise picks the machine's external address even with --node-ip-address=127.0.0.1
# (it "resolves" loopback to a reachable IP); this switch, Ray's own single-node mode,
# keeps the node address on loopback. Workers inherit it from the raylet.
RAY_LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
# A stopping replica keeps serving this long so clients move off it (Serve's default is 30 s,
# which made every `orion down` and redeploy wait half a minute); the API front stops sending
# to it within a second (two failed health checks).
REPLICA_DRAIN_S = "5"
REPLICA_LOG_BUFFER_RECORDS = 1  # without the access log: see ray_env
CLUSTER_BIND = "0.0.0.0"  # a cluster node's replica serves its own interfaces
API_STARTING = frozenset({"DEPLOYING", "UNHEALTHY", "NOT_STARTED"})  # Serve is at it: wait
API_FAILED = frozenset({"DEPLOY_FAILED"})  # gone for good until deleted and deployed again


def ray_head(settings: Settings) -> Managed:
    state = settings.state_dir.resolve()
    return Managed("ray", state / "run" / "ray.pid", state / "logs" / "ray.log")


def ray_address(settings: Settings) -> str:
    return settings.ray_address or f"{settings.host}:{settings.ray_gcs_port}"


def orion_env() -> dict[str, str]:
    """ORION_* settings travel to every Ray worker so actors read the same config."""
    return {k: v for k, v in os.environ.items() if k.startswith("ORION_")}


def ray_env(settings: Settings) -> dict[str, str]:
    """Environment for the Ray head and every driver: loopback, and Serve's ingress mode."""
    # The single-node switch keeps Ray on loopback; a cluster's nodes must bind their own
    # addresses, so there it stays off.
    env = {"RAY_USAGE_STATS_ENABLED": "0"} if settings.cluster else dict(RAY_LOCAL_ENV)
    if settings.serve_throughput_optimized:
        replicas = replica_ports(settings)
        env |= {
            "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
            # Throughput mode would route handle calls over gRPC; Orion has a single
            # deployment and makes none. (Every replica still opens Serve's internal gRPC
            # server on [::]:0, hard-coded in Ray 2.60: see the README, "Loopback only".)
            "RAY_SERVE_USE_GRPC_BY_DEFAULT": "0",
            # Direct ingress takes replica ports from [min, max); the API front (HAProxy on
            # the API port) balances over the same range. Serve's quarantine of a dead
            # replica's port (150 s) outlasts its TIME_WAIT, and the range has room for it.
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(replicas.start),
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(replicas.stop),
            "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": REPLICA_DRAIN_S,
        }
        if not settings.api_access_log:
            # Throughput mode buffers a replica's log records 1,000 at a time and writes
            # them only when the buffer is full or on an ERROR. Without access lines the
            # replica logs a few lines a day, so its warnings (a Kafka client replaced,
            # Redis lost) sat unwritten for days, or died with the process. Without the
            # access log, write each record at once; with it, Serve's buffer stays.
            env["RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE"] = str(REPLICA_LOG_BUFFER_RECORDS)
            # Throughput mode also turns a replica's stdout and stderr into INFO records of
            # Serve's logger, which logs at WARNING without the access log (QUIET_LOG_LEVEL):
            # a thread's traceback would be dropped. Keep them the process's own streams,
            # in the worker's log files.
            env["RAY_SERVE_LOG_TO_STDERR"] = "1"
    return env


def replica_ports(settings: Settings) -> range:
    """Where the API replicas listen with direct ingress: the front's backends, or, without
    the front, the API port itself (the one replica serves clients directly)."""
    if not settings.api_front:
        return range(settings.api_port, settings.api_port + 1)
    return range(settings.api_replica_port, settings.api_replica_port + API_REPLICA_PORTS)


def api_front(settings: Settings) -> ApiFront:
    """HAProxy on the API port, over the replicas' ports (or Serve's proxy without direct
    ingress)."""
    if settings.serve_throughput_optimized:
        return ApiFront(settings, [(settings.host, p) for p in replica_ports(settings)])
    return ApiFront(settings, [(settings.host, settings.serve_proxy_port)])


def use_local_ray(settings: Settings) -> None:
    """Make this process (a Ray driver) agree with the head's environment.

    Ray reads the loopback switch (RAY_LOCAL_ENV) once, when it is first imported: imported
    earlier, a driver resolves 127.0.0.1 to the machine's external address and waits forever
    for a GCS that listens on loopback only. Say so at once instead."""
    os.environ.update(ray_env(settings))
    constants = sys.modules.get("ray._private.ray_constants")
    if not settings.cluster and getattr(constants, "ENABLE_RAY_CLUSTER", False):
        raise RuntimeError(
            "ray was imported before orion.stack.use_local_ray(): its driver would look for"
            " the GCS on this machine's external address, not on loopback; import ray later"
        )


def _ray_argv(settings: Settings) -> list[str]:
    ray_cli = str(Path(sys.executable).parent / "ray")
    return [
        ray_cli, "start", "--head", "--block", "--disable-usage-stats",
        f"--node-ip-address={settings.host}", f"--port={settings.ray_gcs_port}",
        f"--dashboard-host={settings.host}", f"--dashboard-port={settings.ray_dashboard_port}",
        f"--temp-dir={settings.ray_temp_dir}",
    ]  # fmt: skip


def dashboard_env(settings: Settings) -> dict[str, str]:
    """The Ray dashboard's Metrics tab queries this Prometheus and embeds this Grafana's
    panels (Grafana runs under docker compose; without it the tab says so)."""
    return {
        "RAY_PROMETHEUS_HOST": f"http://{settings.host}:{settings.prometheus_port}",
        "RAY_PROMETHEUS_NAME": "Prometheus",  # the datasource name dashboards/ provisions
        "RAY_GRAFANA_HOST": f"http://{settings.host}:{settings.grafana_port}",
    }


def start_ray(settings: Settings, echo: Echo) -> None:
    head = ray_head(settings)
    if head.pid() is None:
        env = dict(os.environ, **ray_env(settings), **dashboard_env(settings))
        head.start(_ray_argv(settings), env=env)
        echo("started: ray head")
    deadline = time.monotonic() + RAY_READY_TIMEOUT_S
    while not (
        port_open(settings.host, settings.ray_gcs_port)
        and port_open(settings.host, settings.ray_dashboard_port)
    ):
        if head.pid() is None or time.monotonic() > deadline:
            raise ServiceError(f"ray head not ready; log: {head.log_file}\n{head.log_tail(8)}")
        time.sleep(POLL_INTERVAL_S)


def up(settings: Settings, echo: Echo) -> None:
    use_local_ray(settings)
    from orion.actors import runtime  # Ray is imported only when Orion is started

    if settings.manage_infra:
        manager.up(settings, echo)
    else:
        manager.check_external(settings)
    applied = pg.migrate(settings.postgres_dsn, migrate.available())
    echo(f"schema: {len(applied)} migration(s) applied")
    if not settings.cluster:
        start_ray(settings, echo)
        _start_front(settings, echo)
    runtime.connect(ray_address(settings), settings.ray_namespace, orion_env())
    try:
        runtime.start_actors(settings.shard_count, settings.orchestrators)
        echo(f"actors: {settings.orchestrators} orchestrator(s) + {settings.shard_count} shards")
        _ensure_api(settings, echo, runtime)
        if settings.cluster:
            _await_serve(runtime)
    finally:
        runtime.disconnect()
    if settings.cluster:
        echo(f"deployed onto the Ray cluster at {ray_address(settings)}")
        return
    _await_api(settings)
    base = f"http://{settings.host}:{settings.api_port}"
    echo(f"API:            {base}  (docs: {base}/docs)")
    echo(f"Ray dashboard:  http://{settings.host}:{settings.ray_dashboard_port}")
    echo(f"Prometheus:     http://{settings.host}:{settings.prometheus_port}")
    if not settings.api_keys:
        echo("note: no ORION_API_KEYS set: the API is unauthenticated and bound to loopback")


def _start_front(settings: Settings, echo: Echo) -> None:
    front = api_front(settings)
    if settings.api_front and front.managed.pid() is None:
        _await_port_free(settings.host, settings.api_port)
        front.start()
        echo(f"started: api front (haproxy on {front.address})")


def _await_serve(runtime: Any) -> None:
    """On a cluster: wait until Serve reports the API running (no front to ask here)."""
    deadline = time.monotonic() + API_READY_TIMEOUT_S
    while runtime.api_status() != "RUNNING":
        if time.monotonic() > deadline:
            raise ServiceError(f"API not RUNNING within {API_READY_TIMEOUT_S:.0f} s")
        time.sleep(POLL_INTERVAL_S * 5)


def _ensure_api(settings: Settings, echo: Echo, runtime: Any) -> None:
    """Deploy the API unless Serve already runs it or is bringing it (back) up."""
    state = runtime.api_status()
    if state == "RUNNING":
        # Redeploying would start a second replica that cannot bind the API port while the
        # first holds it; code upgrades go through `orion down` / `orion up`.
        echo("api: already running")
        return
    if state in API_STARTING:
        echo(f"api: Serve reports {state}; waiting for it, not redeploying")
        return
    if state in API_FAILED:
        echo(f"api: Serve reports {state}; deleting it and deploying again")
        runtime.delete_api()
    direct = settings.api_front or settings.serve_throughput_optimized
    # Serve's own proxy serves clients only without the front and without direct ingress.
    port = settings.serve_proxy_port if direct else settings.api_port
    if settings.cluster:
        # Every node's replicas bind this address: all of the node's interfaces (firewall
        # the replica ports, see the README); at most api_replicas_per_node on one node.
        per_node = settings.api_replicas_per_node
        runtime.deploy_api(
            CLUSTER_BIND, port, settings.api_replicas, per_node, settings.api_access_log
        )
    else:
        runtime.deploy_api(
            settings.host, port, settings.api_replicas, access_log=settings.api_access_log
        )


def _await_port_free(host: str, port: int) -> None:
    """The API port must be free before the front binds it (a process of a stack that was
    just stopped can hold it for a moment)."""
    deadline = time.monotonic() + PORT_FREE_TIMEOUT_S
    while port_open(host, port):
        if time.monotonic() > deadline:
            raise ServiceError(f"port {host}:{port} is held by another process; free it first")
        time.sleep(POLL_INTERVAL_S)


def _api_answers(settings: Settings) -> bool:
    url = f"http://{settings.host}:{settings.api_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False  # not up (yet)


def _await_api(settings: Settings) -> None:
    deadline = time.monotonic() + API_READY_TIMEOUT_S
    while not _api_answers(settings):
        if time.monotonic() > deadline:
            raise ServiceError(
                f"API not ready on {settings.host}:{settings.api_port} "
                f"within {API_READY_TIMEOUT_S:.0f} s"
            )
        time.sleep(POLL_INTERVAL_S * 5)


def down(settings: Settings, echo: Echo, *, purge: bool = False) -> None:
    """Drain the orchestrator, stop Serve and the actors, stop Ray, then the infrastructure."""
    if settings.cluster:
        _stop_app_bounded(settings, echo)  # the cluster's Ray is not Orion's to stop
        return
    head = ray_head(settings)
    if head.pid() is not None:
        _stop_app_bounded(settings, echo)
        head.stop(settings.stop_timeout_s)
        echo("ray: stopped")
    if api_front(settings).stop(settings.stop_timeout_s):
        echo("api front: stopped")
    if settings.manage_infra:
        manager.down(settings, echo, purge=purge)


def _stop_app_bounded(settings: Settings, echo: Echo) -> None:
    """The polite part of `down`, given at most STOP_APP_TIMEOUT_S; its failure is reported,
    never fatal: the Ray head's stop that follows ends every actor regardless."""
    failure: list[BaseException] = []

    def polite() -> None:
        try:
            _stop_app(settings, echo)
        except BaseException as err:  # noqa: BLE001 - reported below, then Ray is stopped
            failure.append(err)

    worker = threading.Thread(target=polite, name="orion-down", daemon=True)
    worker.start()
    worker.join(STOP_APP_TIMEOUT_S)
    if worker.is_alive():
        echo(f"app: no clean stop within {STOP_APP_TIMEOUT_S:.0f} s; stopping Ray anyway")
    elif failure:
        first = str(failure[0]).splitlines()[0] if str(failure[0]) else ""
        echo(f"app: clean stop failed ({type(failure[0]).__name__}: {first}); stopping Ray anyway")


def _stop_app(settings: Settings, echo: Echo) -> None:
    use_local_ray(settings)
    from orion.actors import runtime

    runtime.connect(ray_address(settings), settings.ray_namespace, orion_env())
    try:
        drained = runtime.drain_orchestrators(DRAIN_TIMEOUT_S)
        echo(f"orchestrators: {'drained' if drained else 'not drained (replays on next up)'}")
        runtime.shutdown_api()
        runtime.kill_actors()
    finally:
        runtime.disconnect()
