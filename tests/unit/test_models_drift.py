"""Drift: one change raises one alarm; a stationary stream raises none (seeded)."""

from __future__ import annotations

import numpy as np
import pytest

from models.drift import ConceptDriftMonitor, DataDriftMonitor, Detector


def _labels(n: int, change_at: int | None, seed: int, rate: float = 0.03):  # type: ignore[no-untyped-def]
    """(y, p) of a fixed model: it ranks frauds well until the concept changes under it."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < rate
    genuine = rng.beta(1, 12, n)
    good = np.where(y, rng.beta(5, 2, n), genuine)
    bad = np.where(y, rng.beta(1, 6, n), genuine)  # only the frauds changed: they look genuine
    idx = np.arange(n)
    p = good if change_at is None else np.where(idx < change_at, good, bad)
    return y, p


def test_abrupt_concept_drift_raises_exactly_one_alarm() -> None:
    for seed in range(3):
        mon = ConceptDriftMonitor(delta=0.002, warning_delta=0.05, cooldown=2000)
        y, p = _labels(40_000, change_at=20_000, seed=seed)
        drifts = []
        for i in range(len(y)):
            for a in mon.update(bool(y[i]), float(p[i])):
                if a.level == "drift":
                    drifts.append((i, a))
        assert len(drifts) == 1, (seed, [(i, a.detector) for i, a in drifts])
        i, alarm = drifts[0]
        assert 20_000 <= i < 22_000  # about 20 frauds after the change
        assert alarm.detector == "error_fraud" and alarm.direction == "up"
        assert alarm.mean_after > alarm.mean_before
        assert alarm.evidence["labels"] == i + 1


def test_stationary_stream_raises_no_alarm() -> None:
    for seed in range(5):
        mon = ConceptDriftMonitor(delta=0.002, warning_delta=None, cooldown=2000)
        y, p = _labels(60_000, change_at=None, seed=100 + seed)
        alarms = [a for i in range(len(y)) for a in mon.update(bool(y[i]), float(p[i]))]
        assert alarms == [], seed


def test_cooldown_turns_a_burst_of_detections_into_one_alarm() -> None:
    rng = np.random.default_rng(3)
    n = 8000
    ramp = rng.normal(np.clip((np.arange(n) - 2000) / 2000, 0, 2), 1.0)
    raw = Detector("x", delta=0.002, cooldown=0)
    one = Detector("x", delta=0.002, cooldown=6000)
    raw_alarms = [i for i, v in enumerate(ramp) if raw.update(float(v))]
    alarms = [i for i, v in enumerate(ramp) if one.update(float(v))]
    assert len(raw_alarms) >= 3  # ADWIN alone: a burst
    assert len(alarms) == 1 and alarms[0] == raw_alarms[0]
    assert one.detections == len(raw_alarms) and one.suppressed == len(raw_alarms) - 1


def test_rearms_after_the_cooldown_for_a_second_change() -> None:
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(0, 1, 5000), rng.normal(3, 1, 5000), rng.normal(6, 1, 5000)])
    d = Detector("x", delta=0.002, cooldown=2000)
    alarms = [i for i, v in enumerate(values) if d.update(float(v))]
    assert len(alarms) == 2
    assert 5000 <= alarms[0] < 5500 and 10_000 <= alarms[1] < 10_500


def test_error_going_down_is_no_concept_drift() -> None:
    rng = np.random.default_rng(5)
    d = Detector("error", delta=0.002, cooldown=100, direction="up")
    values = np.concatenate([rng.normal(0.5, 0.1, 4000), rng.normal(0.1, 0.1, 4000)])
    assert not [i for i, v in enumerate(values) if d.update(float(v))]
    assert d.detections >= 1 and d.suppressed == d.detections


def test_warning_comes_no_later_than_the_drift() -> None:
    mon = ConceptDriftMonitor(delta=0.002, warning_delta=0.05, cooldown=2000)
    y, p = _labels(40_000, change_at=20_000, seed=7)
    seen = {}
    for i in range(len(y)):
        for a in mon.update(bool(y[i]), float(p[i])):
            seen.setdefault(a.level, i)
    assert 20_000 <= seen["warning"] < seen["drift"] < 22_000
    assert mon.warnings >= 1 and mon.drifts == 1


def _tx(n: int, shift_at: int | None, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.5, 0.8, n)
    if shift_at is not None:
        amount[shift_at:] *= 1.6  # e.g. a currency mix change
    score = rng.beta(1, 20, n)
    return amount, score


def test_data_drift_one_alarm_for_a_shift_in_a_key_feature() -> None:
    mon = DataDriftMonitor(["amount", "missing_feature"], delta=1e-5, cooldown=50_000)
    amount, score = _tx(100_000, shift_at=50_000, seed=1)
    alarms = []
    for i in range(len(amount)):
        a = mon.update({"amount": float(amount[i]), "other": None}, float(score[i]))
        if a:
            alarms.append((i, a))
    assert len(alarms) == 1
    i, a = alarms[0]
    assert a.detector == "feature:amount" and a.direction == "up" and 50_000 <= i < 52_000


@pytest.mark.parametrize("seed", range(3))
def test_data_drift_silent_on_a_stationary_stream(seed: int) -> None:
    mon = DataDriftMonitor(["amount"], delta=1e-5, cooldown=50_000)
    amount, score = _tx(150_000, shift_at=None, seed=10 + seed)
    assert not [i for i in range(len(amount))
                if mon.update({"amount": float(amount[i])}, float(score[i]))]


def _daily_genuine_cycle(n: int, seed: int):  # type: ignore[no-untyped-def]
    """(y, p) of a fixed, good model whose genuine error doubles every 'night' (1,000 of 4,000)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.03
    night = (np.arange(n) % 4000) < 1000
    genuine = np.where(night, rng.beta(1, 12, n) + 0.06, rng.beta(1, 12, n))
    return y, np.where(y, rng.beta(5, 2, n), np.clip(genuine, 0, 1))


def test_a_daily_cycle_of_the_genuine_error_alarms_only_when_genuine_is_watched() -> None:
    y, p = _daily_genuine_cycle(40_000, seed=1)
    both = ConceptDriftMonitor(cooldown=1000, warning_delta=None)
    frauds = ConceptDriftMonitor(cooldown=1000, warning_delta=None, classes=("fraud",))
    alarms_both = [a for i in range(len(y)) for a in both.update(bool(y[i]), float(p[i]))]
    alarms_frauds = [a for i in range(len(y)) for a in frauds.update(bool(y[i]), float(p[i]))]
    assert alarms_both and {a.detector for a in alarms_both} == {"error_genuine"}
    assert alarms_frauds == []


def test_watching_only_frauds_still_finds_a_fraud_drift() -> None:
    mon = ConceptDriftMonitor(cooldown=2000, classes=("fraud",))
    y, p = _labels(40_000, change_at=20_000, seed=0)
    drifts = [(i, a) for i in range(len(y)) for a in mon.update(bool(y[i]), float(p[i]))
              if a.level == "drift"]
    assert len(drifts) == 1 and 20_000 <= drifts[0][0] < 22_000


def test_unknown_classes_are_refused() -> None:
    with pytest.raises(ValueError, match="fraud and/or genuine"):
        ConceptDriftMonitor(classes=("chargebacks",))
