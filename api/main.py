"""The FastAPI app: built from the settings, one router per resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from api.routes import health, status
from fraudstream.settings import Settings, get_settings

__all__ = ["app_from_env", "create_app"]


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings``; Redis is connected when it starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.redis_url or f"redis://127.0.0.1:{settings.redis_port}/0"
        app.state.redis = aioredis.Redis.from_url(url, socket_timeout=5)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(
        title="fraudstream",
        description="Streaming, real-time card-fraud detection: status, lifecycle, models, scoring.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(status.router)
    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory api.main:app_from_env``: the settings of the environment."""
    return create_app(get_settings())
