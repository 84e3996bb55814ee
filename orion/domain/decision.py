"""Settling a batch of transfers: the money rules, as one pure function.

Responsibilities: given transfers in acceptance order, the current state of every account
they name (as read under `FOR UPDATE`) and of every transfer they target (holds to post,
void or expire; transfers to reverse), decide each one and compute the double-entry lines,
new balances, new pending amounts and new target states that the shard writes in the same
database transaction.

Guarantees:
- Pure and deterministic: no I/O, no clock, inputs untouched; the same batch against the
  same states always gives the same `Decision`.
- Records are settled in the given order and each sees the state left by the earlier ones,
  so a sequential ledger and a batch agree record by record (a hold and its post in one
  batch included).
- Rejections are outcomes (a `Reason`), never exceptions. Rules, first match wins:
  - immediate and pending: same account, invalid amount, account not found, currency
    mismatch, insufficient funds (against the available balance, `balance -
    pending_debits`), balance out of range (a balance, with every open hold posted, would
    leave the bigint column's range). A pending transfer moves no money: it adds its amount
    to the debit's `pending_debits` and the credit's `pending_credits`.
  - post / void / expire: hold not found (no such transfer, or not a hold), hold mismatch
    (the record's accounts or currency are not the hold's; for void and expire, its amount
    is not the held amount), hold not pending (posted, voided or expired already: the first
    action settled wins), then for a post: invalid amount, amount exceeds hold. A success
    releases the whole held amount; a post then moves the posted amount.
  - reversal: transfer not found, not reversible (it moved no money), reversal mismatch
    (not the original's accounts turned round, or another currency), invalid amount,
    reversal exceeds original (above what is left to reverse), then the immediate rules.
- Before returning, conservation is re-checked from the entries alone: deltas sum to zero,
  every account's entries lead from its old balance to its new one, pending debits and
  credits move by the same total, and every new available balance respects its limit and
  fits a bigint. A failure raises `LedgerInvariantError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from orion.domain.model import (
    HOLD_ACTIONS,
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
from orion.domain.money import AMOUNT_MINOR_MAX

BALANCE_MINOR_MAX = 2**63 - 1  # the balance column is a PostgreSQL bigint
BALANCE_MINOR_MIN = -(2**63)  # likewise; only @world can get anywhere near it
# What a successful hold action settles as, and leaves the hold as.
_ACTION_STATUS = {Kind.POST: Status.POSTED, Kind.VOID: Status.VOIDED, Kind.EXPIRE: Status.EXPIRED}


@dataclass(frozen=True, slots=True)
class Decision:
    """What a batch does: outcomes in input order, entries, new balances and holds.

    `entries` holds two lines per record that moved money (debit first, then credit);
    `balances` the final balance of every account money moved on; `pending` the final
    (pending_debits, pending_credits) of every account a hold was opened or released on;
    `targets` the final state of every target transfer that changed (a hold resolved, a
    transfer reversed), including one created earlier in the same batch.
    """

    outcomes: tuple[Outcome, ...]
    entries: tuple[Entry, ...]
    balances: Mapping[str, int]
    pending: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    targets: Mapping[str, Target] = field(default_factory=dict)


def decide_batch(
    transfers: Sequence[Transfer],
    accounts: Mapping[str, AccountState],
    targets: Mapping[str, Target] | None = None,
) -> Decision:
    """Settle `transfers` in order against `accounts` and `targets`; raise if money would
    not balance."""
    _require_unique_ids(transfers)
    book = _Book(accounts, dict(targets or {}), {t.target_id for t in transfers if t.target_id})
    outcomes = [book.settle(transfer) for transfer in transfers]
    _check_conservation(book.entries, accounts, book.balances, book.pending)
    return Decision(
        tuple(outcomes), tuple(book.entries), book.balances, book.pending, book.changed()
    )


@dataclass
class _Book:
    """The batch's working state: balances, pending amounts and targets as they stand."""

    accounts: Mapping[str, AccountState]
    targets: dict[str, Target]
    wanted: set[str]  # ids some record of the batch targets: track them once settled here
    balances: dict[str, int] = field(default_factory=dict)
    pending: dict[str, tuple[int, int]] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    initial: dict[str, Target | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.initial = dict(self.targets)

    def settle(self, t: Transfer) -> Outcome:
        outcome = self._decide(t)
        if self.wanted and t.id in self.wanted:  # a later record targets it: remember it
            target = Target(
                t.id, t.kind, outcome.status, t.debit_account_id, t.credit_account_id,
                t.amount, t.currency,
            )  # fmt: skip
            self.targets[t.id] = self.initial[t.id] = target
        return outcome

    def _decide(self, t: Transfer) -> Outcome:
        if t.kind in HOLD_ACTIONS:
            return self._act_on_hold(t)
        reason = self._target_rejection(t) if t.kind == Kind.REVERSAL else None
        reason = reason or self._rejection(t)
        if reason is not None:
            return Outcome(t.id, Status.REJECTED, reason)
        if t.kind == Kind.PENDING:
            self._add_pending(t.debit_account_id, t.credit_account_id, t.amount)
            return Outcome(t.id, Status.PENDING, None)
        self._move(t, t.amount)
        if t.kind == Kind.REVERSAL and t.target_id is not None:
            original = self.targets[t.target_id]
            self._set_target(replace(original, reversed_amount=original.reversed_amount + t.amount))
        return Outcome(t.id, Status.COMPLETED, None)

    def _rejection(self, t: Transfer) -> Reason | None:
        """The first immediate rule `t` breaks, given the state so far; None if it may go."""
        if t.debit_account_id == t.credit_account_id:
            return Reason.SAME_ACCOUNT
        if not 0 < t.amount <= AMOUNT_MINOR_MAX:
            return Reason.INVALID_AMOUNT
        debit = self.accounts.get(t.debit_account_id)
        credit = self.accounts.get(t.credit_account_id)
        if debit is None or credit is None:
            return Reason.ACCOUNT_NOT_FOUND
        if t.currency != debit.currency or t.currency != credit.currency:
            return Reason.CURRENCY_MISMATCH
        # Inlined lookups: this runs for every transfer of every batch (the hot path).
        balances, pending = self.balances, self.pending
        debits = pending[debit.id][0] if debit.id in pending else debit.pending_debits
        debit_after = balances.get(debit.id, debit.balance) - debits - t.amount
        if not debit.allows(debit_after):
            return Reason.INSUFFICIENT_FUNDS
        credits = pending[credit.id][1] if credit.id in pending else credit.pending_credits
        credit_after = balances.get(credit.id, credit.balance) + credits + t.amount
        if debit_after < BALANCE_MINOR_MIN or credit_after > BALANCE_MINOR_MAX:
            return Reason.BALANCE_OUT_OF_RANGE
        return None

    def _target_rejection(self, t: Transfer) -> Reason | None:
        """Why a reversal cannot reverse its original as asked; None if it may."""
        original = self.targets.get(t.target_id) if t.target_id else None
        if original is None:
            return Reason.TRANSFER_NOT_FOUND
        reversible = original.reversible()
        if reversible is None:
            return Reason.NOT_REVERSIBLE
        turned = (original.credit_account_id, original.debit_account_id, original.currency)
        if (t.debit_account_id, t.credit_account_id, t.currency) != turned:
            return Reason.REVERSAL_MISMATCH
        if not 0 < t.amount <= AMOUNT_MINOR_MAX:
            return Reason.INVALID_AMOUNT
        if t.amount > reversible - original.reversed_amount:
            return Reason.REVERSAL_EXCEEDS_ORIGINAL
        return None

    def _act_on_hold(self, t: Transfer) -> Outcome:
        hold = self.targets.get(t.target_id) if t.target_id else None
        reason = _hold_rejection(t, hold)
        if reason is not None or hold is None:
            return Outcome(t.id, Status.REJECTED, reason or Reason.HOLD_NOT_FOUND)
        if t.debit_account_id not in self.accounts or t.credit_account_id not in self.accounts:
            return Outcome(t.id, Status.REJECTED, Reason.ACCOUNT_NOT_FOUND)
        status = _ACTION_STATUS[t.kind]
        self._add_pending(hold.debit_account_id, hold.credit_account_id, -hold.amount)
        posted = None
        if t.kind == Kind.POST:
            self._move(t, t.amount)
            posted = t.amount
        self._set_target(replace(hold, status=status, posted_amount=posted))
        return Outcome(t.id, status, None)

    def _pending(self, account_id: str) -> tuple[int, int]:
        account = self.accounts[account_id]
        return self.pending.get(account_id, (account.pending_debits, account.pending_credits))

    def _add_pending(self, debit_id: str, credit_id: str, amount: int) -> None:
        debits, credits = self._pending(debit_id)
        self.pending[debit_id] = (debits + amount, credits)
        debits, credits = self._pending(credit_id)
        self.pending[credit_id] = (debits, credits + amount)

    def _move(self, t: Transfer, amount: int) -> None:
        """Move `amount` from t's debit to its credit: two entries, debit first."""
        balances, accounts = self.balances, self.accounts
        for account_id, delta in ((t.debit_account_id, -amount), (t.credit_account_id, amount)):
            after = balances.get(account_id, accounts[account_id].balance) + delta
            balances[account_id] = after
            self.entries.append(Entry(t.id, account_id, delta, after))

    def _set_target(self, target: Target) -> None:
        self.targets[target.id] = target

    def changed(self) -> dict[str, Target]:
        return {i: t for i, t in self.targets.items() if self.initial.get(i) != t}


def _hold_rejection(t: Transfer, hold: Target | None) -> Reason | None:
    """Why a post, void or expire record cannot act on `hold`; None if it may."""
    if hold is None or hold.kind != Kind.PENDING:
        return Reason.HOLD_NOT_FOUND
    own = (hold.debit_account_id, hold.credit_account_id, hold.currency)
    if (t.debit_account_id, t.credit_account_id, t.currency) != own:
        return Reason.HOLD_MISMATCH
    if t.kind != Kind.POST and t.amount != hold.amount:
        return Reason.HOLD_MISMATCH
    if hold.status != Status.PENDING:
        return Reason.HOLD_NOT_PENDING
    if t.kind == Kind.POST and not 0 < t.amount <= AMOUNT_MINOR_MAX:
        return Reason.INVALID_AMOUNT
    if t.kind == Kind.POST and t.amount > hold.amount:
        return Reason.AMOUNT_EXCEEDS_HOLD
    return None


def _require_unique_ids(transfers: Sequence[Transfer]) -> None:
    # A repeated id would move the same money twice; the shard's stored-id read removes them.
    if len({transfer.id for transfer in transfers}) != len(transfers):
        raise LedgerInvariantError("a batch names the same transfer id twice")


def _check_conservation(
    entries: Sequence[Entry],
    accounts: Mapping[str, AccountState],
    balances: Mapping[str, int],
    pending: Mapping[str, tuple[int, int]],
) -> None:
    """Re-derive the new balances from the entries alone and hold them to every limit."""
    if sum(entry.delta for entry in entries) != 0:
        raise LedgerInvariantError("entries of the batch do not sum to zero")
    derived = {account_id: accounts[account_id].balance for account_id in balances}
    for entry in entries:
        derived[entry.account_id] += entry.delta
        if derived[entry.account_id] != entry.balance_after:
            raise LedgerInvariantError(f"entry of {entry.transfer_id}: wrong balance_after")
    held = sum(d - accounts[a].pending_debits for a, (d, _) in pending.items())
    if held != sum(c - accounts[a].pending_credits for a, (_, c) in pending.items()):
        raise LedgerInvariantError("pending debits and credits of the batch moved apart")
    for account_id in balances.keys() | pending.keys():
        account = accounts[account_id]
        balance = derived.get(account_id, account.balance)
        if balance != balances.get(account_id, account.balance):
            raise LedgerInvariantError(f"account {account_id}: balance disagrees with entries")
        debits, credits = pending.get(account_id, (account.pending_debits, account.pending_credits))
        if debits < 0 or credits < 0:
            raise LedgerInvariantError(f"account {account_id}: pending amounts below zero")
        if not account.allows(balance - debits):
            raise LedgerInvariantError(f"account {account_id}: {balance} breaks its limit")
        if not (balance - debits >= BALANCE_MINOR_MIN and balance + credits <= BALANCE_MINOR_MAX):
            raise LedgerInvariantError(f"account {account_id}: {balance} overflows a bigint")
