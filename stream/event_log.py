"""The recent model events, readable by the API: a capped Redis stream beside the Kafka topic.

The learner publishes every :class:`models.events.ModelEvent` (drift, warning, promotion,
rollback, snapshot) to the ``model-events`` topic, the record other services consume, and also
appends it to the Redis stream ``{key_prefix}:model-events`` (``XADD ... MAXLEN ~ keep``), which
the API reads for ``/status``, the dashboard's markers and the drift alert. Why a Redis stream and
not a consumer of the topic in the API: the API stays stateless (any number of replicas, no
consumer group to join or offsets to keep, nothing to replay when it restarts), every replica sees
the same events at once, and the stream's ids are times, so "the events since t" is one XRANGE.
The topic remains the source of truth: a lost Redis write loses a marker, not an event.

Entry fields: ``event`` = the ModelEvent JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis

__all__ = ["model_events_key", "read_model_events", "record_model_events"]

#: Entries kept in the stream (approximately: Redis trims whole nodes).
KEEP = 1000


def model_events_key(key_prefix: str) -> str:
    return f"{key_prefix}:model-events"


async def record_model_events(
    redis: aioredis.Redis, key_prefix: str, payloads: Sequence[bytes], keep: int = KEEP
) -> None:
    """Append ModelEvent JSON payloads to the stream; one round trip."""
    if not payloads:
        return
    pipe = redis.pipeline(transaction=False)
    for raw in payloads:
        pipe.xadd(model_events_key(key_prefix), {"event": raw}, maxlen=keep, approximate=True)
    await pipe.execute()


async def read_model_events(
    redis: aioredis.Redis, key_prefix: str, count: int = 50, since_ms: int | None = None
) -> list[dict[str, Any]]:
    """The latest ``count`` events (oldest first), or those after ``since_ms`` (epoch ms).

    Each is the ModelEvent as a dict plus ``id`` (the stream id) and ``ts`` (epoch seconds it was
    recorded).
    """
    key = model_events_key(key_prefix)
    entries: list[Any]
    if since_ms is None:
        entries = list(reversed(await redis.xrevrange(key, count=count) or []))
    else:
        entries = list(await redis.xrange(key, min=str(since_ms + 1), count=count) or [])
    out = []
    for entry_id, fields in entries:
        raw = (fields or {}).get(b"event") or (fields or {}).get("event")
        if raw is None:
            continue
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        event["id"] = ident
        event["ts"] = int(ident.split("-", 1)[0]) / 1000.0
        out.append(event)
    return out
