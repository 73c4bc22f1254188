"""The API's background loop: a status sample every second for the dashboard, alerts every few.

Each second :class:`Monitor` collects the status (:func:`api.status.collect_status`), keeps a
small sample of it (throughput, latency, rates, lag, champion version) in a ring of
``status_series_s`` samples for the dashboard's charts, and every ``alert_interval_s`` hands the
status to the :class:`api.alerts.Alerter`.

Why in memory, in the API: a sample is derived from state that already lives in Redis (the
heartbeats), so it costs nothing to rebuild after a restart beyond the lost minutes of chart; the
long history is Prometheus's job (``/metrics``, Grafana). Each API replica keeps its own ring, and
they agree because they sample the same heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

import redis.asyncio as aioredis

from api.alerts import Alerter
from api.kafka_probe import KafkaProbe
from api.status import collect_status
from fraudstream.settings import Settings

__all__ = ["Monitor", "sample_of"]

log = logging.getLogger("fraudstream.api")


def sample_of(status: dict[str, Any]) -> dict[str, Any]:
    """The few figures of a status the dashboard charts over time.

    >>> sample_of({"at": 1.0, "throughput_per_s": 10.0, "latency_ms": {"p50": 1.0, "p99": 4.0},
    ...            "decline_rate": 0.01, "review_rate": 0.02, "fraud_rate": None,
    ...            "counts": {"scored": 5}, "dead_letters": {"last_minute": 0},
    ...            "lag": {"g": {"total": 3}}, "models": {"version": "v2"},
    ...            "components": {"scorers": {"alive": 1}}})["lag"]
    {'g': 3}
    """
    lat = status.get("latency_ms") or {}
    return {
        "t": round(status["at"], 3),
        "throughput": status.get("throughput_per_s", 0.0),
        "p50": lat.get("p50", 0.0),
        "p99": lat.get("p99", 0.0),
        "decline_rate": status.get("decline_rate", 0.0),
        "review_rate": status.get("review_rate", 0.0),
        "fraud_rate": status.get("fraud_rate"),
        "scored": (status.get("counts") or {}).get("scored", 0),
        "dead_letters": (status.get("dead_letters") or {}).get("last_minute", 0),
        "lag": {g: v.get("total", 0) for g, v in (status.get("lag") or {}).items()},
        "champion": (status.get("models") or {}).get("version"),
        "scorers": ((status.get("components") or {}).get("scorers") or {}).get("alive", 0),
    }


class Monitor:
    """Samples the status every ``interval_s`` and checks alerts every ``alert_interval_s``."""

    def __init__(self, settings: Settings, redis: aioredis.Redis, kafka: KafkaProbe,
                 interval_s: float = 1.0) -> None:
        self.settings = settings
        self.redis = redis
        self.kafka = kafka
        self.interval_s = interval_s
        self.alerter = Alerter(settings, redis)
        self.samples: deque[dict[str, Any]] = deque(maxlen=int(settings.status_series_s / interval_s))
        self.latest: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_alert_check = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fraudstream-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep sampling
                log.warning("monitor: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(max(0.05, self.interval_s - (time.monotonic() - started)))

    async def tick(self) -> dict[str, Any]:
        """One sample; and the alerts when due. Returns the status."""
        status = await collect_status(self.redis, self.settings, self.kafka)
        self.latest = status
        self.samples.append(sample_of(status))
        now = time.monotonic()
        if now - self._last_alert_check >= self.settings.alert_interval_s:
            self._last_alert_check = now
            await self.alerter.check(status)
        return status

    def series(self, since: float | None = None) -> list[dict[str, Any]]:
        """The samples after ``since`` (epoch seconds), oldest first."""
        if since is None:
            return list(self.samples)
        return [s for s in self.samples if s["t"] > since]
