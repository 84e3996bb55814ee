"""The shard actor: a long-lived Ray actor owning one PostgreSQL connection.

`apply` settles one batch in one transaction (orion.adapters.ledger, claim first) and then
publishes every outcome to the results topic with acks=all before returning them. A crash
between commit and publish is healed by the orchestrator's re-dispatch: the claim step finds
the stored outcomes and they are published again. An infrastructure error propagates to the
caller (which retries with backoff); a broken connection is replaced on the next call.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

from orion.actors.metrics import ShardMetrics
from orion.adapters import kafka as kafka_adapter
from orion.adapters import ledger
from orion.config import get_settings
from orion.faults import maybe_crash
from orion.messages import OutcomeRecord, QueuedTransfer, encode_outcome

log = logging.getLogger("orion.shard")


class Shard:
    """Plain class; `orion.actors.runtime` wraps it with `ray.remote`."""

    def __init__(self, shard_id: int) -> None:
        self.shard_id = shard_id
        self._settings = get_settings()
        self._conn = ledger.connect(self._settings.postgres_dsn)
        self._producer = kafka_adapter.RecordProducer(
            self._settings.kafka_bootstrap, f"orion-shard-{shard_id}"
        )
        self._metrics = ShardMetrics(shard_id)
        log.info("shard %d ready", shard_id)

    def apply(self, batch_id: str, batch: Sequence[QueuedTransfer]) -> list[OutcomeRecord]:
        if self._conn.closed or self._conn.broken:
            self._conn = ledger.connect(self._settings.postgres_dsn)
        started = time.perf_counter()
        outcomes = ledger.apply_batch(self._conn, batch, batch_id, self.shard_id)
        self._metrics.batch(len(batch), time.perf_counter() - started)
        maybe_crash("shard.after_commit")
        self._producer.send_all(
            self._settings.topic_results,
            [(o.transfer_id.encode(), encode_outcome(o)) for o in outcomes],
        )
        self._metrics.outcomes(outcomes)
        return outcomes

    def ping(self) -> int:
        return self.shard_id

    def pid(self) -> int:
        return os.getpid()
