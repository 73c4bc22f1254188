"""The CLI of criteria, datasets, clean and eda: real runs and every error path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudstream.cli import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working folder and fraudstream home, with no .env or FRAUDSTREAM_ leaking in."""
    import os

    for key in list(os.environ):
        if key.startswith("FRAUDSTREAM_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRAUDSTREAM_HOME", str(tmp_path / "home"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def plain_file(path: Path, n: int = 200) -> Path:
    rng = np.random.default_rng(5)
    pd.DataFrame({
        "ts": 1_700_000_000 + np.arange(n) * 600,
        "v1": rng.normal(size=n), "v2": rng.normal(size=n),
        "fraud": (rng.uniform(size=n) < 0.1).astype(int),
    }).to_csv(path, index=False)
    return path


def test_criteria_text_json_and_check(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "criteria")
    assert code == 0 and "FRAUDSTREAM_MAX_FPR" in out and "<= 0.1 %" in out
    code, out, _ = run(capsys, "criteria", "--json")
    assert code == 0 and [c["name"] for c in json.loads(out)["criteria"]] == [
        "fpr", "p99_latency_ms", "recall", "average_precision"]
    good = home / "good.json"
    good.write_text(json.dumps({"fpr": 0.0005, "p99_latency_ms": 40, "recall": 0.5,
                                "average_precision": 0.6}))
    code, out, _ = run(capsys, "criteria", "--check", str(good), "--json")
    assert code == 0 and json.loads(out)["status"] == "pass"
    bad = home / "bad.json"
    bad.write_text(json.dumps({"fpr": 0.01}))
    code, out, _ = run(capsys, "criteria", "--check", str(bad))
    assert code == 1 and "FAIL" in out
    code, _, err = run(capsys, "criteria", "--check", str(home / "none.json"))
    assert code == 4 and err.strip() == f"fraudstream criteria: no such metrics file: {home}/none.json"


def test_datasets_add_list_show(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = plain_file(home / "plain.csv")
    code, out, err = run(capsys, "datasets", "add", str(src), "--time", "ts", "--label", "fraud")
    assert code == 0, err
    assert out.startswith("registered plain: 200 rows")
    assert "note: no card column" in out
    code, out, _ = run(capsys, "datasets", "list")
    assert code == 0 and out.splitlines()[1].startswith("plain ")
    code, out, _ = run(capsys, "datasets", "show", "plain", "--json")
    record = json.loads(out)
    assert record["rows"] == 200 and record["has_card"] is False
    assert (home / "home" / "datasets" / "plain.json").exists()
    code, out, _ = run(capsys, "datasets", "show", "plain")
    assert code == 0 and "feature_columns v1, v2" in out


def test_clean_and_eda_run(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = home / "messy.csv"
    src.write_text("id,when,amount,label\n1,20/04/2026,\"1,5\",yes\n2,2026-04-20,3,no\n"
                   "2,2026-04-20,3,no\n3,never,4,0\n")
    code, out, err = run(capsys, "clean", str(src), "--time", "when", "--id", "id", "--amount",
                         "amount", "--label", "label", "--out", "clean.parquet", "--rejects",
                         "rejects.csv", "--report", "report.json")
    assert code == 0, err
    assert "4 rows in, 2 out, 2 rejected" in out
    assert json.loads((home / "report.json").read_text())["rejected_by_reason"] == {
        "bad date": 1, "exact duplicate": 1}
    assert len(pd.read_csv(home / "rejects.csv")) == 2
    code, out, err = run(capsys, "eda", "clean.parquet", "--time", "when", "--id", "id",
                         "--amount", "amount", "--label", "label", "--out", "eda")
    assert code == 0, err
    assert "2 rows" in out and (home / "eda" / "index.html").exists()
    plain = plain_file(home / "plain.csv")
    run(capsys, "datasets", "add", str(plain), "--time", "ts", "--label", "fraud")
    code, out, err = run(capsys, "eda", "--dataset", "plain", "--out", "eda2", "--json")
    assert code == 0, err
    assert json.loads(out)["summary"]["class_balance"]["n"] == 200


@pytest.mark.parametrize(("argv", "exit_code", "message"), [
    (["datasets", "add", "missing.csv", "--preset", "handbook"], 4, "no such file: missing.csv"),
    (["datasets", "add", "plain.csv", "--preset", "bogus"], 2,
     "unknown preset 'bogus'; known: handbook, simulator"),
    (["datasets", "add", "plain.csv", "--time", "ts", "--label", "nope"], 4,
     "column(s) ['nope'] not found"),
    (["datasets", "add", "plain.csv"], 2, "say how to read the file"),
    (["datasets", "add", "plain.csv", "--preset", "handbook", "--time", "ts"], 2,
     "--preset handbook and --time do not mix"),
    (["datasets", "add", "plain.csv", "--time", "ts", "--map", "currency"], 2,
     "write CANONICAL=COLUMN"),
    (["datasets", "add", "plain.csv", "--time", "ts", "--map", "colour=v1"], 4,
     "unknown canonical column(s) ['colour']"),
    (["datasets", "show", "nope"], 5, "dataset 'nope' not found"),
    (["datasets", "show"], 2, "needs an ID"),
    (["clean", "plain.csv", "--time", "ts", "--out", "o.csv", "--config", "none.json"], 2,
     "no such cleaning config"),
    (["clean", "missing.csv", "--preset", "handbook", "--out", "o.csv"], 4, "no such file"),
    (["clean", "plain.csv", "--time", "ts", "--out", "o.xlsx"], 4, "write .csv, .csv.gz or"),
    (["eda", "plain.csv", "--time", "nope", "--out", "e"], 4, "column(s) ['nope'] not found"),
    (["eda", "--out", "e"], 2, "give a PATH (CSV or Parquet) or --dataset ID"),
    (["eda", "--dataset", "nope", "--out", "e"], 5, "dataset 'nope' not found"),
    (["eda", "plain.csv", "--dataset", "x", "--out", "e"], 2, "not both"),
])
def test_errors_are_one_line_and_non_zero(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], exit_code: int, message: str
) -> None:
    plain_file(home / "plain.csv")
    code, out, err = run(capsys, *argv)
    assert code == exit_code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"fraudstream {argv[0]}: ") and message in lines[0], lines[0]
