"""Checks of every guarantee plan_round documents, shared by the planner tests."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from orion.domain.model import Transfer
from orion.domain.planner import Round
from orion.domain.routing import shard_for


def accounts_of(transfer: Transfer) -> tuple[str, str]:
    return transfer.debit_account_id, transfer.credit_account_id


def assert_round_invariants(
    plan: Round[Transfer],
    pending: Sequence[Transfer],
    locked: AbstractSet[str],
    shard_count: int,
    full_shards: AbstractSet[int],
    *,
    batch_transfers_max: int,
    round_transfers_max: int,
    scan_transfers_max: int,
) -> None:
    """Raise AssertionError naming the first guarantee `plan` breaks."""
    owner: dict[str, int] = {}
    taken_order = sorted(
        ((pending.index(t), shard, t) for shard, b in plan.batches.items() for t in b),
        key=lambda item: item[0],
    )
    claimed: dict[str, int] = {}
    for _, shard, transfer in taken_order:
        # Routed to shard_for(debit), unless an earlier taken transfer claimed one of its
        # accounts for another shard: then it follows that claim.
        follows = {claimed[a] for a in accounts_of(transfer) if a in claimed}
        expected = follows or {shard_for(transfer.debit_account_id, shard_count)}
        assert expected == {shard}, "misrouted"
        for account in accounts_of(transfer):
            claimed.setdefault(account, shard)
    for shard, batch in plan.batches.items():
        assert batch, "empty batches are left out"
        assert 0 <= shard < shard_count and shard not in full_shards, f"shard {shard} used"
        assert len(batch) <= batch_transfers_max, "batch too large"
        for transfer in batch:
            for account in accounts_of(transfer):
                assert account not in locked, f"locked account {account} used"
                assert owner.setdefault(account, shard) == shard, f"{account} in two shards"
    taken = [t for batch in plan.batches.values() for t in batch]
    assert len(taken) <= round_transfers_max, "round too large"
    assert plan.transfer_count == len(taken)
    assert plan.taken_ids == {t.id for t in taken}
    assert plan.accounts == set(owner)
    scanned = list(pending[:scan_transfers_max])
    assert all(t in scanned for t in taken), "took a transfer beyond the scan window"
    assert_fifo(plan, pending)


def assert_fifo(plan: Round[Transfer], pending: Sequence[Transfer]) -> None:
    """For every account, the taken transfers on it are a prefix of its pending ones, and
    each batch keeps queue order."""
    for batch in plan.batches.values():
        positions = [pending.index(t) for t in batch]
        assert positions == sorted(positions), "batch out of queue order"
    per_account: dict[str, list[bool]] = {}
    for transfer in pending:
        for account in set(accounts_of(transfer)):
            per_account.setdefault(account, []).append(transfer.id in plan.taken_ids)
    for account, flags in per_account.items():
        assert flags == sorted(flags, reverse=True), f"FIFO broken on {account}: {flags}"
