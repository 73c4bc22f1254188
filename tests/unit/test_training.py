"""Offline training and evaluation: protocols, prequential label delay, batch models, leaderboard."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.columns import SIMULATOR, to_canonical
from fraudstream.errors import ConfigError, DataError
from fraudstream.settings import Settings
from models.batch import BatchModel, build_any, build_batch_model
from models.data import labelled_from_frame
from models.metrics import at_threshold, threshold_for_fpr
from models.protocols import (
    DAY,
    known_compromised_mask,
    prequential_refit,
    prequential_stream,
    time_split,
)
from models.registry import ModelRegistry
from models.training import ProtocolOptions, _calibrate, evaluate_data, run_model
from models.zoo import Model
from stream.simulator import SimConfig, Simulator


@pytest.fixture(scope="module")
def sim_data():  # type: ignore[no-untyped-def]
    """Three weeks of a small simulated world, with the default feature set (a few seconds)."""
    tx, _ = Simulator(SimConfig(cards=200, terminals=400, seed=5)).frames(days=18)
    return labelled_from_frame(to_canonical(tx, SIMULATOR), mapping_name="simulator",
                               label_delay="2d")


def settings() -> Settings:
    return Settings(_env_file=None)


# -- the split ------------------------------------------------------------------------------


def test_time_split_has_a_label_delay_gap_and_no_leakage() -> None:
    t = np.sort(np.random.default_rng(0).uniform(0, 30 * DAY, 5000))
    s = time_split(t, delay_s=3 * DAY, test_fraction=0.3)
    train, gap, test = s.masks(t)
    assert not (train & test).any() and not (train & gap).any() and not (gap & test).any()
    assert (train | gap | test).sum() == len(t)  # every row is in exactly one part
    assert t[train].max() < s.train_end <= t[gap].min()
    assert s.test_start - s.train_end == pytest.approx(3 * DAY)
    # every training label is known when the model starts to serve, none of the gap's is
    assert (t[train] + 3 * DAY <= s.test_start).all()
    assert (t[gap] + 3 * DAY > s.test_start).all()
    assert t[test].min() >= s.test_start


def test_time_split_from_dates_follows_the_handbook_layout() -> None:
    t = np.arange(0, 40 * DAY, 600.0)
    s = time_split(t, delay_s=7 * DAY, train_start=5 * DAY, train_days=7, test_days=7)
    assert (s.train_start, s.train_end) == (5 * DAY, 12 * DAY)
    assert (s.test_start, s.test_end) == (19 * DAY, 26 * DAY)
    assert s.calibration_start == pytest.approx(12 * DAY - 0.25 * 7 * DAY)
    with pytest.raises(ConfigError, match="must equal the test start"):
        time_split(t, delay_s=7 * DAY, train_start=5 * DAY, train_days=7, test_start=30 * DAY)
    with pytest.raises(ConfigError, match="no training period"):
        time_split(t, delay_s=39 * DAY, test_start=20 * DAY)
    with pytest.raises(ConfigError, match="test period is empty"):
        time_split(t, delay_s=DAY, test_start=50 * DAY)
    with pytest.raises(DataError, match="no transaction in the training period"):
        time_split(np.arange(30 * DAY, 40 * DAY, 600.0), delay_s=DAY, train_start=0.0,
                   train_days=5)


def _handbook_reference(frame: pd.DataFrame, start: pd.Timestamp, train_days: int,
                        delay_days: int, test_days: int) -> set[int]:
    """The handbook's get_train_test_set (shared/data/fdh/README.md), on a small frame."""
    day = (frame["ts"] - pd.Timestamp("2018-04-01")).dt.days
    start_day = (start - pd.Timestamp("2018-04-01")).days
    train = frame[(frame["ts"] >= start) & (frame["ts"] < start + pd.Timedelta(days=train_days))]
    known = set(train[train["fraud"] == 1]["card"])
    kept: set[int] = set()
    for d in range(test_days):
        test_day = frame[day == start_day + train_days + delay_days + d]
        before = frame[day == start_day + train_days + d - 1]
        known |= set(before[before["fraud"] == 1]["card"])
        kept |= set(test_day[~test_day["card"].isin(known)].index)
    return kept


