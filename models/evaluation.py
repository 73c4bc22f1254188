"""Evaluation results: the metrics of one model's test scores, the leaderboard, curves as PNG.

:func:`score_metrics` turns test labels and scores into every figure an evaluation reports, flat
and JSON-ready (``None`` where undefined):

- ``n``, ``n_fraud``, ``fraud_rate``; ``roc_auc``, ``average_precision``;
- ``card_precision_at_100`` (the handbook's definition, per UTC day, see
  :func:`models.metrics.card_precision_at_k`) and its per-day values, when cards are known;
- at the OPERATING threshold (chosen before the test, for the FPR target): ``threshold``,
  ``precision``, ``recall``, ``f1``, ``fpr_at_threshold``, ``recall_at_threshold``, ``alerts``,
  ``confusion_matrix`` (``[[tn, fp], [fn, tp]]``);
- ``recall_at_max_fpr``: the best recall any threshold reaches on the test data within the FPR
  target (a ranking figure, to compare models; not an operating result).

A :class:`ModelEvaluation` adds the model's name, parameters, the threshold's calibration,
timings, the scoring latency and the success criteria's pass/fail table
(:func:`models.criteria.check`); an :class:`EvaluationReport` holds one per model, ranked by the
objective metric, with ROC and precision-recall curves drawn as PNG (matplotlib, no pyplot).

>>> m = score_metrics([0, 0, 1, 1, 0, 1, 0, 0], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.7, 0.05],
...                   threshold=0.5, max_fpr=0.2)
>>> m["n"], m["n_fraud"], m["roc_auc"], m["recall_at_threshold"], m["fpr_at_threshold"]
(8, 3, 0.866667, 0.666667, 0.2)
>>> m["confusion_matrix"], m["recall_at_max_fpr"], m["card_precision_at_100"]
([[4, 1], [1, 2]], 0.666667, None)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models import metrics as M
from models.criteria import CriteriaReport

__all__ = ["EvaluationReport", "ModelEvaluation", "plot_curves", "score_metrics"]

CONTRACT_KEYS = ("roc_auc", "average_precision", "n", "n_fraud")


def _r(v: float | None, places: int = 6) -> float | None:
    if v is None:
        return None
    v = float(v)
    return round(v, places) if math.isfinite(v) else None


def score_metrics(
    y: Sequence[Any] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    threshold: float | None,
    max_fpr: float,
    days: Sequence[Any] | np.ndarray | None = None,
    cards: Sequence[Any] | np.ndarray | None = None,
    k: int = 100,
) -> dict[str, Any]:
    """Every metric of one model on one test set (see the module doc)."""
    yv = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=float)
    if yv.shape != s.shape:
        raise ValueError(f"{yv.size} labels but {s.size} scores")
    n, n_fraud = int(yv.size), int(yv.sum())
    out: dict[str, Any] = {
        "n": n, "n_fraud": n_fraud, "fraud_rate": _r(n_fraud / n if n else None),
        "roc_auc": _r(M.roc_auc(yv, s)) if n else None,
        "average_precision": _r(M.average_precision(yv, s)) if n else None,
    }
    key = f"card_precision_at_{k}"
    out[key] = None
    out["card_precision_per_day"] = None
    if cards is not None and days is not None and n:
        cp = M.card_precision_at_k(list(days), list(cards), yv.tolist(), s.tolist(), k=k)
        out[key] = _r(cp.mean)
        out["card_precision_per_day"] = {str(d): _r(v) for d, v in cp.per_day.items()}
    if "card_precision_at_100" not in out:
        out["card_precision_at_100"] = None
    out["k"] = k
    out["max_fpr"] = max_fpr
    if threshold is not None and n:
        tm = M.at_threshold(yv, s, threshold)
        (tn, fp), (fn, tp) = M.confusion_matrix(yv, s >= threshold)
        out.update({
            "threshold": float(threshold), "precision": _r(tm.precision), "recall": _r(tm.recall),
            "f1": _r(tm.f1),
            "fpr_at_threshold": _r(fp / (fp + tn) if fp + tn else 0.0, 8),
            "recall_at_threshold": _r(tp / (tp + fn) if tp + fn else 0.0),
            "alerts": tp + fp, "confusion_matrix": [[tn, fp], [fn, tp]],
        })
    else:
        out.update({"threshold": None, "precision": None, "recall": None, "f1": None,
                    "fpr_at_threshold": None, "recall_at_threshold": None, "alerts": None,
                    "confusion_matrix": None})
    out["recall_at_max_fpr"] = _r(M.threshold_for_fpr(yv, s, max_fpr).recall) if n else None
    return out


@dataclass
class ModelEvaluation:
    """One model's evaluation: metrics on the test set, how its threshold was chosen, timings."""

    model: str
    params: dict[str, Any]
    protocol: str
    metrics: dict[str, Any]
    calibration: dict[str, Any]
    criteria: CriteriaReport | None = None
    timings: dict[str, float] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    label: str = ""  # a display name (the model name, or name#i for repeated models)
    # not serialised: for curves and the registry
    y: np.ndarray | None = field(default=None, repr=False)
    scores: np.ndarray | None = field(default=None, repr=False)
    fitted: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.label or self.model

    def flat(self) -> dict[str, Any]:
        """The metrics, the latency figure and the criteria status, one level deep."""
        out = dict(self.metrics)
        if self.latency.get("p99_latency_ms") is not None:
            out["p99_latency_ms"] = self.latency["p99_latency_ms"]
        if self.criteria is not None:
            out["criteria_status"] = self.criteria.status
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "label": self.name, "params": self.params,
                "protocol": self.protocol, **self.metrics, "calibration": self.calibration,
                "latency": self.latency, "timings": {k: round(v, 3) for k, v in self.timings.items()},
                "criteria": self.criteria.to_dict() if self.criteria else None,
                "notes": self.notes}


