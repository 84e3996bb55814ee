"""Exact JSON bodies: numbers with a fraction or exponent arrive as Decimal, never as float.

FastAPI parses a JSON body with `Request.json()`, which would turn `0.30000000000000004` or
`12345678901234567.89` into a rounded float before any validator saw it. Routes built with
`ExactJSONRoute` parse the raw text instead: fractions become `Decimal` (exact), integers
stay `int` (bounded in length), NaN / Infinity are refused as invalid JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

JSON_INT_DIGITS_MAX = 40  # more than any amount or id; caps int() cost on hostile input


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > JSON_INT_DIGITS_MAX:
        raise json.JSONDecodeError(f"integer longer than {JSON_INT_DIGITS_MAX} digits", text, 0)
    return int(text)


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a number JSON allows", name, 0)


def loads_exact(raw: bytes | str) -> Any:
    """json.loads, but fractions as Decimal, long integers and NaN/Infinity refused."""
    return json.loads(raw, parse_float=Decimal, parse_int=_bounded_int, parse_constant=_no_constant)


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_exact_json"):
            self._exact_json = loads_exact(await self.body())
        return self._exact_json


class ExactJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact
