"""The online learner on synthetic streams: drift -> challenger -> promotion, snapshots, sync."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fraudstream.errors import NotFoundError
from fraudstream.settings import Settings
from models.events import ModelEvent
from models.learner import LearnerConfig, OnlineLearner
from models.registry import ModelRegistry

T0 = 1_700_000_000.0


def stream(n: int, drift_at: int | None, seed: int = 0, rate: float = 0.05) -> Iterator[tuple[int, dict, bool]]:
    """Before ``drift_at`` fraud = the largest amounts; after it, fraud = high f0 (amount no longer matters)."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.5, 0.8, n)
    f = rng.random((n, 4))
    flip = rng.random(n) < 0.005
    old = amount > np.quantile(amount, 1 - rate)
    new = f[:, 0] > 1 - rate
    y = old if drift_at is None else np.where(np.arange(n) < drift_at, old, new)
    y = np.where(flip, ~y, y)
    for i in range(n):
        x = {"amount": float(amount[i]), "f0": float(f[i, 0]), "f1": float(f[i, 1]),
             "f2": float(f[i, 2]), "f3": float(f[i, 3])}
        yield i, x, bool(y[i])


def config(**kw) -> LearnerConfig:  # type: ignore[no-untyped-def]
    base = {  # judged on label-time predictions (the live judge: test_models_shadow.py)
        "promotion_judge": "labels",
        "promotion_metric": "average_precision",
        "drift_challenger": "fresh",
        "drift_label_age": None,
        "promotion_window": 1000,
        "promotion_check_every": 100,
        "metrics_window": 2000,
        "drift_cooldown": 1000,
        "snapshot_every_labels": 10_000_000,
        "snapshot_every_s": 1e9,
        "data_drift_cooldown": 10_000,
    }
    base.update(kw)
    return LearnerConfig(**base)


def run(learner: OnlineLearner, data) -> list[tuple[int, ModelEvent]]:  # type: ignore[no-untyped-def]
    events = []
    for i, x, y in data:
        for e in learner.learn(x, y, transaction_id=str(i), card_id=f"c{i % 700}", event_time=T0 + 30.0 * i):
            events.append((i, e))
    return events


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry", "k", keep_online=50)


def _check_promotion(registry: ModelRegistry, learner: OnlineLearner, promo: ModelEvent) -> None:
    ev = promo.evidence
    assert ev["wins"] and ev["window"] == 1000 and ev["metric"] == "average_precision"
    assert ev["challenger_value"] - ev["champion_value"] >= 0.02
    assert ev["positives"] >= 10 and ev["previous"] == "v1" and ev["challenger_labels"] >= 1000
    # the registry says the same, and the new champion descends from the old one
    assert registry.champion_version() == promo.version == learner.champion_version != "v1"
    meta = registry.get(promo.version)
    assert meta.parent == "v1" and meta.labels_learned == ev["challenger_labels"]
    promote = [e for e in registry.history() if e["event"] == "promote"][-1]
    assert promote["version"] == promo.version and "on the latest 1000 labels" in promote["reason"]
    assert learner.challengers == [] and learner.background is None
    ModelEvent.model_validate_json(promo.model_dump_json())  # a valid model-events record


def test_concept_drift_starts_a_challenger_that_is_promoted(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(), clock=lambda: 0.0)
    assert registry.champion_version() == "v1" == learner.champion_version
    events = run(learner, stream(26_000, drift_at=12_000, seed=0))
    assert [e.kind for _, e in events] == ["warning", "drift", "promotion"]
    (w_at, warning), (d_at, drift), (p_at, promo) = events
    # warning: a background model starts; drift: it becomes the challenger
    assert 12_000 <= w_at < d_at < 13_000
    assert warning.evidence["background_started"] and warning.evidence["type"] == "concept"
    assert drift.evidence["type"] == "concept" and drift.evidence["direction"] == "up"
    assert drift.evidence["detector"] == "error_fraud"
    assert drift.evidence["challenger"] == "drift-1"
    assert drift.evidence["challenger_from"].startswith("background model started at a warning")
    assert drift.version == "v1" and drift.event_time == T0 + 30.0 * d_at
    # promoted once it beat the champion on the latest 1000 labels
    assert promo.evidence["challenger"] == "drift-1" and promo.evidence["origin"] == "warning"
    assert promo.evidence["drift"]["challenger"] == "drift-1"
    assert d_at < p_at < d_at + 2000
    _check_promotion(registry, learner, promo)
    # ... and it has learned the new concept since
    assert learner.champion.metrics.average_precision() > 0.6


