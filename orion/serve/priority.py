"""The API replica's CPU priority on a shared box, importable without Ray.

Ray renices every worker process to RAY_WORKER_NICENESS (its `worker_niceness`, so its own
daemons stay responsive beside ML tasks). The replica's event loop is the one serial step
every request passes twice, and at nice 15 it got CPU last on a busy box: behind Kafka,
PostgreSQL, Redis, HAProxy and Ray's own nice-0 daemons, with the box ~12 % idle while
requests queued for it. At API_WORKER_NICENESS it competes as an equal; the shards and the
orchestrator keep Ray's niceness, so under overload acceptance wins and the backlog waits
durably in Kafka. Measured (load/RESULTS.md, 2026-12-04 evening): seed ÷ bare uvicorn over
8 alternated runs each on one stack, 0.435 at 15 -> 0.516 at 0 (medians); every Ray worker
at 0 was worse than the replica alone (0.41-0.50).
"""

from __future__ import annotations

RAY_WORKER_NICENESS = 15  # Ray's default `worker_niceness`: shards, orchestrator, Serve's own
API_WORKER_NICENESS = 0  # the API replica: an equal of the services it waits on


def api_runtime_env() -> dict[str, dict[str, str]]:
    """The replica's runtime_env: Ray's worker reads its niceness from this variable when it
    starts (Ray's job supervisor sets it the same way); Serve merges it with the job's."""
    return {"env_vars": {"RAY_worker_niceness": str(API_WORKER_NICENESS)}}
