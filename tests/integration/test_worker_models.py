"""The worker's model side against real Kafka and Redis, the worker run as a user runs it.

Each test starts ``python -m fraudstream worker --role ...`` as a subprocess with FRAUDSTREAM_*
environment variables (its own topics, Redis keys and registry), publishes with kafka-python and
reads the topics back:

- the learner detects a simulated concept drift and promotes a challenger judged on the scores it
  gave in shadow when later transactions were scored (live); the scorers' events carry the new
  champion afterwards, with at most three reasons each (learner settings made small
  for the test through the environment: promotion window 300 labels, 10 frauds, warm-up 200);
- an operator's promotion under a steady load: every transaction scored exactly once, the new
  version in the scored events within about a second;
- a label for a transaction never scored lands in ``labels.dlq`` with the reason;
- a tampered artifact: ``fraudstream models promote`` refuses it, and a scorer whose pointer is
  moved to it anyway keeps its model (``last_error`` in its heartbeat) and keeps scoring.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from fraudstream.settings import Settings
from models.registry import ModelRegistry
from stream.simulator import FraudPattern, LabelConfig, SimConfig, Simulator
from stream.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[2]

# Before the drift fraud is single large amounts; after it, card testing: bursts of small
# amounts within minutes. What the champion learned ("large = fraud") is wrong after it.
BEFORE = FraudPattern(large_amount=0.06, compromised_terminal=0.0, compromised_card=0.0,
                      card_testing=0.0)
AFTER = FraudPattern(large_amount=0.0, compromised_terminal=0.0, compromised_card=0.0,
                     card_testing=0.05)
# every transaction labelled within minutes of simulated time (the order labels arrive in)
FAST_LABELS = LabelConfig(unlabelled_share=0.0, analyst_share=1.0,
                          analyst_delay=(60.0, 300.0, 900.0), sigma=0.3, genuine_delay=300.0)
DRIFT_SIM = SimConfig(cards=200, terminals=600, seed=5, tx_per_day=10.0, fraud=BEFORE,
                      drift=AFTER, drift_day=1, labels=FAST_LABELS)
PLAIN_SIM = SimConfig(cards=300, terminals=800, seed=11, tx_per_day=10.0)

# the learner's settings for the drift test (the defaults need thousands of labels)
SMALL_LEARNER = {
    "PROMOTION_WINDOW": "300",
    "PROMOTION_MIN_POSITIVES": "10",
    "PROMOTION_CHECK_EVERY": "50",
    "DRIFT_WARMUP": "200",
    "DRIFT_COOLDOWN": "200",
    "SNAPSHOT_EVERY_LABELS": "100",
    # live judging on a few thousand transactions: alerts on the top 10 %, alert ranks among the
    # latest 500 live scores. A conservative champion (a small learning rate) and agile drift
    # challengers (fresh, a large one): with labels within minutes an online champion with the
    # same learning rate adapts as fast as a fresh model, and no honest judge can tell them apart
    "PROMOTION_ALERT_SHARE": "0.1",
    "PROMOTION_RANK_WINDOW": "500",
    "DRIFT_CHALLENGER": "fresh",
    "MODEL_PARAMS": '{"lr": 0.001}',
    "DRIFT_MODEL_PARAMS": '{"lr": 0.05}',
    "SNAPSHOT_EVERY_S": "1",
    # two simulated days flat out: the partitions race, so a terminal's latest event time (set
    # by a card on another partition) may run hours ahead of a transaction: a replay's lateness
    "ALLOWED_LATENESS": "30d",
}


# -- helpers ------------------------------------------------------------------------------------
def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a worker process for ``settings`` (plus FRAUDSTREAM_<extra>)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDSTREAM_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    values = {
        "ENV": "test",
        "HOME": str(settings.home),
        "CACHE_DIR": str(settings.cache_dir),
        "KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
        "REDIS_URL": str(settings.redis_url),
        "TOPIC_PREFIX": settings.topic_prefix,
        "KEY_PREFIX": settings.key_prefix,
        "APP_ID": settings.app_id,
        "REGISTRY_DIR": str(settings.registry_path),
        "HMAC_KEY": settings.hmac_key,
        **extra,
    }
    env.update({f"FRAUDSTREAM_{k}": v for k, v in values.items()})
    return env


@contextmanager
def worker(settings: Settings, role: str, log: Path, **extra: str) -> Iterator[subprocess.Popen]:
    """``python -m fraudstream worker --role ROLE``, stopped with SIGTERM (then SIGKILL) after."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fraudstream", "worker", "--role", role, "--loglevel", "info"],
            env=worker_env(settings, **extra), cwd=settings.home, stdout=fh,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fraudstream", *args], env=worker_env(settings),
                          cwd=settings.home, capture_output=True, text=True, timeout=60)