def test_known_compromised_cards_match_the_handbook_rule() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    ts = pd.Timestamp("2018-07-20") + pd.to_timedelta(np.sort(rng.uniform(0, 30 * DAY, n)), "s")
    frame = pd.DataFrame({"ts": ts, "card": rng.integers(0, 60, n),
                          "fraud": (rng.random(n) < 0.03).astype(int)})
    start = pd.Timestamp("2018-07-25")
    expected = _handbook_reference(frame, start, 7, 7, 7)
    t = (frame["ts"] - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy()
    known = known_compromised_mask(frame["card"].to_numpy(), t, frame["fraud"].to_numpy(),
                                   train_start=start.timestamp() if start.tzinfo else
                                   (start - pd.Timestamp("1970-01-01")).total_seconds(),
                                   delay_s=7 * DAY)
    s = time_split(t, delay_s=7 * DAY,
                   train_start=(start - pd.Timestamp("1970-01-01")).total_seconds(),
                   train_days=7, test_days=7)
    _, _, test = s.masks(t)
    got = set(np.flatnonzero(test & ~known))
    assert got == expected
    assert 0 < len(expected) < test.sum()  # the rule did leave some rows out


def test_known_compromised_on_a_hand_built_example() -> None:
    # days: train 0..6, delay 7, test from day 14; card a: fraud day 2 (train) -> known on all
    # test days; card b: fraud on day 10 (gap) -> known from day 18 (10 + 7 + 1); card c: fraud
    # on day 15 (test) -> never known within days 14..21 except from day 23; card d: clean
    rows = [("a", 2, 1), ("a", 14, 0), ("b", 10, 1), ("b", 17, 0), ("b", 18, 0),
            ("c", 15, 1), ("c", 16, 0), ("d", 14, 0)]
    cards = np.array([r[0] for r in rows], dtype=object)
    t = np.array([r[1] * DAY + 3600 for r in rows])
    y = np.array([r[2] for r in rows])
    known = known_compromised_mask(cards, t, y, train_start=0.0, delay_s=7 * DAY)
    assert known.tolist() == [False, True, False, False, True, False, False, False]


# -- prequential ----------------------------------------------------------------------------


class Spy(Model):
    """Records when it predicts and what it learns; features carry the transaction time."""

    kind = "spy"

    def __init__(self) -> None:
        from models.zoo import LogregParams

        super().__init__("spy", LogregParams())
        self.log: list[tuple[str, float]] = []

    def _proba(self, xc: dict[str, float]) -> float:
        self.log.append(("predict", xc["t"]))
        return 0.5

    def _learn(self, xc: dict[str, float], y: bool) -> None:
        self.log.append(("learn", xc["t"]))

    def _contributions(self, xc: dict[str, float]) -> dict[str, float]:
        return {}


def test_prequential_never_uses_a_label_before_it_is_due() -> None:
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 10 * DAY, 600))
    t[100:105] = t[100]  # ties: a label due at a transaction's time is learned before it
    X = pd.DataFrame({"t": t})
    y = rng.random(600) < 0.1
    delay = 1.5 * DAY
    spy = Spy()
    scores = prequential_stream(spy, X, y, t, np.arange(600), delay_s=delay)
    assert len(scores) == 600
    learned: list[float] = []
    pending: list[float] = []  # labels learned just before the next transaction is scored
    predicted: set[float] = set()
    for event, when in spy.log:
        if event == "predict":
            for label_t in pending:
                assert label_t + delay <= when, "a label was learned before it was due"
            pending = []
            predicted.add(when)
        else:
            assert when in predicted, "a transaction was learned before it was scored"
            pending.append(when)
            learned.append(when)
    # and every label due by the last transaction was learned
    assert sorted(learned) == sorted(t[t + delay <= t[-1]][: len(learned)].tolist())
    assert len(learned) == int((t + delay <= t[-1]).sum())


def test_holdout_stream_freezes_the_model_at_the_test_start() -> None:
    t = np.arange(0, 20 * DAY, 3600.0)
    X = pd.DataFrame({"t": t})
    y = np.zeros(len(t), dtype=bool)
    spy = Spy()
    prequential_stream(spy, X, y, t, np.arange(len(t)), delay_s=0.0, frozen_from=12 * DAY)
    learned = [w for e, w in spy.log if e == "learn"]
    assert max(learned) < 12 * DAY  # nothing of the test is learned
    assert len(learned) == int((t < 12 * DAY).sum())  # every training label was


