"""`orion status`: the truth about settlement and the actors, for an operator.

Settlement progress is read from Kafka itself, so it is true even when the orchestrators are
dead: per partition lag, oldest unsettled transfer, last commit, stuck. Then, from Ray: the
API's Serve state, actor restarts and each orchestrator's counters.
"""

from __future__ import annotations

import time

from orion.adapters import kafka_progress
from orion.adapters.hold_expiry import open_holds
from orion.config import Settings
from orion.domain.progress import Settlement, assess
from orion.messages import ORCHESTRATOR_GROUP
from orion.stack import Echo, orion_env, ray_address, ray_head, use_local_ray


def settlement(settings: Settings) -> Settlement:
    """Settlement progress per partition, from Kafka alone (works with Orion down)."""
    progress = kafka_progress.partition_progress(
        settings.kafka_bootstrap, settings.topic_transfers, ORCHESTRATOR_GROUP
    )
    return assess(progress, time.time_ns() // 1_000_000, settings.stuck_after_s)


def app_status(settings: Settings, echo: Echo) -> bool:
    """Settlement per partition, actor restarts and orchestrator counters; False when any
    partition is stuck or the orchestrator does not answer."""
    report = settlement(settings)
    for line in describe_settlement(report, settings.stuck_after_s):
        echo(line)
    holds_ok = _describe_holds(settings, echo)
    if not settings.cluster and ray_head(settings).pid() is None:
        echo("ray: down")
        return False
    use_local_ray(settings)
    from orion.actors import runtime

    runtime.connect(ray_address(settings), settings.ray_namespace, orion_env())
    try:
        stats = runtime.orchestrator_stats()
        restarts = runtime.actor_restarts()
        api = runtime.api_status()
    finally:
        runtime.disconnect()
    echo(f"api: {api or 'not deployed'}")
    echo("restarts: " + (", ".join(f"{a}={n}" for a, n in sorted(restarts.items())) or "none"))
    answering = bool(stats) and all(s is not None for s in stats.values())
    for name, counters in sorted(stats.items()):
        if counters is None:
            echo(f"{name}: not answering")
            continue
        for key, value in counters.items():
            echo(f"{name} {key}: {value}")
    if not stats:
        echo("orchestrator: none running")
    return answering and not report.stuck and holds_ok


def _describe_holds(settings: Settings, echo: Echo) -> bool:
    """Open holds and whether their expiry keeps up; False when one is stuck (past its
    timeout longer than `stuck_after_s`) or PostgreSQL cannot say."""
    try:
        total, due, late_s = open_holds(settings.postgres_dsn)
    except Exception as err:  # noqa: BLE001 - reported as a failed status line, not raised
        echo(f"holds: unknown (postgres: {str(err).splitlines()[0]})")
        return False
    stuck = due > 0 and late_s > settings.stuck_after_s
    late = f", {due} past their timeout (oldest by {late_s:.0f} s)" if due else ""
    echo(f"holds: {total} open{late}{'  STUCK: expiry is not keeping up' if stuck else ''}")
    return not stuck


def describe_settlement(report: Settlement, stuck_after_s: float) -> list[str]:
    lines = [f"settlement: {report.summary()} (stuck = no commit for {stuck_after_s:.0f} s)"]
    for p in report.partitions:
        oldest = "-" if p.oldest_unsettled_age_s is None else f"{p.oldest_unsettled_age_s:.1f}s"
        commit = "-" if p.last_commit_age_s is None else f"{p.last_commit_age_s:.1f}s ago"
        flag = "  STUCK" if p.stuck else ""
        lines.append(
            f"  p{p.partition}: lag={p.lag} oldest_unsettled={oldest} last_commit={commit}{flag}"
        )
    return lines
