"""Evaluation metrics: batch (numpy) and rolling prequential (for the online learner).

Conventions, the same as scikit-learn's: a transaction is an alert when ``score >= threshold``;
precision is 0 when nothing is flagged; ranking metrics (ROC AUC, average precision) are ``nan``
when only one class is present. Average precision is ``sum_n (R_n - R_{n-1}) P_n`` over the
distinct score thresholds (no interpolation), as ``sklearn.metrics.average_precision_score``.

Card precision@k follows the handbook (``../shared/data/fdh/README.md``): for each day, each card's
highest score that day and whether it had any fraud that day; cards found compromised in the top
k of an EARLIER day are left out; the share of compromised cards among the top k cards (divided
by k, even on a day with fewer cards); averaged over the days. Ties in score are ranked by card
id, so the answer is deterministic.

>>> y = [0, 0, 1, 1, 0, 1, 0, 0]
>>> s = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.7, 0.05]
>>> round(roc_auc(y, s), 4), round(average_precision(y, s), 4)
(0.8667, 0.8667)
>>> at_threshold(y, s, 0.5)
ThresholdMetrics(threshold=0.5, tp=2, fp=1, tn=4, fn=1, precision=0.6667, recall=0.6667, f1=0.6667, fpr=0.2)
>>> confusion_matrix(y, [v >= 0.5 for v in s])
[[4, 1], [1, 2]]
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CardPrecision",
    "RollingMetrics",
    "ThresholdChoice",
    "ThresholdMetrics",
    "at_threshold",
    "average_precision",
    "card_precision_at_k",
    "confusion_matrix",
    "f1",
    "fpr",
    "precision",
    "precision_recall_curve",
    "recall",
    "recall_at",
    "roc_auc",
    "roc_curve",
    "threshold_for_fpr",
]


def _arrays(y_true: Iterable[Any], scores: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(list(y_true) if not isinstance(y_true, np.ndarray) else y_true).astype(bool)
    s = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true and scores must be 1-D and of equal length ({y.shape} vs {s.shape})")
    return y, s


# -- binary decisions -------------------------------------------------------------------------


def confusion_matrix(y_true: Iterable[Any], y_pred: Iterable[Any]) -> list[list[int]]:
    """``[[tn, fp], [fn, tp]]`` (scikit-learn's layout for labels [0, 1]).

    >>> confusion_matrix([1, 0, 1, 0], [1, 1, 0, 0])
    [[1, 1], [1, 1]]
    """
    y, p = _arrays(y_true, y_pred)
    p = p.astype(bool)
    tp = int(np.sum(y & p))
    fp = int(np.sum(~y & p))
    fn = int(np.sum(y & ~p))
    tn = int(np.sum(~y & ~p))
    return [[tn, fp], [fn, tp]]


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def precision(y_true: Iterable[Any], y_pred: Iterable[Any]) -> float:
    """tp / (tp + fp); 0 when nothing is predicted positive.

    >>> precision([1, 0, 1, 0], [1, 1, 0, 0])
    0.5
    """
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred)
    return _ratio(tp, tp + fp)


def recall(y_true: Iterable[Any], y_pred: Iterable[Any]) -> float:
    """tp / (tp + fn); 0 when there is no positive.

    >>> recall([1, 0, 1, 1], [1, 1, 0, 1])
    0.6666666666666666
    """
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred)
    return _ratio(tp, tp + fn)


def fpr(y_true: Iterable[Any], y_pred: Iterable[Any]) -> float:
    """fp / (fp + tn): the share of genuine transactions flagged.

    >>> fpr([1, 0, 0, 0, 0], [1, 1, 0, 0, 0])
    0.25
    """
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred)
    return _ratio(fp, fp + tn)


def f1(y_true: Iterable[Any], y_pred: Iterable[Any]) -> float:
    """Harmonic mean of precision and recall; 0 when both are 0.

    >>> f1([1, 0, 1, 0], [1, 1, 0, 0])
    0.5
    """
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred)
    return _ratio(2 * tp, 2 * tp + fp + fn)


@dataclass(frozen=True)
class ThresholdMetrics:
    """Counts and rates of the alerts ``score >= threshold`` (rates rounded to 4 places)."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    precision: float
    recall: float
    f1: float
    fpr: float


def at_threshold(y_true: Iterable[Any], scores: Iterable[Any], threshold: float) -> ThresholdMetrics:
    """Precision, recall, F1 and FPR of the alerts ``score >= threshold``.

    >>> at_threshold([1, 0, 0, 1], [0.9, 0.6, 0.2, 0.3], 0.5).fpr
    0.5
    """
    y, s = _arrays(y_true, scores)
    (tn, fp), (fn, tp) = confusion_matrix(y, s >= threshold)
    return ThresholdMetrics(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        precision=round(_ratio(tp, tp + fp), 4),
        recall=round(_ratio(tp, tp + fn), 4),
        f1=round(_ratio(2 * tp, 2 * tp + fp + fn), 4),
        fpr=round(_ratio(fp, fp + tn), 4),
    )


def recall_at(y_true: Iterable[Any], scores: Iterable[Any], threshold: float) -> float:
    """Recall of the alerts ``score >= threshold`` (unrounded).

    >>> recall_at([1, 1, 0], [0.9, 0.4, 0.1], 0.5)
    0.5
    """
    y, s = _arrays(y_true, scores)
    return recall(y, s >= threshold)


# -- ranking ----------------------------------------------------------------------------------


def roc_auc(y_true: Iterable[Any], scores: Iterable[Any]) -> float:
    """Area under the ROC curve (ties count one half); ``nan`` with a single class.

    >>> roc_auc([0, 1, 0, 1], [0.1, 0.9, 0.5, 0.5])
    0.875
    >>> roc_auc([0, 0], [0.1, 0.2])
    nan
    """
    y, s = _arrays(y_true, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=float)
    sorted_s = s[order]
    # average ranks of ties (1-based)
    bounds = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [s.size]))
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds descending, tps, fps) at each distinct score."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), y.size - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = (last + 1) - tps
    return s_sorted[last], tps, fps


