"""What a benchmark sends: the scenarios' load shapes, transfer ids and request bodies (pure).

Responsibilities: map a transfer index to its accounts (the seed's mirror pairing or a
deterministic pseudo-random pairing), to its id, and a request index to its JSON body.

Guarantees:
- Every body is a pure function of (shape, index): worker processes build their own bodies
  from the shape alone, and a report can name exactly what transfer k was.
- A run's transfer ids are UUID4s sharing one random prefix (90 random bits) and ending in
  the transfer index as 8 hex digits, so an outcome is matched to the run (and to its
  index) from its id alone, without a lookup table of a million strings.
- A transfer never pairs an account with itself (the API would refuse it).
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

SEED_FIRST_ACCOUNT = 40_817_810_111_322_211  # the original system's first 17-digit account
SEED_AMOUNT_MAJOR = 1  # the original load test moved 1 (major unit) per transfer
TRANSFER_INDEX_HEX_DIGITS = 8  # the id's last 8 hex digits are the transfer index
TRANSFERS_PER_RUN_MAX = 16**TRANSFER_INDEX_HEX_DIGITS  # what the index field can name
ID_PREFIX_CHARS = 36 - TRANSFER_INDEX_HEX_DIGITS  # the canonical UUID text minus the index
_MASK64 = (1 << 64) - 1


class Scenario(StrEnum):
    SEED = "seed"  # one transfer per POST /transactions/, closed loop, mirror pairing
    CONTENTION = "contention"  # one per POST /v1/transfers, random pairs over few accounts
    BATCH = "batch"  # B per POST /v1/transfers/batch
    LATENCY = "latency"  # one per POST /v1/transfers at a fixed arrival rate (open loop)
    GENERATOR = "generator"  # the seed shape against a trivial echo server: our own ceiling


class Endpoint(StrEnum):
    SEED = "/transactions/"
    TRANSFER = "/v1/transfers"
    BATCH = "/v1/transfers/batch"


class Pairing(StrEnum):
    MIRROR = "mirror"  # sender i -> receiver N-1-i, account index mod A (the seed's shape)
    RANDOM = "random"  # a pseudo-random distinct pair per index


def new_id_prefix() -> str:
    """A fresh run's id prefix: the canonical text of a random UUID4 minus its last 8 digits."""
    base = uuid.UUID(int=secrets.randbits(128) & ~(TRANSFERS_PER_RUN_MAX - 1), version=4)
    return str(base)[:ID_PREFIX_CHARS]


def transfer_id(prefix: str, index: int) -> str:
    return f"{prefix}{index:08x}"


def index_of(prefix: str, transfer_id_text: str) -> int | None:
    """The transfer index of a canonical id of this run, or None for anyone else's id."""
    if len(transfer_id_text) != 36 or not transfer_id_text.startswith(prefix):
        return None
    try:
        return int(transfer_id_text[ID_PREFIX_CHARS:], 16)
    except ValueError:
        return None


def mirror_pair(index: int, count: int, accounts: int) -> tuple[int, int]:
    """The seed's shape: sender i, receiver N-1-i, both mod A; a collision moves the receiver
    to the next account (only when 2i = N-1 mod A, e.g. the middle transfer of an odd N)."""
    sender = index % accounts
    receiver = (count - 1 - index) % accounts
    if receiver == sender:
        receiver = (receiver + 1) % accounts
    return sender, receiver


def random_pair(index: int, accounts: int, seed: int) -> tuple[int, int]:
    """A distinct (sender, receiver) pair, uniform enough, from a splitmix64 of the index."""
    h = _splitmix64(seed + index)
    sender = h % accounts
    receiver = (sender + 1 + (h >> 32) % (accounts - 1)) % accounts
    return sender, receiver


def _splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


@dataclass(frozen=True, slots=True)
class LoadShape:
    """Everything a worker needs to build request k's body; small and picklable."""

    endpoint: Endpoint
    count: int  # transfers in the run
    per_request: int  # transfers per request (1, or B for the batch endpoint)
    accounts: int  # account pool size A
    first_account: int
    currency: str
    pairing: Pairing
    id_prefix: str
    pair_seed: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= TRANSFERS_PER_RUN_MAX:
            raise ValueError(f"count must be in 1..{TRANSFERS_PER_RUN_MAX}")
        if self.accounts < 2:
            raise ValueError("the account pool needs at least 2 accounts")
        if self.per_request < 1 or (self.endpoint != Endpoint.BATCH and self.per_request != 1):
            raise ValueError("only the batch endpoint takes more than one transfer per request")

    @property
    def requests(self) -> int:
        return -(-self.count // self.per_request)

    def transfers_of(self, request: int) -> range:
        start = request * self.per_request
        return range(start, min(start + self.per_request, self.count))

    def pair(self, index: int) -> tuple[int, int]:
        if self.pairing is Pairing.MIRROR:
            return mirror_pair(index, self.count, self.accounts)
        return random_pair(index, self.accounts, self.pair_seed)

    def accounts_of(self, index: int) -> tuple[str, str]:
        sender, receiver = self.pair(index)
        return str(self.first_account + sender), str(self.first_account + receiver)

    def body(self, request: int) -> bytes:
        if self.endpoint is Endpoint.SEED:
            item: object = self.seed_item(request)
        elif self.endpoint is Endpoint.TRANSFER:
            item = self.transfer_item(request)
        else:
            item = {"transfers": [self.transfer_item(i) for i in self.transfers_of(request)]}
        return json.dumps(item, separators=(",", ":")).encode()

    def seed_item(self, index: int) -> dict[str, object]:
        sender, receiver = self.accounts_of(index)
        return {
            "sender_account": sender,
            "receiver_account": receiver,
            "amount": SEED_AMOUNT_MAJOR,
            "transaction_id": transfer_id(self.id_prefix, index),
        }

    def transfer_item(self, index: int) -> dict[str, object]:
        debit, credit = self.accounts_of(index)
        return {
            "id": transfer_id(self.id_prefix, index),
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": str(SEED_AMOUNT_MAJOR),
            "currency": self.currency,
        }
