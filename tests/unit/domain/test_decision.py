"""Settling one batch (orion.domain.decision.decide_batch)."""

from __future__ import annotations

import pytest

from orion.domain.decision import decide_batch
from orion.domain.model import (
    WORLD_ACCOUNT_ID,
    AccountState,
    Entry,
    Kind,
    LedgerInvariantError,
    Outcome,
    Reason,
    Status,
    Transfer,
)
from orion.domain.money import AMOUNT_MINOR_MAX


def accounts(*states: AccountState) -> dict[str, AccountState]:
    return {state.id: state for state in states}


ALICE = AccountState("alice", "USD", 1_000, 0)
BOB = AccountState("bob", "USD", 0, 0)
CAROL = AccountState("carol", "USD", 0, 500)
EURO = AccountState("euro", "EUR", 1_000, 0)
WORLD = AccountState(WORLD_ACCOUNT_ID, "USD", 0, None)
BOOK = accounts(ALICE, BOB, CAROL, EURO, WORLD)


def reason_of(transfer: Transfer, book: dict[str, AccountState] = BOOK) -> Reason | None:
    return decide_batch([transfer], book).outcomes[0].reason


def test_completed_transfer_moves_money_with_two_entries() -> None:
    """A valid transfer completes: debit entry first (-amount), then credit (+amount)."""
    decision = decide_batch([Transfer("t1", "alice", "bob", 300, "USD")], BOOK)
    assert decision.outcomes == (Outcome("t1", Status.COMPLETED, None),)
    assert decision.entries == (
        Entry("t1", "alice", -300, 700),
        Entry("t1", "bob", 300, 300),
    )
    assert decision.balances == {"alice": 700, "bob": 300}


@pytest.mark.parametrize(
    ("transfer", "reason"),
    [
        (Transfer("t", "alice", "alice", 1, "USD"), Reason.SAME_ACCOUNT),
        (Transfer("t", "alice", "bob", 0, "USD"), Reason.INVALID_AMOUNT),
        (Transfer("t", "alice", "bob", -5, "USD"), Reason.INVALID_AMOUNT),
        (Transfer("t", "alice", "bob", AMOUNT_MINOR_MAX + 1, "USD"), Reason.INVALID_AMOUNT),
        (Transfer("t", "ghost", "bob", 1, "USD"), Reason.ACCOUNT_NOT_FOUND),
        (Transfer("t", "alice", "ghost", 1, "USD"), Reason.ACCOUNT_NOT_FOUND),
        (Transfer("t", "alice", "bob", 1, "EUR"), Reason.CURRENCY_MISMATCH),
        (Transfer("t", "alice", "euro", 1, "USD"), Reason.CURRENCY_MISMATCH),
        (Transfer("t", "euro", "alice", 1, "EUR"), Reason.CURRENCY_MISMATCH),
        (Transfer("t", "alice", "bob", 1_001, "USD"), Reason.INSUFFICIENT_FUNDS),
        (Transfer("t", "carol", "bob", 501, "USD"), Reason.INSUFFICIENT_FUNDS),
    ],
)
def test_each_rejection_reason(transfer: Transfer, reason: Reason) -> None:
    """Each broken rule yields its reason code, as a REJECTED outcome with no entries."""
    decision = decide_batch([transfer], BOOK)
    assert decision.outcomes == (Outcome("t", Status.REJECTED, reason),)
    assert decision.entries == ()
    assert decision.balances == {}


@pytest.mark.parametrize(
    ("transfer", "reason"),
    [
        (Transfer("t", "ghost", "ghost", 0, "XXX"), Reason.SAME_ACCOUNT),
        (Transfer("t", "ghost", "bob", 0, "EUR"), Reason.INVALID_AMOUNT),
        (Transfer("t", "ghost", "euro", 10**9, "USD"), Reason.ACCOUNT_NOT_FOUND),
        (Transfer("t", "alice", "euro", 10**9, "USD"), Reason.CURRENCY_MISMATCH),
    ],
)
def test_rules_apply_in_precedence_order(transfer: Transfer, reason: Reason) -> None:
    """When several rules are broken, the first in the documented order is reported."""
    assert reason_of(transfer) is reason


