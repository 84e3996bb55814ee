"""What each layer of the ledger write costs PostgreSQL here: the database ceiling, taken apart.

The issue's "PostgreSQL applies ~40-55k transfers/s" is a batched balance update. Orion's
shard writes more per transfer (DESIGN "Shard apply"): a final transfer row and two
double-entry rows, after locking the accounts and reading which ids are stored already.
This runs each layer on its own, batches of 1,000 transfers in one committed transaction
each, one connection, in a scratch schema with the ledger's own tables, indexes and foreign
keys (dropped at the end; the ledger is never touched):

  balances   lock the accounts FOR UPDATE, then one UPDATE ... FROM unnest
  +transfers the same, plus one INSERT of the final transfer rows
  +entries   the same, plus the two entry rows per transfer (Orion's data, written once)
  orion      orion.adapters.ledger.apply_batch itself: lock, skip stored ids, decide, write

Run: `.venv/bin/python -m load.db_layers [-n 20000] [--rounds 3]` with PostgreSQL up
(`orion infra up`). Nothing else should run meanwhile: it is a benchmark.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import psycopg

from load.shapes import mirror_pair
from orion.adapters import ledger
from orion.config import Settings
from orion.domain.model import Transfer
from orion.messages import AcceptedTransfer, QueuedTransfer

SCHEMA = "orion_bench_layers"
BATCH_TRANSFERS = 1_000  # what a shard applies in one transaction at most
BALANCE_MINOR = 10**12  # nobody runs out: every transfer completes
AMOUNT_MINOR = 100
CURRENCY = "CHF"
TRANSFERS_DEFAULT = 20_000
ROUNDS_DEFAULT = 3

Conn = psycopg.Connection[tuple[object, ...]]
Layer = Callable[[Conn, Sequence[QueuedTransfer]], None]

LOCK = "SELECT id, balance FROM accounts WHERE id = ANY(%b::text[]) ORDER BY id FOR UPDATE"
INSERT_TRANSFERS = """
INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, currency, status,
                       shard, kafka_partition, kafka_offset, accepted_at, settled_at)
