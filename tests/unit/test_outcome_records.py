"""Records of the results topic: one outcome keyed by its id, or a packed record of the
outcomes of one shard batch that share a partition (load/design-results-records.md). Every
reader decodes both forms to the same outcomes, in order; a malformed record is refused whole."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orion.adapters.kafka import pack
from orion.adapters.kafka_partitioner import partition_of
from orion.domain.model import Kind
from orion.messages import (
    PACKED_RECORD_BYTES_MAX,
    PACKED_TRANSFERS_MAX,
    MessageError,
    OutcomeRecord,
    decode_outcome,
    decode_outcomes,
    encode_outcome,
    encode_packed,
)

PARTITIONS = 8


def _outcome(index: int = 0, status: str = "completed", reason: str | None = None) -> OutcomeRecord:
    return OutcomeRecord(
        str(uuid.UUID(int=index + 1)),
        status,
        reason,
        "40817810000000001",
        "40817810000000002",
        100 + index,
        "RUB",
        1_700_000_000_000 + index,
        1_700_000_000_050 + index,
    )


outcomes = st.builds(
    OutcomeRecord,
    transfer_id=st.uuids().map(str),
    status=st.sampled_from(["completed", "rejected", "pending"]),
    reason=st.none() | st.sampled_from(["insufficient_funds", "account_not_found"]),
    debit_account_id=st.text(min_size=1, max_size=64),
    credit_account_id=st.text(min_size=1, max_size=64),
    amount=st.integers(1, 2**63 - 1),
    currency=st.sampled_from(["RUB", "EUR"]),
    accepted_at_ms=st.integers(0, 2**41),
    settled_at_ms=st.integers(0, 2**41),
    kind=st.sampled_from([k.value for k in Kind]),
    target_id=st.none() | st.uuids().map(str),
)


@given(st.lists(outcomes, min_size=1, max_size=60))
def test_packing_a_batch_keeps_every_outcome_in_its_partition_and_order(
    batch: list[OutcomeRecord],
) -> None:
    """What a shard writes (`pack` by the partition of each id, `encode_packed`) decodes to
    exactly the outcomes of the batch: each in the partition its id hashes to, in the order
    of the batch, as the records of one outcome each would have decoded."""
    records = [(o.transfer_id.encode(), encode_outcome(o)) for o in batch]
    read: list[tuple[int, OutcomeRecord]] = []
    for group in pack(records, lambda key: partition_of(key, PARTITIONS)):
        read += [(group.partition, o) for o in decode_outcomes(encode_packed(group.values))]
    assert sorted(read, key=lambda pair: batch.index(pair[1])) == [
        (partition_of(o.transfer_id.encode(), PARTITIONS), o) for o in batch
    ]
    assert [decode_outcome(value) for _, value in records] == batch
    assert all(decode_outcomes(value) == [o] for (_, value), o in zip(records, batch, strict=True))


def test_wanted_picks_the_outcomes_to_build_from_either_form() -> None:
    batch = [_outcome(i) for i in range(5)]
    wanted = {batch[1].transfer_id, batch[3].transfer_id}
    packed = encode_packed([encode_outcome(o) for o in batch])
    assert decode_outcomes(packed, wanted.__contains__) == [batch[1], batch[3]]
    assert decode_outcomes(encode_outcome(batch[1]), wanted.__contains__) == [batch[1]]
    assert decode_outcomes(encode_outcome(batch[0]), wanted.__contains__) == []


def test_an_unwanted_malformed_element_is_not_built() -> None:
    """Only what a reader wants is checked: a stranger's broken element does not hide it."""
    good = _outcome(7)
    packed = encode_packed([b'{"id": "someone-else", "amount": "x"}', encode_outcome(good)])
    assert decode_outcomes(packed, {good.transfer_id}.__contains__) == [good]
    with pytest.raises(MessageError):
        decode_outcomes(packed)


@pytest.mark.parametrize(
    "record",
    [
        None,
        b"",
        b"[]",
        b"[not json",
        b"[1]",
        b'[{"id": "x"}]',
        b"[" + b",".join([encode_outcome(_outcome())] * (PACKED_TRANSFERS_MAX + 1)) + b"]",
        b"[" + b" " * PACKED_RECORD_BYTES_MAX + b"]",
        json.dumps({"id": "x"}).encode(),
    ],
)
def test_a_malformed_record_is_refused_whole(record: bytes | None) -> None:
    with pytest.raises(MessageError):
        decode_outcomes(record)