def test_overdraft_limit_is_inclusive() -> None:
    """A debit may take the balance exactly to -overdraft_limit, not one unit further."""
    assert reason_of(Transfer("t", "carol", "bob", 500, "USD")) is None
    assert reason_of(Transfer("t", "alice", "bob", 1_000, "USD")) is None


def test_order_matters_within_a_batch() -> None:
    """Two transfers draining one account: the first completes, the second is rejected,
    and the reversed batch gives the mirror result."""
    first = Transfer("t1", "alice", "bob", 600, "USD")
    second = Transfer("t2", "alice", "carol", 600, "USD")
    forward = decide_batch([first, second], BOOK)
    assert [o.status for o in forward.outcomes] == [Status.COMPLETED, Status.REJECTED]
    assert forward.outcomes[1].reason is Reason.INSUFFICIENT_FUNDS
    assert forward.balances == {"alice": 400, "bob": 600}
    backward = decide_batch([second, first], BOOK)
    assert [o.transfer_id for o in backward.outcomes] == ["t2", "t1"]
    assert [o.status for o in backward.outcomes] == [Status.COMPLETED, Status.REJECTED]


def test_later_transfers_see_earlier_credits() -> None:
    """Money credited earlier in the batch can be spent later in the same batch."""
    batch = [
        Transfer("t1", "alice", "bob", 1_000, "USD"),
        Transfer("t2", "bob", "carol", 1_000, "USD"),
        Transfer("t3", "carol", "alice", 1_000, "USD"),
    ]
    decision = decide_batch(batch, BOOK)
    assert all(o.status is Status.COMPLETED for o in decision.outcomes)
    assert decision.balances == {"alice": 1_000, "bob": 0, "carol": 0}
    assert [e.balance_after for e in decision.entries] == [0, 1_000, 0, 1_000, 0, 1_000]


def test_world_account_is_unbounded() -> None:
    """@world can go arbitrarily negative: it is where money enters the ledger."""
    batch = [Transfer(f"t{i}", WORLD_ACCOUNT_ID, "bob", AMOUNT_MINOR_MAX, "USD") for i in range(5)]
    decision = decide_batch(batch, BOOK)
    assert all(o.status is Status.COMPLETED for o in decision.outcomes)
    assert decision.balances[WORLD_ACCOUNT_ID] == -5 * AMOUNT_MINOR_MAX


def test_entries_sum_to_zero_and_match_balances() -> None:
    """Over a mixed batch, entries sum to zero and lead from old to new balances."""
    batch = [
        Transfer("a", WORLD_ACCOUNT_ID, "carol", 250, "USD"),
        Transfer("b", "carol", "bob", 700, "USD"),
        Transfer("c", "bob", "alice", 10_000, "USD"),
        Transfer("d", "bob", "alice", 100, "USD"),
        Transfer("e", "euro", "alice", 1, "EUR"),
    ]
    decision = decide_batch(batch, BOOK)
    assert sum(entry.delta for entry in decision.entries) == 0
    assert len(decision.entries) == 2 * sum(o.status is Status.COMPLETED for o in decision.outcomes)
    for account_id, balance in decision.balances.items():
        moved = sum(e.delta for e in decision.entries if e.account_id == account_id)
        assert BOOK[account_id].balance + moved == balance


def test_inputs_are_not_mutated() -> None:
    """decide_batch is pure: the account states passed in are unchanged."""
    book = dict(BOOK)
    decide_batch([Transfer("t", "alice", "bob", 1, "USD")], book)
    assert book == BOOK


