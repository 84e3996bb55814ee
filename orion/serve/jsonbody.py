"""Exact, strict JSON bodies: what a route built with `ExactJSONRoute` lets through.

FastAPI parses a JSON body with `Request.json()`, which would turn `0.30000000000000004` or
`12345678901234567.89` into a rounded float before any validator saw it, keep the last of two
equal keys, and let NUL or a lone surrogate through to PostgreSQL (which refuses them: a 500).
`ExactJSONRoute` parses the raw bytes itself, before FastAPI's handler runs, and guarantees of
every body it lets through:

- numbers with a fraction or an exponent are `Decimal`, never float (`ExponentDecimal` when
  written with an exponent, so amount fields can refuse that spelling); integers are `int` of
  at most JSON_INT_DIGITS_MAX digits; NaN and Infinity are refused;
- no object has a key twice, nor more than OBJECT_KEYS_MAX keys;
- no string, key or value, holds NUL or a lone surrogate.

Anything else is a BodyError (422) naming the field path ("metadata.x") where it can be known,
else "body": invalid JSON, invalid UTF-8 and too deep nesting included. Never the 400 FastAPI
answers when its own parse fails, never a 500. Only a body whose bytes spell NUL or a
surrogate somehow (an escape, CESU bytes, a NUL byte) is walked for them: the common body, ASCII
without `\\u` or a NUL byte, is ruled out by three scans of its bytes at memchr speed.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from orion.serve.errors import PROBLEMS_MAX, BodyError
from orion.serve.fields import ExponentDecimal

JSON_INT_DIGITS_MAX = 40  # more than any amount or id; caps int() cost on hostile input
# No request object comes near (metadata is at most 4096 bytes); caps a hostile body's work.
OBJECT_KEYS_MAX = 1_000
CLIENT_GONE_STATUS = 499  # nginx's "client closed request": read by logs and metrics only

# In a str from json, every surrogate is a lone one: valid pairs are joined into one character.
_UNSAFE_CHARS = re.compile("[\x00\ud800-\udfff]")
# What a body's bytes must hold for a parsed string to hold NUL or a lone surrogate: an escape
# (\u0000, \uD800-\uDFFF), a surrogate's UTF-8 (CESU) bytes, or a NUL byte (a raw NUL in a
# string is invalid JSON; UTF-16 and UTF-32 texts always have NUL bytes).
_UNSAFE_SPELLINGS = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]|\x00")
_UNSAFE_MESSAGE = "contains NUL or a lone surrogate, which no stored text may hold"
_Path = tuple[Any, str | int] | None  # (parent path, key or index); None is the whole body


class _ObjectRefusedError(Exception):
    """Raised inside json.loads; loads_exact then parses again to say where (the rare path)."""


def _number(text: str) -> Decimal:
    return ExponentDecimal(text) if "e" in text or "E" in text else Decimal(text)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > JSON_INT_DIGITS_MAX:
        raise json.JSONDecodeError(f"integer longer than {JSON_INT_DIGITS_MAX} digits", text, 0)
    return int(text)


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a number JSON allows", name, 0)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The hot path's object hook: one dict() and a length comparison."""
    if len(pairs) > OBJECT_KEYS_MAX:
        raise _ObjectRefusedError
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _ObjectRefusedError
    return obj


class _Marked(dict[str, Any]):
    """An object of a refused body, with what is wrong with it: (key or None, message)."""

    problems: list[tuple[str | None, str]]
    too_big: bool

    @classmethod
    def of(cls, pairs: list[tuple[str, Any]]) -> _Marked:
        obj = cls(pairs)
        obj.too_big = len(pairs) > OBJECT_KEYS_MAX
        if obj.too_big:
            obj.problems = [(None, f"an object with more than {OBJECT_KEYS_MAX} keys")]
            return obj
        counts: dict[str, int] = {}
        for key, _ in pairs:
            counts[key] = counts.get(key, 0) + 1
        repeated = [key for key, count in counts.items() if count > 1]
        obj.problems = [(key, "this key occurs more than once in its object") for key in repeated]
        return obj


