"""What route handlers share: the app's ApiDeps, the API-key check, acceptance and waiting.

Guarantees: with API keys configured, every route that depends on `require_api_key` answers
401 unless `Authorization: Bearer <key>` matches one (compared in constant time). A wait
for an outcome is bounded (WAIT_SECONDS_MAX) and never misses one that settled before the
waiter registered: PostgreSQL is read once after registering.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orion.serve.acceptance import Acceptor, Answer, Verdict
from orion.serve.batching import AcceptBatcher
from orion.serve.convert import view_of_outcome, view_of_row
from orion.serve.idempotency import Candidate
from orion.serve.ports import ApiDeps, DependencyUnavailableError
from orion.serve.schemas import TransferView

WAIT_SECONDS_MAX = 10.0  # an HTTP request held open longer than this helps nobody

_BEARER = HTTPBearer(auto_error=False, description="one of ORION_API_KEYS, when configured")


async def get_deps(request: Request) -> ApiDeps:
    deps: ApiDeps | None = getattr(request.app.state, "deps", None)
    if deps is None:
        raise DependencyUnavailableError("api", "dependencies are not started yet")
    return deps


Deps = Annotated[ApiDeps, Depends(get_deps)]
WaitSeconds = Annotated[
    float | None,
    Query(gt=0, le=WAIT_SECONDS_MAX, description="wait this long for the final outcome"),
]


async def require_api_key(
    deps: Deps, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
) -> None:
    keys = deps.options.api_keys
    if not keys:
        return
    if not key_matches((credentials.credentials if credentials else "").encode(), keys):
        raise HTTPException(
            status_code=401,
            detail="a valid 'Authorization: Bearer <API key>' header is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


def key_matches(token: bytes, keys: Iterable[str]) -> bool:
    """Whether the bearer token is one of the API keys (compared in constant time)."""
    return any(hmac.compare_digest(token, key.encode()) for key in keys)


BATCHERS_MAX = 8  # one per app instance; a few more only in tests that build many apps
# Keyed by id(), holding the deps themselves: while an entry lives its id cannot be reused
# by another object, so a batcher is never handed to the wrong app.
_BATCHERS: OrderedDict[int, tuple[ApiDeps, AcceptBatcher]] = OrderedDict()


def batcher_of(deps: ApiDeps) -> AcceptBatcher:
    """The app's micro-batcher, made on first use inside the running event loop."""
    entry = _BATCHERS.get(id(deps))
    if entry is not None and entry[0] is deps:
        return entry[1]
    batcher = AcceptBatcher(acceptor_of(deps))
    _BATCHERS[id(deps)] = (deps, batcher)
    while len(_BATCHERS) > BATCHERS_MAX:
        _BATCHERS.popitem(last=False)
    return batcher


def acceptor_of(deps: ApiDeps) -> Acceptor:
    """An Acceptor over the app's producer and store, with its idempotency window."""
    return Acceptor(deps.producer, deps.idempotency, deps.options.idempotency_window_ms)


async def accept_one(deps: ApiDeps, item: Candidate) -> Answer:
    """Accept one transfer; raises 409 / 503 unless the broker acknowledged it."""
    answer = await batcher_of(deps).submit(item)
    if answer.verdict is Verdict.CONFLICT:
        raise HTTPException(status_code=409, detail=answer.message)
    if answer.verdict is Verdict.UNAVAILABLE:
        raise HTTPException(status_code=503, detail=answer.message)
    return answer


async def wait_for_final(deps: ApiDeps, transfer_id: str, wait_s: float) -> TransferView | None:
    """The settled transfer if it settles within wait_s; None if it is still in flight.

    The feed must be listening before the ledger read (orion.serve.outcomes): every outcome
    is then either in PostgreSQL by that read or delivered to the future after it."""
    deadline = time.monotonic() + wait_s
    future = deps.outcomes.register(transfer_id)
    try:
        # too many waiters (no future) or no feed in time: answer from the ledger, now
        listening = future is not None and await deps.outcomes.listening(wait_s)
        row = await deps.ledger.get_transfer(transfer_id)
        if row is not None:
            return view_of_row(row)
        if future is None or not listening:
            return None
        try:
            outcome = await asyncio.wait_for(future, max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return None
        return view_of_outcome(outcome)
    finally:
        if future is not None:
            deps.outcomes.unregister(transfer_id, future)