def test_prequential_refit_fits_only_on_due_labels() -> None:
    rng = np.random.default_rng(2)
    t = np.sort(rng.uniform(0, 20 * DAY, 3000))
    X = pd.DataFrame({"t": t, "v": rng.normal(size=3000)})
    y = (rng.random(3000) < 0.2).astype(int)
    fitted_on: list[tuple[float, float]] = []

    class Recording(BatchModel):
        def fit(self, X: pd.DataFrame, y: Any, feature_set: str | None = None) -> BatchModel:
            fitted_on.append((float(X["t"].min()), float(X["t"].max())))
            return super().fit(X, y, feature_set)

    def make() -> BatchModel:
        base = build_batch_model("sk-logreg")
        return Recording(base.name, base._p)

    test_rows = np.flatnonzero(t >= 14 * DAY)
    scores, fits = prequential_refit(make, X, y, t, test_rows, delay_s=2 * DAY,
                                     window_s=7 * DAY, start=14 * DAY, history_start=5 * DAY)
    assert not np.isnan(scores).any()
    assert len(fits) == len(fitted_on) == 6
    for k, (lo, hi) in enumerate(fitted_on):
        boundary = 14 * DAY + k * DAY
        assert hi + 2 * DAY <= boundary  # labels due by the refit
        assert lo >= max(boundary - 9 * DAY, 5 * DAY)  # the sliding window, no earlier history


# -- batch models -----------------------------------------------------------------------------


def test_batch_model_resampling_and_weights() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=2000)})
    y = (rng.random(2000) < 0.05).astype(int)
    under = build_batch_model("sk-tree", {"sampling": "under", "desired_pos": 0.5}).fit(X, y)
    assert under.frauds_fitted == y.sum() and under.rows_fitted == 2 * y.sum()
    over = build_batch_model("sk-tree", {"sampling": "over", "desired_pos": 0.25}).fit(X, y)
    assert over.rows_fitted - over.frauds_fitted == (y == 0).sum()
    assert over.frauds_fitted / over.rows_fitted == pytest.approx(0.25, abs=0.01)
    with pytest.raises(ConfigError, match="bad parameters"):
        build_batch_model("sk-rf", {"trees": 3})
    with pytest.raises(ConfigError, match="'sk-rf': bad parameters: trees"):
        build_batch_model("ensemble", {"members": [{"name": "sk-rf", "params": {"trees": 3}}]})
    weighted = build_batch_model("sk-logreg", {"class_weight": "balanced"}).fit(X, y)
    plain = build_batch_model("sk-logreg").fit(X, y)
    assert weighted.predict_proba_one({"a": 0.0}) > plain.predict_proba_one({"a": 0.0})
    with pytest.raises(DataError, match="need frauds and genuine"):
        build_batch_model("sk-logreg").fit(X, np.zeros(2000))
    with pytest.raises(ConfigError, match="not fitted"):
        build_batch_model("sk-logreg").predict_proba_one({"a": 1.0})


def test_ensemble_members_keep_their_own_fraud_weights() -> None:
    """A member's pos_weight / class_weight is applied in the ensemble (not silently dropped)."""
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    y = ((X["a"] + rng.normal(size=2000)) > 2.2).astype(int).to_numpy()
    rows = pd.DataFrame({"a": [-1.0, 0.0, 1.5], "b": [0.0, 1.0, -1.0]})
    for member in ({"pos_weight": 20.0}, {"class_weight": "balanced"}):
        alone = build_batch_model("sk-logreg", member).fit(X, y).predict_proba(rows)
        blend = build_batch_model("ensemble", {"members": [
            {"name": "sk-logreg", "params": member}]}).fit(X, y).predict_proba(rows)
        plain = build_batch_model("sk-logreg").fit(X, y).predict_proba(rows)
        np.testing.assert_allclose(blend, alone, rtol=1e-9)
        assert (blend > plain).all()
    on_top = build_batch_model("ensemble", {"pos_weight": 2.0, "members": [
        {"name": "sk-logreg", "params": {"pos_weight": 10.0}}]}).fit(X, y).predict_proba(rows)
    np.testing.assert_allclose(
        on_top, build_batch_model("sk-logreg", {"pos_weight": 20.0}).fit(X, y).predict_proba(rows),
        rtol=1e-9)
    with pytest.raises(ConfigError, match="resampling applies to the whole ensemble"):
        build_batch_model("ensemble", {"members": [
            {"name": "sk-logreg", "params": {"sampling": "under"}}]})


