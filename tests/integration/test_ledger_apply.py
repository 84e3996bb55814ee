"""The shard's one-transaction batch apply against the real PostgreSQL (claim first).

These transfers never went through Kafka, yet carry Kafka coordinates (partition 0, offset 0)
like every QueuedTransfer; they use their own currency (SEK, world account included) so the
audit's per-account order check never compares them with real Kafka-sourced transfers.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from orion.adapters import ledger
from orion.config import Settings
from orion.domain import Transfer, world_account_id
from orion.messages import AcceptedTransfer, QueuedTransfer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("audited")]


@pytest.fixture
def accounts(settings: Settings, unique: str) -> Iterator[tuple[str, str]]:
    """Two fresh SEK accounts: A with 100.00 funded from @world:SEK (entries included), B empty."""
    a, b, world = f"a-{unique}", f"b-{unique}", world_account_id("SEK")
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO accounts (id, currency, overdraft_limit) VALUES (%s,'SEK',NULL)"
            " ON CONFLICT DO NOTHING",
            (world,),
        )
        conn.execute(
            "INSERT INTO accounts (id, currency, overdraft_limit) VALUES (%s,'SEK',0)", (a,)
        )
        conn.execute(
            "INSERT INTO accounts (id, currency, overdraft_limit) VALUES (%s,'SEK',0)", (b,)
        )
    with ledger.connect(settings.postgres_dsn) as conn:
        ledger.apply_batch(conn, [_q(world, a, 10_000)], str(uuid.uuid4()), 0)
    yield a, b


def _q(debit: str, credit: str, amount: int, transfer_id: str | None = None) -> QueuedTransfer:
    t = Transfer(transfer_id or str(uuid.uuid4()), debit, credit, amount, "SEK")
    return QueuedTransfer(AcceptedTransfer(t, 1_700_000_000_000), 0, 0)


def _balance(settings: Settings, account: str) -> int:
    with psycopg.connect(settings.postgres_dsn) as conn:
        row = conn.execute("SELECT balance FROM accounts WHERE id = %s", (account,)).fetchone()
    assert row is not None
    return int(row[0])


def test_batch_settles_in_order_with_rejections(
    settings: Settings, accounts: tuple[str, str]
) -> None:
    """Two transfers draining A: the first completes, the second is rejected; entries written."""
    a, b = accounts
    batch = [_q(a, b, 6_000), _q(a, b, 6_000), _q(a, "missing-account", 1)]
    with ledger.connect(settings.postgres_dsn) as conn:
        outcomes = ledger.apply_batch(conn, batch, str(uuid.uuid4()), 1)
    assert [(o.status, o.reason) for o in outcomes] == [
        ("completed", None),
        ("rejected", "insufficient_funds"),
        ("rejected", "account_not_found"),
    ]
    assert (_balance(settings, a), _balance(settings, b)) == (4_000, 6_000)


def test_redelivered_batch_applies_once_and_returns_stored_outcomes(
    settings: Settings, accounts: tuple[str, str]
) -> None:
    """Delivering the same batch again moves no money and answers with the first outcomes."""
    a, b = accounts
    batch = [_q(a, b, 1_000), _q(a, b, 99_999)]
    with ledger.connect(settings.postgres_dsn) as conn:
        first = ledger.apply_batch(conn, batch, str(uuid.uuid4()), 0)
        second = ledger.apply_batch(conn, batch, str(uuid.uuid4()), 2)
    assert [(o.transfer_id, o.status, o.reason) for o in first] == [
        (o.transfer_id, o.status, o.reason) for o in second
    ]
    assert (_balance(settings, a), _balance(settings, b)) == (9_000, 1_000)


def test_two_shards_racing_on_one_batch_apply_it_once(
    settings: Settings, accounts: tuple[str, str]
) -> None:
    """The same batch applied concurrently on two connections settles exactly once."""
    a, b = accounts
    batch = [_q(a, b, 100) for _ in range(50)]
    results: list[list[str]] = []

    def run(shard: int) -> None:
        with ledger.connect(settings.postgres_dsn) as conn:
            outs = ledger.apply_batch(conn, batch, str(uuid.uuid4()), shard)
            results.append([o.status for o in outs])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [["completed"] * 50] * 2
    assert (_balance(settings, a), _balance(settings, b)) == (5_000, 5_000)
