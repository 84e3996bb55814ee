"""POST /transactions/: the original system's contract, on the same acceptance machinery.

`200 {"status": "queued", "transaction_id": ...}` only after the broker acknowledged the
transfer; the amount is in major units of settings.seed_currency.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from orion.serve.convert import seed_candidate
from orion.serve.dependencies import Deps, accept_one, require_api_key
from orion.serve.jsonbody import ExactJSONRoute
from orion.serve.schemas import (
    REQUEST_BODY_BYTES_MAX,
    SeedQueued,
    SeedTransactionIn,
    error_responses,
)

router = APIRouter(
    tags=["seed compatibility"],
    route_class=ExactJSONRoute,
    dependencies=[Depends(require_api_key)],
    responses=error_responses(401, 409, 413, 422, 503),
)


@router.post("/transactions/", response_model=SeedQueued, max_body_size=REQUEST_BODY_BYTES_MAX)
async def post_transaction(body: SeedTransactionIn, deps: Deps) -> SeedQueued:
    answer = await accept_one(deps, seed_candidate(body, deps.options.seed_currency))
    return SeedQueued(transaction_id=answer.transfer_id)
