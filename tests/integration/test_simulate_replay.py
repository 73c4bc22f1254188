"""The simulator and the replay against the real Kafka: counts, keys, order, resume after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from fraudstream.settings import Settings
from stream.replay import SIMULATOR, load_plan, mapping_for, progress_path, replay
from stream.simulate import run_simulation, write_simulation
from stream.simulator import SimConfig, Simulator
from stream.topics import ensure_topics, topic_partitions

ROOT = Path(__file__).resolve().parents[2]
CONFIG = SimConfig(cards=300, terminals=800, seed=21)


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every record of ``topic`` up to its current end, partition by partition."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id="test-reader")
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        want = sum(ends.values())
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
        assert len(out) == want, f"read {len(out)} of {want} records of {topic}"
        return out
    finally:
        consumer.close()


def _values(records: list[Any]) -> list[dict]:
    return [orjson.loads(r.value) for r in records]


def test_topics_are_created_with_their_partitions(services: dict[str, str], make_settings) -> None:
    settings = make_settings(services)
    created = ensure_topics(settings, services["kafka"])
    assert sorted(created) == sorted(topic_partitions(settings))
    assert ensure_topics(settings, services["kafka"]) == []  # idempotent
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=services["kafka"])
    try:
        for name, n in topic_partitions(settings).items():
            assert len(consumer.partitions_for_topic(name)) == n
    finally:
        consumer.close()


def test_simulated_stream_in_kafka_is_the_simulation(services: dict[str, str], make_settings) -> None:
    settings = make_settings(services)
    stats = run_simulation(settings, rate=0, config=CONFIG, clock="sim", count=6000)
    assert stats.transactions == 6000 and stats.done and not stats.stopped
    expected = list(Simulator(CONFIG).events(count=6000))
    exp_tx = [e for e in expected if e.kind == "transaction"]
    exp_labels = [e for e in expected if e.kind == "label"]
    assert stats.labels == len(exp_labels) > 200  # 8 simulated days: genuine labels after 7
    assert stats.frauds == sum(1 for e in exp_tx if e.scenario)

    tx = read_topic(services["kafka"], settings.topic("transactions"))
    assert len(tx) == 6000
    assert all(r.key.decode() == orjson.loads(r.value)["card_id"] for r in tx)
    assert len({r.partition for r in tx}) == settings.partitions
    # per partition, the order of the simulation (hence event time) is kept
    by_partition: dict[int, list[dict]] = defaultdict(list)
    for r in tx:
        by_partition[r.partition].append(orjson.loads(r.value))
    partition_of = {orjson.loads(r.value)["card_id"]: r.partition for r in tx}
    for p, got in by_partition.items():
        want = [e.record for e in exp_tx if partition_of[e.key] == p]
        assert got == want

    labels = read_topic(services["kafka"], settings.topic("labels"))
    assert [orjson.loads(r.value) for r in labels] == [e.record for e in exp_labels]
    assert [r.key.decode() for r in labels] == [e.key for e in exp_labels]


def test_live_simulation_in_a_thread_carries_current_timestamps(
    services: dict[str, str], make_settings
) -> None:
    settings = make_settings(services)
    stop = threading.Event()
    result: dict[str, Any] = {}
    before = datetime.now(UTC)
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "stats", run_simulation(settings, 1000, stop, config=CONFIG, clock="now")),
        name="simulator",
    )
    thread.start()
    time.sleep(3.0)
    stop.set()
    thread.join(timeout=30)
    after = datetime.now(UTC)
    assert not thread.is_alive()
    stats = result["stats"]
    assert stats.stopped and stats.transactions > 1000
    assert stats.day_seconds == pytest.approx(Simulator(CONFIG).expected_per_day() / 1000)

    tx = _values(read_topic(services["kafka"], settings.topic("transactions")))
    labels = _values(read_topic(services["kafka"], settings.topic("labels")))
    assert len(tx) == stats.transactions and len(labels) == stats.labels
    assert stats.labels > 0  # analyst verdicts arrive within a compressed simulated day
    stamps = {r["transaction_id"]: datetime.fromisoformat(r["timestamp"]) for r in tx}
    assert all(before <= ts <= after for ts in stamps.values())
    prefix = tx[0]["transaction_id"].split("-")[0] + "-"
    assert prefix.startswith("s") and all(r["transaction_id"].startswith(prefix) for r in tx)
    for label in labels:
        reported = datetime.fromisoformat(label["reported_at"])
        assert stamps[label["transaction_id"]] <= reported <= after


def _replay_file(tmp_path: Path) -> Path:
    path = tmp_path / "history.csv"
    write_simulation(CONFIG, path, count=2500)
    return path


def test_replay_publishes_in_event_time_order_with_labels_after_the_delay(
    services: dict[str, str], make_settings, tmp_path: Path
) -> None:
    settings = make_settings(services)
    path = _replay_file(tmp_path)
    report = replay(settings, path, SIMULATOR, speed=0, label_delay="2d", progress=False)
    assert report.complete and report.transactions == 2500 and report.labels == 2500

    tx = read_topic(services["kafka"], settings.topic("transactions"))
    labels = read_topic(services["kafka"], settings.topic("labels"))
    assert len(tx) == 2500 and len(labels) == 2500
    assert all(r.key.decode() == orjson.loads(r.value)["card_id"] for r in tx)
    when = {}
    by_partition: dict[int, list[datetime]] = defaultdict(list)
    for r in tx:
        rec = orjson.loads(r.value)
        when[rec["transaction_id"]] = datetime.fromisoformat(rec["timestamp"])
        by_partition[r.partition].append(when[rec["transaction_id"]])
    assert all(ts == sorted(ts) for ts in by_partition.values())
    reported = []
    for r in labels:
        rec = orjson.loads(r.value)
        assert r.key.decode() == rec["transaction_id"] and rec["source"] == "replay"
        ts = datetime.fromisoformat(rec["reported_at"])
        assert (ts - when[rec["transaction_id"]]).total_seconds() == pytest.approx(172800, abs=1e-3)
        reported.append(ts)
    assert reported == sorted(reported)
    truth = pd.read_csv(path)
    assert sum(orjson.loads(r.value)["is_fraud"] for r in labels) == truth["is_fraud"].sum()

    again = replay(settings, path, SIMULATOR, speed=0, label_delay="2d", progress=False)
    assert again.complete and again.transactions == 0 and again.skipped == 5000


def test_replay_resumes_exactly_after_a_clean_stop(
    services: dict[str, str], make_settings, tmp_path: Path
) -> None:
    settings = make_settings(services)
    path = _replay_file(tmp_path)
    first = replay(settings, path, SIMULATOR, speed=0, label_delay="1d", progress=False,
                   stop_after=1800, checkpoint_every=500)
    assert not first.complete and first.published_total == 1800
    state = json.loads(progress_path(settings, path, services["kafka"]).read_text())
    assert state["published"] == 1800 and not state["complete"]
    second = replay(settings, path, SIMULATOR, speed=0, label_delay="1d", progress=False)
    assert second.resumed and second.skipped == 1800 and second.complete
    assert first.transactions + second.transactions == 2500
    assert first.labels + second.labels == 2500

    tx = _values(read_topic(services["kafka"], settings.topic("transactions")))
    labels = _values(read_topic(services["kafka"], settings.topic("labels")))
    assert len(tx) == 2500 and len({r["transaction_id"] for r in tx}) == 2500  # exactly once
    assert len(labels) == 2500 and len({r["transaction_id"] for r in labels}) == 2500
    # the two runs together are the order of one run
    plan = load_plan(path, SIMULATOR, 86400.0)
    want = [plan.frame["transaction_id"].iloc[-i - 1] for i in plan.order.tolist() if i < 0]
    assert [r["transaction_id"] for r in labels] == want


def test_replay_resumes_after_sigkill_at_least_once(
    services: dict[str, str], make_settings, tmp_path: Path
) -> None:
    settings = make_settings(services)
    n = 4000
    start = pd.Timestamp("2024-03-01", tz="UTC")
    frame = pd.DataFrame({
        "id": range(1, n + 1),
        "ts": [start + pd.Timedelta(seconds=i) for i in range(n)],
        "card": [f"c{i % 97}" for i in range(n)],
        "amount": [1.0 + i % 50 for i in range(n)],
        "label": [int(i % 40 == 0) for i in range(n)],
    })
    path = tmp_path / "slow.csv"
    frame.to_csv(path, index=False)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FRAUDSTREAM_")},
        "PYTHONPATH": str(ROOT),
        "FRAUDSTREAM_KAFKA_BOOTSTRAP": services["kafka"],
        "FRAUDSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "FRAUDSTREAM_HOME": str(settings.home),
    }
    cmd = [sys.executable, "-m", "fraudstream", "replay", str(path), "--time", "ts", "--id", "id",
           "--card", "card", "--amount", "amount", "--label", "label", "--label-delay", "30s",
           "--speed", "1000", "--quiet"]
    # 4,030 s of event time at 1000x (2,000 events a wall second): about 4 s; checkpoints every 2 s
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    progress = progress_path(Settings(_env_file=None, home=settings.home,
                                      topic_prefix=settings.topic_prefix), path, services["kafka"])
    deadline = time.monotonic() + 60
    while not progress.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert progress.exists(), proc.communicate()
    time.sleep(0.7)  # past the checkpoint: some records are in Kafka but not checkpointed
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    checkpoint = json.loads(progress.read_text())["published"]
    total = 2 * n  # every row has a label (0 or 1)
    assert 0 < checkpoint < total
    first_run = len(read_topic(services["kafka"], settings.topic("transactions"))) + len(
        read_topic(services["kafka"], settings.topic("labels")))
    assert first_run >= checkpoint  # nothing before the checkpoint is lost

    done = subprocess.run([*cmd[:-3], "--speed", "0", "--json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["resumed"] and report["skipped"] == checkpoint and report["complete"]

    tx = _values(read_topic(services["kafka"], settings.topic("transactions")))
    labels = _values(read_topic(services["kafka"], settings.topic("labels")))
    assert {r["transaction_id"] for r in tx} == {str(i) for i in range(1, n + 1)}
    assert len({r["transaction_id"] for r in labels}) == n
    assert sum(r["is_fraud"] for r in {r["transaction_id"]: r for r in labels}.values()) == n // 40
    duplicates = len(tx) + len(labels) - total
    # at-least-once: only what was published after the last checkpoint comes again
    assert duplicates == first_run - checkpoint
    assert 0 <= duplicates <= 2.0 * 2000 + 256  # at most ~2 s of events (2,000 a second)
    counts = Counter(r["transaction_id"] for r in tx)
    assert all(c <= 2 for c in counts.values())


def test_replay_cli_prints_a_summary(services: dict[str, str], make_settings, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    from fraudstream.cli import main

    settings = make_settings(services)
    path = _replay_file(tmp_path)
    for key, value in (("KAFKA_BOOTSTRAP", services["kafka"]), ("TOPIC_PREFIX", settings.topic_prefix),
                       ("HOME", str(settings.home))):
        monkeypatch.setenv(f"FRAUDSTREAM_{key}", value)
    monkeypatch.chdir(tmp_path)
    assert main(["replay", str(path), "--preset", "simulator", "--speed", "0", "--quiet",
                 "--limit", "1000"]) == 0
    out = capsys.readouterr().out
    assert "published 1,000 transactions and 1,000 labels" in out and "complete" in out
    assert main(["replay", str(path), "--preset", "simulator", "--speed", "0", "--quiet",
                 "--limit", "1000"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert mapping_for("simulator").label_delay is None
