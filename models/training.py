"""Offline training and evaluation: River zoo models and batch models on one time-ordered split.

The functions here are what the CLI (``fraudstream evaluate``, ``train``, ``leaderboard``) and the
API's background jobs call: plain paths and parameters in, a result object with ``to_dict()`` out,
``progress(fraction, message)`` reported and ``cancel()`` checked between steps (see
:mod:`fraudstream.progress`).

One model on one split (:func:`run_model`), by protocol (see :mod:`models.protocols`):

``holdout``
    batch models are fitted on the training period; River models learn it in event-time order
    (predicting each transaction before learning it); then the model is FROZEN and scores the
    test period after the label-delay gap.
``prequential``
    River models stream the whole span (training period, gap and test) in event-time order,
    predicting each transaction before learning anything new, with every label arriving
    ``label_delay`` after its transaction; batch models are refitted every day of the test on the
    labels due by then (a sliding window as long as the training period).

The operating threshold (issue part 7) is chosen BEFORE the test, on labels a deployed model would
have: the scores of the last quarter of the training period (``calibration``), out of sample
(River: its prequential scores there; batch: a model fitted on the training period before it),
with :func:`models.metrics.threshold_for_fpr`: the highest recall whose false-positive rate is at
most the target (``settings.max_fpr``). The test then reports what that threshold gives.

Metrics (:func:`models.evaluation.score_metrics`) are taken on the test rows, without the
transactions of cards known to be compromised when ``exclude_known_compromised`` is set (the
handbook's protocol); every evaluation carries the success criteria's pass/fail table. The scoring
latency reported is the model's own share of the scoring path (``predict_proba_one`` +
``explain_one`` per transaction, on a sample of the test), not the end-to-end latency.

:func:`evaluate_folds` judges one model on the handbook's prequential folds (the split and the
``folds - 1`` splits before it, one test length apart; :func:`models.protocols.prequential_folds`):
every fold's metrics, their mean and standard deviation, the handbook's estimate of a model's
performance (chapter 5.3: validation folds to select, test folds to report).

:func:`train` evaluates one model the same way and saves it to the registry with its threshold,
metrics and training period (optionally as a challenger, or promoted to champion).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from features.columns import ColumnMapping
from fraudstream.errors import ConfigError, DataError
from fraudstream.progress import CancelFn, ProgressFn, Tracker
from fraudstream.settings import Settings, parse_duration
from models.batch import ALL_MODEL_NAMES, BatchModel, build_any, is_batch_model
from models.criteria import check, criteria_from_settings
from models.data import LabelledData, load_labelled
from models.evaluation import EvaluationReport, ModelEvaluation, plot_curves, score_metrics
from models.metrics import threshold_for_fpr
from models.protocols import (
    TimeSplit,
    day_numbers,
    known_compromised_mask,
    parse_time,
    prequential_folds,
    prequential_refit,
    prequential_stream,
    time_split,
)
from models.zoo import Model

__all__ = [
    "FOLD_METRICS",
    "FoldsEvaluation",
    "ModelSpec",
    "ProtocolOptions",
    "TrainResult",
    "evaluate",
    "evaluate_data",
    "evaluate_folds",
    "fold_splits",
    "metric_rows_for",
    "parse_models",
    "run_model",
    "train",
]


class ModelSpec(BaseModel):
    """A model to evaluate: a name of :data:`models.batch.ALL_MODEL_NAMES` and its parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str = ""

    @property
    def display(self) -> str:
        return self.label or self.name

    def build(self) -> Model:
        return build_any(self.name, self.params)


