"""The ledger's nouns: transfers, account states, outcomes and double-entry lines.

Besides moving money at once (`Kind.IMMEDIATE`), a transfer can reserve it (`PENDING`, a hold
on the debit account) and later post, void or expire that hold (`POST` / `VOID` / `EXPIRE`,
records naming the hold as their `target_id`), or reverse a settled transfer (`REVERSAL`, a
transfer in the opposite direction naming the original as its `target_id`).

Responsibilities: immutable value types shared by the decision, planning and every adapter.
Amounts and balances are integers in minor units of the account's currency (see money.py).

Guarantees: every value is frozen and slotted (safe to share between threads and to send
between processes); an `AccountState` with a negative overdraft limit cannot be built,
because the schema forbids it and a decision made on one would be wrong.
"""

from __future__ import annotations

import operator
import uuid
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Protocol, TypeVar

C = TypeVar("C", bound=type[Any])


def pickled_by_fields(cls: C) -> C:
    """Pickle a frozen, slotted dataclass as `cls(*init_fields)`.

    The default for slotted dataclasses calls `dataclasses.fields()` for every instance it
    pickles and unpickles; batches of thousands cross Ray between the orchestrator and the
    shards, and that was a sixth of a shard's time. This is the same pickle protocol, three
    times cheaper (one C-level attrgetter, one constructor call).
    """
    names = tuple(f.name for f in fields(cls) if f.init)
    if len(names) < 2:
        raise TypeError(f"{cls.__name__}: needs at least two init fields")
    values = operator.attrgetter(*names)

    def reduce(self: Any) -> tuple[C, tuple[Any, ...]]:
        return cls, values(self)

    setattr(cls, "__reduce__", reduce)  # noqa: B010 - mypy rejects assigning a method
    return cls


ACCOUNT_ID_CHARS_MAX = 64  # the accounts.id CHECK in the schema
WORLD_ACCOUNT_ID = "@world"  # money enters and leaves through it; unbounded overdraft
SYSTEM_ACCOUNT_PREFIX = "@"  # ids starting with it are Orion's; clients cannot create them


def world_account_id(currency: str) -> str:
    """The system account of one currency (`@world:RUB`): balances sum to zero per currency."""
    return f"{WORLD_ACCOUNT_ID}:{currency}"


class LedgerInvariantError(RuntimeError):
    """Money would be created, lost or moved against a limit: a bug, never an outcome.

    Raised instead of writing anything, so the caller's transaction rolls back and the
    actor crashes loudly rather than persisting a broken ledger.
    """


class Reason(StrEnum):
    """Why a transfer was rejected; the stored and published value."""

    ACCOUNT_NOT_FOUND = "account_not_found"
    CURRENCY_MISMATCH = "currency_mismatch"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    SAME_ACCOUNT = "same_account"
    INVALID_AMOUNT = "invalid_amount"
    # The transfer would take a balance past what a bigint column holds.
    BALANCE_OUT_OF_RANGE = "balance_out_of_range"
    # The database refused to store the record as it is (e.g. metadata with a NUL or a lone
    # surrogate from another producer): final at once, never retried.
    INVALID_RECORD = "invalid_record"
    # Post / void / expire: no hold with that id, or the record's accounts, currency or
    # amount are not the hold's; the hold is posted, voided or expired already; a post
    # above the held amount.
    HOLD_NOT_FOUND = "hold_not_found"
    HOLD_MISMATCH = "hold_mismatch"
    HOLD_NOT_PENDING = "hold_not_pending"
    AMOUNT_EXCEEDS_HOLD = "amount_exceeds_hold"
    # Reversal: no such transfer; it moved no money that can be reversed (rejected, a hold
    # not posted, or a post / void / expire record); its direction or currency is not the
    # original's turned round; more than what is left to reverse.
    TRANSFER_NOT_FOUND = "transfer_not_found"
    NOT_REVERSIBLE = "not_reversible"
    REVERSAL_MISMATCH = "reversal_mismatch"
    REVERSAL_EXCEEDS_ORIGINAL = "reversal_exceeds_original"


