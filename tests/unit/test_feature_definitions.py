"""Feature definitions, presets and the offline twin's window semantics (no services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.definitions import (
    Aggregate,
    AmountVsHistory,
    FeatureSet,
    FirstSeen,
    HourOfDay,
    Night,
    SincePrevious,
    load_feature_set,
)
from features.offline import compute_features
from features.plan import Plan
from fraudstream.errors import ConfigError, DataError, FeatureDefinitionError

T0 = datetime(2018, 4, 2, 12, 0, tzinfo=UTC)  # a Monday
DAY = 86400


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Aggregate("x", "shop", "count"), "unknown entity 'shop'"),
        (lambda: Aggregate("x", "card", "median"), "unknown aggregation 'median'"),
        (lambda: Aggregate("x", "card", "count", window="90m", bucket="1h"), "not a multiple"),
        (lambda: Aggregate("x", "card", "count", window="1h", bucket="0.5s"), "whole number"),
        (lambda: Aggregate("x", "card", "count", window="1d", bucket="1h", delay="90m"),
         "delay 5400 s is not a multiple"),
        (lambda: Aggregate("x", "card", "count", window="soon"), "window: not a duration"),
        (lambda: Aggregate("x", "card", "sum", source="country"), "needs source amount or is_fraud"),
        (lambda: Aggregate("x", "card", "std", source="is_fraud"), "std of labels is not defined"),
        (lambda: Aggregate("x", "card", "distinct", source="card_id"), "always 1"),
        (lambda: Aggregate("x", "card", "distinct", source="colour"), "distinct needs a source"),
        (lambda: Aggregate("x", "card", "count", source="amount"), "count takes no source"),
        (lambda: Aggregate("x", "card", "mean", source="amount", empty=float("nan")), "finite"),
        (lambda: Aggregate("1x", "card", "count"), "a name is letters"),
        (lambda: AmountVsHistory("x", "median"), "zscore or ratio"),
        (lambda: HourOfDay("x", "tan"), "sin or cos"),
        (lambda: Night("x", last_hour=24), "0..23"),
        (lambda: SincePrevious("x", horizon="0s"), "longer than 0"),
        (lambda: FirstSeen("x", field="terminal_id", entity="terminal"), "always has its own"),
        (lambda: FeatureSet("s", (Aggregate("a", "card", "count"), Aggregate("a", "card", "count"))),
         "defined twice"),
        (lambda: FeatureSet("s", ()), "at least one definition"),
    ],
)
def test_bad_definitions_fail_with_a_clear_message(build: Any, message: str) -> None:
    with pytest.raises(FeatureDefinitionError, match=message):
        build()


def test_presets() -> None:
    hb = load_feature_set("handbook")
    assert hb.feature_names() == [
        "TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT",
        "CUSTOMER_ID_NB_TX_1DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
        "CUSTOMER_ID_NB_TX_7DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW",
        "CUSTOMER_ID_NB_TX_30DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
        "TERMINAL_ID_NB_TX_1DAY_WINDOW", "TERMINAL_ID_RISK_1DAY_WINDOW",
        "TERMINAL_ID_NB_TX_7DAY_WINDOW", "TERMINAL_ID_RISK_7DAY_WINDOW",
        "TERMINAL_ID_NB_TX_30DAY_WINDOW", "TERMINAL_ID_RISK_30DAY_WINDOW",
    ]
    assert hb.label_delay_s == 7 * DAY
    assert all(g.width_s == 1 for g in Plan.of(hb).groups)
    default = load_feature_set("default").feature_names()
    for name in ("card_tx_count_1h", "card_tx_count_24h", "card_amount_sum_1h",
                 "card_amount_sum_24h", "card_seconds_since_prev", "card_km_from_prev",
                 "card_kmh_from_prev", "card_new_terminal_30d", "card_new_country_30d",
                 "hour_sin", "hour_cos", "terminal_risk_7d", "card_terminal_tx_count_30d"):
        assert name in default
    assert load_feature_set("default").feature_names() == default  # stable order
    with pytest.raises(ConfigError, match="known: default, handbook"):
        load_feature_set("nope")


def frame(rows: list[tuple[Any, ...]], **extra: list[Any]) -> pd.DataFrame:
    """(id, seconds after T0, card, terminal, amount, is_fraud) rows as a canonical frame."""
    df = pd.DataFrame(rows, columns=["transaction_id", "s", "card_id", "terminal_id", "amount",
                                     "is_fraud"])
    df["timestamp"] = [T0 + timedelta(seconds=float(s)) for s in df.pop("s")]
    df["transaction_id"] = df["transaction_id"].astype(str)
    for k, v in extra.items():
        df[k] = v
    return df


def test_handbook_card_window_is_t_minus_n_exclusive_to_t_inclusive() -> None:
    df = frame([(1, 0, "a", "x", 10.0, 0), (2, DAY, "a", "x", 20.0, 0),
                (3, DAY + 1, "a", "x", 40.0, 0)])
    out = compute_features(df, load_feature_set("handbook"))
    assert out["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].tolist() == [1, 1, 2]  # t - 1 d is out
    assert out["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"].tolist() == [10.0, 20.0, 30.0]
    assert out["CUSTOMER_ID_NB_TX_7DAY_WINDOW"].tolist() == [1, 2, 3]
    assert out["TX_DURING_WEEKEND"].tolist() == [0, 0, 0]
    assert out["TX_DURING_NIGHT"].tolist() == [0, 0, 0]


def test_handbook_terminal_window_is_delayed_and_sees_labels_released_at_t() -> None:
    d = 7 * DAY
    df = frame([(1, 0, "a", "T", 10.0, 1), (2, 10, "b", "T", 10.0, 0),
                (3, d, "c", "T", 10.0, 0),          # sees tx 1 (exactly t - D), label at t
                (4, d + 10, "c", "T", 10.0, 0),     # sees 1 and 2
                (5, d + DAY, "c", "T", 10.0, 0),    # 1 d window (t-8d, t-7d]: 1 is out
                (6, d + DAY + 10, "c", "T", 10.0, 0)])  # (10 s, 1 d + 10 s]: tx 2 is out
    out = compute_features(df, load_feature_set("handbook"))
    assert out["TERMINAL_ID_NB_TX_1DAY_WINDOW"].tolist() == [0, 0, 1, 2, 1, 0]
    assert out["TERMINAL_ID_RISK_1DAY_WINDOW"].tolist() == [0, 0, 1.0, 0.5, 0.0, 0.0]
    assert out["TERMINAL_ID_NB_TX_7DAY_WINDOW"].tolist() == [0, 0, 1, 2, 2, 2]
    assert out["TERMINAL_ID_RISK_7DAY_WINDOW"].tolist() == [0, 0, 1.0, 0.5, 0.5, 0.5]
    # with labels reported one second later than the delay, tx 3 does not know label 1 yet
    late = compute_features(df, load_feature_set("handbook"), label_delay=d + 1)
    assert late["TERMINAL_ID_NB_TX_1DAY_WINDOW"][2] == 1  # the transaction count is not a label
    assert late["TERMINAL_ID_RISK_1DAY_WINDOW"][2] == 0.0  # empty -> 0, as the handbook


def test_ties_are_taken_in_transaction_id_order() -> None:
    df = frame([(12, 5, "a", "x", 1.0, 0), (3, 5, "a", "x", 2.0, 0), (100, 5, "a", "x", 4.0, 0)])
    out = compute_features(df, load_feature_set("handbook"))
    assert out["transaction_id"].tolist() == ["12", "3", "100"]  # the input's row order
    assert out["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].tolist() == [2, 1, 3]  # id 3 < 12 < 100
    assert out.index.tolist() == df.index.tolist()


def test_labels_frame_is_point_in_time() -> None:
    fs = FeatureSet("t", (Aggregate("n", "terminal", "count", window="2d", bucket="1d",
                                    delay="1d", source="is_fraud"),
                          Aggregate("risk", "terminal", "mean", window="2d", bucket="1d",
                                    delay="1d", source="is_fraud")))
    df = frame([(1, 0, "a", "T", 1.0, 0), (2, 2 * DAY, "b", "T", 1.0, 0),
                (3, 2 * DAY + 60, "b", "T", 1.0, 0), (4, 2 * DAY + 120, "b", "T", 1.0, 0)])
    when = T0 + timedelta(days=2, seconds=60)
    labels = pd.DataFrame({"transaction_id": ["1", "1", "2", "9"], "is_fraud": [1, 0, 1, 1],
                           "reported_at": [when, when + timedelta(seconds=1), T0, T0]})
    out = compute_features(df, fs, labels=labels)
    # tx 2 is before the label; tx 3 is at the label's time (label first); the second label of
    # tx 1 is ignored; tx 2's own label came before it (unknown), tx 9 does not exist
    assert out["n"].tolist() == [0, 0, 1, 1]
    assert out["risk"].isna().tolist() == [True, True, False, False]
    assert out["risk"][3] == 1.0


def test_coarse_buckets_and_derived_features() -> None:
    fs = FeatureSet("t", (
        Aggregate("n24", "card", "count", window="24h", bucket="1h"),
        Aggregate("mx", "card", "max", window="24h", bucket="1h", source="amount"),
        Aggregate("sd", "card", "std", window="24h", bucket="1h", source="amount"),
        Aggregate("terms", "card", "distinct", window="24h", bucket="1h", source="terminal_id"),
        FirstSeen("new_t", "terminal_id", window="24h", bucket="1h"),
        SincePrevious("since", horizon="1d"),
        AmountVsHistory("z", "zscore", window="24h", bucket="1h"),
    ))
    h = 3600
    df = frame([(1, 0, "a", "x", 10.0, 0), (2, 30, "a", "y", 30.0, 0),
                (3, 24 * h - 60, "a", "x", 20.0, 0),  # same bucket as T0 + 23 h
                (4, 24 * h + 60, "a", "x", 5.0, 0),   # bucket 24: buckets 1..24, tx 1, 2 out
                (5, 3 * DAY, "a", "x", 7.0, 0)])
    out = compute_features(df, fs)
    assert out["n24"].tolist() == [1, 2, 3, 2, 1]
    assert out["mx"].tolist() == [10.0, 30.0, 30.0, 20.0, 7.0]
    assert out["sd"][1] == 10.0 and out["sd"][0] == 0.0
    assert out["terms"].tolist() == [1, 2, 2, 1, 1]
    assert out["new_t"].tolist() == [1, 1, 0, 0, 1]
    assert np.isnan(out["since"][0]) and np.isnan(out["since"][4])  # none; beyond 1 d
    assert out["since"].tolist()[1:4] == [30.0, 24 * h - 90, 120.0]
    assert np.isnan(out["z"][0]) and out["z"][1] == pytest.approx(1.0)


def test_currency_and_bad_frames() -> None:
    fs = FeatureSet("t", (Aggregate("s", "card", "sum", window="1h", bucket="1m", source="amount"),))
    df = frame([(1, 0, "a", "x", 100.0, 0), (2, 1, "a", "x", 10.0, 0)], currency=["USD", "EUR"])
    out = compute_features(df, fs, currency_rates={"USD": 0.5})
    assert out["s"].tolist() == [50.0, 60.0]
    with pytest.raises(DataError, match="no exchange rate for USD"):
        compute_features(df, fs)
    with pytest.raises(DataError, match="needs an amount column"):
        compute_features(df.drop(columns=["amount", "currency"]), fs)
    with pytest.raises(DataError, match="card_id"):
        compute_features(df.drop(columns="card_id"), fs)
    with pytest.raises(DataError, match="duplicate transaction ids"):
        compute_features(pd.concat([df, df]), fs)
    unlabelled = compute_features(df.drop(columns="is_fraud"), load_feature_set("handbook"),
                                  currency_rates={"USD": 0.5})
    assert (unlabelled["TERMINAL_ID_RISK_1DAY_WINDOW"] == 0).all()  # no label known: empty
