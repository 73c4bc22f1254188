"""``/metrics`` in the Prometheus text format, for every worker of the system, from one scrape.

Why not prometheus_client's multiprocess mode: it shares counters through files in one folder, so
it only covers processes on one host that share that folder, started with the right environment.
fraudstream's workers are separate processes that may run on other hosts (docker-compose replicas,
one container each), and they already publish their counters and histograms in their Redis
heartbeat every second. So the API builds the metrics from the heartbeats at scrape time (a custom
collector), one series per worker (label ``worker``): each series is a true counter of one process
(a restarted worker is a new series), ``sum()`` over workers is the system's figure, and a dead
worker's series goes stale instead of making a sum drop.

Metrics (prefix ``fraudstream_``; per worker: labels ``worker`` and ``role``):

- ``worker_up``, ``worker_heartbeat_age_seconds``, ``worker_start_time_seconds``;
- counters ``transactions_scored_total``, ``transactions_duplicate_total``,
  ``decisions_total{decision}``, ``dead_letters_total{topic}`` (the dead-letter topic),
  ``labels_learned_total``, ``labels_fraud_total``, ``labels_duplicate_total``,
  ``scored_observed_total`` (the learner's data-drift observer), ``model_events_total{kind}``,
  ``champion_swaps_total``;
- histograms ``scoring_latency_seconds`` (Kafka record time to scored) and ``score`` (the fraud
  score in 20 bins of 0.05; a bin holds [k/20, (k+1)/20), so a score exactly on a bound counts
  in the next ``le``);
- ``champion_info{model,version}`` (1) and ``champion_version`` (the number of ``vN``);
- the learner: ``drift_detections_total{type}`` (concept, warning, data) and
  ``model_rolling_metric{slot,model,version,metric}`` (average precision, ROC AUC, precision, recall,
  FPR of the champion and challengers over their rolling window), ``model_window_labels``;
- Kafka: ``consumer_lag{group,topic,partition}``, ``consumer_group_lag{group}``;
- ``component_up{component}`` (kafka, redis), ``criterion_passed{criterion}`` (1 pass, 0 fail; absent
  while not measured);
- this API process: ``alerts_sent_total{rule,status}``, ``alerts_firing{rule}``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from api.alerts import RULES
from api.status import STALE_S
from stream.metrics import SCORE_BINS

__all__ = ["build_families", "exposition"]

P = "fraudstream_"

#: (metric name, heartbeat counter, help, the roles that count it)
_COUNTERS = (
    ("transactions_scored", "scored", "transactions scored (first time)", ("scorer", "all")),
    ("transactions_duplicate", "duplicates", "transactions seen again (answered from the store)",
     ("scorer", "all")),
    ("labels_learned", "labels_learned", "labels learned by the learner", ("learner", "all")),
    ("labels_fraud", "labels_fraud", "fraud labels learned", ("learner", "all")),
    ("labels_duplicate", "labels_duplicate", "labels seen again (ignored)", ("learner", "all")),
    ("scored_observed", "observed", "scored events observed for data drift", ("learner", "all")),
)


class _Fixed:
    """A collector that yields metric families built beforehand (one scrape)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def exposition(families: Iterable[Metric]) -> bytes:
    """The Prometheus text format of ``families``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families)))
    return generate_latest(registry)


def build_families(
    status: dict[str, Any], workers: list[dict[str, Any]], alerter: Any = None
) -> list[Metric]:
    """Every metric family from a status, the workers read with it, and the alerter's counts."""
    now = time.time()
    wl = ["worker", "role"]
    up = GaugeMetricFamily(P + "worker_up", "1 while the worker's heartbeat is fresh, 0 once it stopped", labels=wl)
    age = GaugeMetricFamily(P + "worker_heartbeat_age_seconds", "seconds since the worker's latest heartbeat", labels=wl)
    start = GaugeMetricFamily(P + "worker_start_time_seconds", "when the worker started (epoch seconds)", labels=wl)
    counters = {key: (CounterMetricFamily(P + name, doc, labels=wl), roles)
                for name, key, doc, roles in _COUNTERS}
    decisions = CounterMetricFamily(P + "decisions", "decisions taken", labels=[*wl, "decision"])
    dead = CounterMetricFamily(P + "dead_letters", "records sent to a dead-letter topic", labels=[*wl, "topic"])
    events = CounterMetricFamily(P + "model_events", "model events emitted by the learner", labels=[*wl, "kind"])
    swaps = CounterMetricFamily(P + "champion_swaps", "champion hot-swaps by this worker", labels=wl)
    latency = HistogramMetricFamily(P + "scoring_latency_seconds",
                                    "end-to-end latency: Kafka record time to scored", labels=wl)
    score = HistogramMetricFamily(P + "score", "fraud scores given", labels=wl)
    info = GaugeMetricFamily(P + "champion_info", "the champion a worker scores with (value 1)",
                             labels=[*wl, "model", "version"])
    version = GaugeMetricFamily(P + "champion_version", "the number of the champion's version (vN)", labels=wl)
    drift = CounterMetricFamily(P + "drift_detections", "drift alarms of the learner", labels=[*wl, "type"])
    rolling = GaugeMetricFamily(P + "model_rolling_metric",
                                "prequential metric over the model's rolling window of labels",
                                labels=["slot", "model", "version", "metric"])
    window = GaugeMetricFamily(P + "model_window_labels", "labels in the model's rolling window",
                               labels=["slot", "model", "version"])

    for e in workers:
        beat = e.get("beat")
        labels = [e["worker_id"], e["role"]]
        at = float((beat or {}).get("at", e.get("seen_at", 0)))
        up.add_metric(labels, 1.0 if beat and now - at < STALE_S else 0.0)
        age.add_metric(labels, max(0.0, now - at))
        if not beat:
            continue
        start.add_metric(labels, float(beat.get("started_at", 0)))
        c = beat.get("counters") or {}
        for key, (fam, roles) in counters.items():
            if e["role"] in roles:
                fam.add_metric(labels, float(c.get(key, 0)))
        if e["role"] in ("scorer", "all"):
            for d in ("approve", "review", "decline"):
                decisions.add_metric([*labels, d], float(c.get(d, 0)))
        for source, n in (beat.get("dead_letters_by_topic") or {}).items():
            dead.add_metric([*labels, f"{source}.dlq"], float(n))
        for key, n in c.items():
            if key.startswith("model_events."):
                events.add_metric([*labels, key.split(".", 1)[1]], float(n))
        model = beat.get("model") or {}
        swaps.add_metric(labels, float(model.get("swaps") or 0))
        if model.get("version"):
            info.add_metric([*labels, str(model.get("name")), str(model["version"])], 1.0)
            m = re.fullmatch(r"v(\d+)", str(model["version"]))
            if m:
                version.add_metric(labels, float(m.group(1)))
        lb = beat.get("latency_buckets")
        if lb and e["role"] in ("scorer", "all"):
            latency.add_metric(labels, _cumulative(lb["bounds_s"], lb["counts"]), float(lb["sum_s"]))
        sc = beat.get("scores")
        if sc and e["role"] in ("scorer", "all"):
            bounds = [(i + 1) / SCORE_BINS for i in range(SCORE_BINS)]
            score.add_metric(labels, _cumulative(bounds, sc["total"]), float(sc.get("sum", 0.0)))
        learner = model.get("learner")
        if learner:
            drift.add_metric([*labels, "concept"], float(learner.get("drifts", 0)))
            drift.add_metric([*labels, "warning"], float(learner.get("warnings", 0)))
            drift.add_metric([*labels, "data"], float(learner.get("data_drifts", 0)))
            slots = [("champion", learner.get("champion"))]
            slots += [("challenger", ch) for ch in learner.get("challengers") or []]
            if learner.get("background"):
                slots.append(("background", learner["background"]))
            for slot, s in slots:
                if not s:
                    continue
                slot_labels = [slot, str(s.get("model")), str(s.get("version"))]
                mm = s.get("metrics") or {}
                window.add_metric(slot_labels, float(mm.get("labels") or 0))
                for metric in ("average_precision", "roc_auc", "precision", "recall", "fpr"):
                    if mm.get(metric) is not None:
                        rolling.add_metric([*slot_labels, metric], float(mm[metric]))

    lag = GaugeMetricFamily(P + "consumer_lag", "records not yet consumed (end offset - committed)",
                            labels=["group", "topic", "partition"])
    group_lag = GaugeMetricFamily(P + "consumer_group_lag", "records a consumer group has not consumed yet",
                                  labels=["group"])
    for group, g in (status.get("lag") or {}).items():
        group_lag.add_metric([group], float(g.get("total", 0)))
        for topic, t in (g.get("topics") or {}).items():
            for part, n in (t.get("partitions") or {}).items():
                lag.add_metric([group, topic, str(part)], float(n))
    comp = GaugeMetricFamily(P + "component_up", "1 when the component answers", labels=["component"])
    for name in ("kafka", "redis"):
        healthy = (status.get("components", {}).get(name) or {}).get("healthy")
        if healthy is not None:
            comp.add_metric([name], 1.0 if healthy else 0.0)
    crit = GaugeMetricFamily(P + "criterion_passed", "success criterion from live figures: 1 pass, 0 fail",
                             labels=["criterion"])
    for c in (status.get("criteria") or {}).get("criteria", []):
        if c.get("passed") is not None:
            crit.add_metric([c["criterion"]], 1.0 if c["passed"] else 0.0)
    sent = CounterMetricFamily(P + "alerts_sent", "alert notifications sent by this API process",
                               labels=["rule", "status"])
    firing = GaugeMetricFamily(P + "alerts_firing", "alerts firing now", labels=["rule"])
    if alerter is not None:
        for (rule, st), n in sorted(alerter.sent.items()):
            sent.add_metric([rule, st], float(n))
        per_rule = Counter(a.rule for a in alerter.active.values())
        for rule in RULES:
            firing.add_metric([rule], float(per_rule.get(rule, 0)))
    return [up, age, start, *(fam for fam, _ in counters.values()), decisions, dead, events, swaps, latency, score, info,
            version, drift, rolling, window, lag, group_lag, comp, crit, sent, firing]


def _cumulative(bounds: list[float], counts: list[int]) -> list[tuple[str, float]]:
    """Prometheus buckets (le, cumulative count) from per-bucket counts (the last: overflow).

    >>> _cumulative([0.1, 0.5], [2, 3, 1])
    [('0.1', 2.0), ('0.5', 5.0), ('+Inf', 6.0)]
    """
    out, total = [], 0
    for b, n in zip(bounds, counts, strict=False):
        total += n
        out.append((floatToGoString(b), float(total)))
    total += sum(counts[len(bounds):])
    out.append(("+Inf", float(total)))
    return out

