"""`orion accounts seed` against the real PostgreSQL: accounts funded exactly once, through
transfers from @world, and an audit-clean ledger afterwards.

Funded seeds run inside a transaction that is rolled back, so the shared database keeps no
trace of them; each test draws its own random 17-digit id range.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from orion import audit, cli_ledger
from orion.adapters import ledger_seed
from orion.adapters.ledger_audit import Connection
from orion.config import Settings
from orion.seeding import SEED_ACCOUNTS_MAX, SeedError, opening_transfer_id, plan_seed

pytestmark = pytest.mark.integration
SEED_FIRST_MIN = 10**16  # 17-digit ids, like the seed's 40817810...
SEED_FIRST_MAX = 9 * 10**16  # leaves room for every count a test uses


@pytest.fixture
def first() -> int:
    """A random 17-digit start: ranges of concurrent tests and runs practically never meet."""
    return random.randrange(SEED_FIRST_MIN, SEED_FIRST_MAX)


@pytest.fixture
def tx(settings: Settings) -> Iterator[Connection]:
    with psycopg.connect(settings.postgres_dsn) as conn, conn.transaction(force_rollback=True):
        yield conn


def _accounts(conn: Connection, first: int, count: int) -> dict[str, tuple[int, int | None]]:
    rows = conn.execute(
        "SELECT id, balance, overdraft_limit FROM accounts WHERE id = ANY(%s)",
        ([str(n) for n in range(first, first + count)],),
    ).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def _world_balance(conn: Connection, currency: str) -> int:
    row = conn.execute("SELECT balance FROM accounts WHERE id = %s", (f"@world:{currency}",))
    found = row.fetchone()
    return int(found[0]) if found else 0


def test_seed_funds_new_accounts_once_and_stays_audit_clean(
    settings: Settings, tx: Connection, first: int, unique: str
) -> None:
    """5 accounts get 1000.00 RUB each from @world:RUB, each through one completed transfer
    with its two entries; an overlapping second seed creates only the 3 new ids and does not
    refund the 2 it finds; the whole ledger then passes the audit."""
    world_before = _world_balance(tx, "RUB")
    result = ledger_seed.seed_accounts(tx, plan_seed(first, 5, "1000.00", "RUB"))
    assert (result.created, result.existing) == (5, 0)
    assert set(_accounts(tx, first, 5).values()) == {(100_000, 0)}

    result = ledger_seed.seed_accounts(tx, plan_seed(first + 3, 5, "1000", "RUB"))
    assert (result.created, result.existing) == (3, 2)
    assert set(_accounts(tx, first, 8).values()) == {(100_000, 0)}
    assert _world_balance(tx, "RUB") == world_before - 8 * 100_000

    ids = [str(opening_transfer_id(str(n))) for n in range(first, first + 8)]
    rows = tx.execute(
        "SELECT t.status, t.debit_account_id, t.amount, count(e.id), sum(e.delta)"
        " FROM transfers t JOIN entries e ON e.transfer_id = t.id"
        " WHERE t.id = ANY(%s::uuid[]) GROUP BY t.id",
        (ids,),
    ).fetchall()
    assert len(rows) == 8
    assert set(rows) == {("completed", "@world:RUB", 100_000, 2, 0)}

    report = audit.run_audit(settings, group=f"g.{unique}", conn=tx)
    assert report.ok, report.lines()


def test_seed_with_zero_balance_creates_unfunded_accounts(tx: Connection, first: int) -> None:
    """Balance 0: accounts with their overdraft limit, no transfer, the world untouched."""
    world_before = _world_balance(tx, "KWD")
    result = ledger_seed.seed_accounts(tx, plan_seed(first, 3, "0.000", "KWD", "12.345"))
    assert (result.created, result.existing) == (3, 0)
    assert set(_accounts(tx, first, 3).values()) == {(0, 12_345)}
    assert _world_balance(tx, "KWD") == world_before
    ids = [str(opening_transfer_id(str(n))) for n in range(first, first + 3)]
    found = tx.execute("SELECT count(*) FROM transfers WHERE id = ANY(%s::uuid[])", (ids,))
    assert found.fetchall() == [(0,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 1, "1"), "--first must be >= 0"),
        ((1, 0, "1"), "--count must be in 1.."),
        ((1, SEED_ACCOUNTS_MAX + 1, "1"), f"--count must be in 1..{SEED_ACCOUNTS_MAX}"),
        ((10**70, 1, "1"), "at most 64 digits"),
        ((1, 1, "1.001"), "--balance: more than 2 decimals"),
        ((1, 1, "-5"), "--balance: must be positive"),
        ((1, 1, "100000000000000"), "--balance: above the maximum"),
        ((1, 1, "1e3"), "--balance: not a plain decimal"),
        ((1, 2_000_000, "10000000000000"), "below -9223372036854775807"),
    ],
)
def test_seed_plan_refuses_bad_options(args: tuple[int, int, str], message: str) -> None:
    """Every out-of-range option is one SeedError naming it; nothing reaches the database."""
    with pytest.raises(SeedError, match=message.replace(".", r"\.")):
        plan_seed(*args, currency="RUB")


def test_seed_plan_refuses_unknown_currency_and_bad_limit() -> None:
    """The currency and the overdraft limit are checked like the balance."""
    with pytest.raises(SeedError, match="--currency: unsupported currency"):
        plan_seed(1, 1, "1", "XXX")
    with pytest.raises(SeedError, match="--overdraft-limit: more than 0 decimals"):
        plan_seed(1, 1, "1", "JPY", "0.5")


def test_opening_transfer_ids_are_stable_and_distinct() -> None:
    """The same account always maps to the same transfer id (so it is funded at most once)."""
    assert opening_transfer_id("40817810111322211") == opening_transfer_id("40817810111322211")
    assert opening_transfer_id("40817810111322211") != opening_transfer_id("40817810111322212")


def test_cli_seed_commits_and_a_rerun_creates_nothing(settings: Settings, first: int) -> None:
    """Through the command line and a real commit (unfunded, so the test can delete its
    accounts again without touching any balance): a second run finds them all."""
    app = typer.Typer()
    app.callback()(lambda: None)
    cli_ledger.register(app)
    args = ["accounts", "seed", "--first", str(first), "--count", "3", "--balance", "0"]
    try:
        first_run = CliRunner().invoke(app, args)
        assert first_run.exit_code == 0, first_run.output
        assert "created 3, already existed 0" in first_run.output
        second_run = CliRunner().invoke(app, args)
        assert "created 0, already existed 3" in second_run.output
    finally:
        with psycopg.connect(settings.postgres_dsn) as conn:
            conn.execute(
                "DELETE FROM accounts WHERE id = ANY(%s)",
                ([str(n) for n in range(first, first + 3)],),
            )


def test_cli_seed_reports_a_bad_option_in_one_line() -> None:
    """A bad option exits 1 with one line naming it, before any database work."""
    app = typer.Typer()
    app.callback()(lambda: None)
    cli_ledger.register(app)
    args = ["accounts", "seed", "--first", "1", "--count", "1", "--balance", "0.001"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert result.output.strip() == "orion: --balance: more than 2 decimals for this currency"