def _rank_key(metric: str, e: ModelEvaluation) -> tuple[float, float]:
    v = e.metrics.get(metric)
    ap = e.metrics.get("average_precision")
    return (-(v if v is not None else -math.inf), -(ap if ap is not None else -math.inf))


@dataclass
class EvaluationReport:
    """Every model's evaluation on one data set and protocol, ranked by ``objective``."""

    protocol: str
    objective: str
    data: dict[str, Any]
    split: dict[str, Any]
    results: list[ModelEvaluation]
    plots: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def ranked(self) -> list[ModelEvaluation]:
        return sorted(self.results, key=lambda e: _rank_key(self.objective, e))

    @property
    def best(self) -> ModelEvaluation:
        return self.ranked()[0]

    def leaderboard(self) -> list[dict[str, Any]]:
        """One row per model, best first."""
        rows = []
        for rank, e in enumerate(self.ranked(), start=1):
            m = e.metrics
            rows.append({
                "rank": rank, "model": e.name, "roc_auc": m.get("roc_auc"),
                "average_precision": m.get("average_precision"),
                "card_precision_at_100": m.get("card_precision_at_100"),
                "recall_at_max_fpr": m.get("recall_at_max_fpr"),
                "threshold": m.get("threshold"), "precision": m.get("precision"),
                "recall_at_threshold": m.get("recall_at_threshold"),
                "fpr_at_threshold": m.get("fpr_at_threshold"),
                "p99_latency_ms": e.latency.get("p99_latency_ms"),
                "criteria": e.criteria.status if e.criteria else None,
                "seconds": round(sum(e.timings.values()), 2),
            })
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The best model's figures at the top level (the CLI contract), then everything."""
        best = self.best
        top = {k: best.metrics.get(k) for k in CONTRACT_KEYS}
        if best.metrics.get("card_precision_at_100") is not None:
            top["card_precision_at_100"] = best.metrics["card_precision_at_100"]
        return {
            **top, "model": best.name, "protocol": self.protocol, "objective": self.objective,
            **{k: v for k, v in best.flat().items() if k not in top},
            "criteria": best.criteria.to_dict() if best.criteria else None,
            "leaderboard": self.leaderboard(), "data": self.data, "split": self.split,
            "results": [e.to_dict() for e in self.ranked()], "plots": self.plots,
            "notes": self.notes, "seconds": round(self.seconds, 2),
        }

    def table(self) -> str:
        """The leaderboard as aligned text."""
        cols = [("rank", "#", "{}"), ("model", "model", "{}"), ("roc_auc", "ROC AUC", "{:.4f}"),
                ("average_precision", "AP", "{:.4f}"),
                ("card_precision_at_100", "CP@100", "{:.4f}"),
                ("recall_at_max_fpr", "rec@FPR", "{:.4f}"), ("threshold", "thr", "{:.4g}"),
                ("recall_at_threshold", "recall", "{:.4f}"),
                ("fpr_at_threshold", "FPR", "{:.5f}"), ("p99_latency_ms", "p99 ms", "{:.3f}"),
                ("criteria", "criteria", "{}"), ("seconds", "s", "{:.1f}")]
        rows = [[("-" if r[k] is None else f.format(r[k])) for k, _, f in cols]
                for r in self.leaderboard()]
        head = [h for _, h, _ in cols]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) if i < 2 else h.rjust(w)
                           for i, (h, w) in enumerate(zip(head, widths, strict=True)))]
        for r in rows:
            lines.append("  ".join(v.ljust(w) if i < 2 else v.rjust(w)
                                   for i, (v, w) in enumerate(zip(r, widths, strict=True))))
        return "\n".join(lines)


def plot_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], out_dir: str | Path,
                title: str = "") -> dict[str, str]:
    """``roc.png`` and ``pr.png`` in ``out_dir``: one line per model (name -> (y, scores))."""
    from features.plotting import check_plotting, new_figure, save_png

    check_plotting()
    out = Path(out_dir)
    paths: dict[str, str] = {}
    fig = new_figure(6.5, 5.5)
    ax = fig.add_subplot()
    for name, (y, s) in curves.items():
        fpr_, tpr = M.roc_curve(y, s)
        auc = M.roc_auc(y, s)
        ax.plot(fpr_, tpr, lw=1.4, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate (recall)",
           title=f"ROC {title}".strip(), xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    paths["roc"] = str(save_png(fig, out / "roc.png"))
    fig = new_figure(6.5, 5.5)
    ax = fig.add_subplot()
    base = None
    for name, (y, s) in curves.items():
        rec, prec = M.precision_recall_curve(y, s)
        ap = M.average_precision(y, s)
        if len(rec):  # precision P_n holds on (R_n-1, R_n]: the area is the AP
            rec, prec = np.r_[0.0, rec], np.r_[prec[0], prec]
        ax.step(rec, prec, where="pre", lw=1.4, label=f"{name} (AP {ap:.3f})")
        base = float(np.mean(np.asarray(y, dtype=float))) if len(y) else None
    if base is not None:
        ax.axhline(base, ls=":", color="grey", lw=1, label=f"fraud rate {base:.4f}")
    ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall {title}".strip(),
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper right", fontsize=8)
    paths["pr"] = str(save_png(fig, out / "pr.png"))
    return paths
