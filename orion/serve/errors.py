"""Error answers: every bad input is a 4xx naming the field, every outage a 503, never a 500.

Validation problems answer 422 `{"detail": [{"field": "amount", "message": "..."}]}`, whether
the body parser found them (BodyError: invalid JSON, duplicate keys, NUL...), pydantic did
(RequestValidationError), the money rules did (AmountError) or a cross-field check did
(FieldError). A 422 lists at most PROBLEMS_MAX problems, then one (field null) saying how many
more there were, so a hostile body gets a short answer. A dependency that did not answer is
a 503 naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from orion.domain.money import AmountError
from orion.serve.ports import DependencyUnavailableError
from orion.serve.schemas import FieldProblem

log = logging.getLogger(__name__)
_LOCATIONS = {"body", "query", "path", "header"}
PROBLEMS_MAX = 20  # enough to mend a request by; keeps the 422 of a hostile body a few KB


class FieldError(ValueError):
    """A request that is well-formed field by field but wrong as a whole (debit == credit)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class BodyError(ValueError):
    """A body refused as it was parsed: (field, message) problems, at most PROBLEMS_MAX of
    them, and how many more were found but not kept (`omitted`)."""

    def __init__(self, problems: list[tuple[str, str]], omitted: int = 0) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))
        self.problems, self.omitted = problems, omitted


def field_problems(errors: Sequence[Any], root: str = "body") -> list[FieldProblem]:
    """pydantic / FastAPI error dicts as (field, message) pairs, fields dotted ("a.0.b");
    a problem with the whole value (no field) is named `root`."""
    problems = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if len(loc) > 1 and loc[0] in _LOCATIONS:
            loc = loc[1:]  # "amount", not "body.amount"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(FieldProblem(field=".".join(loc) or root, message=message))
    return problems


def problem_of(err: Exception, root: str = "body") -> FieldProblem:
    """The first problem of a validation-type exception (for per-item batch results)."""
    if isinstance(err, ValidationError):
        return field_problems(err.errors(include_url=False), root)[0]
    if isinstance(err, AmountError):
        return FieldProblem(field=err.field, message=str(err).removeprefix(f"{err.field}: "))
    if isinstance(err, FieldError):
        return FieldProblem(field=err.field, message=err.message)
    raise TypeError(f"not a validation error: {err!r}")


def _unprocessable(problems: list[FieldProblem], omitted: int = 0) -> JSONResponse:
    """422 with the first PROBLEMS_MAX problems, then a count of the `omitted` others."""
    omitted += max(0, len(problems) - PROBLEMS_MAX)
    shown = [p.model_dump() for p in problems[:PROBLEMS_MAX]]
    if omitted:
        shown.append({"field": None, "message": f"{omitted} more problems not shown"})
    return JSONResponse({"detail": shown}, status_code=422)


async def _on_request_validation(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise TypeError(f"registered for RequestValidationError, got {exc!r}")
    errors = exc.errors()
    omitted = max(0, len(errors) - PROBLEMS_MAX)
    return _unprocessable(field_problems(errors[:PROBLEMS_MAX]), omitted)


async def _on_body_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, BodyError):
        raise TypeError(f"registered for BodyError, got {exc!r}")
    problems = [FieldProblem(field=field, message=message) for field, message in exc.problems]
    return _unprocessable(problems, exc.omitted)


async def _on_field_error(_: Request, exc: Exception) -> JSONResponse:
    return _unprocessable([problem_of(exc)])


async def _on_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency unavailable: %s", exc)
    return JSONResponse({"detail": f"service unavailable, retry later ({exc})"}, status_code=503)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(BodyError, _on_body_error)
    app.add_exception_handler(AmountError, _on_field_error)
    app.add_exception_handler(FieldError, _on_field_error)
    app.add_exception_handler(DependencyUnavailableError, _on_unavailable)
