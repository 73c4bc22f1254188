"""What a worker counts and how it reports it: counters, histograms, a Redis heartbeat.

Each worker keeps counters and a histogram of end-to-end latency (Kafka record time to scored) in
fixed logarithmic buckets, one histogram per second for the last minute, and the distribution of
its scores (:data:`SCORE_BINS` equal bins of [0, 1]). Every second it writes a heartbeat to Redis
(``{prefix}:worker:{worker_id}``, a JSON string that expires after 15 s) and notes itself in the
sorted set ``{prefix}:workers`` (member ``{role}|{worker_id}``, score: the time of its latest
heartbeat), so the API finds every worker without scanning the key space and remembers, for a
while, a worker whose heartbeat stopped. A heartbeat holds the role, the counters since the worker
started (also per source topic of its dead letters), the merged histogram and counts of the last
60 s, cumulative histograms of latency (in :data:`LATENCY_BOUNDS_S`, the buckets of the Prometheus
histogram) and of scores, and the models. The API sums the heartbeats of the live workers:
histograms add up, so percentiles over all workers are exact to a bucket.

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

__all__ = [
    "BUCKETS_MS",
    "LATENCY_BOUNDS_S",
    "SCORE_BINS",
    "LatencyHistogram",
    "WorkerMetrics",
    "merge_heartbeats",
    "score_bin",
    "workers_key",
]

#: Upper bounds of the latency buckets in ms: 0.1 ms to ~60 s, 5 % apart.
BUCKETS_MS: tuple[float, ...] = tuple(0.1 * 1.05**k for k in range(int(math.log(6e5) / math.log(1.05)) + 2))

#: Upper bounds (seconds) of the cumulative latency histogram exported to Prometheus.
LATENCY_BOUNDS_S: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5,
                                       1.0, 2.5, 5.0, 10.0)

#: Equal bins of the score distribution over [0, 1].
SCORE_BINS = 20


def score_bin(score: float) -> int:
    """The bin of a score among :data:`SCORE_BINS` equal bins of [0, 1] (1.0 in the last one).

    >>> score_bin(0.0), score_bin(0.049), score_bin(0.05), score_bin(0.999), score_bin(1.0)
    (0, 0, 1, 19, 19)
    """
    return min(SCORE_BINS - 1, max(0, int(score * SCORE_BINS)))


def workers_key(key_prefix: str) -> str:
    """The sorted set of every worker seen lately: member ``{role}|{worker_id}``, score: time."""
    return f"{key_prefix}:workers"


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


@dataclass
class _Second:
    """What one worker counted in one wall-clock second."""

    at: int
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    counts: Counter[str] = field(default_factory=Counter)
    scores: list[int] = field(default_factory=lambda: [0] * SCORE_BINS)


class WorkerMetrics:
    """Counters, latency and score distribution of one worker process.

    >>> m = WorkerMetrics("scorer")
    >>> class Event:
    ...     decision, latency_ms, score = "approve", 3.0, 0.12
    >>> m.scored(Event(), duplicate=False)
    >>> m.dead_letter("transactions", "bad json: ...")
    >>> m.count("labels_learned")
    >>> beat = m.heartbeat()
    >>> beat["counters"], beat["dead_letters_by_topic"], beat["scores"]["total"][2]
    ({'scored': 1, 'approve': 1, 'dead_letters': 1, 'labels_learned': 1}, {'transactions': 1}, 1)
    >>> beat["latency_buckets"]["counts"][:3]
    [0, 0, 1]
    """

    WINDOW_S = 60

    def __init__(self, role: str) -> None:
        self.role = role
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.started_at = time.time()
        self.counters: Counter[str] = Counter()
        self.dlq_reasons: Counter[str] = Counter()
        self.dlq_topics: Counter[str] = Counter()
        self._seconds: deque[_Second] = deque()
        self.model: dict[str, Any] = {}
        # cumulative, for Prometheus: latency in LATENCY_BOUNDS_S (+ overflow), scores in bins
        self._lat_counts = [0] * (len(LATENCY_BOUNDS_S) + 1)
        self._lat_sum_s = 0.0
        self._scores = [0] * SCORE_BINS
        self._score_sum = 0.0

    def _slot(self) -> _Second:
        now = int(time.time())
        if not self._seconds or self._seconds[-1].at != now:
            self._seconds.append(_Second(now))
            while self._seconds and self._seconds[0].at <= now - self.WINDOW_S:
                self._seconds.popleft()
        return self._seconds[-1]

    def scored(self, event: Any, duplicate: bool) -> None:
        slot = self._slot()
        key = "duplicates" if duplicate else "scored"
        self.counters[key] += 1
        slot.counts[key] += 1
        if not duplicate:
            self.counters[event.decision] += 1
            slot.counts[event.decision] += 1
            slot.latency.add(event.latency_ms)
            seconds = event.latency_ms / 1000.0
            self._lat_counts[bisect_left(LATENCY_BOUNDS_S, seconds)] += 1
            self._lat_sum_s += seconds
            b = score_bin(event.score)
            slot.scores[b] += 1
            self._scores[b] += 1
            self._score_sum += event.score

    def dead_letter(self, topic: str, reason: str) -> None:
        """Count one dead letter of a record read from ``topic`` (its source topic)."""
        slot = self._slot()
        self.counters["dead_letters"] += 1
        slot.counts["dead_letters"] += 1
        self.dlq_topics[topic] += 1
        self.dlq_reasons[reason.split(":", 1)[0][:60]] += 1

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] += n
        self._slot().counts[key] += n

    def label_duplicate(self) -> None:
        self.count("labels_duplicate")

    def heartbeat(self) -> dict[str, Any]:
        """This worker's state as the API reads it."""
        now = time.time()
        hist = LatencyHistogram()
        window: Counter[str] = Counter()
        scores = [0] * SCORE_BINS
        for sec in self._seconds:
            if sec.at > now - self.WINDOW_S:
                hist.merge(sec.latency)
                window.update(sec.counts)
                scores = [a + b for a, b in zip(scores, sec.scores, strict=True)]
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
            "latency_buckets": {"bounds_s": list(LATENCY_BOUNDS_S), "counts": list(self._lat_counts),
                                "sum_s": self._lat_sum_s},
            "scores": {"window": scores, "total": list(self._scores), "sum": self._score_sum},
            "dlq_reasons": dict(self.dlq_reasons.most_common(10)),
            "dead_letters_by_topic": dict(self.dlq_topics),
            "model": self.model,
        }


