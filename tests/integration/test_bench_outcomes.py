"""The bench's results-topic watcher (load/outcomes.py) against the real broker: while the load
runs it only counts what was published; afterwards it reads every outcome of the run from
where it started, skips other runs', counts repeats, and waits for what is still missing."""

from __future__ import annotations

from load import outcomes
from load.outcomes import OutcomeWatcher
from load.shapes import new_id_prefix, transfer_id
from orion.adapters.kafka import RecordProducer
from orion.config import Settings
from orion.messages import OutcomeRecord, encode_outcome

COUNT = 5


def _outcome(prefix: str, index: int, status: str = "completed") -> tuple[bytes, bytes]:
    tid = transfer_id(prefix, index)
    record = OutcomeRecord(
        transfer_id=tid,
        status=status,
        reason=None,
        debit_account_id="40817810000000000001",
        credit_account_id="40817810000000000002",
        amount=100,
        currency="RUB",
        accepted_at_ms=1_000 + index,
        settled_at_ms=2_000 + 10 * index,
    )
    return tid.encode(), encode_outcome(record)


def test_counts_while_running_then_reads_the_runs_outcomes(
    settings: Settings, topic: str, monkeypatch
) -> None:
    monkeypatch.setattr(outcomes, "PUBLISHED_REFRESH_S", 0.0)
    producer = RecordProducer(settings.kafka_bootstrap, "test-bench-outcomes")
    prefix, other = new_id_prefix(), new_id_prefix()
    producer.send_all(topic, [_outcome(other, 0)])  # before the run: never counted or read
    watcher = OutcomeWatcher(settings.kafka_bootstrap, topic, prefix, COUNT)
    watcher.start()
    try:
        assert watcher.published() == 0
        first = [_outcome(prefix, i) for i in range(COUNT - 1)]
        producer.send_all(topic, [*first, _outcome(other, 1), first[0]])  # a repeat of 0
        assert watcher.published() == COUNT + 1
        # Six records published: the count is reached although index 4 has no outcome yet.
        assert watcher.wait_published(COUNT, timeout_s=5, idle_s=5) is None
        assert watcher.seen == 0  # nothing was read before read()
        watcher.read()
        why = watcher.wait_drained(list(range(COUNT)), timeout_s=2, idle_s=1)
        assert why is not None and why.startswith("1 without an outcome")
        producer.send_all(topic, [_outcome(prefix, COUNT - 1, "rejected")])
        assert watcher.wait_drained(list(range(COUNT)), timeout_s=10, idle_s=5) is None
    finally:
        watcher.stop()
        producer.close()
    assert watcher.seen == COUNT
    assert watcher.duplicates == 1
    assert watcher.statuses == {"completed": COUNT - 1, "rejected": 1}
    assert list(watcher.settled_at_ms) == [2_000 + 10 * i for i in range(COUNT)]
    assert list(watcher.accepted_at_ms) == [1_000 + i for i in range(COUNT)]


def test_waiting_for_the_count_gives_up_when_nothing_new_comes(
    settings: Settings, topic: str, monkeypatch
) -> None:
    monkeypatch.setattr(outcomes, "PUBLISHED_REFRESH_S", 0.0)
    watcher = OutcomeWatcher(settings.kafka_bootstrap, topic, new_id_prefix(), COUNT)
    watcher.start()
    try:
        why = watcher.wait_published(COUNT, timeout_s=30, idle_s=0.5)
    finally:
        watcher.stop()
    assert why == f"{COUNT} outcomes not published, none new for 0 s"
