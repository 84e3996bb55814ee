"""`orion audit` against the real PostgreSQL and Kafka: it passes a consistent ledger and
names every kind of broken invariant.

Corruption never reaches the shared database: the violation tests run inside a transaction
that is rolled back, on temporary tables that shadow `accounts`, `transfers` and `entries`
(temporary tables come first on the search_path, and the audit's SQL is unqualified), so they
see only their own rows and need not fight the schema's CHECK constraints.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from orion import audit
from orion.adapters.ledger_audit import Connection
from orion.config import Settings
from orion.domain import Transfer
from orion.messages import AcceptedTransfer, encode_transfer

pytestmark = pytest.mark.integration
WORLD = "@world:RUB"
ACCEPTED_AT_MS = 1_700_000_000_000
Coordinates = tuple[int, int] | None  # (kafka_partition, kafka_offset)


@pytest.fixture
def tx(settings: Settings) -> Iterator[Connection]:
    """A connection inside a transaction that is always rolled back."""
    with psycopg.connect(settings.postgres_dsn) as conn, conn.transaction(force_rollback=True):
        yield conn


@pytest.fixture
def shadow(tx: Connection) -> Connection:
    """`tx` with empty temporary copies of the ledger tables hiding the shared ones."""
    for table in ("accounts", "transfers", "entries"):
        tx.execute(f"CREATE TEMP TABLE {table} (LIKE public.{table} INCLUDING DEFAULTS)")
    return tx


class Ledger:
    """Writes a consistent mini-ledger (balances, transfers, entries) for tests to corrupt."""

    def __init__(self, conn: Connection) -> None:
        self.conn, self.seq = conn, 0
        self.open(WORLD, None)

    def open(self, account: str, limit: int | None = 0, funded: int = 0) -> str:
        self.conn.execute(
            "INSERT INTO accounts (id, currency, overdraft_limit) VALUES (%s, 'RUB', %s)",
            (account, limit),
        )
        if funded:
            self.move(WORLD, account, funded)
        return account

    def move(
        self, debit: str, credit: str, amount: int, kafka: tuple[int, int] | None = None
    ) -> str:
        """A completed transfer with both entries and both balances; returns its id."""
        transfer_id = self.record(debit, credit, amount, "completed", kafka=kafka)
        for account, delta in ((debit, -amount), (credit, amount)):
            self.conn.execute(
                "UPDATE accounts SET balance = balance + %s WHERE id = %s", (delta, account)
            )
            self.conn.execute(
                "INSERT INTO entries (transfer_id, account_id, delta, balance_after)"
                " SELECT %s, id, %s, balance FROM accounts WHERE id = %s",
                (transfer_id, delta, account),
            )
        return transfer_id

    def record(
        self,
        debit: str,
        credit: str,
        amount: int,
        status: str,
        reason: str | None = None,
        kafka: Coordinates = None,
        seq: int | None = None,
    ) -> str:
        """Just the transfers row (no entries, no balances)."""
        self.seq += 1
        seq = self.seq if seq is None else seq
        transfer_id = str(uuid.uuid4())
        partition, offset = kafka or (None, None)
        self.conn.execute(
            "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, currency,"
            " status, reason, kafka_partition, kafka_offset, settle_seq, accepted_at)"
            " VALUES (%s, %s, %s, %s, 'RUB', %s, %s, %s, %s, %s, now())",
            (transfer_id, debit, credit, amount, status, reason, partition, offset, seq),
        )
        return transfer_id


@pytest.fixture
def ledger(shadow: Connection) -> Ledger:
    """World, A (10_000 funded, no overdraft) and B (500 funded), A -> B 300 from Kafka."""
    book = Ledger(shadow)
    book.open("A", funded=10_000)
    book.open("B", funded=500)
    book.move("A", "B", 300, kafka=(0, 1))
    book.record("A", "nobody", 5, "rejected", reason="account_not_found", kafka=(0, 2))
    return book


def failing(conn: Connection) -> dict[int, audit.CheckResult]:
    """The failed checks among the five database-only ones, by number."""
    results = [
        audit.check_balances_sum(conn),
        audit.check_accounts(conn),
        audit.check_transfers(conn),
        audit.check_order(conn),
        audit.check_holds(conn),
    ]
    return {r.number: r for r in results if not r.ok}


def test_consistent_ledger_passes_every_check(
    settings: Settings, ledger: Ledger, unique: str
) -> None:
    """Positive control: the mini-ledger the other tests corrupt is clean, end to end."""
    report = audit.run_audit(settings, group=f"g.{unique}", conn=ledger.conn)
    assert report.ok, report.lines()
    assert report.violations == ()
    assert "not checked" in report.checks[3].notes[0]


def test_money_from_nowhere_breaks_the_zero_sum(ledger: Ledger) -> None:
    """An entry and a balance with no transfer behind them: only check 1 can see it."""
    ledger.conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 'A'")
    ledger.conn.execute(
        "INSERT INTO entries (transfer_id, account_id, delta, balance_after)"
        " SELECT gen_random_uuid(), 'A', 1, balance FROM accounts WHERE id = 'A'"
    )
    failed = failing(ledger.conn)
    assert set(failed) == {1}
    assert failed[1].examples == (
        "currency RUB: balances sum to 1",
        "all currencies: balances sum to 1",
    )


def test_balance_that_is_not_its_entries_sum(ledger: Ledger) -> None:
    """7 moved between balances without entries: sums stay zero, check 2 names both."""
    ledger.conn.execute("UPDATE accounts SET balance = balance + 7 WHERE id = 'B'")
    ledger.conn.execute("UPDATE accounts SET balance = balance - 7 WHERE id = %s", (WORLD,))
    failed = failing(ledger.conn)
    assert set(failed) == {2}
    assert failed[2].count == 2
    assert "account B: balance 807 but entries sum to 800" in failed[2].examples[1]


def test_latest_balance_after_that_disagrees(ledger: Ledger) -> None:
    """The newest entry of an account must leave exactly the account's balance."""
    ledger.conn.execute(
        "UPDATE entries SET balance_after = balance_after + 1"
        " WHERE id = (SELECT max(id) FROM entries WHERE account_id = 'A')"
    )
    failed = failing(ledger.conn)
    assert set(failed) == {2}
    assert "account A: balance 9700 but latest entry" in failed[2].examples[0]


