"""The FastAPI app: built from the settings, one router per resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from api.http import validation_error
from api.routes import health, lifecycle_routers, status
from api.runtime import ApiRuntime
from fraudstream.settings import Settings, get_settings

__all__ = ["app_from_env", "create_app"]

TAGS = [
    {"name": "health", "description": "The API answers and reaches Redis."},
    {"name": "status", "description": "The running system: components, throughput, latency."},
    # -- the lifecycle, models and scoring ------------------------------------------------------
    {"name": "datasets", "description": "Register historical files (a job), list, show, delete."},
    {"name": "cleaning", "description": "Clean a data set by rules (a job): report, cleaned "
                                        "file, rejected rows."},
    {"name": "eda", "description": "Explore a data set (a job): JSON summary, HTML page, PNGs."},
    {"name": "jobs", "description": "Every background job: status, progress, cancel, files."},
    {"name": "models", "description": "Registry versions, champion and challengers, promote, "
                                      "rollback, history."},
    {"name": "criteria", "description": "The problem definition and the success criteria."},
    {"name": "predictions", "description": "Look up a scored transaction (while it lives in "
                                           "Redis)."},
    {"name": "score", "description": "Score one transaction synchronously, the worker's way."},
]


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings``; Redis is connected when it starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.redis_url or f"redis://127.0.0.1:{settings.redis_port}/0"
        app.state.redis = aioredis.Redis.from_url(url, socket_timeout=5)
        app.state.runtime = ApiRuntime(settings, app.state.redis)
        await app.state.runtime.start()
        try:
            yield
        finally:
            await app.state.runtime.close()
            await app.state.redis.aclose()

    app = FastAPI(
        title="fraudstream",
        description="Streaming, real-time card-fraud detection: status, lifecycle, models, scoring.",
        version="0.1.0",
        lifespan=lifespan,
        openapi_tags=TAGS,
    )
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(status.router)
    # -- the lifecycle, models and scoring (api/routes/__init__.py) ------------------------------
    for router in lifecycle_routers():
        app.include_router(router)
    app.add_exception_handler(RequestValidationError, validation_error)  # 422: a one-line reason
    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory api.main:app_from_env``: the settings of the environment."""
    return create_app(get_settings())
