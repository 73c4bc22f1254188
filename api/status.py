"""The system's live status, gathered from worker heartbeats in Redis, the model-event log and Kafka.

A library function, :func:`collect_status`, so the API's ``/status``, the dashboard's time series,
the alerts, the live terminal view (``fraudstream run``) and tests read the same figures:

- ``components``: Kafka (reachable, from :class:`api.kafka_probe.KafkaProbe`'s cache), Redis, every
  worker seen in the last ``worker_down_keep_s`` (its role, last heartbeat, alive or down), the
  learner;
- ``throughput_per_s``, ``latency_ms`` (p50/p95/p99 over the last 60 s, all live scorers merged),
  ``decline_rate``, ``review_rate``, ``fraud_rate`` (frauds among the labels learned in the last
  60 s), ``score_distribution`` (last 60 s);
- ``counts`` since the live workers started, ``dead_letters`` per dead-letter topic;
- ``lag``: per consumer group, the records not yet processed (committed vs end offsets);
- ``models``: the champion and challengers with the learner's rolling prequential metrics, and
  the version each scorer runs;
- ``events``: recent drift, warning, promotion and rollback events;
- ``criteria``: the success criteria, pass/fail from live figures (p99 latency of the window; FPR,
  recall, average precision of the champion's rolling window, once it holds
  ``criteria_min_labels`` labels, and "not measured" before).

A worker is alive while its heartbeat is younger than :data:`STALE_S`; it is listed as down once
its heartbeat stops (crashed, hung, or cut off), until ``worker_down_keep_s`` has passed. A clean
stop removes it from the list.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from fraudstream.settings import Settings
from models.criteria import check
from stream.event_log import read_model_events
from stream.metrics import SCORE_BINS, merge_heartbeats, workers_key

__all__ = [
    "STALE_S",
    "collect_status",
    "collect_status_and_workers",
    "criteria_metrics",
    "read_workers",
    "worker_heartbeats",
]

#: A heartbeat older than this (s) means the worker is down (they come every second).
STALE_S = 5.0

#: Model events shown in the status (the latest, snapshots left out).
RECENT_EVENTS = 20


async def read_workers(redis: aioredis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """Every worker seen lately: ``{"worker_id", "role", "seen_at", "beat"}`` (beat: its latest
    heartbeat, or None once it expired); forgets workers silent for ``worker_down_keep_s``."""
    key = workers_key(settings.key_prefix)
    now = time.time()
    pipe = redis.pipeline(transaction=False)
    pipe.zremrangebyscore(key, "-inf", now - settings.worker_down_keep_s)
    pipe.zrange(key, 0, -1, withscores=True)
    _, members = await pipe.execute()
    entries = []
    for member, seen in members:
        text = member.decode() if isinstance(member, bytes) else str(member)
        role, _, worker_id = text.partition("|")
        entries.append({"worker_id": worker_id, "role": role, "seen_at": float(seen), "beat": None})
    if entries:
        raws = await redis.mget([f"{settings.key_prefix}:worker:{e['worker_id']}" for e in entries])
        for e, raw in zip(entries, raws, strict=True):
            if raw:
                try:
                    e["beat"] = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    pass
    return sorted(entries, key=lambda e: (e["role"], e["worker_id"]))


async def worker_heartbeats(redis: aioredis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """The heartbeats of the live workers."""
    now = time.time()
    return [e["beat"] for e in await read_workers(redis, settings)
            if e["beat"] is not None and now - float(e["beat"].get("at", 0)) < STALE_S]


def criteria_metrics(
    latency: dict[str, Any], champion: dict[str, Any] | None, settings: Settings
) -> dict[str, float]:
    """The live figures the success criteria are checked on; absent ones are "not measured".

    >>> s = Settings(_env_file=None, criteria_min_labels=100)
    >>> champ = {"metrics": {"labels": 400, "positives": 8, "fpr": 0.0005, "recall": 0.5,
    ...                      "average_precision": 0.4, "roc_auc": 0.9}}
    >>> criteria_metrics({"p99": 12.0, "count": 10}, champ, s)
    {'p99_latency_ms': 12.0, 'fpr': 0.0005, 'recall': 0.5, 'average_precision': 0.4, 'roc_auc': 0.9}
    >>> criteria_metrics({"p99": 0.0, "count": 0}, {"metrics": {"labels": 40}}, s)
    {}
    """
    out: dict[str, float] = {}
    if latency.get("count"):
        out["p99_latency_ms"] = float(latency["p99"])
    m = (champion or {}).get("metrics") or {}
    labels, positives = int(m.get("labels") or 0), int(m.get("positives") or 0)
    if labels >= settings.criteria_min_labels:
        if m.get("fpr") is not None and labels > positives:
            out["fpr"] = float(m["fpr"])
        if positives:
            out["recall"] = float(m.get("recall") or 0.0)
        for key in ("average_precision", "roc_auc"):
            if m.get(key) is not None:
                out[key] = float(m[key])
        if m.get("card_precision_at_k") is not None and m.get("k") == 100:
            out["card_precision_at_100"] = float(m["card_precision_at_k"])
    return out


async def collect_status(
    redis: aioredis.Redis, settings: Settings, kafka: Any = None
) -> dict[str, Any]:
    """Components, throughput, latency, lag, counts, models, events and the success criteria.

    ``kafka``: an :class:`api.kafka_probe.KafkaProbe` (None: Kafka is not checked).
    """
    status, _ = await collect_status_and_workers(redis, settings, kafka)
    return status


async def collect_status_and_workers(
    redis: aioredis.Redis, settings: Settings, kafka: Any = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """:func:`collect_status` and the workers it read (:func:`read_workers`), for ``/metrics``."""
    now = time.time()
    try:
        redis_ok = bool(await redis.ping())
    except Exception:  # noqa: BLE001
        redis_ok = False
    entries = await read_workers(redis, settings) if redis_ok else []
    live = [e["beat"] for e in entries
            if e["beat"] is not None and now - float(e["beat"].get("at", 0)) < STALE_S]
    scorers = [b for b in live if b.get("role") in ("scorer", "all")]
    learners = [b for b in live if b.get("role") in ("learner", "all")]
    totals = merge_heartbeats(scorers)
    everything = merge_heartbeats(live)
    counters = everything["counters"]

    workers = []
    for e in entries:
        beat = e["beat"] or {}
        at = float(beat.get("at", e["seen_at"]))
        workers.append({
            "worker_id": e["worker_id"],
            "role": e["role"],
            "alive": bool(beat) and now - at < STALE_S,
            "last_heartbeat_s": round(now - at, 2),
            "started_at": beat.get("started_at"),
            "scored": (beat.get("counters") or {}).get("scored", 0),
            "model_version": (beat.get("model") or {}).get("version"),
        })
    learner_beat = learners[0] if learners else None
    learner_status = ((learner_beat or {}).get("model") or {}).get("learner") or {}
    champion = learner_status.get("champion")
    lag: dict[str, Any] = {}
    if kafka is not None:
        probe = await kafka.snapshot()
        kafka_component = {"healthy": probe["reachable"], "bootstrap": kafka.bootstrap,
                           "error": probe["error"], "checked_s_ago": probe["age_s"]}
        lag = probe["lag"]
    else:
        kafka_component = {"healthy": None, "error": "not checked"}

    dlq_by_source = everything["dead_letters_by_topic"]
    dead_letters = {
        settings.topic("transactions.dlq"): int(dlq_by_source.get(settings.topic("transactions"), 0)),
        settings.topic("labels.dlq"): int(dlq_by_source.get(settings.topic("labels"), 0)),
        "last_minute": int(everything["window"].get("dead_letters", 0)),
    }
    events = []
    if redis_ok:
        recent = await read_model_events(redis, settings.key_prefix, count=300)
        events = [e for e in recent if e.get("kind") != "snapshot"][-RECENT_EVENTS:]
    latency = {k: round(v, 3) for k, v in totals["latency_ms"].items()}
    report = check(criteria_metrics(latency, champion, settings), settings)
    components = {
        "kafka": kafka_component,
        "redis": {"healthy": redis_ok},
        "workers": workers,
        "scorers": {"alive": len(scorers),
                    "down": sum(1 for w in workers if not w["alive"] and w["role"] in ("scorer", "all"))},
        "learner": {
            "alive": learner_beat is not None,
            "worker_id": (learner_beat or {}).get("worker_id"),
            "labels": learner_status.get("labels", 0),
            "observed": learner_status.get("observed", 0),
            "drifts": learner_status.get("drifts", 0),
            "warnings": learner_status.get("warnings", 0),
            "data_drifts": learner_status.get("data_drifts", 0),
        },
    }
    healthy = (redis_ok and kafka_component["healthy"] is not False and bool(scorers)
               and learner_beat is not None and not any(not w["alive"] for w in workers))
    status = {
        "at": now,
        "healthy": healthy,
        "components": components,
        "counts": {
            "scored": counters.get("scored", 0),
            "duplicates": counters.get("duplicates", 0),
            "approve": counters.get("approve", 0),
            "review": counters.get("review", 0),
            "decline": counters.get("decline", 0),
            "dead_letters": counters.get("dead_letters", 0),
            "labels_learned": counters.get("labels_learned", 0),
            "labels_fraud": counters.get("labels_fraud", 0),
            "label_duplicates": counters.get("labels_duplicate", 0),
        },
        "window_s": round(totals["window_s"], 1),
        "throughput_per_s": round(totals["throughput_per_s"], 2),
        "latency_ms": latency,
        "decline_rate": totals["decline_rate"],
        "review_rate": totals["review_rate"],
        "fraud_rate": everything["fraud_rate"],
        "score_distribution": {"bins": SCORE_BINS, "counts": totals["scores"]},
        "dead_letters": dead_letters,
        "lag": lag,
        "models": _models(live, learner_status),
        "events": events,
        "criteria": {**report.to_dict(),
                     "labels": int(((champion or {}).get("metrics") or {}).get("labels") or 0),
                     "min_labels": settings.criteria_min_labels},
    }
    return status, entries


def _models(beats: list[dict[str, Any]], learner: dict[str, Any]) -> dict[str, Any]:
    """The champion (and challengers) with their rolling metrics; the version each worker runs."""
    ordered = sorted(beats, key=lambda b: b.get("role") == "learner")  # scorers' view first
    described: dict[str, Any] = next(
        (b["model"] for b in ordered if (b.get("model") or {}).get("version")), {})
    champion = dict(learner.get("champion") or {})
    if not champion and described:
        champion = {"model": described.get("name"), "version": described.get("version")}
    if described:
        champion["threshold"] = described.get("threshold")
    return {
        "champion": champion or None,
        "challengers": learner.get("challengers") or (described or {}).get("challengers") or [],
        "background": learner.get("background"),
        "versions": sorted({(b.get("model") or {}).get("version") for b in beats} - {None}),
        "name": champion.get("model") if champion else None,
        "version": champion.get("version") if champion else None,
    }
