"""Benchmark of the API's synchronous ``/score``; prints a table, writes ``bench/results/api.json``.

    python bench/api.py [--requests 2000] [--quick]

On a private redis-server (free port) and a uvicorn process of the API (one worker, as
deployed by ``fraudstream api``), with a logreg champion in a fresh registry:

1. **idle**: ``--requests`` sequential ``POST /score`` of distinct transactions over 500 cards
   (one HTTP keep-alive connection, httpx): latency seen by the client p50/p99/max, and the
   event's own ``latency_ms`` (from the request's arrival in the route: validation, features in
   Redis, model);
2. **during an EDA job**: the same, for as long as ``/eda`` explores a generated 300,000-row file
   in the API's job thread (jobs share the process and its GIL with the event loop);
3. **duplicates**: the same ids again (stored events returned; nothing recomputed, so their
   ``latency_ms`` is the first time's).

Figures depend on the machine's load: ``os.getloadavg()`` is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fraudstream.settings import Settings  # noqa: E402
from stream.services import Services, free_port  # noqa: E402

KEY = "bench-key"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def champion(settings: Settings) -> str:
    from models.registry import ModelRegistry
    from models.zoo import build_model

    rnd = random.Random(3)
    model = build_model("logreg")
    for _ in range(2000):
        amount = rnd.uniform(1, 400)
        model.learn_one({"amount": amount, "card_tx_count_24h": float(rnd.randint(1, 9))},
                        amount > 150)
    reg = ModelRegistry(settings.registry_path, settings.hmac_key)
    meta = reg.save(model, name=model.name, params=model.params, kind="batch", threshold=0.5)
    reg.promote(meta.version)
    return meta.version


def transactions(n: int, offset: int = 0, cards: str = "c") -> list[dict[str, Any]]:
    rng = np.random.default_rng(11 + offset)
    out = []
    for i in range(n):
        out.append({"transaction_id": f"{cards}{offset + i}", "card_id": f"{cards}{rng.integers(500)}",
                    "terminal_id": f"t{rng.integers(2000)}",
                    "amount": round(float(rng.gamma(2.0, 30.0)), 2),
                    "timestamp": (T0 + timedelta(seconds=30 * (offset + i))).isoformat(),
                    "latitude": 48.0 + float(rng.random()), "longitude": 2.0 + float(rng.random())})
    return out


def run(client: httpx.Client, txs: list[dict[str, Any]],
        while_job: str | None = None) -> dict[str, Any]:
    """Score ``txs`` one after the other (only while job ``while_job`` runs, when given)."""
    wall, inner = [], []
    started = time.perf_counter()
    for i, tx in enumerate(txs):
        if while_job and i % 20 == 0 and \
                client.get(f"/jobs/{while_job}").json()["status"] != "running":
            break
        t = time.perf_counter()
        r = client.post("/score", json=tx)
        wall.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
        inner.append(r.json()["latency_ms"])
    total = time.perf_counter() - started
    w = np.array(wall)
    return {"requests": len(wall), "per_s": round(len(wall) / total, 1),
            "client_ms_p50": round(float(np.percentile(w, 50)), 3),
            "client_ms_p99": round(float(np.percentile(w, 99)), 3),
            "client_ms_max": round(float(w.max()), 3),
            "event_ms_p50": round(float(np.percentile(inner, 50)), 3),
            "event_ms_p99": round(float(np.percentile(inner, 99)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="300 requests, smaller EDA file")
    args = parser.parse_args()
    n = 300 if args.quick else args.requests
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        base = Settings(_env_file=None, home=home, redis_port=free_port())
        services = Services(base, log=lambda m: None)
        addresses = services.up(timeout=60, kafka=False)
        settings = base.model_copy(update={"redis_url": addresses["redis"], "api_key": KEY})
        version = champion(settings)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FRAUDSTREAM_HOME": str(home),
               "FRAUDSTREAM_REDIS_URL": addresses["redis"], "FRAUDSTREAM_API_KEY": KEY}
        api = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory",
                                "api.main:app_from_env", "--port", str(port), "--log-level",
                                "warning"], env=env, cwd=tmp)
        results: dict[str, Any] = {}
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY},
                                  timeout=30)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the API did not start")
                time.sleep(0.2)
            run(client, transactions(50, cards="w"))  # warm up: champion loaded
            results["idle"] = run(client, transactions(n))

            sys.path.insert(0, str(ROOT / "tests" / "integration"))
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from conftest import write_transactions  # type: ignore[import-not-found]

            rows = 100_000 if args.quick else 300_000
            big = write_transactions(home / "big.csv", rows, seed=5)
            job = client.post("/eda", json={"path": str(big), "mapping": {"preset": "handbook"}})
            job_id = job.json()["id"]
            while client.get(f"/jobs/{job_id}").json()["status"] == "queued":
                time.sleep(0.05)
            results["during_eda_job"] = run(client, transactions(n, offset=n), while_job=job_id)
            while client.get(f"/jobs/{job_id}").json()["status"] == "running":
                time.sleep(0.2)
            results["duplicates"] = run(client, transactions(n))
            client.close()
        finally:
            api.terminate()
            api.wait(20)
            services.down()
    out = {"benchmark": "api /score", "champion": version, "requests": n,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "loadavg_before": [round(x, 2) for x in load_before],
                       "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
           "results": results, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    print(f"{'case':<16} {'n':>5} {'req/s':>7} {'client p50':>10} {'p99':>8} {'max':>8} "
          f"{'event p50':>10} {'p99':>7}  (ms)")
    for case, r in results.items():
        print(f"{case:<16} {r['requests']:>5} {r['per_s']:>7} {r['client_ms_p50']:>10} {r['client_ms_p99']:>8} "
              f"{r['client_ms_max']:>8} {r['event_ms_p50']:>10} {r['event_ms_p99']:>7}")
    print(f"load average before {out['machine']['loadavg_before']}, after "
          f"{out['machine']['loadavg_after']}")
    target = ROOT / "bench" / "results" / "api.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
