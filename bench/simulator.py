"""Simulator and replay throughput: generation in Python, and publishing to Kafka flat out.

    python bench/simulator.py [--days 30] [--publish 100000] [--repeat 3]

Uses the Kafka at FRAUDSTREAM_KAFKA_BOOTSTRAP, or starts an embedded one in a temporary folder (and
stops it). Prints a table and writes bench/results/simulator.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fraudstream.settings import Settings  # noqa: E402
from stream.simulator import SimConfig, Simulator  # noqa: E402


def _best(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "best": max(values), "runs": len(values)}


def bench_generation(days: float, repeat: int) -> dict[str, object]:
    config = SimConfig()
    t0 = time.perf_counter()
    sim = Simulator(config)
    world_s = time.perf_counter() - t0
    tx_rates, ev_rates, frame_rates = [], [], []
    n_tx = n_ev = 0
    for _ in range(repeat):
        n_tx = n_ev = 0
        t0 = time.perf_counter()
        for e in sim.events(days=days):
            n_ev += 1
            if e.kind == "transaction":
                n_tx += 1
        dt = time.perf_counter() - t0
        tx_rates.append(n_tx / dt)
        ev_rates.append(n_ev / dt)
        t0 = time.perf_counter()
        tx, _ = sim.frames(days=days)
        frame_rates.append(len(tx) / (time.perf_counter() - t0))
    return {
        "config": {"cards": config.cards, "terminals": config.terminals, "days": days},
        "world_build_s": round(world_s, 3),
        "transactions": n_tx,
        "events": n_ev,
        "events_tx_per_s": _best(tx_rates),
        "events_all_per_s": _best(ev_rates),
        "frames_tx_per_s": _best(frame_rates),
    }


def bench_publish(bootstrap: str, count: int) -> dict[str, object]:
    import orjson

    from stream.publisher import Publisher
    from stream.replay import SIMULATOR, replay
    from stream.simulate import run_simulation, write_simulation
    from stream.topics import ensure_topics

    home = Path(tempfile.mkdtemp(prefix="fs-bench-"))
    out: dict[str, object] = {}

    # baseline: the same record sent over and over through the same producer wrapper
    settings = Settings(_env_file=None, home=home, kafka_bootstrap=bootstrap,
                        topic_prefix=f"b{uuid.uuid4().hex[:8]}-")
    ensure_topics(settings, bootstrap)
    record = next(iter(Simulator(SimConfig()).events(count=1))).record
    value = orjson.dumps(record)
    pub = Publisher(settings, bootstrap)
    t0 = time.perf_counter()
    for i in range(count):
        pub._send(pub.tx_topic, f"C{i % 5000:06d}", value)
    pub.flush()
    dt = time.perf_counter() - t0
    pub.close()
    out["producer_baseline_msg_per_s"] = round(count / dt)

    # the simulator into Kafka, flat out, live clock (timestamps rewritten at publish)
    settings = Settings(_env_file=None, home=home, kafka_bootstrap=bootstrap,
                        topic_prefix=f"b{uuid.uuid4().hex[:8]}-")
    stats = run_simulation(settings, 0, threading.Event(), count=count, clock="now")
    out["simulate_flat_out"] = {
        "transactions": stats.transactions, "labels": stats.labels,
        "elapsed_s": round(stats.elapsed_s, 2),
        "tx_per_s": round(stats.transactions / stats.elapsed_s),
        "msg_per_s": round((stats.transactions + stats.labels) / stats.elapsed_s),
    }

    # the replay of a simulated file, flat out (every transaction has a label)
    path = home / "history.parquet"
    write_simulation(SimConfig(), path, count=count // 2)
    settings = Settings(_env_file=None, home=home, kafka_bootstrap=bootstrap,
                        topic_prefix=f"b{uuid.uuid4().hex[:8]}-")
    report = replay(settings, path, SIMULATOR, speed=0, label_delay="7d", progress=False)
    out["replay_flat_out"] = {
        "transactions": report.transactions, "labels": report.labels,
        "elapsed_s_with_load": round(report.elapsed_s, 2), "msg_per_s": round(report.rate),
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--publish", type=int, default=100_000, help="transactions to publish")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-kafka", action="store_true")
    args = parser.parse_args()

    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
    }
    try:
        import kafka

        results["machine"]["kafka_python"] = kafka.__version__  # type: ignore[index]
        import crc32c  # noqa: F401

        results["machine"]["crc32c"] = True  # type: ignore[index]
    except ImportError:
        results["machine"]["crc32c"] = False  # type: ignore[index]

    gen = bench_generation(args.days, args.repeat)
    results["generation"] = gen
    rows = [
        ("generate events (tx/s)", f"{gen['events_tx_per_s']['median']:,.0f}"),  # type: ignore[index]
        ("generate events (tx + labels /s)", f"{gen['events_all_per_s']['median']:,.0f}"),  # type: ignore[index]
        ("generate frames (tx/s)", f"{gen['frames_tx_per_s']['median']:,.0f}"),  # type: ignore[index]
        ("world build (s)", f"{gen['world_build_s']:.2f}"),
    ]

    if not args.no_kafka:
        svc = None
        bootstrap = os.environ.get("FRAUDSTREAM_KAFKA_BOOTSTRAP")
        if not bootstrap:
            from stream.services import Services, free_port

            svc = Services(Settings(_env_file=None, home=Path(tempfile.mkdtemp(prefix="fs-kafka-")),
                                    cache_dir=ROOT / ".cache", kafka_port=free_port(),
                                    kafka_controller_port=free_port()), log=lambda m: None)
            bootstrap = svc.up(kafka=True, redis=False, timeout=180)["kafka"]
        try:
            pub = bench_publish(bootstrap, args.publish)
        finally:
            if svc is not None:
                svc.down()
        results["publish"] = pub
        sim, rep = pub["simulate_flat_out"], pub["replay_flat_out"]
        rows += [
            ("kafka-python baseline, same record (msg/s)", f"{pub['producer_baseline_msg_per_s']:,}"),
            ("simulate -> Kafka flat out (tx/s)", f"{sim['tx_per_s']:,}"),  # type: ignore[index]
            ("simulate -> Kafka flat out (msg/s)", f"{sim['msg_per_s']:,}"),  # type: ignore[index]
            ("replay -> Kafka flat out (msg/s, incl. load)", f"{rep['msg_per_s']:,}"),  # type: ignore[index]
        ]

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value:>10}")
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]  # type: ignore[index]
    out = ROOT / "bench" / "results" / "simulator.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
