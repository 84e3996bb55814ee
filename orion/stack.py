"""`orion up` / `orion down`: infrastructure, schema, local Ray, shards, orchestrator, API.

The Ray head runs as `ray start --head --block`, a process Orion owns by pid like the other
services: stopping it stops every Ray process it started, and nothing else.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from orion.adapters import postgres as pg
from orion.config import Settings
from orion.db import migrate
from orion.infra import manager
from orion.infra.process import POLL_INTERVAL_S, Managed, ServiceError, port_open
from orion.messages import ORCHESTRATOR_GROUP

Echo = Callable[[str], None]
RAY_READY_TIMEOUT_S = 90.0  # the head starts GCS, raylet and dashboard: ~10-20 s here
API_READY_TIMEOUT_S = 180.0  # Serve's controller, proxy and the first replica
DRAIN_TIMEOUT_S = 60.0  # in-flight batches finish in well under a second each
HTTP_TIMEOUT_S = 2.0
PORT_FREE_TIMEOUT_S = 30.0  # a stopped Ray's workers release their sockets within seconds
# Ray otherwise picks the machine's external address even with --node-ip-address=127.0.0.1
# (it "resolves" loopback to a reachable IP); this switch, Ray's own single-node mode,
# keeps the node address on loopback. Workers inherit it from the raylet.
RAY_LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def ray_head(settings: Settings) -> Managed:
    state = settings.state_dir.resolve()
    return Managed("ray", state / "run" / "ray.pid", state / "logs" / "ray.log")


def ray_address(settings: Settings) -> str:
    return f"{settings.host}:{settings.ray_gcs_port}"


def orion_env() -> dict[str, str]:
    """ORION_* settings travel to every Ray worker so actors read the same config."""
    return {k: v for k, v in os.environ.items() if k.startswith("ORION_")}


def ray_env(settings: Settings) -> dict[str, str]:
    """Environment for the Ray head and every driver: loopback, and Serve's ingress mode."""
    env = dict(RAY_LOCAL_ENV)
    if settings.serve_throughput_optimized:
        port = str(settings.api_port)
        env |= {
            "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
            # Its replica-to-replica gRPC server binds every interface; Orion has a single
            # deployment and needs no inter-replica calls, so it stays off (loopback only).
            "RAY_SERVE_USE_GRPC_BY_DEFAULT": "0",
            # Direct ingress takes replica ports from [min, max); with one replica, the API
            # port itself, so clients keep using 127.0.0.1:<api_port>.
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": port,
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(settings.api_port + 1),
        }
    return env


def use_local_ray(settings: Settings) -> None:
    """Make this process (a Ray driver) agree with the head's environment."""
    os.environ.update(ray_env(settings))


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
    start_ray(settings, echo)
    runtime.connect(ray_address(settings), settings.ray_namespace, orion_env())
    try:
        runtime.start_actors(settings.shard_count)
        echo(f"actors: orchestrator + {settings.shard_count} shards")
        if _api_answers(settings):
            # Already serving. Redeploying would start a second replica that cannot bind the
            # API port while the first holds it; code upgrades go through `orion down`/`up`.
            echo("api: already running")
        else:
            _await_port_free(settings.host, settings.api_port)
            proxy_port = settings.serve_proxy_port if settings.serve_throughput_optimized else None
            runtime.deploy_api(settings.host, proxy_port or settings.api_port)
    finally:
        runtime.disconnect()
    _await_api(settings)
    base = f"http://{settings.host}:{settings.api_port}"
    echo(f"API:            {base}  (docs: {base}/docs)")
    echo(f"Ray dashboard:  http://{settings.host}:{settings.ray_dashboard_port}")
    echo(f"Prometheus:     http://{settings.host}:{settings.prometheus_port}")
    if not settings.api_keys:
        echo("note: no ORION_API_KEYS set: the API is unauthenticated and bound to loopback")


def _await_port_free(host: str, port: int) -> None:
    """The API port must be free before a replica tries to bind it (a replica of a Ray that
    was just stopped can hold it for a moment); Serve gives up on a busy port."""
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
    head = ray_head(settings)
    if head.pid() is not None:
        _stop_app(settings, echo)
        head.stop(settings.stop_timeout_s)
        echo("ray: stopped")
    if settings.manage_infra:
        manager.down(settings, echo, purge=purge)


def _stop_app(settings: Settings, echo: Echo) -> None:
    use_local_ray(settings)
    from orion.actors import runtime

    runtime.connect(ray_address(settings), settings.ray_namespace, orion_env())
    try:
        drained = runtime.drain_orchestrator(DRAIN_TIMEOUT_S)
        echo(f"orchestrator: {'drained' if drained else 'not drained (replays on next up)'}")
        runtime.shutdown_api()
        runtime.kill_actors(settings.shard_count)
    finally:
        runtime.disconnect()


def app_status(settings: Settings, echo: Echo) -> None:
    """Orchestrator counters and consumer lag per partition (end offset - committed)."""
    use_local_ray(settings)
    from orion.actors import runtime
    from orion.adapters import kafka as kafka_adapter

    lag = kafka_adapter.consumer_lag(
        settings.kafka_bootstrap, settings.topic_transfers, ORCHESTRATOR_GROUP
    )
    echo("consumer lag: " + ", ".join(f"p{p}={n}" for p, n in sorted(lag.items())))
    if ray_head(settings).pid() is None:
        echo("ray: down")
        return
    runtime.connect(ray_address(settings), settings.ray_namespace, orion_env())
    try:
        stats = runtime.orchestrator_stats()
    finally:
        runtime.disconnect()
    if stats is None:
        echo("orchestrator: not running")
        return
    for key, value in stats.items():
        echo(f"{key}: {value}")
