"""Micro-bench of the model side: µs per event for every zoo model, and the learner's costs.

For each model of the zoo, on handbook-shaped transactions (the 15 baseline features, synthetic
values, ~2 % fraud), after a warm-up: µs per event to score (``predict_proba_one``), to score and
learn a label (``predict_proba_one`` + ``learn_one``, prequential), to learn from an unlabelled
scored transaction (``observe_one``, unsupervised models), and per ``explain_one`` (reason codes);
the pickled size and the registry load time (verify + unpickle). Then the learner's own costs:
``OnlineLearner.learn`` per label (champion + one challenger), ``observe`` per transaction,
``ModelRegistry.champion_version()`` (what scorers poll), an ADWIN alarm detector update and a
rolling metrics update.

Each figure is the best of ``--repeat`` timed passes (the machine is shared). Prints a table and
writes ``bench/results/models.json``.

    PYTHONPATH=. python bench/models.py [--warmup 2000] [--events 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.drift import ConceptDriftMonitor  # noqa: E402
from models.learner import LearnerConfig, OnlineLearner  # noqa: E402
from models.metrics import RollingMetrics  # noqa: E402
from models.registry import ModelRegistry  # noqa: E402
from models.zoo import MODEL_NAMES, build_model  # noqa: E402


def transactions(n: int, seed: int = 0) -> list[tuple[dict[str, float | None], bool]]:
    """Handbook-shaped feature dicts (values synthetic), ~2 % fraud, 1 % of values missing."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.8, 0.9, n)
    cols: dict[str, np.ndarray] = {
        "TX_AMOUNT": amount,
        "TX_DURING_WEEKEND": (rng.random(n) < 0.28).astype(float),
        "TX_DURING_NIGHT": (rng.random(n) < 0.2).astype(float),
    }
    for d in (1, 7, 30):
        cols[f"CUSTOMER_ID_NB_TX_{d}DAY_WINDOW"] = rng.poisson(3 * d, n).astype(float)
        cols[f"CUSTOMER_ID_AVG_AMOUNT_{d}DAY_WINDOW"] = rng.lognormal(3.8, 0.5, n)
        cols[f"TERMINAL_ID_NB_TX_{d}DAY_WINDOW"] = rng.poisson(2 * d, n).astype(float)
        cols[f"TERMINAL_ID_RISK_{d}DAY_WINDOW"] = rng.beta(0.3, 20, n)
    risk = cols["TERMINAL_ID_RISK_7DAY_WINDOW"]
    y = (amount > 220) | (risk > 0.1) & (rng.random(n) < 0.5)
    names = list(cols)
    missing = rng.random((n, len(names))) < 0.01
    out = []
    for i in range(n):
        x = {f: (None if missing[i, j] else float(cols[f][i])) for j, f in enumerate(names)}
        out.append((x, bool(y[i])))
    return out


