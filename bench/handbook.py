"""The Fraud Detection Handbook's protocol on its simulated data: our models against its table.

    PYTHONPATH=. python bench/handbook.py [PATH] [--trials 20] [--folds 2] [--quick]
    PYTHONPATH=. python bench/handbook.py --only estimation [--fold-trials 20] [--rf-trials 10]
    PYTHONPATH=. python bench/handbook.py --only estimation --resume

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

- ``prequential-4fold``: the handbook's own ESTIMATION protocol (chapter 5.3, "Model selection"),
  on which its best tuned figures were published: each candidate is judged by the mean (and std)
  over 4 prequential VALIDATION folds (training from 2018-07-11, 07-04, 06-27, 06-20: start - (delay
  + assessment)) and reported by the mean over 4 prequential TEST folds (training from 2018-08-15,
  08-08, 08-01, 07-25: start + 3 x 7 days, assessed 08-29, 08-22, 08-15, 08-08), 7 days each,
  7-day delay, known compromised cards of each fold left out; 15 features. Candidates: logistic
  regression (grid over C and class weights), random forest, LightGBM and XGBoost tuned by Optuna
  TPE on the mean validation average precision (class weights in the spaces), the mean of the
  best booster's and the forest's probabilities, and the rank average of the tuned LightGBM and
  the forest (each member's quantile among its scores of the training rows). The candidate with the best mean validation AP is
  the headline row against the published figures. ``--only estimation`` runs this section alone
  and merges it into the existing JSON; ``--resume`` then finishes a section cut short (its rows
  and tuned parameters are kept, only the missing candidates are measured).

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
from models.training import (  # noqa: E402
    ModelSpec,
    ProtocolOptions,
    evaluate_data,
    evaluate_folds,
)
from models.tuning import tune_data  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "fdh" / "transactions_raw.csv.gz"
RESULTS = ROOT / "bench" / "results" / "handbook.json"
README = ROOT / "bench" / "README.md"

#: Rows before this are not needed: the longest window is 30 days behind a 7-day delay (37 days),
#: and the earliest validation fold (prequential-4fold) starts 2018-06-20.
HISTORY_START = "2018-05-10"
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


#: The handbook's estimation protocol (chapter 5.3): 4 prequential folds of 7 days; validation
#: folds start training (delay + assessment) days before the training start, test folds
#: (n_folds - 1) assessment lengths after it.
N_FOLDS = 4
VALID_FOLDS = ProtocolOptions(train_start="2018-07-11", train_days=TRAIN_DAYS,
                              test_days=TEST_DAYS, exclude_known_compromised=True)
TEST_FOLDS = ProtocolOptions(train_start="2018-08-15", train_days=TRAIN_DAYS, test_days=TEST_DAYS,
                             exclude_known_compromised=True)
#: The published best on this protocol (shared/data/fdh/README.md): AUC of the random forest,
#: AP and CP@100 of XGBoost (not one model).
PUBLISHED_4FOLD = {"roc_auc": 0.870, "average_precision": 0.687, "card_precision_at_100": 0.303}
#: Search spaces of the estimation section: the boosters' with a fraud weight (scale_pos_weight
#: as a sample weight), a forest with class weights, the logistic regression's grid.
#: Bounded to what 2 shared cores fit in the time (measured: a fold of LightGBM with 800 trees of
#: 31 leaves takes ~26 s here, XGBoost with 800 trees of depth 8 ~37 s).
FRAUD_WEIGHT = {"pos_weight": {"low": 1.0, "high": 30.0, "log": True}}
FOLD_SPACES: dict[str, dict[str, Any]] = {
    "lgbm": {**SPACES["lgbm"], "num_leaves": {"low": 4, "high": 32, "log": True, "int": True},
             **FRAUD_WEIGHT},
    "xgb": {**SPACES["xgb"], "n_estimators": {"low": 100, "high": 600, "step": 50},
            "max_depth": {"low": 2, "high": 8}, **FRAUD_WEIGHT},
    "sk-rf": {"n_estimators": {"low": 100, "high": 300, "step": 50},
              "max_depth": [8, 12, 16, 24, None],
              "min_samples_leaf": {"low": 1, "high": 50, "log": True, "int": True},
              "max_features": ["sqrt", 0.5, 0.8],
              "class_weight": ["none", "balanced"]},
    "sk-logreg": {"C": [0.01, 0.1, 1.0, 10.0], "class_weight": ["none", "balanced"]},
}
METRICS = ("roc_auc", "average_precision", "card_precision_at_100")


def fold_tune(name: str, data: LabelledData, trials: int, method: str, settings: Settings,
              seed: int) -> tuple[ModelSpec, dict[str, Any]]:
    """Search on the 4 validation folds (mean AP); the best spec and a JSON record."""
    fixed = {} if name == "sk-logreg" else THREADS
    before, t0 = load(), time.perf_counter()
    result = tune_data(data, name, space=FOLD_SPACES[name], method=method, trials=trials,
                       options=VALID_FOLDS, fixed=fixed, settings=settings, seed=seed,
                       folds=N_FOLDS)
    best = result.best
    assert best is not None
    seconds = time.perf_counter() - t0
    print(f"  tuned {name} on {N_FOLDS} validation folds: mean AP {best.value:.4f} "
          f"({len(result.trials)} trials, {seconds:.0f} s, load {before} -> {load()})",
          flush=True)
    record = {"model": name, "method": method, "trials": len(result.trials), "folds": N_FOLDS,
              "validation_average_precision": best.value,
              "validation_per_fold": best.metrics.get("per_fold"),
              "best_params": result.best_params, "space": FOLD_SPACES[name],
              "seconds": round(seconds, 1), "load_1min_before": before,
              "load_1min_after": load(),
              "top_trials": [t.to_dict() for t in result.ranked()[:5]]}
    return tuned_from(record), record


def tuned_from(record: dict[str, Any]) -> ModelSpec:
    """The tuned candidate of a tuning record (its best parameters)."""
    label = f"{record['model']} {'grid' if record['method'] == 'grid' else 'tuned'}"
    return ModelSpec(name=record["model"], params=record["best_params"], label=label)


def fold_row(spec: ModelSpec, data: LabelledData, settings: Settings) -> dict[str, Any]:
    """A candidate on the 4 validation folds and the 4 test folds."""
    before, t0 = load(), time.perf_counter()
    valid = evaluate_folds(data, spec, VALID_FOLDS, folds=N_FOLDS, settings=settings)
    test = evaluate_folds(data, spec, TEST_FOLDS, folds=N_FOLDS, settings=settings)
    r = {"model": spec.display, "name": spec.name,
         "params": {k: v for k, v in spec.params.items() if k != "seed"},
         "validation": valid.summary(), "test": test.summary(),
         "validation_folds": valid.folds, "test_folds": test.folds,
         "seconds": round(time.perf_counter() - t0, 1), "load_1min_before": before,
         "load_1min_after": load()}
    v, t = r["validation"], r["test"]
    print(f"  {spec.display:<34} test AUC {t['roc_auc']['mean']:.4f} AP "
          f"{t['average_precision']['mean']:.4f} CP {t['card_precision_at_100']['mean']:.4f} | "
          f"valid AP {v['average_precision']['mean']:.4f} ({r['seconds']:.0f} s, load {before})",
          flush=True)
    return r


def check_folds(rows: list[dict[str, Any]], data: LabelledData) -> dict[str, Any]:
    """The fold dates, the data's coverage of the last test fold, and the README's counts on the
    test fold that is the single-week protocol (training from 2018-07-25)."""
    r = rows[0]
    last_end = max(f["test_end"] for f in r["test_folds"])
    data_end = pd.Timestamp(float(data.t.max()), unit="s", tz="UTC").isoformat()
    if data_end < last_end:
        raise SystemExit(f"the data ends {data_end}, before the last test fold ({last_end})")
    week = [f for f in r["test_folds"] if f["train_start"].startswith(TRAIN_START)]
    got = (week[0]["evaluated_rows"], week[0]["evaluated_frauds"]) if week else None
    if got != EXPECTED_TEST:
        raise SystemExit(f"protocol check failed: the test fold training from {TRAIN_START} has "
                         f"{got}; the README says {EXPECTED_TEST}")
    return {"n_folds": N_FOLDS, "train_days": TRAIN_DAYS, "label_delay": DELAY,
            "assessment_days": TEST_DAYS, "exclude_known_compromised": True,
            "validation_train_starts": [f["train_start"][:10] for f in r["validation_folds"]],
            "test_train_starts": [f["train_start"][:10] for f in r["test_folds"]],
            "test_assessment_starts": [f["test_start"][:10] for f in r["test_folds"]],
            "validation_rows_frauds": [[f["evaluated_rows"], f["evaluated_frauds"]]
                                       for f in r["validation_folds"]],
            "test_rows_frauds": [[f["evaluated_rows"], f["evaluated_frauds"]]
                                 for f in r["test_folds"]],
            "data_end": data_end, "last_test_fold_end": last_end,
            "single_week_fold_matches_readme": True, "history_start": HISTORY_START,
            "std": "population (ddof=0), as the handbook"}


def estimation(data: LabelledData, args: argparse.Namespace, settings: Settings,
               checkpoint: Any = None, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The prequential-4fold section: tune on validation folds, report test-fold means.

    ``checkpoint(partial)`` is called after each row with what is measured so far (marked
    ``complete: False``), so a run cut short keeps its rows. ``previous`` (a section cut short)
    resumes it: its tuning records are reused (no new search for those models) and so are its
    rows whose model and parameters are the same; only the missing candidates are measured."""
    started, before = time.perf_counter(), load()
    print(f"handbook estimation: {N_FOLDS} prequential validation and test folds, 15 features",
          flush=True)
    previous = previous or {}
    done = {r["model"]: r for r in previous.get("rows", [])}
    tuned = {t["model"]: t for t in previous.get("tuning", [])}
    rows: list[dict[str, Any]] = []
    tuning: list[dict[str, Any]] = []

    def measure(spec: ModelSpec) -> dict[str, Any]:
        r = done.get(spec.display)
        if r is not None and r["params"] == {k: v for k, v in spec.params.items() if k != "seed"}:
            print(f"  {spec.display:<34} reused (measured {previous.get('when', '?')[:16]})",
                  flush=True)
            return r
        return fold_row(spec, data, settings)

    rows.append(measure(ModelSpec(name="sk-logreg")))
    out: dict[str, Any] = {"rows": rows, "tuning": tuning}
    out["protocol"] = check_folds(rows, data)
    rows.append(measure(RF))
    specs: dict[str, ModelSpec] = {}

    def partial() -> None:
        if checkpoint is not None:
            checkpoint({**out, "complete": False, "args": {
                "fold_trials": args.fold_trials, "rf_trials": args.rf_trials, "seed": args.seed},
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - started + previous.get("seconds", 0.0), 1),
                "load_1min_before": before, "load_1min_after": load()})

    partial()
    plan = [("sk-logreg", "grid", 8), ("lgbm", "bayes", args.fold_trials),
            ("xgb", "bayes", args.fold_trials), ("sk-rf", "bayes", args.rf_trials)]
    for name, method, n in plan:
        if n <= 0:
            continue
        if name in tuned:
            record = tuned[name]
            specs[name] = tuned_from(record)
            print(f"  tuned {name}: reused ({record['trials']} trials, mean validation AP "
                  f"{record['validation_average_precision']:.4f})", flush=True)
        else:
            specs[name], record = fold_tune(name, data, n, method, settings, args.seed)
        tuning.append(record)
        rows.append(measure(specs[name]))
        partial()
    boosters = [r for r in rows if r["name"] in ("lgbm", "xgb")]
    forest = specs.get("sk-rf", RF)  # the tuned forest when there is one
    if boosters:
        b = max(boosters, key=lambda r: r["validation"]["average_precision"]["mean"])
        ens = ModelSpec(name="ensemble", label=f"ensemble ({b['model']} + {forest.display})",
                        params={"members": [{"name": b["name"], "params": b["params"]},
                                            {"name": forest.name, "params": forest.params}]})
        rows.append(measure(ens))
        partial()
    if "lgbm" in specs:  # the rank average of the tuned LightGBM and the forest
        lgbm = specs["lgbm"]
        rows.append(measure(ModelSpec(
            name="ensemble", label=f"rank average ({lgbm.display} + {forest.display})",
            params={"combine": "rank", "members": [{"name": "lgbm", "params": lgbm.params},
                                                   {"name": forest.name,
                                                    "params": forest.params}]})))
    select_estimation(out)
    seconds = round(time.perf_counter() - started, 1)
    out.update({
        "args": {"fold_trials": args.fold_trials, "rf_trials": args.rf_trials,
                 "seed": args.seed},
        "complete": True, "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds + previous.get("seconds", 0.0), 1), "load_1min_before": before,
        "load_1min_after": load()})
    if previous:
        out["resumed"] = [*previous.get("resumed", []), {
            "from": previous.get("when"), "previous_seconds": previous.get("seconds"),
            "previous_note": previous.get("note"), "reused_rows": sum(r in done.values()
                                                                     for r in rows),
            "seconds": seconds, "load_1min_before": before, "load_1min_after": load()}]
    return out


