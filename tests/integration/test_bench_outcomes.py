"""The bench's results-topic watcher (load/outcomes.py) against the real broker: while the load
runs it reads nothing, and settling is judged from the orchestrators' committed offsets on the
transfers topic; afterwards it reads every outcome of the run from where it started (records
of one outcome or packed ones), skips other runs', counts repeats, and waits for what is
still missing."""

from __future__ import annotations

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata, TopicPartition

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
    """Records of one outcome and packed ones alike: the run's outcomes are read from where
    the watcher started, others' skipped, a repeat counted as one."""
    monkeypatch.setattr(outcomes, "PUBLISHED_REFRESH_S", 0.0)
    producer = RecordProducer(settings.kafka_bootstrap, "test-bench-outcomes")
    prefix, other = new_id_prefix(), new_id_prefix()
    producer.send_all(topic, [_outcome(other, 0)])  # before the run: never counted or read
    watcher = OutcomeWatcher(settings.kafka_bootstrap, topic, prefix, COUNT)
    watcher.start()
    try:
        assert watcher.published() == 0
        first = [_outcome(prefix, i) for i in range(COUNT - 1)]
        producer.send_all(topic, [first[0], _outcome(other, 1)])
        producer.send_packed(topic, [*first[1:], _outcome(other, 2), first[0]])  # 0 repeated
        assert watcher.published() == 3  # records, not outcomes
        assert watcher.seen == 0  # nothing was read before read()
        watcher.read()
        why = watcher.wait_drained(list(range(COUNT)), timeout_s=2, idle_s=1)
        assert why is not None and why.startswith("1 without an outcome")
        producer.send_packed(topic, [_outcome(prefix, COUNT - 1, "rejected")])
        assert watcher.wait_drained(list(range(COUNT)), timeout_s=10, idle_s=5) is None
    finally:
        watcher.stop()
        producer.close()
    assert watcher.seen == COUNT
    assert watcher.duplicates == 1
    assert watcher.undecodable == 0
    assert watcher.statuses == {"completed": COUNT - 1, "rejected": 1}
    assert list(watcher.settled_at_ms) == [2_000 + 10 * i for i in range(COUNT)]
    assert list(watcher.accepted_at_ms) == [1_000 + i for i in range(COUNT)]


def test_settled_means_the_group_committed_past_the_transfers_topic_end(
    settings: Settings, topic: str, unique: str, monkeypatch
) -> None:
    """`wait_settled` counts the transfers topic's records the group has not committed past
    (as they stood when it was called): it gives up when no commit moves, and returns once
    the group committed the end."""
    monkeypatch.setattr(outcomes, "PUBLISHED_REFRESH_S", 0.0)
    transfers, group = f"{topic}.transfers", f"test-settled-{unique}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(transfers, 2, 1)])
    producer = RecordProducer(settings.kafka_bootstrap, "test-bench-settled")
    committer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    watcher = OutcomeWatcher(settings.kafka_bootstrap, topic, new_id_prefix(), COUNT)
    try:
        producer.send_all(transfers, [(f"acc-{i}".encode(), b"{}") for i in range(COUNT)])
        watcher.start()
        ticks: list[int] = []
        why = watcher.wait_settled(transfers, group, timeout_s=30, idle_s=0.5, on_tick=ticks.append)
        assert why == f"{COUNT} records not settled, none new for 0 s"
        assert ticks and set(ticks) == {COUNT}
        parts = [TopicPartition(transfers, p) for p in (0, 1)]
        ends = committer.end_offsets(parts)
        committer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in parts})
        assert watcher.wait_settled(transfers, group, timeout_s=30, idle_s=5) is None
    finally:
        watcher.stop()
        committer.close(autocommit=False)
        producer.close()
        admin.delete_topics([transfers])
        admin.close()