def test_empty_batch() -> None:
    """An empty batch decides nothing and moves nothing."""
    decision = decide_batch([], BOOK)
    assert (decision.outcomes, decision.entries, dict(decision.balances)) == ((), (), {})


def test_duplicate_transfer_id_in_a_batch_raises() -> None:
    """The same id twice in one batch would move money twice: refused, not settled."""
    transfer = Transfer("t", "alice", "bob", 1, "USD")
    with pytest.raises(LedgerInvariantError):
        decide_batch([transfer, transfer], BOOK)


def test_broken_starting_state_raises_instead_of_settling() -> None:
    """An account already past its limit that is only credited still breaks the
    invariant check: the ledger is corrupt, so nothing is written."""
    broke = AccountState("broke", "USD", -10, 0)
    with pytest.raises(LedgerInvariantError, match="limit"):
        decide_batch([Transfer("t", "alice", "broke", 5, "USD")], accounts(ALICE, broke))
    # Positive control: a credit that restores it is accepted.
    decision = decide_batch([Transfer("t", "alice", "broke", 10, "USD")], accounts(ALICE, broke))
    assert decision.balances["broke"] == 0


def test_balance_past_bigint_is_rejected_not_written() -> None:
    """A transfer that would take a balance past the bigint column is a rejection with its
    own reason (it can never settle), and the rest of the batch still settles."""
    rich = AccountState("rich", "USD", 2**63 - 1, 0)
    poor_world = AccountState(WORLD_ACCOUNT_ID, "USD", -(2**63), None)
    decision = decide_batch(
        [
            Transfer("t1", WORLD_ACCOUNT_ID, "rich", 1, "USD"),
            Transfer("t2", "alice", "bob", 5, "USD"),
        ],
        accounts(WORLD, rich, ALICE, BOB),
    )
    assert [o.reason for o in decision.outcomes] == [Reason.BALANCE_OUT_OF_RANGE, None]
    assert "rich" not in decision.balances
    assert reason_of(
        Transfer("t", WORLD_ACCOUNT_ID, "bob", 1, "USD"), accounts(poor_world, BOB)
    ) == (Reason.BALANCE_OUT_OF_RANGE)
    # Positive control: exactly up to the limit is fine.
    edge = AccountState("edge", "USD", 2**63 - 2, 0)
    assert (
        reason_of(Transfer("t", WORLD_ACCOUNT_ID, "edge", 1, "USD"), accounts(WORLD, edge)) is None
    )


def test_value_types_refuse_inconsistent_states() -> None:
    """A negative overdraft limit, or a status that disagrees with its reason, is refused."""
    with pytest.raises(LedgerInvariantError):
        AccountState("x", "USD", 0, -1)
    with pytest.raises(LedgerInvariantError):
        Outcome("t", Status.COMPLETED, Reason.SAME_ACCOUNT)
    with pytest.raises(LedgerInvariantError):
        Outcome("t", Status.REJECTED, None)


def test_reason_and_status_values_are_the_wire_format() -> None:
    """The enum values are the strings stored in PostgreSQL and published to Kafka."""
    assert {r.value for r in Reason} == {
        "account_not_found",
        "currency_mismatch",
        "insufficient_funds",
        "same_account",
        "invalid_amount",
        "balance_out_of_range",
        "invalid_record",
        "hold_not_found",
        "hold_mismatch",
        "hold_not_pending",
        "amount_exceeds_hold",
        "transfer_not_found",
        "not_reversible",
        "reversal_mismatch",
        "reversal_exceeds_original",
    }
    assert {s.value for s in Status} == {
        "completed", "rejected", "pending", "posted", "voided", "expired"
    }  # fmt: skip
    assert {k.value for k in Kind} == {
        "immediate", "pending", "post", "void", "expire", "reversal"
    }  # fmt: skip
    assert f"{Reason.SAME_ACCOUNT}" == "same_account"  # StrEnum formats as its value
