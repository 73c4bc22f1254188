"""The scoring path in process, without Kafka: what one transaction costs the worker and Redis.

    .venv/bin/python bench/scoring.py [--warm 12000] [--n 10000] [--batch 100]

Starts a private redis-server (free port, temporary folder), builds the worker's
:class:`stream.runtime.Runtime` (role scorer: the online store and the registry's champion), warms
the store with ``--warm`` simulated transactions, then times :meth:`stream.scoring.Scorer.score`
on the next ``--n`` in batches of ``--batch``: wall time and the process's CPU time per
transaction (the rest of the wall time is mostly redis-server running the feature function).
Prints a line and writes ``bench/results/scoring.json`` with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fraudstream.settings import Settings  # noqa: E402
from stream.services import Services, free_port  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm", type=int, default=12000)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scoring.json"))
    args = ap.parse_args(argv)
    from stream.runtime import Runtime
    from stream.schemas import Transaction
    from stream.simulator import SimConfig, Simulator

    load_start = os.getloadavg()
    s = Settings(_env_file=None, home=Path(tempfile.mkdtemp(prefix="fs-scoring-")),
                 redis_port=free_port())
    svc = Services(s, log=lambda m: None)
    svc.up(kafka=False)
    try:
        sim = Simulator(SimConfig(seed=3, cards=5000, terminals=10000))
        need = args.warm + args.n
        recs = [e.record for e in sim.events(count=need + 100) if e.kind == "transaction"][:need]
        txs = [Transaction.model_validate(r) for r in recs]

        async def run() -> tuple[float, float]:
            rt = Runtime(s, "scorer")
            await rt.start()
            try:
                for i in range(0, args.warm, args.batch):
                    await rt.scorer.score(txs[i:i + args.batch])
                t0, c0 = time.perf_counter(), time.process_time()
                for i in range(args.warm, need, args.batch):
                    await rt.scorer.score(txs[i:i + args.batch])
                return time.perf_counter() - t0, time.process_time() - c0
            finally:
                await rt.close()

        wall, cpu = asyncio.run(run())
    finally:
        svc.down()
    out = {
        "bench": "scoring", "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": load_start, "load_average_at_end": os.getloadavg()},
        "params": vars(args) | {"feature_set": s.feature_set, "model": s.model},
        "wall_us_per_tx": round(wall / args.n * 1e6, 1),
        "worker_cpu_us_per_tx": round(cpu / args.n * 1e6, 1),
    }
    print(f"batches of {args.batch}: wall {out['wall_us_per_tx']} us/tx, worker CPU "
          f"{out['worker_cpu_us_per_tx']} us/tx (load {load_start[0]:.1f})")
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
