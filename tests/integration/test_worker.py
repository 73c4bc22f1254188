"""The worker end to end against real Kafka and Redis, started as a user starts it.

One module-scoped system: topics with a unique prefix, a worker process (`fraudstream worker
--role all`), kafka-python producers and consumers. The tests run in order and build on each other:
5,000 simulated transactions and 50 malformed records; duplicates; a SIGKILL mid-stream and a
restart; labels. After all of it, the card features of every scored event equal the offline twin's
computation on the distinct transactions: nothing was counted twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from features.columns import ColumnMapping, to_canonical
from features.definitions import load_feature_set
from features.offline import compute_features
from fraudstream.settings import Settings
from models.registry import ModelRegistry
from stream.simulator import SimConfig, Simulator
from stream.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[2]
N_TX = 5000
N_KILL = 3000


class System:
    """A worker process plus clients on one set of topics."""

    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.settings = settings
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=2)
        self.consumers: dict[str, KafkaConsumer] = {}
        self.records: dict[str, list[Any]] = {}
        self.redis = redis.Redis.from_url(settings.redis_url or "")
        self.starts = 0

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "FRAUDSTREAM_KAFKA_BOOTSTRAP": s.kafka_bootstrap or "",
            "FRAUDSTREAM_REDIS_URL": s.redis_url or "",
            "FRAUDSTREAM_TOPIC_PREFIX": s.topic_prefix,
            "FRAUDSTREAM_KEY_PREFIX": s.key_prefix,
            "FRAUDSTREAM_APP_ID": s.app_id,
            "FRAUDSTREAM_HOME": str(s.home),
            "FRAUDSTREAM_PARTITIONS": str(s.partitions),
            "FRAUDSTREAM_SNAPSHOT_EVERY_LABELS": "200",
            "FRAUDSTREAM_SNAPSHOT_EVERY_S": "3600",  # snapshots by label count only
            "FRAUDSTREAM_COMMIT_INTERVAL_S": "5.0",
            "PYTHONPATH": str(ROOT),
        }

    def start(self) -> None:
        self.starts += 1
        log = open(self.tmp / f"worker-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fraudstream", "worker", "--role", "all", "--loglevel", "info"],
            env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
        )
        log.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)
        self.proc = None

    def log(self) -> str:
        return (self.tmp / f"worker-{self.starts}.log").read_text(errors="replace")[-3000:]

    def publish(self, topic: str, items: list[tuple[bytes | None, bytes]]) -> None:
        for key, value in items:
            self.producer.send(self.settings.topic(topic), key=key, value=value)
        self.producer.flush()

    def read(self, topic: str) -> list[Any]:
        """Every record of ``topic`` so far (kept across calls)."""
        if topic not in self.consumers:
            c = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                              enable_auto_commit=False, fetch_max_wait_ms=50)
            parts = c.partitions_for_topic(self.settings.topic(topic)) or {0}
            c.assign([TopicPartition(self.settings.topic(topic), p) for p in parts])
            c.seek_to_beginning()
            self.consumers[topic] = c
            self.records[topic] = []
        for batch in self.consumers[topic].poll(timeout_ms=200, max_records=20000).values():
            self.records[topic].extend(batch)
        return self.records[topic]

    def wait(self, topic: str, count: int, timeout: float = 120.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.read(topic)
            if len(got) >= count:
                time.sleep(0.5)  # anything beyond the expected count arrives too
                return self.read(topic)
            if time.monotonic() > deadline:
                from collections import Counter

                dead = Counter(orjson.loads(r.value)["reason"][:70] for r in self.read("transactions.dlq"))
                raise AssertionError(
                    f"{topic}: {len(got)} of {count} records after {timeout} s; dead letters "
                    f"{dead.most_common(5)}; worker log:\n{self.log()}"
                )
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the worker exited ({self.proc.returncode}):\n{self.log()}")

    def heartbeat(self) -> dict[str, Any]:
        keys = list(self.redis.scan_iter(match=f"{self.settings.key_prefix}:worker:*"))
        beats = [orjson.loads(v) for v in self.redis.mget(keys) if v] if keys else []
        return max(beats, key=lambda b: b["at"]) if beats else {}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)
        for c in self.consumers.values():
            c.close()
        self.producer.close()
        self.redis.close()


@pytest.fixture(scope="module")
def system(services: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("worker")
    unique = f"w{os.getpid()}{int(time.time()) % 100000}"
    settings = Settings(
        _env_file=None, env="test", home=tmp / "home", kafka_bootstrap=services["kafka"],
        redis_url=services["redis"], topic_prefix=f"{unique}-", key_prefix=unique,
        app_id=f"fs-{unique}", partitions=4,
    )
    ensure_topics(settings, services["kafka"])
    sys_ = System(settings, tmp)
    sys_.start()
    try:
        yield sys_
    finally:
        sys_.close()


def simulated() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sim = Simulator(SimConfig(seed=42, cards=300, terminals=900))
    txs, labels = [], []
    for e in sim.events(count=N_TX + N_KILL + 200):
        (txs if e.kind == "transaction" else labels).append(e.record)
    return txs, labels


TXS, LABELS = simulated()


def malformed() -> list[tuple[str, bytes]]:
    good = TXS[0]
    out: list[tuple[str, bytes]] = []
    for i in range(10):
        out.append(("bad JSON", b'{"transaction_id": "x%d", "amount": ' % i))
        rec = {k: v for k, v in good.items() if k != ("card_id", "amount", "timestamp")[i % 3]}
        rec["transaction_id"] = f"missing-{i}"
        out.append(("missing", orjson.dumps(rec)))
        out.append(("must be", orjson.dumps({**good, "transaction_id": f"type-{i}",
                                               "amount": ["12"] if i % 2 else "twelve"})))
        out.append(("must be >= 0", orjson.dumps({**good, "transaction_id": f"neg-{i}",
                                                    "amount": -1 - i})))
        out.append(("unknown currency", orjson.dumps({**good, "transaction_id": f"cur-{i}",
                                                        "currency": "ZZZ"})))
    return out


def by_id(records: list[Any]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for r in records:
        out.setdefault(orjson.loads(r.value)["transaction_id"], []).append(r.value)
    return out


def test_5000_transactions_and_50_malformed_records(system: System) -> None:
    bad = malformed()
    items = [(str(t["card_id"]).encode(), orjson.dumps(t)) for t in TXS[:N_TX]]
    for i, (_, raw) in enumerate(bad):  # spread the bad ones through the stream
        items.insert(i * 97, (b"bad", raw))
    system.publish("transactions", items)
    scored = system.wait("scored", N_TX)
    ids = by_id(scored)
    assert len(ids) == N_TX, f"{len(ids)} distinct scored ids"
    assert set(ids) == {t["transaction_id"] for t in TXS[:N_TX]}
    dead = system.wait("transactions.dlq", len(bad))
    assert len(dead) == len(bad) == 50
    reasons = [orjson.loads(r.value)["reason"] for r in dead]
    for fragment, _ in bad:
        assert any(fragment in reason for reason in reasons), (fragment, reasons[:10])
    originals = {orjson.loads(r.value)["original"] for r in dead}
    import base64

    assert {base64.b64encode(raw).decode() for _, raw in bad} == originals
    event = orjson.loads(scored[-1].value)
    assert 0.0 <= event["score"] <= 1.0 and event["decision"] in ("approve", "review", "decline")
    assert event["model_version"].startswith("v") and event["features"]


def test_republished_transactions_change_nothing(system: System) -> None:
    before = by_id(system.read("scored"))
    again = TXS[1000:1500]
    system.publish("transactions", [(str(t["card_id"]).encode(), orjson.dumps(t)) for t in again])
    scored = system.wait("scored", N_TX + len(again))
    after = by_id(scored)
    assert len(after) == N_TX, "a re-published transaction got a new scored id"
    for t in again:
        first, *rest = after[t["transaction_id"]]
        assert rest and all(r == first for r in rest), "a duplicate's scored event differs"
        assert first == before[t["transaction_id"]][0]


def test_sigkill_mid_stream_then_restart_scores_everything_once(system: System) -> None:
    batch = TXS[N_TX: N_TX + N_KILL]
    items = [(str(t["card_id"]).encode(), orjson.dumps(t)) for t in batch]
    system.publish("transactions", items[:N_KILL // 2])
    deadline = time.monotonic() + 60
    while len(by_id(system.read("scored"))) < N_TX + 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    system.kill(signal.SIGKILL)  # mid-stream: offsets of the last seconds are not committed
    system.publish("transactions", items[N_KILL // 2:])
    system.start()
    deadline = time.monotonic() + 180
    want = {t["transaction_id"] for t in TXS[: N_TX + N_KILL]}
    while time.monotonic() < deadline:
        ids = by_id(system.read("scored"))
        if want <= set(ids):
            break
        time.sleep(0.2)
    ids = by_id(system.read("scored"))
    assert want == set(ids), f"{len(want - set(ids))} transactions never scored:\n{system.log()}"
    for values in ids.values():  # re-scored after the restart: the same event, byte for byte
        assert all(v == values[0] for v in values)


def test_no_feature_counted_twice(system: System) -> None:
    """Card features of every scored event equal the offline twin on the distinct transactions."""
    txs = TXS[: N_TX + N_KILL]
    frame = to_canonical(pd.DataFrame(txs), ColumnMapping(columns={c: c for c in (
        "transaction_id", "timestamp", "card_id", "terminal_id", "amount", "currency", "channel",
        "country", "city", "merchant_category", "latitude", "longitude")}))
    offline = compute_features(frame, load_feature_set(system.settings.feature_set),
                               currency_rates=system.settings.currency_rates)
    offline.index = frame["transaction_id"]
    online = {k: orjson.loads(v[0])["features"] for k, v in by_id(system.read("scored")).items()}
    card_features = [c for c in offline.columns if c.startswith("card_")]
    assert len(card_features) >= 5
    mismatches = []
    for tx_id, feats in online.items():
        for name in card_features:
            a, b = feats.get(name), offline.at[tx_id, name]
            if (a is None) != pd.isna(b) or (a is not None and abs(a - b) > 1e-9 * max(1, abs(b))):
                mismatches.append((tx_id, name, a, b))
    assert not mismatches, f"{len(mismatches)} differences, e.g. {mismatches[:5]}"


def test_labels_are_learned(system: System) -> None:
    scored_ids = set(by_id(system.read("scored")))
    labels = [lb for lb in LABELS if lb["transaction_id"] in scored_ids]
    assert len(labels) > 500
    system.publish("labels", [(str(lb["transaction_id"]).encode(), orjson.dumps(lb)) for lb in labels])
    deadline = time.monotonic() + 90
    learned = 0
    while time.monotonic() < deadline:
        learned = system.heartbeat().get("counters", {}).get("labels_learned", 0)
        if learned >= len(labels):
            break
        time.sleep(0.5)
    assert learned == len(labels), f"learned {learned} of {len(labels)} labels"
    registry = ModelRegistry(system.settings.registry_path, system.settings.hmac_key)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        champion = registry.champion()
        if champion is not None and champion.labels_learned > 0:
            break
        time.sleep(0.5)
    assert champion is not None and champion.labels_learned > 0, "no learned snapshot became champion"
    # the scorer switched to the learned champion: new transactions carry its version
    fresh = TXS[N_TX + N_KILL: N_TX + N_KILL + 100]
    system.publish("transactions", [(str(t["card_id"]).encode(), orjson.dumps(t)) for t in fresh])
    time.sleep(1.5)
    ids = {t["transaction_id"] for t in fresh}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events = [orjson.loads(r.value) for r in system.read("scored")]
        mine = [e for e in events if e["transaction_id"] in ids]
        if len({e["transaction_id"] for e in mine}) == len(ids):
            break
        time.sleep(0.2)
    assert {e["model_version"] for e in mine[-20:]} - {"v1"}, "still scoring with the unfitted v1"
    # a clean stop (SIGTERM) snapshots what the learner learned since its last snapshot: the
    # labels' offsets are committed at the stop, so a restart would not learn them again
    learner = system.heartbeat()["model"]["learner"]["champion"]
    system.kill(signal.SIGTERM)
    saved = registry.champion()
    assert saved is not None and saved.labels_learned == learner["labels_learned"], (
        f"the registry's champion {saved} has not what the learner learned: {learner}")
    system.start()  # the next learner starts from it
    assert system.proc is not None
    deadline = time.monotonic() + 90
    beat = system.heartbeat()
    while beat.get("pid") != system.proc.pid:
        assert time.monotonic() < deadline, f"the restarted worker never beat:\n{system.log()}"
        time.sleep(0.5)
        beat = system.heartbeat()
    assert beat["model"]["learner"]["champion"]["labels_learned"] == saved.labels_learned