class Status(StrEnum):
    """Status of a settled transfer row. `PENDING` is a hold not yet resolved; the others
    are final. A hold's row moves from `PENDING` to exactly one of `POSTED`, `VOIDED`,
    `EXPIRED`; the post / void / expire record that did it settles with that same status."""

    COMPLETED = "completed"
    REJECTED = "rejected"
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


class Kind(StrEnum):
    """What a transfer record asks for (see the module docstring)."""

    IMMEDIATE = "immediate"
    PENDING = "pending"
    POST = "post"
    VOID = "void"
    EXPIRE = "expire"
    REVERSAL = "reversal"


# Kinds whose `target_id` names a hold; REVERSAL's names any settled transfer.
HOLD_ACTIONS = frozenset({Kind.POST, Kind.VOID, Kind.EXPIRE})
TARGETED_KINDS = HOLD_ACTIONS | {Kind.REVERSAL}


def hold_action_id(hold_id: str, kind: Kind) -> str:
    """The id of a hold's post, void or expiry: one per hold and kind (uuid5 of the hold's
    id), so the same action asked again (a client's repeat, a second expiry scan) is the same
    transfer, settled once."""
    return str(uuid.uuid5(uuid.UUID(hold_id), kind.value))


class Routable(Protocol):
    """What planning and queueing need of a transfer: `Transfer`, or an envelope around one
    (the orchestrator may carry Kafka partition and offset alongside)."""

    @property
    def id(self) -> str: ...

    @property
    def debit_account_id(self) -> str: ...

    @property
    def credit_account_id(self) -> str: ...


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Transfer:
    """A request to move `amount` minor units of `currency` from debit to credit.

    `kind` says how (immediately, as a hold, or acting on the transfer `target_id` names).
    A post, void or expire record carries the hold's accounts and currency; its amount is
    the amount to post (at most the held one), or the held amount for void and expire.
    """

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    kind: Kind = Kind.IMMEDIATE
    target_id: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """A settled transfer as a hold action or a reversal sees it (read under the account
    locks). `posted_amount` is set once a hold is posted; `reversed_amount` sums the
    completed reversals of this transfer."""

    id: str
    kind: Kind
    status: Status
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    posted_amount: int | None = None
    reversed_amount: int = 0

    def reversible(self) -> int | None:
        """What money this transfer moved and can be reversed in total; None if it moved none."""
        if self.kind in (Kind.IMMEDIATE, Kind.REVERSAL) and self.status == Status.COMPLETED:
            return self.amount
        if self.kind == Kind.PENDING and self.status == Status.POSTED:
            return self.posted_amount
        return None


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as read from the ledger; `overdraft_limit=None` means unbounded.

    `balance` is the posted balance; `pending_debits` / `pending_credits` sum the open holds
    debiting / crediting it. What it may still spend is `balance - pending_debits`.
    """

    id: str
    currency: str
    balance: int
    overdraft_limit: int | None
    pending_debits: int = 0
    pending_credits: int = 0

    def __post_init__(self) -> None:
        if self.overdraft_limit is not None and self.overdraft_limit < 0:
            raise LedgerInvariantError(
                f"account {self.id}: overdraft_limit {self.overdraft_limit} is negative"
            )
        if self.pending_debits < 0 or self.pending_credits < 0:
            raise LedgerInvariantError(f"account {self.id}: negative pending amounts")

    def allows(self, balance: int) -> bool:
        """True when `balance` respects this account's overdraft limit."""
        return self.overdraft_limit is None or balance >= -self.overdraft_limit


@dataclass(frozen=True, slots=True)
class Outcome:
    """What settling one record did; `reason` is set exactly when rejected."""

    transfer_id: str
    status: Status
    reason: Reason | None

    def __post_init__(self) -> None:
        if (self.status == Status.REJECTED) != (self.reason is not None):
            raise LedgerInvariantError(
                f"transfer {self.transfer_id}: status {self.status} with reason {self.reason}"
            )


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of double entry: `delta` applied to the account, leaving `balance_after`."""

    transfer_id: str
    account_id: str
    delta: int
    balance_after: int