def average_precision(y_true: Iterable[Any], scores: Iterable[Any]) -> float:
    """Average precision (scikit-learn's definition); ``nan`` when there is no positive.

    >>> average_precision([0, 1, 0, 1], [0.1, 0.9, 0.5, 0.5])
    0.8333333333333333
    """
    y, s = _arrays(y_true, scores)
    if y.size == 0 or not y.any():
        return math.nan
    _, tps, fps = _curve(y, s)
    prec = tps / (tps + fps)
    rec = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, rec]) * prec))


def roc_curve(y_true: Iterable[Any], scores: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` at every distinct score, from (0, 0) to (1, 1), for plotting.

    >>> fpr_, tpr_ = roc_curve([0, 1, 0, 1], [0.1, 0.9, 0.5, 0.5])
    >>> fpr_.tolist(), tpr_.tolist()
    ([0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0])
    """
    y, s = _arrays(y_true, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if y.size == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    _, tps, fps = _curve(y, s)
    tpr = np.r_[0.0, tps / n_pos] if n_pos else np.r_[0.0, np.zeros(tps.size)]
    fpr_ = np.r_[0.0, fps / n_neg] if n_neg else np.r_[0.0, np.zeros(fps.size)]
    return fpr_, tpr


def precision_recall_curve(
    y_true: Iterable[Any], scores: Iterable[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """``(recall, precision)`` at every distinct score, highest threshold first, for plotting.

    >>> r, p = precision_recall_curve([0, 1, 0, 1], [0.1, 0.9, 0.5, 0.5])
    >>> r.tolist(), [round(float(v), 4) for v in p]
    ([0.5, 1.0, 1.0], [1.0, 0.6667, 0.5])
    """
    y, s = _arrays(y_true, scores)
    if y.size == 0 or not y.any():
        return np.zeros(0), np.zeros(0)
    _, tps, fps = _curve(y, s)
    return tps / tps[-1], tps / (tps + fps)


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and what it gives on the data it was chosen on."""

    threshold: float
    fpr: float
    recall: float
    precision: float
    alerts: int


def threshold_for_fpr(
    y_true: Iterable[Any], scores: Iterable[Any], max_fpr: float
) -> ThresholdChoice:
    """The threshold with the highest recall whose FPR is at most ``max_fpr``.

    Candidates are the distinct scores (alert when ``score >= threshold``); among thresholds of
    equal recall the highest wins (fewest false alerts). When even the top score exceeds the
    FPR budget, the threshold is just above the highest score (no alert).

    >>> y = [0, 0, 1, 1, 0, 1, 0, 0]
    >>> s = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.7, 0.05]
    >>> threshold_for_fpr(y, s, 0.0)
    ThresholdChoice(threshold=0.8, fpr=0.0, recall=0.6666666666666666, precision=1.0, alerts=2)
    >>> threshold_for_fpr(y, s, 0.2).threshold  # 0.7 would add a false alert, no recall
    0.8
    >>> threshold_for_fpr(y, s, 0.5)
    ThresholdChoice(threshold=0.35, fpr=0.4, recall=1.0, precision=0.6, alerts=5)
    """
    if not 0.0 <= max_fpr <= 1.0:
        raise ValueError(f"max_fpr must be in [0, 1], not {max_fpr}")
    y, s = _arrays(y_true, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if y.size == 0:
        raise ValueError("no data to choose a threshold on")
    thresholds, tps, fps = _curve(y, s)
    rates = fps / n_neg if n_neg else np.zeros_like(fps, dtype=float)
    ok = np.flatnonzero(rates <= max_fpr + 1e-12)
    if ok.size == 0:
        return ThresholdChoice(float(np.nextafter(s.max(), np.inf)), 0.0, 0.0, 0.0, 0)
    best_tp = tps[ok].max()
    i = int(ok[np.argmax(tps[ok] == best_tp)])  # first (highest threshold) reaching it
    tp, fp = int(tps[i]), int(fps[i])
    return ThresholdChoice(
        threshold=float(thresholds[i]),
        fpr=float(rates[i]),
        recall=_ratio(tp, n_pos),
        precision=_ratio(tp, tp + fp),
        alerts=tp + fp,
    )


# -- card precision@k -------------------------------------------------------------------------


@dataclass(frozen=True)
class CardPrecision:
    """Card precision@k averaged over days, and each day's value in day order."""

    k: int
    mean: float
    per_day: dict[Any, float]


def _cp_days(
    days: dict[Any, dict[Hashable, list[float]]], k: int
) -> dict[Any, float]:
    """Per-day card precision@k from ``{day: {card: [max score, any fraud]}}``."""
    detected: set[Hashable] = set()
    out: dict[Any, float] = {}
    for day in sorted(days):
        cards = [(c, v) for c, v in days[day].items() if c not in detected]
        cards.sort(key=lambda cv: (-cv[1][0], str(cv[0])))
        top = cards[:k]
        hits = [c for c, v in top if v[1] > 0]
        out[day] = len(hits) / k
        detected.update(hits)
    return out


def card_precision_at_k(
    days: Sequence[Any],
    cards: Sequence[Hashable],
    y_true: Sequence[Any],
    scores: Sequence[float],
    k: int = 100,
) -> CardPrecision:
    """Card precision@k over days, as the handbook defines it (see the module doc).

    ``days`` holds each transaction's day (any sortable value: a date, a day number).

    >>> days  = [1, 1, 1, 1, 2, 2, 2]
    >>> cards = ["a", "a", "b", "c", "a", "b", "c"]
    >>> y     = [0, 1, 0, 0, 1, 1, 0]
    >>> s     = [0.9, 0.2, 0.8, 0.1, 0.95, 0.5, 0.6]
    >>> card_precision_at_k(days, cards, y, s, k=2)
    CardPrecision(k=2, mean=0.5, per_day={1: 0.5, 2: 0.5})

    Day 1: card a (max 0.9, had a fraud) and b (0.8) are the top 2: one compromised, 0.5. Day 2:
    a was detected on day 1 and is left out; the top 2 are c (0.6) and b (0.5, fraud): 0.5.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if not (len(days) == len(cards) == len(y_true) == len(scores)):
        raise ValueError("days, cards, y_true and scores must have equal lengths")
    per: dict[Any, dict[Hashable, list[float]]] = {}
    for d, c, y, s in zip(days, cards, y_true, scores, strict=True):
        day = per.setdefault(d, {})
        v = day.get(c)
        if v is None:
            day[c] = [float(s), 1.0 if y else 0.0]
        else:
            if s > v[0]:
                v[0] = float(s)
            if y:
                v[1] = 1.0
    per_day = _cp_days(per, k)
    mean = float(np.mean(list(per_day.values()))) if per_day else math.nan
    return CardPrecision(k=k, mean=mean, per_day=per_day)


# -- rolling prequential metrics --------------------------------------------------------------


class RollingMetrics:
    """Prequential metrics of one model over its latest labels (the learner keeps one per model).

    ``update(y, score, card_id=, event_time=)`` after the model predicted and before it learns.
    Over the latest ``window`` labels: average precision and ROC AUC (computed when asked, in
    O(window log window)), precision and recall at ``threshold`` (kept as running counts, O(1)).
    Card precision@``k`` per event-time day (UTC days of ``day_seconds``) over the latest ``days``
    days, computed when asked; the mean leaves out the latest day while it may still be filling.

    >>> m = RollingMetrics(window=4, threshold=0.5, k=1)
    >>> for y, s, card, t in [(1, 0.9, "a", 0), (0, 0.6, "b", 10), (0, 0.1, "c", 20),
    ...                       (0, 0.3, "d", 86400), (1, 0.2, "a", 86410)]:
    ...     m.update(y, s, card_id=card, event_time=t)
    >>> m.n, m.positives, m.precision, m.recall, m.fpr
    (4, 1, 0.0, 0.0, 0.3333333333333333)
    >>> m.card_precision_per_day()
    {0: 1.0, 1: 0.0}
    >>> m.summary()["card_precision_at_k"]
    1.0
    """

    def __init__(
        self,
        window: int = 5000,
        threshold: float = 0.5,
        k: int = 100,
        days: int = 7,
        day_seconds: float = 86400.0,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.threshold = threshold
        self.k = k
        self.days = days
        self.day_seconds = day_seconds
        self._y: deque[bool] = deque()
        self._s: deque[float] = deque()
        self.total = 0
        self.positives = 0
        self._tp = 0
        self._fp = 0
        self._fn = 0
        self._per_day: dict[int, dict[Hashable, list[float]]] = {}

    @property
    def n(self) -> int:
        """Labels in the window."""
        return len(self._y)

    def update(
        self,
        y: bool,
        score: float,
        *,
        card_id: Hashable | None = None,
        event_time: float | None = None,
    ) -> None:
        y = bool(y)
        alert = score >= self.threshold
        self._y.append(y)
        self._s.append(float(score))
        self.total += 1
        self._count(y, alert, +1)
        if len(self._y) > self.window:
            oy = self._y.popleft()
            os_ = self._s.popleft()
            self._count(oy, os_ >= self.threshold, -1)
        if card_id is not None and event_time is not None:
            self._card(card_id, int(event_time // self.day_seconds), score, y)

    def _count(self, y: bool, alert: bool, d: int) -> None:
        if y:
            self.positives += d
            if alert:
                self._tp += d
            else:
                self._fn += d
        elif alert:
            self._fp += d

    def _card(self, card: Hashable, day: int, score: float, y: bool) -> None:
        per = self._per_day
        cards = per.get(day)
        if cards is None:
            if per and day <= max(per) - self.days:
                return  # older than the kept days
            cards = per[day] = {}
            newest = max(per)
            for old in [d for d in per if d <= newest - self.days]:
                del per[old]
        v = cards.get(card)
        if v is None:
            cards[card] = [score, 1.0 if y else 0.0]
        else:
            if score > v[0]:
                v[0] = score
            if y:
                v[1] = 1.0

    @property
    def precision(self) -> float:
        return _ratio(self._tp, self._tp + self._fp)

    @property
    def recall(self) -> float:
        return _ratio(self._tp, self._tp + self._fn)

    @property
    def fpr(self) -> float | None:
        """False-positive rate at ``threshold`` over the window; None without a negative."""
        negatives = self.n - self.positives
        return self._fp / negatives if negatives else None

    def arrays(self, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(labels, scores) of the latest ``last`` labels (all of the window by default)."""
        n = len(self._y) if last is None else min(last, len(self._y))
        y = np.fromiter(self._y, dtype=bool, count=len(self._y))[len(self._y) - n :]
        s = np.fromiter(self._s, dtype=float, count=len(self._s))[len(self._s) - n :]
        return y, s

    def positives_in(self, last: int) -> int:
        y, _ = self.arrays(last)
        return int(y.sum())

    def average_precision(self, last: int | None = None) -> float:
        return average_precision(*self.arrays(last))

    def roc_auc(self, last: int | None = None) -> float:
        return roc_auc(*self.arrays(last))

    def metric(self, name: str, last: int | None = None) -> float:
        """``average_precision`` or ``roc_auc`` over the latest ``last`` labels."""
        if name == "average_precision":
            return self.average_precision(last)
        if name == "roc_auc":
            return self.roc_auc(last)
        raise ValueError(f"unknown metric {name!r}; known: average_precision, roc_auc")

    def card_precision_per_day(self) -> dict[int, float]:
        """Card precision@k of each kept event-time day (day number since the epoch)."""
        return _cp_days(self._per_day, self.k)

    def summary(self) -> dict[str, Any]:
        """Every metric, JSON-ready (``None`` where undefined)."""
        per_day = self.card_precision_per_day()
        complete = list(per_day.values())
        if len(per_day) > 1:  # the latest day may still be filling
            complete = [v for d, v in per_day.items() if d != max(per_day)]
        return {
            "labels": self.n,
            "labels_total": self.total,
            "positives": self.positives,
            "average_precision": _json(self.average_precision()),
            "roc_auc": _json(self.roc_auc()),
            "threshold": self.threshold,
            "precision": self.precision,
            "recall": self.recall,
            "fpr": self.fpr,
            "card_precision_at_k": _json(float(np.mean(complete))) if complete else None,
            "k": self.k,
            "card_precision_per_day": {str(d): v for d, v in per_day.items()},
        }


def _json(v: float) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 6)