def test_balance_below_the_overdraft_limit(ledger: Ledger) -> None:
    """A correctly booked transfer that overdraws A past its limit of 0."""
    ledger.move("A", "B", 10_000)
    failed = failing(ledger.conn)
    assert set(failed) == {2}
    assert failed[2].examples == ("account A: balance -300 below overdraft limit 0",)


def hold(book: Ledger, amount: int, status: str = "pending", expires: str = "1 hour") -> str:
    """A hold of A -> B as the shard stores it: the row, and (while open) A's and B's
    pending amounts."""
    hold_id = book.record("A", "B", amount, status)
    book.conn.execute(
        "UPDATE transfers SET kind = 'pending', expires_at = now() + %s::interval WHERE id = %s",
        (expires, hold_id),
    )
    if status == "pending":
        book.conn.execute(
            "UPDATE accounts SET pending_debits = pending_debits + %s WHERE id = 'A'", (amount,)
        )
        book.conn.execute(
            "UPDATE accounts SET pending_credits = pending_credits + %s WHERE id = 'B'", (amount,)
        )
    return hold_id


def act(book: Ledger, kind: str, status: str, target: str, amount: int) -> str:
    """A post / void / expire / reversal row naming `target` (no entries, no balances)."""
    debit, credit = ("B", "A") if kind == "reversal" else ("A", "B")
    row_id = book.record(debit, credit, amount, status, "hold_not_pending" * (status == "rejected"))
    book.conn.execute(
        "UPDATE transfers SET kind = %s, target_id = %s WHERE id = %s", (kind, target, row_id)
    )
    return row_id


def test_open_and_resolved_holds_and_a_bounded_reversal_pass(ledger: Ledger) -> None:
    """Positive control for check 7: one open hold, one voided, one posted (its post moved
    the money), a transfer half reversed."""
    hold(ledger, 100)
    voided = hold(ledger, 50, "voided")
    act(ledger, "void", "voided", voided, 50)
    posted = hold(ledger, 70, "posted")
    ledger.conn.execute("UPDATE transfers SET posted_amount = 40 WHERE id = %s", (posted,))
    act(ledger, "void", "rejected", posted, 70)  # a losing void: harmless
    post = ledger.move("A", "B", 40)  # the post moves the money, as the shard books it
    ledger.conn.execute(
        "UPDATE transfers SET kind = 'post', status = 'posted', target_id = %s WHERE id = %s",
        (posted, post),
    )
    original = ledger.move("A", "B", 30)
    back = ledger.move("B", "A", 15)
    ledger.conn.execute(
        "UPDATE transfers SET kind = 'reversal', target_id = %s WHERE id = %s", (original, back)
    )
    ledger.conn.execute("UPDATE transfers SET reversed_amount = 15 WHERE id = %s", (original,))
    assert failing(ledger.conn) == {}


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        ("UPDATE accounts SET pending_debits = 1 WHERE id = 'A'", "account A: pending debits"),
        ("double", "resolved 2 times"),
        ("overdue", "still pending"),
        ("reversal", "reversed_amount 50, completed reversals 0"),
    ],
)
def test_holds_and_reversals_that_do_not_add_up(ledger: Ledger, corrupt: str, problem: str) -> None:
    """Pending amounts that are not the open holds, a hold voided and expired, a hold left
    pending past its timeout, a reversed amount no reversal accounts for: check 7 only."""
    if corrupt == "double":
        voided = hold(ledger, 50, "voided")
        act(ledger, "void", "voided", voided, 50)
        act(ledger, "expire", "expired", voided, 50)
    elif corrupt == "overdue":
        hold(ledger, 50, expires="-2 hours")
    elif corrupt == "reversal":
        original = ledger.move("A", "B", 60)
        ledger.conn.execute("UPDATE transfers SET reversed_amount = 50 WHERE id = %s", (original,))
    else:
        ledger.conn.execute(corrupt)
    failed = failing(ledger.conn)
    assert set(failed) == {7}, failed
    assert problem in failed[7].examples[0]


