"""``/status``: the running system at a glance; ``/status/series``: its recent history, by second."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import RedisDep, SettingsDep
from api.status import collect_status
from stream.event_log import read_model_events

router = APIRouter(tags=["status"])

#: Model events drawn as markers on the dashboard (snapshots are too many to show).
MARKER_KINDS = ("drift", "warning", "promotion", "rollback")


@router.get("/status")
async def status(request: Request, redis: RedisDep, settings: SettingsDep) -> dict[str, Any]:
    """Components, throughput, latency, lag, dead letters, rates, models, drift events, success
    criteria and the alerts firing (see ``api/status.py``)."""
    out = await collect_status(redis, settings, getattr(request.app.state, "kafka", None))
    monitor = getattr(request.app.state, "monitor", None)
    out["alerts"] = monitor.alerter.firing() if monitor is not None else []
    return out


@router.get("/status/series")
async def series(
    request: Request,
    redis: RedisDep,
    settings: SettingsDep,
    since: Annotated[float | None, Query(ge=0, le=4_102_444_800,
                                         description="epoch seconds: samples after this only")] = None,
) -> dict[str, Any]:
    """Samples of the status, one a second (the last ``status_series_s``), the model events
    (drift, warning, promotion, rollback) and the alerts firing, for the dashboard's charts."""
    monitor = getattr(request.app.state, "monitor", None)
    samples = monitor.series(since) if monitor is not None else []
    since_ms = int(since * 1000) if since is not None else None
    if since_ms is None and samples:
        since_ms = int(samples[0]["t"] * 1000)
    events = await read_model_events(redis, settings.key_prefix, count=500, since_ms=since_ms)
    return {
        "samples": samples,
        "events": [e for e in events if e.get("kind") in MARKER_KINDS],
        "alerts": monitor.alerter.firing() if monitor is not None else [],
        "interval_s": monitor.interval_s if monitor is not None else None,
    }
