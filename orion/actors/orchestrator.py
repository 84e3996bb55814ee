"""The orchestrator actor: runs the orchestration engine on its own thread, forever.

A thin shell: it builds the Kafka, Redis and Ray-shard adapters, then ticks the engine.

Guarantees:
- Its constructor cannot fail on infrastructure. Ray never restarts an actor whose
  constructor raised (it counts as a bug in the class), so an orchestrator restarted while
  Kafka was down used to stay dead for good. The clients are built on the engine thread,
  retried with bounded backoff for CONNECT_WINDOW_S; past it the process exits and Ray
  restarts it (a death after construction is always restarted).
- Any exception on the loop crashes the whole actor process, so Ray restarts it and it
  resumes from the committed offsets (nothing is lost: Kafka replays, shards dedupe by
  transfer id). State shared with other threads is an immutable Snapshot the loop publishes.
- A second thread sends the expiries of holds past their timeout
  (orion.adapters.hold_expiry), so a slow or absent PostgreSQL never stalls the engine; it
  stops when the orchestrator drains. Every orchestrator scans: the expiry of one hold has
  one id, so a hold found by two is still expired once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from orion import gc_tuning
from orion.actors.metrics import HoldMetrics, OrchestratorMetrics
from orion.adapters.hold_expiry import (
    EXPIRY_SCAN_INTERVAL_S,
    HOLDS_COUNT_INTERVAL_S,
    HoldExpirer,
)
from orion.adapters.kafka_source import KafkaTransferSource
from orion.adapters.locks import RedisAccountLocks
from orion.config import Settings, get_settings
from orion.faults import maybe_crash
from orion.messages import ORCHESTRATOR_GROUP
from orion.orchestration.engine import LOCK_LEASE_MS, Engine, Snapshot
from orion.orchestration.ports import ShardPool

log = logging.getLogger("orion.orchestrator")
METRICS_INTERVAL_S = 1.0  # gauges, counters and the shared snapshot refreshed this often
LAG_INTERVAL_S = 5.0  # consumer lag asks the broker; once per scrape interval is enough
RESTARTS_INTERVAL_S = 15.0  # actor restart counts come from Ray's state API: not every tick
CONNECT_WINDOW_S = 60.0  # keep trying Kafka, Redis and the shards this long, then exit
CONNECT_BACKOFF_FIRST_S = 0.5
CONNECT_BACKOFF_MAX_S = 5.0
DRAIN_POLL_S = 0.05  # how often drain() looks at the loop's progress

Restarts = Callable[[], Mapping[str, int]]


class Orchestrator:
    """Plain class; `orion.actors.runtime` wraps it with `ray.remote`."""

    def __init__(
        self, connect_shards: Callable[[], ShardPool], restarts: Restarts, member: str
    ) -> None:
        self._owner = f"orchestrator-{uuid.uuid4()}"
        self._member = member  # its static consumer-group identity: stable across restarts
        self._connect_shards, self._restarts = connect_shards, restarts
        self._snapshot: Snapshot | None = None
        self._shard_count = 0
        self._drain_requested = threading.Event()
        self._drained = threading.Event()
        gc_tuning.tune()
        self._thread = threading.Thread(target=self._main, name="orion-engine", daemon=True)
        self._thread.start()
        self._expiring = threading.Thread(target=self._expire, name="orion-expiry", daemon=True)
        self._expiring.start()

    def _expire(self) -> None:
        settings = get_settings()
        expirer = HoldExpirer(
            settings.postgres_dsn,
            settings.kafka_bootstrap,
            settings.topic_transfers,
            f"orion-expiry-{self._member}",
        )
        metrics, next_count = HoldMetrics(), time.monotonic()
        try:
            while not self._drain_requested.wait(EXPIRY_SCAN_INTERVAL_S):
                expirer.scan()
                if time.monotonic() >= next_count:
                    counted = expirer.count()
                    if counted is not None:
                        metrics.holds(*counted)
                    next_count = time.monotonic() + HOLDS_COUNT_INTERVAL_S
        finally:
            expirer.close()

    def _main(self) -> None:
        try:
            engine, source = self._connect(get_settings())
            self._shard_count = engine.shard_count
            log.info("orchestrator %s started with %d shards", self._owner, engine.shard_count)
            self._loop(engine, source)
        except BaseException:
            log.exception("orchestrator %s failed; exiting so Ray restarts it", self._owner)
            os._exit(1)

    def _connect(self, settings: Settings) -> tuple[Engine, KafkaTransferSource]:
        """Build the clients, retrying infrastructure failures within CONNECT_WINDOW_S."""
        deadline = time.monotonic() + CONNECT_WINDOW_S
        delay = CONNECT_BACKOFF_FIRST_S
        while True:
            try:
                return self._build(settings)
            except Exception as err:  # retried within the bound, then re-raised
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("orchestrator cannot start yet (%s); retry in %.1f s", err, delay)
                time.sleep(delay)
                delay = min(delay * 2, CONNECT_BACKOFF_MAX_S)

    def _build(self, settings: Settings) -> tuple[Engine, KafkaTransferSource]:
        shards = self._connect_shards()
        locks = RedisAccountLocks(settings.redis_url, self._owner, LOCK_LEASE_MS)
        # The consumer exists before the engine: its rebalance callbacks find it through this.
        holder: list[Engine] = []

        def assigned(partitions: set[int]) -> None:
            holder[0].on_assigned(partitions)

        def revoked(partitions: set[int]) -> Mapping[int, int]:
            return holder[0].on_revoked(partitions)

        source = KafkaTransferSource(
            settings.kafka_bootstrap,
            settings.topic_transfers,
            ORCHESTRATOR_GROUP,
            settings.topic_dlq,
            on_assigned=assigned,
            on_revoked=revoked,
            instance_id=self._member,
        )
        holder.append(Engine(source, locks, shards, time.monotonic))
        return holder[0], source

    def _loop(self, engine: Engine, source: KafkaTransferSource) -> None:
        metrics = OrchestratorMetrics()
        next_metrics = next_lag = next_restarts = time.monotonic()
        while True:
            if self._drain_requested.is_set():
                engine.drain()
            engine.tick()
            maybe_crash("orchestrator.tick")
            now = time.monotonic()
            if now >= next_metrics or self._drain_requested.is_set():
                self._publish(engine.snapshot(), metrics)
                next_metrics = now + METRICS_INTERVAL_S
            if now >= next_lag:
                lag = source.lag()
                metrics.consumer_lag(lag)
                engine.check_stalled(lag)
                # Not yet assigned (just started or rebalancing): ask again soon, so a
                # restarted orchestrator's lag series reappears within a second.
                next_lag = now + (LAG_INTERVAL_S if lag else METRICS_INTERVAL_S)
            if now >= next_restarts:
                self._export_restarts(metrics)
                next_restarts = now + RESTARTS_INTERVAL_S

    def _export_restarts(self, metrics: OrchestratorMetrics) -> None:
        try:
            metrics.restarts(self._restarts())
        except Exception as err:  # noqa: BLE001 - a metric, off the money path: read next time
            log.warning("actor restart counts unavailable: %s", err)

    def _publish(self, snapshot: Snapshot, metrics: OrchestratorMetrics) -> None:
        self._snapshot = snapshot  # one reference assignment: other threads see old or new
        metrics.counters(snapshot.stats)
        metrics.gauges(
            snapshot.pending,
            snapshot.locked_accounts,
            snapshot.inflight_per_shard,
            self._shard_count,
        )
        if snapshot.drained:
            self._drained.set()

    def drain(self, timeout_s: float) -> bool:
        """Stop polling, finish in-flight batches and commit; True when fully drained."""
        self._drain_requested.set()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._drained.is_set():
                return True
            if self._snapshot is None and not self._thread.is_alive():
                return True  # never connected: it took no work
            time.sleep(DRAIN_POLL_S)
        return False

    def stats(self) -> dict[str, Any]:
        snap = self._snapshot
        if snap is None:
            return {"owner": self._owner, "state": "connecting"}
        return {
            "owner": self._owner,
            "state": "draining" if self._drain_requested.is_set() else "running",
            "pending": snap.pending,
            "inflight_batches": snap.inflight_batches,
            "inflight_transfers": snap.inflight_transfers,
            "inflight_per_shard": snap.inflight_per_shard,
            **snap.stats,
        }

    def pid(self) -> int:
        return os.getpid()
