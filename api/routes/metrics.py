"""``/metrics``: Prometheus text format for the whole system (every worker, lag, models, alerts)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import RedisDep, SettingsDep
from api.prometheus import build_families, exposition
from api.status import collect_status_and_workers

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, redis: RedisDep, settings: SettingsDep) -> Response:
    """Counters, histograms and gauges built from the workers' heartbeats at scrape time."""
    status, workers = await collect_status_and_workers(
        redis, settings, getattr(request.app.state, "kafka", None))
    monitor = getattr(request.app.state, "monitor", None)
    families = build_families(status, workers, monitor.alerter if monitor is not None else None)
    return Response(exposition(families), media_type=CONTENT_TYPE_LATEST)
