"""From validated request bodies to domain values, and from stored rows to response bodies.

Everything here is pure. Input conversion finishes validation (amount against its currency,
debit != credit) and raises AmountError / FieldError naming the field, before anything is
written anywhere.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from orion.domain.model import Kind, Transfer, hold_action_id, world_account_id
from orion.domain.money import AmountError, format_amount, parse_amount
from orion.messages import OutcomeRecord
from orion.seeding import opening_transfer_id
from orion.serve.errors import FieldError
from orion.serve.idempotency import Candidate, StoredValue, candidate
from orion.serve.ports import AccountRow, EntryRow, TransferRow
from orion.serve.schemas import (
    HOLD_TIMEOUT_S_DEFAULT,
    AccountOut,
    EntryOut,
    HoldPostIn,
    ReverseIn,
    SeedTransactionIn,
    TransferIn,
    TransferView,
)

# Zero as plain decimal text, unsigned: the OpenAPI pattern of these fields, exactly.
_ZERO_TEXT = re.compile(r"0+(?:\.0+)?")
BIGINT_MAX = 2**63 - 1  # entries.id is a bigserial
_CURSOR_TEXT = re.compile(r"e[0-9]{1,19}")  # "e" + a bigserial entries.id


def transfer_candidate(body: TransferIn) -> Candidate:
    if body.debit_account_id == body.credit_account_id:
        raise FieldError("credit_account_id", "must differ from debit_account_id")
    if body.timeout_s is not None and body.mode != "pending":
        raise FieldError("timeout_s", 'only a hold ("mode": "pending") has a timeout')
    amount = parse_amount(body.amount, body.currency)
    transfer_id = str(body.id or uuid.uuid4())
    kind = Kind(body.mode)
    transfer = Transfer(
        transfer_id, body.debit_account_id, body.credit_account_id, amount, body.currency, kind
    )
    if kind != Kind.PENDING:
        return candidate(transfer, body.metadata)
    return candidate(transfer, body.metadata, (body.timeout_s or HOLD_TIMEOUT_S_DEFAULT) * 1000)


def hold_action_candidate(hold: TransferRow, kind: Kind, body: HoldPostIn | None) -> Candidate:
    """The post or void record of a settled hold, or TargetStateError when the hold cannot take it
    now; FieldError when the asked amount is above the held one."""
    if hold.kind != Kind.PENDING:
        raise TargetStateError(f"transfer {hold.id} is not a hold (it is {hold.kind})")
    amount = hold.amount
    if body is not None and body.amount is not None:
        amount = parse_amount(body.amount, hold.currency)
        if amount > hold.amount:
            held = format_amount(hold.amount, hold.currency)
            raise FieldError("amount", f"exceeds the held amount {held}")
    transfer = Transfer(
        hold_action_id(hold.id, kind), hold.debit_account_id, hold.credit_account_id, amount,
        hold.currency, kind, hold.id,
    )  # fmt: skip
    return candidate(transfer, None)


def reversal_candidate(original: TransferRow, body: ReverseIn | None) -> Candidate:
    """A transfer moving back (part of) what `original` moved; TargetStateError when nothing is
    left to reverse, FieldError when the amount asked is more than what is left."""
    moved = _reversible(original)
    if moved is None:
        raise TargetStateError(
            f"transfer {original.id} ({original.status}) moved no money to reverse"
        )
    left = moved - original.reversed_amount
    if left <= 0:
        raise TargetStateError(f"transfer {original.id} is reversed in full already")
    amount = left
    if body is not None and body.amount is not None:
        amount = parse_amount(body.amount, original.currency)
        if amount > left:
            what = format_amount(left, original.currency)
            raise FieldError("amount", f"exceeds what is left to reverse ({what})")
    transfer = Transfer(
        str((body and body.id) or uuid.uuid4()), original.credit_account_id,
        original.debit_account_id, amount, original.currency, Kind.REVERSAL, original.id,
    )  # fmt: skip
    return candidate(transfer, body.metadata if body else None)


def _reversible(row: TransferRow) -> int | None:
    if row.kind in (Kind.IMMEDIATE, Kind.REVERSAL) and row.status == "completed":
        return row.amount
    if row.kind == Kind.PENDING and row.status == "posted":
        return row.posted_amount
    return None


class TargetStateError(ValueError):
    """The target's state refuses the action (409): a hold already resolved, a transfer
    with nothing left to reverse, something that is not a hold."""


def seed_candidate(body: SeedTransactionIn, currency: str) -> Candidate:
    if body.sender_account == body.receiver_account:
        raise FieldError("receiver_account", "must differ from sender_account")
    amount = parse_amount(body.amount, currency)
    transfer_id = str(body.transaction_id or uuid.uuid4())
    transfer = Transfer(transfer_id, body.sender_account, body.receiver_account, amount, currency)
    return candidate(transfer, None)


def opening_candidate(account_id: str, currency: str, amount: int) -> Candidate:
    # The same id `orion accounts seed` uses: an account is funded at opening at most once,
    # whether the API or the seeder (or a retry of either) opened it.
    transfer_id = str(opening_transfer_id(account_id))
    world = world_account_id(currency)
    return candidate(Transfer(transfer_id, world, account_id, amount, currency), None)


def minor_or_zero(value: str | int | Decimal, currency: str, field: str) -> int:
    """Like parse_amount, but zero is allowed (an overdraft limit, an empty opening)."""
    if isinstance(value, str) and _ZERO_TEXT.fullmatch(value):
        return 0
    if isinstance(value, int | Decimal) and not isinstance(value, bool) and value == 0:
        return 0
    return parse_amount(value, currency, field)


def account_out(row: AccountRow, opening_transfer_id: str | None = None) -> AccountOut:
    limit = row.overdraft_limit
    return AccountOut(
        id=row.id,
        currency=row.currency,
        balance=format_amount(row.balance, row.currency),
        pending_debits=format_amount(row.pending_debits, row.currency),
        pending_credits=format_amount(row.pending_credits, row.currency),
        available=format_amount(row.balance - row.pending_debits, row.currency),
        overdraft_limit=None if limit is None else format_amount(limit, row.currency),
        created_at=row.created_at,
        updated_at=row.updated_at,
        opening_transfer_id=opening_transfer_id,
    )


def entry_out(row: EntryRow, currency: str) -> EntryOut:
    return EntryOut(
        transfer_id=row.transfer_id,
        delta=format_amount(row.delta, currency),
        balance_after=format_amount(row.balance_after, currency),
        created_at=row.created_at,
    )


def view_of_row(row: TransferRow) -> TransferView:
    def fmt(minor: int | None) -> str | None:
        return None if minor is None else format_amount(minor, row.currency)

    return TransferView.model_validate(
        {
            "id": row.id,
            "status": row.status,
            "reason": row.reason,
            "debit_account_id": row.debit_account_id,
            "credit_account_id": row.credit_account_id,
            "amount": fmt(row.amount),
            "currency": row.currency,
            "accepted_at": row.accepted_at,
            "settled_at": row.settled_at,
            "mode": row.kind,
            "hold": row.target_id if row.kind in _HOLD_ACTIONS else None,
            "reverses": row.target_id if row.kind == Kind.REVERSAL else None,
            "expires_at": row.expires_at,
            "posted_amount": fmt(row.posted_amount),
            "reversed_amount": fmt(row.reversed_amount) if _reversible(row) else None,
        }
    )


_HOLD_ACTIONS = (Kind.POST, Kind.VOID, Kind.EXPIRE)


def carries(view: TransferView, item: Candidate) -> bool:
    """Is `view` (a settled transfer) the transfer `item` asks for? Accounts, amount and
    currency; metadata is not part of a view (the shards compare it too)."""
    t = item.transfer
    expected = (t.debit_account_id, t.credit_account_id, t.currency)
    if (view.debit_account_id, view.credit_account_id, view.currency) != expected:
        return False
    return view.amount == format_amount(t.amount, t.currency)


def view_of_outcome(outcome: OutcomeRecord) -> TransferView:
    """An outcome read from the results topic, shown exactly as its stored row would be."""
    return view_of_row(
        TransferRow(
            id=outcome.transfer_id,
            status=outcome.status,
            reason=outcome.reason,
            debit_account_id=outcome.debit_account_id,
            credit_account_id=outcome.credit_account_id,
            amount=outcome.amount,
            currency=outcome.currency,
            accepted_at=_from_ms(outcome.accepted_at_ms),
            settled_at=_from_ms(outcome.settled_at_ms),
            kind=outcome.kind,
            target_id=outcome.target_id,
        )
    )


def view_of_stored(transfer_id: str, stored: StoredValue) -> TransferView:
    """An accepted, not yet settled transfer, from its idempotency record."""
    body = stored.body or {}
    try:
        amount = format_amount(body["amount"], body["currency"])
    except (KeyError, AmountError):
        amount = None
    return TransferView(
        id=transfer_id,
        status="accepted",
        debit_account_id=body.get("debit"),
        credit_account_id=body.get("credit"),
        amount=amount,
        currency=body.get("currency"),
        accepted_at=None if stored.accepted_at_ms is None else _from_ms(stored.accepted_at_ms),
    )


def _from_ms(epoch_ms: int) -> datetime:
    seconds, ms = divmod(epoch_ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=ms * 1000)


def encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"e{entry_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The entry id a cursor stands for; FieldError for anything this API did not issue."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not _CURSOR_TEXT.fullmatch(text) or int(text[1:]) > BIGINT_MAX:
            raise ValueError(text)
        return int(text[1:])
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        raise FieldError("cursor", "not a cursor this API issued") from None
