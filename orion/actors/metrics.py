"""Orion's metrics, exported the Ray way (`ray.util.metrics`) from the actors.

Ray exports application metrics through its per-node metrics agent, which Prometheus finds
via Ray's service-discovery file; Ray prefixes every application metric with `ray_`, so
`orion_pending_transfers` is scraped as `ray_orion_pending_transfers`. Every counter and
each of its label sets starts at zero (`start_at_zero`), so a quiet system shows every series.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence

from ray.util.metrics import Counter, Gauge, Histogram

from orion.actors.labels import (
    LATENCY_SAMPLE_EVERY,
    NO_REASON,
    SETTLED_LABEL_SETS,
    latency_sample,
)
from orion.adapters.metrics import start_at_zero
from orion.messages import OutcomeRecord

LATENCY_BOUNDARIES_S: list[float] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
APPLY_BOUNDARIES_S: list[float] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
BATCH_SIZE_BOUNDARIES: list[float] = [1, 5, 10, 25, 50, 100, 250, 500, 1000]


class HoldMetrics:
    """Holds as PostgreSQL has them, exported by each orchestrator's expiry thread (two
    orchestrators export the same numbers: dashboards take the max)."""

    def __init__(self) -> None:
        self.open = Gauge("orion_holds_open", "Holds pending: money reserved, not yet moved.")
        self.overdue = Gauge(
            "orion_holds_overdue", "Open holds past their timeout: expiring now, or stuck."
        )

    def holds(self, open_holds: int, overdue: int) -> None:
        self.open.set(open_holds)
        self.overdue.set(overdue)


class OrchestratorMetrics:
    """Counters fed from the engine's cumulative stats (as deltas), gauges set each tick."""

    def __init__(self) -> None:
        self.polled = Counter(
            "orion_transfers_polled_total",
            "Transfers read from the topic (a packed record counts each).",
        )
        self.dlq = Counter(
            "orion_dlq_records_total",
            "Dead letters sent: transfers, or records that do not decode.",
        )
        self.conflicts = Counter(
            "orion_lock_conflicts_total", "Accounts found leased by another orchestrator."
        )
        self.redispatched = Counter(
            "orion_batches_redispatched_total", "Batches dispatched again after a failure."
        )
        self.pending = Gauge("orion_pending_transfers", "Transfers waiting for a round.")
        self.locks = Gauge("orion_locks_held", "Accounts locked by in-flight batches.")
        self.inflight = Gauge(
            "orion_inflight_batches", "Batches dispatched, not yet settled.", tag_keys=("shard",)
        )
        self.lag = Gauge(
            "orion_consumer_lag_records",
            "Broker end offset minus the group's committed offset.",
            tag_keys=("partition",),
        )
        self.restart_counts = Gauge(
            "orion_actor_restarts",
            "Times Ray restarted an Orion actor (orchestrator, shard-N) since `orion up`.",
            tag_keys=("actor",),
        )
        self._last: dict[str, int] = {}
        for counter in (self.polled, self.dlq, self.conflicts, self.redispatched):
            start_at_zero(counter)

    def counters(self, totals: Mapping[str, object]) -> None:
        meters = {
            "polled": self.polled,
            "dead_lettered": self.dlq,
            "lock_conflicts": self.conflicts,
            "redispatched": self.redispatched,
        }
        for name, counter in meters.items():
            total = int(totals[name])  # type: ignore[call-overload]
            delta = total - self._last.get(name, 0)
            if delta > 0:
                counter.inc(delta)
            self._last[name] = total

    def gauges(
        self, pending: int, locks: int, per_shard: Mapping[int, int], shard_count: int
    ) -> None:
        self.pending.set(pending)
        self.locks.set(locks)
        for shard in range(shard_count):
            self.inflight.set(per_shard.get(shard, 0), tags={"shard": str(shard)})

    def restarts(self, counts: Mapping[str, int]) -> None:
        for actor, count in counts.items():
            self.restart_counts.set(count, tags={"actor": actor})

    def consumer_lag(self, lag: Mapping[int, int]) -> None:
        for partition, records in lag.items():
            self.lag.set(records, tags={"partition": str(partition)})


class ShardMetrics:
    def __init__(self, shard_id: int) -> None:
        self._tags = {"shard": str(shard_id)}
        self.settled = Counter(
            "orion_transfers_settled_total",
            "Transfers settled, by final status and rejection reason.",
            tag_keys=("status", "reason"),
        )
        self.latency = Histogram(
            "orion_settle_latency_seconds",
            "Accepted (by the API) to settled (committed by a shard); observed for one"
            f" transfer in {LATENCY_SAMPLE_EVERY} of each batch, by rank.",
            boundaries=LATENCY_BOUNDARIES_S,
        )
        self.apply = Histogram(
            "orion_batch_apply_seconds",
            "One batch's PostgreSQL transaction, claim to commit.",
            boundaries=APPLY_BOUNDARIES_S,
            tag_keys=("shard",),
        )
        self.size = Histogram(
            "orion_batch_size_transfers",
            "Transfers per dispatched batch.",
            boundaries=BATCH_SIZE_BOUNDARIES,
            tag_keys=("shard",),
        )
        for tags in SETTLED_LABEL_SETS:
            start_at_zero(self.settled, tags)

    def batch(self, size: int, apply_s: float) -> None:
        self.size.observe(size, tags=self._tags)
        self.apply.observe(apply_s, tags=self._tags)

    def outcomes(self, outcomes: Sequence[OutcomeRecord]) -> None:
        """One counter add per status/reason pair of the batch; the sampled latencies."""
        counts = collections.Counter((o.status, o.reason or NO_REASON) for o in outcomes)
        for (status, reason), n in counts.items():
            self.settled.inc(n, tags={"status": status, "reason": reason})
        for ms in latency_sample([o.settled_at_ms - o.accepted_at_ms for o in outcomes]):
            self.latency.observe(max(ms / 1000, 0.0))
