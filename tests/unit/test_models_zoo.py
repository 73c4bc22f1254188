"""The zoo: one contract test over every model, then each kind's specifics and reason codes."""

from __future__ import annotations

import copy
import math
import pickle
import random

import numpy as np
import pytest
from river import imblearn

from fraudstream.errors import ConfigError
from models import reasons
from models.metrics import roc_auc
from models.zoo import MODEL_NAMES, build_model, clean_features
from stream.schemas import Reason

FEATURES = ("amount", "night", "card_nb_tx_1d", "terminal_risk_7d", "f0", "f1")


def _stream(n: int, seed: int = 0) -> list[tuple[dict[str, float | None], bool]]:
    """Fraud = large amount (the default rule's 220) or a risky terminal at night."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(4.0, 0.9, n)
    night = (rng.random(n) < 0.25).astype(float)
    velocity = rng.poisson(3, n).astype(float)
    risk = rng.random(n) * 0.3
    f0, f1 = rng.random(n), rng.random(n)
    y = (amount > 220) | ((risk > 0.25) & (night > 0))
    out = []
    for i in range(n):
        x: dict[str, float | None] = {
            "amount": float(amount[i]),
            "night": float(night[i]),
            "card_nb_tx_1d": float(velocity[i]),
            "terminal_risk_7d": float(risk[i]),
            "f0": float(f0[i]),
            "f1": float(f1[i]),
        }
        out.append((x, bool(y[i])))
    return out


def _train(model, data):  # type: ignore[no-untyped-def]
    for x, y in data:
        model.predict_proba_one(x)
        model.learn_one(x, y)
        model.observe_one(x)


@pytest.fixture(scope="module")
def data() -> list[tuple[dict[str, float | None], bool]]:
    return _stream(1600, seed=1)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_contract(name: str, data: list[tuple[dict[str, float | None], bool]]) -> None:
    model = build_model(name)
    assert model.name == name
    assert isinstance(model.params, dict)
    train, held = data[:1200], data[1200:]

    # inputs are never mutated, by any method
    for x, y in train:
        before = copy.deepcopy(x)
        p = model.predict_proba_one(x)
        assert 0.0 <= p <= 1.0 and math.isfinite(p)
        model.learn_one(x, y)
        model.observe_one(x)
        assert x == before
    x0 = dict(held[0][0])
    model.explain_one(x0)
    assert x0 == held[0][0]

    # probabilities in [0, 1]; supervised models actually learned the concept
    scores = [model.predict_proba_one(x) for x, _ in held]
    assert all(0.0 <= s <= 1.0 and math.isfinite(s) for s in scores)
    if model.supervised:
        assert roc_auc([y for _, y in held], scores) > 0.8, name

    # pickle round trip: identical predictions and reasons, and identical learning afterwards
    clone = pickle.loads(pickle.dumps(model))
    assert [clone.predict_proba_one(x) for x, _ in held] == scores
    assert [clone.explain_one(x) for x, _ in held[:50]] == [model.explain_one(x) for x, _ in held[:50]]
    _train(model, held[:100])
    _train(clone, held[:100])
    assert [clone.predict_proba_one(x) for x, _ in held[100:]] == [
        model.predict_proba_one(x) for x, _ in held[100:]
    ]

    # missing features (None, NaN, absent) and new features are tolerated
    odd = [
        {"amount": None, "night": 1.0},
        {"amount": float("nan"), "card_nb_tx_1d": float("inf"), "f0": "text"},
        {},
        {**held[0][0], "brand_new_feature": 3.0, "another": None},
    ]
    for x in odd:
        before = copy.deepcopy(x)
        p = model.predict_proba_one(x)
        assert 0.0 <= p <= 1.0 and math.isfinite(p)
        model.explain_one(x)
        model.learn_one(x, True)
        model.observe_one(x)
        assert repr(x) == repr(before)  # (NaN != NaN, so compare the text)
    assert 0.0 <= model.predict_proba_one({**held[1][0], "brand_new_feature": 1.0}) <= 1.0

    # reasons: at most k, positive, largest first, of real features (or rules / anomaly score)
    allowed = set(FEATURES) | {"anomaly_score", "brand_new_feature"}
    if name == "rules":
        allowed = {r.label for r in model.rules}
    for x, _ in held[:200]:
        rs = model.explain_one(x)
        assert len(rs) <= 3
        assert all(isinstance(r, Reason) and r.contribution > 0 for r in rs)
        assert [r.contribution for r in rs] == sorted((r.contribution for r in rs), reverse=True)
        assert {r.feature for r in rs} <= allowed
        assert len(model.explain_one(x, k=1)) <= 1
        assert model.score_one(x) == (model.predict_proba_one(x), rs)  # the scorer's one call

    # clone(): a fresh model with the same name and parameters
    fresh = model.clone()
    assert (fresh.name, fresh.params, fresh.labels_learned) == (name, model.params, 0)


def test_some_model_gives_reasons(data: list[tuple[dict[str, float | None], bool]]) -> None:
    """The contract allows empty reason lists; make sure real ones come out for a fraud."""
    fraud = next(x for x, y in data[1200:] if y and x["amount"] and x["amount"] > 300)
    for name in MODEL_NAMES:
        model = build_model(name)
        _train(model, data[:1200])
        rs = model.explain_one(fraud)
        if name in ("logreg", "hat", "arf", "rules", "logreg+hst", "hat+hst", "arf+hst"):
            assert rs and rs[0].feature in ("amount", "amount>220"), (name, rs)
            assert rs[0].value == fraud["amount"]


def test_unknown_name_and_bad_params_name_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match="unknown model 'gbm'; known: logreg, hat, arf, hst"):
        build_model("gbm")
    with pytest.raises(ConfigError, match=r"model 'logreg': bad parameters: lrate: Extra inputs.*allowed: .*pos_weight"):
        build_model("logreg", {"lrate": 0.1})
    with pytest.raises(ConfigError, match="n_models"):
        build_model("arf", {"n_models": 0})
    with pytest.raises(ConfigError, match="sampling"):
        build_model("hat", {"sampling": "smote"})
    with pytest.raises(ConfigError, match="model 'hst': bad parameters"):
        build_model("logreg+hst", {"anomaly": {"height": "tall"}})
    with pytest.raises(ConfigError, match="unique"):
        build_model("rules", {"rules": [{"feature": "a", "value": 1}, {"feature": "a", "value": 1}]})
    with pytest.raises(ConfigError, match="mapping"):
        build_model("logreg", ["lr"])  # type: ignore[arg-type]


def test_params_are_complete_and_rebuild_the_same_model() -> None:
    m = build_model("logreg+hst", {"mode": "blend", "supervised": {"l2": 0.01}})
    assert m.params["supervised"]["l2"] == 0.01
    assert m.params["anomaly"]["n_trees"] == 10
    again = build_model(m.name, m.params)
    assert again.params == m.params


def test_class_weight_raises_the_fraud_probability() -> None:
    data = _stream(800, seed=3)
    plain, weighted = build_model("logreg"), build_model("logreg", {"pos_weight": 10})
    _train(plain, data)
    _train(weighted, data)
    probe = [x for x, _ in data[:200]]
    assert np.mean([weighted.predict_proba_one(x) for x in probe]) > np.mean(
        [plain.predict_proba_one(x) for x in probe]
    )


def test_arf_class_weight_repeats_frauds() -> None:
    m = build_model("arf", {"pos_weight": 3.0, "n_models": 2})
    m.learn_one({"amount": 500.0}, True)
    m.learn_one({"amount": 5.0}, False)
    assert m.labels_learned == 2  # counted once each, learned 3 + 1 times by the forest


@pytest.mark.parametrize("sampling, cls", [("under", imblearn.RandomUnderSampler),
                                           ("over", imblearn.RandomOverSampler)])
def test_sampling_wrappers(sampling: str, cls: type) -> None:
    m = build_model("logreg", {"sampling": sampling, "desired_pos": 0.3})
    assert isinstance(m.estimator, cls)
    assert m.estimator.desired_dist == {True: 0.3, False: 0.7}
    data = _stream(1500, seed=4)
    _train(m, data[:1200])
    assert roc_auc([y for _, y in data[1200:]], [m.predict_proba_one(x) for x, _ in data[1200:]]) > 0.8
    seen = m.estimator._trained_on_dist  # what the wrapped model learned from
    actual = sum(y for _, y in data[:1200]) / 1200
    assert actual < 0.2
    assert seen[True] / (seen[True] + seen[False]) == pytest.approx(0.3, abs=0.08)


def test_clean_features_and_missing_indicators() -> None:
    assert clean_features({"a": None, "b": "2.5", "c": float("-inf")}) == {"b": 2.5}
    m = build_model("logreg", {"missing_indicators": True})
    for i in range(300):
        m.learn_one({"amount": float(i), "device": None if i % 3 == 0 else 1.0}, i % 3 == 0)
    # the absence of "device" predicts fraud here; only the indicator can carry that
    assert m.predict_proba_one({"amount": 150.0, "device": None}) > m.predict_proba_one(
        {"amount": 150.0, "device": 1.0}
    )
    assert m.lr._weights.get("device__missing", 0.0) > 0


def test_logreg_reasons_are_the_exact_share_of_the_logit() -> None:
    m = build_model("logreg")
    data = _stream(600, seed=5)
    _train(m, data)
    for x, _ in data[:50]:
        contributions = m._contributions(m._clean(x))
        p = m.predict_proba_one(x)
        logit = math.log(p / (1 - p))
        assert sum(contributions.values()) + m.lr.intercept == pytest.approx(logit, abs=1e-9)


def test_tree_reasons_add_up_along_the_path() -> None:
    m = build_model("hat", {"leaf_prediction": "mc"})
    data = _stream(3000, seed=6)
    _train(m, data)
    root = m.core._root
    assert root is not None and hasattr(root, "feature"), "the tree should have split"
    for x, _ in data[:50]:
        xc = m._clean(x)
        node = root
        while hasattr(node, "feature"):
            node = node.next(xc)
        pr = root.stats.get(True, 0.0) / sum(root.stats.values())
        pl = node.stats.get(True, 0.0) / sum(node.stats.values())
        assert sum(m._contributions(xc).values()) == pytest.approx(pl - pr, abs=1e-12)


def test_hst_reasons_equal_brute_force_perturbation() -> None:
    m = build_model("hst", {"window_size": 100})
    rng = random.Random(7)
    rows = [{f"f{i}": rng.random() for i in range(8)} for _ in range(1500)]
    for x in rows:
        m.observe_one(x)
    for x in rows[:200]:
        xs = m.scaler.transform_one(m._clean(x))
        base = m.scaler.transform_one({f: m._means[f][1] for f in xs})
        fast = reasons.hst_contributions(m.hst, xs, base)
        slow = reasons.perturbation_contributions(m.hst.score_one, dict(xs), base, list(xs))
        for f, v in slow.items():
            assert fast.get(f, 0.0) == pytest.approx(v, abs=1e-12)
    assert m.learn_one(rows[0], True) is None  # labels are not needed, nor used


def test_hst_score_is_calibrated_and_explains_an_outlier() -> None:
    m = build_model("hst")
    rng = random.Random(7)
    rows = [{f"f{i}": 0.0 for i in range(8)}]  # fix the min-max range early
    rows += [{f"f{i}": rng.gauss(0.5, 0.05) for i in range(8)} for _ in range(4000)]
    for x in rows:
        m.observe_one(x)
    fresh = [{f"f{i}": rng.gauss(0.5, 0.05) for i in range(8)} for _ in range(500)]
    typical = [m.predict_proba_one(x) for x in fresh]
    assert 0.4 < float(np.mean(typical)) < 0.6  # quantiles of the recent raw scores
    outlier = {**fresh[0], "f3": 0.9}
    assert m.predict_proba_one(outlier) > m.predict_proba_one(fresh[0])
    assert m.explain_one(outlier)[0].feature == "f3"
    uncalibrated = build_model("hst", {"calibration_window": 0})
    for x in rows:
        uncalibrated.observe_one(x)
    assert uncalibrated.predict_proba_one(fresh[0]) == uncalibrated.raw_score(fresh[0])


def test_rules_fire_learn_and_explain() -> None:
    m = build_model("rules", {"rules": [
        {"name": "big", "feature": ["amount", "TX_AMOUNT"], "op": ">", "value": 100, "weight": 0.5},
        {"name": "night", "feature": "night", "op": "==", "value": 1, "weight": 0.2},
    ], "prior_strength": 10})
    assert m.predict_proba_one({"amount": 50.0, "night": 0.0}) == 0.0
    assert m.predict_proba_one({"TX_AMOUNT": 150.0}) == pytest.approx(0.5)
    assert m.predict_proba_one({"amount": 150.0, "night": 1.0}) == pytest.approx(1 - 0.5 * 0.8)
    for _ in range(10):
        m.learn_one({"amount": 150.0}, True)
    assert m.weight(0) == pytest.approx((0.5 * 10 + 10) / 20)
    rs = m.explain_one({"amount": 150.0, "night": 1.0})
    assert [(r.feature, r.value) for r in rs] == [("big", 150.0), ("night", 1.0)]
    static = build_model("rules", {"learn_weights": False})
    static.learn_one({"amount": 500.0}, False)
    assert static.predict_proba_one({"amount": 500.0}) == pytest.approx(0.5)


def test_combo_blend_is_the_weighted_mean_and_explains_the_dominant_part() -> None:
    m = build_model("logreg+hst", {"mode": "blend", "weight": 0.25})
    data = _stream(800, seed=8)
    _train(m, data)
    for x, _ in data[:20]:
        xc = m._clean(x)
        expected = 0.75 * m.sup.predict_proba_one(x) + 0.25 * m.anomaly.predict_proba_one(x)
        assert m.predict_proba_one(x) == pytest.approx(expected)
        assert m.explain_one(x) == reasons.top_reasons(m._contributions(xc), x, 3)
    fm = build_model("logreg+hst")
    _train(fm, data)
    assert "anomaly_score" in fm.sup.scaler.means  # the anomaly score is an input in feature mode


def test_reason_codes_are_fast_enough_to_run_on_every_transaction() -> None:
    """Not a timing assert (see bench/models.py): explain_one must not re-score per feature."""
    m = build_model("hst")
    rows = [{f"f{i}": random.random() for i in range(6)} for _ in range(600)]
    for x in rows:
        m.observe_one(x)
    calls = 0
    original = m.hst.score_one

    def counting(x):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return original(x)

    m.hst.score_one = counting
    m.explain_one(rows[0])
    assert calls == 0


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_restart_learns_afresh_and_keeps_input_statistics(name: str) -> None:
    model = build_model(name)
    rows = [({"amount": float(i % 97), "n": float(i % 7)}, i % 97 > 90) for i in range(600)]
    for x, y in rows:
        model.observe_one(x)
        model.learn_one(x, y)
    fresh = model.restart()
    assert type(fresh) is type(model) and fresh.params == model.params
    assert fresh.labels_learned == 0
    if name == "logreg":
        assert fresh.scaler is not model.scaler
        assert fresh.scaler.counts["amount"] == model.scaler.counts["amount"] == 600
        assert fresh.lr._weights == {} or all(w == 0 for w in fresh.lr._weights.values())
        fresh.learn_one(*rows[0])  # learning the copy leaves the original alone
        assert model.scaler.counts["amount"] == 600
    p = fresh.predict_proba_one(rows[0][0])
    assert 0.0 <= p <= 1.0


def test_default_rules_name_features_that_feature_sets_produce() -> None:
    """A rule whose feature no feature set produces never fires: every default rule must match."""
    from features.definitions import load_feature_set
    from models.zoo import DEFAULT_RULES

    produced = set(load_feature_set("default").feature_names()) | set(
        load_feature_set("handbook").feature_names())
    for rule in DEFAULT_RULES:
        names = rule["feature"] if isinstance(rule["feature"], list) else [rule["feature"]]
        assert produced & set(names), f"rule {rule['name']} names no produced feature: {names}"