def heartbeats(settings: Settings) -> list[dict[str, Any]]:
    r = redis.Redis.from_url(str(settings.redis_url))
    try:
        keys = r.keys(f"{settings.key_prefix}:worker:*")
        return [orjson.loads(v) for v in r.mget(keys) if v] if keys else []
    finally:
        r.close()


def wait_for(what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen | None = None,
             log: Path | None = None, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            pytest.fail(f"the worker exited ({proc.returncode}) while waiting for {what}:\n{tail}")
        time.sleep(interval)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def wait_ready(settings: Settings, proc: subprocess.Popen, log: Path, role: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        return next((h for h in heartbeats(settings) if h.get("role") == role), None)

    return wait_for(f"the {role} worker's heartbeat", ready, 90, proc, log)


class TopicReader:
    """Reads every record of some topics from the beginning, keeps them, polls for more."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      auto_offset_reset="earliest", client_id="test-reader")
        tps = []
        for topic in topics:
            parts = None
            deadline = time.monotonic() + 30
            while not parts and time.monotonic() < deadline:
                parts = self.consumer.partitions_for_topic(topic)
                if not parts:
                    time.sleep(0.2)
            assert parts, f"topic {topic} does not exist"
            tps.extend(TopicPartition(topic, p) for p in sorted(parts))
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self.records: dict[str, list[dict[str, Any]]] = {t: [] for t in topics}
        self.arrived: dict[str, list[float]] = {t: [] for t in topics}  # wall time of each poll

    def poll(self, timeout_ms: int = 200) -> int:
        n = 0
        for tp, records in self.consumer.poll(timeout_ms=timeout_ms).items():
            now = time.time()
            self.records[tp.topic].extend(orjson.loads(r.value) for r in records)
            self.arrived[tp.topic].extend(now for _ in records)
            n += len(records)
        return n

    def until(self, what: str, check: Callable[[], Any], timeout: float,
              proc: subprocess.Popen | None = None, log: Path | None = None) -> Any:
        def step() -> Any:
            self.poll()
            return check()

        return wait_for(what, step, timeout, proc, log, interval=0.0)

    def values(self, topic: str) -> list[dict[str, Any]]:
        return self.records[topic]

    def ids(self, topic: str) -> set[str]:
        return {v["transaction_id"] for v in self.records[topic]}

    def close(self) -> None:
        self.consumer.close()


class Producer:
    """kafka-python, JSON values, text keys."""

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaProducer

        self._p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)

    def send(self, topic: str, key: str, value: dict[str, Any]) -> None:
        self._p.send(topic, key=key.encode(), value=orjson.dumps(value))

    def flush(self) -> None:
        self._p.flush(timeout=30)

    def close(self) -> None:
        self._p.close(timeout=10)


def version_number(v: str) -> int:
    return int(v.lstrip("v"))


# -- (i) + (v): promotion after a simulated drift, reasons --------------------------------------
def test_learner_promotes_a_challenger_after_a_drift(services: dict[str, str], make_settings,
                                                     tmp_path: Path) -> None:
    settings = make_settings(services)
    ensure_topics(settings, services["kafka"])
    events = list(Simulator(DRIFT_SIM).events(count=5200, flush_labels=True))
    txs = [e for e in events if e.kind == "transaction"]
    labels = {e.record["transaction_id"]: e for e in events if e.kind == "label"}
    # (A) the first 3,500 transactions (the drift is at the ~2,050th) in chunks of 500, each
    # chunk's labels learned and the snapshot in the scorer before the next chunk: the concept
    # drift detector watches the error of the scores given at scoring time, so a scorer that had
    # learned the old concept must score the drifted transactions; the drift is found and a drift
    # challenger starts (ADWIN needs a few dozen frauds after the change). (B) 1,500 more
    # transactions: every model
    # scores them live (the challenger in shadow, in the learner's observe agent); then their
    # labels: the challenger is judged on those live scores. (C) the last 200 after the promotion.
    phase_a, phase_b, tail = txs[:3500], txs[3500:-200], txs[-200:]
    t_topic, l_topic = settings.topic("transactions"), settings.topic("labels")
    s_topic, m_topic = settings.topic("scored"), settings.topic("model-events")
    log = tmp_path / "worker.log"
    dlq = settings.topic("transactions.dlq")
    reader = TopicReader(services["kafka"], [s_topic, m_topic, dlq])
    prod = Producer(services["kafka"])

    def score_then_label(batch: list[Any]) -> None:
        """Publish transactions; once all are scored AND observed by the learner, their labels."""
        ids = {e.record["transaction_id"] for e in batch}
        for e in batch:
            prod.send(t_topic, key=e.key, value=e.record)
        prod.flush()
        reader.until(f"{len(batch)} scored events",
                     lambda: len(reader.ids(s_topic) & ids) + len(reader.records[dlq]) >= len(ids),
                     120, proc, log)
        assert reader.records[dlq] == []
        scored = len(reader.ids(s_topic))
        wait_for(f"{scored} observed by the learner", lambda: any(
            h.get("counters", {}).get("observed", 0) >= scored for h in heartbeats(settings)),
            60, proc, log)
        for e in batch:
            label = labels[e.record["transaction_id"]]
            prod.send(l_topic, key=label.key, value=label.record)
        prod.flush()

    try:
        with worker(settings, "all", log, **SMALL_LEARNER) as proc:
            wait_ready(settings, proc, log, "all")
            for start in range(0, len(phase_a), 500):
                score_then_label(phase_a[start:start + 500])
                wait_for(f"the scorer's champion to learn {start + 500} labels", lambda n=start + 500: any(
                    h.get("model", {}).get("labels_learned", 0) >= 0.9 * n
                    for h in heartbeats(settings)), 60, proc, log)
            def alarms() -> list[dict[str, Any]]:
                return [v for v in reader.values(m_topic) if v["kind"] in ("warning", "drift")
                        and v["evidence"].get("type") == "concept"]

            reader.until("a concept drift (or warning) on model-events", alarms, 120, proc, log)
            score_then_label(phase_b)

            def promoted() -> dict[str, Any] | None:
                return next((v for v in reader.values(m_topic)
                             if v["kind"] == "promotion" and v["evidence"].get("origin") in
                             ("drift", "warning")), None)

            promotion = reader.until("a promotion on model-events", promoted, 120, proc, log)
            kinds = [v["kind"] for v in reader.values(m_topic)]
            assert {"warning", "drift"} & set(kinds[: kinds.index("promotion")]), kinds
            alarm = alarms()[0]  # the warning started the model promoted (a background model)
            assert alarm["evidence"]["detector"] == "error_fraud"
            assert alarm["evidence"]["mean_after"] > alarm["evidence"]["mean_before"]
            assert alarm["evidence"]["champion_holds"]["class"] == "fraud"
            ev = promotion["evidence"]
            assert ev["wins"] and ev["challenger_value"] - ev["champion_value"] >= 0.02
            # judged on what both said when phase B's transactions were scored
            assert ev["judged_on"] == "live scores" and ev["metric"] == "alert_recall"
            assert ev["p_value"] <= 0.05 and ev["positives"] >= 10
            new = promotion["version"]
            registry = ModelRegistry(settings.registry_path, settings.hmac_key)
            assert registry.champion_version() is not None
            assert version_number(registry.champion_version()) >= version_number(new)
            assert registry.get(new).note in ("promoted challenger background",
                                              f"promoted challenger {ev['challenger']}")
            assert registry.get(new).params["lr"] == 0.05  # the agile drift model
            assert registry.get(new).parent == ev["previous"]

            # the scorers switch: transactions published now are scored by the new champion
            time.sleep(1.0)
            for e in tail:
                prod.send(t_topic, key=e.key, value=e.record)
            prod.flush()
            want = {e.record["transaction_id"] for e in tail}

            def tail_scored() -> list[dict[str, Any]] | None:
                got = [v for v in reader.values(s_topic) if v["transaction_id"] in want]
                return got if len({v["transaction_id"] for v in got}) == len(want) else None

            after = reader.until("the last transactions scored", tail_scored, 60, proc, log)
    finally:
        prod.close()
        reader.close()
    assert all(version_number(v["model_version"]) >= version_number(new) for v in after), (
        sorted({v["model_version"] for v in after}), new)
    # (v) reason codes once the model has learned: at most three, each with value and contribution
    with_reasons = [v for v in after if v["reasons"]]
    assert len(with_reasons) >= 0.9 * len(after)
    for v in after:
        assert len(v["reasons"]) <= 3
        for r in v["reasons"]:
            assert r["feature"] in v["features"]
            assert r["value"] == v["features"][r["feature"]]
            assert r["contribution"] > 0
        contributions = [r["contribution"] for r in v["reasons"]]
        assert contributions == sorted(contributions, reverse=True)


# -- shared set-up for the scorer tests -----------------------------------------------------------
def trained_registry(settings: Settings, n: int = 2) -> ModelRegistry:
    """A registry with ``n`` logistic regressions (v1 the champion), each fitted a little."""
    from models.zoo import build_model

    registry = ModelRegistry(settings.registry_path, settings.hmac_key)
    for i in range(n):
        model = build_model("logreg", {"lr": 0.05})
        for j in range(400):
            amount = float((j * 37 + i) % 500)
            model.learn_one({"amount": amount, "card_tx_count_1h": float(j % 5)}, amount > 400)
        meta = registry.save(model, name=model.name, params=model.params, kind="offline",
                             labels_learned=400, note=f"test model {i + 1}")
        if i == 0:
            registry.promote(meta.version, reason="test champion")
    return registry


def plain_transactions(count: int) -> list[Any]:
    return [e for e in Simulator(PLAIN_SIM).events(count=count) if e.kind == "transaction"]


SCORER_ENV = {"ALLOWED_LATENESS": "30d"}


# -- (ii): an operator's promotion under load ----------------------------------------------------
def test_champion_swap_under_load_loses_no_transaction(services: dict[str, str], make_settings,
                                                       tmp_path: Path) -> None:
    import threading

    settings = make_settings(services)
    ensure_topics(settings, services["kafka"])
    registry = trained_registry(settings)
    assert registry.champion_version() == "v1"
    # transactions a second, evenly spaced, from before the promotion to after it; the pool
    # lasts 150 s so that a slow CLI call on a loaded machine still falls inside the load
    pool = plain_transactions(30_000)
    rate = 200.0
    t_topic, s_topic = settings.topic("transactions"), settings.topic("scored")
    dlq = settings.topic("transactions.dlq")
    log = tmp_path / "scorer.log"
    reader = TopicReader(services["kafka"], [s_topic, dlq])
    prod = Producer(services["kafka"])
    promoted: dict[str, float] = {}
    stop = threading.Event()
    txs: list[Any] = []

    def publish() -> None:
        start = time.monotonic()
        for i, e in enumerate(pool):
            if stop.is_set():
                break
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            prod.send(t_topic, key=e.key, value=e.record)
            txs.append(e)
        prod.flush()

    try:
        with worker(settings, "scorer", log, **SCORER_ENV) as proc:
            wait_ready(settings, proc, log, "scorer")
            sender = threading.Thread(target=publish, name="test-publisher")
            sender.start()
            time.sleep(3.0)  # steady load first
            promoted["before"] = time.time()
            done = cli(settings, "models", "promote", "v2", "--reason", "test swap under load")
            promoted["after"] = time.time()
            time.sleep(3.0)  # and after
            stop.set()
            sender.join(timeout=60)
            assert not sender.is_alive()
            assert done.returncode == 0, done.stderr
            assert "champion is now v2" in done.stdout
            assert len(txs) < len(pool), "the load ended before the promotion"
            reader.until(f"{len(txs)} scored events",
                         lambda: len(reader.records[s_topic]) + len(reader.records[dlq]) >= len(txs),
                         60, proc, log)
            reader.poll(500)  # anything more (a duplicate) would show up now
    finally:
        stop.set()
        prod.close()
        reader.close()
    scored = reader.values(s_topic)
    assert reader.records[dlq] == []
    ids = [v["transaction_id"] for v in scored]
    assert len(ids) == len(set(ids)) == len(txs)  # every transaction scored exactly once
    assert set(ids) == {e.record["transaction_id"] for e in txs}
    # the moment the pointer moved: the registry's own record of the promotion
    at = next(e["at"] for e in registry.history() if e["event"] == "promote" and e["version"] == "v2")
    moved = datetime_s(at)
    assert promoted["before"] <= moved <= promoted["after"]
    when = sorted((datetime_s(v["scored_at"]), v["model_version"]) for v in scored)
    assert {v for _, v in when} == {"v1", "v2"}
    assert all(v == "v1" for t, v in when if t < moved)
    first_v2 = min(t for t, v in when if v == "v2")
    last_v1 = max(t for t, v in when if v == "v1")
    assert last_v1 < first_v2  # one switch, no flapping
    switch_s = first_v2 - moved
    assert switch_s <= 1.0, f"the scorer switched {switch_s:.2f} s after the promotion"
    print(f"champion swap: first v2 event {switch_s * 1000:.0f} ms after the pointer moved, "
          f"{len(txs)} transactions each scored once")


def datetime_s(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- (iii): a label for an unknown transaction -----------------------------------------------------
def test_label_for_unknown_transaction_goes_to_labels_dlq(services: dict[str, str], make_settings,
                                                          tmp_path: Path) -> None:
    """A label that overtook its transaction waits on labels.retry and is learned once the
    transaction is scored; one whose transaction never comes is dead-lettered after the wait."""
    import base64

    settings = make_settings(services)
    ensure_topics(settings, services["kafka"])
    l_topic, l_dlq = settings.topic("labels"), settings.topic("labels.dlq")
    t_topic = settings.topic("transactions")
    log = tmp_path / "worker.log"
    reader = TopicReader(services["kafka"], [l_dlq])
    prod = Producer(services["kafka"])
    label = {"transaction_id": "never-scored-42", "is_fraud": True,
             "reported_at": "2024-01-02T10:00:00Z", "source": "analyst"}
    early_tx = plain_transactions(1)[0]
    early_id = early_tx.record["transaction_id"]
    early = {"transaction_id": early_id, "is_fraud": True,
             "reported_at": "2024-01-02T10:00:00Z", "source": "analyst"}
    try:
        with worker(settings, "all", log, LABEL_WAIT="6s", **SCORER_ENV) as proc:
            wait_ready(settings, proc, log, "all")
            prod.send(l_topic, key="never-scored-42", value=label)
            prod.send(l_topic, key="broken", value={"transaction_id": "x1", "is_fraud": "maybe"})
            prod.send(l_topic, key=early_id, value=early)  # before its transaction
            prod.flush()
            time.sleep(1.5)
            prod.send(t_topic, key=early_tx.key, value=early_tx.record)
            prod.flush()
            reader.until("two dead letters", lambda: len(reader.records[l_dlq]) >= 2, 60, proc, log)
            # the early label was joined when its transaction had been scored: it is learned
            # (kept with the transaction's snapshot, as /predictions shows)
            beat = wait_for("the early label learned", lambda: next(
                (h for h in heartbeats(settings)
                 if h.get("counters", {}).get("labels_joined_late", 0) >= 1), None), 30, proc, log)
            assert beat["counters"].get("labels_held", 0) >= 2
            time.sleep(1.0)
    finally:
        prod.close()
        reader.close()
    letters = reader.values(l_dlq)
    assert len(letters) == 2, letters  # the early label is not among them
    # the invalid one is dead-lettered at parsing, the unknown one after waiting on labels.retry
    unknown = next(d for d in letters if "snapshot" in d["reason"])
    invalid = next(d for d in letters if d is not unknown)
    assert unknown["reason"].startswith(
        "no feature snapshot for transaction 'never-scored-42' (never scored, or its snapshot "
        "expired); waited 6 s on labels.retry (")
    assert unknown["topic"] == l_topic and unknown["offset"] == 0
    assert orjson.loads(base64.b64decode(unknown["original"])) == label
    assert "is_fraud" in invalid["reason"] and "reported_at: missing" in invalid["reason"]


# -- (iv): a tampered artifact ---------------------------------------------------------------------
def test_tampered_artifact_is_refused_and_the_scorer_keeps_scoring(
        services: dict[str, str], make_settings, tmp_path: Path) -> None:
    settings = make_settings(services)
    ensure_topics(settings, services["kafka"])
    registry = trained_registry(settings)
    pkl = settings.registry_path / "versions" / "v2" / "model.pkl"
    assert pkl.exists(), sorted(p.name for p in settings.registry_path.rglob("*"))
    txs = plain_transactions(400)
    t_topic, s_topic = settings.topic("transactions"), settings.topic("scored")
    log = tmp_path / "scorer.log"
    reader = TopicReader(services["kafka"], [s_topic])
    prod = Producer(services["kafka"])
    try:
        with worker(settings, "scorer", log, **SCORER_ENV) as proc:
            wait_ready(settings, proc, log, "scorer")
            data = bytearray(pkl.read_bytes())
            data[len(data) // 2] ^= 0x01  # one bit flipped on disk
            pkl.write_bytes(bytes(data))

            refused = cli(settings, "models", "promote", "v2")
            assert refused.returncode != 0
            assert "signature does not match the artifact" in refused.stderr
            assert "v2" in refused.stderr and "Traceback" not in refused.stderr
            assert registry.champion_version() == "v1"

            for e in txs[:200]:
                prod.send(t_topic, key=e.key, value=e.record)
            prod.flush()
            reader.until("200 scored events", lambda: len(reader.records[s_topic]) >= 200, 60,
                         proc, log)

            registry.promote("v2", reason="the pointer moved to a tampered artifact")

            def refused_by_scorer() -> dict[str, Any] | None:
                beat = next((h for h in heartbeats(settings) if h.get("role") == "scorer"), None)
                model = (beat or {}).get("model") or {}
                return model if model.get("last_error") else None

            model = wait_for("the scorer's last_error", refused_by_scorer, 15, proc, log)
            assert "model v2" in model["last_error"] and "signature" in model["last_error"]
            assert model["version"] == "v1"

            for e in txs[200:]:
                prod.send(t_topic, key=e.key, value=e.record)
            prod.flush()
            reader.until("400 scored events", lambda: len(reader.records[s_topic]) >= 400, 60,
                         proc, log)
            assert proc.poll() is None
    finally:
        prod.close()
        reader.close()
    scored = reader.values(s_topic)
    assert len({v["transaction_id"] for v in scored}) == 400
    assert {v["model_version"] for v in scored} == {"v1"}
