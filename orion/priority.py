"""The CPU priority of Orion's processes on a shared box, importable without Ray.

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

The services `orion infra` starts on the same box (Kafka, PostgreSQL, Redis, HAProxy,
Prometheus) run under SCHED_BATCH (SERVICES_YIELD_ON_WAKEUP). Their CPU share is what their
niceness gives, as before; what changes is a wake-up: each request wakes HAProxy twice and a
Kafka broker, Redis and PostgreSQL thread once per round, and under the default policy the
woken service preempted the task on its core. When that task was the API replica, it lost the
core mid-request (py-spy had a fifth of its GIL-holding samples inside its response writes,
each of which wakes HAProxy) while the other core could sit idle. A batch-policy service runs
on an idle core at once, or when the running task blocks or its slice ends. Orion's own
workers and Ray's daemons keep the default (batch for Ray too did no better).

Measured on one stack, the services' policy switched between alternated runs (RESULTS,
2026-12-04 night): seed ÷ bare uvicorn 0.445 -> 0.493 (medians of 12 runs each, two series),
and latency at 1,000/s, scheduled -> settled p99 161-173 ms -> 132-136 ms. Batch settled/s
unchanged.
"""

from __future__ import annotations

WORKER_NICENESS = 0  # the API replica, the shards, the orchestrators
SERVICES_YIELD_ON_WAKEUP = True  # the services orion infra starts run under SCHED_BATCH


def worker_runtime_env() -> dict[str, dict[str, str]]:
    """The runtime_env of Orion's actors and replicas: a Ray worker reads its niceness from
    this variable when it starts (Ray's job supervisor sets it the same way). Ray and Serve
    merge these env_vars with the job's (the ORION_* settings)."""
    return {"env_vars": {"RAY_worker_niceness": str(WORKER_NICENESS)}}
