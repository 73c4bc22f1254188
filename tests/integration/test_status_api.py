"""/status, /status/series, /metrics, /alerts and the dashboard files against a real Redis.

Workers are represented by real :class:`stream.runtime.Runtime` objects writing their heartbeats
(``Runtime.beat``, what the running worker does every second) without running Faust; Kafka is left
out here (``tests/e2e/test_operations.py`` runs the whole system).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import api.status as status_module
from api.main import create_app
from api.status import collect_status
from models.events import ModelEvent
from stream.event_log import read_model_events, record_model_events
from stream.runtime import Runtime


def _tx(score: float, decision: str = "approve") -> Any:
    return SimpleNamespace(score=score, latency_ms=4.0, decision=decision)


async def _runtime(settings: Any, role: str, worker_id: str) -> Runtime:
    rt = Runtime(settings, role)
    rt.metrics.worker_id = worker_id
    rt.redis = aioredis.Redis.from_url(settings.redis_url)
    return rt


@pytest.fixture
def settings(redis_service: dict[str, str], make_settings: Any) -> Any:
    # Kafka is not started: the probe must report it down without slowing anything
    return make_settings(redis_service, kafka_bootstrap="127.0.0.1:9", criteria_min_labels=10)


async def test_status_merges_workers_and_reports_down_ones(settings: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(status_module, "STALE_S", 1.0)
    a = await _runtime(settings, "scorer", "host-a")
    b = await _runtime(settings, "scorer", "host-b")
    for i in range(30):
        a.metrics.scored(_tx(0.1 + i / 100), duplicate=False)
    for _ in range(10):
        b.metrics.scored(_tx(0.95, "decline"), duplicate=False)
    a.metrics.dead_letter(settings.topic("transactions"), "bad json: x")
    await a.beat()
    await b.beat()
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        status = await collect_status(client, settings)
        assert status["counts"]["scored"] == 40 and status["counts"]["decline"] == 10
        assert status["decline_rate"] == 0.25
        assert sum(status["score_distribution"]["counts"]) == 40
        assert status["dead_letters"][settings.topic("transactions.dlq")] == 1
        assert {(w["worker_id"], w["alive"]) for w in status["components"]["workers"]} == {
            ("host-a", True), ("host-b", True)}
        assert status["components"]["scorers"] == {"alive": 2, "down": 0}
        assert not status["healthy"]  # no learner
        # b stops beating (a crash): down, then a clean stop of a: gone from the list
        await asyncio.sleep(1.2)
        await a.beat()
        status = await collect_status(client, settings)
        workers = {w["worker_id"]: w for w in status["components"]["workers"]}
        assert workers["host-b"]["alive"] is False and workers["host-b"]["last_heartbeat_s"] >= 1.0
        assert workers["host-a"]["alive"] is True
        assert status["counts"]["scored"] == 30  # only live workers count
        await a.close()
        status = await collect_status(client, settings)
        assert [w["worker_id"] for w in status["components"]["workers"]] == ["host-b"]
    finally:
        await b.close()
        await client.aclose()


async def test_model_events_are_logged_and_read_back(settings: Any) -> None:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        events = [ModelEvent(kind="snapshot", model="logreg", version=f"v{i}") for i in range(5)]
        events.insert(2, ModelEvent(kind="drift", model="logreg", version="v2",
                                    evidence={"type": "concept"}))
        await record_model_events(client, settings.key_prefix,
                                  [e.model_dump_json().encode() for e in events], keep=100)
        got = await read_model_events(client, settings.key_prefix, count=10)
        assert [e["kind"] for e in got] == [e.kind for e in events]
        assert got[2]["evidence"] == {"type": "concept"} and got[2]["ts"] > 0
        later = await read_model_events(client, settings.key_prefix,
                                        since_ms=int(got[2]["id"].split("-")[0]))
        assert all(e["ts"] >= got[2]["ts"] for e in later)
        status = await collect_status(client, settings)
        assert [e["kind"] for e in status["events"]] == ["drift"]  # snapshots left out
    finally:
        await client.aclose()


async def test_learner_metrics_make_the_criteria(settings: Any) -> None:
    learner = await _runtime(settings, "learner", "host-l")

    class FakeLearner:  # the learner's status() as models.learner.OnlineLearner returns it
        def status(self) -> dict[str, Any]:
            return {"labels": 400, "observed": 0, "duplicates": 0, "drifts": 1, "warnings": 2,
                    "data_drifts": 0, "background": None, "challengers": [],
                    "champion": {"label": "champion", "model": "logreg", "version": "v7",
                                 "origin": "online", "labels": 400,
                                 "metrics": {"labels": 400, "positives": 8, "fpr": 0.02,
                                             "recall": 0.5, "average_precision": 0.45,
                                             "roc_auc": 0.9, "k": 100,
                                             "card_precision_at_k": None}}}

    learner._learner = FakeLearner()
    await learner.beat()
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        status = await collect_status(client, settings)
        crit = {c["criterion"]: c for c in status["criteria"]["criteria"]}
        assert crit["fpr"]["passed"] is False and crit["fpr"]["measured"] == 0.02
        assert crit["recall"]["passed"] is True and crit["average_precision"]["passed"] is True
        assert crit["p99_latency_ms"]["passed"] is None  # no scorer: not measured
        assert status["criteria"]["status"] == "fail"
        assert status["models"]["champion"]["version"] == "v7"
        assert status["components"]["learner"]["alive"] is True
        assert status["components"]["workers"][0]["model_version"] == "v7"
    finally:
        await learner.close()
        await client.aclose()


@pytest.fixture
def api(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_routes_answer(api: TestClient, settings: Any) -> None:
    async def beat() -> None:
        rt = await _runtime(settings, "scorer", "host-z")
        for i in range(12):
            rt.metrics.scored(_tx(i / 12), duplicate=False)
        await rt.beat()
        await rt.redis.aclose()  # type: ignore[union-attr]

    asyncio.run(beat())
    started = time.monotonic()
    status = api.get("/status").json()
    assert time.monotonic() - started < 5.0  # Kafka is down: the probe answers from its cache
    assert status["components"]["kafka"]["healthy"] in (False, None)
    assert status["counts"]["scored"] == 12 and status["alerts"] == []
    metrics = api.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    scored = [s for s in fams["fraudstream_transactions_scored"].samples if s.name.endswith("_total")]
    assert [(s.labels["worker"], s.value) for s in scored] == [("host-z", 12.0)]
    assert "fraudstream_consumer_lag" in fams and "fraudstream_alerts_firing" in fams
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the monitor samples every second
        series = api.get("/status/series").json()
        if series["samples"] and series["samples"][-1]["scored"] == 12:
            break
        time.sleep(0.2)
    assert series["samples"] and series["samples"][-1]["scored"] == 12
    since = series["samples"][-1]["t"]
    assert all(s["t"] > since for s in api.get(f"/status/series?since={since}").json()["samples"])
    assert api.get("/alerts").json() == {"firing": [], "recent": []}
    page = api.get("/dashboard")
    assert page.status_code == 200 and "<canvas" in page.text
    for name in ("dashboard.js", "dashboard.css"):
        assert api.get(f"/dashboard/static/{name}").status_code == 200
    assert api.get("/dashboard/static/..%2Fmain.py").status_code == 404
    assert api.get("/dashboard/static/nothing.js").status_code == 404


async def test_health_command_sees_this_hosts_worker(settings: Any, capsys: Any) -> None:
    import argparse
    import socket

    from stream.commands import health

    args = argparse.Namespace(worker=True, max_age=15.0)
    assert health(args, settings) == 1  # no worker yet
    rt = await _runtime(settings, "scorer", f"{socket.gethostname()}-4242")
    await rt.beat()
    try:
        assert health(args, settings) == 0
        assert f"scorer|{socket.gethostname()}-4242" in capsys.readouterr().out
    finally:
        await rt.close()
    assert health(args, settings) == 1  # a clean stop leaves the list
