"""The data set registry: register, profile, list, show, remove; files without cards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.columns import HANDBOOK, ColumnMapping, read_frame
from features.datasets import (
    get_dataset,
    list_datasets,
    register_dataset,
    remove_dataset,
)
from fraudstream.errors import Cancelled, DataError, NotFoundError


def numeric_file(path: Path, n: int = 400, seed: int = 3) -> pd.DataFrame:
    """A file with only a time column (epoch seconds), numeric columns and a label."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "ts": 1_700_000_000 + np.sort(rng.integers(0, 10 * 86400, n)),
        "x1": rng.normal(size=n),
        "x2": rng.exponential(size=n),
        "y": (rng.uniform(size=n) < 0.1).astype(int),
    })
    if path.name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return df


def test_time_numeric_label_only_file(tmp_path: Path) -> None:
    src = tmp_path / "plain.csv.gz"
    df = numeric_file(src)
    mapping = ColumnMapping.from_options(time="ts", label="y")
    rec = register_dataset(src, mapping, tmp_path / "reg", name="Plain numbers")
    assert rec.id == "plain-numbers" and rec.name == "Plain numbers"
    assert (rec.rows, rec.n_fraud) == (400, int(df["y"].sum()))
    assert rec.label_rate == pytest.approx(df["y"].mean())
    assert (rec.has_card, rec.has_terminal, rec.has_amount) == (False, False, False)
    assert rec.n_cards is None and rec.feature_columns == ["x1", "x2"]
    assert rec.schema_ == {"ts": "int64", "x1": "float64", "x2": "float64", "y": "int64"}
    assert rec.time_min == pd.Timestamp(df["ts"].min(), unit="s", tz="UTC").isoformat()
    assert rec.format == "csv.gz" and rec.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    notes = " | ".join(rec.notes)
    assert "no card column: card-window features and card-based metrics" in notes
    assert "no terminal column" in notes and "no amount column" in notes
    assert "2 extra numeric column(s) become features: x1, x2" in notes
    stored = json.loads((tmp_path / "reg" / "plain-numbers.json").read_text())
    assert stored["schema"]["x1"] == "float64" and stored["mapping"]["columns"] == {
        "timestamp": "ts", "is_fraud": "y"}
    again = get_dataset(tmp_path / "reg", "plain-numbers")
    assert again == rec
    frame = read_frame(again.path, again.column_mapping())
    assert len(frame) == 400 and {"x1", "x2"} <= set(frame.columns)


def test_handbook_slice_profile(fdh_path: Path, tmp_path: Path) -> None:
    raw = pd.read_csv(fdh_path, nrows=5000)
    src = tmp_path / "hb-slice.parquet"
    raw.to_parquet(src, index=False)  # a temporary slice, never in the repo
    rec = register_dataset(src, HANDBOOK, tmp_path / "reg")
    assert rec.id == "hb-slice" and rec.format == "parquet"
    assert rec.rows == 5000 and rec.n_fraud == int(raw["TX_FRAUD"].sum())
    assert rec.n_cards == raw["CUSTOMER_ID"].nunique()
    assert rec.n_terminals == raw["TERMINAL_ID"].nunique()
    assert rec.time_min == "2018-04-01T00:00:31+00:00"
    assert rec.mapping["name"] == "handbook" and rec.mapping["label_delay"] == "7d"
    assert rec.feature_columns == [] and rec.has_card and rec.has_terminal
    assert rec.column_mapping() == HANDBOOK


def test_list_show_replace_remove(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    assert list_datasets(reg) == []
    a, b = tmp_path / "a.csv", tmp_path / "b.parquet"
    numeric_file(a, 50)
    numeric_file(b, 60)
    mapping = ColumnMapping.from_options(time="ts", label="y")
    register_dataset(a, mapping, reg)
    register_dataset(b, mapping, reg)
    assert [r.id for r in list_datasets(reg)] == ["a", "b"]
    with pytest.raises(DataError, match="already registered"):
        register_dataset(b, mapping, reg)
    assert register_dataset(a, mapping, reg, dataset_id="b", replace=True).rows == 50
    assert get_dataset(reg, "b").rows == 50
    remove_dataset(reg, "a")
    assert [r.id for r in list_datasets(reg)] == ["b"]
    assert a.exists()  # the file itself stays
    with pytest.raises(NotFoundError, match="dataset 'a' not found: known: b"):
        get_dataset(reg, "a")
    with pytest.raises(NotFoundError):
        get_dataset(reg, "../etc/passwd")
    with pytest.raises(DataError, match="bad dataset id"):
        register_dataset(a, mapping, reg, dataset_id="Bad Id!")


def test_bad_files_and_mappings(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    src = tmp_path / "plain.csv"
    numeric_file(src, 20)
    with pytest.raises(DataError, match="no such file"):
        register_dataset(tmp_path / "none.csv", HANDBOOK, reg)
    with pytest.raises(DataError, match=r"column\(s\) \['TRANSACTION_ID', 'TX_DATETIME'"):
        register_dataset(src, HANDBOOK, reg)
    with pytest.raises(DataError, match="label column 'x1' must be 0/1"):
        register_dataset(src, ColumnMapping.from_options(time="ts", label="x1"), reg)
    other = tmp_path / "notes.xlsx"
    other.write_text("x")
    with pytest.raises(DataError, match="not CSV or Parquet"):
        register_dataset(other, ColumnMapping.from_options(time="ts"), reg)
    assert list_datasets(reg) == []
    (reg / "broken.json").parent.mkdir(parents=True, exist_ok=True)
    (reg / "broken.json").write_text("{}")
    with pytest.raises(DataError, match="unreadable dataset record"):
        get_dataset(reg, "broken")


def test_progress_and_cancel(tmp_path: Path) -> None:
    src = tmp_path / "p.csv"
    numeric_file(src, 30)
    mapping = ColumnMapping.from_options(time="ts", label="y")
    seen: list[tuple[float, str]] = []
    register_dataset(src, mapping, tmp_path / "reg", progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) >= 5
    calls = iter([False, False, True])
    with pytest.raises(Cancelled):
        register_dataset(src, mapping, tmp_path / "reg2", cancel=lambda: next(calls, True))
    assert list_datasets(tmp_path / "reg2") == []


def test_unlabelled_file_is_noted(tmp_path: Path) -> None:
    src = tmp_path / "u.csv"
    numeric_file(src, 10)
    rec = register_dataset(src, ColumnMapping.from_options(time="ts"), tmp_path / "reg")
    assert rec.labelled is False and rec.label_rate is None
    assert any("no label column" in n for n in rec.notes)
    assert rec.feature_columns == ["x1", "x2", "y"]
