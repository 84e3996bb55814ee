"""The Ray Serve deployment that hosts Orion's FastAPI app (`@serve.ingress`).

One replica is right for two cores (more replicas compete for the same CPUs); it must accept
at least as many concurrent requests as clients send, or Serve queues them and throughput
collapses. The app's lifespan builds the Kafka, Redis and PostgreSQL clients in the replica.
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve
from ray.serve import metrics

from orion import gc_tuning
from orion.adapters.metrics import start_at_zero
from orion.bootstrap import api_app
from orion.domain.progress import Settlement
from orion.priority import worker_runtime_env
from orion.serve import observers

API_REPLICAS = 1
API_ONGOING_REQUESTS_MAX = 1_000  # above the 200 concurrent clients of the seed's load test
# Serve notices a dead replica only when its next health check fails, and it starts one every
# health_check_period_s (default 10 s): a killed replica left the API without that replica
# for up to 10 s before Serve even began to replace it (3-11 s to the first 2xx, measured).
# The check is a no-op call on the replica; every 2 s it costs nothing measurable.
API_HEALTH_CHECK_PERIOD_S = 2.0
# Transfers acknowledged per produce round (a micro-batch of requests, or one batch request):
# how much the API's Redis and Kafka round trips are shared. Up to ACCEPT_BATCH_MAX (500),
# and a batch request's size.
ACCEPT_ROUND_BOUNDARIES: list[float] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000]
# Seconds per acceptance round: Redis claims, Kafka produce and acks=all, Redis promotion.
# A few ms on a quiet local stack; the broker's failover is seconds.
ACCEPT_ROUND_SECONDS_BOUNDARIES: list[float] = [
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
]
# The level of Serve's own logger in the replica. Serve writes its access line with
# logger.info() on every request and, with the access log off, drops the finished record in
# a filter: building it was ~3.5 % of the replica's CPU per seed request (py-spy). At WARNING
# the call returns at once. Serve's INFO lines about the replica's life are in the Serve
# controller's log as well; with the access log on, the replica logs at INFO.
QUIET_LOG_LEVEL = "WARNING"

api = api_app()


@serve.deployment(
    name="orion-api",
    num_replicas=API_REPLICAS,
    max_ongoing_requests=API_ONGOING_REQUESTS_MAX,
    health_check_period_s=API_HEALTH_CHECK_PERIOD_S,
    ray_actor_options={
        "num_cpus": 0,
        "runtime_env": worker_runtime_env(),  # niceness 0: see orion.priority
    },
)
@serve.ingress(api)
class OrionAPI:
    """All routes come from the FastAPI app; the class only adds the replica's metrics and
    puts Orion's own log lines in the replica's Serve log."""

    def __init__(self) -> None:
        _orion_lines_in_serve_log()
        accepted = metrics.Counter(
            "orion_transfers_accepted_total",
            description="Transfers the broker acknowledged through this API (first acceptance).",
        )
        start_at_zero(accepted)
        observers.on_accepted(accepted.inc)
        rounds = metrics.Histogram(
            "orion_api_accept_round_transfers",
            description="Transfers the broker acknowledged per produce round of this API.",
            boundaries=ACCEPT_ROUND_BOUNDARIES,
        )
        observers.on_accepted(rounds.observe)
        round_seconds = metrics.Histogram(
            "orion_api_accept_round_seconds",
            description="One acceptance round of this API: idempotency claims, produce until "
            "acks=all, promotion. HTTP latency minus this is waiting in the replica.",
            boundaries=ACCEPT_ROUND_SECONDS_BOUNDARIES,
        )
        observers.on_round(round_seconds.observe)
        self._stuck = metrics.Gauge(
            "orion_partition_stuck",
            description="1 when a partition's oldest unsettled transfer and last commit are "
            "both older than ORION_STUCK_AFTER_S (read from Kafka every 5 s).",
            tag_keys=("partition",),
        )
        self._oldest = metrics.Gauge(
            "orion_oldest_unsettled_seconds",
            description="Age of the oldest accepted transfer without an outcome (0: none).",
        )
        observers.on_settlement(self._export_settlement)
        gc_tuning.tune()

    def _export_settlement(self, reading: Settlement) -> None:
        for p in reading.partitions:
            self._stuck.set(1 if p.stuck else 0, tags={"partition": str(p.partition)})
        self._oldest.set(reading.oldest_unsettled_age_s or 0.0)


def _orion_lines_in_serve_log() -> None:
    """Orion's lines (a Kafka producer replaced, Redis lost) go to the handlers of Serve's
    logger: the replica's `serve/replica_*.log`, where an operator reads the API's log, and
    stderr (the worker's `.err`) when Serve writes there. They used to arrive through Serve's
    stderr redirect as INFO records, which QUIET_LOG_LEVEL would drop (and without the access
    log the stack leaves stderr alone). Not propagated: with the redirect on (access log on)
    the root logger's copy would come back through it, twice in the file."""
    orion_logger = logging.getLogger("orion")
    for handler in logging.getLogger("ray.serve").handlers:
        if handler not in orion_logger.handlers:
            orion_logger.addHandler(handler)
    orion_logger.propagate = False


def application(
    replicas: int = API_REPLICAS, per_node_max: int | None = None, access_log: bool = False
) -> Any:
    """The API with `replicas` replicas; `per_node_max` = 1 spreads them one per node;
    `access_log`: Serve's per-request log line (ORION_API_ACCESS_LOG)."""
    options: dict[str, Any] = {
        "num_replicas": replicas,
        "logging_config": {
            "enable_access_log": access_log,
            "log_level": "INFO" if access_log else QUIET_LOG_LEVEL,
        },
    }
    if per_node_max is not None:
        options["max_replicas_per_node"] = per_node_max
    return OrionAPI.options(**options).bind()  # type: ignore[attr-defined]


# What `serve build orion.serve.deployment:app` reads (cluster/serve.yaml is its output;
# `orion up` deploys the same app with ORION_API_REPLICAS, one per node on a cluster).
app = application()
