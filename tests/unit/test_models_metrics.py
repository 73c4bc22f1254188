"""Metrics against scikit-learn, card precision@k against the handbook's own procedure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from models import metrics as m


def _cases():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    for n, rate, rounding in [(50, 0.3, None), (500, 0.05, 2), (3000, 0.01, 1), (2000, 0.2, None)]:
        y = rng.random(n) < rate
        s = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1)
        if rounding is not None:
            s = np.round(s, rounding)  # many ties
        yield y, s


@pytest.mark.parametrize("case", list(_cases()))
def test_ranking_metrics_match_sklearn(case) -> None:  # type: ignore[no-untyped-def]
    y, s = case
    assert m.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert m.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert m.roc_auc(list(y), list(s)) == m.roc_auc(y, s)


@pytest.mark.parametrize("case", list(_cases()))
@pytest.mark.parametrize("threshold", [0.1, 0.45, 0.6, 0.99])
def test_threshold_metrics_match_sklearn(case, threshold: float) -> None:  # type: ignore[no-untyped-def]
    y, s = case
    pred = s >= threshold
    kw = {"zero_division": 0}
    assert m.precision(y, pred) == pytest.approx(skm.precision_score(y, pred, **kw))
    assert m.recall(y, pred) == pytest.approx(skm.recall_score(y, pred, **kw))
    assert m.f1(y, pred) == pytest.approx(skm.f1_score(y, pred, **kw))
    assert m.confusion_matrix(y, pred) == skm.confusion_matrix(y, pred, labels=[False, True]).tolist()
    (tn, fp), (fn, tp) = m.confusion_matrix(y, pred)
    assert m.fpr(y, pred) == pytest.approx(fp / (fp + tn))
    r = m.at_threshold(y, s, threshold)
    assert (r.tp, r.fp, r.tn, r.fn) == (tp, fp, tn, fn)
    assert r.recall == round(skm.recall_score(y, pred, **kw), 4)
    assert m.recall_at(y, s, threshold) == pytest.approx(skm.recall_score(y, pred, **kw))


@pytest.mark.parametrize("case", list(_cases()))
@pytest.mark.parametrize("max_fpr", [0.0, 0.001, 0.01, 0.05, 0.3])
def test_threshold_for_fpr_is_the_best_point_of_sklearns_roc_curve(case, max_fpr: float) -> None:  # type: ignore[no-untyped-def]
    y, s = case
    choice = m.threshold_for_fpr(y, s, max_fpr)
    fprs, tprs, thresholds = skm.roc_curve(y, s, drop_intermediate=False)
    ok = fprs <= max_fpr + 1e-12
    best = tprs[ok].max()
    assert choice.recall == pytest.approx(best)
    assert choice.fpr <= max_fpr + 1e-12
    if best > 0:  # the highest threshold that reaches the best recall
        assert choice.threshold == pytest.approx(thresholds[ok & (tprs == best)].max())
    pred = s >= choice.threshold
    assert m.recall(y, pred) == pytest.approx(choice.recall)
    assert m.fpr(y, pred) == pytest.approx(choice.fpr)
    assert choice.alerts == int(pred.sum())


def test_single_class_and_bad_input() -> None:
    assert math.isnan(m.roc_auc([1, 1], [0.2, 0.3]))
    assert math.isnan(m.average_precision([0, 0], [0.2, 0.3]))
    with pytest.raises(ValueError, match="equal length"):
        m.roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="max_fpr"):
        m.threshold_for_fpr([0, 1], [0.1, 0.2], 1.5)
    none = m.threshold_for_fpr([0, 1], [0.9, 0.1], 0.0)  # the top score is genuine
    assert none.alerts == 0 and none.threshold > 0.9


def _handbook_card_precision_top_k(df: pd.DataFrame, top_k: int) -> tuple[list[float], float]:
    """The handbook's own procedure (Fraud-Detection-Handbook, shared functions), transcribed."""
    days = sorted(df["TX_TIME_DAYS"].unique())
    detected: list = []
    per_day = []
    for day in days:
        d = df[df["TX_TIME_DAYS"] == day][["predictions", "CUSTOMER_ID", "TX_FRAUD"]]
        d = d[~d.CUSTOMER_ID.isin(detected)]
        d = d.groupby("CUSTOMER_ID").max().sort_values(by="predictions", ascending=False).reset_index()
        top = d.head(top_k)
        found = list(top[top.TX_FRAUD == 1].CUSTOMER_ID)
        per_day.append(len(found) / top_k)
        detected.extend(found)
    return per_day, float(np.mean(per_day))