def loads_exact(raw: bytes) -> Any:
    """The body's JSON value, with the guarantees in the module docstring, or BodyError."""
    try:
        value = _loads(raw, _EXACT)
    except _ObjectRefusedError:
        _raise_if_any(_problems(_loads(raw, _MARKING)))
        raise RuntimeError("an object was refused, then not found again") from None
    if _may_hold_unsafe(raw):
        _raise_if_any(_problems(value))
    return value


def _may_hold_unsafe(raw: bytes) -> bool:
    """False only for bodies none of whose strings can hold NUL or a lone surrogate."""
    if raw.isascii() and b"\\u" not in raw and b"\x00" not in raw:
        return False  # the common body
    return _UNSAFE_SPELLINGS.search(raw) is not None


def _decoder(hook: Callable[[list[tuple[str, Any]]], dict[str, Any]]) -> json.JSONDecoder:
    return json.JSONDecoder(
        object_pairs_hook=hook,
        parse_float=_number,
        parse_int=_bounded_int,
        parse_constant=_no_constant,
    )


# Built once: json.loads with any keyword builds a new decoder and scanner per call (~2 us, a
# tenth of the ingest lane's own work per request). Stateless between calls, as json's own.
_EXACT = _decoder(_object)
_MARKING = _decoder(_Marked.of)  # the rare second parse of a refused body, to say where


def _loads(raw: bytes, decoder: json.JSONDecoder) -> Any:
    try:
        # What json.loads does with bytes: UTF-8, -16 or -32, told apart by the NUL bytes.
        return decoder.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except json.JSONDecodeError as err:
        raise BodyError([("body", f"not valid JSON: {err.msg}")]) from None
    except UnicodeDecodeError:
        raise BodyError([("body", "not valid UTF-8")]) from None
    except RecursionError:
        raise BodyError([("body", "nested too deeply")]) from None


def _problems(root: Any) -> Iterator[tuple[_Path, str]]:
    """Every unsafe string and marked object, in document order; no recursion, and no path
    is built before it is needed, so depth costs nothing."""
    stack: list[tuple[_Path, Any]] = [(None, root)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if _UNSAFE_CHARS.search(value):
                yield path, _UNSAFE_MESSAGE
        elif isinstance(value, dict):
            yield from _object_problems(path, value)
            if not getattr(value, "too_big", False):  # refused whole, so not walked
                stack.extend(((path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((path, i), value[i]) for i in range(len(value) - 1, -1, -1))


def _object_problems(path: _Path, obj: dict[str, Any]) -> Iterator[tuple[_Path, str]]:
    for key, message in getattr(obj, "problems", ()):
        yield (path if key is None else (path, key)), message
    if getattr(obj, "too_big", False):
        return  # refused whole: its keys are not looked at one by one
    for key in obj:
        if _UNSAFE_CHARS.search(key):
            yield (path, key), "this key " + _UNSAFE_MESSAGE


def _raise_if_any(found: Iterator[tuple[_Path, str]]) -> None:
    """BodyError with the first PROBLEMS_MAX problems and a count of the rest, if any."""
    kept = [(_field(path), message) for path, message in itertools.islice(found, PROBLEMS_MAX)]
    if kept:
        raise BodyError(kept, omitted=sum(1 for _ in found))


def _field(path: _Path) -> str:
    """The dotted field name ("transfers.0.metadata.x"); unsafe characters escaped."""
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(_UNSAFE_CHARS.sub(lambda m: f"\\u{ord(m[0]):04x}", str(key)))
    return ".".join(reversed(parts)) or "body"


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_exact_json"):
            self._exact_json = loads_exact(await self.body())
        return self._exact_json


class ExactJSONRoute(APIRoute):
    """An APIRoute whose body is parsed by loads_exact before FastAPI's handler runs: there,
    a BodyError reaches the app's error handlers (422); inside, it would become a 400."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def exact(request: Request) -> Response:
            exact_request = ExactJSONRequest(request.scope, request.receive)
            try:
                body = await exact_request.body()
            except ClientDisconnect:
                return Response(status_code=CLIENT_GONE_STATUS)
            if body:
                await exact_request.json()
            return await handler(exact_request)

        return exact