def parse_models(models: str | Sequence[str | ModelSpec | Mapping[str, Any]],
                 params: Mapping[str, Any] | None = None) -> list[ModelSpec]:
    """Model specs from ``"logreg,sk-rf"``, a list of names, specs or ``{name, params}`` dicts.

    ``params`` apply to every model given by name (the CLI's ``--params`` with one model).
    Each model is built once here, so a bad name or parameter fails before any work starts.

    >>> [s.name for s in parse_models("logreg, sk-rf")]
    ['logreg', 'sk-rf']
    >>> parse_models("forest")
    Traceback (most recent call last):
    ...
    fraudstream.errors.ConfigError: unknown model 'forest'; known: logreg, hat, arf, hst, rules, logreg+hst, hat+hst, arf+hst, sk-logreg, sk-tree, sk-rf, sk-hgb, lgbm, xgb, ensemble
    """
    items: list[Any] = [m.strip() for m in models.split(",")] if isinstance(models, str) \
        else list(models)
    specs: list[ModelSpec] = []
    for item in items:
        if isinstance(item, ModelSpec):
            spec = item
        elif isinstance(item, str):
            if not item:
                continue
            spec = ModelSpec(name=item, params=dict(params or {}))
        elif isinstance(item, Mapping):
            spec = ModelSpec.model_validate(dict(item))
        else:
            raise ConfigError(f"not a model: {item!r}")
        spec.build()  # validates the name and the parameters
        specs.append(spec)
    if not specs:
        raise ConfigError(f"name at least one model; known: {', '.join(ALL_MODEL_NAMES)}")
    labels = [s.display for s in specs]
    if len(set(labels)) != len(labels):  # the same model twice: number them
        seen: dict[str, int] = {}
        out = []
        for s in specs:
            seen[s.display] = seen.get(s.display, 0) + 1
            out.append(s.model_copy(update={"label": f"{s.display}#{seen[s.display]}"}))
        specs = out
    return specs


