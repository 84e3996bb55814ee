"""Round planning (orion.domain.planner.plan_round) and the pending queue."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.domain.model import Transfer
from orion.domain.pending import PendingQueue, PendingQueueFullError
from orion.domain.planner import Round, plan_round
from orion.domain.routing import shard_for
from tests.unit.domain.round_checks import assert_round_invariants

SHARDS = 4
# Account ids chosen by their shard (for 4 shards), so tests can say what they mean.
ON = {
    shard: [f"acct-{n}" for n in range(200) if shard_for(f"acct-{n}", SHARDS) == shard][:4]
    for shard in range(SHARDS)
}
A0, B0, C0, _ = ON[0]
A1, B1, C1, _ = ON[1]
A2, _, _, _ = ON[2]


def tr(tid: str, debit: str, credit: str) -> Transfer:
    return Transfer(tid, debit, credit, 1, "USD")


def ids(plan: Round[Transfer], shard: int) -> list[str]:
    return [t.id for t in plan.batches.get(shard, ())]


def test_independent_transfers_go_to_their_debit_shards() -> None:
    """Non-conflicting transfers are all taken, each on shard_for(debit), in queue order."""
    pending = [tr("1", A0, B0), tr("2", A1, B1), tr("3", C0, A2), tr("4", A0, C0)]
    plan = plan_round(pending, set(), SHARDS)
    assert ids(plan, 0) == ["1", "3", "4"]
    assert ids(plan, 1) == ["2"]
    assert plan.accounts == {A0, B0, C0, A1, B1, A2}
    assert plan.taken_ids == {"1", "2", "3", "4"}


def test_locked_account_blocks_later_transfers_on_both_accounts() -> None:
    """A transfer waiting on a locked account blocks both its accounts, so a later
    transfer on its other account cannot overtake it."""
    pending = [tr("1", A0, B0), tr("2", B0, C0), tr("3", C1, A1)]
    plan = plan_round(pending, {A0}, SHARDS)
    assert plan.taken_ids == {"3"}


def test_transfer_follows_the_shard_that_claimed_one_of_its_accounts() -> None:
    """A transfer whose credit (or debit) account a shard already claimed this round joins
    that shard instead of waiting, so rounds stay large under contention."""
    pending = [tr("1", A0, B1), tr("2", A1, B1), tr("3", A1, C1), tr("4", C1, A2)]
    plan = plan_round(pending, set(), SHARDS)
    assert ids(plan, 0) == ["1", "2", "3", "4"]


def test_accounts_claimed_by_two_shards_wait_and_block() -> None:
    """When a transfer's accounts belong to two different shards this round it waits, and
    blocks both accounts for later transfers (per-account FIFO)."""
    pending = [tr("1", A0, B0), tr("2", A1, C1), tr("3", A0, A1), tr("4", A1, C1)]
    plan = plan_round(pending, set(), SHARDS)
    assert (ids(plan, 0), ids(plan, 1)) == (["1"], ["2"])
    assert plan.taken_ids == {"1", "2"}


def test_debit_claimed_as_credit_follows_that_shard() -> None:
    """An account credited on shard 0 this round is debited on shard 0 too."""
    pending = [tr("1", A0, A1), tr("2", A1, B1)]
    plan = plan_round(pending, set(), SHARDS)
    assert ids(plan, 0) == ["1", "2"]


def test_full_shard_gets_nothing_and_its_transfers_block() -> None:
    """A shard in full_shards gets no batch; its transfers wait and block their accounts."""
    pending = [tr("1", A0, A1), tr("2", A1, B1), tr("3", B1, C1)]
    plan = plan_round(pending, set(), SHARDS, full_shards={0})
    assert plan.batches == {}
    plan = plan_round(pending, set(), SHARDS, full_shards={2, 3})
    assert ids(plan, 0) == ["1", "2", "3"]


def test_same_account_transfer_is_planned_like_any_other() -> None:
    """A transfer from an account to itself is routed (the shard rejects it, recorded)."""
    assert plan_round([tr("1", A0, A0)], set(), SHARDS).taken_ids == {"1"}


def test_bounds() -> None:
    """Batch, round and scan bounds cap the plan; a full batch blocks its later transfers."""
    pending = [tr(str(n), A0, B0) for n in range(5)] + [tr("x", A1, B1)]
    plan = plan_round(pending, set(), SHARDS, batch_transfers_max=2)
    assert ids(plan, 0) == ["0", "1"] and ids(plan, 1) == ["x"]
    plan = plan_round(pending, set(), SHARDS, round_transfers_max=3)
    assert plan.transfer_count == 3 and "x" not in plan.taken_ids
    plan = plan_round(pending, set(), SHARDS, scan_transfers_max=1)
    assert plan.taken_ids == {"0"}
    with pytest.raises(ValueError, match="batch_transfers_max"):
        plan_round(pending, set(), SHARDS, batch_transfers_max=0)
    with pytest.raises(ValueError, match="shard_count"):
        plan_round(pending, set(), 0)


def test_redelivered_copy_is_taken_once() -> None:
    """Two queue entries with one transfer id put it in the batch once."""
    pending = [tr("1", A0, B0), tr("1", A0, B0), tr("2", A0, B0)]
    assert ids(plan_round(pending, set(), SHARDS), 0) == ["1", "2"]


def test_pending_queue_is_bounded_fifo_unique_by_id() -> None:
    """push keeps order, refuses a pending id, raises when full; remove_taken keeps the
    order of what is left."""
    queue: PendingQueue[Transfer] = PendingQueue(capacity=4)
    for n in range(4):
        assert queue.push(tr(str(n), A0, B0))
    assert queue.is_full and queue.free_slots == 0 and len(queue) == 4
    assert not queue.push(tr("2", A0, B0))
    with pytest.raises(PendingQueueFullError):
        queue.push(tr("9", A0, B0))
    assert queue.remove_taken(frozenset({"0", "2", "nope"})) == 2
    assert [t.id for t in queue] == ["1", "3"] and "2" not in queue and "3" in queue
    assert queue.push(tr("2", A0, B0))  # no longer pending: accepted again
    assert [t.id for t in queue] == ["1", "3", "2"]


def test_queue_and_planner_work_together() -> None:
    """plan_round reads the queue directly; remove_taken drops exactly the round."""
    queue: PendingQueue[Transfer] = PendingQueue()
    for transfer in [tr("1", A0, B0), tr("2", A2, C0), tr("3", A0, A2), tr("4", A2, B1)]:
        queue.push(transfer)
    plan = plan_round(queue, set(), SHARDS)
    queue.remove_taken(plan.taken_ids)
    assert plan.taken_ids == {"1", "2"}
    assert [t.id for t in queue] == ["3", "4"]


ACCOUNTS = [f"a{n}" for n in range(8)]
transfers = st.lists(
    st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS)), max_size=40
).map(lambda pairs: [tr(str(n), d, c) for n, (d, c) in enumerate(pairs)])


@settings(max_examples=200, deadline=None)
@given(
    pending=transfers,
    locked=st.sets(st.sampled_from(ACCOUNTS)),
    shard_count=st.integers(1, 5),
    full_shards=st.sets(st.integers(0, 5)),
    batch_max=st.integers(1, 8),
    round_max=st.integers(1, 30),
    scan_max=st.integers(1, 50),
)
def test_plan_round_guarantees(
    *,
    pending: list[Transfer],
    locked: set[str],
    shard_count: int,
    full_shards: set[int],
    batch_max: int,
    round_max: int,
    scan_max: int,
) -> None:
    """For random queues, locks, full shards and bounds, every plan is disjoint across
    shards, avoids locked accounts, respects all bounds and keeps per-account FIFO."""
    plan = plan_round(
        pending,
        locked,
        shard_count,
        full_shards,
        batch_transfers_max=batch_max,
        round_transfers_max=round_max,
        scan_transfers_max=scan_max,
    )
    assert_round_invariants(
        plan,
        pending,
        locked,
        shard_count,
        full_shards,
        batch_transfers_max=batch_max,
        round_transfers_max=round_max,
        scan_transfers_max=scan_max,
    )
    if pending and not locked and not full_shards:
        assert pending[0].id in plan.taken_ids, "the head of an idle queue always goes"
