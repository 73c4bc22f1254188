"""What /status and /metrics cost: collect_status and the Prometheus exposition, by keyspace size.

    python bench/status.py [--workers 8] [--keys 0,200000] [--repeat 200]

Starts an embedded redis-server in a temporary folder (stops it after), writes the heartbeats of
``--workers`` workers (scorers with 5,000 scored events each and a learner), fills the keyspace
with ``--keys`` feature-like keys, and times, per keyspace size: ``collect_status`` (what /status
and the dashboard's sampler call every second), the /metrics exposition on top of it, and, for
comparison, finding the heartbeats by SCAN over the keyspace (how /status found them before the
workers' sorted set). Kafka is left out (its lag is read in a thread and cached: /status never
waits on it). Prints a table and writes bench/results/status.json with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from api.prometheus import build_families, exposition  # noqa: E402
from api.status import collect_status_and_workers  # noqa: E402
from fraudstream.settings import Settings  # noqa: E402
from stream.runtime import Runtime  # noqa: E402
from stream.services import Services, free_port  # noqa: E402


def _ms(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"p50": round(statistics.median(values) * 1000, 3),
            "p99": round(values[int(0.99 * (len(values) - 1))] * 1000, 3)}


async def run(settings: Settings, workers: int, keys: list[int], repeat: int) -> list[dict[str, object]]:
    client = aioredis.Redis.from_url(settings.redis_url)
    runtimes = []
    for i in range(workers):
        rt = Runtime(settings, "learner" if i == 0 else "scorer")
        rt.metrics.worker_id = f"bench-{i}"
        rt.redis = client
        for j in range(5000 if i else 0):
            rt.metrics.scored(SimpleNamespace(score=(j % 97) / 97, latency_ms=1 + j % 50,
                                              decision="approve"), duplicate=False)
        await rt.beat()
        runtimes.append(rt)
    rows = []
    filled = 0
    for target in keys:
        pipe = client.pipeline(transaction=False)
        for k in range(filled, target):
            pipe.set(f"{settings.key_prefix}:default:abc:tx:{k}", b"x")
            if len(pipe) >= 5000:
                await pipe.execute()
        await pipe.execute()
        filled = max(filled, target)
        status_t, metrics_t, scan_t = [], [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            status, entries = await collect_status_and_workers(client, settings)
            t1 = time.perf_counter()
            exposition(build_families(status, entries))
            t2 = time.perf_counter()
            status_t.append(t1 - t0)
            metrics_t.append(t2 - t0)
        for _ in range(max(3, repeat // 20)):
            t0 = time.perf_counter()
            found = [k async for k in client.scan_iter(match=f"{settings.key_prefix}:worker:*", count=200)]
            scan_t.append(time.perf_counter() - t0)
        assert len(found) == workers and len(status["components"]["workers"]) == workers
        rows.append({"keys": await client.dbsize(), "workers": workers,
                     "status_ms": _ms(status_t), "metrics_ms": _ms(metrics_t),
                     "scan_for_heartbeats_ms": _ms(scan_t)})
    await client.aclose()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--keys", default="0,200000")
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(_env_file=None, home=Path(tmp), redis_port=free_port())
        svc = Services(base, log=lambda m: None)
        url = svc.up(timeout=60, kafka=False)["redis"]
        try:
            settings = base.model_copy(update={"redis_url": url, "key_prefix": "b" + uuid.uuid4().hex[:6]})
            load_before = os.getloadavg()
            rows = asyncio.run(run(settings, args.workers, [int(k) for k in args.keys.split(",")],
                                   args.repeat))
        finally:
            svc.down()
    print(f"{'keys':>9} {'workers':>7} {'/status p50':>12} {'p99':>8} {'/metrics p50':>13} {'p99':>8} "
          f"{'SCAN p50':>9} {'p99':>8}   (ms)")
    for r in rows:
        s, m, c = r["status_ms"], r["metrics_ms"], r["scan_for_heartbeats_ms"]  # type: ignore[index]
        print(f"{r['keys']:>9,} {r['workers']:>7} {s['p50']:>12} {s['p99']:>8} {m['p50']:>13} "  # type: ignore[index]
              f"{m['p99']:>8} {c['p50']:>9} {c['p99']:>8}")
    out = {"rows": rows, "repeat": args.repeat, "loadavg_before": load_before,
           "loadavg_after": os.getloadavg(), "cpus": os.cpu_count(), "python": platform.python_version()}
    path = ROOT / "bench" / "results" / "status.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"load average {out['loadavg_after']}; wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
