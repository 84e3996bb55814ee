"""The whole core against a plain sequential reference ledger (tests/unit/domain/reference.py).

Random workloads (immediate transfers, holds, posts, voids, expiries and reversals) go
through PendingQueue + plan_round + decide_batch the way the orchestrator and shards use
them (batches in flight lock their accounts and finish in random order, random shards
report full, random bounds), and must give exactly what settling the records one by one, in
acceptance order, gives: every outcome, balance, pending amount and hold state.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from orion.domain.decision import decide_batch
from orion.domain.model import (
    AccountState,
    Kind,
    Outcome,
    Reason,
    Status,
    Target,
    Transfer,
)
from orion.domain.pending import PendingQueue
from orion.domain.planner import plan_round
from tests.unit.domain.reference import ReferenceLedger
from tests.unit.domain.round_checks import accounts_of, assert_round_invariants

CURRENCIES = ("USD", "EUR")
STEPS_PER_TRANSFER_MAX = 30  # a drained queue needs far fewer; more means a livelock


def reference_ledger(
    transfers: list[Transfer], accounts: dict[str, AccountState]
) -> tuple[dict[str, Outcome], dict[str, int]]:
    """Outcomes and final balances of the sequential reference ledger."""
    ledger = ReferenceLedger(dict(accounts)).run(transfers)
    return ledger.outcomes, ledger.balances


@st.composite
def workloads(draw: st.DrawFn) -> tuple[dict[str, AccountState], list[Transfer]]:
    """2-12 accounts in two currencies (mostly USD, so most transfers can complete), limits
    including None, and transfers including unknown accounts, self-transfers, bad amounts
    and wrong currencies."""
    accounts = {}
    for n in range(draw(st.integers(2, 12))):
        currency = draw(st.sampled_from(CURRENCIES + CURRENCIES[:1] * 3))
        limit = draw(st.none() | st.integers(0, 100))
        accounts[f"a{n}"] = AccountState(f"a{n}", currency, draw(st.integers(0, 400)), limit)
    names = [*accounts, "ghost"]
    rows = st.tuples(
        st.sampled_from(names),
        st.sampled_from(names),
        st.integers(-1, 150),
        st.sampled_from((None, None, None, *CURRENCIES)),  # None: the debit's currency
    )
    size = draw(st.integers(5, 80))  # drawn apart, so long queues are as common as short
    transfers: list[Transfer] = []
    for n, (debit, credit, amount, chosen) in enumerate(
        draw(st.lists(rows, min_size=size, max_size=size))
    ):
        known = accounts.get(debit)
        currency = chosen or (known.currency if known else "USD")
        kind = draw(st.sampled_from(list(Kind)))
        plain = Transfer(f"t{n}", debit, credit, amount, currency, kind)
        # Records that may well have settled: most targets are drawn among them.
        plausible = [e for e in transfers if len(accounts_of(e) & accounts.keys()) == 2]
        transfers.append(_aimed(draw, plain, plausible) if kind in TARGETED else plain)
    return accounts, transfers


TARGETED = (Kind.POST, Kind.VOID, Kind.EXPIRE, Kind.REVERSAL)


def _aimed(draw: st.DrawFn, t: Transfer, earlier: list[Transfer]) -> Transfer:
    """A post / void / expire / reversal aimed at an earlier record (mostly one it can act
    on), or at an id that never settles. Its accounts are the target's (turned round for a
    reversal), as the API builds them: a record on other accounts could be planned before
    its target and could never be judged the same way as in a sequential ledger."""
    wanted = (
        (Kind.PENDING,)
        if t.kind != Kind.REVERSAL
        else (Kind.IMMEDIATE, Kind.REVERSAL, Kind.PENDING)
    )
    fitting = [e for e in earlier if e.kind in wanted]
    target = draw(st.sampled_from(fitting)) if fitting and draw(st.integers(0, 5)) else None
    if target is None:
        return Transfer(t.id, t.debit_account_id, t.credit_account_id, t.amount, t.currency,
                        t.kind, "never")  # fmt: skip
    debit, credit = target.debit_account_id, target.credit_account_id
    if t.kind == Kind.REVERSAL:
        debit, credit = credit, debit
    amount = t.amount
    if t.kind in (Kind.VOID, Kind.EXPIRE) and draw(st.integers(0, 5)):
        amount = target.amount
    if t.kind == Kind.POST and draw(st.integers(0, 3)):  # the whole hold, or a part of it
        amount = draw(st.sampled_from((target.amount, target.amount // 2)))
    if t.kind == Kind.REVERSAL and draw(st.integers(0, 3)):  # whole, or a part of it
        amount = draw(st.sampled_from((target.amount, max(1, target.amount // 2))))
    return Transfer(t.id, debit, credit, amount, target.currency, t.kind, target.id)


@dataclass
class Simulation:
    """Orchestrator and shards in one loop, with randomness standing in for timing."""

    accounts: dict[str, AccountState]
    shard_count: int
    rnd: random.Random
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)  # every settled row, as stored
    completed_in_order: list[Transfer] = field(default_factory=list)
    in_flight: list[tuple[Transfer, ...]] = field(default_factory=list)

    def run(self, transfers: list[Transfer]) -> None:
        queue: PendingQueue[Transfer] = PendingQueue(capacity=len(transfers) + 1)
        for transfer in transfers:
            assert queue.push(transfer)
        stalled = False
        for _ in range(STEPS_PER_TRANSFER_MAX * len(transfers) + 10):
            if not queue and not self.in_flight:
                return
            taken = self.plan(queue, full_shards_allowed=not stalled)
            stalled = not taken and not self.in_flight
            self.finish_some(at_least_one=not taken)
        raise AssertionError("the queue never drained")

    def plan(self, queue: PendingQueue[Transfer], *, full_shards_allowed: bool) -> bool:
        locked = {a for batch in self.in_flight for t in batch for a in accounts_of(t)}
        full = {
            s for s in range(self.shard_count) if full_shards_allowed and self.rnd.random() < 0.3
        }
        bounds = {
            "batch_transfers_max": self.rnd.randint(1, 6),
            "round_transfers_max": self.rnd.randint(1, 12),
            "scan_transfers_max": self.rnd.randint(1, 25),
        }
        pending = list(queue)
        plan = plan_round(queue, locked, self.shard_count, full, **bounds)
        assert_round_invariants(plan, pending, locked, self.shard_count, full, **bounds)
        assert queue.remove_taken(plan.taken_ids) == len(plan.taken_ids)
        self.in_flight.extend(plan.batches.values())
        return bool(plan.taken_ids)

    def finish_some(self, *, at_least_one: bool) -> None:
        self.rnd.shuffle(self.in_flight)
        count = self.rnd.randint(int(at_least_one and bool(self.in_flight)), len(self.in_flight))
        done, self.in_flight = self.in_flight[:count], self.in_flight[count:]
        for batch in done:
            self.settle(batch)

    def settle(self, batch: tuple[Transfer, ...]) -> None:
        """What a shard does: read the batch's accounts and targets, decide, write."""
        names = {a for t in batch for a in accounts_of(t) if a in self.accounts}
        aimed = {
            t.target_id: self.targets[t.target_id] for t in batch if t.target_id in self.targets
        }
        decision = decide_batch(batch, {a: self.accounts[a] for a in names}, aimed)
        for transfer, outcome in zip(batch, decision.outcomes, strict=True):
            assert outcome.transfer_id not in self.outcomes, "settled twice"
            self.outcomes[outcome.transfer_id] = outcome
            self.targets[transfer.id] = Target(
                transfer.id, transfer.kind, outcome.status, transfer.debit_account_id,
                transfer.credit_account_id, transfer.amount, transfer.currency,
            )  # fmt: skip
            if decision.entries and any(e.transfer_id == transfer.id for e in decision.entries):
                self.completed_in_order.append(transfer)
        self.targets.update(decision.targets)
        for account_id, balance in decision.balances.items():
            self.accounts[account_id] = replace(self.accounts[account_id], balance=balance)
        for account_id, (debits, credits) in decision.pending.items():
            self.accounts[account_id] = replace(
                self.accounts[account_id], pending_debits=debits, pending_credits=credits
            )


