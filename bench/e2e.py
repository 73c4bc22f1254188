"""End-to-end latency and throughput of the scoring worker, against a pass-through baseline.

For each target (the bare pass-through Faust agent of bench/passthrough.py, then the fraudstream
scoring worker), in the same run, on the same embedded Kafka and Redis:

* paced phases at 500, 1,000 and 2,000 transactions/s: end-to-end latency p50/p95/p99, from the
  producer's send call to the consumer's receipt of the scored event (one clock: same machine),
  the rate achieved, and the worker's CPU (share of one core);
* a flat-out phase: as many transactions as the producer can send; sustained throughput is the
  number of scored events over the time between the first and the last one received.

Transactions come from the simulator (realistic cards, terminals and fraud), re-stamped with the
current time. Prints a table and writes bench/results/e2e.json.

    .venv/bin/python bench/e2e.py [--rates 500,1000,2000] [--seconds 15] [--flat 40000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fraudstream.settings import Settings  # noqa: E402
from stream.services import Services, free_port  # noqa: E402


def transactions(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """``n`` simulated transactions (the simulator's records, without labels)."""
    from stream.simulator import SimConfig, Simulator

    sim = Simulator(SimConfig(seed=seed, cards=5000, terminals=10000))
    return [e.record for e in sim.events(count=n) if e.kind == "transaction"][:n]


class Collector(threading.Thread):
    """Reads the scored topic from its start; records the receipt time of each transaction id."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__(daemon=True, name="collector")
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      fetch_max_wait_ms=5, max_poll_records=5000)
        self.consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        self.consumer.seek_to_beginning()
        self.received: dict[str, float] = {}
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            batches = self.consumer.poll(timeout_ms=50)
            now = time.time()
            for records in batches.values():
                for r in records:
                    tx_id = orjson.loads(r.value)["transaction_id"]
                    self.received.setdefault(tx_id, now)
        self.consumer.close()

    def wait_for(self, ids: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(i in self.received for i in ids[-50:]) and all(i in self.received for i in ids):
                return True
            time.sleep(0.05)
        return False


def send(producer: KafkaProducer, topic: str, records: list[dict[str, Any]], rate: float | None,
         tag: str) -> dict[str, float]:
    """Send ``records`` paced at ``rate``/s (None: flat out); id -> send time."""
    sent: dict[str, float] = {}
    start = time.perf_counter()
    wall0 = time.time()
    for i, rec in enumerate(records):
        if rate:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        tx_id = f"{tag}-{i}"
        rec = {**rec, "transaction_id": tx_id, "timestamp": datetime.now(UTC).isoformat()}
        t = wall0 + (time.perf_counter() - start)
        producer.send(topic, key=str(rec["card_id"]).encode(), value=orjson.dumps(rec))
        sent[tx_id] = t
    producer.flush()
    return sent


def phase(name: str, target: str, producer: KafkaProducer, collector: Collector, topic: str,
          records: list[dict[str, Any]], rate: float | None, proc: psutil.Process) -> dict[str, Any]:
    tag = f"{target}-{name}-{uuid.uuid4().hex[:6]}"
    cpu0 = proc.cpu_times()
    t0 = time.time()
    sent = send(producer, topic, records, rate, tag)
    ok = collector.wait_for(list(sent), timeout=120)
    t1 = time.time()
    cpu1 = proc.cpu_times()
    got = [(collector.received[i], sent[i]) for i in sent if i in collector.received]
    lat = np.array([(r - s) * 1000 for r, s in got])
    recv_times = np.array(sorted(r for r, _ in got))
    span = float(recv_times[-1] - recv_times[0]) if len(recv_times) > 1 else 0.0
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / max(1e-9, t1 - t0)
    return {
        "target": target,
        "phase": name,
        "offered_rate": rate,
        "sent": len(sent),
        "received": len(got),
        "complete": ok,
        "send_rate": len(sent) / max(1e-9, max(sent.values()) - min(sent.values())),
        "throughput": (len(got) - 1) / span if span > 0 else 0.0,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
        "p95_ms": float(np.percentile(lat, 95)) if len(lat) else None,
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
        "max_ms": float(lat.max()) if len(lat) else None,
        "worker_cpu_cores": cpu,
    }


def run_target(target: str, settings: Settings, records: list[dict[str, Any]], rates: list[float],
               seconds: float, flat: int, log_dir: Path) -> list[dict[str, Any]]:
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    s = settings.model_copy(update={"topic_prefix": prefix, "key_prefix": prefix.rstrip("-"),
                                    "app_id": f"bench-{prefix.rstrip('-')}"})
    from stream.topics import ensure_topics

    ensure_topics(s, s.kafka_bootstrap or "")
    env = {**os.environ, "FRAUDSTREAM_KAFKA_BOOTSTRAP": s.kafka_bootstrap or "",
           "FRAUDSTREAM_REDIS_URL": s.redis_url or "", "FRAUDSTREAM_TOPIC_PREFIX": prefix,
           "FRAUDSTREAM_KEY_PREFIX": s.key_prefix, "FRAUDSTREAM_APP_ID": s.app_id,
           "FRAUDSTREAM_HOME": str(s.home), "FRAUDSTREAM_LEARN": "false",
           "PYTHONPATH": str(ROOT)}
    if target == "passthrough":
        cmd = [sys.executable, str(ROOT / "bench" / "passthrough.py")]
    else:
        cmd = [sys.executable, "-m", "fraudstream", "worker", "--role", "scorer"]
    log = open(log_dir / f"{target}.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True, cwd=ROOT)
    collector = Collector(s.kafka_bootstrap or "", s.topic("scored"), s.partitions)
    collector.start()
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=1, acks=1)
    topic = s.topic("transactions")
    results = []
    try:
        proc = psutil.Process(worker.pid)
        warm = send(producer, topic, records[:300], 200.0, f"{target}-warmup")
        if not collector.wait_for(list(warm), timeout=120):
            raise RuntimeError(f"{target}: the worker did not answer; see {log_dir / (target + '.log')}")
        offset = 300
        for rate in rates:
            n = int(rate * seconds)
            chunk = records[offset: offset + n]
            offset += n
            r = phase(f"{int(rate)}/s", target, producer, collector, topic, chunk, rate, proc)
            results.append(r)
            print(f"  {target:<12} {r['phase']:>8}: p50 {r['p50_ms']:.1f} ms  p99 "
                  f"{r['p99_ms']:.1f} ms  cpu {r['worker_cpu_cores']:.2f}", flush=True)
            time.sleep(1.0)
        chunk = records[offset: offset + flat]
        r = phase("flat-out", target, producer, collector, topic, chunk, None, proc)
        results.append(r)
        print(f"  {target:<12} flat-out: {r['throughput']:.0f} tx/s sustained, p99 "
              f"{r['p99_ms']:.0f} ms", flush=True)
    finally:
        producer.close()
        collector.stop_flag.set()
        collector.join(timeout=5)
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        log.close()
    return results


def table(results: list[dict[str, Any]]) -> str:
    by = {(r["target"], r["phase"]): r for r in results}
    phases = [r["phase"] for r in results if r["target"] == "fraudstream"]
    lines = [
        "| load | fraudstream p50 / p95 / p99 (ms) | throughput (tx/s) | worker CPU (cores) "
        "| pass-through p50 / p99 (ms) | pass-through throughput | p99 ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for ph in phases:
        f, p = by[("fraudstream", ph)], by.get(("passthrough", ph))
        ratio = f"{f['p99_ms'] / p['p99_ms']:.2f}x" if p and p["p99_ms"] else "-"
        lines.append(
            f"| {ph} | {f['p50_ms']:.1f} / {f['p95_ms']:.1f} / {f['p99_ms']:.1f} "
            f"| {f['throughput']:.0f} | {f['worker_cpu_cores']:.2f} "
            f"| {p['p50_ms']:.1f} / {p['p99_ms']:.1f} | {p['throughput']:.0f} | {ratio} |"
            if p else f"| {ph} | {f['p50_ms']:.1f} / {f['p95_ms']:.1f} / {f['p99_ms']:.1f} "
            f"| {f['throughput']:.0f} | {f['worker_cpu_cores']:.2f} | - | - | - |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="500,1000,2000")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each paced phase")
    ap.add_argument("--flat", type=int, default=40000, help="transactions in the flat-out phase")
    ap.add_argument("--targets", default="passthrough,fraudstream")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "e2e.json"))
    args = ap.parse_args()
    load_start = os.getloadavg()
    rates = [float(r) for r in args.rates.split(",") if r]
    home = Path(tempfile.mkdtemp(prefix="fs-bench-"))
    base = Settings(_env_file=None, home=home, cache_dir=ROOT / ".cache", kafka_port=free_port(),
                    kafka_controller_port=free_port(), redis_port=free_port(), partitions=4)
    svc = None
    if os.environ.get("FRAUDSTREAM_KAFKA_BOOTSTRAP") and os.environ.get("FRAUDSTREAM_REDIS_URL"):
        base = base.model_copy(update={"kafka_bootstrap": os.environ["FRAUDSTREAM_KAFKA_BOOTSTRAP"],
                                       "redis_url": os.environ["FRAUDSTREAM_REDIS_URL"]})
    else:
        svc = Services(base, log=lambda m: print(m, file=sys.stderr))
        addr = svc.up()
        base = base.model_copy(update={"kafka_bootstrap": addr["kafka"], "redis_url": addr["redis"]})
    need = int(sum(rates) * args.seconds) + args.flat + 400
    results: list[dict[str, Any]] = []
    try:
        print(f"generating {need:,} simulated transactions ...", flush=True)
        records = transactions(need)
        for target in args.targets.split(","):
            print(f"{target}:", flush=True)
            results += run_target(target, base, records, rates, args.seconds, args.flat, home)
    finally:
        if svc is not None:
            svc.down()
    print()
    print(table(results))
    out = {
        "bench": "e2e",
        "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load_average_at_start": load_start,
                    "load_average_at_end": os.getloadavg()},
        "settings": {"partitions": base.partitions, "batch_max": base.batch_max,
                     "batch_within_ms": base.batch_within_ms,
                     "fetch_max_wait_ms": base.fetch_max_wait_ms, "feature_set": base.feature_set,
                     "model": base.model},
        "phase_seconds": args.seconds,
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
