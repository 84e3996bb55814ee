"""The shard's one-transaction batch apply against the real PostgreSQL (claim first).

These transfers never went through Kafka, yet carry Kafka coordinates (partition 0, offset 0)
like every QueuedTransfer; they use their own currency (SEK, world account included) so the
audit's per-account order check never compares them with real Kafka-sourced transfers.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from orion.adapters import ledger
from orion.config import Settings
from orion.domain import Transfer, world_account_id
from orion.domain.model import Kind
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


def _q(
    debit: str,
    credit: str,
    amount: int,
    transfer_id: str | None = None,
    kind: Kind = Kind.IMMEDIATE,
    target: str | None = None,
) -> QueuedTransfer:
    t = Transfer(transfer_id or str(uuid.uuid4()), debit, credit, amount, "SEK", kind, target)
    # A hold open after a failed test must not look stuck to the audit: expires in an hour.
    expires = time.time_ns() // 1_000_000 + 3_600_000 if kind == Kind.PENDING else None
    return QueuedTransfer(AcceptedTransfer(t, ACCEPTED_AT_MS, None, expires), 0, 0)


ACCEPTED_AT_MS = 1_700_000_000_000


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


def _row(settings: Settings, sql: str, *args: object) -> tuple[object, ...]:
    with psycopg.connect(settings.postgres_dsn) as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None
    return row


def _apply(settings: Settings, *batch: QueuedTransfer) -> list[tuple[str, str | None]]:
    with ledger.connect(settings.postgres_dsn) as conn:
        outcomes = ledger.apply_batch(conn, list(batch), str(uuid.uuid4()), 0)
    return [(o.status, o.reason) for o in outcomes]


def test_a_hold_reserves_then_a_partial_post_moves_and_releases(
    settings: Settings, accounts: tuple[str, str]
) -> None:
    """Hold 6,000 of A's 10,000: A can spend 4,000 more, not 4,001; posting 2,500 moves 2,500
    and releases the rest; a second post and a void then lose (hold_not_pending); the audit
    (run after the test) sees pending amounts that match the open holds."""
    a, b = accounts
    hold = str(uuid.uuid4())
    assert _apply(settings, _q(a, b, 6_000, hold, Kind.PENDING)) == [("pending", None)]
    pending = "SELECT balance, pending_debits, pending_credits FROM accounts WHERE id = %s"
    assert _row(settings, pending, a) == (10_000, 6_000, 0)
    assert _row(settings, pending, b) == (0, 0, 6_000)
    assert _apply(settings, _q(a, b, 4_001), _q(a, b, 4_000)) == [
        ("rejected", "insufficient_funds"),
        ("completed", None),
    ]
    post, again = str(uuid.uuid4()), str(uuid.uuid4())
    assert _apply(
        settings,
        _q(a, b, 2_500, post, Kind.POST, hold),
        _q(a, b, 2_500, again, Kind.POST, hold),
        _q(a, b, 6_000, None, Kind.VOID, hold),
    ) == [("posted", None), ("rejected", "hold_not_pending"), ("rejected", "hold_not_pending")]
    assert _row(settings, pending, a) == (10_000 - 4_000 - 2_500, 0, 0)
    assert _row(settings, pending, b) == (6_500, 0, 0)
    held = "SELECT status, posted_amount FROM transfers WHERE id = %s"
    assert _row(settings, held, hold) == ("posted", 2_500)
    entries = "SELECT count(*), sum(delta) FROM entries WHERE transfer_id = %s"
    assert _row(settings, entries, post) == (2, 0)
    assert _row(settings, entries, hold) == (0, None)
    # Redelivered: the stored outcomes, nothing moves again.
    assert _apply(settings, _q(a, b, 2_500, post, Kind.POST, hold)) == [("posted", None)]
    assert _row(settings, pending, a) == (3_500, 0, 0)


def test_a_hold_and_its_void_in_one_batch_and_a_reversal_of_a_reversal(
    settings: Settings, accounts: tuple[str, str]
) -> None:
    """A hold voided in the batch that opened it leaves nothing pending; a transfer reversed
    in part, then that reversal reversed, never exceeds what each moved."""
    a, b = accounts
    hold, moved, back = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    assert _apply(
        settings,
        _q(a, b, 1_000, hold, Kind.PENDING),
        _q(a, b, 1_000, None, Kind.VOID, hold),
        _q(a, b, 3_000, moved),
        _q(b, a, 2_000, back, Kind.REVERSAL, moved),
        _q(b, a, 1_001, None, Kind.REVERSAL, moved),
        _q(a, b, 2_000, None, Kind.REVERSAL, back),
    ) == [
        ("pending", None),
        ("voided", None),
        ("completed", None),
        ("completed", None),
        ("rejected", "reversal_exceeds_original"),
        ("completed", None),
    ]
    state = "SELECT status, reversed_amount FROM transfers WHERE id = %s"
    assert _row(settings, state, hold) == ("voided", 0)
    assert _row(settings, state, moved) == ("completed", 2_000)
    assert _row(settings, state, back) == ("completed", 2_000)
    balances = "SELECT balance, pending_debits FROM accounts WHERE id = %s"
    assert _row(settings, balances, a) == (7_000, 0)