@pytest.mark.parametrize(
    ("status", "reason", "problem"),
    [
        ("claimed", None, "claimed but never settled"),
        ("completed", None, "0 entries summing to 0"),
        ("rejected", None, "no reason"),
        ("rejected", "", "no reason"),
    ],
)
def test_transfer_rows_without_a_proper_settlement(
    ledger: Ledger, status: str, reason: str | None, problem: str
) -> None:
    """Claimed left behind, completed without entries, rejected without a reason."""
    transfer_id = ledger.record("A", "B", 10, status, reason)
    failed = failing(ledger.conn)
    assert set(failed) == {3}
    assert failed[3].examples[0].startswith(f"transfer {transfer_id} ({status}): {problem}")


def test_completed_transfer_with_the_wrong_entries(ledger: Ledger) -> None:
    """Entries that sum to zero but move 5 for a transfer of 10 are still wrong."""
    transfer_id = ledger.record("A", "B", 10, "completed")
    ledger.conn.execute(
        "INSERT INTO entries (transfer_id, account_id, delta, balance_after) VALUES"
        " (%s, 'A', -5, 9695), (%s, 'B', 5, 805)",
        (transfer_id, transfer_id),
    )
    ledger.conn.execute("UPDATE accounts SET balance = balance - 5 WHERE id = 'A'")
    ledger.conn.execute("UPDATE accounts SET balance = balance + 5 WHERE id = 'B'")
    failed = failing(ledger.conn)
    assert set(failed) == {3}
    assert "2 entries summing to 0 (0 debit of -10, 0 credit of +10)" in failed[3].examples[0]


def test_rejected_transfer_with_entries(ledger: Ledger) -> None:
    """A rejection moved money: entries exist although the status says rejected."""
    transfer_id = ledger.move("A", "B", 1)
    ledger.conn.execute(
        "UPDATE transfers SET status = 'rejected', reason = 'insufficient_funds' WHERE id = %s",
        (transfer_id,),
    )
    failed = failing(ledger.conn)
    assert set(failed) == {3}
    assert failed[3].examples == (
        f"transfer {transfer_id} (rejected): 2 entries, yet it moves no money",
    )


def test_later_accepted_transfer_settled_first(ledger: Ledger) -> None:
    """A's offset 11 settled (seq 100) before its offset 10 (seq 200): one order break."""
    early = ledger.record("A", "x", 1, "rejected", "account_not_found", (0, 10), seq=200)
    late = ledger.record("A", "x", 1, "rejected", "account_not_found", (0, 11), seq=100)
    failed = failing(ledger.conn)
    assert set(failed) == {5}
    assert failed[5].count == 1
    assert f"transfer {late} (partition 0 offset 11" in failed[5].examples[0]
    assert f"earlier-accepted {early} (partition 0 offset 10" in failed[5].examples[0]


def test_kafka_transfer_without_settle_seq_and_ties(ledger: Ledger) -> None:
    """No settle_seq is a violation; two rows on one coordinate (fixtures) are not compared."""
    ledger.conn.execute("UPDATE transfers SET settle_seq = NULL WHERE kafka_offset = 2")
    ledger.record("B", "x", 1, "rejected", "account_not_found", (3, 7), seq=50)
    ledger.record("B", "x", 1, "rejected", "account_not_found", (3, 7), seq=40)
    failed = failing(ledger.conn)
    assert set(failed) == {5}
    assert failed[5].count == 1
    assert "has no settle_seq" in failed[5].examples[0]


def test_examples_are_bounded_but_counted(ledger: Ledger) -> None:
    """15 broken accounts: 10 examples, the exact count, and "... and 5 more"."""
    for n in range(15):
        ledger.conn.execute(
            "INSERT INTO accounts (id, currency, balance, overdraft_limit)"
            " VALUES (%s, 'RUB', 1, 0)",
            (f"broken-{n:02d}",),
        )
    result = audit.check_accounts(ledger.conn)
    assert (result.count, len(result.examples)) == (15, audit.EXAMPLES_PER_CHECK_MAX)
    assert "    ... and 5 more" in result.lines()


