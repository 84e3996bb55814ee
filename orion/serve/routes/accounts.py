"""POST /v1/accounts, GET /v1/accounts/{id} and its entries (keyset paging, newest first)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from orion.domain.money import format_amount
from orion.serve.acceptance import Verdict
from orion.serve.convert import (
    account_out,
    decode_cursor,
    encode_cursor,
    entry_out,
    minor_or_zero,
    opening_candidate,
)
from orion.serve.dependencies import Deps, accept_one, require_api_key
from orion.serve.fields import ACCOUNT_ID_PATH_PATTERN
from orion.serve.jsonbody import ExactJSONRoute
from orion.serve.ports import AccountRow
from orion.serve.schemas import (
    REQUEST_BODY_BYTES_MAX,
    AccountIn,
    AccountOut,
    EntriesPage,
    error_responses,
)

ENTRIES_PAGE_DEFAULT = 50  # a screenful of statement lines
ENTRIES_PAGE_MAX = 500  # bounds one query's rows and one response's size

router = APIRouter(
    prefix="/v1/accounts",
    tags=["accounts"],
    route_class=ExactJSONRoute,
    dependencies=[Depends(require_api_key)],
    responses=error_responses(401, 422, 503),
)
# The account-id rule of bodies, plus system accounts ("@world:RUB"), so that no id that
# PostgreSQL would refuse (NUL) or could never hold reaches it.
AccountId = Annotated[
    str, Path(alias="id", pattern=ACCOUNT_ID_PATH_PATTERN, description="an account's id")
]
CURSOR_PATTERN = "^[A-Za-z0-9_-]{1,64}$"  # unpadded URL-safe base64, as encode_cursor writes


@router.post(
    "",
    status_code=201,
    response_model=AccountOut,
    max_body_size=REQUEST_BODY_BYTES_MAX,
    responses={
        200: {"model": AccountOut, "description": "already existed, identical"},
        **error_responses(409, 413),
    },
)
async def create_account(body: AccountIn, deps: Deps, response: Response) -> AccountOut:
    """Creates the account at balance 0; an opening balance is a transfer from @world."""
    limit = minor_or_zero(body.overdraft_limit, body.currency, "overdraft_limit")
    opening = 0
    if body.opening_balance is not None:
        opening = minor_or_zero(body.opening_balance, body.currency, "opening_balance")
    row, created = await deps.ledger.create_account(body.id, body.currency, limit)
    if not created and (row.currency, row.overdraft_limit) != (body.currency, limit):
        raise HTTPException(status_code=409, detail=_differs(row))
    opening_id = None
    if opening:
        try:
            answer = await accept_one(deps, opening_candidate(body.id, body.currency, opening))
        except HTTPException as err:
            if err.status_code == 409:
                err.detail = f"account {body.id} was opened with another opening_balance"
            raise
        opening_id = answer.transfer_id if answer.verdict is Verdict.ACCEPTED else None
    if not created:
        response.status_code = 200
    return account_out(row, opening_id)


@router.get("/{id}", response_model=AccountOut, responses=error_responses(404))
async def get_account(account_id: AccountId, deps: Deps) -> AccountOut:
    return account_out(await _account(deps, account_id))


@router.get("/{id}/entries", response_model=EntriesPage, responses=error_responses(404))
async def list_entries(
    account_id: AccountId,
    deps: Deps,
    limit: Annotated[int, Query(ge=1, le=ENTRIES_PAGE_MAX)] = ENTRIES_PAGE_DEFAULT,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
) -> EntriesPage:
    """Newest first; pass `next_cursor` back as `cursor` for the next (older) page."""
    before_id = decode_cursor(cursor)
    account = await _account(deps, account_id)
    rows = await deps.ledger.list_entries(account_id, before_id, limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return EntriesPage(
        items=[entry_out(r, account.currency) for r in page],
        next_cursor=encode_cursor(page[-1].id) if more else None,
    )


async def _account(deps: Deps, account_id: str) -> AccountRow:
    row = await deps.ledger.get_account(account_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no account with id {account_id}")
    return row


def _differs(row: AccountRow) -> str:
    limit = (
        "unbounded"
        if row.overdraft_limit is None
        else format_amount(row.overdraft_limit, row.currency)
    )
    return (
        f"account {row.id} already exists with currency {row.currency} and overdraft_limit {limit}"
    )