def test_without_warnings_a_fresh_challenger_starts_at_the_drift(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(drift_warning_delta=None), clock=lambda: 0.0)
    events = run(learner, stream(20_000, drift_at=12_000, seed=3))
    assert [e.kind for _, e in events] == ["drift", "promotion"]
    (d_at, drift), (p_at, promo) = events
    assert 12_000 <= d_at < 13_000
    assert drift.evidence["challenger_from"] == "drift model started at the drift point"
    assert drift.evidence["model_from"].startswith("fresh")
    assert promo.evidence["origin"] == "drift" and promo.evidence["challenger_labels"] == p_at - d_at
    _check_promotion(registry, learner, promo)


def test_a_background_model_can_win_before_the_drift_is_confirmed(registry: ModelRegistry) -> None:
    """The background model started at a warning is judged by the promotion rule even when the
    drift level is never reached (here a drift delta so small that it is not)."""
    learner = OnlineLearner(registry, config(drift_delta=1e-15), clock=lambda: 0.0)
    events = run(learner, stream(20_000, drift_at=12_000, seed=0))
    assert [e.kind for _, e in events] == ["warning", "promotion"]
    (w_at, _), (p_at, promo) = events
    assert 12_000 <= w_at < p_at < 14_000
    assert promo.evidence["challenger"] == "background" and promo.evidence["origin"] == "warning"
    _check_promotion(registry, learner, promo)


def test_stationary_stream_keeps_the_champion(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(), clock=lambda: 0.0)
    events = run(learner, stream(20_000, drift_at=None, seed=1))
    assert not [e for _, e in events if e.kind in ("drift", "promotion")]
    assert registry.champion_version() == "v1"
    assert learner.champion.metrics.average_precision() > 0.6
    assert learner.status()["drifts"] == 0


def test_each_model_predicts_before_it_learns(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(challengers=("hat",)), clock=lambda: 0.0)
    learner.learn({"amount": 900.0}, True, transaction_id="t1", card_id="c", event_time=T0)
    # an unfitted logistic regression says 0.5, an unfitted tree 0: scored before learning
    assert learner.champion.metrics.arrays()[1].tolist() == [0.5]
    assert learner.challengers[0].metrics.arrays()[1].tolist() == [0.0]
    assert learner.champion.model.labels_learned == 1
    assert learner.champion.model.predict_proba_one({"amount": 900.0}) > 0.5


def test_duplicate_labels_are_learned_once(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(), clock=lambda: 0.0)
    for _ in range(3):
        learner.learn({"amount": 1.0}, False, transaction_id="same", card_id="c", event_time=T0)
    assert learner.labels == 1 and learner.duplicates == 2
    assert learner.champion.model.labels_learned == 1