class ProtocolOptions(BaseModel):
    """How to split and stream (see :mod:`models.protocols`); dates are ISO strings or dates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: Literal["holdout", "prequential"] = "holdout"
    label_delay: str | float | None = None  # None: the data's (the mapping's, else 7d)
    train_start: str | None = None
    train_days: float | None = Field(default=None, gt=0)
    test_start: str | None = None
    test_days: float | None = Field(default=None, gt=0)
    test_fraction: float = Field(default=0.3, gt=0.0, lt=1.0)
    calibration: float = Field(default=0.25, gt=0.0, lt=1.0)
    exclude_known_compromised: bool = False
    refit_every: str | float = "1d"
    refit_window: str | float | None = None  # None: as long as the training period
    k: int = Field(default=100, ge=1)

    def split(self, data: LabelledData) -> TimeSplit:
        return time_split(
            data.t, delay_s=data.label_delay_s, train_start=parse_time(self.train_start),
            train_days=self.train_days, test_start=parse_time(self.test_start),
            test_days=self.test_days, test_fraction=self.test_fraction,
            calibration=self.calibration)


# -- one model ----------------------------------------------------------------------------------


def _fit_batch(spec: ModelSpec, data: LabelledData, rows: np.ndarray) -> BatchModel:
    model = spec.build()
    assert isinstance(model, BatchModel)
    return model.fit(data.X.iloc[rows], data.y[rows], feature_set=data.feature_set)


def _latency(model: Model, data: LabelledData, rows: np.ndarray, n: int = 300,
             seed: int = 0) -> dict[str, Any]:
    """p50/p99 ms of predict_proba_one + explain_one on a sample of ``rows``."""
    if not len(rows) or n <= 0:
        return {}
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))
    records = data.X.iloc[pick].to_dict("records")
    for x in records[:5]:  # warm-up
        model.predict_proba_one(x)
    times = np.empty(len(records))
    for i, x in enumerate(records):
        t0 = time.perf_counter_ns()
        model.predict_proba_one(x)
        model.explain_one(x, 3)
        times[i] = (time.perf_counter_ns() - t0) / 1e6
    return {"p50_latency_ms": round(float(np.percentile(times, 50)), 4),
            "p99_latency_ms": round(float(np.percentile(times, 99)), 4),
            "latency_sample": len(records),
            "latency_scope": "model only: predict_proba_one + explain_one per transaction"}


def _calibrate(y: np.ndarray, scores: np.ndarray, max_fpr: float) -> tuple[float | None, dict[str, Any]]:
    ok = ~np.isnan(scores)
    y, scores = y[ok], scores[ok]
    info: dict[str, Any] = {"rows": int(len(y)), "frauds": int(y.sum()), "max_fpr": max_fpr}
    if not len(y) or y.all():
        info["note"] = "no genuine transaction to choose a threshold on"
        return None, info
    choice = threshold_for_fpr(y, scores, max_fpr)
    info.update({"threshold": choice.threshold, "fpr": round(choice.fpr, 8),
                 "recall": round(choice.recall, 6), "precision": round(choice.precision, 6),
                 "alerts": choice.alerts})
    if not y.any():
        info["note"] = "no fraud in the calibration period: the threshold only bounds the FPR"
    return choice.threshold, info


def run_model(
    data: LabelledData,
    spec: ModelSpec,
    split: TimeSplit,
    *,
    protocol: str = "holdout",
    max_fpr: float = 0.001,
    metric_rows: np.ndarray | None = None,
    refit_every_s: float = 86400.0,
    refit_window_s: float | None = None,
    k: int = 100,
    settings: Settings | None = None,
    tracker: Tracker | None = None,
    span: tuple[float, float] = (0.0, 1.0),
    latency_sample: int = 300,
    calibrate: bool = True,
) -> ModelEvaluation:
    """Evaluate one model on ``split`` by ``protocol`` (see the module doc).

    ``metric_rows`` are the test rows the metrics are taken on (default: every test row).
    ``refit_window_s`` (prequential batch models): the labelled history each daily refit uses;
    None = as long as the training period, and nothing before the training period's start.
    ``calibrate=False`` skips choosing a threshold (a batch model is then fitted once, not
    twice; the figures at the threshold are None): for tuning on ranking metrics.
    """
    if protocol not in ("holdout", "prequential"):
        raise ConfigError(f"unknown protocol {protocol!r}; use holdout or prequential")
    tracker = tracker or Tracker()
    train_m, gap_m, test_m = split.masks(data.t)
    train_rows = np.flatnonzero(train_m)
    test_rows = np.flatnonzero(test_m) if metric_rows is None else np.asarray(metric_rows)
    all_test = np.flatnonzero(test_m)
    cal_m = train_m & (data.t >= split.calibration_start)
    if data.y[train_rows].sum() == 0:
        raise DataError(f"no fraud in the training period ({split.to_dict()['train_start']} .. "
                        f"{split.to_dict()['train_end']}): nothing to learn from")
    timings: dict[str, float] = {}
    notes: list[str] = []
    lo, hi = span
    tracker.step(lo, f"{spec.display}: {protocol}")
    fitted: Model
    scores = np.full(data.n, np.nan)
    if is_batch_model(spec.name):
        t0 = time.perf_counter()
        early = np.flatnonzero(train_m & ~cal_m)
        cal_rows = np.flatnonzero(cal_m)
        calib: dict[str, Any]
        if not calibrate:
            threshold, calib = None, {"note": "not calibrated (tuning on a ranking metric)"}
        elif data.y[early].sum() and (data.y[early] == 0).any():
            cal_model = _fit_batch(spec, data, early)
            cal_scores = cal_model.predict_proba(data.X.iloc[cal_rows])
            threshold, calib = _calibrate(data.y[cal_rows], cal_scores, max_fpr)
            calib["how"] = "batch model fitted on the training period before the calibration part"
        else:
            threshold, calib = None, {"note": "no fraud before the calibration part of the "
                                              "training period: no threshold chosen"}
        timings["calibrate_s"] = time.perf_counter() - t0
        tracker.step(lo + 0.3 * (hi - lo), f"{spec.display}: fitting")
        t0 = time.perf_counter()
        fitted = _fit_batch(spec, data, train_rows)
        timings["fit_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if protocol == "holdout":
            scores[all_test] = fitted.predict_proba(data.X.iloc[all_test])  # type: ignore[attr-defined]
        else:
            refit_scores, fits = prequential_refit(
                lambda: spec.build(), data.X, data.y, data.t, all_test,
                delay_s=split.delay_s,
                window_s=split.train_length_s if refit_window_s is None else refit_window_s,
                start=split.test_start, refit_every_s=refit_every_s,
                history_start=split.train_start if refit_window_s is None else None,
                tracker=tracker,
                span=(lo + 0.5 * (hi - lo), lo + 0.95 * (hi - lo)))
            scores[all_test] = refit_scores
            calib["refits"] = fits
        timings["score_s"] = time.perf_counter() - t0
    else:
        fitted = spec.build()
        t0 = time.perf_counter()
        if protocol == "holdout":
            rows = np.concatenate([train_rows, all_test])
            s = prequential_stream(fitted, data.X, data.y, data.t, rows, delay_s=0.0,
                                   frozen_from=split.test_start, tracker=tracker,
                                   span=(lo, lo + 0.95 * (hi - lo)))
        else:
            rows = np.flatnonzero(train_m | gap_m | test_m)
            s = prequential_stream(fitted, data.X, data.y, data.t, rows,
                                   delay_s=split.delay_s, tracker=tracker,
                                   span=(lo, lo + 0.95 * (hi - lo)))
        scores[rows] = s
        timings["stream_s"] = time.perf_counter() - t0
        cal_rows = np.flatnonzero(cal_m)
        if calibrate:
            threshold, calib = _calibrate(data.y[cal_rows], scores[cal_rows], max_fpr)
            calib["how"] = "prequential scores of the model while it learned the training period"
        else:
            threshold, calib = None, {"note": "not calibrated (tuning on a ranking metric)"}
    calib["period_start"] = split.to_dict()["calibration_start"]
    calib["period_end"] = split.to_dict()["train_end"]
    if threshold is None and calibrate:
        notes.append("no operating threshold: " + str(calib.get("note", "")))
    s_test = scores[test_rows]
    if np.isnan(s_test).any():
        raise DataError(f"{spec.display}: {int(np.isnan(s_test).sum())} test rows were not scored")
    y_test = data.y[test_rows]
    cards = data.cards
    metrics = score_metrics(
        y_test, s_test, threshold=threshold, max_fpr=max_fpr,
        days=day_numbers(data.t[test_rows]) if cards is not None else None,
        cards=cards[test_rows] if cards is not None else None, k=k)
    latency = _latency(fitted, data, all_test, n=latency_sample)
    evaluation = ModelEvaluation(
        model=spec.name, params=dict(fitted.params), protocol=protocol, metrics=metrics,
        calibration=calib, timings=timings, latency=latency, notes=notes, label=spec.label,
        y=y_test, scores=s_test, fitted=fitted)
    if settings is not None:
        criteria = criteria_from_settings(settings.model_copy(update={"max_fpr": max_fpr}))
        evaluation.criteria = check(evaluation.flat(), criteria)
    tracker.step(hi, f"{spec.display}: done")
    return evaluation


# -- several models -----------------------------------------------------------------------------


def _window(options: ProtocolOptions) -> float | None:
    return None if options.refit_window is None else parse_duration(options.refit_window)


def metric_rows_for(data: LabelledData, split: TimeSplit,
                    options: ProtocolOptions) -> tuple[np.ndarray, int, str]:
    """The test rows metrics are taken on, how many known compromised ones were left out, and a
    note when they could not be (no card column)."""
    _, _, test_m = split.masks(data.t)
    rows, excluded, note = np.flatnonzero(test_m), 0, ""
    if options.exclude_known_compromised:
        if data.cards is None:
            note = "no card column: known compromised cards cannot be left out"
        else:
            known = known_compromised_mask(data.cards, data.t, data.y,
                                           train_start=split.train_start, delay_s=split.delay_s)
            excluded = int((test_m & known).sum())
            rows = np.flatnonzero(test_m & ~known)
    if not len(rows):
        raise DataError("no test transaction left to evaluate on")
    return rows, excluded, note


def evaluate_data(
    data: LabelledData,
    models: str | Sequence[str | ModelSpec | Mapping[str, Any]],
    options: ProtocolOptions | None = None,
    *,
    settings: Settings | None = None,
    max_fpr: float | None = None,
    plots_dir: str | Path | None = None,
    tracker: Tracker | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> EvaluationReport:
    """Evaluate ``models`` on prepared data: one leaderboard (see the module doc)."""
    started = time.perf_counter()
    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    options = options or ProtocolOptions()
    specs = parse_models(models)
    tracker = tracker or Tracker(what="evaluation")
    max_fpr = settings.max_fpr if max_fpr is None else max_fpr
    split = options.split(data)
    _, _, test_m = split.masks(data.t)
    notes = list(data.notes)
    metric_rows, excluded, note = metric_rows_for(data, split, options)
    if note:
        notes.append(note)
    lo, hi = span
    width = (hi - lo) * 0.95 / len(specs)
    results = []
    for i, spec in enumerate(specs):
        results.append(run_model(
            data, spec, split, protocol=options.protocol, max_fpr=max_fpr,
            metric_rows=metric_rows, refit_every_s=parse_duration(options.refit_every),
            refit_window_s=_window(options), k=options.k, settings=settings, tracker=tracker,
            span=(lo + i * width, lo + (i + 1) * width)))
    train_m, gap_m, _ = split.masks(data.t)
    split_info = {
        **split.to_dict(), "train_rows": int(train_m.sum()),
        "train_frauds": int(data.y[train_m].sum()), "gap_rows": int(gap_m.sum()),
        "test_rows": int(test_m.sum()), "test_frauds": int(data.y[test_m].sum()),
        "evaluated_rows": int(len(metric_rows)),
        "evaluated_frauds": int(data.y[metric_rows].sum()),
        "excluded_known_compromised": excluded,
        "exclude_known_compromised": options.exclude_known_compromised,
    }
    report = EvaluationReport(protocol=options.protocol, objective=settings.objective_metric,
                              data=data.describe(), split=split_info, results=results,
                              notes=notes)
    if plots_dir is not None:
        tracker.step(lo + 0.96 * (hi - lo), "plots")
        curves = {e.name: (e.y, e.scores) for e in report.ranked()
                  if e.y is not None and e.scores is not None}
        report.plots = plot_curves(curves, plots_dir, title=f"({options.protocol})")
    report.seconds = time.perf_counter() - started
    return report


#: The metrics :class:`FoldsEvaluation` summarises (ranking metrics: no threshold needed).
FOLD_METRICS = ("roc_auc", "average_precision", "card_precision_at_100", "recall_at_max_fpr")


def fold_splits(data: LabelledData, options: ProtocolOptions,
                folds: int) -> list[tuple[TimeSplit, np.ndarray]]:
    """The prequential folds of ``options``' split (fold 0 is that split, then one test length
    earlier each), each with the test rows its metrics are taken on (:func:`metric_rows_for`).

    Raises DataError when an earlier fold has no training fraud or no test transaction (fold 0
    is checked where it is split and run).
    """
    splits = prequential_folds(options.split(data), folds)
    out = []
    for k, sp in enumerate(splits):
        tr, _, te = sp.masks(data.t)
        if k and (not tr.any() or not te.any() or not data.y[tr].any()):  # fold 0: time_split
            d = sp.to_dict()
            raise DataError(f"fold {k + 1} of {folds} ({d['train_start'][:10]} .. "
                            f"{d['test_end'][:10]}) has no training fraud or no test "
                            "transaction: use fewer folds")
        out.append((sp, metric_rows_for(data, sp, options)[0]))
    return out


@dataclass
class FoldsEvaluation:
    """One model judged on prequential folds: each fold's evaluation, their mean and std.

    The standard deviation is the population one (``ddof=0``), as the handbook reports it
    (scikit-learn's ``std_test_*``).
    """

    label: str
    model: str
    params: dict[str, Any]
    folds: list[dict[str, Any]]
    evaluations: list[ModelEvaluation] = field(default_factory=list, repr=False)
    seconds: float = 0.0

    def values(self, key: str) -> list[Any]:
        return [f["metrics"].get(key) for f in self.folds]

    def mean(self, key: str) -> float | None:
        v = self.values(key)
        return None if any(x is None for x in v) else round(float(np.mean(v)), 6)

    def std(self, key: str) -> float | None:
        v = self.values(key)
        return None if any(x is None for x in v) else round(float(np.std(v)), 6)

    def summary(self, keys: Sequence[str] = FOLD_METRICS) -> dict[str, dict[str, Any]]:
        return {k: {"mean": self.mean(k), "std": self.std(k), "per_fold": self.values(k)}
                for k in keys}

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "model": self.model, "params": self.params,
                "summary": self.summary(), "folds": self.folds, "seconds": round(self.seconds, 2)}


def evaluate_folds(
    data: LabelledData,
    spec: ModelSpec | str,
    options: ProtocolOptions | None = None,
    *,
    folds: int = 4,
    splits: Sequence[tuple[TimeSplit, np.ndarray]] | None = None,
    settings: Settings | None = None,
    max_fpr: float | None = None,
    calibrate: bool = False,
    tracker: Tracker | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> FoldsEvaluation:
    """Evaluate ``spec`` on ``folds`` prequential folds of ``options``' split (or on ``splits``
    from :func:`fold_splits`), one model fitted per fold, by ``options.protocol``.

    ``calibrate`` (False): choose an operating threshold on each fold too (a batch model is then
    fitted twice per fold); the ranking metrics of :data:`FOLD_METRICS` need none.
    """
    started = time.perf_counter()
    options = options or ProtocolOptions()
    spec = parse_models([spec])[0]
    max_fpr = (settings.max_fpr if settings is not None else 0.001) if max_fpr is None \
        else max_fpr
    splits = list(splits) if splits is not None else fold_splits(data, options, folds)
    tracker = tracker or Tracker(what="evaluation")
    lo, hi = span
    step = (hi - lo) / len(splits)
    out: list[dict[str, Any]] = []
    evs: list[ModelEvaluation] = []
    for f, (sp, rows) in enumerate(splits):
        ev = run_model(data, spec, sp, protocol=options.protocol, max_fpr=max_fpr,
                       metric_rows=rows, refit_every_s=parse_duration(options.refit_every),
                       refit_window_s=_window(options), k=options.k, settings=settings,
                       tracker=tracker, span=(lo + f * step, lo + (f + 1) * step),
                       latency_sample=0, calibrate=calibrate)
        evs.append(ev)
        out.append({**sp.to_dict(), "evaluated_rows": int(len(rows)),
                    "evaluated_frauds": int(data.y[rows].sum()),
                    "metrics": {k: ev.metrics.get(k) for k in
                                (*FOLD_METRICS, "recall_at_threshold", "fpr_at_threshold")}})
    return FoldsEvaluation(label=spec.display, model=spec.name, params=dict(evs[0].params),
                           folds=out, evaluations=evs, seconds=time.perf_counter() - started)


def _load(path: str | Path, mapping: ColumnMapping, options: ProtocolOptions,
          feature_set: str | None, nrows: int | None, settings: Settings,
          tracker: Tracker) -> LabelledData:
    return load_labelled(path, mapping, feature_set=feature_set, label_delay=options.label_delay,
                         nrows=nrows, base_currency=settings.base_currency,
                         currency_rates=settings.currency_rates, tracker=tracker)


def evaluate(
    path: str | Path,
    mapping: ColumnMapping,
    models: str | Sequence[str | ModelSpec | Mapping[str, Any]],
    options: ProtocolOptions | None = None,
    *,
    feature_set: str | None = None,
    settings: Settings | None = None,
    max_fpr: float | None = None,
    plots_dir: str | Path | None = None,
    nrows: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> EvaluationReport:
    """Read a file, compute its features and evaluate ``models`` on it (a background job)."""
    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    options = options or ProtocolOptions()
    parse_models(models)  # fail fast on a bad name, before reading anything
    tracker = Tracker(progress, cancel, what="evaluation")
    tracker.step(0.0, "reading")
    data = _load(path, mapping, options, feature_set, nrows, settings, tracker)
    report = evaluate_data(data, models, options, settings=settings, max_fpr=max_fpr,
                           plots_dir=plots_dir, tracker=tracker, span=(0.3, 1.0))
    report.data["prepare_seconds"] = round(data.seconds, 2)
    tracker.done()
    return report


# -- train and register -------------------------------------------------------------------------


@dataclass
class TrainResult:
    """A trained model's evaluation and the registry version it was saved as."""

    evaluation: ModelEvaluation
    report: EvaluationReport
    version: str | None = None
    threshold: float | None = None
    promoted: bool = False
    challenger: bool = False
    registry: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "threshold": self.threshold, "promoted": self.promoted,
                "challenger": self.challenger, "registry": self.registry, "notes": self.notes,
                **self.report.to_dict()}


