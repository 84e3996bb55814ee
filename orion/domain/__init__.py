"""Orion's pure core: the money rules, batch planning, per-account order, offset tracking.

Imports only the standard library (a unit test walks every module and fails otherwise), so
every rule here is tested without Ray, Kafka, Redis or PostgreSQL, and the adapters and
actors stay thin shells around it.

- money:    exact minor-unit amounts (Decimal in, int out; never float).
- model:    frozen value types (Transfer, AccountState, Outcome, Entry, Reason, Status).
- decision: `decide_batch`, the pure settlement of one batch, conservation re-checked.
- routing:  `shard_for`, a stable hash from debit account to shard.
- pending:  `PendingQueue`, the bounded FIFO of transfers waiting for a round.
- planner:  `plan_round`, conflict-free per-shard batches keeping per-account FIFO.
- offsets:  `OffsetTracker`, the contiguous settled offset per Kafka partition.
"""

from orion.domain.decision import Decision, decide_batch
from orion.domain.model import (
    SYSTEM_ACCOUNT_PREFIX,
    WORLD_ACCOUNT_ID,
    AccountState,
    Entry,
    LedgerInvariantError,
    Outcome,
    Reason,
    Routable,
    Status,
    Transfer,
    world_account_id,
)
from orion.domain.money import (
    AMOUNT_MINOR_MAX,
    CURRENCY_EXPONENTS,
    AmountError,
    currency_exponent,
    format_amount,
    parse_amount,
)
from orion.domain.offsets import OffsetError, OffsetTracker
from orion.domain.pending import PENDING_TRANSFERS_MAX, PendingQueue, PendingQueueFullError
from orion.domain.planner import (
    BATCH_TRANSFERS_MAX,
    ROUND_TRANSFERS_MAX,
    SCAN_TRANSFERS_MAX,
    Round,
    plan_round,
)
from orion.domain.routing import shard_for

__all__ = [
    "AMOUNT_MINOR_MAX",
    "BATCH_TRANSFERS_MAX",
    "CURRENCY_EXPONENTS",
    "PENDING_TRANSFERS_MAX",
    "ROUND_TRANSFERS_MAX",
    "SCAN_TRANSFERS_MAX",
    "SYSTEM_ACCOUNT_PREFIX",
    "WORLD_ACCOUNT_ID",
    "AccountState",
    "AmountError",
    "Decision",
    "Entry",
    "LedgerInvariantError",
    "OffsetError",
    "OffsetTracker",
    "Outcome",
    "PendingQueue",
    "PendingQueueFullError",
    "Reason",
    "Round",
    "Routable",
    "Status",
    "Transfer",
    "currency_exponent",
    "decide_batch",
    "format_amount",
    "parse_amount",
    "plan_round",
    "shard_for",
    "world_account_id",
]
