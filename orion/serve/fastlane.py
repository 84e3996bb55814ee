"""The ingest routes' fast lane: `POST /transactions/` and `POST /v1/transfers` answered by a
plain ASGI function in front of FastAPI's own call (routing, dependency injection, response
serialisation, middleware), inside the same app (Serve's ingress is still the FastAPI app, and /docs
still describes both routes: their FastAPI handlers stay, and answer whatever the lane
passes on).

Guarantee: the lane changes no answer, only what it costs. It answers a request only when
it can answer exactly as the FastAPI route would: a JSON body (no Content-Type, or
application/json) within REQUEST_BODY_BYTES_MAX that parses (`loads_exact`), validates
(the route's own model) and converts (`seed_candidate`, `transfer_candidate`); a valid API
key when keys are configured; no query string. It then accepts through the same
`accept_one` (idempotency claim, micro-batched produce, acks=all), and renders the success,
409 and 503 bodies as FastAPI does. Every other request (anything to refuse, a `?wait=`, the
API not started yet) goes to the FastAPI route with every message the lane read replayed,
so that route answers it as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from orion.domain.money import AmountError
from orion.serve.convert import seed_candidate, transfer_candidate
from orion.serve.dependencies import accept_one, key_matches
from orion.serve.errors import BodyError, FieldError
from orion.serve.idempotency import Candidate
from orion.serve.jsonbody import loads_exact
from orion.serve.ports import ApiDeps
from orion.serve.schemas import (
    REQUEST_BODY_BYTES_MAX,
    SeedTransactionIn,
    TransferIn,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_TYPES = (b"", b"application/json")  # what the lane takes; FastAPI judges the rest
_CONTENT_TYPE_JSON = (b"content-type", b"application/json")  # JSONResponse's, as it sends it
# What a body the FastAPI route would refuse raises here (all ValueErrors); it answers them.
_REFUSED = (BodyError, ValidationError, FieldError, AmountError)


@dataclass(frozen=True, slots=True)
class _Lane:
    """One route: its body model, how a body becomes a candidate, and the success answer.

    `answer` is the success body's bytes, exactly as FastAPI renders the route's response
    model (SeedQueued, TransferAccepted) with JSONResponse (compact, UTF-8, keys in field
    order): written directly it costs 0.2 us instead of ~5 (the model, `model_dump`,
    `json.dumps`, the Response object). A unit test holds the two equal for any id."""

    model: type[BaseModel]
    candidate: Callable[[Any, ApiDeps], Candidate]
    status: int
    answer: Callable[[str], bytes]


_LANES: dict[str, _Lane] = {
    "/transactions/": _Lane(
        SeedTransactionIn,
        lambda body, deps: seed_candidate(body, deps.options.seed_currency),
        200,
        lambda transfer_id: b'{"status":"queued","transaction_id":%s}' % _text(transfer_id),
    ),
    "/v1/transfers": _Lane(
        TransferIn,
        lambda body, _deps: transfer_candidate(body),
        202,
        lambda transfer_id: b'{"id":%s,"status":"accepted"}' % _text(transfer_id),
    ),
}


def _text(value: str) -> bytes:
    """A JSON string as JSONResponse writes it (json.dumps, ensure_ascii=False, UTF-8)."""
    return encode_basestring(value).encode()


class FastLane:
    """Pure ASGI, in front of `app` (the FastAPI app's own call); `host` is that app, whose
    state holds the deps once its lifespan started. See the module docstring."""

    def __init__(self, app: ASGIApp, host: FastAPI) -> None:
        self._app, self._host = app, host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = _LANES.get(scope["path"]) if scope["type"] == "http" else None
        if lane is None or scope["method"] != "POST" or scope.get("query_string"):
            return await self._app(scope, receive, send)
        read: list[Message] = []
        item = await _candidate(lane, getattr(self._host.state, "deps", None), scope, receive, read)
        if item is None:
            return await self._app(scope, _replaying(read, receive), send)
        try:
            answer = await accept_one(item[1], item[0])
        except HTTPException as err:  # 409 / 503, rendered as FastAPI's handler does
            response = JSONResponse({"detail": err.detail}, status_code=err.status_code)
            return await response(scope, receive, send)
        body = lane.answer(answer.transfer_id)
        # A fresh header list each time: Serve appends its X-Request-ID to it in place.
        headers = [(b"content-length", b"%d" % len(body)), _CONTENT_TYPE_JSON]
        await send({"type": "http.response.start", "status": lane.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _candidate(
    lane: _Lane, deps: ApiDeps | None, scope: Scope, receive: Receive, read: list[Message]
) -> tuple[Candidate, ApiDeps] | None:
    """The request's candidate and the app's deps, or None to pass it on (see module)."""
    if deps is None or not _acceptable_headers(scope, deps):
        return None
    body = await _body(receive, read)
    if not body:
        return None
    try:
        return lane.candidate(lane.model.model_validate(loads_exact(body)), deps), deps
    except _REFUSED:
        return None


def _acceptable_headers(scope: Scope, deps: ApiDeps) -> bool:
    content_type, authorization, length = b"", b"", 0
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.split(b";", 1)[0].strip().lower()
        elif name == b"authorization":
            authorization = value
        elif name == b"content-length":
            length = int(value) if value.isdigit() else REQUEST_BODY_BYTES_MAX + 1
    if content_type not in _JSON_TYPES or length > REQUEST_BODY_BYTES_MAX:
        return False
    keys = deps.options.api_keys
    if not keys:
        return True
    scheme, _, token = authorization.partition(b" ")
    return scheme.lower() == b"bearer" and key_matches(token, keys)


async def _body(receive: Receive, read: list[Message]) -> bytes:
    """The whole body, or b"" if the client left or it grew past the bound (the FastAPI
    route then answers 499 or 413 from the replayed messages)."""
    parts, size = [], 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return b""
        part = message.get("body", b"")
        size += len(part)
        if size > REQUEST_BODY_BYTES_MAX:
            return b""
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replaying(read: list[Message], receive: Receive) -> Receive:
    """`receive` that first hands out the messages the lane already took."""
    pending = list(read)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
