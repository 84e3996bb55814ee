"""The CPU priority of Orion's Ray workers on a shared box, importable without Ray.

Ray renices every worker process to 15 (its `worker_niceness`: ML tasks yield to Ray's own
daemons). Orion's workers are the service itself: the API replica, whose event loop is the
one serial step every request passes twice, and the shards and orchestrators that settle.
At 15 they got CPU last on a busy box, behind Kafka, PostgreSQL, Redis, HAProxy and Ray's
nice-0 daemons, with the box 10-15 % idle while requests queued for the replica. At
WORKER_NICENESS they compete as equals of the services they wait on.

Measured on one stack, the workers reniced between alternated runs (load/RESULTS.md,
2026-12-04 evening): seed ÷ bare uvicorn 0.435 at 15 -> 0.474 (medians of 5 and 7), and
latency at 1,000/s, scheduled -> settled p99 209-256 ms -> 158-160 ms. The replica alone at
0 with settlement at 15 accepted more (0.52) but starved settlement near saturation
(scheduled -> settled p99 366-642 ms): rejected.
"""

from __future__ import annotations

WORKER_NICENESS = 0  # the API replica, the shards, the orchestrators


def worker_runtime_env() -> dict[str, dict[str, str]]:
    """The runtime_env of Orion's actors and replicas: a Ray worker reads its niceness from
    this variable when it starts (Ray's job supervisor sets it the same way). Ray and Serve
    merge these env_vars with the job's (the ORION_* settings)."""
    return {"env_vars": {"RAY_worker_niceness": str(WORKER_NICENESS)}}
