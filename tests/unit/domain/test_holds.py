"""Holds (pending -> post / void / expire) and reversals in `decide_batch`, by example."""

from __future__ import annotations

import pytest

from orion.domain.decision import decide_batch
from orion.domain.model import (
    AccountState,
    Entry,
    Kind,
    LedgerInvariantError,
    Outcome,
    Reason,
    Status,
    Target,
    Transfer,
)

ALICE = AccountState("alice", "USD", 1_000, 0)
BOB = AccountState("bob", "USD", 0, 0)
BOOK = {a.id: a for a in (ALICE, BOB)}
HOLD = Target("h", Kind.PENDING, Status.PENDING, "alice", "bob", 600, "USD")
HELD = {
    "alice": AccountState("alice", "USD", 1_000, 0, pending_debits=600),
    "bob": AccountState("bob", "USD", 0, 0, pending_credits=600),
}


def act(kind: Kind, amount: int = 600, target: str = "h") -> Transfer:
    return Transfer(f"{kind}-1", "alice", "bob", amount, "USD", kind, target)


def test_a_hold_reserves_without_moving_money_and_counts_against_available() -> None:
    """A pending transfer adds to pending amounts, writes no entries, and a later transfer
    is judged against balance - pending_debits."""
    decision = decide_batch(
        [
            Transfer("h", "alice", "bob", 600, "USD", Kind.PENDING),
            Transfer("t", "alice", "bob", 401, "USD"),
            Transfer("u", "alice", "bob", 400, "USD"),
        ],
        BOOK,
    )
    assert [o.status for o in decision.outcomes] == [
        Status.PENDING, Status.REJECTED, Status.COMPLETED
    ]  # fmt: skip
    assert decision.outcomes[1].reason == Reason.INSUFFICIENT_FUNDS
    assert decision.pending == {"alice": (600, 0), "bob": (0, 600)}
    assert decision.balances == {"alice": 600, "bob": 400}
    assert [e.transfer_id for e in decision.entries] == ["u", "u"]


def test_a_hold_above_the_available_balance_is_rejected() -> None:
    decision = decide_batch([Transfer("h2", "alice", "bob", 401, "USD", Kind.PENDING)], HELD)
    assert decision.outcomes == (Outcome("h2", Status.REJECTED, Reason.INSUFFICIENT_FUNDS),)
    assert decision.pending == {}


def test_a_partial_post_moves_what_is_posted_and_releases_the_whole_hold() -> None:
    decision = decide_batch([act(Kind.POST, 250)], HELD, {"h": HOLD})
    assert decision.outcomes == (Outcome("post-1", Status.POSTED, None),)
    assert decision.entries == (
        Entry("post-1", "alice", -250, 750),
        Entry("post-1", "bob", 250, 250),
    )
    assert decision.pending == {"alice": (0, 0), "bob": (0, 0)}
    assert decision.targets == {
        "h": Target("h", Kind.PENDING, Status.POSTED, "alice", "bob", 600, "USD", 250)
    }


@pytest.mark.parametrize(
    ("kind", "status"), [(Kind.VOID, Status.VOIDED), (Kind.EXPIRE, Status.EXPIRED)]
)
def test_void_and_expire_release_the_hold_and_move_nothing(kind: Kind, status: Status) -> None:
    decision = decide_batch([act(kind)], HELD, {"h": HOLD})
    assert decision.outcomes == (Outcome(f"{kind}-1", status, None),)
    assert decision.entries == ()
    assert decision.pending == {"alice": (0, 0), "bob": (0, 0)}
    assert decision.targets["h"].status == status


