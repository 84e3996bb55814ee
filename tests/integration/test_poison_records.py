"""Records the database refuses never stop a batch: each kind is isolated by the shard's
settle path (orion.adapters.ledger.settle) against the real PostgreSQL, the rest of its batch
settles, and the record ends final at once: `rejected` / `invalid_record` when it can be
stored, else handed back for the DLQ. Nothing is retried, nothing applied twice.

Records here bypass decoding on purpose (decode refuses most of these kinds already): they
stand for records from other producers or older versions, which is what the net is for.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from orion.adapters import ledger
from orion.config import Settings
from orion.domain import Transfer, world_account_id
from orion.messages import DEAD_LETTERED, AcceptedTransfer, OutcomeRecord, QueuedTransfer
from orion.orchestration.isolation import Unsettleable

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("audited")]
CURRENCY = "NOK"  # its own currency: the audit's order check never mixes these with others


@pytest.fixture
def accounts(settings: Settings, unique: str) -> Iterator[tuple[str, str]]:
    """Two fresh NOK accounts: A funded with 100.00 from @world:NOK, B empty."""
    a, b, world = f"pa-{unique}", f"pb-{unique}", world_account_id(CURRENCY)
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO accounts (id, currency, overdraft_limit) VALUES (%s, %s, NULL)"
            " ON CONFLICT DO NOTHING",
            (world, CURRENCY),
        )
        for account in (a, b):
            conn.execute(
                "INSERT INTO accounts (id, currency, overdraft_limit) VALUES (%s, %s, 0)",
                (account, CURRENCY),
            )
    with ledger.connect(settings.postgres_dsn) as conn:
        ledger.apply_batch(conn, [_q(world, a, 10_000)], str(uuid.uuid4()), 0)
    yield a, b


def _q(
    debit: str,
    credit: str,
    amount: int,
    metadata: dict[str, Any] | None = None,
    transfer_id: str | None = None,
    currency: str = CURRENCY,
) -> QueuedTransfer:
    t = Transfer(transfer_id or str(uuid.uuid4()), debit, credit, amount, currency)
    return QueuedTransfer(AcceptedTransfer(t, 1_700_000_000_000, metadata), 0, 0)


def _settle(settings: Settings, batch: list[QueuedTransfer]) -> list[Any]:
    with ledger.connect(settings.postgres_dsn) as conn:
        return ledger.settle(conn, batch, str(uuid.uuid4()), 0)


def _row(settings: Settings, transfer_id: str) -> tuple[Any, ...] | None:
    with psycopg.connect(settings.postgres_dsn) as conn:
        return conn.execute(
            "SELECT status, reason, metadata FROM transfers WHERE id = %s", (transfer_id,)
        ).fetchone()


def _balances(settings: Settings, *ids: str) -> list[int]:
    with psycopg.connect(settings.postgres_dsn) as conn:
        return [
            int(conn.execute("SELECT balance FROM accounts WHERE id = %s", (i,)).fetchall()[0][0])
            for i in ids
        ]


@pytest.mark.parametrize(
    "metadata",
    [{"x": "\ud800"}, {"x": "a\u0000b"}, {"\u0000": 1}, {"nested": [{"y": "\udfff"}]}],
    ids=["lone-surrogate", "nul", "nul-key", "nested-surrogate"],
)
def test_metadata_the_database_refuses_is_rejected_and_the_batch_settles(
    settings: Settings, accounts: tuple[str, str], metadata: dict[str, Any]
) -> None:
    """Poison metadata: that transfer is `rejected` / `invalid_record` (stored without its
    metadata), the transfers before and after it in the batch complete, in order."""
    a, b = accounts
    batch = [_q(a, b, 100), _q(a, b, 200, metadata), _q(a, b, 300, {"ok": "fine"})]
    results = _settle(settings, batch)
    assert [(r.status, r.reason) for r in results] == [
        ("completed", None),
        ("rejected", "invalid_record"),
        ("completed", None),
    ]
    assert _row(settings, batch[1].id) == ("rejected", "invalid_record", None)
    assert _balances(settings, a, b) == [9_600, 400]


@pytest.mark.parametrize(
    ("debit_suffix", "amount", "currency"),
    [("\u0000", 100, CURRENCY), ("\ud800", 100, CURRENCY), ("", 0, CURRENCY), ("", 100, "NOKX")],
    ids=["nul-in-account", "surrogate-in-account", "zero-amount", "currency-too-long"],
)
def test_a_record_not_even_storable_as_a_rejection_is_handed_back_for_the_dlq(
    settings: Settings,
    accounts: tuple[str, str],
    debit_suffix: str,
    amount: int,
    currency: str,
) -> None:
    """Fields the transfers table cannot hold: no row at all, an Unsettleable result naming
    the database's complaint, and the rest of the batch completes."""
    a, b = accounts
    poison = _q(a + debit_suffix, b, amount, currency=currency)
    results = _settle(settings, [_q(a, b, 100), poison, _q(a, b, 300)])
    assert isinstance(results[1], Unsettleable) and results[1].error
    assert [(r.status, r.reason) for r in (results[0], results[2])] == [("completed", None)] * 2
    assert _row(settings, poison.id) is None
    assert _balances(settings, a, b) == [9_600, 400]


def test_redelivered_poison_batch_settles_nothing_twice(
    settings: Settings, accounts: tuple[str, str]
) -> None:
    """The same poisoned batch delivered again (a crash before the orchestrator heard back)
    answers with the same outcomes and moves no money again."""
    a, b = accounts
    batch = [_q(a, b, 100), _q(a, b, 200, {"x": "\ud800"}), _q(a, b, 300)]
    first = _settle(settings, batch)
    second = _settle(settings, batch)
    assert [(o.transfer_id, o.status, o.reason) for o in first] == [
        (o.transfer_id, o.status, o.reason) for o in second
    ]
    assert _balances(settings, a, b) == [9_600, 400]


def test_settled_id_reused_for_another_transfer_is_dead_lettered_not_applied(
    settings: Settings, accounts: tuple[str, str]
) -> None:
    """Past the API's idempotency window a client reuses a settled id with another body: the
    record is answered `dead_lettered` / `duplicate_id` and the stored transfer is untouched;
    the same body again is answered with the stored outcome (positive control)."""
    a, b = accounts
    tid = str(uuid.uuid4())
    [first] = _settle(settings, [_q(a, b, 100, transfer_id=tid)])
    [same] = _settle(settings, [_q(a, b, 100, transfer_id=tid)])
    [other] = _settle(settings, [_q(a, b, 999, transfer_id=tid)])
    [other_meta] = _settle(settings, [_q(a, b, 100, {"k": 1}, transfer_id=tid)])
    assert isinstance(first, OutcomeRecord) and first.status == "completed"
    assert same == first
    assert (other.status, other.reason) == (DEAD_LETTERED, "duplicate_id")
    assert (other_meta.status, other_meta.reason) == (DEAD_LETTERED, "duplicate_id")
    assert _balances(settings, a, b) == [9_900, 100]


def test_infrastructure_failure_is_raised_not_isolated(
    settings: Settings, accounts: tuple[str, str]
) -> None:
    """A closed connection is infrastructure: settle raises for the orchestrator to retry,
    and writes nothing (no rejection is recorded for records that did nothing wrong)."""
    a, b = accounts
    batch = [_q(a, b, 100)]
    conn = ledger.connect(settings.postgres_dsn)
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        ledger.settle(conn, batch, str(uuid.uuid4()), 0)
    assert _row(settings, batch[0].id) is None