@settings(max_examples=150, deadline=None)
@given(workload=workloads(), shard_count=st.integers(1, 4), seed=st.integers(0, 2**32))
def test_planned_parallel_settlement_equals_sequential_ledger(
    workload: tuple[dict[str, AccountState], list[Transfer]], shard_count: int, seed: int
) -> None:
    """Planned, parallel, out-of-order batch settlement gives exactly the reference
    ledger's outcome for every transfer and its final balances, conserves money, and
    completes each account's transfers in acceptance order."""
    accounts, transfers = workload
    reference = ReferenceLedger(dict(accounts)).run(transfers)
    simulation = Simulation(dict(accounts), shard_count, random.Random(seed))
    simulation.run(transfers)
    assert simulation.outcomes == reference.outcomes
    assert {a: s.balance for a, s in simulation.accounts.items()} == reference.balances
    assert {a: s.pending_debits for a, s in simulation.accounts.items()} == (
        reference.pending_debits
    )
    assert {a: s.pending_credits for a, s in simulation.accounts.items()} == (
        reference.pending_credits
    )
    for transfer_id, row in reference.rows.items():
        stored = simulation.targets[transfer_id]
        assert (stored.status, stored.reversed_amount) == (row.status, row.reversed)
        if row.transfer.kind == Kind.PENDING:
            assert stored.posted_amount == row.posted, transfer_id
    assert sum(reference.balances.values()) == sum(a.balance for a in accounts.values())
    moved = {t.id for t in transfers if _moves_money(reference.outcomes[t.id].status)}
    for account_id in [*accounts, "ghost"]:
        applied = [t.id for t in simulation.completed_in_order if account_id in accounts_of(t)]
        accepted = [t.id for t in transfers if account_id in accounts_of(t) and t.id in moved]
        assert applied == accepted, f"order of {account_id} changed"


def _moves_money(status: Status) -> bool:
    return status in (Status.COMPLETED, Status.POSTED)


def test_reference_ledger_itself() -> None:
    """Sanity of the oracle: drain one account twice, the second is refused."""
    accounts = {
        "x": AccountState("x", "USD", 100, 0),
        "y": AccountState("y", "USD", 0, None),
    }
    transfers = [Transfer("1", "x", "y", 80, "USD"), Transfer("2", "x", "y", 80, "USD")]
    outcomes, balances = reference_ledger(transfers, accounts)
    assert [outcomes[t].reason for t in ("1", "2")] == [None, Reason.INSUFFICIENT_FUNDS]
    assert balances == {"x": 20, "y": 80}
