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

from fastapi import HTTPException, status

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

__all__ = ["ERROR_RESPONSES", "http_error"]

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


def _described(text: str) -> dict[str, object]:
    return {"description": text, "content": {"application/json": {"example": {"detail": text}}}}


#: OpenAPI descriptions of the error answers, for ``responses=`` of the routes.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    401: _described("missing X-API-Key header"),
    403: _described("wrong API key"),
    404: _described("the named thing does not exist (the reason says which and why)"),
    409: _described("the request conflicts with the current state (the reason says how)"),
    503: _described("a service the request needs (Redis, Kafka) is unreachable"),
}
