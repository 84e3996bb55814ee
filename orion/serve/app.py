"""The FastAPI app of Orion's HTTP API (OpenAPI at /docs).

`create_app(deps, open_deps)` builds no client and imports no adapter: given `deps` (tests)
are used as they are and left open (whoever built them closes them); given `open_deps`, an
async context manager factory (orion.bootstrap wires the real one), its lifespan opens the
dependencies at start-up and closes them at shutdown. Ray Serve runs the ingress app's
lifespan inside the replica, so the same app works under `@serve.ingress` and TestClient.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from orion.serve import errors
from orion.serve.fastlane import ASGIApp, FastLane, Receive, Scope, Send
from orion.serve.fields import SHARED_SCHEMAS
from orion.serve.ports import ApiDeps
from orion.serve.routes import accounts, health, seed, transfers

log = logging.getLogger(__name__)


class OrionAPI(FastAPI):
    """FastAPI, plus the schemas that fields reference by $ref but no model declares, and the
    ingest routes' fast lane in front of everything (`use_fast_lane`).

    The lane sits outside FastAPI's own `__call__`, not among its middleware: py-spy had
    ~6 % of the replica's busy samples in what runs before a middleware (FastAPI's telemetry
    check reads os.environ per request, Starlette's server-error and telemetry wrappers).
    Serve still sees a FastAPI app (its docs path and route names come from it)."""

    _front: ASGIApp | None = None

    def use_fast_lane(self) -> None:
        self._front = FastLane(self._inner, self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self._front or self._inner)(scope, receive, send)

    async def _inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        document = super().openapi()
        document["components"]["schemas"].update(SHARED_SCHEMAS)
        return document


OpenDeps = Callable[[], AbstractAsyncContextManager[ApiDeps]]


def create_app(
    deps: ApiDeps | None = None, open_deps: OpenDeps | None = None, fast_lane: bool = True
) -> FastAPI:
    """`fast_lane=False` leaves every request to FastAPI (tests compare the two)."""
    app = OrionAPI(
        title="Orion",
        summary="Durable money transfers: accepted once Kafka has them, settled in PostgreSQL.",
        version="0.1.0",
        lifespan=_lifespan(deps, open_deps),
        # No app-wide max_body_size: each route that reads a body sets REQUEST_BODY_BYTES_MAX,
        # so a GET (which reads none) never answers 413.
        # The seed's clients may omit Content-Type; their JSON bodies still parse.
        strict_content_type=False,
    )
    errors.install(app)
    if fast_lane:
        app.use_fast_lane()  # the ingest routes' cheaper path (orion.serve.fastlane)
    # Hot routes first: FastAPI's router and Serve's route-name lookup (for its metrics) both
    # walk the routes in order on every request. Placed last, the seed route cost ~26 us more
    # per request in the two walks together (~4 % of the replica's CPU per request). No two
    # routers' paths overlap, so the order changes nothing else.
    for module in (seed, transfers, accounts, health):
        app.include_router(module.router)
    return app


def _lifespan(
    given: ApiDeps | None, open_deps: OpenDeps | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if given is not None:
            _announce(app, given)
            yield
            return
        if open_deps is None:
            raise RuntimeError("create_app needs deps or open_deps to serve requests")
        async with open_deps() as deps:
            _announce(app, deps)
            yield

    return lifespan


def _announce(app: FastAPI, deps: ApiDeps) -> None:
    app.state.deps = deps
    if not deps.options.api_keys:
        log.warning("API is unauthenticated (ORION_API_KEYS is empty): keep it on loopback only")
