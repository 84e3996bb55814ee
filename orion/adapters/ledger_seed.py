"""The seed's SQL: create accounts in bulk and fund each with an opening-balance transfer.

Guarantees (all inside ONE transaction, the caller's or `seed`'s own):
- Only accounts this call really inserted are funded; ids that already existed are left
  untouched (not refunded), whatever their currency or balance.
- Money enters only through completed transfers from `@world:<CUR>`, each with its two
  entries, so the sum of all balances stays zero and every balance equals its entries.
- The world account is locked FOR UPDATE before any account row is written: two seeds of
  overlapping ranges then queue on that one row instead of deadlocking on each other's new
  accounts, and the world's entries get increasing ids ending at its final balance.
- Opening transfer ids are deterministic (seeding.opening_transfer_id): a second funding of
  one account fails on the transfers primary key and rolls everything back.
- settle_seq follows the shards' scheme (ledger.SETTLE_SEQ_STRIDE), so one global settlement
  order holds across seeds and batches.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from orion.adapters.ledger import SETTLE_SEQ_STRIDE
from orion.adapters.postgres import CONNECT_TIMEOUT_S
from orion.domain.model import LedgerInvariantError
from orion.seeding import SeedError, SeedPlan, SeedResult, opening_transfer_id, world_after

Connection = psycopg.Connection[Any]
COMPLETED = "completed"  # opening balances are settled the moment they are written
ANALYZE_AFTER_ACCOUNTS_MIN = 10_000  # below this autovacuum's own analyze catches up soon enough

_COPY_TRANSFERS = (
    "COPY transfers (id, debit_account_id, credit_account_id, amount, currency, status,"
    " settle_seq, accepted_at, settled_at) FROM STDIN (FORMAT BINARY)"
)
_TRANSFER_TYPES = ["uuid", "text", "text", "int8", "text", "text", "int8"] + ["timestamptz"] * 2
_COPY_ENTRIES = (
    "COPY entries (transfer_id, account_id, delta, balance_after) FROM STDIN (FORMAT BINARY)"
)
_ENTRY_TYPES = ["uuid", "text", "int8", "int8"]


def seed(dsn: str, plan: SeedPlan) -> SeedResult:
    """Run `seed_accounts` in one transaction of its own and commit, then refresh planner
    statistics: after a bulk load every other session's plans would still see the old size."""
    started = time.monotonic()
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        with conn.transaction():
            result = seed_accounts(conn, plan)
        if result.created >= ANALYZE_AFTER_ACCOUNTS_MIN:
            conn.execute("ANALYZE accounts, transfers, entries")
    return SeedResult(result.created, result.existing, time.monotonic() - started)


def seed_accounts(conn: Connection, plan: SeedPlan) -> SeedResult:
    """Create and fund the plan's accounts inside the caller's transaction (commits nothing)."""
    started = time.monotonic()
    # Every entry row runs two foreign-key checks. Planned on a small (or bloated) table they
    # become sequential scans, and a seed into a fresh ledger turns quadratic: minutes, not
    # seconds. The checks are primary-key lookups, so keep them on the index.
    conn.execute("SET LOCAL enable_seqscan = off")
    world_balance = _lock_world(conn, plan) if plan.balance else 0
    created = _insert_accounts(conn, plan)
    if plan.balance and created:
        _fund(conn, plan, created, world_balance)
    return SeedResult(len(created), plan.count - len(created), time.monotonic() - started)


def _lock_world(conn: Connection, plan: SeedPlan) -> int:
    """Make sure `@world:<CUR>` exists (unbounded overdraft), lock it, return its balance."""
    world = plan.world_account_id
    conn.execute(
        "INSERT INTO accounts (id, currency, balance, overdraft_limit) VALUES (%s, %s, 0, NULL)"
        " ON CONFLICT (id) DO NOTHING",
        (world, plan.currency),
    )
    row = conn.execute(
        "SELECT balance, currency FROM accounts WHERE id = %s FOR UPDATE", (world,)
    ).fetchone()
    if row is None or row[1] != plan.currency:
        raise SeedError(f"{world} exists with currency {row and row[1]!r}, not {plan.currency}")
    return int(row[0])


def _insert_accounts(conn: Connection, plan: SeedPlan) -> list[str]:
    """Insert the plan's ids not yet taken, already at their opening balance; return them
    in numeric order (RETURNING has no defined order, settlement order should)."""
    conn.execute("CREATE TEMP TABLE seed_ids (id text NOT NULL) ON COMMIT DROP")
    with conn.cursor() as cur:
        with cur.copy("COPY seed_ids (id) FROM STDIN") as copy:
            for account_id in plan.account_ids():
                copy.write_row((account_id,))
        cur.execute(
            "INSERT INTO accounts (id, currency, balance, overdraft_limit)"
            " SELECT id, %s, %s, %s FROM seed_ids ON CONFLICT (id) DO NOTHING RETURNING id",
            (plan.currency, plan.balance, plan.overdraft_limit),
        )
        created = [str(row[0]) for row in cur.fetchall()]
    conn.execute("DROP TABLE seed_ids")  # a second seed in the same transaction needs the name
    created.sort(key=int)
    return created


def _fund(conn: Connection, plan: SeedPlan, created: list[str], world_balance: int) -> None:
    """One completed transfer world -> account per created id, its two entries, the world's
    new balance. The accounts were inserted at `plan.balance` already. Binary COPY: the
    server's CPU (foreign-key checks on every entry) is the bottleneck, so spare it parsing."""
    final = world_after(world_balance, plan.balance, len(created))
    now: datetime = conn.execute("SELECT now()").fetchall()[0][0]
    seqs = _settle_seqs(conn, len(created))
    ids: list[UUID] = []  # built while the server digests the previous rows
    world, amount, currency = plan.world_account_id, plan.balance, plan.currency
    with conn.cursor() as cur:
        with cur.copy(_COPY_TRANSFERS) as copy:
            copy.set_types(_TRANSFER_TYPES)
            for account_id, seq in zip(created, seqs, strict=True):
                transfer_id = opening_transfer_id(account_id)
                ids.append(transfer_id)
                copy.write_row(
                    (transfer_id, world, account_id, amount, currency, COMPLETED, seq, now, now)
                )
        with cur.copy(_COPY_ENTRIES) as copy:
            copy.set_types(_ENTRY_TYPES)
            balance_after = world_balance
            for transfer_id, account_id in zip(ids, created, strict=True):
                balance_after -= amount
                copy.write_row((transfer_id, world, -amount, balance_after))
                copy.write_row((transfer_id, account_id, amount, amount))
    if balance_after != final:
        raise LedgerInvariantError(f"{world}: entries end at {balance_after}, not {final}")
    conn.execute(
        "UPDATE accounts SET balance = %s, updated_at = now() WHERE id = %s", (final, world)
    )


def _settle_seqs(conn: Connection, count: int) -> list[int]:
    """`count` settle_seq values in the shards' scheme (batch nextval * stride + position),
    one nextval per stride-sized slice, so opening transfers sort with real settlements."""
    batches = -(-count // SETTLE_SEQ_STRIDE)
    rows = conn.execute(
        "SELECT nextval('transfer_settle_seq') FROM generate_series(1, %s)", (batches,)
    ).fetchall()
    starts = [int(row[0]) * SETTLE_SEQ_STRIDE for row in rows]
    return [starts[i // SETTLE_SEQ_STRIDE] + i % SETTLE_SEQ_STRIDE for i in range(count)]
