"""Microbenchmark: what the route order costs each request before any Orion code runs.

FastAPI's router and Ray Serve's route-name lookup (for its per-route metrics) both walk
the app's routes in order on every request. Prints microseconds per request for the hot
paths, for the app as built and with the hot routers placed last (the old order).

    .venv/bin/python -m load.route_walk
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from types import ModuleType
from typing import Any

from fastapi import FastAPI
from ray.serve._private.thirdparty.get_asgi_route_name import get_asgi_route_name
from starlette.routing import Match

from orion.serve.app import create_app
from orion.serve.routes import accounts, health, seed, transfers

CALLS = 20_000
HOT_PATHS = ("/transactions/", "/v1/transfers", "/v1/transfers/batch")


def _hot_last() -> FastAPI:
    app = FastAPI()
    routers: tuple[ModuleType, ...] = (health, accounts, transfers, seed)
    for module in routers:
        app.include_router(module.router)
    return app


def _router_walk(app: FastAPI, scope: dict[str, Any]) -> None:
    for route in app.router.routes:
        if route.matches(scope)[0] == Match.FULL:
            return


def _per_call_us(fn: Callable[..., object], *args: Any) -> float:
    return timeit.timeit(lambda: fn(*args), number=CALLS) / CALLS * 1e6


def main() -> None:
    for name, app in (("as built", create_app()), ("hot routers last", _hot_last())):
        for path in HOT_PATHS:
            scope = {"type": "http", "method": "POST", "path": path, "root_path": ""}
            serve_us = _per_call_us(get_asgi_route_name, app, scope)
            walk_us = _per_call_us(_router_walk, app, scope)
            print(
                f"{name:17} {path:22} Serve route name {serve_us:5.1f} us, "
                f"FastAPI route walk {walk_us:5.1f} us"
            )


if __name__ == "__main__":
    main()