def test_snapshots_by_labels_and_by_time_reach_the_scorers(registry: ModelRegistry) -> None:
    now = [0.0]
    learner = OnlineLearner(registry, config(snapshot_every_labels=200, snapshot_every_s=10.0),
                            clock=lambda: now[0])
    data = list(stream(450, drift_at=None, seed=2))
    run(learner, data[:199])
    assert learner.maybe_snapshot(now[0]) is None  # 199 labels, 0 s: not due
    run(learner, data[199:200])
    snap = learner.maybe_snapshot(now[0])
    assert snap is not None and snap.version == "v2" and snap.parent == "v1"
    assert snap.labels_learned == 200 and snap.metrics["labels"] == 200
    assert snap.time_range is not None
    assert registry.champion_version() == "v2"
    events = learner.tick(now[0])
    assert [e.kind for e in events] == ["snapshot"] and events[0].version == "v2"

    run(learner, data[200:210])
    now[0] += 5.0
    assert learner.tick(now[0]) == []  # 10 labels, 5 s: not due yet
    now[0] += 5.0
    events = learner.tick(now[0])  # 10 s with something learned: due
    assert [e.kind for e in events] == ["snapshot"] and events[0].version == "v3"
    now[0] += 60.0
    assert learner.tick(now[0]) == []  # nothing learned since: no snapshot
    # a clean stop saves what was learned since, due or not; then there is nothing to save
    run(learner, data[210:217])
    events = learner.save_unsaved(now[0])
    assert [e.kind for e in events] == ["snapshot"] and events[0].version == "v4"
    assert registry.champion().labels_learned == 217  # type: ignore[union-attr]
    assert learner.save_unsaved(now[0]) == [] and registry.champion_version() == "v4"
    run(learner, data[217:300])
    learner.save_unsaved(now[0])

    # a scorer elsewhere loads the champion and scores exactly as the learner's champion
    scorer = ModelRegistry(registry.root, "k")
    model, meta = scorer.load(scorer.champion_version())
    assert meta.version == "v5"
    probe = [x for _, x, _ in data[300:]]
    assert [model.predict_proba_one(x) for x in probe] == [
        learner.champion.model.predict_proba_one(x) for x in probe
    ]


def test_operator_rollback_is_adopted_not_overwritten(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(snapshot_every_labels=100), clock=lambda: 0.0)
    data = list(stream(400, drift_at=None, seed=3))
    run(learner, data[:100])
    learner.tick()  # v2
    run(learner, data[100:200])
    learner.tick()  # v3, advanced from v2
    with pytest.raises(NotFoundError, match="nothing to roll back to"):
        registry.rollback()  # snapshots are no promotions: no rollback point yet
    registry.rollback(to="v1", reason="operator: v3 is bad")
    assert registry.champion_version() == "v1"
    run(learner, data[200:300])
    events = learner.tick()
    assert [e.kind for e in events] == ["rollback"]
    assert events[0].version == "v1" and events[0].evidence["reason"] == "operator: v3 is bad"
    assert learner.champion_version == "v1" and learner.champion.model.labels_learned == 0
    run(learner, data[300:400])
    snap = learner.maybe_snapshot()
    assert snap is not None and snap.parent == "v1" and registry.champion_version() == snap.version


def test_a_snapshot_racing_an_operator_is_refused_and_the_learner_adopts(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(snapshot_every_labels=50), clock=lambda: 0.0)
    data = list(stream(100, drift_at=None, seed=4))
    run(learner, data[:50])
    learner.tick()  # v2
    registry.rollback(to="v1", reason="race")
    run(learner, data[50:100])
    # the learner still believes v2 is in charge; advancing from v2 must fail, then it syncs
    assert learner.maybe_snapshot() is None
    assert registry.champion_version() == "v1" == learner.champion_version
    assert [e.kind for e in learner.tick()] == ["rollback"]


def test_configured_challenger_promoted_only_when_allowed(tmp_path: Path) -> None:
    data = list(stream(8000, drift_at=None, seed=5))
    for allowed in (True, False):
        reg = ModelRegistry(tmp_path / f"r{allowed}", "k")
        learner = OnlineLearner(
            reg,
            config(model="rules", model_params={"rules": [{"feature": "f1", "value": 0.9}]},
                   challengers=("logreg",), promote_configured_challengers=allowed),
            clock=lambda: 0.0,
        )
        events = run(learner, data)
        promotions = [e for _, e in events if e.kind == "promotion"]
        if allowed:
            assert len(promotions) == 1 and promotions[0].model == "logreg"
            assert promotions[0].evidence["origin"] == "config"
            assert reg.get(reg.champion_version()).name == "logreg"
        else:
            assert promotions == [] and reg.get(reg.champion_version()).name == "rules"


