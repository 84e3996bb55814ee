"""Decoding transfer records refuses, with MessageError naming the field, everything the
ledger could not store, so such a record goes to the DLQ at once instead of a retry loop."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from orion.messages import (
    ACCEPTED_AT_MS_MAX,
    BIGINT_MAX,
    MESSAGE_BYTES_MAX,
    PACKED_RECORD_BYTES_MAX,
    PACKED_TRANSFERS_MAX,
    AcceptedTransfer,
    MessageError,
    Undecodable,
    decode_record,
    decode_transfer,
    encode_packed,
    encode_transfer,
)

GOOD: dict[str, Any] = {
    "id": str(uuid.uuid4()),
    "debit": "40817810000000001",
    "credit": "40817810000000002",
    "amount": 100,
    "currency": "RUB",
    "accepted_at": 1_700_000_000_000,
}


def raw(**changes: Any) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (raw(amount=0), "amount"),
        (raw(amount=-5), "amount"),
        (raw(amount=BIGINT_MAX + 1), "amount"),
        (raw(amount=1.5), "amount"),
        (raw(currency="RUBX"), "currency"),
        (raw(currency="R\u00dcB"), "currency"),
        (raw(currency=""), "currency"),
        (raw(debit=""), "debit"),
        (raw(debit="a" * 65), "debit"),
        (raw(debit="a\u0000b"), "debit"),
        (raw(credit="a\ud800b"), "credit"),
        (raw(accepted_at=-1), "accepted_at"),
        (raw(accepted_at=ACCEPTED_AT_MS_MAX + 1), "accepted_at"),
        (raw(id="not-a-uuid"), "id"),
        (raw(metadata=[1]), "metadata"),
    ],
)
def test_values_the_ledger_refuses_are_refused_naming_the_field(record: bytes, field: str) -> None:
    """Out-of-range numbers, malformed currencies, unstorable account ids, impossible times."""
    with pytest.raises(MessageError, match=field):
        decode_transfer(record)


@pytest.mark.parametrize(
    "record",
    [
        None,  # a tombstone: a record without a value
        b"",
        b"\xff\xfe",
        b"[1, 2]",
        b"[" * 100_000 + b"]" * 100_000,  # deeper than json's recursion limit
        b'{"id": "x"' + b" " * MESSAGE_BYTES_MAX + b"}",
    ],
)
def test_undecodable_records_raise_message_error_never_anything_else(record: bytes | None) -> None:
    """No value, not UTF-8, not an object, nested too deep, too large: MessageError only."""
    with pytest.raises(MessageError):
        decode_transfer(record)


def test_values_at_the_bounds_decode() -> None:
    """Positive control: the extremes the ledger does store are accepted, metadata opaque
    (a NUL in metadata is left to the shard's isolation, not refused here)."""
    record = raw(
        amount=BIGINT_MAX,
        debit="a" * 64,
        credit="@world:RUB",
        accepted_at=ACCEPTED_AT_MS_MAX,
        metadata={"x": "\u0000"},
    )
    accepted = decode_transfer(record)
    assert accepted.transfer.amount == BIGINT_MAX
    assert accepted.metadata == {"x": "\u0000"}


HOLD_ID = str(uuid.uuid4())


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "pending", "expires_at": 1_700_000_360_000},
        {"kind": "post", "target": HOLD_ID},
        {"kind": "void", "target": HOLD_ID},
        {"kind": "expire", "target": HOLD_ID},
        {"kind": "reversal", "target": HOLD_ID},
    ],
)
def test_holds_and_reversals_round_trip(changes: dict[str, Any]) -> None:
    """Every kind survives encode(decode(record)) byte for byte in meaning."""
    accepted = decode_transfer(raw(**changes))
    assert accepted.transfer.kind == changes["kind"]
    assert json.loads(encode_transfer(accepted)) == {**GOOD, **changes}


def test_an_immediate_record_keeps_the_original_format() -> None:
    assert json.loads(encode_transfer(decode_transfer(raw()))) == GOOD


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "hold"}, "kind"),
        ({"kind": "pending"}, "expires_at"),
        ({"kind": "post"}, "target"),
        ({"kind": "reversal", "target": "not-a-uuid"}, "target"),
        ({"target": HOLD_ID}, "target"),
        ({"expires_at": 1}, "expires_at"),
    ],
)
def test_malformed_holds_and_reversals_are_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(MessageError, match=field):
        decode_transfer(raw(**changes))


def test_a_packed_record_decodes_to_its_transfers_in_order() -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    found = [a for _, a in decode_record(encode_packed([raw(id=tid) for tid in ids]))]
    assert [a.transfer.id for a in found if isinstance(a, AcceptedTransfer)] == ids
    assert [a.transfer.id for _, a in decode_record(raw()) if isinstance(a, AcceptedTransfer)] == [
        GOOD["id"]
    ]
    assert [place for place, _ in decode_record(encode_packed([raw()] * 3))] == [0, 1, 2]
    assert [place for place, _ in decode_record(raw())] == [None]


def test_a_malformed_element_is_undecodable_in_its_place_and_its_neighbours_decode() -> None:
    found = [a for _, a in decode_record(encode_packed([raw(), raw(amount=0), b"[1]", raw()]))]
    kinds = [AcceptedTransfer, Undecodable, Undecodable, AcceptedTransfer]
    assert [type(f) for f in found] == kinds
    assert isinstance(found[1], Undecodable) and "amount" in found[1].error
    assert json.loads(found[1].value)["amount"] == 0


@pytest.mark.parametrize(
    "record",
    [
        b"[]",
        b"[" + b",".join([raw()] * (PACKED_TRANSFERS_MAX + 1)) + b"]",
        b"[" + b" " * PACKED_RECORD_BYTES_MAX + b"]",
        b"[not json",
        b'{"id": 1}',
    ],
)
def test_a_malformed_record_is_refused_whole(record: bytes) -> None:
    with pytest.raises(MessageError):
        decode_record(record)
