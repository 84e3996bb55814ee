"""The API's view of the ledger on PostgreSQL (psycopg's async pool); imports psycopg for the API.

Account creation is one transaction that also ensures the currency's `@world:<CUR>` system
account. Everything else is a read. A transfer row still in status 'claimed' (inside a
shard's open transaction) is never shown. psycopg errors become DependencyUnavailableError.

The pool checks a connection before lending it (one round trip, on a path far from the
ingest hot path): after PostgreSQL restarts, idle connections are dead, and without the check
each was lent out, failed a request and went back to the pool, for as long as it lived.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from orion.adapters.postgres import CONNECT_TIMEOUT_S
from orion.domain.model import world_account_id
from orion.serve.ports import AccountRow, DependencyUnavailableError, EntryRow, TransferRow

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]
POOL_CONNECTIONS_MAX = 4  # API reads are rare next to produces; two cores share them
POOL_WAIT_S = 5.0  # a request waits this long for a free connection, then 503

_ACCOUNT_COLUMNS = (
    "id, currency, balance, overdraft_limit, created_at, updated_at, pending_debits,"
    " pending_credits"
)
ENSURE_WORLD = """
INSERT INTO accounts (id, currency, balance, overdraft_limit) VALUES (%s, %s, 0, NULL)
ON CONFLICT (id) DO NOTHING
"""
INSERT_ACCOUNT = f"""
INSERT INTO accounts (id, currency, balance, overdraft_limit) VALUES (%s, %s, 0, %s)
ON CONFLICT (id) DO NOTHING RETURNING {_ACCOUNT_COLUMNS}
"""
SELECT_ACCOUNT = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = %s"
SELECT_ENTRIES = """
SELECT id, transfer_id::text AS transfer_id, delta, balance_after, created_at FROM entries
WHERE account_id = %s AND (%s::bigint IS NULL OR id < %s::bigint)
ORDER BY id DESC LIMIT %s
"""
SELECT_TRANSFER = """
SELECT id::text AS id, status, reason, debit_account_id, credit_account_id, amount,
       currency, accepted_at, settled_at, kind, target_id::text AS target_id, expires_at,
       posted_amount, reversed_amount
FROM transfers WHERE id = %s::uuid AND status <> 'claimed'
"""


class PostgresLedger:
    def __init__(self, dsn: str) -> None:
        self._pool = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=POOL_CONNECTIONS_MAX,
            timeout=POOL_WAIT_S,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            check=AsyncConnectionPool.check_connection,
            open=False,
        )

    async def open(self) -> None:
        # wait=False: the API starts (and /readyz says why) even while PostgreSQL is down.
        await self._pool.open(wait=False)

    async def aclose(self) -> None:
        await self._pool.close()

    async def create_account(
        self, account_id: str, currency: str, overdraft_limit: int
    ) -> tuple[AccountRow, bool]:
        async def create(conn: Conn) -> tuple[AccountRow, bool]:
            async with conn.transaction():
                await conn.execute(ENSURE_WORLD, (world_account_id(currency), currency))
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(INSERT_ACCOUNT, (account_id, currency, overdraft_limit))
                row = await cur.fetchone()
                if row is not None:
                    return _account(row), True
                await cur.execute(SELECT_ACCOUNT, (account_id,))
                existing = await cur.fetchone()
            if existing is None:  # deleted between the two statements: nothing we wrote
                raise DependencyUnavailableError("postgres", f"account {account_id} vanished")
            return _account(existing), False

        return await self._run(create)

    async def get_account(self, account_id: str) -> AccountRow | None:
        row = await self._one(SELECT_ACCOUNT, (account_id,))
        return None if row is None else _account(row)

    async def list_entries(
        self, account_id: str, before_id: int | None, limit: int
    ) -> list[EntryRow]:
        async def select(conn: Conn) -> list[EntryRow]:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(SELECT_ENTRIES, (account_id, before_id, before_id, limit))
            return [EntryRow(**row) for row in await cur.fetchall()]

        return await self._run(select)

    async def get_transfer(self, transfer_id: str) -> TransferRow | None:
        row = await self._one(SELECT_TRANSFER, (transfer_id,))
        if row is None:
            return None
        return TransferRow(**{**row, "currency": row["currency"].strip()})

    async def ping(self) -> None:
        await self._one("SELECT 1 AS one", ())

    async def _one(self, query: LiteralString, params: tuple[Any, ...]) -> dict[str, Any] | None:
        async def select(conn: Conn) -> dict[str, Any] | None:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, params)
            return await cur.fetchone()

        return await self._run(select)

    async def _run(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        try:
            async with self._pool.connection() as conn:
                return await work(conn)
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as err:
            raise DependencyUnavailableError("postgres", str(err).splitlines()[0]) from err


def _account(row: dict[str, Any]) -> AccountRow:
    return AccountRow(**{**row, "currency": row["currency"].strip()})