def merge_heartbeats(beats: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the heartbeats of live workers: counters, rates, latency percentiles, scores.

    Rates and percentiles are over the latest window (60 s); ``fraud_rate`` is the share of
    frauds among the labels learned in it.

    >>> a, b = WorkerMetrics("scorer"), WorkerMetrics("scorer")
    >>> class Event:
    ...     decision, latency_ms, score = "decline", 10.0, 0.95
    >>> for m in (a, b):
    ...     m.scored(Event(), duplicate=False)
    >>> merged = merge_heartbeats([a.heartbeat(), b.heartbeat()])
    >>> merged["counters"]["scored"], merged["decline_rate"], merged["scores"][19]
    (2, 1.0, 2)
    """
    counters: Counter[str] = Counter()
    window: Counter[str] = Counter()
    dlq_topics: Counter[str] = Counter()
    hist = LatencyHistogram()
    scores = [0] * SCORE_BINS
    span = 1.0
    for b in beats:
        counters.update(b.get("counters", {}))
        window.update(b.get("window", {}))
        dlq_topics.update(b.get("dead_letters_by_topic", {}))
        hist.merge(LatencyHistogram.from_dict(b.get("latency", {})))
        w = (b.get("scores") or {}).get("window")
        if w and len(w) == SCORE_BINS:
            scores = [x + int(y) for x, y in zip(scores, w, strict=True)]
        span = max(span, float(b.get("window_s", 1.0)))
    scored = window.get("scored", 0)
    learned = window.get("labels_learned", 0)
    return {
        "counters": dict(counters),
        "window": dict(window),
        "dead_letters_by_topic": dict(dlq_topics),
        "throughput_per_s": scored / span,
        "latency_ms": {"p50": hist.quantile(0.5), "p95": hist.quantile(0.95),
                       "p99": hist.quantile(0.99), "count": hist.count,
                       "mean": hist.total_ms / hist.count if hist.count else 0.0},
        "decline_rate": window.get("decline", 0) / scored if scored else 0.0,
        "review_rate": window.get("review", 0) / scored if scored else 0.0,
        "fraud_rate": window.get("labels_fraud", 0) / learned if learned else None,
        "scores": scores,
        "window_s": span,
    }