def select_estimation(est: dict[str, Any]) -> None:
    """Mark the row with the best mean validation AP, and its test means against the published
    figures (on the rows measured: a run cut short selects among those, and says so)."""
    rows = est["rows"]
    best = max(rows, key=lambda r: r["validation"]["average_precision"]["mean"])
    for r in rows:
        r["selected"] = r is best
    est["selected"] = best["model"]
    est["versus_published"] = {
        m: {"value": best["test"][m]["mean"], "std": best["test"][m]["std"],
            "published_4fold": PUBLISHED_4FOLD[m], "published_best": PUBLISHED_BEST[m],
            "diff_4fold": round(best["test"][m]["mean"] - PUBLISHED_4FOLD[m], 6),
            "diff_best": round(best["test"][m]["mean"] - PUBLISHED_BEST[m], 6)}
        for m in METRICS}


def resumed_text(resumed: list[dict[str, Any]]) -> str:
    parts = [f"from the run of {r['from'][:16]}, {r['reused_rows']} rows and the tuned parameters "
             f"kept, the rest measured in {r['seconds'] / 60:.0f} min" for r in resumed]
    return f" (resumed: {'; '.join(parts)})" if parts else ""


def estimation_markdown(est: dict[str, Any]) -> list[str]:
    def ms(s: dict[str, Any]) -> str:
        return f"{s['mean']:.3f} ± {s['std']:.3f}"

    p = est["protocol"]
    rows = est["rows"]
    if "versus_published" not in est:
        select_estimation(est)
    loads = [min(r["load_1min_before"] for r in rows),
             max(max(r["load_1min_before"], r["load_1min_after"]) for r in rows)]
    lines = [
        "", "### The handbook's estimation protocol (prequential-4fold)", "",
        f"The handbook's best tuned figures were published on this protocol (chapter 5.3): "
        f"{p['n_folds']} prequential folds of {p['assessment_days']} days, "
        f"{p['label_delay']} delay, known compromised cards of each fold left out. Validation "
        f"folds train from {', '.join(p['validation_train_starts'])} (selection: mean average "
        f"precision); test folds train from {', '.join(p['test_train_starts'])} and are assessed "
        f"from {', '.join(p['test_assessment_starts'])} (the last one covered by the data, which "
        f"ends {p['data_end'][:10]}); the fold training from {TRAIN_START} is the single-week "
        f"test ({EXPECTED_TEST[0]:,} / {EXPECTED_TEST[1]}: match). Mean ± std (population) over "
        f"the folds; 15 handbook features. Tuning: Optuna TPE, "
        f"{est['args']['fold_trials']} trials per booster, {est['args']['rf_trials']} for the "
        "forest, on the validation folds only; the logistic regression by a grid over C and "
        f"class weights. Measured {est['when'][:16]} UTC in {est['seconds'] / 60:.0f} min"
        + resumed_text(est.get("resumed", []))
        + f"; load average (1 min) {loads[0]:.1f} .. {loads[1]:.1f} on 2 shared cores (the "
        "seconds depend on the load, the metrics do not). `python bench/handbook.py --only "
        f"estimation --fold-trials {est['args']['fold_trials']} --rf-trials "
        f"{est['args']['rf_trials']}` reruns this section alone with these settings (`--resume`: "
        "only its missing rows).", "",
        *([] if est.get("complete", True) else [
            f"**Incomplete run**: stopped after {len(rows)} rows (the later candidates were not "
            "measured"
            + (f": {est['note']}" if est.get("note") else "")
            + "); the selection below is among the rows measured.", ""]),
        "| model | test ROC AUC | test AP | test CP@100 | valid. ROC AUC | valid. AP | "
        "valid. CP@100 | s |",
        "|---|---|---|---|---|---|---|---|",
        f"| published best (AUC: random forest; AP, CP: XGBoost) | "
        f"{PUBLISHED_4FOLD['roc_auc']:.3f} | {PUBLISHED_4FOLD['average_precision']:.3f} | "
        f"{PUBLISHED_4FOLD['card_precision_at_100']:.3f} | | | | |"]
    for r in rows:
        name = f"**{r['model']}** (selected)" if r.get("selected") else r["model"]
        t, v = r["test"], r["validation"]
        lines.append(f"| {name} | {' | '.join(ms(t[m]) for m in METRICS)} | "
                     f"{' | '.join(ms(v[m]) for m in METRICS)} | {r['seconds']:.0f} |")
    vs = est["versus_published"]

    def verdict(m: str, key: str, ref: str, where: str) -> str:
        d = vs[m][key]
        word = "beats" if d > 0 else "equals" if d == 0 else "below"
        return f"{word} the {vs[m][ref]:.3f} published {where}" + (f" by {abs(d):.3f}" if d else "")

    lines += ["", f"Selected on validation (mean AP): **{est['selected']}**. On the test folds: "
              + "; ".join(f"{label} {vs[m]['value']:.3f} ± {vs[m]['std']:.3f} ("
                          + verdict(m, "diff_4fold", "published_4fold", "on this protocol")
                          + ("" if PUBLISHED_4FOLD[m] == PUBLISHED_BEST[m] else
                             "; " + verdict(m, "diff_best", "published_best",
                                            "as the best figure on any protocol"))
                          + ")"
                          for m, label in (("roc_auc", "ROC AUC"), ("average_precision", "AP"),
                                           ("card_precision_at_100", "CP@100"))) + ".",
              "The published figures are each the best of a different tuned model; ours are one "
              "model's, chosen before the test folds were looked at."]
    return lines


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
    if result.get("estimation"):
        lines += [*estimation_markdown(result["estimation"]), ""]
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
    parser.add_argument("--only", choices=["estimation"], default=None,
                        help="run only this section and merge it into the existing JSON")
    parser.add_argument("--fold-trials", type=int, default=20,
                        help="prequential-4fold: Bayesian trials per booster (0: not tuned)")
    parser.add_argument("--rf-trials", type=int, default=10,
                        help="prequential-4fold: Bayesian trials for the random forest "
                             "(0: the 200-tree forest, not tuned)")
    parser.add_argument("--resume", action="store_true",
                        help="with --only estimation: keep the rows and tuned parameters of the "
                             "section in the JSON, measure only the missing candidates (its "
                             "trial counts and seed are reused)")
    parser.add_argument("--no-estimation", action="store_true",
                        help="leave the prequential-4fold section out of a full run")
    parser.add_argument("--from-json", action="store_true",
                        help="only rewrite the README table from bench/results/handbook.json")
    args = parser.parse_args()
    if args.resume and args.only != "estimation":
        parser.error("--resume goes with --only estimation")
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
    if args.only == "estimation":
        return only_estimation(hb, args, settings)
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
    est: dict[str, Any] | None = None

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
        if est is not None:
            result["estimation"] = est
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
    if not args.no_estimation:
        save("prequential-rich")
        est = estimation(hb, args, settings)

    result = save("done")
    print()
    print(markdown(result))
    print(f"wrote {RESULTS.relative_to(ROOT)}" + ("" if args.no_readme else " and bench/README.md"))
    return 0


