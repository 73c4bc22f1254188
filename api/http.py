"""How domain errors become HTTP errors. Only routes call this: libraries raise domain errors
(:mod:`fraudstream.errors`) and know nothing of HTTP.

======================================  =====  ==============================================
error                                   code   e.g.
======================================  =====  ==============================================
NotFoundError                           404    unknown data set, job, model version, file
ConfigError, DataError                  422    bad column mapping, unreadable file, bad rules
ArtifactError                           409    tampered or unsigned model artifact
RegistryConflictError, JobStateError    409    cancel a finished job; champion changed meanwhile
Cancelled                               409    the operation was cancelled
ServiceError                            503    Redis or Kafka unreachable, runner shutting down
anything else of ours                   400
======================================  =====  ==============================================

>>> from fraudstream.errors import NotFoundError
>>> e = http_error(NotFoundError("dataset", "x", "none is registered"))
>>> e.status_code, e.detail
(404, "dataset 'x' not found: none is registered")
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fraudstream.errors import (
    ArtifactError,
    Cancelled,
    ConfigError,
    DataError,
    FraudstreamError,
    JobStateError,
    NotFoundError,
    RegistryConflictError,
    ServiceError,
)

__all__ = ["COMMON_RESPONSES", "ERROR_RESPONSES", "ErrorPublic", "http_error", "validation_error"]

_CODES: tuple[tuple[type[FraudstreamError], int], ...] = (
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ArtifactError, status.HTTP_409_CONFLICT),
    (RegistryConflictError, status.HTTP_409_CONFLICT),
    (JobStateError, status.HTTP_409_CONFLICT),
    (Cancelled, status.HTTP_409_CONFLICT),
    (ServiceError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (ConfigError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (DataError, status.HTTP_422_UNPROCESSABLE_CONTENT),
)


def http_error(exc: FraudstreamError, code: int | None = None) -> HTTPException:
    """The HTTP error for a domain error (``code`` overrides the table); detail: its message."""
    if code is None:
        code = next((c for kind, c in _CODES if isinstance(exc, kind)), status.HTTP_400_BAD_REQUEST)
    return HTTPException(code, str(exc))


class ErrorPublic(BaseModel):
    """Every error answer: ``detail`` is the reason, one line."""

    detail: str = Field(description="the reason, one line")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="request validation only: every invalid field (FastAPI's list)")


def _described(text: str) -> dict[str, Any]:
    return {"model": ErrorPublic, "description": text}


#: OpenAPI descriptions of the error answers, for ``responses=`` of the routers and routes.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _described("the body cannot be parsed"),
    401: _described("missing X-API-Key header"),
    403: _described("wrong API key"),
    404: _described("the named thing does not exist (the reason says which and why)"),
    409: _described("the request conflicts with the current state (the reason says how)"),
    422: _described("invalid request: a field, a path, a column mapping, rules (the reason "
                    "says which)"),
    503: _described("a service the request needs (Redis, Kafka, a champion) is unavailable"),
}

#: The error answers any route of the lifecycle routers may give.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (400, 422)}


def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's request validation errors with a one-line ``detail`` like every other error
    (``errors`` keeps FastAPI's list).

    >>> from fastapi.exceptions import RequestValidationError
    >>> exc = RequestValidationError([{"type": "missing", "loc": ("body", "path"),
    ...                                "msg": "Field required", "input": {}}])
    >>> validation_error(None, exc).body  # type: ignore[arg-type]
    b'{"detail":"path: field required","errors":[{"type":"missing","loc":["body","path"],"msg":"Field required","input":{}}]}'
    """
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    parts = []
    for err in errors[:3]:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] == "body":
            loc = loc[1:]
        if err.get("type") == "json_invalid":
            why = str((err.get("ctx") or {}).get("error", "")).lower()
            parts.append(f"body: bad JSON at position {'.'.join(loc)}" + (f" ({why})" if why else ""))
            continue
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if msg[1:2].islower():
            msg = msg[:1].lower() + msg[1:]
        parts.append(f"{'.'.join(loc) or 'body'}: {msg}")
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more")
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                        content={"detail": "; ".join(parts) or "invalid request",
                                 "errors": jsonable_encoder(errors)})
