"""The handbook preset against the handbook's own feature code, on part of the real data.

The two functions below are the Fraud Detection Handbook's baseline feature transformations
(Le Borgne et al., 2022, chapter 3.4, ``get_customer_spending_behaviour_features`` and
``get_count_risk_rolling_window``), transcribed with one change: their ``sort_values`` uses a
stable sort on data already ordered by (time, transaction id), because the handbook's default
quicksort orders transactions of one card at the same second arbitrarily, while the issue
defines ties in transaction id order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.columns import HANDBOOK, to_canonical
from features.definitions import load_feature_set
from features.offline import compute_features

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]  # the handbook's pandas style


def get_customer_spending_behaviour_features(customer_transactions, windows_size_in_days=(1, 7, 30)):  # type: ignore[no-untyped-def]
    customer_transactions = customer_transactions.sort_values("TX_DATETIME", kind="stable")
    customer_transactions.index = customer_transactions.TX_DATETIME
    for window_size in windows_size_in_days:
        SUM_AMOUNT_TX_WINDOW = customer_transactions["TX_AMOUNT"].rolling(str(window_size) + "d").sum()
        NB_TX_WINDOW = customer_transactions["TX_AMOUNT"].rolling(str(window_size) + "d").count()
        AVG_AMOUNT_TX_WINDOW = SUM_AMOUNT_TX_WINDOW / NB_TX_WINDOW
        customer_transactions["CUSTOMER_ID_NB_TX_" + str(window_size) + "DAY_WINDOW"] = list(NB_TX_WINDOW)
        customer_transactions["CUSTOMER_ID_AVG_AMOUNT_" + str(window_size) + "DAY_WINDOW"] = list(AVG_AMOUNT_TX_WINDOW)
    customer_transactions.index = customer_transactions.TRANSACTION_ID
    return customer_transactions


def get_count_risk_rolling_window(terminal_transactions, delay_period=7, windows_size_in_days=(1, 7, 30),  # type: ignore[no-untyped-def]
                                  feature="TERMINAL_ID"):
    terminal_transactions = terminal_transactions.sort_values("TX_DATETIME", kind="stable")
    terminal_transactions.index = terminal_transactions.TX_DATETIME
    NB_FRAUD_DELAY = terminal_transactions["TX_FRAUD"].rolling(str(delay_period) + "d").sum()
    NB_TX_DELAY = terminal_transactions["TX_FRAUD"].rolling(str(delay_period) + "d").count()
    for window_size in windows_size_in_days:
        NB_FRAUD_DELAY_WINDOW = terminal_transactions["TX_FRAUD"].rolling(str(delay_period + window_size) + "d").sum()
        NB_TX_DELAY_WINDOW = terminal_transactions["TX_FRAUD"].rolling(str(delay_period + window_size) + "d").count()
        NB_FRAUD_WINDOW = NB_FRAUD_DELAY_WINDOW - NB_FRAUD_DELAY
        NB_TX_WINDOW = NB_TX_DELAY_WINDOW - NB_TX_DELAY
        RISK_WINDOW = NB_FRAUD_WINDOW / NB_TX_WINDOW
        terminal_transactions[feature + "_NB_TX_" + str(window_size) + "DAY_WINDOW"] = list(NB_TX_WINDOW)
        terminal_transactions[feature + "_RISK_" + str(window_size) + "DAY_WINDOW"] = list(RISK_WINDOW)
    terminal_transactions.index = terminal_transactions.TRANSACTION_ID
    terminal_transactions.fillna(0, inplace=True)
    return terminal_transactions


def test_handbook_preset_reproduces_the_handbook_code(fdh_path: Path) -> None:
    raw = pd.read_csv(fdh_path, nrows=300_000)
    raw = raw.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(0)
    tied = raw.loc[raw.duplicated(["CUSTOMER_ID", "TX_DATETIME"], keep=False), "CUSTOMER_ID"].unique()
    frauds = np.sort(raw.loc[raw.TX_FRAUD == 1, "CUSTOMER_ID"].unique())
    cards = set(tied) | set(frauds[:20]) | set(rng.choice(np.sort(raw.CUSTOMER_ID.unique()), 20,
                                                        replace=False))
    sub = raw[raw.CUSTOMER_ID.isin(cards)].reset_index(drop=True)
    assert len(tied) >= 3 and sub.TX_FRAUD.sum() >= 50, (len(tied), sub.TX_FRAUD.sum())

    hb = sub.copy()
    hb["TX_DATETIME"] = pd.to_datetime(hb["TX_DATETIME"])
    hb["TX_DURING_WEEKEND"] = (hb.TX_DATETIME.dt.weekday >= 5).astype(int)
    hb["TX_DURING_NIGHT"] = (hb.TX_DATETIME.dt.hour <= 6).astype(int)
    hb = hb.groupby("CUSTOMER_ID", group_keys=False).apply(get_customer_spending_behaviour_features)
    hb = hb.sort_values("TX_DATETIME", kind="stable").reset_index(drop=True)
    hb = hb.groupby("TERMINAL_ID", group_keys=False).apply(get_count_risk_rolling_window)
    hb = hb.set_index(hb.TRANSACTION_ID.astype(str))

    ours = compute_features(to_canonical(sub, HANDBOOK), load_feature_set("handbook"))
    hb = hb.loc[ours["transaction_id"]]
    for name in load_feature_set("handbook").feature_names():
        a, b = ours[name].to_numpy(dtype=float), hb[name].to_numpy(dtype=float)
        assert not np.isnan(a).any(), name
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9, err_msg=name)
    assert (hb["TERMINAL_ID_RISK_30DAY_WINDOW"] > 0).sum() >= 10  # the risk is exercised
