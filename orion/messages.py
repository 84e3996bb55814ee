"""Wire formats of Orion's Kafka records (JSON, UTF-8), shared by the API, shards and tools.

`orion.transfers`: value = an accepted transfer (a JSON object), key = its debit account id
(so one account's transfers keep their order in one partition); or a packed record (the API's
default, see load/design-ingest-records.md): value = a JSON array of such objects, all of
whose debit accounts map to the record's partition, in acceptance order, key = null.
`orion.transfer-results`: key = transfer id; value = its outcome (final, or `pending` for a
hold; the hold's resolution is the outcome of the post / void / expire record that resolved
it); or a packed record (the shards' default, see load/design-results-records.md): value = a
JSON array of such outcomes, all of whose ids map to the record's partition, in the order of
the shard's batch, key = null. Amounts are integers in minor units; times are epoch milliseconds.

A record's `kind` is absent for an immediate transfer (the original format); a hold carries
`"kind": "pending"` and `expires_at`; a post, void, expire or reversal carries its kind and
`target` (the hold's id, or the reversed transfer's). Outcomes carry `kind` and `target` the
same way.

Decoding validates shape, types and every field the ledger would refuse to store (an amount
outside 1..bigint, a currency that is not three letters, an account id that is empty, longer
than an account id can be, or carries a NUL or a lone surrogate, a time PostgreSQL cannot
hold) and raises MessageError: the orchestrator sends such records to the DLQ at once instead
of crashing on them. Metadata is opaque here; what the database refuses in it is caught by
the shard's per-record isolation (orion.orchestration.isolation).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from orion.domain.model import (
    ACCOUNT_ID_CHARS_MAX,
    TARGETED_KINDS,
    Kind,
    Transfer,
    pickled_by_fields,
)

T = TypeVar("T")
# The orchestrator's consumer group: its committed offsets mean "settled" (audit, status).
ORCHESTRATOR_GROUP = "orion-orchestrator"
MESSAGE_BYTES_MAX = 64 * 1024  # metadata included; a larger record is malformed, not a transfer
# A packed record carries at most this many transfers (or outcomes) and bytes (the writer
# splits a larger group in order), well under the broker's default message.max.bytes (1 MiB).
PACKED_TRANSFERS_MAX = 500
PACKED_BYTES_MAX = 512 * 1024
# Larger than this, a packed record is malformed (Orion never writes one).
PACKED_RECORD_BYTES_MAX = 1024 * 1024
BIGINT_MAX = 2**63 - 1  # transfers.amount is a bigint
CURRENCY_CHARS = 3  # transfers.currency is char(3)
# accepted_at becomes a timestamptz: PostgreSQL holds up to year 294276; the year 9999 is
# far enough and keeps the value an honest epoch in milliseconds.
ACCEPTED_AT_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
# One encoder for every compact record: json.dumps with separators builds a new one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
# Reply of a shard for a record it could not settle and sent to the DLQ instead (never
# published to the results topic; the orchestrator only needs it to advance the offset).
DEAD_LETTERED = "dead_lettered"


class MessageError(ValueError):
    """A record that is not a well-formed Orion message."""


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class AcceptedTransfer:
    transfer: Transfer
    accepted_at_ms: int
    metadata: dict[str, Any] | None = None
    expires_at_ms: int | None = None  # a hold's timeout; None for every other kind


@dataclass(frozen=True, slots=True)
class QueuedTransfer:
    """An accepted transfer as the orchestrator holds it: with its Kafka coordinates.

    The routable ids are copied into plain fields because the planner reads them for every
    queued transfer on every round (properties cost a call each). It crosses Ray to a shard
    pickled as one flat tuple (`__reduce__`), not as three nested objects and an enum, each
    with its own reduce call: half the orchestrator's pickling time (load/wire_costs.py).
    """

    accepted: AcceptedTransfer
    partition: int
    offset: int
    index: int | None = None  # its place in a packed record; None for a one-transfer record
    id: str = field(init=False)
    debit_account_id: str = field(init=False)
    credit_account_id: str = field(init=False)

    def __post_init__(self) -> None:
        t = self.accepted.transfer
        object.__setattr__(self, "id", t.id)
        object.__setattr__(self, "debit_account_id", t.debit_account_id)
        object.__setattr__(self, "credit_account_id", t.credit_account_id)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        a = self.accepted
        t = a.transfer
        flat = (
            t.id, t.debit_account_id, t.credit_account_id, t.amount, t.currency,
            t.kind.value, t.target_id, a.accepted_at_ms, a.metadata, a.expires_at_ms,
            self.partition, self.offset, self.index,
        )  # fmt: skip
        return _queued_from_flat, flat


# Kind(value) costs ~0.4 us a call, a tenth of unpickling one transfer: look it up instead.
_KINDS = {k.value: k for k in Kind}


def _queued_from_flat(
    transfer_id: str,
    debit: str,
    credit: str,
    amount: int,
    currency: str,
    kind: str,
    target_id: str | None,
    accepted_at_ms: int,
    metadata: dict[str, Any] | None,
    expires_at_ms: int | None,
    partition: int,
    offset: int,
    index: int | None,
) -> QueuedTransfer:
    """Unpickle a QueuedTransfer from its `__reduce__` tuple."""
    transfer = Transfer(transfer_id, debit, credit, amount, currency, _KINDS[kind], target_id)
    accepted = AcceptedTransfer(transfer, accepted_at_ms, metadata, expires_at_ms)
    return QueuedTransfer(accepted, partition, offset, index)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    transfer_id: str
    status: str
    reason: str | None
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    accepted_at_ms: int
    settled_at_ms: int
    kind: str = Kind.IMMEDIATE.value
    target_id: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Verdicts:
    """A shard's answer for one batch: each transfer's id, status and reason, in batch order.

    The outcomes themselves went to the results topic; the orchestrator needs only these to
    advance its offsets and count. Three lists of strings cross Ray about 20 times cheaper
    than the outcome records (load/wire_costs.py).
    """

    ids: list[str]
    statuses: list[str]
    reasons: list[str | None]

    @classmethod
    def of(cls, outcomes: Sequence[OutcomeRecord]) -> Verdicts:
        return cls(
            [o.transfer_id for o in outcomes],
            [o.status for o in outcomes],
            [o.reason for o in outcomes],
        )


def outcome_of(
    queued: QueuedTransfer, status: str, reason: str | None, settled_at_ms: int
) -> OutcomeRecord:
    """The outcome of a queued transfer, its body copied from the record."""
    t = queued.accepted.transfer
    return OutcomeRecord(
        transfer_id=t.id,
        status=status,
        reason=reason,
        debit_account_id=t.debit_account_id,
        credit_account_id=t.credit_account_id,
        amount=t.amount,
        currency=t.currency,
        accepted_at_ms=queued.accepted.accepted_at_ms,
        settled_at_ms=settled_at_ms,
        kind=t.kind.value,
        target_id=t.target_id,
    )


def encode_transfer(accepted: AcceptedTransfer) -> bytes:
    t = accepted.transfer
    body: dict[str, Any] = {
        "id": t.id,
        "debit": t.debit_account_id,
        "credit": t.credit_account_id,
        "amount": t.amount,
        "currency": t.currency,
        "accepted_at": accepted.accepted_at_ms,
    }
    if accepted.metadata:
        body["metadata"] = accepted.metadata
    if t.kind != Kind.IMMEDIATE:
        body["kind"] = t.kind.value
    if t.target_id is not None:
        body["target"] = t.target_id
    if accepted.expires_at_ms is not None:
        body["expires_at"] = accepted.expires_at_ms
    return _COMPACT.encode(body).encode()


@dataclass(frozen=True, slots=True)
class Undecodable:
    """An element of a packed record that is not a well-formed transfer (its JSON, and why)."""

    value: bytes
    error: str


def encode_packed(values: Sequence[bytes]) -> bytes:
    """A packed record of already encoded transfers (`encode_transfer`), in their order."""
    return b"[" + b",".join(values) + b"]"


def decode_record(raw: bytes | None) -> list[tuple[int | None, AcceptedTransfer | Undecodable]]:
    """The transfers of one record of the transfers topic, in order, each with its place:
    an object is one transfer (place None), an array a packed record (place = its index).
    MessageError when the record as a whole is malformed (it goes to the DLQ whole); a
    malformed element of an array is an `Undecodable` in its place (it goes alone, its
    neighbours settle)."""
    if not _is_packed(raw):
        return [(None, decode_transfer(raw))]
    body = _load_packed(raw, "transfers")
    found: list[tuple[int | None, AcceptedTransfer | Undecodable]] = []
    for index, element in enumerate(body):
        try:
            if not isinstance(element, dict):
                raise MessageError("element is not a JSON object")
            found.append((index, _transfer_of(element)))
        except MessageError as err:
            value = _COMPACT.encode(element).encode(errors="replace")
            found.append((index, Undecodable(value, str(err))))
    return found


def decode_transfer(raw: bytes | None) -> AcceptedTransfer:
    return _transfer_of(_load_object(raw))


def _transfer_of(body: dict[str, Any]) -> AcceptedTransfer:
    transfer_id = _field(body, "id", str)
    try:
        uuid.UUID(transfer_id)
    except ValueError:
        raise MessageError("field 'id' must be a UUID") from None
    kind = _kind(body)
    transfer = Transfer(
        id=transfer_id,
        debit_account_id=_account(body, "debit"),
        credit_account_id=_account(body, "credit"),
        amount=_bounded(body, "amount", 1, BIGINT_MAX),
        currency=_currency(body),
        kind=kind,
        target_id=_uuid(body, "target") if kind in TARGETED_KINDS else None,
    )
    if kind not in TARGETED_KINDS:
        _absent(body, "target")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise MessageError("field 'metadata' must be an object")
    accepted_at = _bounded(body, "accepted_at", 0, ACCEPTED_AT_MS_MAX)
    expires_at = None
    if kind == Kind.PENDING:
        expires_at = _bounded(body, "expires_at", 0, ACCEPTED_AT_MS_MAX)
    else:
        _absent(body, "expires_at")
    return AcceptedTransfer(transfer, accepted_at, metadata, expires_at)


def _kind(body: dict[str, Any]) -> Kind:
    value = body.get("kind", Kind.IMMEDIATE.value)
    try:
        return Kind(value)
    except ValueError:
        raise MessageError(f"field 'kind' must be one of {[k.value for k in Kind]}") from None


def _uuid(body: dict[str, Any], name: str) -> str:
    value = _field(body, name, str)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise MessageError(f"field {name!r} must be a UUID") from None


def _absent(body: dict[str, Any], name: str) -> None:
    if name in body:
        raise MessageError(f"field {name!r} does not belong to kind {body.get('kind')!r}")


def encode_outcome(outcome: OutcomeRecord) -> bytes:
    body: dict[str, Any] = {
        "id": outcome.transfer_id,
        "status": outcome.status,
        "reason": outcome.reason,
        "debit": outcome.debit_account_id,
        "credit": outcome.credit_account_id,
        "amount": outcome.amount,
        "currency": outcome.currency,
        "accepted_at": outcome.accepted_at_ms,
        "settled_at": outcome.settled_at_ms,
    }
    if outcome.kind != Kind.IMMEDIATE:
        body["kind"] = outcome.kind
    if outcome.target_id is not None:
        body["target"] = outcome.target_id
    return _COMPACT.encode(body).encode()


def decode_outcome(raw: bytes) -> OutcomeRecord:
    return _outcome_of(_load_object(raw))


def decode_outcomes(
    raw: bytes | None, wanted: Callable[[str], bool] | None = None
) -> list[OutcomeRecord]:
    """The outcomes of one record of the results topic, in order: an object is one outcome,
    an array a packed record (load/design-results-records.md). With `wanted`, only the
    outcomes whose transfer id it accepts are decoded (and checked). MessageError when the
    record, or an element it decodes, is malformed: the record counts as undecodable whole."""
    if not _is_packed(raw):
        outcome = _outcome_of(_load_object(raw))
        return [outcome] if wanted is None or wanted(outcome.transfer_id) else []
    body = _load_packed(raw, "outcomes")
    found: list[OutcomeRecord] = []
    for element in body:
        if not isinstance(element, dict):
            raise MessageError("element is not a JSON object")
        if wanted is not None:
            transfer_id = element.get("id")
            if not (isinstance(transfer_id, str) and wanted(transfer_id)):
                continue
        found.append(_outcome_of(element))
    return found


def _outcome_of(body: dict[str, Any]) -> OutcomeRecord:
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise MessageError("field 'reason' must be a string or null")
    return OutcomeRecord(
        transfer_id=_field(body, "id", str),
        status=_field(body, "status", str),
        reason=reason,
        debit_account_id=_field(body, "debit", str),
        credit_account_id=_field(body, "credit", str),
        amount=_field(body, "amount", int),
        currency=_field(body, "currency", str),
        accepted_at_ms=_field(body, "accepted_at", int),
        settled_at_ms=_field(body, "settled_at", int),
        kind=_kind(body).value,
        target_id=_uuid(body, "target") if "target" in body else None,
    )


def _is_packed(raw: bytes | None) -> bool:
    """A packed record is a JSON array (anything else is read as one object)."""
    return isinstance(raw, bytes | bytearray) and raw[:1] == b"["


def _load_packed(raw: bytes | None, items: str) -> list[Any]:
    """The elements of a packed record, not yet checked one by one: a non-empty JSON array
    of at most PACKED_TRANSFERS_MAX `items` within PACKED_RECORD_BYTES_MAX, else MessageError."""
    body = _load(raw, PACKED_RECORD_BYTES_MAX)
    if not isinstance(body, list) or not body:
        raise MessageError("a packed record must be a non-empty JSON array")
    if len(body) > PACKED_TRANSFERS_MAX:
        raise MessageError(f"a packed record holds at most {PACKED_TRANSFERS_MAX} {items}")
    return body


def _load_object(raw: bytes | None) -> dict[str, Any]:
    body = _load(raw)
    if not isinstance(body, dict):
        raise MessageError("record is not a JSON object")
    return body


def _load(raw: bytes | None, bytes_max: int = MESSAGE_BYTES_MAX) -> Any:
    if not isinstance(raw, bytes | bytearray):
        raise MessageError("record has no value")
    if len(raw) > bytes_max:
        raise MessageError(f"record of {len(raw)} bytes exceeds {bytes_max}")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MessageError(f"not JSON: {err}") from None
    except RecursionError:
        raise MessageError("not JSON: nested too deeply") from None
    return body


def _account(body: dict[str, Any], name: str) -> str:
    value = _field(body, name, str)
    if not 0 < len(value) <= ACCOUNT_ID_CHARS_MAX:
        raise MessageError(f"field {name!r} must be 1-{ACCOUNT_ID_CHARS_MAX} characters")
    if not storable_text(value):
        raise MessageError(f"field {name!r} holds a NUL or a lone surrogate")
    return value


def _currency(body: dict[str, Any]) -> str:
    value = _field(body, "currency", str)
    if not (len(value) == CURRENCY_CHARS and value.isascii() and value.isalpha()):
        raise MessageError(f"field 'currency' must be {CURRENCY_CHARS} ASCII letters")
    return value


def _bounded(body: dict[str, Any], name: str, low: int, high: int) -> int:
    value = _field(body, name, int)
    if not low <= value <= high:
        raise MessageError(f"field {name!r} must be within {low}..{high}")
    return value


def storable_text(text: str) -> bool:
    """False when PostgreSQL would refuse `text`: it holds a NUL or a lone surrogate."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _field(body: dict[str, Any], name: str, kind: type[T]) -> T:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MessageError(f"field {name!r} must be {kind.__name__}")
    return value
