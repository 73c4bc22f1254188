"""The FastAPI app: built from the settings, one router per resource.

While it runs, the app holds a Redis client, a :class:`api.kafka_probe.KafkaProbe` (reachability
and consumer lag, cached), a :class:`api.monitor.Monitor` (a status sample every second for the
dashboard, alerts every ``alert_interval_s``) and an :class:`api.runtime.ApiRuntime` (the job
runner, the registry, the online store and the scorer of ``/score``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from api.http import ERROR_RESPONSES, validation_error
from api.kafka_probe import KafkaProbe
from api.monitor import Monitor
from api.routes import alerts, dashboard, health, lifecycle_routers, metrics, status
from api.runtime import ApiRuntime
from fraudstream.settings import Settings, get_settings

__all__ = ["app_from_env", "create_app"]

TAGS = [
    {"name": "health", "description": "The API answers and reaches Redis."},
    {"name": "status", "description": "The running system: components, throughput, latency."},
    {"name": "metrics", "description": "Prometheus metrics of the API and the workers."},
    {"name": "alerts", "description": "Alerts from the success criteria and health."},
    {"name": "dashboard", "description": "The live dashboard page."},
    # -- the lifecycle, models and scoring ------------------------------------------------------
    {"name": "datasets", "description": "Register historical files (a job), list, show, delete."},
    {"name": "cleaning", "description": "Clean a data set by rules (a job): report, cleaned "
                                        "file, rejected rows."},
    {"name": "eda", "description": "Explore a data set (a job): JSON summary, HTML page, PNGs."},
    {"name": "training", "description": "Train, evaluate and register one model (a job)."},
    {"name": "evaluation", "description": "Compare models on a time split (a job): leaderboard, "
                                          "metrics, criteria, curves."},
    {"name": "tuning", "description": "Search a model's parameters (a job); the best can become "
                                      "a challenger."},
    {"name": "jobs", "description": "Every background job: status, progress, cancel, files."},
    {"name": "models", "description": "Registry versions, champion and challengers, promote, "
                                      "rollback, history."},
    {"name": "criteria", "description": "The problem definition and the success criteria."},
    {"name": "predictions", "description": "Look up a scored transaction (while it lives in "
                                           "Redis)."},
    {"name": "score", "description": "Score one transaction synchronously, the worker's way."},
]


def create_app(settings: Settings, monitor: bool = True) -> FastAPI:
    """The API for ``settings``; Redis is connected when it starts. ``monitor=False``: no
    background sampling and no alerts (the routes still answer)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.redis_url or f"redis://127.0.0.1:{settings.redis_port}/0"
        app.state.redis = aioredis.Redis.from_url(url, socket_timeout=5)
        app.state.kafka = KafkaProbe(settings)
        app.state.monitor = Monitor(settings, app.state.redis, app.state.kafka) if monitor else None
        if app.state.monitor is not None:
            app.state.monitor.start()
        app.state.runtime = ApiRuntime(settings, app.state.redis)  # jobs, registry, /score
        await app.state.runtime.start()
        try:
            yield
        finally:
            await app.state.runtime.close()
            if app.state.monitor is not None:
                await app.state.monitor.stop()
            app.state.kafka.close()
            await app.state.redis.aclose()

    app = FastAPI(
        title="fraudstream",
        description="Streaming, real-time card-fraud detection: status, lifecycle, models, scoring.",
        version="0.1.0",
        lifespan=lifespan,
        openapi_tags=TAGS,
        responses={422: ERROR_RESPONSES[422]},  # every 422 is {"detail": reason} (validation_error)
    )
    app.state.settings = settings
    app.include_router(health.router)
    # operations: status, metrics, alerts, dashboard
    app.include_router(status.router)
    app.include_router(metrics.router)
    app.include_router(alerts.router)
    app.include_router(dashboard.router)
    # -- the lifecycle, models and scoring (api/routes/__init__.py) ------------------------------
    for router in lifecycle_routers():
        app.include_router(router)
    app.add_exception_handler(RequestValidationError, validation_error)  # 422: a one-line reason
    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory api.main:app_from_env``: the settings of the environment."""
    return create_app(get_settings())