def test_observe_feeds_unsupervised_models_and_data_drift(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(model="logreg+hst", drift_features=("amount",)),
                            clock=lambda: 0.0)
    rng = np.random.default_rng(6)
    events = []
    for i in range(30_000):
        amount = float(rng.lognormal(3.5, 0.8)) * (3.0 if i >= 15_000 else 1.0)
        x = {"amount": amount, "f0": float(rng.random())}
        score = learner.champion.model.predict_proba_one(x)
        events += [(i, e) for e in learner.observe(x, score)]
    assert learner.champion.model.anomaly.observed == 30_000
    drifts = [(i, e) for i, e in events if e.kind == "drift"]
    assert len(drifts) == 1
    i, e = drifts[0]
    assert 15_000 <= i < 16_000 and e.evidence["type"] == "data"
    assert e.evidence["detector"] in ("feature:amount", "score")
    # an unsupervised champion is snapshotted on time even without labels
    assert learner.maybe_snapshot(1e9) is not None


def test_from_settings_and_restart_continue_the_champion(tmp_path: Path) -> None:
    s = Settings(_env_file=None, registry_dir=tmp_path / "reg", hmac_key="secret", model="hat",
                 snapshot_every_labels=100, challengers=["logreg"])
    learner = OnlineLearner.from_settings(s)
    assert learner.config.model == "hat" and learner.champion.model.name == "hat"
    assert learner.config.threshold == s.review_threshold
    run(learner, stream(100, drift_at=None, seed=7))
    snap = learner.maybe_snapshot()
    assert snap is not None and registry_names(tmp_path / "reg") == ["hat", "hat", "logreg"]
    again = OnlineLearner.from_settings(s)
    assert again.champion_version == snap.version
    assert again.champion.model.labels_learned == 100
    assert [c.label for c in again.challengers] == ["logreg"]
    assert again.challengers[0].model.labels_learned == 100  # the challenger's snapshot
    with pytest.raises(TypeError, match="unknown learner options"):
        LearnerConfig.from_settings(s, promotion_windw=5)


def registry_names(root: Path) -> list[str]:
    return [m.name for m in ModelRegistry(root, "secret").list()]


def test_drift_detection_off_keeps_one_model_learning(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(drift_detection=False), clock=lambda: 0.0)
    events = run(learner, stream(26_000, drift_at=12_000, seed=0))
    assert [e.kind for _, e in events] == []
    assert learner.challengers == [] and learner.background is None
    assert learner.champion.labels == 26_000 and learner.concept.labels == 0


def test_drift_challengers_keep_the_champions_input_scaling(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(warning_max_labels=1), clock=lambda: 0.0)
    events = run(learner, stream(12_400, drift_at=12_000, seed=0))
    assert "drift" in [e.kind for _, e in events]
    challenger = learner.challengers[0]
    champ_scaler, ch_scaler = learner.champion.model.scaler, challenger.model.scaler
    assert ch_scaler is not champ_scaler
    # the challenger's scaler went on from the champion's statistics (counts > its own labels)
    assert ch_scaler.counts["amount"] > challenger.labels
    assert challenger.model.labels_learned == challenger.labels  # the concept is learned afresh


def test_snapshots_keep_the_operating_threshold_of_the_version_they_continue(
        registry: ModelRegistry) -> None:
    from models.zoo import build_model

    offline = registry.save(build_model("logreg"), name="logreg", kind="offline", threshold=0.83,
                            metrics={"feature_set": "default"})
    registry.promote(offline.version, reason="trained offline for FPR <= 0.1 %")
    learner = OnlineLearner(registry, config(snapshot_every_labels=100), clock=lambda: 0.0)
    run(learner, list(stream(100, drift_at=None, seed=4)))
    snap = learner.maybe_snapshot()
    assert snap is not None and snap.parent == offline.version
    assert snap.threshold == 0.83  # not the configured 0.5: the scorer keeps deciding the same way
    assert snap.metrics["feature_set"] == "default"


def _until_warning(learner: OnlineLearner, data) -> int:  # type: ignore[no-untyped-def]
    """Learn ``data`` up to and including the first concept warning; its index."""
    for i, x, y in data:
        events = learner.learn(x, y, transaction_id=str(i), card_id=f"c{i % 700}",
                               event_time=T0 + 30.0 * i)
        if any(e.kind == "warning" for e in events):
            return i
    raise AssertionError("no warning")