def registry_metrics(evaluation: ModelEvaluation, report: EvaluationReport) -> dict[str, Any]:
    """What a registry version records about how it was evaluated (JSON-ready, flat)."""
    m = {k: v for k, v in evaluation.flat().items()
         if k not in ("card_precision_per_day",) and not isinstance(v, dict)}
    m.update({"protocol": report.protocol, "feature_set": report.data.get("feature_set"),
              "source": report.data.get("source"), "test_start": report.split.get("test_start"),
              "test_end": report.split.get("test_end"),
              "calibration": {k: v for k, v in evaluation.calibration.items() if k != "refits"}})
    return m


def save_to_registry(
    evaluation: ModelEvaluation,
    report: EvaluationReport,
    settings: Settings,
    *,
    promote: bool = False,
    challenger: bool = False,
    note: str = "",
) -> TrainResult:
    """Save an evaluated model (with its threshold and metrics) to the registry."""
    from models.registry import ModelRegistry

    if promote and challenger:
        raise ConfigError("a model is promoted to champion or added as a challenger, not both")
    model = evaluation.fitted
    if model is None:
        raise ConfigError("this evaluation kept no fitted model to save")
    registry = ModelRegistry(settings.registry_path, settings.hmac_key,
                             keep_online=settings.registry_keep_snapshots)
    threshold = evaluation.metrics.get("threshold")
    labels = int(getattr(model, "rows_fitted", 0) or getattr(model, "labels_learned", 0))
    split = report.split
    meta = registry.save(
        model, name=evaluation.model, params=dict(model.params), kind="offline",
        labels_learned=labels, metrics=registry_metrics(evaluation, report),
        time_range=(parse_time(split["train_start"]) or 0.0, parse_time(split["train_end"]) or 0.0),
        threshold=threshold,
        note=note or f"trained offline ({report.protocol}) on {report.data.get('source')}")
    result = TrainResult(evaluation=evaluation, report=report, version=meta.version,
                         threshold=threshold, registry=str(settings.registry_path))
    if promote:
        registry.promote(meta.version, reason="fraudstream train --promote")
        result.promoted = True
    elif challenger:
        registry.add_challenger(meta.version, reason="fraudstream train/tune")
        result.challenger = True
    if threshold is None:
        result.notes.append("saved without an operating threshold: the scorer falls back to "
                            "FRAUDSTREAM_REVIEW_THRESHOLD")
    return result


def train(
    path: str | Path,
    mapping: ColumnMapping,
    model: str | ModelSpec,
    options: ProtocolOptions | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    feature_set: str | None = None,
    settings: Settings | None = None,
    max_fpr: float | None = None,
    promote: bool = False,
    challenger: bool = False,
    plots_dir: str | Path | None = None,
    nrows: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> TrainResult:
    """Train one model on the training period, evaluate it, save it to the registry (a job)."""
    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    options = options or ProtocolOptions()
    specs = parse_models([model] if isinstance(model, ModelSpec) else model, params)
    if len(specs) != 1:
        raise ConfigError("train takes one model; use evaluate (or leaderboard) to compare several")
    tracker = Tracker(progress, cancel, what="training")
    tracker.step(0.0, "reading")
    data = _load(path, mapping, options, feature_set, nrows, settings, tracker)
    report = evaluate_data(data, specs, options, settings=settings, max_fpr=max_fpr,
                           plots_dir=plots_dir, tracker=tracker, span=(0.3, 0.95))
    tracker.step(0.97, "saving to the registry")
    result = save_to_registry(report.results[0], report, settings, promote=promote,
                              challenger=challenger)
    tracker.done()
    return result

