"""The orchestrator actor: runs the orchestration engine on its own thread, forever.

A thin shell: it builds the Kafka, Redis and Ray-shard adapters, then ticks the engine. Any
exception on the loop crashes the whole actor process, so Ray restarts it and it resumes from
the committed offsets (nothing is lost: Kafka replays, shards dedupe by transfer id).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any

from orion.actors.metrics import OrchestratorMetrics
from orion.adapters.kafka import KafkaTransferSource
from orion.adapters.locks import RedisAccountLocks
from orion.config import get_settings
from orion.faults import maybe_crash
from orion.messages import ORCHESTRATOR_GROUP
from orion.orchestration.engine import LOCK_LEASE_MS, Engine
from orion.orchestration.ports import ShardPool

log = logging.getLogger("orion.orchestrator")
DRAIN_POLL_S = 0.05  # how often drain() checks that in-flight batches are done
METRICS_INTERVAL_S = 1.0  # gauges and counters refreshed this often (Ray exports every ~5 s)
LAG_INTERVAL_S = 5.0  # consumer lag asks the broker; once per scrape interval is enough


class Orchestrator:
    """Plain class; `orion.actors.runtime` wraps it with `ray.remote`."""

    def __init__(self, shards: ShardPool) -> None:
        settings = get_settings()
        self._owner = f"orchestrator-{uuid.uuid4()}"
        self._locks = RedisAccountLocks(settings.redis_url, self._owner, LOCK_LEASE_MS)
        self._source = KafkaTransferSource(
            settings.kafka_bootstrap,
            settings.topic_transfers,
            ORCHESTRATOR_GROUP,
            settings.topic_dlq,
            on_assigned=self._on_assigned,
            on_revoked=self._on_revoked,
        )
        self._engine = Engine(self._source, self._locks, shards, time.monotonic)
        self._shard_count = shards.shard_count
        self._drain_requested = threading.Event()
        self._drained = threading.Event()
        self._thread = threading.Thread(target=self._run, name="orion-engine", daemon=True)
        self._thread.start()
        log.info("orchestrator %s started with %d shards", self._owner, shards.shard_count)

    # The consumer exists before the engine, so its rebalance callbacks go through here.
    def _on_assigned(self, partitions: set[int]) -> None:
        self._engine.on_assigned(partitions)

    def _on_revoked(self, partitions: set[int]) -> None:
        self._engine.on_revoked(partitions)

    def _run(self) -> None:
        metrics = OrchestratorMetrics()
        next_metrics = next_lag = time.monotonic()
        try:
            while True:
                if self._drain_requested.is_set() and not self._drained.is_set():
                    self._engine.drain()
                    self._drained.set()
                self._engine.tick()
                maybe_crash("orchestrator.tick")
                now = time.monotonic()
                if now >= next_metrics:
                    self._export(metrics)
                    next_metrics = now + METRICS_INTERVAL_S
                if now >= next_lag:
                    lag = self._source.lag()
                    metrics.consumer_lag(lag)
                    # Not yet assigned (just started or rebalancing): ask again soon, so a
                    # restarted orchestrator's lag series reappears within a second.
                    next_lag = now + (LAG_INTERVAL_S if lag else METRICS_INTERVAL_S)
        except BaseException:
            log.exception("orchestrator loop failed; exiting so Ray restarts this actor")
            os._exit(1)

    def _export(self, metrics: OrchestratorMetrics) -> None:
        stats = self.stats()
        metrics.counters(stats)
        metrics.gauges(
            stats["pending"],
            len(self._engine.locked_accounts),
            stats["inflight_per_shard"],
            self._shard_count,
        )

    def drain(self, timeout_s: float) -> bool:
        """Stop polling, finish in-flight batches and commit; True when fully drained."""
        self._drain_requested.set()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._drained.is_set() and self._engine.idle:
                time.sleep(DRAIN_POLL_S * 4)  # one more tick commits the last offsets
                return True
            time.sleep(DRAIN_POLL_S)
        return False

    def stats(self) -> dict[str, Any]:
        engine = self._engine
        per_shard: dict[int, int] = {}
        for flight in list(engine.inflight.values()):
            per_shard[flight.shard] = per_shard.get(flight.shard, 0) + 1
        return {
            "owner": self._owner,
            "pending": len(engine.queue),
            "inflight_batches": len(engine.inflight),
            "inflight_transfers": sum(len(f.batch) for f in list(engine.inflight.values())),
            "inflight_per_shard": per_shard,
            "polled": engine.stats.polled,
            "settled": engine.stats.settled,
            "dead_lettered": engine.stats.dead_lettered,
            "batches": engine.stats.batches,
            "redispatched": engine.stats.redispatched,
            "lock_conflicts": engine.stats.lock_conflicts,
            "outcomes": dict(engine.stats.by_status),
        }

    def pid(self) -> int:
        return os.getpid()