def test_the_first_action_on_a_hold_wins_and_the_others_are_rejected() -> None:
    """A post and a void racing on one hold: whichever settles first wins."""
    void = Transfer("v", "alice", "bob", 600, "USD", Kind.VOID, "h")
    post = Transfer("p", "alice", "bob", 600, "USD", Kind.POST, "h")
    expire = Transfer("e", "alice", "bob", 600, "USD", Kind.EXPIRE, "h")
    decision = decide_batch([void, post, expire], HELD, {"h": HOLD})
    assert [o.status for o in decision.outcomes] == [
        Status.VOIDED,
        Status.REJECTED,
        Status.REJECTED,
    ]
    assert {o.reason for o in decision.outcomes[1:]} == {Reason.HOLD_NOT_PENDING}
    assert decision.entries == ()


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (act(Kind.POST, 601), Reason.AMOUNT_EXCEEDS_HOLD),
        (act(Kind.POST, 0), Reason.INVALID_AMOUNT),
        (act(Kind.VOID, 500), Reason.HOLD_MISMATCH),
        (Transfer("x", "bob", "alice", 600, "USD", Kind.POST, "h"), Reason.HOLD_MISMATCH),
        (act(Kind.POST, 10, target="nope"), Reason.HOLD_NOT_FOUND),
    ],
)
def test_hold_actions_that_cannot_apply_are_rejected_with_a_reason(
    record: Transfer, reason: Reason
) -> None:
    decision = decide_batch([record], HELD, {"h": HOLD})
    assert decision.outcomes[0].reason == reason
    assert decision.pending == {} and decision.entries == () and decision.targets == {}


def test_reversals_never_exceed_the_original_and_a_reversal_can_be_reversed() -> None:
    original = Target("t", Kind.IMMEDIATE, Status.COMPLETED, "alice", "bob", 300, "USD")
    book = {"alice": ALICE, "bob": AccountState("bob", "USD", 300, 0)}
    first = Transfer("r1", "bob", "alice", 200, "USD", Kind.REVERSAL, "t")
    second = Transfer("r2", "bob", "alice", 101, "USD", Kind.REVERSAL, "t")
    third = Transfer("r3", "bob", "alice", 100, "USD", Kind.REVERSAL, "t")
    back = Transfer("r4", "alice", "bob", 200, "USD", Kind.REVERSAL, "r1")
    decision = decide_batch([first, second, third, back], book, {"t": original})
    assert [o.reason for o in decision.outcomes] == [
        None, Reason.REVERSAL_EXCEEDS_ORIGINAL, None, None
    ]  # fmt: skip
    assert decision.targets["t"].reversed_amount == 300
    assert decision.targets["r1"].reversed_amount == 200
    assert decision.balances == {"alice": 1_100, "bob": 200}


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (
            Target("t", Kind.IMMEDIATE, Status.REJECTED, "alice", "bob", 300, "USD"),
            Reason.NOT_REVERSIBLE,
        ),
        (HOLD, Reason.NOT_REVERSIBLE),  # a hold not posted moved no money
        (
            Target("t", Kind.IMMEDIATE, Status.COMPLETED, "bob", "alice", 300, "USD"),
            Reason.REVERSAL_MISMATCH,
        ),
    ],
)
def test_reversing_what_cannot_be_reversed_is_rejected(target: Target, reason: Reason) -> None:
    record = Transfer("r", "bob", "alice", 100, "USD", Kind.REVERSAL, target.id)
    assert decide_batch([record], BOOK, {target.id: target}).outcomes[0].reason == reason


def test_a_reversal_of_a_posted_hold_is_bounded_by_the_posted_amount() -> None:
    posted = Target("h", Kind.PENDING, Status.POSTED, "alice", "bob", 600, "USD", 250)
    book = {"alice": ALICE, "bob": AccountState("bob", "USD", 600, 0)}
    over = Transfer("r", "bob", "alice", 251, "USD", Kind.REVERSAL, "h")
    assert decide_batch([over], book, {"h": posted}).outcomes[0].reason == (
        Reason.REVERSAL_EXCEEDS_ORIGINAL
    )


def test_negative_pending_amounts_are_refused() -> None:
    with pytest.raises(LedgerInvariantError):
        AccountState("x", "USD", 0, 0, pending_debits=-1)
