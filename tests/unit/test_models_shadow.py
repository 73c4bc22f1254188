"""Live judging: shadow scores kept until the label (models/shadow.py) and the learner's use of them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.learner import LearnerConfig, OnlineLearner
from models.registry import ModelRegistry
from models.shadow import LiveComparison, LiveRanks, ShadowBook, sign_test

T0 = 1_700_000_000.0
DAY = 86400.0


# -- LiveRanks ----------------------------------------------------------------------------------
def test_ranks_are_nan_until_enough_scores_then_the_share_scored_higher() -> None:
    r = LiveRanks(size=100, refresh=1, min_count=10)
    for s in range(9):
        r.add(float(s))
        assert math.isnan(r.rank(5.0))
    r.add(9.0)  # 0..9
    assert r.rank(100.0) == 0.0 and r.rank(-1.0) == 1.0
    assert r.rank(7.0) == pytest.approx((2 + 0.5) / 10)  # 8, 9 above; 7 ties (half)
    assert math.isnan(r.rank(math.nan))


def test_ranks_forget_old_scores_and_lag_at_most_refresh() -> None:
    r = LiveRanks(size=10, refresh=5, min_count=1)
    r.add(1.0)  # the first score is the reference at once (fewer than min_count before)
    for _ in range(4):
        r.add(0.0)
    assert r.rank(0.5) == 1.0  # four new scores: not yet in the reference
    r.add(0.0)  # the refresh-th: re-sorted
    assert r.rank(0.5) == pytest.approx(1 / 6)  # one 1.0 above, five 0.0s
    for _ in range(5):
        r.add(0.0)
    assert len(r) == 10 and r.rank(0.5) == 0.0  # the 1.0 left the window of 10


# -- ShadowBook ---------------------------------------------------------------------------------
def test_book_keeps_the_latest_transactions_and_pops_once() -> None:
    book = ShadowBook(keep=2)
    book.record("a", {1: (0.1, 0.5)})
    book.record("b", {1: (0.2, 0.4), 2: (0.3, 0.3)})
    book.record("c", {1: (0.3, 0.2)})  # "a" is forgotten (its row is reused)
    assert book.pop("a") is None
    assert book.pop("b") == {1: (0.2, 0.4), 2: (0.3, 0.3)}
    assert book.pop("b") is None and len(book) == 1
    assert book.pop("c") == {1: (0.3, 0.2)}  # model 2 said nothing of "c"


def test_a_forgotten_model_leaves_nothing_behind_for_its_successor() -> None:
    book = ShadowBook(keep=10)
    book.record("t1", {"champion": (0.5, 0.5), "old": (0.9, 0.001)})
    book.forget("old")
    assert book.models() == ["champion"]
    book.record("t2", {"new": (0.1, 0.9)})  # reuses the freed column
    assert book.pop("t1") == {"champion": (0.5, 0.5)}
    assert book.pop("t2") == {"new": (pytest.approx(0.1), pytest.approx(0.9))}


def test_book_grows_columns_for_many_models() -> None:
    book = ShadowBook(keep=5)
    said = {k: (k / 10, k / 100) for k in range(7)}
    book.record("x", said)
    got = book.pop("x")
    assert got is not None and set(got) == set(range(7))
    assert got[6] == (pytest.approx(0.6), pytest.approx(0.06))


# -- the verdict ----------------------------------------------------------------------------------
def test_sign_test() -> None:
    assert sign_test(5, 0) == pytest.approx(1 / 32)
    assert sign_test(0, 5) == 1.0
    assert sign_test(2, 2) == pytest.approx(11 / 16)


def test_alert_recall_needs_enough_frauds_a_margin_and_significance() -> None:
    c = LiveComparison(window=1000)
    kw = {"margin": 0.02, "min_positives": 20, "alert_share": 0.01, "alpha": 0.05}
    for _ in range(19):  # 19 frauds, the challenger catches all, the champion none
        c.add(True, 0.1, 0.9, 0.5, 0.001)
    assert not c.verdict("alert_recall", **kw)["ready"]
    c.add(True, 0.1, 0.9, 0.5, 0.001)
    v = c.verdict("alert_recall", **kw)
    assert v["ready"] and v["wins"] and v["challenger_value"] == 1.0 and v["champion_value"] == 0.0
    # genuine transactions do not count; frauds the challenger was not ranked on are left out
    c.add(False, 0.9, 0.1, 0.001, 0.9)
    c.add(True, 0.1, 0.9, 0.5, math.nan)
    assert c.verdict("alert_recall", **kw)["positives"] == 20
    # ahead by more than the margin but by too few frauds to be sure: not promoted
    d = LiveComparison(window=1000)
    for i in range(40):
        only = "challenger" if i < 3 else ("champion" if i < 4 else "both")
        d.add(True, 0.5, 0.5, 0.5 if only == "challenger" else 0.001,
              0.5 if only == "champion" else 0.001)
    v = d.verdict("alert_recall", **kw)
    assert v["challenger_value"] - v["champion_value"] == pytest.approx(0.05)
    assert v["only_challenger"] == 3 and v["only_champion"] == 1
    assert v["p_value"] > 0.05 and not v["wins"]


def test_average_precision_on_live_scores_and_unknown_metrics() -> None:
    c = LiveComparison(window=200)
    rng = np.random.default_rng(0)
    for i in range(200):
        y = i % 5 == 0
        c.add(y, float(rng.random()), 0.8 if y else 0.2, 0.5, 0.5)
    v = c.verdict("average_precision", margin=0.02, min_positives=30)
    assert v["ready"] and v["wins"] and v["challenger_value"] == 1.0 and v["judged_on"] == "live scores"
    with pytest.raises(ValueError, match="unknown metric"):
        c.verdict("f1", margin=0.0, min_positives=1)


# -- the learner ------------------------------------------------------------------------------------
class Feature:
    """P(fraud) = one feature (a model that does not learn)."""

    unsupervised = False

    def __init__(self, feature: str) -> None:
        self.name, self.params = f"feature-{feature}", {"feature": feature}
        self.feature = feature
        self.labels_learned = self.observed = 0

    def predict_proba_one(self, x: Mapping[str, Any]) -> float:
        return float(min(1.0, max(0.0, x[self.feature])))

    def learn_one(self, x: Mapping[str, Any], y: bool) -> None:
        self.labels_learned += 1

    def observe_one(self, x: Mapping[str, Any]) -> None:
        self.observed += 1


class CardMemory(Feature):
    """Remembers the cards of the frauds it learned: it knows a spree's later frauds once the
    label of its first one arrived, which is after the whole spree was scored."""

    def __init__(self) -> None:
        super().__init__("f0")
        self.name = "card-memory"
        self.cards: set[float] = set()

    def predict_proba_one(self, x: Mapping[str, Any]) -> float:
        return (0.9 if x["card"] in self.cards else 0.0) + 0.05 * x["f0"]

    def learn_one(self, x: Mapping[str, Any], y: bool) -> None:
        super().learn_one(x, y)
        if y:
            self.cards.add(x["card"])


def sprees(n: int = 30_000, seed: int = 0) -> list[tuple[float, int, str, dict[str, float], bool]]:
    """Events in time order: (time, 1 = scored / 0 = label, id, features, is_fraud).

    A transaction every 10 s; 2 % fraud in sprees of 5 purchases of one card within ~5 minutes;
    fraud labels a day later, genuine ones two days later. f0 tells fraud weakly (the champion),
    f1 well (a challenger truly better on live traffic)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, bool)
    card = rng.integers(0, 2000, n).astype(float)
    starts = rng.choice(np.arange(0, n - 40, 40), size=n // 250, replace=False)
    for k, s in enumerate(starts.tolist()):
        rows = s + np.arange(0, 30, 6)
        y[rows] = True
        card[rows] = 10_000 + k
    f0 = np.where(y, rng.normal(0.55, 0.2, n), rng.normal(0.45, 0.2, n))
    f1 = np.where(y, rng.normal(0.9, 0.05, n), rng.normal(0.3, 0.15, n))
    events = []
    for i in range(n):
        t = T0 + 10.0 * i
        x = {"card": float(card[i]), "f0": float(f0[i]), "f1": float(f1[i])}
        events.append((t, 1, str(i), x, bool(y[i])))
        events.append((t + (DAY if y[i] else 2 * DAY), 0, str(i), x, bool(y[i])))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def live_learner(tmp_path: Path, rival: Feature, **kw: Any) -> OnlineLearner:
    base: dict[str, Any] = {
        "drift_detection": False, "promotion_window": 4000, "promotion_check_every": 100,
        "promotion_alert_share": 0.02, "snapshot_every_labels": 10_000_000, "snapshot_every_s": 1e9,
    }
    base.update(kw)
    learner = OnlineLearner(ModelRegistry(tmp_path / "registry", "k"), LearnerConfig(**base),
                            clock=lambda: 0.0)
    learner.champion.model = Feature("f0")  # type: ignore[assignment]
    learner.challengers.append(learner._slot(rival.name, rival, "drift"))  # type: ignore[arg-type]
    return learner


def play(learner: OnlineLearner, events: list[tuple[float, int, str, dict[str, float], bool]]) -> list[Any]:
    """The worker's order: every scored transaction observed (with the champion's score), every
    label learned at its report time."""
    out = []
    for t, kind, tid, x, y in events:
        if kind == 1:
            out += learner.observe(x, learner.champion.model.predict_proba_one(x), transaction_id=tid)
        else:
            out += learner.learn(x, y, transaction_id=tid, card_id=str(x["card"]), event_time=t - (
                DAY if y else 2 * DAY), reported_at=t)
    return [e for e in out if e.kind == "promotion"]


def test_a_challenger_better_on_live_traffic_is_promoted(tmp_path: Path) -> None:
    learner = live_learner(tmp_path, Feature("f1"))
    promos = play(learner, sprees())
    assert len(promos) == 1
    ev = promos[0].evidence
    assert ev["judged_on"] == "live scores" and ev["metric"] == "alert_recall"
    assert ev["challenger"] == "feature-f1" and ev["wins"] and ev["p_value"] <= 0.05
    assert ev["challenger_value"] - ev["champion_value"] >= 0.02
    assert learner.champion.model.name == "feature-f1"
    assert learner.registry.champion_version() == promos[0].version


def test_a_challenger_better_only_at_label_time_is_not_promoted(tmp_path: Path) -> None:
    events = sprees()
    # judged at label time it looks far better (it learned the spree's first fraud label before
    # it is asked about the others) and is promoted ...
    by_labels = live_learner(tmp_path / "labels", CardMemory(), promotion_judge="labels",
                             promotion_metric="average_precision")
    promos = play(by_labels, events)
    assert [p.evidence["challenger"] for p in promos] == ["card-memory"]
    assert promos[0].evidence["challenger_value"] > 0.6 > promos[0].evidence["champion_value"]
    # ... but when each transaction was scored it knew nothing of the spree: not promoted live
    live = live_learner(tmp_path / "live", CardMemory())
    assert play(live, [e for e in events if e[0] < T0 + 3 * DAY]) == []
    v = live.compare(live.challengers[0])  # while frauds are among the latest labels
    assert v["ready"] and not v["wins"] and v["challenger_value"] <= v["champion_value"]


def test_observe_keeps_what_every_model_said(tmp_path: Path) -> None:
    learner = live_learner(tmp_path, Feature("f1"))
    learner.background = learner._slot("background", Feature("card"), "warning")  # type: ignore[arg-type]
    x = {"card": 0.7, "f0": 0.2, "f1": 0.4}
    learner.observe(x, 0.25, transaction_id="t1")
    said = learner.shadow.pop("t1")
    assert said is not None
    champ, (ch,), bg = learner.champion, learner.challengers, learner.background
    assert set(said) == {champ.key, ch.key, bg.key}
    # the champion is compared by its state now (0.2), like the rivals, not by the scorer's
    # snapshot (0.25): a twin of the champion must not win by being fresher
    assert said[champ.key][0] == pytest.approx(0.2)
    assert said[ch.key][0] == pytest.approx(0.4) and said[bg.key][0] == pytest.approx(0.7)
    assert list(champ.ranks._recent) == [0.2]  # its alert ranks: among predictions made alike
    learner.observe(x, 0.25)  # no id: nothing kept
    assert len(learner.shadow) == 0


def test_old_labels_do_not_feed_the_concept_drift_detector(tmp_path: Path) -> None:
    learner = OnlineLearner(ModelRegistry(tmp_path / "r", "k"),
                            LearnerConfig(drift_warmup=0, drift_label_age=3 * DAY), clock=lambda: 0.0)
    x = {"amount": 10.0}
    learner.learn(x, True, transaction_id="a", card_id="c", event_time=T0, reported_at=T0 + 2 * DAY)
    learner.learn(x, True, transaction_id="b", card_id="c", event_time=T0, reported_at=T0 + 4 * DAY)
    learner.learn(x, True, transaction_id="c", card_id="c", event_time=T0)  # no report time: fed
    assert learner.concept.labels == 2 and learner.labels == 3


def test_a_drift_model_learns_the_drifted_class_only_from_the_drift_point(tmp_path: Path) -> None:
    learner = live_learner(tmp_path, Feature("f1"))
    slot = learner._slot("drift-1", Feature("f1"), "drift", since=T0, drifted="fraud")  # type: ignore[arg-type]
    assert not slot.learns(True, T0 - 1) and slot.learns(True, T0) and slot.learns(False, T0 - 1)


def test_the_concept_drift_detector_watches_the_score_given_at_scoring_time(tmp_path: Path) -> None:
    learner = OnlineLearner(ModelRegistry(tmp_path / "r", "k"),
                            LearnerConfig(drift_warmup=0, drift_label_age=3 * DAY), clock=lambda: 0.0)
    watched = learner.concept._drift["fraud"]._recent
    x = {"amount": 10.0}
    learner.learn(x, True, transaction_id="a", card_id="c", event_time=T0, score=0.9)
    assert watched[-1] == pytest.approx(0.1)  # 1 - the live score, not the prediction now
    p_now = learner.champion.model.predict_proba_one(x)
    learner.learn(x, True, transaction_id="b", card_id="c", event_time=T0)
    assert watched[-1] == pytest.approx(1.0 - p_now)  # no live score: the prediction now
    learner._in_charge_since = T0 + DAY  # a champion in charge since after that transaction
    p_now = learner.champion.model.predict_proba_one(x)
    learner.learn(x, True, transaction_id="c", card_id="c", event_time=T0 + 60, score=0.9)
    assert watched[-1] == pytest.approx(1.0 - p_now)  # another model scored it


def test_the_concept_drift_detector_watches_whether_a_fraud_was_alerted(tmp_path: Path) -> None:
    """drift_signal=alert: a fresh fraud whose live score was outside the top 1 % of live
    traffic is an error (1), one inside it is not (0), whatever the score's scale."""
    learner = OnlineLearner(ModelRegistry(tmp_path / "r", "k"),
                            LearnerConfig(drift_warmup=0, drift_label_age=3 * DAY, drift_signal="alert"),
                            clock=lambda: 0.0)
    watched = learner.concept._drift["fraud"]._recent
    x = {"amount": 10.0}
    learner.learn(x, True, transaction_id="early", card_id="c", event_time=T0, score=0.9)
    assert watched[-1] == pytest.approx(0.1)  # too few live scores to rank: the score's error
    for i in range(2000):  # live traffic scored 0.0000 .. 0.0200
        learner.observe(x, i / 100_000)
    learner.learn(x, True, transaction_id="a", card_id="c", event_time=T0, score=0.0199)
    learner.learn(x, True, transaction_id="b", card_id="c", event_time=T0, score=0.015)
    assert list(watched)[-2:] == [0.0, 1.0]  # alerted (top 1 %), missed
    learner.learn(x, False, transaction_id="g", card_id="c", event_time=T0, score=0.0199)
    assert list(watched)[-1] == 1.0  # unchanged: only frauds are watched by default
