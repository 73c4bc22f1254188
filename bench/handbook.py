"""The Fraud Detection Handbook's protocol on its simulated data: our models against its table.

    PYTHONPATH=. python bench/handbook.py [PATH] [--trials 20] [--folds 2] [--quick]

Protocol (``../shared/data/fdh/README.md``): train on 2018-07-25 .. 07-31, skip 7 days (label
delay), test on 2018-08-08 .. 08-14; cards known to be compromised (a fraud in training, or on a
day up to the test day minus the delay minus one) are left out of each test day. The test set must
hold 58,264 transactions and 385 frauds (checked; the run stops otherwise). Metrics: ROC AUC,
average precision, card precision@100 (:mod:`models.metrics`), plus our operating figures (the
threshold chosen on the last quarter of the training week for FPR <= 0.1 %).

Sections (each row says which):

- ``batch-15``: the published protocol, the 15 handbook features (the ``handbook`` feature set,
  computed by the offline twin): scikit-learn, XGBoost, LightGBM with default parameters, then
  tuned ones. Tuning never looks at the test: Bayesian search (Optuna TPE) judged by the mean
  average precision over ``--folds`` validation splits of the same shape moved back by one week
  each (train 07-11 .. 07-17 | 7 days | validation 07-25 .. 07-31, then one week earlier), the
  handbook's prequential model selection; the best configuration is then trained on the real
  training week and tested once.
- ``river-15``: River models of the zoo on the same split: they learn the training week in event
  order (predicting before learning), then are frozen.
- ``prequential-15``: streaming with the 7-day label delay, from 2018-07-25 to the end of the test:
  every transaction is scored before anything new is learned, a label arrives 7 days after its
  transaction; River models learn one label at a time; batch models are refitted every day on the
  labels due by then (sliding 7-day window; the first fit is the holdout fit); the tuned LightGBM
  once more with a 28-day window of labelled history (a streaming system keeps its history).
- ``batch-rich``: the same protocol with richer features: the 15 handbook features plus the 32 of
  our ``default`` feature set computed on the same data (card amount z-score and ratio, card
  velocity at 10 min / 1 h / 24 h, card x terminal history, terminal activity and label risk with a
  1-day shift that only sees labels older than 7 days, ...). Not comparable to the published table
  (which uses 15 features): reported apart.

Writes ``bench/results/handbook.json`` and the table between the ``handbook`` markers in
``bench/README.md``. Every figure is measured by this run; the published table is quoted from the
data set's README for comparison. The load average is recorded with each row (2 shared cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.columns import HANDBOOK, read_frame  # noqa: E402
from fraudstream.settings import Settings  # noqa: E402
from models.data import LabelledData, labelled_from_frame  # noqa: E402
from models.training import ModelSpec, ProtocolOptions, evaluate_data  # noqa: E402
from models.tuning import tune_data  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "fdh" / "transactions_raw.csv.gz"
RESULTS = ROOT / "bench" / "results" / "handbook.json"
README = ROOT / "bench" / "README.md"

#: Rows before this are not needed: the longest window is 30 days behind a 7-day delay, and the
#: earliest validation fold starts 2018-07-04.
HISTORY_START = "2018-05-15"
TRAIN_START, TRAIN_DAYS, TEST_DAYS, DELAY = "2018-07-25", 7, 7, "7d"
EXPECTED_TEST = (58_264, 385)

#: The handbook's published table (shared/data/fdh/README.md), quoted for comparison.
PUBLISHED = [
    {"model": "logistic regression", "roc_auc": 0.871, "average_precision": 0.606,
     "card_precision_at_100": 0.291},
    {"model": "decision tree, depth 2", "roc_auc": 0.763, "average_precision": 0.496,
     "card_precision_at_100": 0.241},
    {"model": "random forest", "roc_auc": 0.867, "average_precision": 0.658,
     "card_precision_at_100": 0.287},
    {"model": "XGBoost", "roc_auc": 0.862, "average_precision": 0.639,
     "card_precision_at_100": 0.273},
]
PUBLISHED_BEST = {"roc_auc": 0.871, "average_precision": 0.687, "card_precision_at_100": 0.303}

#: Search spaces of the tuned boosters (Optuna TPE; ranges, not grids).
SPACES: dict[str, dict[str, Any]] = {
    "lgbm": {"n_estimators": {"low": 100, "high": 800, "step": 50},
             "learning_rate": {"low": 0.01, "high": 0.2, "log": True},
             "num_leaves": {"low": 4, "high": 64, "log": True, "int": True},
             "min_child_samples": {"low": 10, "high": 400, "log": True, "int": True},
             "subsample": {"low": 0.5, "high": 1.0}, "colsample_bytree": {"low": 0.4, "high": 1.0},
             "reg_lambda": {"low": 0.001, "high": 30.0, "log": True}},
    "xgb": {"n_estimators": {"low": 100, "high": 800, "step": 50},
            "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
            "max_depth": {"low": 2, "high": 10},
            "min_child_weight": {"low": 0.5, "high": 50.0, "log": True},
            "subsample": {"low": 0.5, "high": 1.0}, "colsample_bytree": {"low": 0.4, "high": 1.0},
            "reg_lambda": {"low": 0.01, "high": 30.0, "log": True}},
}
THREADS = {"n_jobs": 2}


def load() -> float:
    return round(os.getloadavg()[0], 2)


def row(section: str, e: Any, seconds: float, load_before: float, **extra: Any) -> dict[str, Any]:
    m = e.metrics
    return {
        "section": section, "model": e.name, "name": e.model, "protocol": e.protocol,
        "params": {k: v for k, v in e.params.items() if k not in ("seed",)},
        "roc_auc": m["roc_auc"], "average_precision": m["average_precision"],
        "card_precision_at_100": m["card_precision_at_100"], "n": m["n"], "n_fraud": m["n_fraud"],
        "threshold": m["threshold"], "recall_at_threshold": m["recall_at_threshold"],
        "fpr_at_threshold": m["fpr_at_threshold"], "precision_at_threshold": m["precision"],
        "recall_at_max_fpr": m["recall_at_max_fpr"],
        "p99_latency_ms": e.latency.get("p99_latency_ms"),
        "criteria": e.criteria.status if e.criteria else None,
        "seconds": round(seconds, 1), "load_1min_before": load_before, "load_1min_after": load(),
        **extra,
    }


def evaluate(section: str, data: LabelledData, specs: list[ModelSpec], options: ProtocolOptions,
             settings: Settings, rows: list[dict[str, Any]], **extra: Any) -> None:
    for spec in specs:
        before, t0 = load(), time.perf_counter()
        report = evaluate_data(data, [spec], options, settings=settings)
        e = report.results[0]
        check_test_set(report.split)
        r = row(section, e, time.perf_counter() - t0, before, **extra)
        rows.append(r)
        print(f"  {section:<15} {e.name:<22} AUC {r['roc_auc']:.4f}  AP "
              f"{r['average_precision']:.4f}  CP@100 {r['card_precision_at_100']:.4f}  "
              f"({r['seconds']:.0f} s, load {before})", flush=True)


#: Selection of the final model: on the validation split (the handbook's first validation fold),
#: never on the test.
VALID = ProtocolOptions(train_start="2018-07-11", train_days=TRAIN_DAYS, test_days=TEST_DAYS,
                        exclude_known_compromised=True)
RF = ModelSpec(name="sk-rf", params={"n_estimators": 200, **THREADS}, label="sk-rf 200")


def tuned_spec(name: str, data: LabelledData, args: argparse.Namespace, settings: Settings,
               tuning: list[dict[str, Any]]) -> ModelSpec:
    t = tune(name, data, args.trials, args.folds, settings, args.seed)
    tuning.append(t)
    return ModelSpec(name=name, params=t["best_params"], label=f"{name} tuned")


def ensemble_spec(lgbm: ModelSpec) -> ModelSpec:
    """The mean of the tuned LightGBM and a 200-tree random forest (fixed a priori)."""
    return ModelSpec(name="ensemble", label=f"ensemble ({lgbm.display} + sk-rf 200)", params={
        "members": [{"name": "lgbm", "params": lgbm.params},
                    {"name": "sk-rf", "params": RF.params}]})


def select(data: LabelledData, candidates: list[ModelSpec], section: str, settings: Settings,
           runs: list[dict[str, Any]]) -> ModelSpec:
    """The candidate with the best validation average precision; its test row is marked."""
    scores = {}
    for spec in candidates:
        report = evaluate_data(data, [spec], VALID, settings=settings)
        scores[spec.display] = report.results[0].metrics["average_precision"]
    best = max(candidates, key=lambda c: scores[c.display])
    print(f"  selected on validation ({data.feature_set}): {best.display} "
          f"({', '.join(f'{k} {v:.4f}' for k, v in scores.items())})", flush=True)
    for r in runs:
        if r["section"] == section and r["model"] in scores:
            r["validation_average_precision"] = scores[r["model"]]
            r["selected"] = r["model"] == best.display
    return best


def check_test_set(split: dict[str, Any]) -> None:
    got = (split["evaluated_rows"], split["evaluated_frauds"])
    if got != EXPECTED_TEST:
        raise SystemExit(f"protocol check failed: the test set has {got[0]:,} transactions and "
                         f"{got[1]} frauds; the README says {EXPECTED_TEST[0]:,} and "
                         f"{EXPECTED_TEST[1]}")


def tune(name: str, data: LabelledData, trials: int, folds: int, settings: Settings,
         seed: int) -> dict[str, Any]:
    """Bayesian search on the validation folds (before the test); the best parameters."""
    valid = ProtocolOptions(train_start="2018-07-11", train_days=TRAIN_DAYS, test_days=TEST_DAYS,
                            exclude_known_compromised=True)
    before, t0 = load(), time.perf_counter()
    result = tune_data(data, name, space=SPACES[name], method="bayes", trials=trials,
                       options=valid, fixed=THREADS, settings=settings, seed=seed, folds=folds)
    best = result.best
    assert best is not None
    print(f"  tuned {name} on {data.feature_set}: validation AP {best.value:.4f} "
          f"({len(result.trials)} trials x {folds} folds, {time.perf_counter() - t0:.0f} s)",
          flush=True)
    return {"model": name, "features": data.feature_set, "trials": len(result.trials),
            "folds": folds, "validation_average_precision": best.value,
            "validation_per_fold": best.metrics.get("per_fold"),
            "best_params": result.best_params, "seconds": round(time.perf_counter() - t0, 1),
            "load_1min_before": before, "validation_splits": result.split["folds"],
            "top_trials": [t.to_dict() for t in result.ranked()[:5]]}


def rich(hb: LabelledData, default: LabelledData) -> LabelledData:
    """The 15 handbook features and the 32 of the default set, side by side."""
    X = pd.concat([hb.X, default.X], axis=1)
    return dataclasses.replace(hb, X=X, features=[str(c) for c in X.columns],
                               feature_set="handbook+default")


def markdown(result: dict[str, Any]) -> str:
    def f(v: Any, places: int = 3) -> str:
        return "-" if v is None else f"{v:.{places}f}"

    loads = [min(r["load_1min_before"] for r in result["runs"]),
             max(max(r["load_1min_before"], r["load_1min_after"]) for r in result["runs"])]

    def versus(value: float, metric: str) -> str:
        d = value - PUBLISHED_BEST[metric]
        return f"{'beats' if d > 0 else 'below'}, {d:+.3f}"

    lines = [
        "## Handbook benchmark (bench/handbook.py)",
        "",
        f"Protocol of `shared/data/fdh/README.md`: train {TRAIN_START} + {TRAIN_DAYS} days, "
        f"{DELAY} label delay, test 7 days, known compromised cards left out; test set "
        f"{result['protocol']['test_rows']:,} transactions, {result['protocol']['test_frauds']} "
        f"frauds (README: {EXPECTED_TEST[0]:,} / {EXPECTED_TEST[1]}: "
        f"{'match' if result['protocol']['matches_readme'] else 'MISMATCH'}). Measured "
        f"{result['when'][:16]} UTC on {result['machine']['cpus']} shared cores (load average "
        "per row in the JSON); `python bench/handbook.py` reruns it.",
        "",
        *([] if result.get("complete", True) else [
            f"**Incomplete run**: stopped after the `{result['last_section']}` rows; the rows "
            "below are all it measured.", ""]),
        f"Load average (1 min) over the rows: {loads[0]:.1f} .. {loads[1]:.1f} on "
        f"{result['machine']['cpus']} cores, shared with other jobs while it ran: these figures "
        "were taken on a loaded machine (quality metrics do not depend on load; the seconds do).",
        "",
        "| section | model | ROC AUC | AP | CP@100 | valid. AP | recall @ thr | FPR @ thr | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in PUBLISHED:
        lines.append(f"| published | {p['model']} | {p['roc_auc']:.3f} | "
                     f"{p['average_precision']:.3f} | {p['card_precision_at_100']:.3f} "
                     "| | | | |")
    lines.append(f"| published | best tuned (RF / XGBoost) | {PUBLISHED_BEST['roc_auc']:.3f} | "
                 f"{PUBLISHED_BEST['average_precision']:.3f} | "
                 f"{PUBLISHED_BEST['card_precision_at_100']:.3f} | | | | |")
    for r in result["runs"]:
        name = f"**{r['model']}** (selected)" if r.get("selected") else r["model"]
        lines.append(f"| {r['section']} | {name} | {f(r['roc_auc'])} | "
                     f"{f(r['average_precision'])} | {f(r['card_precision_at_100'])} | "
                     f"{f(r.get('validation_average_precision'))} | "
                     f"{f(r['recall_at_threshold'])} | {f(r['fpr_at_threshold'], 5)} | "
                     f"{r['seconds']:.0f} |")
    lines += ["", "Against the best published figures (ROC AUC "
              f"{PUBLISHED_BEST['roc_auc']:.3f}, AP {PUBLISHED_BEST['average_precision']:.3f}, "
              f"CP@100 {PUBLISHED_BEST['card_precision_at_100']:.3f}):", ""]
    for key in ("15", "rich"):
        what = "15 handbook features" if key == "15" else "richer features (not comparable)"
        for r in result.get("selected_by_validation", {}).get(key, []):
            marks = ", ".join(
                f"{label} {f(r[m])} ({versus(r[m], m)})"
                for m, label in (("roc_auc", "AUC"), ("average_precision", "AP"),
                                 ("card_precision_at_100", "CP@100")))
            lines.append(f"- {what}, chosen on validation, {r['section']}: {r['model']}: {marks}")
    for key in ("15", "rich"):
        best = result["best"][key]
        what = "15 features" if key == "15" else "richer features"
        lines.append(f"- best single figure on the test over all rows ({what}; optimistic: the "
                     "maximum over many rows): " + ", ".join(
                         f"{m} {best[m]['value']:.3f} ({best[m]['model']}, {best[m]['section']}; "
                         f"{versus(best[m]['value'], m)})"
                         for m in ("roc_auc", "average_precision", "card_precision_at_100")
                         if best[m]))
    lines += ["", "valid. AP: average precision on the validation split (train 2018-07-11 + 7 d, "
              "test 07-25 + 7 d), where the final model of each section is selected; tuning "
              f"(Optuna TPE, {trials(result['args'])}) used {result['args']['folds']} such folds, "
              "each one week earlier than the last. recall / FPR @ thr: at the operating "
              "threshold chosen on the last quarter of the training week for FPR <= 0.1 % (never "
              "on the test). prequential rows stream 2018-07-25 .. 08-14 with labels 7 days "
              "late (batch models refitted daily on the labels due).", ""]
    return "\n".join(lines)


def trials(a: dict[str, Any]) -> str:
    rich = a.get("rich_trials", 0 if a.get("quick") else a["trials"])
    arf = a.get("arf", not a.get("quick"))
    return (f"{a['trials']} trials per booster on the 15 features, "
            + (f"{rich} on the richer ones" if rich else "none on the richer ones (defaults)")
            + ("" if arf else "; ARF left out"))


def update_readme(text: str) -> None:
    start, end = "<!-- handbook:start -->", "<!-- handbook:end -->"
    block = f"{start}\n{text}\n{end}"
    old = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(new, encoding="utf-8")


def best_of(runs: list[dict[str, Any]], sections: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for key in ("roc_auc", "average_precision", "card_precision_at_100"):
        cand = [r for r in runs if r["section"] in sections and r[key] is not None]
        if not cand:
            out[key] = None
            continue
        b = max(cand, key=lambda r: r[key])
        out[key] = {"value": b[key], "model": b["model"], "section": b["section"],
                    "beats_published": b[key] > PUBLISHED_BEST[key]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT))
    parser.add_argument("--trials", type=int, default=20, help="Bayesian trials per tuned model")
    parser.add_argument("--folds", type=int, default=2, help="validation folds for tuning")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rich-trials", type=int, default=None,
                        help="Bayesian trials per tuned model on the richer features (default: "
                             "--trials; 0: no tuning there, default LightGBM in the ensemble)")
    parser.add_argument("--no-arf", action="store_true",
                        help="leave the adaptive random forest out (slow on 2 shared cores)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 4 trials, 1 fold, no ARF, no rich tuning")
    parser.add_argument("--no-readme", action="store_true", help="do not touch bench/README.md")
    parser.add_argument("--from-json", action="store_true",
                        help="only rewrite the README table from bench/results/handbook.json")
    args = parser.parse_args()
    if args.from_json:
        update_readme(markdown(json.loads(RESULTS.read_text(encoding="utf-8"))))
        print("rewrote the handbook section of bench/README.md")
        return 0
    if args.quick:
        args.trials, args.folds, args.rich_trials, args.no_arf = 4, 1, 0, True
    if args.rich_trials is None:
        args.rich_trials = args.trials
    path = Path(args.path)
    if not path.exists():
        print(f"no data set at {path}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    settings = Settings(_env_file=None)
    print(f"reading {path} (load {load()})", flush=True)
    frame = read_frame(path, HANDBOOK)
    frame = frame[frame["timestamp"] >= pd.Timestamp(HISTORY_START, tz="UTC")]
    t0 = time.perf_counter()
    hb = labelled_from_frame(frame, mapping_name="handbook", feature_set="handbook",
                             label_delay=DELAY, source=str(path))
    hb_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    dflt = labelled_from_frame(frame, mapping_name="handbook", feature_set="default",
                               label_delay=DELAY, source=str(path))
    default_seconds = time.perf_counter() - t0
    richer = rich(hb, dflt)
    print(f"features: handbook {hb_seconds:.1f} s, default {default_seconds:.1f} s on "
          f"{hb.n:,} rows", flush=True)
    opts = ProtocolOptions(train_start=TRAIN_START, train_days=TRAIN_DAYS, test_days=TEST_DAYS,
                           exclude_known_compromised=True)
    preq = opts.model_copy(update={"protocol": "prequential"})
    runs: list[dict[str, Any]] = []
    tuning: list[dict[str, Any]] = []

    def save(stage: str) -> dict[str, Any]:
        """The JSON (and README table) with every row measured so far: a run cut short keeps
        what it measured, marked incomplete."""
        result: dict[str, Any] = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "file": path.name,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "protocol": {"train_start": TRAIN_START, "train_days": TRAIN_DAYS, "label_delay": DELAY,
                         "test_days": TEST_DAYS, "history_start": HISTORY_START,
                         "exclude_known_compromised": True,
                         "test_rows": runs[0]["n"], "test_frauds": runs[0]["n_fraud"],
                         "readme_test_rows": EXPECTED_TEST[0], "readme_test_frauds": EXPECTED_TEST[1],
                         "matches_readme": (runs[0]["n"], runs[0]["n_fraud"]) == EXPECTED_TEST,
                         "max_fpr": settings.max_fpr},
            "features": {"handbook": hb.features, "rich": richer.features,
                         "seconds": {"handbook": round(hb_seconds, 1),
                                     "default": round(default_seconds, 1)}},
            "published": PUBLISHED, "published_best": PUBLISHED_BEST,
            "runs": runs, "tuning": tuning,
            "best": {"15": best_of(runs, ("batch-15", "river-15", "prequential-15")),
                     "rich": best_of(runs, ("batch-rich", "prequential-rich"))},
            "selected_by_validation": {
                "15": [r for r in runs if r.get("selected") and r["section"].endswith("-15")],
                "rich": [r for r in runs if r.get("selected") and r["section"].endswith("-rich")]},
            "args": {"trials": args.trials, "rich_trials": args.rich_trials, "folds": args.folds,
                     "seed": args.seed, "quick": args.quick, "arf": not args.no_arf},
            "seconds": round(time.perf_counter() - started, 1),
            "complete": stage == "done", "last_section": stage,
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=1, default=_json) + "\n", encoding="utf-8")
        if not args.no_readme:
            update_readme(markdown(result))
        return result

    print("batch, 15 features, published protocol", flush=True)
    evaluate("batch-15", hb, [
        ModelSpec(name="sk-logreg"),
        ModelSpec(name="sk-tree", params={"max_depth": 2}, label="sk-tree depth 2"),
        RF,
        ModelSpec(name="xgb", params=THREADS),
        ModelSpec(name="lgbm", params=THREADS),
        ModelSpec(name="sk-hgb"),
    ], opts, settings, runs)
    print("River zoo, 15 features, learn the training week then frozen", flush=True)
    river = [ModelSpec(name="logreg"), ModelSpec(name="hat")]
    if not args.no_arf:
        river.append(ModelSpec(name="arf"))
    evaluate("river-15", hb, river, opts, settings, runs)

    save("river-15")
    print("tuning on validation folds (never the test)", flush=True)
    tuned = {name: tuned_spec(name, hb, args, settings, tuning) for name in ("lgbm", "xgb")}
    ensemble = ensemble_spec(tuned["lgbm"])
    evaluate("batch-15", hb, [*tuned.values(), ensemble], opts, settings, runs)
    selected = select(hb, [RF, *tuned.values(), ensemble], "batch-15", settings, runs)

    save("batch-15")
    print("prequential, 7-day label delay, 15 features", flush=True)
    evaluate("prequential-15", hb, [*river, ModelSpec(name="sk-logreg"), selected], preq,
             settings, runs)
    save("prequential-15 (selected)")
    long = tuned["lgbm"].model_copy(update={"label": "lgbm tuned, 28-day refit window"})
    evaluate("prequential-15", hb, [tuned["lgbm"]], preq, settings, runs)
    evaluate("prequential-15", hb, [long], preq.model_copy(update={"refit_window": "28d"}),
             settings, runs)

    save("prequential-15")
    print("richer features (handbook 15 + default 32)", flush=True)
    rich_specs = [ModelSpec(name="lgbm", params=THREADS), ModelSpec(name="xgb", params=THREADS),
                  RF]
    if args.rich_trials == 0:
        rich_tuned = {"lgbm": ModelSpec(name="lgbm", params=THREADS)}
    else:
        rich_args = argparse.Namespace(**{**vars(args), "trials": args.rich_trials})
        rich_tuned = {name: tuned_spec(name, richer, rich_args, settings, tuning)
                      for name in ("lgbm", "xgb")}
        rich_specs += list(rich_tuned.values())
    rich_ensemble = ensemble_spec(rich_tuned["lgbm"])
    rich_specs.append(rich_ensemble)
    evaluate("batch-rich", richer, rich_specs, opts, settings, runs)
    rich_selected = select(richer, [RF, *rich_tuned.values(), rich_ensemble], "batch-rich",
                           settings, runs)
    save("batch-rich")
    evaluate("prequential-rich", richer, [rich_selected], preq, settings, runs)

    result = save("done")
    print()
    print(markdown(result))
    print(f"wrote {RESULTS.relative_to(ROOT)}" + ("" if args.no_readme else " and bench/README.md"))
    return 0


def _json(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
