"""The shard actor: a long-lived Ray actor owning one PostgreSQL connection.

`apply` settles one batch in one transaction (orion.adapters.ledger, claim first) and then
publishes every outcome to the results topic with acks=all before answering with their
verdicts (id, status, reason: all the orchestrator needs); by default the outcomes that share
a partition travel as one packed record (load/design-results-records.md). A crash between
commit and publish is healed by the orchestrator's re-dispatch: the claim step finds the
stored outcomes and they are published again.

Two kinds of failure, kept apart (DESIGN, "When things fail"):
- a record whose data the database refuses is isolated by splitting the batch
  (orion.orchestration.isolation): it becomes a `rejected` / `invalid_record` outcome, or,
  when even that cannot be stored (or it reuses a settled id for another transfer), a DLQ
  record with the reason; every other transfer of the batch settles normally;
- anything else (PostgreSQL or Kafka unreachable) propagates to the orchestrator, which
  retries with backoff; a broken connection or a wedged producer is replaced on the next call.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

from orion import gc_tuning
from orion.actors.metrics import ShardMetrics
from orion.adapters import kafka as kafka_adapter
from orion.adapters import ledger
from orion.config import get_settings
from orion.domain import Reason
from orion.faults import maybe_crash
from orion.messages import (
    DEAD_LETTERED,
    OutcomeRecord,
    QueuedTransfer,
    Verdicts,
    encode_outcome,
    encode_transfer,
    outcome_of,
)
from orion.orchestration.isolation import Unsettleable
from orion.orchestration.ports import DeadLetter

log = logging.getLogger("orion.shard")
UNSETTLEABLE = "unsettleable"  # dead-letter reason: not storable even as a rejection


class Shard:
    """Plain class; `orion.actors.runtime` wraps it with `ray.remote`."""

    def __init__(self, shard_id: int) -> None:
        # Nothing here may fail on infrastructure: Ray never restarts an actor whose
        # constructor raised. The connection is made by the first batch (and remade after).
        self.shard_id = shard_id
        self._settings = get_settings()
        self._conn: ledger.Conn | None = None
        self._producer = kafka_adapter.RecordProducer(
            self._settings.kafka_bootstrap, f"orion-shard-{shard_id}"
        )
        self._metrics = ShardMetrics(shard_id)
        gc_tuning.tune()
        log.info("shard %d ready", shard_id)

    def apply(self, batch_id: str, batch: Sequence[QueuedTransfer]) -> Verdicts:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = ledger.connect(self._settings.postgres_dsn)
        started = time.perf_counter()
        results = ledger.settle(self._conn, batch, batch_id, self.shard_id)
        self._metrics.batch(len(batch), time.perf_counter() - started)
        maybe_crash("shard.after_commit")
        outcomes, dead = self._sorted(batch_id, batch, results)
        final = [o for o in outcomes if o.status != DEAD_LETTERED]
        records = [(o.transfer_id.encode(), encode_outcome(o)) for o in final]
        if self._settings.results_records == "packed":
            self._producer.send_packed(self._settings.topic_results, records)
        else:
            self._producer.send_all(self._settings.topic_results, records)
        if dead:
            self._producer.send_dead_letters(
                self._settings.topic_dlq, self._settings.topic_transfers, dead
            )
        self._metrics.outcomes(final)
        return Verdicts.of(outcomes)

    def _sorted(
        self,
        batch_id: str,
        batch: Sequence[QueuedTransfer],
        results: Sequence[OutcomeRecord | Unsettleable[QueuedTransfer]],
    ) -> tuple[list[OutcomeRecord], list[DeadLetter]]:
        """Outcomes in batch order, and the DLQ records of those that cannot settle."""
        outcomes: list[OutcomeRecord] = []
        dead: list[DeadLetter] = []
        now_ms = time.time_ns() // 1_000_000
        for queued, result in zip(batch, results, strict=True):
            if isinstance(result, Unsettleable):
                outcome = outcome_of(queued, DEAD_LETTERED, UNSETTLEABLE, now_ms)
                why = f"{UNSETTLEABLE}: {result.error}"
            else:
                outcome, why = result, str(result.reason)
            if outcome.status == DEAD_LETTERED:
                value = encode_transfer(queued.accepted)
                dead.append(DeadLetter(queued.partition, queued.offset, value, why, queued.index))
            if outcome.status == DEAD_LETTERED or outcome.reason == Reason.INVALID_RECORD:
                log.warning(
                    "shard %d batch %s: transfer %s %s: %s",
                    self.shard_id, batch_id, outcome.transfer_id, outcome.status, why,
                )  # fmt: skip
            outcomes.append(outcome)
        return outcomes, dead

    def ping(self) -> int:
        return self.shard_id

    def pid(self) -> int:
        return os.getpid()