def test_card_precision_at_k_hand_built() -> None:
    # day 0: cards a..e; a has a fraud, b none, c a fraud with a low score
    # day 1: a again (already detected: left out), f fraud, b none
    days = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    cards = ["a", "a", "b", "c", "d", "e", "a", "f", "b", "g"]
    y = [0, 1, 0, 1, 0, 0, 1, 1, 0, 0]
    s = [0.2, 0.95, 0.9, 0.1, 0.5, 0.4, 0.99, 0.7, 0.8, 0.05]
    r = m.card_precision_at_k(days, cards, y, s, k=2)
    # day 0 top 2: a (0.95, fraud), b (0.9): 1/2; day 1 without a: b (0.8), f (0.7, fraud): 1/2
    assert r.per_day == {0: 0.5, 1: 0.5}
    assert r.mean == 0.5
    r3 = m.card_precision_at_k(days, cards, y, s, k=3)
    # day 0 top 3: a, b, d: 1/3; day 1: b, f, g: 1/3 (k divides even when fewer are compromised)
    assert r3.per_day == pytest.approx({0: 1 / 3, 1: 1 / 3})
    r10 = m.card_precision_at_k(days, cards, y, s, k=10)
    assert r10.per_day == {0: 0.2, 1: 0.1}  # 2 of 5 cards / 10; 1 of 3 / 10
    with pytest.raises(ValueError):
        m.card_precision_at_k(days, cards, y, s, k=0)


def test_card_precision_at_k_matches_the_handbook_procedure() -> None:
    rng = np.random.default_rng(3)
    n = 6000
    df = pd.DataFrame({
        "TX_TIME_DAYS": rng.integers(0, 8, n),
        "CUSTOMER_ID": rng.integers(0, 400, n),
        "TX_FRAUD": (rng.random(n) < 0.03).astype(int),
    })
    df["predictions"] = rng.random(n) + 0.3 * df["TX_FRAUD"]  # continuous: no ties
    for k in (5, 20, 100):
        per_day, mean = _handbook_card_precision_top_k(df, k)
        r = m.card_precision_at_k(df.TX_TIME_DAYS.tolist(), df.CUSTOMER_ID.tolist(),
                                  df.TX_FRAUD.tolist(), df.predictions.tolist(), k=k)
        assert list(r.per_day.values()) == pytest.approx(per_day)
        assert r.mean == pytest.approx(mean)


def test_rolling_metrics_match_sklearn_on_the_window() -> None:
    rng = np.random.default_rng(5)
    n, window = 3000, 1000
    y = rng.random(n) < 0.05
    s = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1)
    days = (np.arange(n) // 500).astype(float) * 86400.0 + 1.7e9 // 86400 * 86400
    cards = rng.integers(0, 200, n)
    r = m.RollingMetrics(window=window, threshold=0.5, k=10, days=3)
    for i in range(n):
        r.update(bool(y[i]), float(s[i]), card_id=int(cards[i]), event_time=float(days[i]))
    wy, ws = y[-window:], s[-window:]
    assert r.n == window and r.total == n and r.positives == int(wy.sum())
    assert r.average_precision() == pytest.approx(skm.average_precision_score(wy, ws))
    assert r.roc_auc() == pytest.approx(skm.roc_auc_score(wy, ws))
    assert r.precision == pytest.approx(skm.precision_score(wy, ws >= 0.5, zero_division=0))
    assert r.recall == pytest.approx(skm.recall_score(wy, ws >= 0.5, zero_division=0))
    last = 300
    assert r.average_precision(last) == pytest.approx(skm.average_precision_score(y[-last:], s[-last:]))
    assert r.positives_in(last) == int(y[-last:].sum())
    # card precision@k: the latest 3 days, as the batch function computes them
    keep = days >= days.max() - 2 * 86400
    batch = m.card_precision_at_k((days[keep] // 86400).tolist(), cards[keep].tolist(),
                                  y[keep].tolist(), s[keep].tolist(), k=10)
    assert r.card_precision_per_day() == pytest.approx(batch.per_day)
    summary = r.summary()
    assert summary["card_precision_at_k"] == pytest.approx(np.mean(list(batch.per_day.values())[:-1]))
    assert summary["labels"] == window
