"""Check 4 without Kafka or PostgreSQL: records and a lookup are handed in as fakes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence

import pytest

from orion import audit
from orion.adapters.ledger_audit import KafkaReadError, Record, TopicSnapshot
from orion.domain import Transfer
from orion.messages import AcceptedTransfer, encode_packed, encode_transfer

SNAP = TopicSnapshot("t", "g", committed={0: 5}, beginning={0: 0, 1: 0}, end={0: 8, 1: 2})


def _record(offset: int, transfer_id: str, partition: int = 0) -> Record:
    value = encode_transfer(AcceptedTransfer(Transfer(transfer_id, "a", "b", 1, "RUB"), 0))
    return Record(partition, offset, value)


class FakeLedger:
    """Statuses by canonical id; remembers each lookup's size."""

    def __init__(self, statuses: Mapping[str, str]) -> None:
        self.statuses, self.calls = dict(statuses), list[int]()

    def __call__(self, ids: Sequence[str]) -> dict[str, str]:
        self.calls.append(len(ids))
        return {i: self.statuses[i] for i in ids if i in self.statuses}


def test_missing_and_unfinished_transfers_are_violations() -> None:
    """No row, or a claimed row, is a violation; completed and rejected are final."""
    ids = [str(uuid.uuid4()) for _ in range(4)]
    ledger = FakeLedger({ids[0]: "completed", ids[1]: "rejected", ids[2]: "claimed"})
    result = audit.check_acknowledged(SNAP, [_record(n, i) for n, i in enumerate(ids)], ledger)
    assert result.count == 2
    assert result.examples == (
        f"transfer {ids[2]} (partition 0 offset 2): status claimed",
        f"transfer {ids[3]} (partition 0 offset 3): no transfers row",
    )


def test_undecodable_records_are_dlq_not_violations() -> None:
    """Garbage and tombstones are counted as dlq; in-flight counts every uncommitted record."""
    done = str(uuid.uuid4())
    records = [Record(0, 0, b"{not json"), Record(0, 1, None), _record(2, done)]
    result = audit.check_acknowledged(SNAP, records, FakeLedger({done: "completed"}))
    assert result.ok
    assert result.notes == (
        "read 3 records below group g's committed offsets on t",
        "dlq (undecodable or dead-lettered): 2",
        "in flight: 5",  # 3 past the commit on partition 0, all 2 of uncommitted partition 1
    )


def test_ids_are_canonicalised_and_looked_up_in_bounded_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An upper-case id still matches the database's lower-case text; lookups are chunked."""
    ids = [str(uuid.uuid4()) for _ in range(5)]
    records = [_record(n, i.upper()) for n, i in enumerate(ids)]
    ledger = FakeLedger(dict.fromkeys(ids, "completed"))
    monkeypatch.setattr(audit, "LOOKUP_IDS_MAX", 2)
    result = audit.check_acknowledged(SNAP, records, ledger)
    assert result.ok
    assert ledger.calls == [2, 2, 1]


def test_examples_stay_bounded_when_everything_is_missing() -> None:
    """10,500 missing transfers: the exact count, EXAMPLES_PER_CHECK_MAX examples."""
    records = [_record(n, str(uuid.uuid4())) for n in range(10_500)]
    result = audit.check_acknowledged(SNAP, records, FakeLedger({}))
    assert (result.count, len(result.examples)) == (10_500, audit.EXAMPLES_PER_CHECK_MAX)


def test_an_unreadable_topic_is_a_violation() -> None:
    """Stopping short of the committed offsets means #4 is unverified: it fails, loudly."""

    def stalled() -> Iterator[Record]:
        yield _record(0, str(uuid.uuid4()))
        raise KafkaReadError("t: no record for 30 s before the committed offsets of [0]")

    result = audit.check_acknowledged(SNAP, stalled(), FakeLedger({}))
    assert result.count == 2  # the unverified rest, and the one record read without a row
    assert result.examples[0].startswith("t: no record for 30 s")
    assert result.examples[1].endswith("(partition 0 offset 0): no transfers row")


def test_no_committed_offsets_means_nothing_checked() -> None:
    """A group that never committed: reported, not a violation, and nothing is read."""

    class Untouchable:
        def __iter__(self) -> Iterator[Record]:
            raise AssertionError("records must not be read")

    empty = TopicSnapshot("t", "g", {}, {}, {})
    result = audit.check_acknowledged(empty, Untouchable(), FakeLedger({}))
    assert result.ok
    assert result.notes == ("group g has no committed offsets on t: not checked",)


def test_in_flight_counts_from_the_commit_or_the_retained_beginning() -> None:
    """Past the commit per partition; an uncommitted partition counts from its beginning, and
    a commit below the retained beginning counts from the beginning."""
    snap = TopicSnapshot("t", "g", {0: 10, 1: 3}, {0: 0, 1: 5, 2: 4}, {0: 12, 1: 9, 2: 6})
    assert audit.in_flight(snap) == 2 + 4 + 2


def test_a_record_the_shard_dead_lettered_is_dlq_not_a_violation() -> None:
    """A decodable record with no transfers row counts as dlq when the DLQ names its place
    (a shard could not store it); at another place it is a violation (positive control)."""
    lost, dead = str(uuid.uuid4()), str(uuid.uuid4())
    records = [_record(0, dead), _record(1, lost)]
    result = audit.check_acknowledged(SNAP, records, FakeLedger({}), dead={(0, 0)})
    assert result.count == 1
    assert result.examples == (f"transfer {lost} (partition 0 offset 1): no transfers row",)
    assert "dlq (undecodable or dead-lettered): 1" in result.notes


def test_each_transfer_of_a_packed_record_needs_its_own_outcome_or_dead_letter() -> None:
    """A packed record is checked transfer by transfer: one settled, one dead-lettered by
    its index, one malformed (dlq), one with no row (a violation named by its index). A
    whole-record dead letter covers every transfer of it."""
    settled, dead, lost = (str(uuid.uuid4()) for _ in range(3))
    value = encode_packed(
        [_record(0, settled).value or b"", _record(0, dead).value or b"", b"{}",
         _record(0, lost).value or b""]
    )  # fmt: skip
    ledger = FakeLedger({settled: "completed"})
    result = audit.check_acknowledged(SNAP, [Record(0, 3, value)], ledger, dead={(0, 3, 1)})
    assert result.count == 1
    assert result.examples == (f"transfer {lost} (partition 0 offset 3 index 3): no transfers row",)
    assert "dlq (undecodable or dead-lettered): 2" in result.notes
    whole = audit.check_acknowledged(SNAP, [Record(0, 3, value)], ledger, dead={(0, 3)})
    assert whole.ok


def test_unsettled_past_the_bound_is_a_violation_with_its_age() -> None:
    """Check 6: records handed in (already filtered to older than the bound) without a final
    row or a DLQ entry are violations naming their age; settled or dead-lettered ones pass."""
    stuck, settled, dead = (str(uuid.uuid4()) for _ in range(3))
    old_ms = 1_000  # 1970: long past any bound
    records = [
        Record(0, 7, _record(7, stuck).value, old_ms),
        Record(0, 8, _record(8, settled).value, old_ms),
        Record(0, 9, _record(9, dead).value, old_ms),
    ]
    result = audit.check_unsettled(records, FakeLedger({settled: "completed"}), dead={(0, 9)})
    assert (result.number, result.count) == (6, 1)
    assert result.examples[0].startswith(f"transfer {stuck} (partition 0 offset 7): accepted ")
    assert result.examples[0].endswith("s ago, no transfers row")
    assert audit.check_unsettled([], FakeLedger({})).ok
