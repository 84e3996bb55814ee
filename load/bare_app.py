"""Servers for the benchmark's ceilings, run by the driver under bare uvicorn on 127.0.0.1.

`app`: Orion's three write endpoints with the very same request models, exact-JSON parsing,
conversion and error handlers, answering as Orion does, but with no Kafka, Redis or
PostgreSQL behind them: what FastAPI + pydantic alone can serve on this machine (the HTTP
ceiling). `echo`: a bare Starlette route answering a constant body: what the load generator
itself can push (its ceiling).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orion.domain.money import AmountError
from orion.serve import errors
from orion.serve.convert import seed_candidate, transfer_candidate
from orion.serve.errors import FieldError, problem_of
from orion.serve.jsonbody import ExactJSONRoute
from orion.serve.schemas import (
    BatchIn,
    BatchItemAccepted,
    BatchItemFailed,
    BatchOut,
    Health,
    SeedQueued,
    SeedTransactionIn,
    TransferAccepted,
    TransferIn,
)

SEED_CURRENCY = "RUB"  # Orion's default ORION_SEED_CURRENCY; only validation depends on it

router = APIRouter(route_class=ExactJSONRoute)


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.post("/transactions/", response_model=SeedQueued)
async def post_transaction(body: SeedTransactionIn) -> SeedQueued:
    found = seed_candidate(body, SEED_CURRENCY)
    return SeedQueued(transaction_id=found.transfer.id)


@router.post("/v1/transfers", status_code=202, response_model=TransferAccepted)
async def post_transfer(body: TransferIn) -> TransferAccepted:
    return TransferAccepted(id=transfer_candidate(body).transfer.id)


@router.post("/v1/transfers/batch", response_model=BatchOut)
async def post_batch(body: BatchIn) -> BatchOut:
    results: list[BatchItemAccepted | BatchItemFailed] = []
    for index, raw in enumerate(body.transfers):
        try:
            found = transfer_candidate(TransferIn.model_validate(raw))
        except (ValidationError, AmountError, FieldError) as err:
            problem = problem_of(err, "transfer")
            results.append(BatchItemFailed(index=index, error=problem, http_status=422))
            continue
        results.append(BatchItemAccepted(index=index, id=found.transfer.id))
    return BatchOut(results=results)


app = FastAPI(title="orion-bench bare ceiling", strict_content_type=False)
errors.install(app)
app.include_router(router)

_ECHO_BODY = b'{"status":"queued"}'


async def _echo(request: Request) -> Response:
    await request.body()
    return Response(_ECHO_BODY, media_type="application/json")


async def _echo_health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


echo = Starlette(
    routes=[
        Route("/healthz", _echo_health, methods=["GET"]),
        Route("/{path:path}", _echo, methods=["POST"]),
    ]
)
