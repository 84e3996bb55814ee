"""Seeding accounts with opening balances: the checked plan and the ids it uses (no I/O).

Responsibilities: turn `orion accounts seed` arguments into a validated `SeedPlan`, and name
the opening-balance transfer of every account.

Guarantees:
- Amounts are parsed exactly by `money.parse_amount` for the plan's currency; never a float.
- An account's opening transfer id is `uuid5(OPENING_NAMESPACE, "opening:" + account id)`, so
  the same account always maps to the same transfer id and the transfers primary key makes a
  second funding of one account impossible, whatever a caller does.
- A plan never asks for more than SEED_ACCOUNTS_MAX accounts, an id longer than the schema
  allows, or a total that would overflow the world account's bigint balance (`SeedError`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from orion.domain.model import world_account_id
from orion.domain.money import AmountError, currency_exponent, parse_amount

SEED_ACCOUNTS_MAX = 2_000_000  # one transaction: ~1 GB of WAL, well under a minute here
ACCOUNT_ID_CHARS_MAX = 64  # the accounts.id CHECK in the schema
BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint: the world balance must stay above -BIGINT_MAX
OPENING_NAMESPACE = uuid.UUID("6f72696f-6e00-4f70-8e6e-696e67000001")  # fixed forever
_ZERO_TEXT = re.compile(r"0+(?:\.0+)?")  # "0", "0.00": the only amounts that mean no funding


class SeedError(ValueError):
    """The seed request is out of range; the message names the option in one line."""


@dataclass(frozen=True, slots=True)
class SeedPlan:
    """Accounts str(first) .. str(first + count - 1), each funded with `balance` minor units."""

    first: int
    count: int
    balance: int
    currency: str
    overdraft_limit: int

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    @property
    def world_account_id(self) -> str:
        return world_account_id(self.currency)

    def account_ids(self) -> Iterator[str]:
        return (str(n) for n in range(self.first, self.first + self.count))


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What a seed did: accounts created and funded, ids that already existed (untouched)."""

    created: int
    existing: int
    seconds: float


def plan_seed(
    first: int, count: int, balance: str, currency: str, overdraft_limit: str = "0"
) -> SeedPlan:
    """A checked plan; SeedError naming the option when anything is off."""
    if first < 0:
        raise SeedError(f"--first must be >= 0 (got {first})")
    if not 1 <= count <= SEED_ACCOUNTS_MAX:
        raise SeedError(f"--count must be in 1..{SEED_ACCOUNTS_MAX} (got {count})")
    if len(str(first + count - 1)) > ACCOUNT_ID_CHARS_MAX:
        raise SeedError(f"--first: account ids must be at most {ACCOUNT_ID_CHARS_MAX} digits")
    try:
        currency_exponent(currency)
    except AmountError as err:
        raise SeedError(f"--{err}") from None
    plan = SeedPlan(
        first=first,
        count=count,
        balance=minor_units_or_zero(balance, currency, "balance"),
        currency=currency,
        overdraft_limit=minor_units_or_zero(overdraft_limit, currency, "overdraft-limit"),
    )
    world_after(0, plan.balance, count)  # the total alone must fit a bigint
    return plan


def minor_units_or_zero(text: str, currency: str, field: str) -> int:
    """Exact minor units of a non-negative major-unit amount ("0" is allowed, unlike transfers)."""
    if _ZERO_TEXT.fullmatch(text):
        return 0
    try:
        return parse_amount(text, currency, field)
    except AmountError as err:
        raise SeedError(f"--{err}") from None


def world_after(world_balance: int, balance: int, created: int) -> int:
    """The world balance after funding `created` accounts; SeedError if it leaves a bigint."""
    after = world_balance - balance * created
    if after < -BIGINT_MAX:
        raise SeedError(
            f"--balance: funding {created} accounts with {balance} minor units each would "
            f"take the world account below -{BIGINT_MAX}"
        )
    return after


def opening_transfer_id(account_id: str) -> uuid.UUID:
    """The one transfer id that can ever fund `account_id` at opening."""
    return uuid.uuid5(OPENING_NAMESPACE, "opening:" + account_id)
