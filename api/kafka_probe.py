"""Kafka as the API sees it: is the broker reachable, and how far behind is each consumer group.

Consumer lag of a group on a partition = the partition's end offset - the group's committed offset
(the earliest offset when the group committed nothing yet: the workers start from the earliest).
The groups: the scorers' (``settings.app_id``) on ``transactions``; the learner's
(``{app_id}-learner``) on ``labels`` and on ``scored`` (its data-drift observer).

Reading offsets costs a few Kafka round trips, and a broker that is down makes them wait for a
timeout, so :class:`KafkaProbe` reads them in a worker thread at most every ``lag_cache_s``
seconds and answers from its cache: ``/status`` and ``/metrics`` never wait on Kafka, except for
the very first reading (at most ``first_wait_s``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from fraudstream.settings import Settings

__all__ = ["KafkaProbe", "consumer_groups"]

log = logging.getLogger("fraudstream.api")


def consumer_groups(settings: Settings) -> dict[str, list[str]]:
    """Consumer group -> the topics it consumes.

    >>> consumer_groups(Settings(_env_file=None, app_id="fs", topic_prefix="p-"))
    {'fs': ['p-transactions'], 'fs-learner': ['p-labels', 'p-scored']}
    """
    return {
        settings.app_id: [settings.topic("transactions")],
        f"{settings.app_id}-learner": [settings.topic("labels"), settings.topic("scored")],
    }


class KafkaProbe:
    """Cached reachability and consumer lag of one Kafka cluster (thread-backed, never blocks)."""

    def __init__(self, settings: Settings, first_wait_s: float = 3.0) -> None:
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap or f"127.0.0.1:{settings.kafka_port}"
        self.first_wait_s = first_wait_s
        self._admin: Any = None
        self._lock = threading.Lock()
        self._result: dict[str, Any] | None = None
        self._refreshing: asyncio.Future[None] | None = None
        self._closed = False

    async def snapshot(self) -> dict[str, Any]:
        """``{"reachable", "error", "checked_at", "age_s", "lag"}`` from the cache; refreshed in
        the background when older than ``lag_cache_s``."""
        now = time.time()
        stale = self._result is None or now - self._result["checked_at"] >= self.settings.lag_cache_s
        if stale and (self._refreshing is None or self._refreshing.done()):
            loop = asyncio.get_running_loop()
            self._refreshing = loop.run_in_executor(None, self._refresh)
        if self._result is None and self._refreshing is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._refreshing), self.first_wait_s)
            except TimeoutError:
                pass
        if self._result is None:
            return {"reachable": None, "error": "not checked yet", "checked_at": None,
                    "age_s": None, "lag": {}}
        out = dict(self._result)
        out["age_s"] = round(time.time() - out["checked_at"], 2)
        return out

    def read(self) -> dict[str, Any]:
        """Read now (blocking): reachability and the lag of every group."""
        self._refresh()
        assert self._result is not None
        return self._result

    def close(self) -> None:
        """Close the admin client; never waits long on a refresh in flight (that thread closes
        it when it finishes)."""
        self._closed = True
        if self._lock.acquire(timeout=1.0):
            try:
                self._close_admin()
            finally:
                self._lock.release()

    # -- the thread's side ---------------------------------------------------------------------
    def _refresh(self) -> None:
        with self._lock:
            started = time.time()
            result: dict[str, Any]
            try:
                lag = self._lag()
                result = {"reachable": True, "error": None, "lag": lag}
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                self._close_admin()
                result = {"reachable": False, "error": f"{type(exc).__name__}: {exc}"[:300],
                          "lag": {}}
            done = time.time()
            result["checked_at"] = done
            result["took_ms"] = round((done - started) * 1000, 1)
            self._result = result
            if self._closed:
                self._close_admin()

    def _client(self) -> Any:
        if self._admin is None:
            from kafka import KafkaAdminClient

            from stream.services import _host_port, port_open

            host, port = _host_port(self.bootstrap)
            if not port_open(host, port):
                raise ConnectionError(f"nothing listens at {self.bootstrap}")
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap, client_id="fraudstream-api",
                request_timeout_ms=3000, connections_max_idle_ms=60_000,
            )
        return self._admin

    def _close_admin(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # noqa: BLE001
                pass
            self._admin = None

    def _lag(self) -> dict[str, Any]:
        from kafka import TopicPartition
        from kafka.errors import KafkaError
        from kafka.protocol.consumer.offsets import OffsetSpec

        admin = self._client()
        groups = consumer_groups(self.settings)
        topics = sorted({t for ts in groups.values() for t in ts})
        partitions: list[TopicPartition] = []
        for meta in admin.describe_topics(topics):
            if meta.get("error_code", 0) not in (0, None):
                continue
            name = meta.get("name") or meta.get("topic")
            for p in meta.get("partitions", []):
                partitions.append(TopicPartition(name, p.get("partition_index", p.get("partition"))))
        if not partitions:
            return {}
        ends = admin.list_partition_offsets(dict.fromkeys(partitions, OffsetSpec.LATEST))
        starts = admin.list_partition_offsets(dict.fromkeys(partitions, OffsetSpec.EARLIEST))
        out: dict[str, Any] = {}
        for group, group_topics in groups.items():
            try:
                offsets = admin.list_group_offsets({group: None}).get(group, {})
                error = None
            except KafkaError as exc:  # e.g. no coordinator yet: the group never committed
                offsets, error = {}, f"{type(exc).__name__}"
            per_topic: dict[str, Any] = {}
            for tp in partitions:
                if tp.topic not in group_topics:
                    continue
                end = ends[tp].offset
                meta = offsets.get(tp)
                done = meta.offset if meta is not None and meta.offset >= 0 else starts[tp].offset
                t = per_topic.setdefault(tp.topic, {"total": 0, "partitions": {}})
                t["partitions"][str(tp.partition)] = max(0, end - done)
                t["total"] += max(0, end - done)
            out[group] = {"total": sum(t["total"] for t in per_topic.values()),
                          "committed": bool(offsets), "error": error, "topics": per_topic}
        return out
