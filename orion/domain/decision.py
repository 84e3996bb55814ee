"""Settling a batch of transfers: the money rules, as one pure function.

Responsibilities: given transfers in acceptance order and the current state of every account
they name (as read under `FOR UPDATE`), decide each transfer and compute the double-entry
lines and new balances that the shard writes in the same database transaction.

Guarantees:
- Pure and deterministic: no I/O, no clock, inputs untouched; the same batch against the
  same states always gives the same `Decision`.
- Transfers are settled in the given order and each sees the balances left by the earlier
  ones, so a sequential ledger and a batch agree transfer by transfer.
- Rejections are outcomes (a `Reason`), never exceptions. Rules, first match wins:
  same account, invalid amount, account not found, currency mismatch, insufficient funds,
  balance out of range (a balance would leave the bigint column's range).
- Before returning, conservation is re-checked from the entries alone: deltas sum to zero,
  every account's entries lead from its old balance to its new one, and every new balance
  respects its limit and fits a bigint. A failure raises `LedgerInvariantError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orion.domain.model import (
    AccountState,
    Entry,
    LedgerInvariantError,
    Outcome,
    Reason,
    Status,
    Transfer,
)
from orion.domain.money import AMOUNT_MINOR_MAX

BALANCE_MINOR_MAX = 2**63 - 1  # the balance column is a PostgreSQL bigint
BALANCE_MINOR_MIN = -(2**63)  # likewise; only @world can get anywhere near it


@dataclass(frozen=True, slots=True)
class Decision:
    """What a batch does: outcomes in input order, entries, and new balances.

    `entries` holds two lines per completed transfer (debit first, then credit);
    `balances` holds the final balance of every account moved by a completed transfer.
    """

    outcomes: tuple[Outcome, ...]
    entries: tuple[Entry, ...]
    balances: Mapping[str, int]


def decide_batch(transfers: Sequence[Transfer], accounts: Mapping[str, AccountState]) -> Decision:
    """Settle `transfers` in order against `accounts`; raise if money would not balance."""
    _require_unique_ids(transfers)
    balances: dict[str, int] = {}
    outcomes: list[Outcome] = []
    entries: list[Entry] = []
    for transfer in transfers:
        reason = _rejection(transfer, accounts, balances)
        if reason is None:
            entries.extend(_move(transfer, accounts, balances))
            outcomes.append(Outcome(transfer.id, Status.COMPLETED, None))
        else:
            outcomes.append(Outcome(transfer.id, Status.REJECTED, reason))
    _check_conservation(entries, accounts, balances)
    return Decision(tuple(outcomes), tuple(entries), balances)


def _rejection(
    transfer: Transfer, accounts: Mapping[str, AccountState], balances: Mapping[str, int]
) -> Reason | None:
    """The first rule `transfer` breaks, given the balances so far; None when it may move."""
    if transfer.debit_account_id == transfer.credit_account_id:
        return Reason.SAME_ACCOUNT
    if not 0 < transfer.amount <= AMOUNT_MINOR_MAX:
        return Reason.INVALID_AMOUNT
    debit = accounts.get(transfer.debit_account_id)
    credit = accounts.get(transfer.credit_account_id)
    if debit is None or credit is None:
        return Reason.ACCOUNT_NOT_FOUND
    if transfer.currency != debit.currency or transfer.currency != credit.currency:
        return Reason.CURRENCY_MISMATCH
    debit_after = balances.get(debit.id, debit.balance) - transfer.amount
    if not debit.allows(debit_after):
        return Reason.INSUFFICIENT_FUNDS
    credit_after = balances.get(credit.id, credit.balance) + transfer.amount
    if debit_after < BALANCE_MINOR_MIN or credit_after > BALANCE_MINOR_MAX:
        return Reason.BALANCE_OUT_OF_RANGE
    return None


def _move(
    transfer: Transfer, accounts: Mapping[str, AccountState], balances: dict[str, int]
) -> tuple[Entry, Entry]:
    """Apply an accepted transfer to `balances`; its two entries, debit first."""
    lines = []
    for account_id, delta in (
        (transfer.debit_account_id, -transfer.amount),
        (transfer.credit_account_id, transfer.amount),
    ):
        after = balances.get(account_id, accounts[account_id].balance) + delta
        balances[account_id] = after
        lines.append(Entry(transfer.id, account_id, delta, after))
    return lines[0], lines[1]


def _require_unique_ids(transfers: Sequence[Transfer]) -> None:
    # A repeated id would move the same money twice; the shard's claim step removes them.
    if len({transfer.id for transfer in transfers}) != len(transfers):
        raise LedgerInvariantError("a batch names the same transfer id twice")


def _check_conservation(
    entries: Sequence[Entry], accounts: Mapping[str, AccountState], balances: Mapping[str, int]
) -> None:
    """Re-derive the new balances from the entries alone and hold them to every limit."""
    if sum(entry.delta for entry in entries) != 0:
        raise LedgerInvariantError("entries of the batch do not sum to zero")
    derived = {account_id: accounts[account_id].balance for account_id in balances}
    for entry in entries:
        derived[entry.account_id] += entry.delta
        if derived[entry.account_id] != entry.balance_after:
            raise LedgerInvariantError(f"entry of {entry.transfer_id}: wrong balance_after")
    for account_id, balance in balances.items():
        if derived[account_id] != balance:
            raise LedgerInvariantError(f"account {account_id}: balance disagrees with entries")
        if not accounts[account_id].allows(balance):
            raise LedgerInvariantError(f"account {account_id}: {balance} breaks its limit")
        if not BALANCE_MINOR_MIN <= balance <= BALANCE_MINOR_MAX:
            raise LedgerInvariantError(f"account {account_id}: {balance} overflows a bigint")
