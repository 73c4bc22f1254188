"""The FastAPI app: built from the settings, one router per resource.

While it runs, the app holds a Redis client, a :class:`api.kafka_probe.KafkaProbe` (reachability
and consumer lag, cached) and a :class:`api.monitor.Monitor` (a status sample every second for the
dashboard, alerts every ``alert_interval_s``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from api.kafka_probe import KafkaProbe
from api.monitor import Monitor
from api.routes import alerts, dashboard, health, metrics, status
from fraudstream.settings import Settings, get_settings

__all__ = ["app_from_env", "create_app"]


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
        try:
            yield
        finally:
            if app.state.monitor is not None:
                await app.state.monitor.stop()
            app.state.kafka.close()
            await app.state.redis.aclose()

    app = FastAPI(
        title="fraudstream",
        description="Streaming, real-time card-fraud detection: status, lifecycle, models, scoring.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(health.router)
    # operations: status, metrics, alerts, dashboard
    app.include_router(status.router)
    app.include_router(metrics.router)
    app.include_router(alerts.router)
    app.include_router(dashboard.router)
    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory api.main:app_from_env``: the settings of the environment."""
    return create_app(get_settings())