def _late_fraud(learner: OnlineLearner, n: int, at: float) -> None:
    """``n`` fraud labels of transactions at ``at`` (reported now: chargebacks)."""
    for j in range(n):
        learner.learn({"amount": 900.0, "f0": 0.1, "f1": 0.5, "f2": 0.5, "f3": 0.5}, True,
                      transaction_id=f"late-{at}-{j}", card_id=f"late{j}", event_time=at)


def test_at_a_warning_the_champion_holds_old_fraud_labels_and_a_drift_drops_them(
        registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(promotion_min_positives=10**9), clock=lambda: 0.0)
    data = stream(26_000, drift_at=12_000, seed=0)
    w_at = _until_warning(learner, data)
    hold = learner.hold
    assert hold is not None and not hold.confirmed and hold.drifted == "fraud"
    assert T0 + 30.0 * 11_000 < hold.since <= T0 + 30.0 * w_at
    champ = learner.champion.model
    before = champ.labels_learned
    _late_fraud(learner, 5, at=hold.since - 3600.0)  # the old concept, reported late: held
    assert champ.labels_learned == before and len(hold.held) == 5
    learner.learn({"amount": 10.0, "f0": 0.2, "f1": 0.5, "f2": 0.5, "f3": 0.5}, False,
                  transaction_id="late-genuine", card_id="g", event_time=hold.since - 3600.0)
    assert champ.labels_learned == before + 1  # genuine labels are not the drifted class
    learner.learn({"amount": 10.0, "f0": 0.99, "f1": 0.5, "f2": 0.5, "f3": 0.5}, True,
                  transaction_id="new-fraud", card_id="n", event_time=hold.since + 60.0)
    assert champ.labels_learned == before + 2  # a fraud since the change is learned
    drift = next(e for i, x, y in data for e in learner.learn(
        x, y, transaction_id=str(i), card_id=f"c{i % 700}", event_time=T0 + 30.0 * i)
        if e.kind == "drift")
    assert drift.evidence["champion_holds"]["confirmed"] is True
    assert learner.hold is None and hold.held == deque()  # let go: they teach the old concept
    n = champ.labels_learned
    _late_fraud(learner, 3, at=hold.since - 60.0)
    assert learner.champion.model.labels_learned == n  # still not learned after the drift


def test_a_warning_whose_error_goes_back_releases_the_held_labels(registry: ModelRegistry) -> None:
    """A false alarm (the old concept comes back) no drift confirms within warning_max_labels:
    the held labels are learned, nothing is lost."""
    learner = OnlineLearner(registry, config(drift_delta=1e-15, promotion_min_positives=10**9,
                                             warning_max_labels=1500), clock=lambda: 0.0)
    _until_warning(learner, stream(16_000, drift_at=12_000, seed=0))
    assert learner.hold is not None
    since = learner.hold.since
    _late_fraud(learner, 20, at=since - 3600.0)
    assert len(learner.hold.held) == 20
    assert learner.champion.model.labels_learned == learner.labels - 20
    released = []
    for i, x, y in stream(20_000, drift_at=None, seed=0):  # the old concept again
        events = learner.learn(x, y, transaction_id=f"back-{i}", card_id=f"c{i % 700}",
                               event_time=T0 + 30.0 * (16_000 + i))
        released = [e for e in events if e.evidence.get("type") == "hold released"]
        if released:
            break
    assert len(released) == 1 and released[0].kind == "warning"
    assert released[0].evidence["held"] == 20 and released[0].evidence["confirmed"] is False
    assert learner.hold is None and learner.champion.since is None
    assert learner.champion.model.labels_learned == learner.labels  # nothing was lost


def test_without_drift_hold_the_champion_learns_every_label(registry: ModelRegistry) -> None:
    learner = OnlineLearner(registry, config(drift_hold=False, promotion_min_positives=10**9),
                            clock=lambda: 0.0)
    _until_warning(learner, stream(26_000, drift_at=12_000, seed=0))
    _late_fraud(learner, 5, at=T0)
    assert learner.hold is None
    assert learner.champion.model.labels_learned == learner.labels
