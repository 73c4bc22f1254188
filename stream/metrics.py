"""What a worker counts and how it reports it: counters, a latency histogram, a Redis heartbeat.

Each worker keeps counters and a histogram of end-to-end latency (Kafka record time to scored) in
fixed logarithmic buckets, one histogram per second for the last minute. Every second it writes a
heartbeat to Redis (``{prefix}:worker:{worker_id}``, a JSON string that expires after 15 s): its
role, counters, the merged histogram of the last 60 s and its rates. The API sums the heartbeats of
the live workers: histograms add up, so percentiles over all workers are exact to a bucket.

>>> h = LatencyHistogram()
>>> for ms in (1, 2, 3, 4, 100):
...     h.add(ms)
>>> h.count, round(h.quantile(0.5), 1), h.quantile(0.99) >= 100
(5, 3.0, True)
"""

from __future__ import annotations

import math
import os
import socket
import time
from bisect import bisect_left
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUCKETS_MS", "LatencyHistogram", "WorkerMetrics", "merge_heartbeats"]

#: Upper bounds of the latency buckets in ms: 0.1 ms to ~60 s, 5 % apart.
BUCKETS_MS: tuple[float, ...] = tuple(0.1 * 1.05**k for k in range(int(math.log(6e5) / math.log(1.05)) + 2))


@dataclass
class LatencyHistogram:
    """Counts per bucket of :data:`BUCKETS_MS`; mergeable, so percentiles add up across workers."""

    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total_ms: float = 0.0

    def add(self, ms: float) -> None:
        i = min(bisect_left(BUCKETS_MS, ms), len(BUCKETS_MS) - 1)
        self.counts[i] = self.counts.get(i, 0) + 1
        self.count += 1
        self.total_ms += ms

    def merge(self, other: LatencyHistogram) -> None:
        for i, n in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + n
        self.count += other.count
        self.total_ms += other.total_ms

    def quantile(self, q: float) -> float:
        """The bucket bound under which a share ``q`` of the values fall (0 when empty)."""
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                return BUCKETS_MS[i]
        return BUCKETS_MS[max(self.counts)]

    def to_dict(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items()}, "count": self.count,
                "total_ms": self.total_ms}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyHistogram:
        return cls({int(k): int(v) for k, v in d.get("counts", {}).items()}, int(d.get("count", 0)),
                   float(d.get("total_ms", 0.0)))


class WorkerMetrics:
    """Counters and latency of one worker process."""

    WINDOW_S = 60

    def __init__(self, role: str) -> None:
        self.role = role
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.started_at = time.time()
        self.counters: Counter[str] = Counter()
        self.dlq_reasons: Counter[str] = Counter()
        self._seconds: deque[tuple[int, LatencyHistogram, Counter[str]]] = deque()
        self.model: dict[str, Any] = {}

    def _slot(self) -> tuple[LatencyHistogram, Counter[str]]:
        now = int(time.time())
        if not self._seconds or self._seconds[-1][0] != now:
            self._seconds.append((now, LatencyHistogram(), Counter()))
            while self._seconds and self._seconds[0][0] <= now - self.WINDOW_S:
                self._seconds.popleft()
        return self._seconds[-1][1], self._seconds[-1][2]

    def scored(self, event: Any, duplicate: bool) -> None:
        hist, counts = self._slot()
        key = "duplicates" if duplicate else "scored"
        self.counters[key] += 1
        counts[key] += 1
        if not duplicate:
            self.counters[event.decision] += 1
            counts[event.decision] += 1
            hist.add(event.latency_ms)

    def dead_letter(self, topic: str, reason: str) -> None:
        _, counts = self._slot()
        self.counters["dead_letters"] += 1
        counts["dead_letters"] += 1
        self.dlq_reasons[reason.split(":", 1)[0][:60]] += 1

    def count(self, key: str, n: int = 1) -> None:
        _, counts = self._slot()
        self.counters[key] += n
        counts[key] += n

    def label_duplicate(self) -> None:
        self.count("labels_duplicate")

    def heartbeat(self) -> dict[str, Any]:
        """This worker's state as the API reads it."""
        now = time.time()
        hist = LatencyHistogram()
        window: Counter[str] = Counter()
        oldest = now
        for second, h, c in self._seconds:
            if second > now - self.WINDOW_S:
                hist.merge(h)
                window.update(c)
                oldest = min(oldest, second)
        span = max(1.0, min(self.WINDOW_S, now - self.started_at))
        return {
            "worker_id": self.worker_id,
            "role": self.role,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "at": now,
            "counters": dict(self.counters),
            "window_s": span,
            "window": dict(window),
            "latency": hist.to_dict(),
            "dlq_reasons": dict(self.dlq_reasons.most_common(10)),
            "model": self.model,
        }


def merge_heartbeats(beats: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the heartbeats of live workers: counters, rates and latency percentiles."""
    counters: Counter[str] = Counter()
    window: Counter[str] = Counter()
    hist = LatencyHistogram()
    span = 1.0
    for b in beats:
        counters.update(b.get("counters", {}))
        window.update(b.get("window", {}))
        hist.merge(LatencyHistogram.from_dict(b.get("latency", {})))
        span = max(span, float(b.get("window_s", 1.0)))
    scored = window.get("scored", 0)
    return {
        "counters": dict(counters),
        "throughput_per_s": scored / span,
        "latency_ms": {"p50": hist.quantile(0.5), "p95": hist.quantile(0.95),
                       "p99": hist.quantile(0.99), "count": hist.count,
                       "mean": hist.total_ms / hist.count if hist.count else 0.0},
        "decline_rate": window.get("decline", 0) / scored if scored else 0.0,
        "review_rate": window.get("review", 0) / scored if scored else 0.0,
        "window_s": span,
    }
