"""Alerts: conditions on the live status that an operator must hear about, logged and POSTed.

Rules (each checked on the status that :func:`api.status.collect_status` returns; the key says what
one alert is about, so each worker or consumer group alerts on its own):

=========================== ========================================================= ========
rule                        fires when                                                severity
=========================== ========================================================= ========
component_down              Kafka or Redis does not answer; a worker's heartbeat       critical
                            stopped; no scorer or no learner is alive
fpr_above_target            the champion's rolling FPR exceeds ``max_fpr`` (once its   warning
                            window holds ``criteria_min_labels`` labels)
p99_latency_above_target    p99 latency of the last 60 s exceeds                       warning
                            ``max_p99_latency_ms`` (over at least
                            ``alert_min_latency_events`` events)
drift_detected              the learner logged a drift event (concept or data)         warning
dead_letter_spike           at least ``alert_dead_letters_per_min`` dead letters in    warning
                            the last minute
lag_growing                 a consumer group's lag is at least ``alert_lag_min`` and   warning
                            rose all through the last ``alert_lag_growth_s``
=========================== ========================================================= ========

A condition must hold for ``alert_for_s`` before it fires (a worker restarting is not an outage;
drift events fire at once). A firing alert is written to the log (``fraudstream.alerts``) and
POSTed as JSON to ``alert_webhook_url`` when set; it is sent again while it keeps firing only after
``alert_cooldown_s``, and a ``resolved`` notice follows when its condition clears. The cool-down is
kept in Redis (``SET {prefix}:alert:{key} NX EX cooldown``), so several API replicas send each alert
once. The latest alerts are kept in the Redis list ``{prefix}:alerts`` for ``/alerts`` and the
dashboard.

Webhook body: ``{"source": "fraudstream", "rule", "key", "status": "firing"|"resolved",
"severity", "summary", "details", "at", "started_at"}`` (times ISO-8601 UTC).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import orjson
import redis.asyncio as aioredis

from fraudstream.settings import Settings

__all__ = ["RULES", "Alert", "Alerter", "evaluate"]

log = logging.getLogger("fraudstream.alerts")

RULES = ("component_down", "fpr_above_target", "p99_latency_above_target", "drift_detected",
         "dead_letter_spike", "lag_growing")

#: Alerts kept in Redis for ``/alerts``.
KEEP = 200


@dataclass
class Alert:
    """One alert about one thing (``key``)."""

    rule: str
    key: str
    severity: Literal["warning", "critical"]
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"
    at: float = field(default_factory=time.time)
    started_at: float | None = None
    once: bool = False  # an event (drift): never "resolved"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("once")
        out["source"] = "fraudstream"
        out["at"] = _iso(self.at)
        out["started_at"] = _iso(self.started_at or self.at)
        return out


@dataclass
class _History:
    """What the rules remember between evaluations."""

    started: float = field(default_factory=time.time)
    lag: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)
    seen_scorer: bool = False
    seen_learner: bool = False
    last_event_ts: float = field(default_factory=lambda: time.time() - 60.0)


def evaluate(status: dict[str, Any], settings: Settings, history: _History | None = None) -> list[Alert]:
    """The conditions that hold in ``status`` (each an :class:`Alert`), by :data:`RULES`.

    >>> s = Settings(_env_file=None)
    >>> status = {"components": {"kafka": {"healthy": False, "error": "refused"},
    ...                          "redis": {"healthy": True}, "workers": []},
    ...           "dead_letters": {"last_minute": 50}, "criteria": {"criteria": []},
    ...           "latency_ms": {}, "lag": {}, "events": []}
    >>> [(a.rule, a.key) for a in evaluate(status, s)]
    [('component_down', 'component_down:kafka'), ('dead_letter_spike', 'dead_letter_spike')]
    """
    h = history or _History()
    now = time.time()
    out: list[Alert] = []
    comps = status.get("components", {})
    kafka = comps.get("kafka", {})
    if kafka.get("healthy") is False:
        out.append(Alert("component_down", "component_down:kafka", "critical",
                         f"Kafka does not answer: {kafka.get('error')}", {"component": "kafka", **kafka}))
    redis_ok = comps.get("redis", {}).get("healthy")
    if redis_ok is False:
        out.append(Alert("component_down", "component_down:redis", "critical",
                         "Redis does not answer", {"component": "redis"}))
    if redis_ok:
        workers = comps.get("workers", [])
        for w in workers:
            if not w.get("alive"):
                out.append(Alert(
                    "component_down", f"component_down:worker:{w['worker_id']}", "critical",
                    f"{w.get('role')} worker {w['worker_id']} sent no heartbeat for "
                    f"{w.get('last_heartbeat_s', 0):.0f} s", {"component": "worker", **w}))
        scorers = comps.get("scorers", {}).get("alive", 0)
        learner = comps.get("learner", {}).get("alive", False)
        h.seen_scorer |= bool(scorers)
        h.seen_learner |= bool(learner)
        grace_over = now - h.started > 60.0
        if not scorers and (h.seen_scorer or grace_over):
            out.append(Alert("component_down", "component_down:scorers", "critical",
                             "no scoring worker is alive: transactions are not being scored",
                             {"component": "scorers"}))
        if not learner and (h.seen_learner or grace_over):
            out.append(Alert("component_down", "component_down:learner", "critical",
                             "the learner is not alive: labels are not being learned",
                             {"component": "learner"}))

    criteria = {c["criterion"]: c for c in status.get("criteria", {}).get("criteria", [])}
    fpr = criteria.get("fpr")
    if fpr and fpr.get("passed") is False:
        out.append(Alert("fpr_above_target", "fpr_above_target", "warning",
                         f"champion FPR {fpr['measured']:.4%} is above the target {fpr['target']:.4%} "
                         f"(rolling window of {status['criteria'].get('labels')} labels)",
                         {**fpr, "model": (status.get("models") or {}).get("version")}))
    p99 = criteria.get("p99_latency_ms")
    count = (status.get("latency_ms") or {}).get("count", 0)
    if p99 and p99.get("passed") is False and count >= settings.alert_min_latency_events:
        out.append(Alert("p99_latency_above_target", "p99_latency_above_target", "warning",
                         f"p99 latency {p99['measured']:.1f} ms is above the target "
                         f"{p99['target']:.1f} ms (last 60 s, {count} events)", {**p99, "events": count}))

    for e in status.get("events", []):
        ts = float(e.get("ts", 0))
        if e.get("kind") == "drift" and ts > h.last_event_ts:
            kind = (e.get("evidence") or {}).get("type", "concept")
            out.append(Alert("drift_detected", f"drift_detected:{e.get('model')}:{kind}", "warning",
                             f"{kind} drift detected on {e.get('model')} {e.get('version') or ''}".strip(),
                             {"event": e}, once=True))
    events_ts = [float(e.get("ts", 0)) for e in status.get("events", [])]
    if events_ts:
        h.last_event_ts = max(h.last_event_ts, *events_ts)

    dl = status.get("dead_letters", {})
    if dl.get("last_minute", 0) >= settings.alert_dead_letters_per_min:
        out.append(Alert("dead_letter_spike", "dead_letter_spike", "warning",
                         f"{dl['last_minute']} dead letters in the last minute "
                         f"(threshold {settings.alert_dead_letters_per_min})", dict(dl)))

    for group, lag in (status.get("lag") or {}).items():
        total = int(lag.get("total", 0))
        series = h.lag.setdefault(group, deque())
        if not series or series[-1][1] != total or now - series[-1][0] >= settings.lag_cache_s:
            series.append((now, total))
        while series and series[0][0] < now - settings.alert_lag_growth_s * 1.5:
            series.popleft()
        window = [(t, v) for t, v in series if t >= now - settings.alert_lag_growth_s]
        older = [(t, v) for t, v in series if t < now - settings.alert_lag_growth_s]
        if older:
            window.insert(0, older[-1])
        span = window[-1][0] - window[0][0] if window else 0.0
        rising = all(b[1] >= a[1] for a, b in zip(window, window[1:], strict=False))
        if (total >= settings.alert_lag_min and span >= settings.alert_lag_growth_s * 0.8
                and rising and window[-1][1] > window[0][1]):
            out.append(Alert("lag_growing", f"lag_growing:{group}", "warning",
                             f"consumer group {group} is {total:,} records behind and falling "
                             f"further behind (+{window[-1][1] - window[0][1]:,} in {span:.0f} s)",
                             {"group": group, "lag": total, "topics": lag.get("topics", {})}))
    return out


class Alerter:
    """Evaluates the rules, de-duplicates, cools down, logs and POSTs; keeps what is firing."""

    def __init__(self, settings: Settings, redis: aioredis.Redis | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.client = client
        self.history = _History()
        self.active: dict[str, Alert] = {}
        self._pending: dict[str, float] = {}  # key -> since when its condition holds
        self._sent_at: dict[str, float] = {}  # local cool-down when Redis is unreachable
        self._notified: set[str] = set()  # keys whose firing was sent (so their resolution is)
        self.recent: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.sent: Counter[tuple[str, str]] = Counter()
        self.failures = 0

    @property
    def _list_key(self) -> str:
        return f"{self.settings.key_prefix}:alerts"

    async def check(self, status: dict[str, Any]) -> list[Alert]:
        """Evaluate ``status``; returns the notifications sent (firing and resolved)."""
        now = time.time()
        found = {a.key: a for a in evaluate(status, self.settings, self.history)}
        out: list[Alert] = []
        for key, alert in found.items():
            if alert.once:
                if await self._may_send(key, now):
                    out.append(alert)
                continue
            since = self._pending.setdefault(key, now)
            if now - since < self.settings.alert_for_s:
                continue
            alert.started_at = since
            self.active[key] = alert
            if await self._may_send(key, now):
                self._notified.add(key)
                out.append(alert)
        for key in [k for k in self._pending if k not in found]:
            del self._pending[key]
        for key in [k for k in self.active if k not in found]:
            gone = self.active.pop(key)
            if key in self._notified:
                self._notified.discard(key)
                self._sent_at.pop(key, None)
                if self.redis is not None:
                    try:
                        await self.redis.delete(f"{self.settings.key_prefix}:alert:{key}")
                    except Exception:  # noqa: BLE001
                        pass
                out.append(Alert(gone.rule, key, gone.severity,
                                 f"{key} resolved (was: {gone.summary})",
                                 gone.details, status="resolved", started_at=gone.started_at))
        for alert in out:
            await self._notify(alert)
        return out

    async def _may_send(self, key: str, now: float) -> bool:
        """Whether the cool-down of ``key`` allows sending now (and start a new cool-down)."""
        cooldown = self.settings.alert_cooldown_s
        if cooldown <= 0:
            return True
        if self.redis is not None:
            try:
                return bool(await self.redis.set(f"{self.settings.key_prefix}:alert:{key}", now,
                                                 nx=True, px=int(cooldown * 1000)))
            except Exception:  # noqa: BLE001 - fall back to this process's memory
                pass
        if now - self._sent_at.get(key, -1e18) < cooldown:
            return False
        self._sent_at[key] = now
        return True

    async def _notify(self, alert: Alert) -> None:
        body = alert.to_json()
        self.sent[(alert.rule, alert.status)] += 1
        self.recent.append(body)
        level = logging.WARNING if alert.status == "firing" else logging.INFO
        log.log(level, "ALERT %s [%s] %s: %s", alert.status.upper(), alert.severity, alert.key,
                alert.summary)
        if self.redis is not None:
            try:
                pipe = self.redis.pipeline(transaction=False)
                pipe.lpush(self._list_key, orjson.dumps(body))
                pipe.ltrim(self._list_key, 0, KEEP - 1)
                await pipe.execute()
            except Exception:  # noqa: BLE001
                pass
        url = self.settings.alert_webhook_url
        if not url:
            return
        client = self.client or httpx.AsyncClient(timeout=5.0)
        try:
            for attempt in range(3):
                try:
                    r = await client.post(url, json=body)
                    if r.status_code < 300:
                        return
                    problem = f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if attempt < 2:
                    await asyncio.sleep(0.5 * (attempt + 1))
            self.failures += 1
            log.error("alert webhook %s failed for %s: %s", url, alert.key, problem)
        finally:
            if self.client is None:
                await client.aclose()

    async def history_list(self, count: int = 50) -> list[dict[str, Any]]:
        """The latest alerts sent (by any API replica), newest first."""
        if self.redis is not None:
            try:
                return [orjson.loads(r) for r in await self.redis.lrange(self._list_key, 0, count - 1)]
            except Exception:  # noqa: BLE001
                pass
        return list(reversed(self.recent))[:count]

    def firing(self) -> list[dict[str, Any]]:
        return [a.to_json() for a in self.active.values()]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds")
