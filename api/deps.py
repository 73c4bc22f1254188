"""Dependencies of the routes: settings, Redis, registry, the API key check."""

from __future__ import annotations

import secrets
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from api.jobs import JobRunner
from api.runtime import ApiRuntime
from fraudstream.settings import Settings
from models.registry import ModelRegistry

_API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False,
    description="FRAUDSTREAM_API_KEY; needed by every endpoint that changes something",
)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_redis(request: Request) -> aioredis.Redis:
    return request.app.state.redis  # type: ignore[no-any-return]


def require_api_key(
    request: Request, x_api_key: Annotated[str | None, Security(_API_KEY_HEADER)] = None
) -> None:
    """Mutating endpoints need ``X-API-Key`` equal to FRAUDSTREAM_API_KEY."""
    expected = request.app.state.settings.api_key
    if x_api_key is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header")
    if not secrets.compare_digest(x_api_key.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong API key")


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
ApiKey = Depends(require_api_key)


# -- the lifecycle, models and scoring (api/runtime.py) -------------------------------------------

def get_runtime(request: Request) -> ApiRuntime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def get_jobs(request: Request) -> JobRunner:
    return get_runtime(request).jobs


def get_registry(request: Request) -> ModelRegistry:
    return get_runtime(request).registry


RuntimeDep = Annotated[ApiRuntime, Depends(get_runtime)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
