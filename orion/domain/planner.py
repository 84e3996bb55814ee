"""Planning a round: which pending transfers go to which shard now.

Responsibilities: walk the orchestrator's FIFO pending queue once and pick, per shard, a batch
of transfers that can be settled in parallel with every other batch in flight.

Guarantees of `plan_round`:
- Disjoint: no account appears in batches of two shards, and no locked account (one of a
  batch still in flight) appears at all. Shards never wait on each other's row locks.
- Per-account FIFO: a transfer that must wait (an account locked, claimed by another shard
  this round, its shard full or its batch full) blocks BOTH its accounts for the rest of the
  walk, so no later transfer on either account overtakes it. Hence, for every account, the
  transfers taken are a prefix of its pending transfers.
- Routing: a transfer joins the shard that already claimed one of its accounts this round,
  else `shard_for(debit_account_id)`. Only when its two accounts are claimed by two different
  shards does it wait (and block). Following an existing claim keeps rounds large when random
  pairs of a small account pool tie every account to some shard within a few hundred
  transfers; correctness never depends on the route (locks and the ledger decide).
- Bounded: at most `batch_transfers_max` per batch and `round_transfers_max` per round, and
  at most `scan_transfers_max` queue items inspected, whatever the queue holds.
Several transfers on one account inside ONE batch are fine: the shard decides them in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar

from orion.domain.model import Routable
from orion.domain.pending import PENDING_TRANSFERS_MAX, PendingQueue
from orion.domain.routing import shard_for

BATCH_TRANSFERS_MAX = 1_000  # one Ray call ~2 ms; one DB transaction ~25 ms at 40k rows/s
ROUND_TRANSFERS_MAX = 4_000  # <= 8k account locks: one pipelined Redis call of ~0.1 s
SCAN_TRANSFERS_MAX = 10_000  # a full walk is ~25 ms of Python here, even when every item waits

__all__ = [
    "BATCH_TRANSFERS_MAX",
    "PENDING_TRANSFERS_MAX",
    "ROUND_TRANSFERS_MAX",
    "SCAN_TRANSFERS_MAX",
    "PendingQueue",
    "Round",
    "plan_round",
]


T = TypeVar("T", bound=Routable)


@dataclass(frozen=True, slots=True)
class Round(Generic[T]):
    """One round's plan: non-empty batches by shard, the accounts to lock, the ids taken."""

    batches: Mapping[int, tuple[T, ...]]
    accounts: frozenset[str]
    taken_ids: frozenset[str]

    @property
    def transfer_count(self) -> int:
        """Number of transfers dispatched by this round."""
        return sum(len(batch) for batch in self.batches.values())


def plan_round(
    pending: Iterable[T],
    locked_accounts: AbstractSet[str],
    shard_count: int,
    full_shards: AbstractSet[int] = frozenset(),
    *,
    batch_transfers_max: int = BATCH_TRANSFERS_MAX,
    round_transfers_max: int = ROUND_TRANSFERS_MAX,
    scan_transfers_max: int = SCAN_TRANSFERS_MAX,
) -> Round[T]:
    """Plan one round over `pending` (oldest first); shards in `full_shards` get nothing."""
    for name, bound in (
        ("shard_count", shard_count),
        ("batch_transfers_max", batch_transfers_max),
        ("round_transfers_max", round_transfers_max),
        ("scan_transfers_max", scan_transfers_max),
    ):
        if bound < 1:
            raise ValueError(f"{name} must be at least 1, got {bound}")
    walk: _Walk[T] = _Walk(locked_accounts, shard_count, full_shards, batch_transfers_max)
    for transfer in islice(pending, scan_transfers_max):
        if walk.taken_count >= round_transfers_max or walk.open_shards == 0:
            break
        walk.offer(transfer)
    return walk.result()


class _Walk(Generic[T]):
    """The mutable state of one walk over the queue."""

    def __init__(
        self,
        locked: AbstractSet[str],
        shard_count: int,
        full_shards: AbstractSet[int],
        batch_transfers_max: int,
    ) -> None:
        self._locked = locked
        self._shard_count = shard_count
        self._full_shards = full_shards
        self._batch_transfers_max = batch_transfers_max
        self._owner: dict[str, int] = {}  # account -> shard that claimed it this round
        self._blocked: set[str] = set()
        self._batches: dict[int, list[T]] = {}
        self._taken: set[str] = set()
        self.taken_count = 0
        self.open_shards = shard_count - len(
            {shard for shard in full_shards if 0 <= shard < shard_count}
        )

    def offer(self, transfer: T) -> None:
        """Take `transfer` into its shard's batch, or block both of its accounts."""
        if transfer.id in self._taken:
            return  # a redelivered copy of a transfer this round already carries
        shard = self._shard_of(transfer)
        if shard is None:
            self._blocked.add(transfer.debit_account_id)
            self._blocked.add(transfer.credit_account_id)
        else:
            self._take(transfer, shard)

    def _shard_of(self, transfer: T) -> int | None:
        """The shard `transfer` may join now, or None when it must wait."""
        # Plain attribute reads and `in` tests, no generators: this runs per queued transfer.
        debit, credit = transfer.debit_account_id, transfer.credit_account_id
        unavailable = self._blocked
        if debit in unavailable or credit in unavailable:
            return None
        if debit in self._locked or credit in self._locked:
            return None
        debit_owner, credit_owner = self._owner.get(debit), self._owner.get(credit)
        if debit_owner is not None and credit_owner is not None and debit_owner != credit_owner:
            return None
        shard = debit_owner if debit_owner is not None else credit_owner
        if shard is None:
            shard = shard_for(debit, self._shard_count)
        if shard in self._full_shards:
            return None
        if len(self._batches.get(shard, ())) >= self._batch_transfers_max:
            return None
        return shard

    def _take(self, transfer: T, shard: int) -> None:
        batch = self._batches.setdefault(shard, [])
        batch.append(transfer)
        if len(batch) == self._batch_transfers_max:
            self.open_shards -= 1
        self._owner[transfer.debit_account_id] = shard
        self._owner[transfer.credit_account_id] = shard
        self._taken.add(transfer.id)
        self.taken_count += 1

    def result(self) -> Round[T]:
        return Round(
            batches={shard: tuple(batch) for shard, batch in self._batches.items()},
            accounts=frozenset(self._owner),
            taken_ids=frozenset(self._taken),
        )
