"""The simulator: deterministic, calibrated, drifting on request, with realistic delayed labels."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from features.columns import read_frame
from fraudstream.errors import ConfigError
from stream.replay import SIMULATOR
from stream.simulate import labels_path_for, write_simulation
from stream.simulator import (
    DAY,
    SCENARIOS,
    SPREE_PATTERN,
    FraudPattern,
    LabelConfig,
    SimConfig,
    Simulator,
    _km,
)
from stream.validation import parse_label, parse_transaction

SMALL = SimConfig(cards=300, terminals=800, seed=11)


def _fingerprint(events: list) -> list[tuple]:
    return [(e.time, e.kind, e.key, orjson.dumps(e.record, option=orjson.OPT_SORT_KEYS), e.scenario)
            for e in events]


def _all_batches(config: SimConfig, days: float) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for b in Simulator(config).batches(days=days):
        for name in ("t", "card", "terminal", "amount", "scenario", "seq", "label_due", "label_seq",
                     "label_fraud", "label_source", "label_scenario"):
            parts.setdefault(name, []).append(getattr(b, name))
    return {k: np.concatenate(v) for k, v in parts.items()}


def test_same_seed_same_events_and_different_seed_different_events() -> None:
    a = _fingerprint(list(Simulator(SMALL).events(count=3000, flush_labels=True)))
    b = _fingerprint(list(Simulator(SMALL).events(count=3000, flush_labels=True)))
    c = _fingerprint(list(Simulator(replace(SMALL, seed=12)).events(count=3000, flush_labels=True)))
    assert a == b
    assert a != c
    assert sum(x[1] == "transaction" for x in c) == 3000
    differ = sum(x[3] != y[3] for x, y in zip(a, c, strict=False))
    assert differ > 0.9 * min(len(a), len(c))


def test_a_shorter_run_is_a_prefix_of_a_longer_one() -> None:
    short = [e for e in Simulator(SMALL).events(count=1000)]
    long = [e for e in Simulator(SMALL).events(count=2500)]
    assert _fingerprint(short) == _fingerprint(long[: len(short)])


def test_events_are_in_event_time_order_labels_first_at_ties() -> None:
    events = list(Simulator(SMALL).events(days=12, flush_labels=True))
    times = np.array([e.time for e in events])
    assert (np.diff(times) >= 0).all()
    kinds = [e.kind for e in events]
    for i in np.flatnonzero(np.diff(times) == 0).tolist():
        assert not (kinds[i] == "transaction" and kinds[i + 1] == "label"), "label after tx at a tie"
    tx_time = {e.record["transaction_id"]: e.time for e in events if e.kind == "transaction"}
    for e in events:
        if e.kind == "label":
            assert e.time > tx_time[e.record["transaction_id"]]


def test_every_record_validates_against_the_wire_schemas() -> None:
    config = replace(SMALL, drift_day=3)
    n_tx = n_labels = 0
    for e in Simulator(config).events(days=8, flush_labels=True):
        raw = orjson.dumps(e.record)
        if e.kind == "transaction":
            tx, reason = parse_transaction(raw)
            assert reason is None, (reason, e.record)
            assert tx is not None and tx.card_id == e.key
            assert tx.epoch == pytest.approx(e.time, abs=1e-3)
            n_tx += 1
        else:
            label, reason = parse_label(raw)
            assert reason is None, (reason, e.record)
            assert label is not None and label.transaction_id == e.key
            assert label.is_fraud == (e.scenario > 0)
            assert label.reported_at.timestamp() == pytest.approx(e.time, abs=1e-3)
            n_labels += 1
    assert n_tx > 5000 and n_labels > 0.8 * n_tx


def test_scenario_rates_match_the_configuration() -> None:
    pattern = FraudPattern(large_amount=0.01, compromised_terminal=0.01, compromised_card=0.01,
                           card_testing=0.01)
    counts = np.zeros(5)
    n = 0
    for seed in (1, 2):
        cols = _all_batches(SimConfig(cards=2000, terminals=4000, seed=seed, fraud=pattern), 45)
        counts += np.bincount(cols["scenario"], minlength=5)
        n += len(cols["scenario"])
    share = counts / n
    assert share[1] == pytest.approx(0.01, rel=0.10)  # single large amounts: independent draws
    assert share[2] == pytest.approx(0.01, rel=0.30)  # a few terminals of uneven traffic
    assert share[3] == pytest.approx(0.01, rel=0.20)
    assert share[4] == pytest.approx(0.01, rel=0.20)  # bursts of ~6
    zero = SimConfig(cards=500, terminals=1000, fraud=FraudPattern(0.0, 0.0, 0.0, 0.0))
    assert (_all_batches(zero, 10)["scenario"] == 0).all()


def test_cards_mostly_use_terminals_near_home_and_fraud_goes_elsewhere() -> None:
    sim = Simulator(SimConfig(cards=1000, terminals=3000, seed=5))
    w = sim.world
    cols = _all_batches(sim.config, 20)
    card, term, scen = cols["card"], cols["terminal"], cols["scenario"]
    physical = w.term_channel[term] != 2
    km = _km(w.card_lat[card], w.card_lon[card], w.term_lat[term], w.term_lon[term])
    genuine = physical & (scen == 0)
    assert np.median(km[genuine]) < 5.0
    assert (km[genuine] < 15).mean() > 0.95
    testing = physical & (scen == 4)
    assert (km[testing] > 15).mean() > 0.5  # scattered card tests hit terminals far away
    # every card has its own usual terminals, and uses several of them
    per_card = pd.Series(term[scen == 0]).groupby(card[scen == 0]).nunique()
    assert per_card.median() >= 3


def test_drift_changes_the_fraud_pattern_after_the_drift_day() -> None:
    drift_day = 15
    config = SimConfig(cards=2000, terminals=4000, seed=3, drift_day=drift_day)
    sim = Simulator(config)
    w = sim.world
    cols = _all_batches(config, 30)
    t, card, term, scen = cols["t"], cols["card"], cols["terminal"], cols["scenario"]
    after = t >= sim.start_s + drift_day * DAY
    before = ~after

    def share(mask: np.ndarray, s: int) -> float:
        return float((scen[mask] == s).mean())

    # the mix follows the configured patterns on each side
    assert share(before, 1) == pytest.approx(config.fraud.large_amount, rel=0.3)
    assert share(after, 1) == pytest.approx(config.drift.large_amount, rel=0.5)
    assert share(after, 4) > 1.5 * share(before, 4)
    # compromised cards stop inflating amounts: amount over the card's usual at that merchant
    base = cols["amount"] * w.term_rate[term]
    usual = np.exp(w.card_mu[card] + w.card_sigma[card] ** 2 / 2) * w.term_factor[term]
    ratio = base / usual
    before_ratio = np.median(ratio[before & (scen == 3)])
    after_ratio = np.median(ratio[after & (scen == 3)])
    assert before_ratio > 2.0 and after_ratio < 1.3
    # injected fraud moves to the night
    hour = ((t - sim.start_s) % DAY) / 3600
    injected = np.isin(scen, (1, 3, 4))
    assert (hour[before & injected] < 6).mean() < 0.35
    assert (hour[after & injected] < 6).mean() > 0.55
    # genuine traffic is the same on both sides
    per_day_before = (before & (scen == 0)).sum() / drift_day
    per_day_after = (after & (scen == 0)).sum() / (30 - drift_day)
    assert per_day_after == pytest.approx(per_day_before, rel=0.05)


def test_local_sprees_after_the_drift_hit_new_shops_in_the_home_city_within_hours() -> None:
    drift_day = 5
    config = SimConfig(cards=2000, terminals=4000, seed=4, drift_day=drift_day, drift=SPREE_PATTERN)
    sim = Simulator(config)
    w = sim.world
    cols = _all_batches(config, 12)
    t, card, term, scen = cols["t"], cols["card"], cols["terminal"], cols["scenario"]
    spree = scen == SCENARIOS.index("local_spree")
    assert not spree[t < sim.start_s + drift_day * DAY].any()
    after = t >= sim.start_s + drift_day * DAY
    assert float(spree[after].mean()) == pytest.approx(SPREE_PATTERN.local_spree, rel=0.3)
    # physical shops of the holder's own city that the card never used before
    assert (w.term_channel[term[spree]] != 2).all()
    assert (w.term_city[term[spree]] == w.card_city[card[spree]]).all()
    usual = [set(w.local[c, : w.n_local[c]].tolist()) for c in card[spree].tolist()]
    assert not any(x in u for x, u in zip(term[spree].tolist(), usual, strict=True))
    # several purchases per card, close together
    per_card = pd.Series(t[spree]).groupby(card[spree])
    assert per_card.size().mean() > 3
    assert float((per_card.max() - per_card.min()).median()) < 4 * 3600


def test_label_delays_sources_and_the_never_labelled_share() -> None:
    labels = LabelConfig(unlabelled_share=0.1, analyst_share=0.4)
    config = SimConfig(cards=1500, terminals=3000, seed=9, labels=labels,
                       fraud=FraudPattern(0.01, 0.01, 0.01, 0.01))
    sim = Simulator(config)
    tx, lab = sim.frames(days=20, flush_labels=True)
    assert not lab["transaction_id"].duplicated().any()
    merged = lab.merge(tx[["transaction_id", "timestamp", "is_fraud"]], on="transaction_id",
                       suffixes=("", "_truth"))
    assert len(merged) == len(lab)
    assert (merged["is_fraud"] == merged["is_fraud_truth"].astype(bool)).all()  # truthful
    delay = (merged["reported_at"] - merged["timestamp"]).dt.total_seconds()
    by = merged.groupby("source")
    analyst = delay[merged["source"] == "analyst"]
    chargeback = delay[merged["source"] == "chargeback"]
    maturity = delay[merged["source"] == "maturity"]
    lo, med, hi = labels.analyst_delay
    assert analyst.between(lo - 1e-3, hi + 1e-3).all()
    assert analyst.median() == pytest.approx(med, rel=0.2)
    lo, med, hi = labels.chargeback_delay
    assert chargeback.between(lo - 1e-3, hi + 1e-3).all()
    assert chargeback.median() == pytest.approx(med, rel=0.2)
    assert np.allclose(maturity, labels.genuine_delay, atol=2e-3)
    assert set(by.groups) == {"analyst", "chargeback", "maturity"}
    fraud_sources = merged.loc[merged["is_fraud"], "source"]
    assert set(fraud_sources) == {"analyst", "chargeback"}
    assert (fraud_sources == "analyst").mean() == pytest.approx(0.4, abs=0.05)
    assert (merged.loc[~merged["is_fraud"], "source"] == "maturity").all()
    assert 1 - len(lab) / len(tx) == pytest.approx(0.1, abs=0.01)  # never labelled

    never = replace(config, labels=replace(labels, genuine_delay=None))
    _, lab2 = Simulator(never).frames(days=5)
    assert lab2["is_fraud"].all() and len(lab2) > 0


def test_labels_are_due_later_in_kafka_mode_and_flushed_on_request() -> None:
    config = SimConfig(cards=500, terminals=1000, seed=4)
    events = list(Simulator(config).events(days=3))
    flushed = list(Simulator(config).events(days=3, flush_labels=True))
    assert flushed[: len(events)] == events
    tail = flushed[len(events):]
    assert tail and all(e.kind == "label" for e in tail)
    end = Simulator(config).start_s + 3 * DAY
    assert all(e.time >= end for e in tail)
    assert max(e.time for e in events) < end
    labelled = {e.key for e in flushed if e.kind == "label"}
    ids = {e.record["transaction_id"] for e in flushed if e.kind == "transaction" and not e.scenario}
    assert len(labelled & ids) / len(ids) == pytest.approx(0.95, abs=0.02)


def test_frames_hold_the_same_events(tmp_path: Path) -> None:
    sim = Simulator(SMALL)
    tx, lab = sim.frames(count=4000, flush_labels=True)
    events = list(sim.events(count=4000, flush_labels=True))
    txe = [e for e in events if e.kind == "transaction"]
    assert tx["transaction_id"].tolist() == [e.record["transaction_id"] for e in txe]
    assert tx["amount"].tolist() == [e.record["amount"] for e in txe]
    assert tx["scenario"].tolist() == [SCENARIOS[e.scenario] for e in txe]
    stamps = tx["timestamp"].map(lambda ts: ts.isoformat(timespec="milliseconds"))
    assert stamps.str.replace("+00:00", "Z").tolist() == [e.record["timestamp"] for e in txe]
    assert lab["transaction_id"].tolist() == [e.key for e in events if e.kind == "label"]


@pytest.mark.parametrize("name", ["sim.csv", "sim.csv.gz", "sim.parquet"])
def test_files_round_trip_through_the_column_mapping(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    config = replace(SMALL, drift_day=1)
    stats = write_simulation(config, path, days=3)
    tx, lab = Simulator(config).frames(days=3)
    assert stats.transactions == len(tx) and stats.labels == len(lab)
    assert stats.frauds == int(tx["is_fraud"].sum())
    frame = read_frame(path, SIMULATOR)
    assert len(frame) == len(tx)
    assert frame["transaction_id"].tolist() == tx["transaction_id"].tolist()
    assert np.allclose(frame["amount"], tx["amount"])
    assert (frame["timestamp"].to_numpy() == tx["timestamp"].to_numpy()).all()
    assert "scenario" not in frame  # the truth's name column is not a feature
    labels_file = labels_path_for(path)
    back = pd.read_parquet(labels_file) if name.endswith("parquet") else pd.read_csv(labels_file)
    assert len(back) == len(lab)
    assert back["transaction_id"].astype(str).tolist() == lab["transaction_id"].tolist()


@pytest.mark.parametrize(
    "config",
    [
        SimConfig(cards=0),
        SimConfig(terminals=1),
        SimConfig(seed=-1),
        SimConfig(tx_per_day=0),
        SimConfig(drift_day=-1),
        SimConfig(fraud=FraudPattern(large_amount=0.7)),
        SimConfig(fraud=FraudPattern(card_inflation=(3.0, 2.0))),
        SimConfig(drift=FraudPattern(testing_burst=1)),
        SimConfig(labels=LabelConfig(unlabelled_share=1.5)),
        SimConfig(labels=LabelConfig(analyst_delay=(10.0, 5.0, 20.0))),
        SimConfig(base_currency="XYZ"),
    ],
)
def test_bad_configuration_is_refused(config: SimConfig) -> None:
    with pytest.raises(ConfigError):
        Simulator(config)


def test_bad_count_or_days_is_refused() -> None:
    with pytest.raises(ConfigError):
        list(Simulator(SMALL).events(count=-1))
    with pytest.raises(ConfigError):
        Simulator(SMALL).frames()


def test_single_currency_and_local_currencies() -> None:
    local = Simulator(SimConfig(cards=300, terminals=2000, seed=2)).frames(days=2)[0]
    assert {"EUR", "GBP", "USD"} <= set(local["currency"])
    assert (local.loc[local["currency"] == "JPY", "amount"] % 1 == 0).all()  # no minor unit
    single = Simulator(SimConfig(cards=300, terminals=2000, seed=2, local_currency=False))
    assert set(single.frames(days=2)[0]["currency"]) == {"EUR"}


def test_ecom_transactions_have_no_coordinates_and_physical_ones_do() -> None:
    tx, _ = Simulator(SMALL).frames(days=3)
    ecom = tx["channel"] == "ecom"
    assert ecom.any() and (~ecom).any()
    assert tx.loc[ecom, "latitude"].isna().all() and tx.loc[ecom, "country"].notna().all()
    assert tx.loc[~ecom, ["latitude", "longitude", "city"]].notna().all().all()
    assert set(tx["channel"]) == {"pos", "atm", "ecom"}
    atm = tx["channel"] == "atm"
    assert ((tx.loc[atm & (tx["currency"] == "EUR") & (tx["scenario"] == "genuine"), "amount"]
             % 10) == 0).all()