def test_corruption_of_the_real_tables_is_seen_and_rolled_back(tx: Connection) -> None:
    """On the shared tables (no shadow), inside the rolled-back transaction: an account
    whose balance has no entries is reported by check 2."""
    account = f"audit-{uuid.uuid4().hex}"
    tx.execute(
        "INSERT INTO accounts (id, currency, balance, overdraft_limit) VALUES (%s, 'RUB', 0, 0)",
        (account,),
    )
    assert audit.check_accounts(tx).ok
    tx.execute("UPDATE accounts SET balance = 42 WHERE id = %s", (account,))
    result = audit.check_accounts(tx)
    assert f"account {account}: balance 42 but entries sum to 0" in result.examples


def _produce_transfers(settings: Settings, topic: str, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for transfer_id in ids:
        transfer = Transfer(transfer_id, "A", "B", 100, "RUB")
        value = encode_transfer(AcceptedTransfer(transfer, ACCEPTED_AT_MS))
        producer.send(topic, key=b"A", value=value).get(timeout=10)
    producer.send(topic, key=b"A", value=b"not json").get(timeout=10)
    producer.close()
    return ids


def _commit(settings: Settings, topic: str, group: str, offset: int) -> None:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(offset, "", -1)})
    consumer.close(autocommit=False)


def _reject(conn: Connection, transfer_id: str, status: str = "rejected") -> None:
    """A final (or claimed) row with no entries: consistent for every database check."""
    conn.execute(
        "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, currency,"
        " status, reason, accepted_at) VALUES (%s, 'A', 'B', 100, 'RUB', %s, %s, now())"
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status, reason = excluded.reason",
        (transfer_id, status, "account_not_found" if status == "rejected" else None),
    )


def test_acknowledged_transfer_without_outcome(
    settings: Settings, topic: str, unique: str, tx: Connection
) -> None:
    """3 transfers and 1 garbage record committed by the group, 1 more in flight. With final
    rows for 2, check 4 names the third; a claimed row is not final either; once it is
    rejected with a reason, check 4 passes. Garbage is dlq, in-flight records are skipped."""
    group = f"g.{unique}"
    first, second, third = _produce_transfers(settings, topic, 3)
    _commit(settings, topic, group, 4)  # the 3 transfers and the garbage record
    _produce_transfers(settings, topic, 1)  # offsets 4 and 5: in flight, never looked up
    _reject(tx, first)
    _reject(tx, second)

    check = audit.run_audit(settings, group=group, topic=topic, conn=tx).checks[3]
    assert (check.number, check.count) == (4, 1)
    assert check.examples == (f"transfer {third} (partition 0 offset 2): no transfers row",)
    assert "dlq (undecodable or dead-lettered): 1" in check.notes
    assert "in flight: 2" in check.notes

    _reject(tx, third, status="claimed")
    check = audit.run_audit(settings, group=group, topic=topic, conn=tx).checks[3]
    assert check.examples == (f"transfer {third} (partition 0 offset 2): status claimed",)

    _reject(tx, third)
    check = audit.run_audit(settings, group=group, topic=topic, conn=tx).checks[3]
    assert check.ok, check.lines()
    assert check.notes[0].startswith(f"read 4 records below group {group}'s committed offsets")


def test_group_without_commits_checks_nothing(
    settings: Settings, topic: str, unique: str, tx: Connection
) -> None:
    """A group that never committed: #4 says so and passes, even with records on the topic."""
    _produce_transfers(settings, topic, 2)
    check = audit.run_audit(settings, group=f"g.{unique}", topic=topic, conn=tx).checks[3]
    assert check.ok
    assert check.notes == (f"group g.{unique} has no committed offsets on {topic}: not checked",)


def test_accepted_transfers_left_unsettled_past_the_bound(
    settings: Settings, topic: str, unique: str, tx: Connection
) -> None:
    """Check 6: with a bound of 0 s, the two records past the committed offset without an
    outcome are violations; the committed one is not looked at; once both have final rows
    the check passes. With the default bound of 60 s, fresh records are not violations."""
    group = f"g.{unique}"
    first, second, third = _produce_transfers(settings, topic, 3)
    _commit(settings, topic, group, 1)  # the first transfer only; garbage sits at offset 3
    _reject(tx, first)

    check = audit.run_audit(
        settings, group=group, topic=topic, conn=tx, unsettled_after_s=0
    ).checks[5]
    assert (check.number, check.count) == (6, 2)
    assert {e.split(" ")[1] for e in check.examples} == {second, third}
    assert audit.run_audit(settings, group=group, topic=topic, conn=tx).checks[5].ok

    _reject(tx, second)
    _reject(tx, third)
    check = audit.run_audit(
        settings, group=group, topic=topic, conn=tx, unsettled_after_s=0
    ).checks[5]
    assert check.ok, check.lines()
