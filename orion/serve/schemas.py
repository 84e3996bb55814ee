"""Request and response bodies of the HTTP API (what /docs shows), and its error answers.

Requests refuse unknown fields (a typo must not silently drop data). Amounts in responses
are decimal strings in major units with exactly the currency's decimals ("12.30"). Each route
documents exactly the error statuses it can answer, through `error_responses`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from orion.serve.fields import (
    AccountId,
    AmountIn,
    AmountOrZeroIn,
    Currency,
    Metadata,
    SeedAccount,
)

HOLD_TIMEOUT_S_DEFAULT = 3600  # a hold nobody posts or voids is released after an hour
HOLD_TIMEOUT_S_MAX = 30 * 24 * 3600  # and never reserves money for longer than 30 days
BATCH_REQUEST_TRANSFERS_MAX = 1000  # one produce batch; larger bodies cost seconds to validate
# A full batch (1,000 transfers of ~250 bytes) fits with room to spare; larger is refused (413).
REQUEST_BODY_BYTES_MAX = 2 * 1024 * 1024


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransferIn(Request):
    # debit_account_id != credit_account_id cannot be said in JSON Schema (no keyword compares
    # two properties); convert.transfer_candidate refuses it, naming credit_account_id.
    id: UUID | None = Field(None, description="client-chosen id for safe retries; else uuid4")
    debit_account_id: AccountId
    credit_account_id: AccountId
    amount: AmountIn
    currency: Currency
    metadata: Metadata | None = None
    mode: Literal["immediate", "pending"] = Field(
        "immediate",
        description="pending: reserve the amount on the debit account (a hold) until it is"
        " posted, voided or expires",
    )
    timeout_s: int | None = Field(
        None,
        ge=1,
        le=HOLD_TIMEOUT_S_MAX,
        description=f"pending only: seconds until the hold expires (default"
        f" {HOLD_TIMEOUT_S_DEFAULT})",
    )


class HoldPostIn(Request):
    amount: AmountIn | None = Field(
        None, description="at most the held amount (default: all of it); the rest is released"
    )


class ReverseIn(Request):
    id: UUID | None = Field(None, description="client-chosen id of the reversal; else uuid4")
    amount: AmountIn | None = Field(None, description="default: all that is not reversed yet")
    metadata: Metadata | None = None


class BatchIn(Request):
    # Items are validated one by one so one bad item fails only itself.
    transfers: Annotated[
        list[Any],
        Field(
            min_length=1,
            max_length=BATCH_REQUEST_TRANSFERS_MAX,
            json_schema_extra={"items": {"$ref": "#/components/schemas/TransferIn"}},
        ),
    ]


class AccountIn(Request):
    id: AccountId
    currency: Currency
    overdraft_limit: AmountOrZeroIn = Field("0", description="how far below zero it may go")
    opening_balance: AmountOrZeroIn | None = Field(
        None, description="funded by a transfer from @world:<currency>; shows once settled"
    )


class SeedTransactionIn(Request):
    """The original system's contract (amount in major units of settings.seed_currency)."""

    # As in TransferIn, sender != receiver is checked by the server only (convert.py).
    sender_account: SeedAccount
    receiver_account: SeedAccount
    amount: AmountIn
    transaction_id: UUID | None = None


class TransferAccepted(BaseModel):
    id: str
    status: Literal["accepted"] = "accepted"


class TransferView(BaseModel):
    """A transfer's current state; the body fields are null only if it is unknown here."""

    id: str
    status: Literal["accepted", "pending", "posted", "voided", "expired", "completed", "rejected"]
    reason: str | None = None
    debit_account_id: str | None = None
    credit_account_id: str | None = None
    amount: str | None = None
    currency: str | None = None
    accepted_at: datetime | None = None
    settled_at: datetime | None = None
    mode: Literal["immediate", "pending", "post", "void", "expire", "reversal"] | None = Field(
        default=None, description="what the record asked for; null while only accepted"
    )
    hold: str | None = Field(default=None, description="post / void / expire: the hold acted on")
    reverses: str | None = Field(default=None, description="a reversal: the transfer it reverses")
    expires_at: datetime | None = Field(
        default=None, description="a hold: when it expires unresolved"
    )
    posted_amount: str | None = Field(default=None, description="a posted hold: what moved")
    reversed_amount: str | None = Field(
        default=None, description="what completed reversals of this transfer moved back"
    )


class AccountOut(BaseModel):
    id: str
    currency: str
    balance: str = Field(description="the posted balance")
    pending_debits: str = Field(description="open holds debiting this account")
    pending_credits: str = Field(description="open holds crediting this account")
    available: str = Field(
        description="balance - pending_debits: what it may still spend (down to -overdraft_limit)"
    )
    overdraft_limit: str | None = Field(description="null: unbounded (system accounts)")
    created_at: datetime
    updated_at: datetime
    opening_transfer_id: str | None = None


class EntryOut(BaseModel):
    transfer_id: str
    delta: str
    balance_after: str
    created_at: datetime


class EntriesPage(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for older entries")


class FieldProblem(BaseModel):
    field: str | None
    message: str


class Problems(BaseModel):
    """422: what is wrong, field by field."""

    detail: list[FieldProblem]


class Detail(BaseModel):
    """401 / 404 / 409 / 413 / 503: one sentence (409 names the id, 503 the failed dependency)."""

    detail: str


# Every error answer a route may give, as /docs shows them; each route lists its own.
_ERROR_RESPONSES: dict[int, dict[str, Any]] = {
    401: {"model": Detail, "description": "API keys are configured and none matched"},
    404: {"model": Detail, "description": "nothing with this id"},
    409: {"model": Detail, "description": "the id is taken by a different body; nothing written"},
    413: {
        "model": Detail,
        "description": f"the body is larger than {REQUEST_BODY_BYTES_MAX} bytes; plain text"
        " when its Content-Length said so, JSON when it was sent in chunks",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    422: {"model": Problems, "description": "bad input; nothing was written"},
    503: {"model": Detail, "description": "a dependency did not answer; retry"},
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route or router that can answer these error statuses."""
    return {status: _ERROR_RESPONSES[status] for status in statuses}


class BatchItemAccepted(BaseModel):
    index: int
    id: str
    status: Literal["accepted"] = "accepted"


class BatchItemFailed(BaseModel):
    index: int
    id: str | None = None
    status: Literal["error"] = "error"
    error: FieldProblem
    http_status: int


class BatchOut(BaseModel):
    results: list[BatchItemAccepted | BatchItemFailed]


class SeedQueued(BaseModel):
    status: Literal["queued"] = "queued"
    transaction_id: str


class Health(BaseModel):
    status: str
    failed: dict[str, str] = Field(default_factory=dict)
    # Not a reason to take this process out of service, but an operator must know: e.g.
    # {"settlement": "stuck partitions: 3; oldest unsettled transfer: 45 s"}.
    warnings: dict[str, str] = Field(default_factory=dict)
