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


def test_an_id_twice_in_one_batch_applies_once(
    settings: Settings, accounts: tuple[str, str]
) -> None:
    """The second occurrence of an id in one batch is a repeat: same outcome, no money."""
    a, b = accounts
    twice = _q(a, b, 1_000)
    with ledger.connect(settings.postgres_dsn) as conn:
        outcomes = ledger.apply_batch(conn, [twice, _q(a, b, 500), twice], str(uuid.uuid4()), 0)
    assert [o.status for o in outcomes] == ["completed"] * 3
    assert outcomes[0].transfer_id == outcomes[2].transfer_id
    assert (_balance(settings, a), _balance(settings, b)) == (8_500, 1_500)


def test_an_id_stored_meanwhile_for_other_accounts_rolls_the_batch_back(
    settings: Settings, accounts: tuple[str, str], unique: str
) -> None:
    """Another transaction stores the id (for a transfer on other accounts, so it holds none
    of our locks) after this one found it absent: the insert skips it, so the whole batch
    rolls back and raises (the orchestrator retries); nothing of it is written. The retry
    sees the id stored and answers the record `dead_lettered` / `duplicate_id`."""
    a, b = accounts
    clash = str(uuid.uuid4())
    with psycopg.connect(settings.postgres_dsn) as other:
        other.execute(
            "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, currency,"
            " status, reason, accepted_at, settled_at)"
            " VALUES (%s, %s, %s, 1, 'SEK', 'rejected', 'account_not_found', now(), now())",
            (clash, f"x-{unique}", f"y-{unique}"),
        )  # not committed yet: the batch below cannot see it, and its insert waits for it
        failure: list[BaseException] = []
        batch = [_q(a, b, 700), _q(a, b, 300, clash)]

        def run() -> None:
            with ledger.connect(settings.postgres_dsn) as conn:
                try:
                    ledger.apply_batch(conn, batch, str(uuid.uuid4()), 0)
                except RuntimeError as err:
                    failure.append(err)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=2)
        assert thread.is_alive(), "the batch should wait on the uncommitted id"
        other.commit()
        thread.join(timeout=30)
    assert failure and "stored meanwhile" in str(failure[0])
    assert (_balance(settings, a), _balance(settings, b)) == (10_000, 0)
    with ledger.connect(settings.postgres_dsn) as conn:
        retried = ledger.apply_batch(conn, batch, str(uuid.uuid4()), 0)
    assert [(o.status, o.reason) for o in retried] == [
        ("completed", None),
        ("dead_lettered", "duplicate_id"),
    ]
    assert (_balance(settings, a), _balance(settings, b)) == (9_300, 700)