SELECT u.id, u.debit, u.credit, u.amount, %s, 'completed', -1, 0, 0, now(), now()
FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::bigint[]) AS u(id, debit, credit, amount)
"""


def _setup(conn: Conn) -> None:
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    for table in ("accounts", "transfers", "entries"):
        conn.execute(f"CREATE TABLE {SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)")
    conn.execute(f"CREATE SEQUENCE {SCHEMA}.transfer_settle_seq")
    conn.execute(f"CREATE SEQUENCE {SCHEMA}.entries_id_seq OWNED BY {SCHEMA}.entries.id")
    conn.execute(
        f"ALTER TABLE {SCHEMA}.entries ALTER id SET DEFAULT nextval('{SCHEMA}.entries_id_seq')"
    )
    conn.execute(
        f"ALTER TABLE {SCHEMA}.entries"
        f" ADD FOREIGN KEY (transfer_id) REFERENCES {SCHEMA}.transfers (id),"
        f" ADD FOREIGN KEY (account_id) REFERENCES {SCHEMA}.accounts (id)"
    )
    conn.execute(f"SET search_path = {SCHEMA}")
    conn.commit()


def _accounts(conn: Conn, first: int, count: int) -> list[str]:
    ids = [str(first + k) for k in range(count)]
    conn.execute(
        "INSERT INTO accounts (id, currency, balance, overdraft_limit)"
        " SELECT id, %s, %s, 0 FROM unnest(%b::text[]) AS id",
        (CURRENCY, BALANCE_MINOR, ids),
    )
    conn.execute("ANALYZE accounts")
    conn.commit()
    return ids


def _batches(ids: list[str], transfers: int) -> list[list[QueuedTransfer]]:
    """The seed's mirror pairing: sender i -> receiver N-1-i over the layer's own accounts."""
    n, out = len(ids), []
    for start in range(0, transfers, BATCH_TRANSFERS):
        batch = []
        for i in range(start, min(start + BATCH_TRANSFERS, transfers)):
            debit, credit = mirror_pair(i, transfers, n)
            t = Transfer(str(uuid.uuid4()), ids[debit], ids[credit], AMOUNT_MINOR, CURRENCY)
            batch.append(QueuedTransfer(AcceptedTransfer(t, int(time.time() * 1000)), 0, 0))
        out.append(batch)
    return out


def _lock_and_update(conn: Conn, batch: Sequence[QueuedTransfer]) -> dict[str, int]:
    ids = sorted({a for q in batch for a in (q.debit_account_id, q.credit_account_id)})
    balances = {str(r[0]): int(r[1]) for r in conn.execute(LOCK, (ids,)).fetchall()}  # type: ignore[call-overload]
    for q in batch:
        balances[q.debit_account_id] -= q.accepted.transfer.amount
        balances[q.credit_account_id] += q.accepted.transfer.amount
    conn.execute(ledger.SET_BALANCES, (datetime.now(UTC), list(balances), list(balances.values())))
    return balances


def _insert_transfers(conn: Conn, batch: Sequence[QueuedTransfer]) -> None:
    ts = [q.accepted.transfer for q in batch]
    conn.execute(
        INSERT_TRANSFERS,
        (CURRENCY, [t.id for t in ts], [t.debit_account_id for t in ts],
         [t.credit_account_id for t in ts], [t.amount for t in ts]),
    )  # fmt: skip


def _insert_entries(conn: Conn, batch: Sequence[QueuedTransfer]) -> None:
    ids, accounts, deltas = [], [], []
    for q in batch:
        t = q.accepted.transfer
        ids += [t.id, t.id]
        accounts += [t.debit_account_id, t.credit_account_id]
        deltas += [-t.amount, t.amount]
    # balance_after is not computed here (the delta stands in): same row size, same cost.
    conn.execute(ledger.INSERT_ENTRIES, (ids, accounts, deltas, deltas))


def balances(conn: Conn, batch: Sequence[QueuedTransfer]) -> None:
    with conn.pipeline(), conn.transaction():
        _lock_and_update(conn, batch)


def with_transfers(conn: Conn, batch: Sequence[QueuedTransfer]) -> None:
    with conn.pipeline(), conn.transaction():
        _insert_transfers(conn, batch)
        _lock_and_update(conn, batch)


def with_entries(conn: Conn, batch: Sequence[QueuedTransfer]) -> None:
    with conn.pipeline(), conn.transaction():
        _insert_transfers(conn, batch)
        _lock_and_update(conn, batch)
        _insert_entries(conn, batch)


def orion(conn: Conn, batch: Sequence[QueuedTransfer]) -> None:
    ledger.apply_batch(conn, batch, str(uuid.uuid4()), -1)


LAYERS: dict[str, Layer] = {  # the order they run in, each round
    "balances": balances,
    "+transfers": with_transfers,
    "+entries": with_entries,
    "orion": orion,
}


WRITES = {  # name -> (transfer rows, entry rows) per transfer each layer must leave
    "balances": (0, 0),
    "+transfers": (1, 0),
    "+entries": (1, 2),
    "orion": (1, 2),
}


def _check(conn: Conn, name: str, ids: list[str], transfers: int) -> None:
    """The layer did all its work: money conserved over its accounts, every row written."""
    row = conn.execute(
        "SELECT (SELECT sum(balance) FROM accounts WHERE id = ANY(%b)),"
        " (SELECT count(*) FROM transfers WHERE debit_account_id = ANY(%b)),"
        " (SELECT count(*) FROM entries WHERE account_id = ANY(%b))",
        (ids, ids, ids),
    ).fetchone()
    found = tuple(int(str(v)) for v in row or ())
    want_t, want_e = WRITES[name]
    wanted = (len(ids) * BALANCE_MINOR, want_t * transfers, want_e * transfers)
    if found != wanted:
        raise RuntimeError(f"layer {name}: (balance sum, transfers, entries) {found} != {wanted}")


def run(settings: Settings, transfers: int, rounds: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in LAYERS}
    with ledger.connect(settings.postgres_dsn) as conn:
        _setup(conn)
        try:
            for r in range(rounds):
                for k, (name, layer) in enumerate(LAYERS.items()):
                    first = 10**17 + (r * len(LAYERS) + k) * transfers
                    ids = _accounts(conn, first, transfers)
                    batches = _batches(ids, transfers)
                    began = time.perf_counter()
                    for batch in batches:
                        layer(conn, batch)
                    rates[name].append(transfers / (time.perf_counter() - began))
                    _check(conn, name, ids, transfers)
                    conn.commit()
        finally:
            conn.rollback()
            conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
            conn.commit()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=TRANSFERS_DEFAULT, help="transfers per layer")
    parser.add_argument("--rounds", type=int, default=ROUNDS_DEFAULT)
    args = parser.parse_args()
    rates = run(Settings(), args.n, args.rounds)
    base = statistics.median(rates["balances"])
    print(f"{'layer':<12} {'median/s':>9}  {'÷ balances':>10}  rounds")
    for name, values in rates.items():
        med = statistics.median(values)
        each = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:<12} {med:>9,.0f}  {med / base:>10.2f}  {each}")


if __name__ == "__main__":
    main()
