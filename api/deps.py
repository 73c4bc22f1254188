"""Dependencies of the routes: settings, Redis, registry, the API key check."""

from __future__ import annotations

import secrets
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Header, HTTPException, Request, status

from fraudstream.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_redis(request: Request) -> aioredis.Redis:
    return request.app.state.redis  # type: ignore[no-any-return]


def require_api_key(
    request: Request, x_api_key: Annotated[str | None, Header()] = None
) -> None:
    """Mutating endpoints need ``X-API-Key`` equal to FRAUDSTREAM_API_KEY."""
    expected = request.app.state.settings.api_key
    if x_api_key is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header")
    if not secrets.compare_digest(x_api_key, expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong API key")


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
ApiKey = Depends(require_api_key)
