"""EDA: exact numbers on small frames, real files and plausible figures on the handbook sample."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.columns import HANDBOOK, ColumnMapping
from features.eda import explore, explore_frame, summarize
from features.plotting import PNG_SIGNATURE, check_plotting
from fraudstream.errors import Cancelled


def small_frame() -> pd.DataFrame:
    ts = pd.to_datetime(["2024-01-01 01:00", "2024-01-01 01:30", "2024-01-01 13:00",
                         "2024-01-02 02:00", "2024-01-02 13:00", "2024-01-02 23:00"], utc=True)
    a = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 600.0])
    return pd.DataFrame({
        "transaction_id": [str(i) for i in range(6)], "timestamp": ts,
        "card_id": ["c1", "c1", "c2", "c2", "c3", "c3"], "amount": a,
        "is_fraud": [0, 0, 0, 1, 0, 1], "twice": 2 * a + 1, "noise": [3.0, 1, 4, 1, 5, 9],
    })


def test_summary_numbers_are_exact() -> None:
    s = summarize(small_frame())
    assert s["class_balance"] == {"n": 6, "n_fraud": 2, "n_genuine": 4, "fraud_rate": 2 / 6,
                                  "genuine_per_fraud": 2.0, "imbalanced": False}
    assert [(d["date"], d["n"], d["n_fraud"]) for d in s["fraud_rate_daily"]] == [
        ("2024-01-01", 3, 0), ("2024-01-02", 3, 2)]
    by_hour = {r["hour"]: r for r in s["by_hour"]}
    assert (by_hour[1]["n"], by_hour[1]["mean_amount"]) == (2, 15.0)
    assert (by_hour[13]["n"], by_hour[13]["n_fraud"], by_hour[13]["mean_amount"]) == (2, 0, 40.0)
    assert by_hour[23]["mean_amount_fraud"] == 600.0 and by_hour[5]["n"] == 0
    pairs = {(p["a"], p["b"]): p["r"] for p in s["correlation"]["flagged_pairs"]}
    assert pairs[("amount", "twice")] == pytest.approx(1.0)
    assert ("amount", "noise") not in pairs and all(abs(r) > 0.9 for r in pairs.values())
    assert s["stats"]["amount"]["median"] == 35.0 and s["stats"]["amount"]["max"] == 600.0
    assert s["stats_by_class"]["amount"]["fraud"]["mean"] == 320.0
    assert s["cards"]["n"] == 3 and s["cards"]["with_fraud"] == 2
    assert s["terminals"] is None
    assert any("no terminal_id column" in n for n in s["notes"])
    assert any("amount and twice are highly correlated" in n for n in s["notes"])
    json.dumps(s)  # JSON-ready: no NaN objects, no numpy types


def test_report_files_and_page(tmp_path: Path) -> None:
    result = explore_frame(small_frame(), tmp_path / "eda", source="small.csv")
    names = {p.name for p in (tmp_path / "eda").iterdir()}
    assert {"index.html", "summary.json", "class_balance.png", "amount_by_class.png",
            "features_by_class.png", "correlation.png", "fraud_rate_daily.png",
            "by_hour.png"} == names
    for png in result.plots.values():
        assert png.read_bytes().startswith(PNG_SIGNATURE) and png.stat().st_size > 5000
    page = result.html.read_text()
    assert set(re.findall(r"<img src='([^']+)'", page)) == {p.name for p in result.plots.values()}
    assert "Class balance" in page and "amount</td><td>twice" in page
    assert json.loads(result.json.read_text())["class_balance"]["n_fraud"] == 2


def test_no_card_terminal_amount_or_label(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "transaction_id": [str(i) for i in range(n)],
        "timestamp": pd.Timestamp("2024-03-01", tz="UTC")
        + pd.to_timedelta(np.sort(rng.integers(0, 5 * 86400, n)), unit="s"),
        "x": rng.normal(size=n), "is_fraud": (rng.uniform(size=n) < 0.2).astype(int)})
    result = explore_frame(frame, tmp_path / "a")
    assert "amount_by_class" not in result.plots and "features_by_class" in result.plots
    notes = " | ".join(result.summary["notes"])
    assert "no amount column" in notes and "card precision@k" in notes
    unlabelled = explore_frame(frame.drop(columns="is_fraud"), tmp_path / "b")
    assert unlabelled.summary["class_balance"] is None
    assert "class_balance" not in unlabelled.plots and "by_hour" in unlabelled.plots
    assert unlabelled.summary["correlation"]["with_label"] is None


def test_handbook_sample(fdh_path: Path, tmp_path: Path) -> None:
    result = explore(fdh_path, HANDBOOK, tmp_path / "hb", nrows=200_000)
    raw = pd.read_csv(fdh_path, nrows=200_000)
    cb = result.summary["class_balance"]
    assert cb["n"] == 200_000 and cb["n_fraud"] == int(raw["TX_FRAUD"].sum())
    assert 0.002 < cb["fraud_rate"] < 0.015  # the file's rate is 0.84 %; it ramps up early on
    assert result.summary["cards"]["n"] == raw["CUSTOMER_ID"].nunique()
    daily = result.summary["fraud_rate_daily"]
    assert sum(d["n"] for d in daily) == 200_000 and daily[0]["date"] == "2018-04-01"
    fraud = result.summary["stats_by_class"]["amount"]["fraud"]["mean"]
    genuine = result.summary["stats_by_class"]["amount"]["genuine"]["mean"]
    assert fraud > 1.5 * genuine  # scenario 1 (> 220) and 3 (x5) make frauds larger
    assert result.summary["correlation"]["with_label"]["amount"] > 0.1
    assert set(result.summary["timings_s"]) == {"read", "numbers", "plots"}
    assert set(result.plots) == {"class_balance", "amount_by_class", "correlation",
                                 "fraud_rate_daily", "by_hour"}  # no extra numeric columns


def test_cancel_and_progress(tmp_path: Path) -> None:
    seen: list[float] = []
    explore_frame(small_frame(), tmp_path / "p", progress=lambda f, m: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0
    with pytest.raises(Cancelled, match="EDA cancelled"):
        explore_frame(small_frame(), tmp_path / "c", cancel=lambda: True)


def test_plotting_check() -> None:
    assert check_plotting().startswith("matplotlib 3.")


def test_explore_reads_files(tmp_path: Path) -> None:
    src = tmp_path / "f.csv"
    small_frame().rename(columns={"timestamp": "when"}).drop(columns="transaction_id").to_csv(
        src, index=False)
    mapping = ColumnMapping.from_options(time="when", label="is_fraud", card="card_id",
                                         amount="amount")
    result = explore(src, mapping, tmp_path / "out")
    assert result.summary["dataset"]["rows"] == 6
    assert result.summary["source"] == str(src)
