"""What the HTTP API needs from the outside world: small Protocols and the `ApiDeps` bundle.

The real implementations live in `orion/adapters/api_*.py` (the only modules of the API that
import kafka, redis or psycopg); unit tests pass fakes. Every adapter turns its library's
errors into `DependencyUnavailableError`, which the app answers with 503 — never a 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from orion.config import Settings
from orion.serve.outcomes import OutcomeWaiters

Record = tuple[bytes, bytes]  # (key, value) of one Kafka record


class DependencyUnavailableError(RuntimeError):
    """Kafka, Redis or PostgreSQL did not answer (in time); `name` says which."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


class TransferProducer(Protocol):
    async def produce(self, records: Sequence[Record]) -> list[BaseException | None]:
        """Send every record, then await all broker acks together (bounded).

        Returns, per record, None once the broker acknowledged it, else the error.
        """

    async def ping(self) -> None: ...


class IdempotencyStore(Protocol):
    """Per-transfer-id keys; values are opaque strings (see orion/serve/idempotency.py)."""

    async def claim(self, claims: Sequence[tuple[str, str]], ttl_ms: int) -> list[str | None]:
        """SET NX each (id, value) in one round trip; per claim, None if it won, else the
        value that already held the id."""

    async def get(self, transfer_id: str) -> str | None: ...

    async def promote(self, items: Sequence[tuple[str, str, str]], ttl_ms: int) -> None:
        """For each (id, expected, new): replace the value only if it still equals expected."""

    async def release(self, items: Sequence[tuple[str, str]]) -> None:
        """For each (id, expected): delete the key only if it still holds expected."""

    async def ping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: str
    currency: str
    balance: int
    overdraft_limit: int | None
    created_at: datetime
    updated_at: datetime
    pending_debits: int = 0  # open holds debiting it
    pending_credits: int = 0  # open holds crediting it


@dataclass(frozen=True, slots=True)
class EntryRow:
    id: int
    transfer_id: str
    delta: int
    balance_after: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TransferRow:
    """A settled transfer row (any status but a shard's old 'claimed'); the hold and
    reversal columns keep their defaults for an immediate transfer."""

    id: str
    status: str
    reason: str | None
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    accepted_at: datetime
    settled_at: datetime | None
    kind: str = "immediate"
    target_id: str | None = None
    expires_at: datetime | None = None
    posted_amount: int | None = None
    reversed_amount: int = 0


class Ledger(Protocol):
    """The API's view of PostgreSQL: account creation plus reads."""

    async def create_account(
        self, account_id: str, currency: str, overdraft_limit: int
    ) -> tuple[AccountRow, bool]:
        """Insert the account (and its currency's @world account if missing) in one
        transaction; returns (row, True) if created, (the existing row, False) otherwise."""

    async def get_account(self, account_id: str) -> AccountRow | None: ...

    async def list_entries(
        self, account_id: str, before_id: int | None, limit: int
    ) -> list[EntryRow]:
        """Entries of the account with id < before_id (all if None), newest first."""

    async def get_transfer(self, transfer_id: str) -> TransferRow | None: ...

    async def ping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """Per-deployment API behaviour read from the settings once, at start-up."""

    api_keys: frozenset[str] = frozenset()
    seed_currency: str = "RUB"
    idempotency_window_ms: int = 24 * 3600 * 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiOptions:
        return cls(
            api_keys=frozenset(settings.api_keys),
            seed_currency=settings.seed_currency,
            idempotency_window_ms=settings.idempotency_window_s * 1000,
        )


class Progress(Protocol):
    """Whether settlement moves, as read from Kafka (orion.domain.progress)."""

    @property
    def stuck_summary(self) -> str | None:
        """One line naming the stuck partitions and the oldest unsettled transfer's age;
        None while nothing is stuck (or before the first reading)."""


@dataclass(slots=True)
class ApiDeps:
    """Everything a request handler may touch; built once per app instance."""

    producer: TransferProducer
    idempotency: IdempotencyStore
    ledger: Ledger
    outcomes: OutcomeWaiters = field(default_factory=OutcomeWaiters)
    options: ApiOptions = field(default_factory=ApiOptions)
    progress: Progress | None = None
