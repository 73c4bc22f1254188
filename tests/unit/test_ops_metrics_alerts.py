"""Worker metrics, the Prometheus exposition built from heartbeats, and the alert rules (no services)."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.alerts import Alerter, _History, evaluate
from api.prometheus import build_families, exposition
from fraudstream.settings import Settings
from stream.metrics import LATENCY_BOUNDS_S, SCORE_BINS, WorkerMetrics, merge_heartbeats
from stream.run import settings_env
from tests.webhook import WebhookReceiver


def _event(score: float, latency_ms: float, decision: str = "approve") -> Any:
    return SimpleNamespace(score=score, latency_ms=latency_ms, decision=decision)


def _worker(n: int, role: str = "scorer", seed: int = 0) -> WorkerMetrics:
    m = WorkerMetrics(role)
    m.worker_id = f"w{seed}"
    for i in range(n):
        score = ((i * 7 + seed) % 100) / 100
        m.scored(_event(score, 0.5 + i % 40, "decline" if score >= 0.9 else "approve"), duplicate=False)
    return m


def _entry(m: WorkerMetrics) -> dict[str, Any]:
    return {"worker_id": m.worker_id, "role": m.role, "seen_at": time.time(), "beat": m.heartbeat()}


def _samples(text: str) -> list[Any]:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def test_two_workers_counts_add_up_in_prometheus() -> None:
    a, b = _worker(120, seed=1), _worker(80, seed=2)
    a.dead_letter("p-transactions", "bad json: x")
    b.dead_letter("p-transactions", "bad json: y")
    b.dead_letter("p-labels", "no feature snapshot ...")
    text = exposition(build_families({}, [_entry(a), _entry(b)])).decode()
    samples = _samples(text)

    def total(name: str, **labels: str) -> float:
        return sum(s.value for s in samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    assert total("fraudstream_transactions_scored_total") == 200
    assert total("fraudstream_transactions_scored_total", worker="w1") == 120
    assert total("fraudstream_dead_letters_total", topic="p-transactions.dlq") == 2
    assert total("fraudstream_dead_letters_total", topic="p-labels.dlq") == 1
    assert total("fraudstream_scoring_latency_seconds_count") == 200
    assert total("fraudstream_score_count") == 200
    declines = total("fraudstream_decisions_total", decision="decline")
    assert declines == sum(1 for m in (a, b) for _ in range(m.counters["decline"]))
    assert declines == a.counters["decline"] + b.counters["decline"] > 0
    # histogram buckets are cumulative and end at the count
    for worker, n in (("w1", 120), ("w2", 80)):
        buckets = [s for s in samples if s.name == "fraudstream_scoring_latency_seconds_bucket"
                   and s.labels["worker"] == worker]
        assert [float(s.labels["le"]) for s in buckets[:-1]] == list(LATENCY_BOUNDS_S)
        values = [s.value for s in buckets]
        assert values == sorted(values) and values[-1] == n
        le_5ms = next(s.value for s in buckets if s.labels["le"] == "0.005")
        # latencies 0.5 + i % 40 ms: those <= 5 ms are i % 40 in 0..4
        assert le_5ms == sum(1 for i in range(n) if 0.5 + i % 40 <= 5)
        score_buckets = [s for s in samples if s.name == "fraudstream_score_bucket"
                         and s.labels["worker"] == worker]
        assert len(score_buckets) == SCORE_BINS + 1 and score_buckets[-1].value == n


def test_merge_heartbeats_rates_and_scores() -> None:
    a, b = _worker(50, seed=3), _worker(50, seed=4)
    learner = WorkerMetrics("learner")
    for fraud in (True, False, False, False):
        learner.count("labels_learned")
        if fraud:
            learner.count("labels_fraud")
    merged = merge_heartbeats([a.heartbeat(), b.heartbeat(), learner.heartbeat()])
    assert merged["counters"]["scored"] == 100
    assert sum(merged["scores"]) == 100
    assert merged["fraud_rate"] == 0.25
    assert merged["decline_rate"] == (a.counters["decline"] + b.counters["decline"]) / 100


def _status(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "components": {"kafka": {"healthy": True}, "redis": {"healthy": True},
                       "workers": [{"worker_id": "s1", "role": "scorer", "alive": True},
                                   {"worker_id": "l1", "role": "learner", "alive": True}],
                       "scorers": {"alive": 1}, "learner": {"alive": True}},
        "dead_letters": {"last_minute": 0}, "latency_ms": {"count": 500, "p99": 10.0},
        "criteria": {"labels": 1000, "criteria": []}, "lag": {}, "events": [],
        "models": {"version": "v3"},
    }
    base.update(over)
    return base


def test_rules_fire_on_their_conditions() -> None:
    s = Settings(_env_file=None, alert_dead_letters_per_min=10, alert_lag_min=100,
                 alert_lag_growth_s=10)
    assert evaluate(_status(), s) == []
    crit = {"labels": 900, "criteria": [
        {"criterion": "fpr", "measured": 0.01, "target": 0.001, "passed": False},
        {"criterion": "p99_latency_ms", "measured": 900.0, "target": 200.0, "passed": False}]}
    rules = {a.rule for a in evaluate(_status(criteria=crit), s)}
    assert rules == {"fpr_above_target", "p99_latency_above_target"}
    few = _status(criteria=crit, latency_ms={"count": 3, "p99": 900.0})
    assert {a.rule for a in evaluate(few, s)} == {"fpr_above_target"}  # too few events to judge latency
    down = _status()
    down["components"]["workers"][0]["alive"] = False
    down["components"]["workers"][0]["last_heartbeat_s"] = 12.0
    down["components"]["scorers"]["alive"] = 0
    h = _History()
    h.seen_scorer = True
    keys = {a.key for a in evaluate(down, s, h)}
    assert keys == {"component_down:worker:s1", "component_down:scorers"}
    assert [a.rule for a in evaluate(_status(dead_letters={"last_minute": 10}), s)] == ["dead_letter_spike"]
    assert evaluate(_status(dead_letters={"last_minute": 9}), s) == []


def test_drift_fires_once_per_event() -> None:
    s = Settings(_env_file=None)
    h = _History()
    event = {"kind": "drift", "model": "logreg", "version": "v4", "evidence": {"type": "concept"},
             "ts": time.time(), "id": "1-0"}
    snapshot = {"kind": "snapshot", "model": "logreg", "version": "v5", "ts": time.time()}
    first = evaluate(_status(events=[event, snapshot]), s, h)
    assert [(a.rule, a.key) for a in first] == [("drift_detected", "drift_detected:logreg:concept")]
    assert evaluate(_status(events=[event, snapshot]), s, h) == []  # already seen


def test_lag_growing_needs_a_rise_through_the_window() -> None:
    s = Settings(_env_file=None, alert_lag_min=100, alert_lag_growth_s=10, lag_cache_s=1)
    now = time.time()
    h = _History()
    h.lag["g"] = deque([(now - 12, 50), (now - 8, 120), (now - 4, 300)])
    fired = evaluate(_status(lag={"g": {"total": 400, "topics": {}}}), s, h)
    assert [a.key for a in fired] == ["lag_growing:g"]
    h2 = _History()
    h2.lag["g"] = deque([(now - 12, 500), (now - 8, 300), (now - 4, 350)])  # fell on the way
    assert evaluate(_status(lag={"g": {"total": 400, "topics": {}}}), s, h2) == []
    h3 = _History()
    h3.lag["g"] = deque([(now - 12, 10), (now - 8, 20), (now - 4, 40)])
    assert evaluate(_status(lag={"g": {"total": 60, "topics": {}}}), s, h3) == []  # below the minimum


def test_alerter_dedupes_cools_down_resolves_and_posts() -> None:
    with WebhookReceiver() as hook:
        s = Settings(_env_file=None, alert_webhook_url=hook.url, alert_for_s=0, alert_cooldown_s=3600,
                     alert_dead_letters_per_min=5)
        spike = _status(dead_letters={"last_minute": 50})

        async def scenario() -> list[list[Any]]:
            alerter = Alerter(s)  # no Redis: the cool-down is this process's
            out = [await alerter.check(spike), await alerter.check(spike),
                   await alerter.check(_status()), await alerter.check(spike)]
            return out

        rounds = asyncio.run(scenario())
        assert [[(a.rule, a.status) for a in r] for r in rounds] == [
            [("dead_letter_spike", "firing")],
            [],  # still firing: de-duplicated
            [("dead_letter_spike", "resolved")],
            [("dead_letter_spike", "firing")],  # a resolved alert may fire again
        ]
        bodies = hook.bodies()
        assert [(b["rule"], b["status"]) for b in bodies] == [
            ("dead_letter_spike", "firing"), ("dead_letter_spike", "resolved"),
            ("dead_letter_spike", "firing")]
        assert bodies[0]["source"] == "fraudstream" and bodies[0]["details"]["last_minute"] == 50
        assert "50 dead letters" in bodies[0]["summary"]


def test_alerter_waits_for_a_condition_to_hold() -> None:
    s = Settings(_env_file=None, alert_for_s=60, alert_dead_letters_per_min=5)

    async def scenario() -> list[Any]:
        alerter = Alerter(s)
        return await alerter.check(_status(dead_letters={"last_minute": 50}))

    assert asyncio.run(scenario()) == []


def test_webhook_failure_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with WebhookReceiver(status=500) as hook:
        s = Settings(_env_file=None, alert_webhook_url=hook.url, alert_for_s=0,
                     alert_dead_letters_per_min=5)

        async def scenario() -> Alerter:
            alerter = Alerter(s)
            await alerter.check(_status(dead_letters={"last_minute": 50}))
            return alerter

        alerter = asyncio.run(scenario())
    assert alerter.failures == 1
    assert len(hook.bodies()) == 3  # three attempts
    assert any("alert webhook" in r.message and "HTTP 500" in r.message for r in caplog.records)


def test_settings_env_gives_children_the_same_settings(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Settings(_env_file=None, key_prefix="kx", topic_prefix="tx-", challengers=["hat"],
                 model_params={"l2": 0.1}, alert_webhook_url="http://127.0.0.1:9/x", home=tmp_path)
    env = settings_env(s, base={"FRAUDSTREAM_DATASETS_DIR": "/elsewhere", "PATH": "/bin"})
    assert "FRAUDSTREAM_DATASETS_DIR" not in env  # None in the settings: not inherited
    assert env["PATH"] == "/bin"
    for key in [k for k in os.environ if k.startswith("FRAUDSTREAM_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("FRAUDSTREAM_"):
            monkeypatch.setenv(key, value)
    assert Settings(_env_file=None) == s
