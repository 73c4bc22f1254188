"""``fraudstream features`` and ``fraudstream select``, and the selection function (no services)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.definitions import load_feature_set
from features.selection import format_table, select_features
from fraudstream.cli import main
from fraudstream.errors import DataError


def handbook_like(path: Path, n: int = 3000, seed: int = 0) -> Path:
    """A made-up file in the handbook's format (frauds: big amounts and two bad terminals)."""
    rng = np.random.default_rng(seed)
    secs = np.sort(rng.integers(0, 40 * 86400, n))
    terminal = rng.integers(0, 80, n)
    amount = np.round(rng.lognormal(3.8, 0.7, n), 2)
    fraud = ((amount > 220) | (np.isin(terminal, [3, 4]) & (rng.random(n) < 0.5))).astype(int)
    pd.DataFrame({
        "TRANSACTION_ID": np.arange(n),
        "TX_DATETIME": (pd.Timestamp("2018-04-01") + pd.to_timedelta(secs, unit="s")).strftime(
            "%Y-%m-%d %H:%M:%S"),
        "CUSTOMER_ID": rng.integers(0, 100, n), "TERMINAL_ID": terminal, "TX_AMOUNT": amount,
        "TX_TIME_SECONDS": secs, "TX_TIME_DAYS": secs // 86400, "TX_FRAUD": fraud,
        "TX_FRAUD_SCENARIO": fraud,
    }).to_csv(path, index=False)
    return path


def test_features_command_writes_one_row_per_transaction(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    src = handbook_like(tmp_path / "tx.csv")
    out = tmp_path / "f.csv"
    assert main(["features", str(src), "--preset", "handbook", "--out", str(out)]) == 0
    assert "wrote 3000 rows x 15 features" in capsys.readouterr().out
    got = pd.read_csv(out)
    assert list(got.columns) == ["transaction_id", "timestamp", "card_id", "is_fraud",
                                 *load_feature_set("handbook").feature_names()]
    assert got["transaction_id"].is_unique and len(got) == 3000
    assert (got["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] >= 1).all()
    pq = tmp_path / "f.parquet"
    assert main(["features", str(src), "--preset", "handbook", "--feature-set", "default",
                 "--out", str(pq), "--nrows", "500"]) == 0
    assert pd.read_parquet(pq).shape == (500, 4 + len(load_feature_set("default").feature_names()))


def test_features_command_without_preset_reads_canonical_columns(tmp_path: Path) -> None:
    src = tmp_path / "canon.csv"
    pd.DataFrame({"transaction_id": ["a", "b"], "timestamp": ["2024-01-01T10:00:00Z"] * 2,
                  "card_id": ["c", "c"], "amount": [1.0, 2.0]}).to_csv(src, index=False)
    out = tmp_path / "o.csv"
    code = main(["features", str(src), "--feature-set", "default", "--out", str(out)])
    assert code == 0
    got = pd.read_csv(out)
    assert got["card_tx_count_10m"].tolist() == [1, 2]  # same second: a before b
    assert got["terminal_tx_count_24h"].isna().all()  # no terminal column: missing


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["features", "/no/such.csv", "--preset", "handbook", "--out", "{tmp}/x.csv"], 4,
         "no such file: /no/such.csv"),
        (["features", "{src}", "--preset", "handbook", "--out", "{tmp}/x.json"], 2,
         "--out must end in .csv or .parquet"),
        (["features", "{src}", "--preset", "handbook", "--out", "/no/dir/x.csv"], 4,
         "the folder of --out does not exist"),
        (["features", "{src}", "--feature-set", "zzz", "--preset", "handbook", "--out",
          "{tmp}/x.csv"], 2, "unknown feature set 'zzz'"),
        (["features", "{src}", "--out", "{tmp}/x.csv"], 2, "no timestamp column"),
        (["select", "{src}", "--preset", "handbook", "--corr", "1.5"], 4, "correlation threshold"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            argv: list[str], code: int, message: str) -> None:
    src = handbook_like(tmp_path / "tx.csv", n=300)
    args = [a.format(tmp=tmp_path, src=src) for a in argv]
    assert main(args) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_select_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = handbook_like(tmp_path / "tx.csv")
    feats = tmp_path / "f.parquet"
    assert main(["features", str(src), "--preset", "handbook", "--out", str(feats)]) == 0
    capsys.readouterr()
    report = tmp_path / "sel.json"
    assert main(["select", str(feats), "--from-features", "--json", str(report)]) == 0
    table = capsys.readouterr().out
    assert "TX_AMOUNT" in table and "selected" in table and "pairs with |r| > 0.9" in table
    result = json.loads(report.read_text())
    assert result["features"][0]["feature"] == "TX_AMOUNT"  # the amount decides most frauds
    assert "TX_AMOUNT" in result["selected"]
    assert main(["select", str(src), "--preset", "handbook", "--method", "l1",
                 "--max-rows", "2000"]) == 0


def test_select_features_flags_correlation_constant_and_importance() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    signal = rng.normal(size=n)
    X = pd.DataFrame({"signal": signal, "echo": 2 * signal + rng.normal(0, 0.05, n),
                      "noise": rng.normal(size=n), "flat": 1.0,
                      "holes": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n))})
    y = (signal + rng.normal(0, 0.5, n) > 1.5).astype(int)
    res = select_features(X, y, max_rows=0, n_repeats=2)
    assert [(p["a"], p["b"]) for p in res["correlated_pairs"]] == [("signal", "echo")]
    assert res["dropped_constant"] == ["flat"]
    assert set(res["dropped_for_correlation"]) & {"signal", "echo"}
    assert res["features"][0]["feature"] in ("signal", "echo")
    rows = {r["feature"]: r for r in res["features"]}
    assert rows["noise"]["rfe_rank"] > 1 and abs(rows["noise"]["l1_coef"]) < 0.05
    assert len(res["selected"]) <= 3 and "noise" in format_table(res)
    with pytest.raises(DataError, match="both classes"):
        select_features(X, np.zeros(n))
