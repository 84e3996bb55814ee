"""The whole core against a plain sequential reference ledger.

Random workloads go through PendingQueue + plan_round + decide_batch the way the
orchestrator and shards use them (batches in flight lock their accounts and finish in random
order, random shards report full, random bounds), and must give exactly what settling the
transfers one by one, in acceptance order, gives.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from orion.domain.decision import BALANCE_MINOR_MAX, BALANCE_MINOR_MIN, decide_batch
from orion.domain.model import AccountState, Outcome, Reason, Status, Transfer
from orion.domain.pending import PendingQueue
from orion.domain.planner import plan_round
from tests.unit.domain.round_checks import accounts_of, assert_round_invariants

CURRENCIES = ("USD", "EUR")
STEPS_PER_TRANSFER_MAX = 30  # a drained queue needs far fewer; more means a livelock


def reference_ledger(
    transfers: list[Transfer], accounts: dict[str, AccountState]
) -> tuple[dict[str, Outcome], dict[str, int]]:
    """Settle transfers one at a time, in order: the obviously correct ledger."""
    balances = {account_id: account.balance for account_id, account in accounts.items()}
    outcomes = {}
    for t in transfers:
        debit = accounts.get(t.debit_account_id)
        credit = accounts.get(t.credit_account_id)
        reason = None
        if t.debit_account_id == t.credit_account_id:
            reason = Reason.SAME_ACCOUNT
        elif t.amount <= 0:
            reason = Reason.INVALID_AMOUNT
        elif debit is None or credit is None:
            reason = Reason.ACCOUNT_NOT_FOUND
        elif t.currency != debit.currency or t.currency != credit.currency:
            reason = Reason.CURRENCY_MISMATCH
        elif (
            debit.overdraft_limit is not None
            and balances[debit.id] - t.amount < -debit.overdraft_limit
        ):
            reason = Reason.INSUFFICIENT_FUNDS
        elif (
            balances[debit.id] - t.amount < BALANCE_MINOR_MIN
            or balances[credit.id] + t.amount > BALANCE_MINOR_MAX
        ):
            reason = Reason.BALANCE_OUT_OF_RANGE
        else:
            balances[debit.id] -= t.amount
            balances[credit.id] += t.amount
        status = Status.COMPLETED if reason is None else Status.REJECTED
        outcomes[t.id] = Outcome(t.id, status, reason)
    return outcomes, balances


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
    transfers = []
    for n, (debit, credit, amount, chosen) in enumerate(
        draw(st.lists(rows, min_size=size, max_size=size))
    ):
        known = accounts.get(debit)
        currency = chosen or (known.currency if known else "USD")
        transfers.append(Transfer(f"t{n}", debit, credit, amount, currency))
    return accounts, transfers


@dataclass
class Simulation:
    """Orchestrator and shards in one loop, with randomness standing in for timing."""

    accounts: dict[str, AccountState]
    shard_count: int
    rnd: random.Random
    outcomes: dict[str, Outcome] = field(default_factory=dict)
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
        """What a shard does: read the batch's accounts, decide, write."""
        names = {a for t in batch for a in accounts_of(t) if a in self.accounts}
        decision = decide_batch(batch, {a: self.accounts[a] for a in names})
        for transfer, outcome in zip(batch, decision.outcomes, strict=True):
            assert outcome.transfer_id not in self.outcomes, "settled twice"
            self.outcomes[outcome.transfer_id] = outcome
            if outcome.status is Status.COMPLETED:
                self.completed_in_order.append(transfer)
        for account_id, balance in decision.balances.items():
            self.accounts[account_id] = replace(self.accounts[account_id], balance=balance)


@settings(max_examples=150, deadline=None)
@given(workload=workloads(), shard_count=st.integers(1, 4), seed=st.integers(0, 2**32))
def test_planned_parallel_settlement_equals_sequential_ledger(
    workload: tuple[dict[str, AccountState], list[Transfer]], shard_count: int, seed: int
) -> None:
    """Planned, parallel, out-of-order batch settlement gives exactly the reference
    ledger's outcome for every transfer and its final balances, conserves money, and
    completes each account's transfers in acceptance order."""
    accounts, transfers = workload
    expected_outcomes, expected_balances = reference_ledger(transfers, accounts)
    simulation = Simulation(dict(accounts), shard_count, random.Random(seed))
    simulation.run(transfers)
    assert simulation.outcomes == expected_outcomes
    assert {a: s.balance for a, s in simulation.accounts.items()} == expected_balances
    assert sum(expected_balances.values()) == sum(a.balance for a in accounts.values())
    for account_id in [*accounts, "ghost"]:
        applied = [t.id for t in simulation.completed_in_order if account_id in accounts_of(t)]
        accepted = [
            t.id
            for t in transfers
            if account_id in accounts_of(t) and expected_outcomes[t.id].status is Status.COMPLETED
        ]
        assert applied == accepted, f"order of {account_id} changed"


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
