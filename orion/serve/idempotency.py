"""Idempotency keys of accepted transfers: canonical bodies and the values stored per id.

Responsibilities: reduce a validated transfer to one canonical JSON text (so "12.3" and
"12.30", or reordered metadata keys, are the same body), hash it, and encode / decode the
value kept under `orion:idem:{id}`:

    "<sha256>:pending:<owner>"                          claimed, produce in progress
    "<sha256>:accepted:<accepted_at_ms>:<canonical>"    the broker acknowledged it

The accepted value carries the body so `GET /v1/transfers/{id}` can answer before the
transfer settles. `<owner>` is unique per request (a random token per process plus a
counter; one getrandom call per request cost 3 % of the replica): a claim that finds its own
pending value has won, so a claim repeated after a dropped connection is safe. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from dataclasses import dataclass
from typing import Any

from orion.domain.model import Transfer

IDEM_TTL_MS = 7 * 24 * 3600 * 1000  # a client may retry a transfer for a week and get one answer
# A claim whose owner died mid-produce frees itself after this; well above the send timeout.
IDEM_PENDING_TTL_MS = 60_000
OWNER_TOKEN_BYTES = 8  # per process; 64 random bits never repeat among the API's processes
_PROCESS_TOKEN = secrets.token_hex(OWNER_TOKEN_BYTES)
_requests = itertools.count()  # next() is atomic under the GIL
PENDING = "pending"
ACCEPTED = "accepted"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A fully validated transfer, ready to be claimed and produced."""

    transfer: Transfer
    metadata: dict[str, Any] | None
    canonical: str
    digest: str
    owner: str

    @property
    def pending_value(self) -> str:
        return f"{self.digest}:{PENDING}:{self.owner}"

    def accepted_value(self, accepted_at_ms: int) -> str:
        return f"{self.digest}:{ACCEPTED}:{accepted_at_ms}:{self.canonical}"


@dataclass(frozen=True, slots=True)
class StoredValue:
    digest: str
    state: str
    accepted_at_ms: int | None = None
    body: dict[str, Any] | None = None


def candidate(transfer: Transfer, metadata: dict[str, Any] | None) -> Candidate:
    body = {
        "id": transfer.id,
        "debit": transfer.debit_account_id,
        "credit": transfer.credit_account_id,
        "amount": transfer.amount,
        "currency": transfer.currency,
        "metadata": metadata or None,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    owner = f"{_PROCESS_TOKEN}.{next(_requests):x}"
    return Candidate(transfer, metadata or None, canonical, digest, owner)


def decode(value: str) -> StoredValue:
    """Parse a stored value; raises ValueError for anything this module did not write."""
    digest, _, rest = value.partition(":")
    state, _, rest = rest.partition(":")
    if state == PENDING:
        return StoredValue(digest, state)
    if state != ACCEPTED:
        raise ValueError(f"unknown idempotency state {state!r}")
    accepted_at, _, canonical = rest.partition(":")
    body = json.loads(canonical)
    if not isinstance(body, dict):
        raise ValueError("idempotency body is not an object")
    return StoredValue(digest, state, int(accepted_at), body)


def redis_key(transfer_id: str) -> str:
    return f"orion:idem:{transfer_id}"
