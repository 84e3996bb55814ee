"""A plain sequential reference ledger: the obviously correct one, to compare the core with.

It settles records one at a time, in order, written from the rules as stated (see
`orion.domain.decision`), not from the code that implements them, and keeps everything it
settled in plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orion.domain.decision import BALANCE_MINOR_MAX, BALANCE_MINOR_MIN
from orion.domain.model import AccountState, Kind, Outcome, Reason, Status, Transfer
from orion.domain.money import AMOUNT_MINOR_MAX


@dataclass
class Row:
    """A settled transfer as the reference keeps it."""

    transfer: Transfer
    status: Status
    posted: int | None = None
    reversed: int = 0


@dataclass
class ReferenceLedger:
    accounts: dict[str, AccountState]
    balances: dict[str, int] = field(default_factory=dict)
    pending_debits: dict[str, int] = field(default_factory=dict)
    pending_credits: dict[str, int] = field(default_factory=dict)
    rows: dict[str, Row] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for account_id, account in self.accounts.items():
            self.balances[account_id] = account.balance
            self.pending_debits[account_id] = account.pending_debits
            self.pending_credits[account_id] = account.pending_credits

    def run(self, transfers: list[Transfer]) -> ReferenceLedger:
        for t in transfers:
            reason = self.reason(t)
            status = Status.REJECTED if reason else self.apply(t)
            self.outcomes[t.id] = Outcome(t.id, status, reason)
            self.rows[t.id] = Row(t, status, t.amount if status == Status.POSTED else None)
        return self

    def reason(self, t: Transfer) -> Reason | None:
        if t.kind in (Kind.POST, Kind.VOID, Kind.EXPIRE):
            return self.hold_action_reason(t)
        if t.kind == Kind.REVERSAL:
            row = self.rows.get(t.target_id or "")
            if row is None:
                return Reason.TRANSFER_NOT_FOUND
            original = row.transfer
            if original.kind in (Kind.IMMEDIATE, Kind.REVERSAL) and row.status == Status.COMPLETED:
                moved = original.amount
            elif original.kind == Kind.PENDING and row.status == Status.POSTED:
                moved = self.posted_of(original.id)
            else:
                return Reason.NOT_REVERSIBLE
            if (t.debit_account_id, t.credit_account_id, t.currency) != (
                original.credit_account_id, original.debit_account_id, original.currency
            ):  # fmt: skip
                return Reason.REVERSAL_MISMATCH
            if t.amount <= 0 or t.amount > AMOUNT_MINOR_MAX:
                return Reason.INVALID_AMOUNT
            if t.amount > moved - row.reversed:
                return Reason.REVERSAL_EXCEEDS_ORIGINAL
        return self.transfer_reason(t)

    def transfer_reason(self, t: Transfer) -> Reason | None:
        debit = self.accounts.get(t.debit_account_id)
        credit = self.accounts.get(t.credit_account_id)
        if t.debit_account_id == t.credit_account_id:
            return Reason.SAME_ACCOUNT
        if t.amount <= 0 or t.amount > AMOUNT_MINOR_MAX:
            return Reason.INVALID_AMOUNT
        if debit is None or credit is None:
            return Reason.ACCOUNT_NOT_FOUND
        if t.currency != debit.currency or t.currency != credit.currency:
            return Reason.CURRENCY_MISMATCH
        available = self.balances[debit.id] - self.pending_debits[debit.id]
        if debit.overdraft_limit is not None and available - t.amount < -debit.overdraft_limit:
            return Reason.INSUFFICIENT_FUNDS
        if (
            available - t.amount < BALANCE_MINOR_MIN
            or self.balances[credit.id] + self.pending_credits[credit.id] + t.amount
            > BALANCE_MINOR_MAX
        ):
            return Reason.BALANCE_OUT_OF_RANGE
        return None

    def hold_action_reason(self, t: Transfer) -> Reason | None:
        row = self.rows.get(t.target_id or "")
        if row is None or row.transfer.kind != Kind.PENDING:
            return Reason.HOLD_NOT_FOUND
        hold = row.transfer
        if (t.debit_account_id, t.credit_account_id, t.currency) != (
            hold.debit_account_id, hold.credit_account_id, hold.currency
        ):  # fmt: skip
            return Reason.HOLD_MISMATCH
        if t.kind != Kind.POST and t.amount != hold.amount:
            return Reason.HOLD_MISMATCH
        if row.status != Status.PENDING:
            return Reason.HOLD_NOT_PENDING
        if t.kind == Kind.POST and (t.amount <= 0 or t.amount > AMOUNT_MINOR_MAX):
            return Reason.INVALID_AMOUNT
        if t.kind == Kind.POST and t.amount > hold.amount:
            return Reason.AMOUNT_EXCEEDS_HOLD
        if t.debit_account_id not in self.accounts or t.credit_account_id not in self.accounts:
            return Reason.ACCOUNT_NOT_FOUND
        return None

    def apply(self, t: Transfer) -> Status:
        """Apply a record that broke no rule; its status."""
        if t.kind == Kind.PENDING:
            self.pending_debits[t.debit_account_id] += t.amount
            self.pending_credits[t.credit_account_id] += t.amount
            return Status.PENDING
        if t.kind in (Kind.POST, Kind.VOID, Kind.EXPIRE):
            row = self.rows[t.target_id or ""]
            self.pending_debits[t.debit_account_id] -= row.transfer.amount
            self.pending_credits[t.credit_account_id] -= row.transfer.amount
            row.status = {
                Kind.POST: Status.POSTED, Kind.VOID: Status.VOIDED, Kind.EXPIRE: Status.EXPIRED
            }[t.kind]  # fmt: skip
            if t.kind == Kind.POST:
                row.posted = t.amount
                self.move(t)
            return row.status
        self.move(t)
        if t.kind == Kind.REVERSAL:
            self.rows[t.target_id or ""].reversed += t.amount
        return Status.COMPLETED

    def move(self, t: Transfer) -> None:
        self.balances[t.debit_account_id] -= t.amount
        self.balances[t.credit_account_id] += t.amount

    def posted_of(self, hold_id: str) -> int:
        posted = self.rows[hold_id].posted
        assert posted is not None
        return posted
