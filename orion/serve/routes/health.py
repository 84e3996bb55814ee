"""/healthz (the process answers) and /readyz (this process can use Kafka, PostgreSQL and
Redis now, in time).

/readyz answers a Health body with either status, also before the dependencies are started
(503, failed: {"api": ...}), so probes parse one shape. Its Kafka check produces a record
through the API's own producer, so it fails exactly while this process cannot accept. Stuck
settlement is reported in `warnings` without failing readiness: every replica reads the same
Kafka, so failing would take the whole API out of service for one stuck partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orion.serve.dependencies import get_deps
from orion.serve.ports import DependencyUnavailableError
from orion.serve.schemas import Health

READY_TIMEOUT_S = 2.0  # each dependency answers a ping in ms; a probe must not hang

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "named dependencies did not answer"}},
)
async def readyz(request: Request) -> JSONResponse:
    try:
        deps = await get_deps(request)
    except DependencyUnavailableError as err:
        return _unready({"api": str(err)})
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "kafka": deps.producer.ping,
        "postgres": deps.ledger.ping,
        "redis": deps.idempotency.ping,
    }
    results = await asyncio.gather(*(_probe(check) for check in checks.values()))
    failed = {name: why for name, why in zip(checks, results, strict=True) if why}
    stuck = deps.progress.stuck_summary if deps.progress is not None else None
    warnings = {"settlement": stuck} if stuck else {}
    if failed:
        return _unready(failed, warnings)
    return JSONResponse(Health(status="ok", warnings=warnings).model_dump())


def _unready(failed: dict[str, str], warnings: dict[str, str] | None = None) -> JSONResponse:
    status = "unavailable: " + ", ".join(sorted(failed))
    body = Health(status=status, failed=failed, warnings=warnings or {})
    return JSONResponse(body.model_dump(), status_code=503)


async def _probe(check: Callable[[], Awaitable[None]]) -> str | None:
    """None when the check answered in time, else why not."""
    try:
        await asyncio.wait_for(check(), READY_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT_S} s"
    except DependencyUnavailableError as err:
        return str(err)
    return None
