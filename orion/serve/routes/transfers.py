"""POST /v1/transfers (+ /batch), GET /v1/transfers/{id}, and the actions on a settled
transfer: post / void a hold, reverse a transfer. Thin handlers over acceptance.

An action is accepted only against the settled state of its target (PostgreSQL): 404 if
nothing with that id was accepted, 409 if it is accepted but not settled yet, or if its state
refuses the action (a hold posted, voided or expired already, a transfer reversed in full).
Two actions racing past that check (a post and a void of one hold) are both accepted; the
shard settles the first in the hold's partition and the other as `rejected` /
`hold_not_pending`. A hold past its timeout takes no post or void (409): its expiry is on
the way (orion.adapters.hold_expiry). A post or void repeated answers as the first time:
its id is derived from the hold's, so the repeat is the same transfer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from orion.domain.model import Kind
from orion.domain.money import AmountError
from orion.serve import idempotency as idem
from orion.serve.acceptance import Verdict
from orion.serve.convert import (
    TargetStateError,
    carries,
    hold_action_candidate,
    reversal_candidate,
    transfer_candidate,
    view_of_row,
    view_of_stored,
)
from orion.serve.dependencies import (
    Deps,
    WaitSeconds,
    accept_one,
    acceptor_of,
    require_api_key,
    wait_for_final,
)
from orion.serve.errors import FieldError, problem_of
from orion.serve.idempotency import Candidate
from orion.serve.jsonbody import ExactJSONRoute
from orion.serve.ports import ApiDeps, TransferRow
from orion.serve.schemas import (
    REQUEST_BODY_BYTES_MAX,
    BatchIn,
    BatchItemAccepted,
    BatchItemFailed,
    BatchOut,
    FieldProblem,
    HoldPostIn,
    ReverseIn,
    TransferAccepted,
    TransferIn,
    TransferView,
    error_responses,
)

router = APIRouter(
    prefix="/v1/transfers",
    tags=["transfers"],
    route_class=ExactJSONRoute,
    dependencies=[Depends(require_api_key)],
    responses=error_responses(401, 422, 503),
)
TransferId = Annotated[UUID, Path(alias="id", description="the transfer's UUID")]
_VERDICT_STATUS = {Verdict.CONFLICT: 409, Verdict.UNAVAILABLE: 503}


@router.post(
    "",
    status_code=202,
    response_model=TransferAccepted,
    max_body_size=REQUEST_BODY_BYTES_MAX,
    responses={
        200: {"model": TransferView, "description": "settled within ?wait"},
        **error_responses(409, 413),
    },
)
async def post_transfer(body: TransferIn, deps: Deps, wait: WaitSeconds = None) -> Any:
    """Accepted (202) only once the broker acknowledged the transfer (acks=all). With `wait`,
    the final outcome (200) if it comes in time; 409 if the id turns out to be settled for
    another transfer (a reuse past the idempotency window: the record goes to the DLQ)."""
    item = transfer_candidate(body)
    answer = await accept_one(deps, item)
    if wait is not None:
        final = await wait_for_final(deps, answer.transfer_id, wait)
        if final is not None and not carries(final, item):
            raise HTTPException(status_code=409, detail=_settled_otherwise(answer.transfer_id))
        if final is not None:
            return JSONResponse(final.model_dump(mode="json"), status_code=200)
    return TransferAccepted(id=answer.transfer_id)


@router.post(
    "/batch",
    response_model=BatchOut,
    responses=error_responses(413),
    max_body_size=REQUEST_BODY_BYTES_MAX,
)
async def post_batch(body: BatchIn, deps: Deps) -> BatchOut:
    """Per-item results; all valid items are produced together, then their acks awaited."""
    results: dict[int, BatchItemAccepted | BatchItemFailed] = {}
    valid: list[tuple[int, Candidate]] = []
    for index, raw in enumerate(body.transfers):
        try:
            valid.append((index, transfer_candidate(TransferIn.model_validate(raw))))
        except (ValidationError, AmountError, FieldError) as err:
            results[index] = BatchItemFailed(
                index=index, id=_raw_id(raw), error=problem_of(err, "transfer"), http_status=422
            )
    answers = await acceptor_of(deps).accept([c for _, c in valid])
    for (index, _), answer in zip(valid, answers, strict=True):
        if answer.verdict is Verdict.ACCEPTED:
            results[index] = BatchItemAccepted(index=index, id=answer.transfer_id)
        else:
            results[index] = BatchItemFailed(
                index=index,
                id=answer.transfer_id,
                error=FieldProblem(
                    field="id" if answer.verdict is Verdict.CONFLICT else None,
                    message=answer.message,
                ),
                http_status=_VERDICT_STATUS[answer.verdict],
            )
    return BatchOut(results=[results[i] for i in range(len(body.transfers))])


@router.get("/{id}", response_model=TransferView, responses=error_responses(404))
async def get_transfer(transfer_id: TransferId, deps: Deps, wait: WaitSeconds = None) -> Any:
    """Settled (any status but `accepted`) from the ledger, else accepted, else 404."""
    key = str(transfer_id)
    row = await deps.ledger.get_transfer(key)
    if row is not None:
        return view_of_row(row)
    value = await deps.idempotency.get(key)
    stored = _accepted(value)
    if stored is None:
        raise HTTPException(status_code=404, detail=f"no accepted transfer with id {key}")
    if wait is not None:
        final = await wait_for_final(deps, key, wait)
        if final is not None:
            return final
    return view_of_stored(key, stored)


_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": TransferView, "description": "settled within ?wait"},
    **error_responses(404, 409),
}


@router.post(
    "/{id}/post",
    status_code=202,
    response_model=TransferAccepted,
    max_body_size=REQUEST_BODY_BYTES_MAX,
    responses={**_ACTION_RESPONSES, **error_responses(413)},
)
async def post_hold(
    transfer_id: TransferId, deps: Deps, body: HoldPostIn | None = None, wait: WaitSeconds = None
) -> Any:
    """Post a hold: the amount (default: all of it) moves, the rest is released. Answers the
    post's own id (the same on every repeat); the hold shows `posted` once it settles."""
    return await _act_on_hold(deps, str(transfer_id), Kind.POST, body, wait)


