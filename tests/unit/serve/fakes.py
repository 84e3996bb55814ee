"""In-memory stand-ins for the API's ports, with the same semantics as the real adapters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from orion.domain.model import world_account_id
from orion.messages import AcceptedTransfer, decode_transfer
from orion.serve.ports import (
    AccountRow,
    ApiDeps,
    ApiOptions,
    DependencyUnavailableError,
    EntryRow,
    Record,
    TransferRow,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class FakeProducer:
    """Records what was produced; `fail` makes every send fail, `gate` holds acks back."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.fail: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.down = False

    async def produce(self, records: Sequence[Record]) -> list[BaseException | None]:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            return [self.fail for _ in records]
        self.records.extend(records)
        return [None for _ in records]

    async def ping(self) -> None:
        if self.down:
            raise DependencyUnavailableError("kafka", "fake broker down")

    @property
    def transfers(self) -> list[AcceptedTransfer]:
        return [decode_transfer(value) for _, value in self.records]


class FakeStore:
    """Redis semantics of SET NX GET, compare-and-set and compare-and-delete."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.ttls: dict[str, int] = {}
        self.claim_calls = 0

    async def claim(self, claims: Sequence[tuple[str, str]], ttl_ms: int) -> list[str | None]:
        self.claim_calls += 1
        held: list[str | None] = []
        for key, value in claims:
            held.append(self.values.get(key))
            if key not in self.values:
                self.values[key], self.ttls[key] = value, ttl_ms
        return held

    async def get(self, transfer_id: str) -> str | None:
        return self.values.get(transfer_id)

    async def promote(self, items: Sequence[tuple[str, str, str]], ttl_ms: int) -> None:
        for key, expected, new in items:
            if self.values.get(key) == expected:
                self.values[key], self.ttls[key] = new, ttl_ms

    async def release(self, items: Sequence[tuple[str, str]]) -> None:
        for key, expected in items:
            if self.values.get(key) == expected:
                del self.values[key]

    async def ping(self) -> None:
        return None


@dataclass
class FakeLedger:
    accounts: dict[str, AccountRow] = field(default_factory=dict)
    entries: dict[str, list[EntryRow]] = field(default_factory=dict)
    transfers: dict[str, TransferRow] = field(default_factory=dict)
    creates: int = 0

    async def create_account(
        self, account_id: str, currency: str, overdraft_limit: int
    ) -> tuple[AccountRow, bool]:
        self.creates += 1
        world = world_account_id(currency)
        self.accounts.setdefault(world, AccountRow(world, currency, 0, None, NOW, NOW))
        if account_id in self.accounts:
            return self.accounts[account_id], False
        row = AccountRow(account_id, currency, 0, overdraft_limit, NOW, NOW)
        self.accounts[account_id] = row
        return row, True

    async def get_account(self, account_id: str) -> AccountRow | None:
        return self.accounts.get(account_id)

    async def list_entries(
        self, account_id: str, before_id: int | None, limit: int
    ) -> list[EntryRow]:
        rows = sorted(self.entries.get(account_id, []), key=lambda e: -e.id)
        return [e for e in rows if before_id is None or e.id < before_id][:limit]

    async def get_transfer(self, transfer_id: str) -> TransferRow | None:
        return self.transfers.get(transfer_id)

    async def ping(self) -> None:
        return None


def fake_deps(api_keys: frozenset[str] = frozenset()) -> ApiDeps:
    return ApiDeps(
        producer=FakeProducer(),
        idempotency=FakeStore(),
        ledger=FakeLedger(),
        options=ApiOptions(api_keys=api_keys, seed_currency="RUB"),
    )
