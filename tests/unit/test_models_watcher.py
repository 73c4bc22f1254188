"""ChampionWatcher: a scorer's view of the registry, hot-swapped, never on a bad artifact."""

from __future__ import annotations

import os
from pathlib import Path

from models.registry import ModelRegistry
from models.watcher import ChampionWatcher
from models.zoo import build_model


def _save(reg: ModelRegistry, amount_fraud: float):  # type: ignore[no-untyped-def]
    m = build_model("logreg")
    for i in range(200):
        a = float(i % 100)
        m.learn_one({"amount": a}, a > amount_fraud)
    return reg.save(m, name=m.name, params=m.params, labels_learned=200), m


def test_swaps_within_the_poll_interval_and_keeps_in_flight_models(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg", "k")
    v1, m1 = _save(reg, 80)
    reg.promote(v1.version)
    now = [0.0]
    w = ChampionWatcher(ModelRegistry(reg.root, "k"), poll_interval_s=0.2, clock=lambda: now[0])
    assert w.version == "v1" and w.swaps == 1
    in_flight_model, in_flight_meta = w.current  # a batch being scored
    v2, m2 = _save(reg, 20)
    reg.promote(v2.version)
    now[0] += 0.1
    assert not w.refresh() and w.version == "v1"  # polled less than 0.2 s ago
    now[0] += 0.1
    assert w.refresh() and w.version == "v2" and w.swaps == 2
    model, meta = w.current
    x = {"amount": 50.0}
    assert model.predict_proba_one(x) == m2.predict_proba_one(x)
    assert in_flight_model.predict_proba_one(x) == m1.predict_proba_one(x)  # untouched
    assert in_flight_meta.version == "v1"
    now[0] += 1.0
    assert not w.refresh()  # nothing changed: no reload


def test_a_tampered_champion_is_not_adopted(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg", "k")
    v1, _ = _save(reg, 80)
    reg.promote(v1.version)
    w = ChampionWatcher(reg, poll_interval_s=0.0)
    v2, _ = _save(reg, 20)
    art = reg.root / "versions" / v2.version / "model.pkl"
    art.write_bytes(art.read_bytes()[:-1] + b"\x00")
    reg.promote(v2.version)
    assert not w.refresh()
    assert w.version == "v1" and "signature does not match" in (w.last_error or "")
    v3, _ = _save(reg, 50)
    reg.promote(v3.version)
    assert w.refresh() and w.version == "v3"


def test_challengers_follow_the_registry(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg", "k")
    for a in (80, 20, 50):
        _save(reg, a)
    reg.promote("v1")
    reg.set_challengers(["v2", "v3"])
    w = ChampionWatcher(reg, poll_interval_s=0.0, with_challengers=True)
    assert sorted(w.challengers) == ["v2", "v3"]
    reg.set_challengers(["v3"])
    w.refresh()
    assert list(w.challengers) == ["v3"]
    empty = ChampionWatcher(ModelRegistry(tmp_path / "empty", "k"))
    assert empty.current is None and empty.version is None


def test_a_champion_trained_on_another_feature_set_is_refused(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg", "k")
    m = build_model("logreg")
    hb = reg.save(m, name="logreg", kind="offline", metrics={"feature_set": "handbook"})
    reg.promote(hb.version, reason="test")
    # a version learning on from it inherits its feature set
    child = reg.save(m, name="logreg", parent=hb.version)
    assert reg.get(child.version).metrics["feature_set"] == "handbook"
    w = ChampionWatcher(reg, feature_set="default")
    assert w.current is None
    assert "trained on feature set 'handbook'" in (w.last_error or "")
    assert "computes 'default'" in (w.last_error or "")
    ok = ChampionWatcher(reg, feature_set="handbook")
    assert ok.version == hb.version
    # a version trained on the scorer's set is taken when promoted
    d = reg.save(m, name="logreg", kind="offline", metrics={"feature_set": "default"})
    reg.promote(d.version, reason="test")
    w.poll_interval_s = 0.0
    assert w.refresh() and w.version == d.version


def test_worker_refuses_to_start_with_a_champion_of_another_feature_set(tmp_path: Path) -> None:
    import subprocess
    import sys

    reg = ModelRegistry(tmp_path / "reg", "k")
    hb = reg.save(build_model("logreg"), name="logreg", kind="offline",
                  metrics={"feature_set": "handbook"})
    reg.promote(hb.version, reason="test")
    env = {**os.environ, "FRAUDSTREAM_REGISTRY_DIR": str(tmp_path / "reg"),
           "FRAUDSTREAM_HMAC_KEY": "k", "FRAUDSTREAM_FEATURE_SET": "default"}
    done = subprocess.run([sys.executable, "-m", "fraudstream", "worker", "--role", "scorer"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "trained on feature set 'handbook'" in done.stderr