def test_rank_ensemble_averages_member_quantiles_one_row_as_in_a_batch() -> None:
    """combine="rank": each member's score becomes its quantile among the member's scores of the
    fitted rows; one row scores as it does in a batch, and a lone member keeps its ranking."""
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    y = ((X["a"] + X["b"] + rng.normal(size=2000)) > 2.5).astype(int).to_numpy()
    rows = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    members = [{"name": "sk-logreg"}, {"name": "sk-tree", "params": {"max_depth": 3}}]
    rank = build_batch_model("ensemble", {"combine": "rank", "members": members}).fit(X, y)
    mean = build_batch_model("ensemble", {"members": members}).fit(X, y)
    p = rank.predict_proba(rows)
    assert ((p >= 0.0) & (p <= 1.0)).all()
    assert not np.allclose(p, mean.predict_proba(rows))
    assert rank.predict_proba_one(rows.iloc[3].to_dict()) == pytest.approx(p[3])
    # by hand: the mean of each member's mid-rank quantile among its scores of the fitted rows
    est = rank.estimator
    want = np.mean([[np.mean(np.sort(m.predict_proba(X.to_numpy())[:, 1]) < v)
                     + np.mean(np.sort(m.predict_proba(X.to_numpy())[:, 1]) == v) / 2
                     for v in m.predict_proba(rows.to_numpy())[:, 1]]
                    for _, m, _ in est.members], axis=0)
    np.testing.assert_allclose(p, want, rtol=1e-9)
    alone = build_batch_model("ensemble", {"combine": "rank", "members": members[:1]}).fit(X, y)
    logreg = build_batch_model("sk-logreg").fit(X, y)
    q, r = alone.predict_proba(rows), logreg.predict_proba(rows)
    assert (np.argsort(q, kind="stable") == np.argsort(r, kind="stable")).all()
    with pytest.raises(ConfigError, match="bad parameters"):
        build_batch_model("ensemble", {"combine": "median"})


@pytest.mark.parametrize("name", ["sk-logreg", "sk-rf", "sk-hgb", "lgbm", "xgb", "ensemble"])
def test_saved_batch_model_loads_and_scores_like_the_original(name: str, tmp_path: Any) -> None:
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"amount": rng.uniform(0, 300, 1500), "night": rng.integers(0, 2, 1500),
                      "risk": rng.uniform(0, 1, 1500)})
    y = ((X["amount"] > 220) | (X["risk"] > 0.95)).astype(int).to_numpy()
    small = {"sk-rf": {"n_estimators": 20}, "lgbm": {"n_estimators": 20},
             "xgb": {"n_estimators": 20}, "sk-hgb": {"max_iter": 20},
             "ensemble": {"members": [{"name": "lgbm", "params": {"n_estimators": 20}},
                                      {"name": "sk-logreg", "weight": 0.5}]}}
    model = build_any(name, small.get(name, {}))
    assert isinstance(model, BatchModel)
    model.fit(X, y, feature_set="test")
    registry = ModelRegistry(tmp_path / "reg", "key")
    meta = registry.save(model, name=name, params=model.params, kind="offline", threshold=0.42,
                         metrics={"average_precision": 0.9})
    loaded, got = registry.load(meta.version)
    assert got.threshold == 0.42 and got.metrics["average_precision"] == 0.9
    x = {"amount": 260.0, "night": None, "risk": 0.1, "unknown_feature": 3.0}
    p = loaded.predict_proba_one(x)
    assert p == pytest.approx(model.predict_proba_one(x))
    assert p > loaded.predict_proba_one({"amount": 20.0, "night": 0.0, "risk": 0.1})
    reasons = loaded.explain_one(x)
    assert reasons and reasons[0].feature == "amount" and reasons[0].value == 260.0
    assert loaded.score_one(x) == (p, reasons)  # the scorer's one call
    # the vectorised path agrees with the one-at-a-time path
    batch = loaded.predict_proba(pd.DataFrame([{"amount": 260.0, "night": np.nan, "risk": 0.1}]))
    assert batch[0] == pytest.approx(p)
    loaded.learn_one(x, True)  # frozen: counted, not learned
    assert loaded.labels_ignored == 1 and loaded.predict_proba_one(x) == pytest.approx(p)
    assert loaded.clone().predict_proba_one(x) == pytest.approx(p)


# -- threshold --------------------------------------------------------------------------------


