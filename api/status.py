"""The system's live status, gathered from worker heartbeats in Redis, the registry and Kafka.

A library function so the API, the live terminal view and tests read the same figures.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from fraudstream.settings import Settings
from stream.metrics import merge_heartbeats

__all__ = ["collect_status", "worker_heartbeats"]

STALE_S = 5.0


async def worker_heartbeats(redis: aioredis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """The heartbeats of every worker seen in the last 15 s."""
    keys = [k async for k in redis.scan_iter(match=f"{settings.key_prefix}:worker:*", count=200)]
    if not keys:
        return []
    beats = []
    for raw in await redis.mget(keys):
        if raw:
            try:
                beats.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
    return sorted(beats, key=lambda b: (b.get("role", ""), b.get("worker_id", "")))


async def collect_status(redis: aioredis.Redis, settings: Settings) -> dict[str, Any]:
    """Components, throughput, latency, counts, models and the success criteria."""
    now = time.time()
    try:
        redis_ok = bool(await redis.ping())
    except Exception:  # noqa: BLE001
        redis_ok = False
    beats = await worker_heartbeats(redis, settings) if redis_ok else []
    scorers = [b for b in beats if b.get("role") in ("scorer", "all")]
    totals = merge_heartbeats(scorers)
    counters = merge_heartbeats(beats)["counters"]
    workers = [
        {
            "worker_id": b["worker_id"],
            "role": b.get("role"),
            "last_heartbeat_s": round(now - float(b.get("at", 0)), 2),
            "alive": now - float(b.get("at", 0)) < STALE_S,
            "scored": b.get("counters", {}).get("scored", 0),
            "model_version": (b.get("model") or {}).get("version"),
        }
        for b in beats
    ]
    models = next((b.get("model") for b in beats if b.get("model")), {})
    return {
        "at": now,
        "components": {
            "redis": {"healthy": redis_ok},
            "workers": workers,
        },
        "counts": {
            "scored": counters.get("scored", 0),
            "duplicates": counters.get("duplicates", 0),
            "approve": counters.get("approve", 0),
            "review": counters.get("review", 0),
            "decline": counters.get("decline", 0),
            "dead_letters": counters.get("dead_letters", 0),
            "labels_learned": counters.get("labels_learned", 0),
        },
        "throughput_per_s": round(totals["throughput_per_s"], 2),
        "latency_ms": {k: round(v, 3) for k, v in totals["latency_ms"].items()},
        "decline_rate": totals["decline_rate"],
        "review_rate": totals["review_rate"],
        "models": models,
    }
