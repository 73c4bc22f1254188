"""Hyper-parameter tuning: grid, random and Bayesian search (Optuna) with a time-ordered protocol.

Every trial trains one configuration on the training period and scores it on the later period of
the same split (:func:`models.training.run_model`: ``holdout`` or ``prequential``, label-delay gap
included) and is judged by the objective metric (``settings.objective_metric``, by default
average precision). Tune on a period BEFORE the one you report (``--test-start``): the period a
search looked at is no longer an unbiased test.

Methods (all run by Optuna, seeded): ``grid`` (every combination of the listed values, in a
deterministic order), ``random`` and ``bayes`` (Optuna's TPE sampler).

Search spaces: a mapping of parameter -> a list of values (categorical; the only kind ``grid``
takes besides integer ranges with a ``step``) or ``{"low": a, "high": b}`` with optional ``"log":
true``, ``"int": true`` and ``"step"``. :data:`DEFAULT_SPACES` holds one per model; parameters not
searched keep their defaults, or the ``fixed`` values given.

With ``register`` the best configuration (the model of the best trial, already trained) is saved
to the registry as a CHALLENGER with its metrics and operating threshold.

>>> grid_size({"max_depth": [1, 2, 3], "min_samples_leaf": {"low": 1, "high": 21, "step": 10}})
9
>>> grid_size({"C": {"low": 0.01, "high": 10, "log": True}})
Traceback (most recent call last):
...
fraudstream.errors.ConfigError: grid search needs a list of values for 'C' (or an integer range with a step)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from features.columns import ColumnMapping
from fraudstream.errors import ConfigError
from fraudstream.progress import CancelFn, ProgressFn, Tracker
from fraudstream.settings import Settings, parse_duration
from models.data import LabelledData
from models.evaluation import EvaluationReport, ModelEvaluation
from models.training import (
    ModelSpec,
    ProtocolOptions,
    TrainResult,
    _load,
    _window,
    evaluate_folds,
    fold_splits,
    parse_models,
    run_model,
    save_to_registry,
)

__all__ = ["DEFAULT_SPACES", "Trial", "TuningResult", "grid_size", "tune", "tune_data"]

Method = Literal["grid", "random", "bayes"]
#: Objectives that rank transactions (no operating threshold needed to compute them).
RANKING_METRICS = ("average_precision", "roc_auc", "card_precision_at_100", "recall_at_max_fpr")
METHODS: tuple[str, ...] = ("grid", "random", "bayes")

#: The default search space of every model (see the module doc for the format).
DEFAULT_SPACES: dict[str, dict[str, Any]] = {
    "logreg": {"lr": [0.003, 0.01, 0.03, 0.1], "l2": [0.0, 0.0001, 0.001],
               "pos_weight": [1.0, 3.0, 10.0]},
    "hat": {"grace_period": [50, 100, 200, 400], "delta": [1e-7, 1e-5, 1e-3],
            "pos_weight": [1.0, 3.0, 10.0]},
    "arf": {"n_models": [5, 10, 20], "grace_period": [25, 50, 100], "lambda_value": [3, 6],
            "pos_weight": [1.0, 3.0]},
    "hst": {"n_trees": [10, 25], "height": [6, 8, 10], "window_size": [250, 1000]},
    "rules": {"prior_strength": [5.0, 20.0, 100.0], "learn_weights": [True, False]},
    "sk-logreg": {"C": [0.01, 0.1, 1.0, 10.0], "class_weight": ["none", "balanced"]},
    "sk-tree": {"max_depth": [2, 4, 6, 8, 12], "min_samples_leaf": [1, 20, 100]},
    "sk-rf": {"n_estimators": [100, 200], "max_depth": [5, 10, 20, None],
              "min_samples_leaf": [1, 5, 20], "max_features": ["sqrt", 0.5]},
    "sk-hgb": {"learning_rate": [0.03, 0.1, 0.3], "max_iter": [100, 300],
               "max_leaf_nodes": [7, 15, 31, 63], "min_samples_leaf": [20, 100],
               "l2_regularization": [0.0, 1.0, 10.0]},
    "lgbm": {"n_estimators": [100, 300, 600], "learning_rate": [0.01, 0.03, 0.1],
             "num_leaves": [7, 15, 31, 63], "min_child_samples": [20, 50, 200],
             "subsample": [0.7, 1.0], "colsample_bytree": [0.6, 0.8, 1.0],
             "reg_lambda": [0.0, 1.0, 10.0]},
    "xgb": {"n_estimators": [100, 300, 600], "learning_rate": [0.01, 0.03, 0.1, 0.3],
            "max_depth": [3, 4, 6, 8], "min_child_weight": [1.0, 5.0, 20.0],
            "subsample": [0.7, 1.0], "colsample_bytree": [0.6, 0.8, 1.0],
            "reg_lambda": [1.0, 10.0]},
}
for _combo in ("logreg+hst", "hat+hst", "arf+hst"):
    DEFAULT_SPACES[_combo] = {"mode": ["feature", "blend"], "weight": [0.1, 0.3, 0.5]}


def _grid_values(name: str, spec: Any) -> list[Any]:
    if isinstance(spec, list | tuple):
        if not spec:
            raise ConfigError(f"the search space of {name!r} is empty")
        return list(spec)
    if isinstance(spec, Mapping) and spec.get("step") is not None and spec.get("int", True):
        lo, hi, step = int(spec["low"]), int(spec["high"]), int(spec["step"])
        if step <= 0 or hi < lo:
            raise ConfigError(f"bad integer range for {name!r}: {dict(spec)}")
        return list(range(lo, hi + 1, step))
    raise ConfigError(f"grid search needs a list of values for {name!r} (or an integer range "
                      "with a step)")


def grid_size(space: Mapping[str, Any]) -> int:
    """How many combinations a grid search over ``space`` tries."""
    n = 1
    for name, spec in space.items():
        n *= len(_grid_values(name, spec))
    return n


def _check_space(model: str, space: Mapping[str, Any]) -> None:
    if not isinstance(space, Mapping) or not space:
        raise ConfigError("a search space is a non-empty mapping of parameter -> values")
    for name, spec in space.items():
        if isinstance(spec, list | tuple):
            if not spec:
                raise ConfigError(f"the search space of {name!r} is empty")
        elif isinstance(spec, Mapping):
            if "low" not in spec or "high" not in spec:
                raise ConfigError(f"the range of {name!r} needs low and high")
            if spec["high"] < spec["low"]:
                raise ConfigError(f"the range of {name!r} has high < low")
            unknown = set(spec) - {"low", "high", "log", "int", "step"}
            if unknown:
                raise ConfigError(f"the range of {name!r}: unknown key(s) {sorted(unknown)}")
        else:
            raise ConfigError(f"the search space of {name!r} must be a list or a range, "
                              f"not {spec!r}")


def _suggest(trial: Any, name: str, spec: Any) -> Any:
    if isinstance(spec, list | tuple):
        return trial.suggest_categorical(name, list(spec))
    lo, hi = spec["low"], spec["high"]
    is_int = bool(spec.get("int")) or (isinstance(lo, int) and isinstance(hi, int)
                                        and not spec.get("log"))
    if is_int:
        return trial.suggest_int(name, int(lo), int(hi), step=int(spec.get("step") or 1),
                                 log=bool(spec.get("log")))
    return trial.suggest_float(name, float(lo), float(hi), log=bool(spec.get("log")),
                               step=spec.get("step"))


@dataclass
class Trial:
    """One configuration tried."""

    number: int
    params: dict[str, Any]
    value: float | None
    metrics: dict[str, Any]
    seconds: float
    state: str = "complete"

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "params": self.params, "value": self.value,
                "metrics": self.metrics, "seconds": round(self.seconds, 3), "state": self.state}


@dataclass
class TuningResult:
    """Every trial, the best configuration, and where it was registered."""

    model: str
    method: str
    objective: str
    protocol: str
    space: dict[str, Any]
    fixed: dict[str, Any]
    trials: list[Trial]
    split: dict[str, Any]
    data: dict[str, Any]
    best: Trial | None = None
    best_evaluation: ModelEvaluation | None = field(default=None, repr=False)
    registered: TrainResult | None = field(default=None, repr=False)
    seconds: float = 0.0

    @property
    def best_params(self) -> dict[str, Any]:
        return {**self.fixed, **(self.best.params if self.best else {})}

    def ranked(self) -> list[Trial]:
        return sorted(self.trials, key=lambda t: (-(t.value if t.value is not None
                                                    else -math.inf), t.number))

    def to_dict(self) -> dict[str, Any]:
        best = self.best_evaluation
        return {
            "model": self.model, "method": self.method, "objective": self.objective,
            "protocol": self.protocol, "best_value": self.best.value if self.best else None,
            "best_params": self.best_params,
            "best_metrics": best.flat() if best else None,
            "best_criteria": best.criteria.to_dict() if best and best.criteria else None,
            "trials": [t.to_dict() for t in self.ranked()], "space": self.space,
            "fixed": self.fixed, "split": self.split, "data": self.data,
            "registered": ({"version": self.registered.version,
                            "threshold": self.registered.threshold,
                            "challenger": self.registered.challenger}
                           if self.registered else None),
            "seconds": round(self.seconds, 2),
        }

    def table(self, top: int = 20) -> str:
        """The trials, best first, as aligned text."""
        names = sorted({k for t in self.trials for k in t.params})
        head = ["#", self.objective, "ROC AUC", "CP@100", *names, "s"]
        rows = []
        for t in self.ranked()[:top]:
            m = t.metrics
            rows.append([str(t.number), _fmt(t.value), _fmt(m.get("roc_auc")),
                         _fmt(m.get("card_precision_at_100")),
                         *(_fmt(t.params.get(n)) for n in names), f"{t.seconds:.1f}"])
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(head)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def tune_data(
    data: LabelledData,
    model: str,
    *,
    space: Mapping[str, Any] | None = None,
    method: str = "bayes",
    trials: int | None = 20,
    options: ProtocolOptions | None = None,
    fixed: Mapping[str, Any] | None = None,
    objective: str | None = None,
    settings: Settings | None = None,
    max_fpr: float | None = None,
    seed: int = 0,
    folds: int = 1,
    tracker: Tracker | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> TuningResult:
    """Search ``model``'s parameters on prepared data (see the module doc).

    With ``folds`` > 1 every configuration is judged on that many splits, each moved back by the
    length of the test period (the handbook's prequential model selection), by the mean of the
    objective; the best trial's evaluation kept is that of the latest split.
    """
    import optuna

    started = time.perf_counter()
    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    options = options or ProtocolOptions()
    tracker = tracker or Tracker(what="tuning")
    if method not in METHODS:
        raise ConfigError(f"unknown search method {method!r}; use {', '.join(METHODS)}")
    objective = objective or settings.objective_metric
    if space is None:
        if model not in DEFAULT_SPACES:
            raise ConfigError(f"no default search space for {model!r}; give one (--space)")
        space = DEFAULT_SPACES[model]
    space = dict(space)
    fixed = dict(fixed or {})
    _check_space(model, space)
    overlap = sorted(set(space) & set(fixed))
    if overlap:
        raise ConfigError(f"parameter(s) {overlap} are both searched and fixed")
    parse_models([ModelSpec(name=model, params=fixed)])  # the name and the fixed values
    if method == "grid":
        size = grid_size(space)
        n_trials = size if trials is None else min(trials, size)
        sampler: Any = optuna.samplers.GridSampler(
            {k: _grid_values(k, v) for k, v in space.items()}, seed=seed)
    else:
        n_trials = 20 if trials is None else trials
        sampler = (optuna.samplers.RandomSampler(seed=seed) if method == "random"
                   else optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(
                       1, n_trials // 3))))
    if n_trials < 1:
        raise ConfigError("tuning needs at least one trial")
    max_fpr = settings.max_fpr if max_fpr is None else max_fpr
    if folds < 1:
        raise ConfigError("tuning needs at least one fold")
    fold_list = fold_splits(data, options, folds)
    split, rows = fold_list[0][0], [r for _, r in fold_list]
    splits = [sp for sp, _ in fold_list]
    train_m, _, test_m = split.masks(data.t)
    # ranking objectives need no threshold: a batch model is then fitted once per trial, and
    # the best configuration is evaluated again with its threshold at the end
    calibrate = objective not in RANKING_METRICS
    done: list[Trial] = []
    best: list[Any] = [None, None]  # (Trial, ModelEvaluation) of the best so far
    lo, hi = span
    width = (hi - lo) / n_trials

    def run(trial: Any) -> float:
        params = {name: _suggest(trial, name, spec) for name, spec in space.items()}
        i = len(done)
        spec_ = ModelSpec(name=model, params={**fixed, **params})
        try:
            spec_.build()
        except ConfigError as exc:  # an impossible combination: recorded, never the best
            done.append(Trial(trial.number, params, None, {"error": str(exc)}, 0.0, "invalid"))
            return -math.inf
        t0 = time.perf_counter()
        evs = evaluate_folds(data, spec_, options, splits=fold_list, settings=settings,
                             max_fpr=max_fpr, calibrate=calibrate, tracker=tracker,
                             span=(lo + i * width, lo + (i + 1) * width)).evaluations
        ev = evs[0]
        value = _mean([e.metrics.get(objective) for e in evs])
        keep: dict[str, Any] = {k: _mean([e.metrics.get(k) for e in evs])
                for k in ("roc_auc", "average_precision", "card_precision_at_100",
                          "recall_at_max_fpr", "recall_at_threshold", "fpr_at_threshold")}
        if len(evs) > 1:
            keep["per_fold"] = [e.metrics.get(objective) for e in evs]
        t = Trial(trial.number, params, value, keep, time.perf_counter() - t0)
        done.append(t)
        if value is not None and (best[0] is None or best[0].value is None
                                  or value > best[0].value):
            best[0], best[1] = t, ev
        return float(value) if value is not None else -math.inf

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(run, n_trials=n_trials, catch=())
    result = TuningResult(
        model=model, method=method, objective=objective, protocol=options.protocol,
        space=space, fixed=fixed, trials=done,
        split={**split.to_dict(), "train_rows": int(train_m.sum()),
               "test_rows": int(test_m.sum()), "test_frauds": int(data.y[test_m].sum()),
               "evaluated_rows": int(len(rows[0])),
               "evaluated_frauds": int(data.y[rows[0]].sum()),
               "exclude_known_compromised": options.exclude_known_compromised,
               "folds": [sp.to_dict() for sp in splits]},
        data=data.describe(), best=best[0], best_evaluation=best[1])
    if best[0] is not None:
        if not calibrate:  # the best again, with its operating threshold
            tracker.step(hi, "evaluating the best configuration with its threshold")
            best[1] = run_model(data, ModelSpec(name=model, params={**fixed, **best[0].params}),
                                split, protocol=options.protocol, max_fpr=max_fpr,
                                metric_rows=rows[0],
                                refit_every_s=parse_duration(options.refit_every),
                                refit_window_s=_window(options), k=options.k,
                                settings=settings, latency_sample=0)
            result.best_evaluation = best[1]
        best[1].latency = _latency_of(best[1], data, split)
        if best[1].criteria is not None:
            from models.criteria import check, criteria_from_settings

            best[1].criteria = check(best[1].flat(), criteria_from_settings(
                settings.model_copy(update={"max_fpr": max_fpr})))
    result.seconds = time.perf_counter() - started
    return result


def _mean(values: list[Any]) -> float | None:
    ok = [float(v) for v in values if v is not None]
    return round(sum(ok) / len(ok), 6) if ok and len(ok) == len(values) else None


def _latency_of(ev: ModelEvaluation, data: LabelledData, split: Any) -> dict[str, Any]:
    import numpy as np

    from models.training import _latency

    _, _, test_m = split.masks(data.t)
    return _latency(ev.fitted, data, np.flatnonzero(test_m)) if ev.fitted is not None else {}


def tune(
    path: str | Path,
    mapping: ColumnMapping,
    model: str,
    *,
    space: Mapping[str, Any] | None = None,
    method: str = "bayes",
    trials: int | None = 20,
    options: ProtocolOptions | None = None,
    fixed: Mapping[str, Any] | None = None,
    feature_set: str | None = None,
    settings: Settings | None = None,
    max_fpr: float | None = None,
    seed: int = 0,
    folds: int = 1,
    register: bool = False,
    nrows: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> TuningResult:
    """Read a file and tune ``model`` on it; with ``register``, save the best as a challenger."""
    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    options = options or ProtocolOptions()
    if method not in METHODS:
        raise ConfigError(f"unknown search method {method!r}; use {', '.join(METHODS)}")
    parse_models([ModelSpec(name=model, params=dict(fixed or {}))])
    tracker = Tracker(progress, cancel, what="tuning")
    tracker.step(0.0, "reading")
    data = _load(path, mapping, options, feature_set, nrows, settings, tracker)
    result = tune_data(data, model, space=space, method=method, trials=trials, options=options,
                       fixed=fixed, settings=settings, max_fpr=max_fpr, seed=seed,
                       folds=folds, tracker=tracker, span=(0.3, 0.95))
    if register:
        if result.best_evaluation is None:
            raise ConfigError("no trial produced a usable model: nothing to register")
        ev = result.best_evaluation
        report = EvaluationReport(protocol=result.protocol, objective=result.objective,
                                  data=result.data, split=result.split, results=[ev])
        result.registered = save_to_registry(
            ev, report, settings, challenger=True,
            note=f"tuned ({result.method}, {len(result.trials)} trials, {result.objective} "
                 f"{result.best.value if result.best else None}) on {data.source}")
    tracker.done()
    return result