def test_threshold_meets_the_fpr_on_the_data_it_was_chosen_on() -> None:
    rng = np.random.default_rng(6)
    y = (rng.random(20000) < 0.02).astype(int)
    s = np.clip(rng.normal(0.3 + 0.3 * y, 0.15), 0, 1)
    for max_fpr in (0.0005, 0.001, 0.01, 0.1):
        thr, info = _calibrate(y, s, max_fpr)
        assert thr is not None
        got = at_threshold(y, s, thr)
        assert got.fp / (got.fp + got.tn) <= max_fpr
        assert info["recall"] == pytest.approx(got.tp / (got.tp + got.fn))
        # no lower threshold within the FPR budget catches more frauds
        lower = np.unique(s[s < thr])[-50:]
        for t2 in lower:
            m = at_threshold(y, s, float(t2))
            if m.fp / (m.fp + m.tn) <= max_fpr:
                assert m.tp <= got.tp
    assert threshold_for_fpr(y, s, 0.001).threshold == _calibrate(y, s, 0.001)[0]


def test_run_model_threshold_holds_on_its_calibration_period(sim_data) -> None:  # type: ignore[no-untyped-def]
    split = ProtocolOptions().split(sim_data)
    ev = run_model(sim_data, parse_spec("sk-logreg"), split, max_fpr=0.01, latency_sample=20)
    cal = ev.calibration
    assert cal["fpr"] <= 0.01 and ev.metrics["threshold"] == cal["threshold"]
    assert ev.latency["p99_latency_ms"] > 0


def parse_spec(name: str, **params: Any):  # type: ignore[no-untyped-def]
    from models.training import ModelSpec

    return ModelSpec(name=name, params=params)


# -- the leaderboard ---------------------------------------------------------------------------


RF = {"name": "sk-rf", "params": {"n_estimators": 30}}


@pytest.mark.parametrize(("protocol", "models"), [
    ("holdout", ["logreg", "hat", "sk-logreg", RF]),
    ("prequential", ["logreg", "sk-logreg"]),  # batch models refit daily: kept short here
])
def test_leaderboard_on_a_simulated_file(sim_data, protocol: str, models: list[Any]) -> None:  # type: ignore[no-untyped-def]
    names = [m if isinstance(m, str) else m["name"] for m in models]
    report = evaluate_data(sim_data, models, ProtocolOptions(protocol=protocol),
                           settings=settings())
    d = report.to_dict()
    assert {r["model"] for r in d["leaderboard"]} == set(names)
    assert [r["rank"] for r in d["leaderboard"]] == list(range(1, len(names) + 1))
    test_n = d["split"]["evaluated_rows"]
    rate = d["split"]["evaluated_frauds"] / test_n
    assert rate > 0
    for r in d["results"]:
        assert r["n"] == test_n and r["protocol"] == protocol
        for k in ("roc_auc", "average_precision", "card_precision_at_100", "recall_at_max_fpr"):
            assert 0.0 <= r[k] <= 1.0
        assert r["criteria"]["status"] in ("pass", "fail", "incomplete")
        assert sum(map(sum, r["confusion_matrix"])) == test_n
    by = {r["model"]: r for r in d["results"]}
    # a good model ranks frauds far above chance (AP of a random ranking ~ the fraud rate)
    assert by["sk-logreg"]["average_precision"] > 5 * rate
    assert by["sk-logreg"]["roc_auc"] > 0.75
    if "sk-rf" in by:
        assert by["sk-rf"]["average_precision"] > 5 * rate
    ap = [r["average_precision"] for r in d["leaderboard"]]
    assert ap == sorted(ap, reverse=True)  # ranked by the objective (average precision)
    assert d["average_precision"] == ap[0]


def test_evaluation_leaves_out_known_compromised_cards(sim_data) -> None:  # type: ignore[no-untyped-def]
    opts = ProtocolOptions(exclude_known_compromised=True)
    report = evaluate_data(sim_data, ["sk-logreg"], opts, settings=settings())
    s = report.split
    assert s["excluded_known_compromised"] > 0
    assert s["evaluated_rows"] == s["test_rows"] - s["excluded_known_compromised"]
    assert report.best.metrics["n"] == s["evaluated_rows"]