def only_estimation(data: LabelledData, args: argparse.Namespace, settings: Settings) -> int:
    """Run the prequential-4fold section and merge it into bench/results/handbook.json (the
    other sections' results are kept as they are)."""
    if not RESULTS.exists():
        raise SystemExit(f"{RESULTS} does not exist: run the full benchmark first")
    result = json.loads(RESULTS.read_text(encoding="utf-8"))
    previous = result.get("estimation") if args.resume else None
    if args.resume and not previous:
        raise SystemExit(f"--resume: {RESULTS} has no prequential-4fold section to resume")
    if previous:
        for key in ("fold_trials", "rf_trials", "seed"):
            setattr(args, key, previous["args"][key])
        print(f"resuming the section of {previous['when']}: {len(previous['rows'])} rows, "
              f"tuned {', '.join(t['model'] for t in previous['tuning'])}", flush=True)

    def merge(est: dict[str, Any]) -> None:
        result["estimation"] = est
        RESULTS.write_text(json.dumps(result, indent=1, default=_json) + "\n", encoding="utf-8")

    est = estimation(data, args, settings, checkpoint=merge, previous=previous)
    merge(est)
    text = markdown(result)
    if not args.no_readme:
        update_readme(text)
    print()
    print("\n".join(estimation_markdown(est)))
    print(f"merged the prequential-4fold section into {RESULTS.relative_to(ROOT)}"
          + ("" if args.no_readme else " and rewrote bench/README.md's handbook section"))
    return 0


def _json(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