@router.post(
    "/{id}/void",
    status_code=202,
    response_model=TransferAccepted,
    responses=_ACTION_RESPONSES,
)
async def void_hold(transfer_id: TransferId, deps: Deps, wait: WaitSeconds = None) -> Any:
    """Void a hold: the held amount is released. Answers the void's own id."""
    return await _act_on_hold(deps, str(transfer_id), Kind.VOID, None, wait)


@router.post(
    "/{id}/reverse",
    status_code=202,
    response_model=TransferAccepted,
    max_body_size=REQUEST_BODY_BYTES_MAX,
    responses={**_ACTION_RESPONSES, **error_responses(413)},
)
async def reverse_transfer(
    transfer_id: TransferId, deps: Deps, body: ReverseIn | None = None, wait: WaitSeconds = None
) -> Any:
    """A new transfer in the opposite direction, `reverses` naming this one, for `amount`
    (default: all not reversed yet). It settles like any transfer: it can be rejected, e.g.
    when the credited account has spent the money."""
    original = await _settled_target(deps, str(transfer_id))
    if body is not None and body.id is not None:
        done = await deps.ledger.get_transfer(str(body.id))
        if done is not None and done.kind == Kind.REVERSAL and done.target_id == original.id:
            return await _answered(deps, done.id, wait)  # a repeat of a settled reversal
    try:
        item = reversal_candidate(original, body)
    except TargetStateError as err:
        raise HTTPException(status_code=409, detail=str(err)) from None
    answer = await accept_one(deps, item)
    return await _answered(deps, answer.transfer_id, wait)


async def _act_on_hold(
    deps: ApiDeps, hold_id: str, kind: Kind, body: HoldPostIn | None, wait: float | None
) -> Any:
    hold = await _settled_target(deps, hold_id)
    try:
        item = hold_action_candidate(hold, kind, body)
    except TargetStateError as err:
        raise HTTPException(status_code=409, detail=str(err)) from None
    if hold.status == "pending" and _past(hold.expires_at):
        detail = f"hold {hold_id} timed out at {hold.expires_at:%Y-%m-%dT%H:%M:%SZ}; it expires"
        raise HTTPException(status_code=409, detail=detail)
    if hold.status == "pending":
        answer = await accept_one(deps, item)
        return await _answered(deps, answer.transfer_id, wait)
    done = await deps.ledger.get_transfer(item.transfer.id)
    if done is None or not carries(view_of_row(done), item):
        raise HTTPException(status_code=409, detail=f"hold {hold_id} is {hold.status} already")
    return await _answered(deps, done.id, wait)  # the same action again: as the first time


def _past(moment: datetime | None) -> bool:
    return moment is not None and moment <= datetime.now(UTC)


async def _settled_target(deps: ApiDeps, transfer_id: str) -> TransferRow:
    row = await deps.ledger.get_transfer(transfer_id)
    if row is not None:
        return row
    if _accepted(await deps.idempotency.get(transfer_id)) is not None:
        detail = f"transfer {transfer_id} is accepted but not settled yet; retry once it is"
        raise HTTPException(status_code=409, detail=detail)
    raise HTTPException(status_code=404, detail=f"no transfer with id {transfer_id}")


async def _answered(deps: ApiDeps, transfer_id: str, wait: float | None) -> Any:
    if wait is not None:
        final = await wait_for_final(deps, transfer_id, wait)
        if final is not None:
            return JSONResponse(final.model_dump(mode="json"), status_code=200)
    return TransferAccepted(id=transfer_id)


def _settled_otherwise(transfer_id: str) -> str:
    return f"transfer id {transfer_id} was settled earlier for a different transfer"


def _accepted(value: str | None) -> idem.StoredValue | None:
    if value is None:
        return None
    try:
        stored = idem.decode(value)
    except ValueError:
        return None
    return stored if stored.state == idem.ACCEPTED else None


def _raw_id(raw: object) -> str | None:
    """The item's id when it is a valid UUID, so a client can match errors to transfers."""
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        try:
            return str(UUID(raw["id"]))
        except ValueError:
            return None
    return None