def test_file_without_cards_uses_extra_columns_and_skips_card_metrics() -> None:
    rng = np.random.default_rng(8)
    n = 4000
    frame = pd.DataFrame({
        "transaction_id": [str(i) for i in range(n)],
        "timestamp": pd.Timestamp("2024-01-01", tz="UTC")
        + pd.to_timedelta(np.sort(rng.uniform(0, 20 * DAY, n)), "s"),
        "v1": rng.normal(size=n), "v2": rng.normal(size=n)})
    frame["is_fraud"] = (rng.random(n) < 1 / (1 + np.exp(-(3 * frame["v1"] - 5)))).astype(int)
    data = labelled_from_frame(frame, label_delay="1d")
    assert data.feature_set == "transaction" and {"v1", "v2"} <= set(data.features)
    assert "card" not in " ".join(data.features)
    report = evaluate_data(data, ["logreg", "sk-logreg"], settings=settings())
    d = report.to_dict()
    assert d["card_precision_at_100"] is None
    assert d["roc_auc"] > 0.8
    assert any("no card column" in note for note in d["notes"])
    with pytest.raises(ConfigError, match="needs a card column"):
        labelled_from_frame(frame, label_delay="1d", feature_set="default")


def test_tuning_takes_its_metrics_on_the_same_rows_as_evaluation(sim_data) -> None:  # type: ignore[no-untyped-def]
    from models.tuning import tune_data

    opts = ProtocolOptions(exclude_known_compromised=True)
    result = tune_data(sim_data, "sk-logreg", space={"C": [0.1, 1.0]}, method="grid",
                       options=opts, settings=settings())
    report = evaluate_data(sim_data, [{"name": "sk-logreg", "params": result.best_params}], opts,
                           settings=settings())
    assert result.split["evaluated_rows"] == report.split["evaluated_rows"] < \
        report.split["test_rows"]
    assert result.best is not None
    assert result.best.value == report.best.metrics["average_precision"]


def test_prequential_batch_refits_follow_the_refit_window(sim_data) -> None:  # type: ignore[no-untyped-def]
    from models.protocols import parse_time

    for window, expect in ((None, None), ("10d", 10 * DAY)):
        opts = ProtocolOptions(protocol="prequential", refit_window=window)
        e = evaluate_data(sim_data, ["sk-logreg"], opts, settings=settings()).results[0]
        split = opts.split(sim_data)
        for fit in e.calibration["refits"]:
            at, start = parse_time(fit["at"]), parse_time(fit["from"])
            assert at is not None and start is not None
            want = at - split.delay_s - (split.train_length_s if expect is None else expect)
            if expect is None:
                want = max(want, split.train_start)
            assert start == pytest.approx(want)


def test_prequential_folds_are_the_split_moved_back_and_match_single_evaluations(sim_data) -> None:  # type: ignore[no-untyped-def]
    """evaluate_folds: fold i is the split i test lengths earlier, with the known compromised
    cards of ITS training start left out; each fold's figures are those of evaluate_data on that
    split alone, and the summary is their mean and population std."""
    from models.protocols import parse_time
    from models.training import evaluate_folds

    day0 = float(np.floor(sim_data.t.min() / DAY) * DAY)
    start = pd.Timestamp(day0 + 8 * DAY, unit="s", tz="UTC").isoformat()
    opts = ProtocolOptions(train_start=start, train_days=4, test_days=3,
                           exclude_known_compromised=True)
    fe = evaluate_folds(sim_data, "sk-logreg", opts, folds=2, settings=settings())
    assert len(fe.folds) == 2
    starts = [parse_time(f["train_start"]) for f in fe.folds]
    assert starts == [day0 + 8 * DAY, day0 + 5 * DAY]
    for f, begin in zip(fe.folds, starts, strict=True):
        one = opts.model_copy(update={"train_start": pd.Timestamp(begin, unit="s", tz="UTC")
                                      .isoformat()})
        report = evaluate_data(sim_data, ["sk-logreg"], one, settings=settings())
        assert f["evaluated_rows"] == report.split["evaluated_rows"] < report.split["test_rows"]
        for k in ("roc_auc", "average_precision", "card_precision_at_100"):
            assert f["metrics"][k] == report.results[0].metrics[k], k
    aps = fe.values("average_precision")
    assert aps[0] != aps[1]
    assert fe.mean("average_precision") == pytest.approx(np.mean(aps), abs=1e-6)
    assert fe.std("average_precision") == pytest.approx(np.std(aps), abs=1e-6)
    assert fe.summary()["roc_auc"]["per_fold"] == fe.values("roc_auc")
    with pytest.raises(DataError, match="fold 2 of 3 .*use fewer folds"):
        evaluate_folds(sim_data, "sk-logreg", opts.model_copy(update={"train_days": 1,
                       "train_start": pd.Timestamp(day0 + 2 * DAY, unit="s", tz="UTC")
                       .isoformat()}), folds=3)