def best_us(fn: Callable[[], int], repeat: int) -> float:
    """Best µs per item over ``repeat`` runs of ``fn`` (which returns how many items it did)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter_ns()
        n = fn()
        best = min(best, (time.perf_counter_ns() - t) / 1000 / max(n, 1))
    return best


def bench_model(name: str, data: list, warmup: int, events: int, repeat: int, tmp: Path) -> dict[str, Any]:
    model = build_model(name)
    for x, y in data[:warmup]:
        model.predict_proba_one(x)
        model.learn_one(x, y)
        model.observe_one(x)
    probe = data[warmup : warmup + events]

    def score() -> int:
        for x, _ in probe:
            model.predict_proba_one(x)
        return len(probe)

    def explain() -> int:
        for x, _ in probe:
            model.explain_one(x)
        return len(probe)

    score_us = best_us(score, repeat)
    explain_us = best_us(explain, repeat)

    # learning changes the model: time one pass each on consecutive slices
    chunks = [data[warmup + events * (i + 1) : warmup + events * (i + 2)] for i in range(repeat)]
    learn_us = float("inf")
    observe_us = float("inf")
    for chunk in chunks:
        t = time.perf_counter_ns()
        for x, y in chunk:
            model.predict_proba_one(x)
            model.learn_one(x, y)
        learn_us = min(learn_us, (time.perf_counter_ns() - t) / 1000 / len(chunk))
        if model.unsupervised:
            t = time.perf_counter_ns()
            for x, _ in chunk:
                model.observe_one(x)
            observe_us = min(observe_us, (time.perf_counter_ns() - t) / 1000 / len(chunk))

    reg = ModelRegistry(tmp / name.replace("+", "_"), "bench-key")
    meta = reg.save(model, name=model.name, params=model.params)
    load_ms = best_us(lambda: (reg.load(meta.version), 1)[1], repeat) / 1000
    return {
        "model": name,
        "score_us": round(score_us, 1),
        "predict_learn_us": round(learn_us, 1),
        "observe_us": round(observe_us, 1) if model.unsupervised else None,
        "explain_us": round(explain_us, 1),
        "pickle_kb": round(meta.size_bytes / 1024, 1),
        "load_ms": round(load_ms, 2),
    }


def bench_learner(data: list, warmup: int, events: int, repeat: int, tmp: Path) -> dict[str, float]:
    reg = ModelRegistry(tmp / "learner", "bench-key")
    cfg = LearnerConfig(model="logreg", challengers=("hat",), drift_features=("TX_AMOUNT",),
                        snapshot_every_labels=10**9, snapshot_every_s=1e12)
    learner = OnlineLearner(reg, cfg, clock=lambda: 0.0)
    i = 0

    def learn(chunk: list) -> int:
        nonlocal i
        for x, y in chunk:
            i += 1
            learner.learn(x, y, transaction_id=str(i), card_id=f"c{i % 5000}",
                          event_time=1.5e9 + 20.0 * i)
        return len(chunk)

    learn(data[:warmup])
    learn_us = min(
        best_us(lambda c=data[warmup + events * k : warmup + events * (k + 1)]: learn(c), 1)
        for k in range(repeat)
    )

    def observe() -> int:
        for x, _ in data[:events]:
            learner.observe(x, 0.1)
        return events

    observe_us = best_us(observe, repeat)
    reg.save(learner.champion.model, name="logreg")
    reg.promote("v2")
    n = 20_000
    poll_us = best_us(lambda: [reg.champion_version() for _ in range(n)] and n, repeat)
    mon = ConceptDriftMonitor()
    rng = np.random.default_rng(1)
    ys = (rng.random(n) < 0.02).tolist()
    ps = rng.random(n).tolist()
    adwin_us = best_us(lambda: [mon.update(y, p) for y, p in zip(ys, ps, strict=True)] and n, repeat)
    rm = RollingMetrics(window=5000)
    metrics_us = best_us(
        lambda: [rm.update(y, p, card_id="c", event_time=1.5e9) for y, p in zip(ys, ps, strict=True)]
        and n,
        repeat,
    )
    t = time.perf_counter_ns()
    learner.maybe_snapshot(1e13)
    snapshot_ms = (time.perf_counter_ns() - t) / 1e6
    return {
        "learn_per_label_us (logreg champion + hat challenger)": round(learn_us, 1),
        "observe_per_tx_us": round(observe_us, 1),
        "champion_version_poll_us": round(poll_us, 2),
        "concept_drift_update_us": round(adwin_us, 2),
        "rolling_metrics_update_us": round(metrics_us, 2),
        "snapshot_ms (save champion + challenger, metrics)": round(snapshot_ms, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warmup", type=int, default=2000)
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--models", nargs="*", default=list(MODEL_NAMES))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "models.json")
    args = p.parse_args(argv)
    data = transactions(args.warmup + args.events * (args.repeat + 2))
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"{'model':<12} {'score':>8} {'pred+learn':>11} {'observe':>8} {'explain':>8} "
              f"{'pickle KB':>10} {'load ms':>8}   (µs per event unless stated)")
        for name in args.models:
            r = bench_model(name, data, args.warmup, args.events, args.repeat, tmp)
            rows.append(r)
            obs = "-" if r["observe_us"] is None else f"{r['observe_us']:.1f}"
            print(f"{name:<12} {r['score_us']:>8.1f} {r['predict_learn_us']:>11.1f} {obs:>8} "
                  f"{r['explain_us']:>8.1f} {r['pickle_kb']:>10.1f} {r['load_ms']:>8.2f}",
                  flush=True)
        learner = bench_learner(data, args.warmup, args.events, args.repeat, tmp)
    print()
    for k, v in learner.items():
        print(f"{k:<55} {v}")
    result = {
        "bench": "models",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "platform": platform.platform()},
        "setup": {"features": 15, "warmup": args.warmup, "events": args.events, "repeat": args.repeat,
                  "data": "synthetic, handbook-shaped (15 baseline features), ~2% fraud, 1% missing"},
        "models": rows,
        "learner": learner,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
