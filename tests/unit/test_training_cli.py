"""The CLI of evaluate, leaderboard, train and tune: the contract keys, the registry, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudstream.cli import main
from fraudstream.settings import Settings
from models.data import labelled_from_frame
from models.registry import ModelRegistry
from models.training import ProtocolOptions
from models.tuning import tune_data
from stream.simulate import write_simulation
from stream.simulator import SimConfig

SIM_COLUMNS = ["--time", "timestamp", "--label", "is_fraud", "--id", "transaction_id",
               "--card", "card_id", "--terminal", "terminal_id", "--amount", "amount"]


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "sim.csv"
    write_simulation(SimConfig(cards=150, terminals=300, seed=11), path, days=16)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("FRAUDSTREAM_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRAUDSTREAM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FRAUDSTREAM_HMAC_KEY", "test-key")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def registry(home: Path) -> ModelRegistry:
    return ModelRegistry(home / "home" / "registry", "test-key")


@pytest.mark.parametrize("protocol", ["holdout", "prequential"])
def test_evaluate_contract_keys(home: Path, sim_file: Path, protocol: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "evaluate", "--data", str(sim_file), *SIM_COLUMNS,
                         "--model", "logreg", "--protocol", protocol, "--label-delay", "2d",
                         "--json", "out.json")
    assert code == 0, err
    d = json.loads((home / "out.json").read_text())
    for key in ("roc_auc", "average_precision", "n", "n_fraud", "card_precision_at_100"):
        assert key in d and d[key] is not None, key
    assert d["protocol"] == protocol and d["split"]["label_delay_s"] == 2 * 86400
    assert d["n"] == d["split"]["evaluated_rows"] and 0 < d["n_fraud"] < d["n"]
    assert d["criteria"]["status"] in ("pass", "fail", "incomplete")
    assert {c["criterion"] for c in d["criteria"]["criteria"]} >= {"fpr", "recall"}
    for png in d["plots"].values():
        assert Path(png).read_bytes().startswith(b"\x89PNG")
    assert "ROC AUC" in out and "wrote out.json" in out


def test_leaderboard_and_preset(home: Path, sim_file: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "leaderboard", str(sim_file), "--preset", "simulator",
                         "--model", "logreg,sk-logreg,sk-tree", "--label-delay", "2d",
                         "--exclude-known-compromised", "--json", "-")
    assert code == 0, err
    d = json.loads(out)  # --json -: only the JSON on stdout
    assert [r["model"] for r in d["leaderboard"]] and len(d["leaderboard"]) == 3
    assert d["model"] == d["leaderboard"][0]["model"]
    assert d["split"]["excluded_known_compromised"] >= 0


def test_evaluate_a_file_without_cards(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2)
    n = 3000
    v1 = rng.normal(size=n)
    pd.DataFrame({"ts": 1_700_000_000 + np.arange(n) * 600, "v1": v1, "v2": rng.normal(size=n),
                  "fraud": (rng.random(n) < 1 / (1 + np.exp(-(3 * v1 - 5)))).astype(int)}
                 ).to_csv(home / "plain.csv", index=False)
    code, out, err = run(capsys, "evaluate", "--data", "plain.csv", "--time", "ts", "--label",
                         "fraud", "--model", "sk-logreg", "--label-delay", "1d", "--json",
                         "p.json")
    assert code == 0, err
    d = json.loads((home / "p.json").read_text())
    assert d["roc_auc"] > 0.8 and d["n_fraud"] > 0
    assert d.get("card_precision_at_100") is None
    assert "no card column" in out


def test_train_registers_with_threshold_and_metrics(home: Path, sim_file: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "train", "--data", str(sim_file), "--preset", "simulator",
                         "--model", "sk-logreg", "--label-delay", "2d", "--promote",
                         "--max-fpr", "0.01", "--json", "t.json")
    assert code == 0, err
    d = json.loads((home / "t.json").read_text())
    reg = registry(home)
    assert reg.champion_version() == d["version"]
    model, meta = reg.load(d["version"])
    assert meta.threshold == d["threshold"] is not None and meta.kind == "offline"
    assert meta.metrics["average_precision"] == d["average_precision"]
    assert meta.metrics["calibration"]["fpr"] <= 0.01
    assert meta.time_range is not None
    x = {name: 1.0 for name in model.features}
    assert 0.0 <= model.predict_proba_one(x) <= 1.0
    assert f"registered {d['version']} (sk-logreg, champion" in out


def test_tune_register_adds_a_challenger(home: Path, sim_file: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "tune", str(sim_file), "--preset", "simulator", "--model",
                         "sk-tree", "--method", "grid", "--space", '{"max_depth": [1, 4]}',
                         "--label-delay", "2d", "--register", "--json", "tune.json")
    assert code == 0, err
    d = json.loads((home / "tune.json").read_text())
    assert len(d["trials"]) == 2 and d["registered"]["challenger"] is True
    reg = registry(home)
    version = d["registered"]["version"]
    assert reg.challenger_versions() == [version]
    model, meta = reg.load(version)
    assert meta.threshold is not None and meta.metrics["average_precision"] == d["best_value"]
    assert model.params["max_depth"] == d["best_params"]["max_depth"]
    assert "registered" in out and "as a challenger" in out


def test_tuning_finds_the_better_configuration() -> None:
    """An interaction (fraud = a AND b) a depth-1 tree cannot express and a depth-3 tree can."""
    rng = np.random.default_rng(0)
    n = 6000
    a, b = rng.random(n), rng.random(n)
    frame = pd.DataFrame({
        "transaction_id": [str(i) for i in range(n)],
        "timestamp": pd.Timestamp("2024-01-01", tz="UTC")
        + pd.to_timedelta(np.sort(rng.uniform(0, 30 * 86400, n)), "s"),
        "a": a, "b": b, "is_fraud": ((a > 0.8) & (b > 0.8)).astype(int)})
    data = labelled_from_frame(frame, label_delay="1d")
    settings = Settings(_env_file=None)
    for method in ("grid", "random", "bayes"):
        result = tune_data(data, "sk-tree", space={"max_depth": [1, 3]}, method=method,
                           trials=4, options=ProtocolOptions(), settings=settings, seed=1)
        assert result.best_params["max_depth"] == 3, method
        values = {t.params["max_depth"]: t.value for t in result.trials}
        assert values[3] > values[1]
    folded = tune_data(data, "sk-tree", space={"max_depth": [1, 3]}, method="grid",
                       settings=settings, folds=2)
    assert folded.best_params["max_depth"] == 3
    assert all(len(t.metrics["per_fold"]) == 2 for t in folded.trials)
    assert len(folded.split["folds"]) == 2
    ranged = tune_data(data, "sk-logreg", space={"C": {"low": 0.01, "high": 10.0, "log": True}},
                       method="random", trials=3, settings=settings)
    assert all(0.01 <= t.params["C"] <= 10.0 for t in ranged.trials)


@pytest.mark.parametrize(("argv", "exit_code", "message"), [
    (["evaluate", "--data", "missing.csv", "--preset", "simulator", "--model", "logreg"], 4,
     "no such file: missing.csv"),
    (["evaluate", "--data", "SIM", "--preset", "simulator", "--model", "forest"], 2,
     "unknown model 'forest'"),
    (["evaluate", "--data", "SIM", "--preset", "simulator"], 2, "name the model(s)"),
    (["evaluate", "--data", "SIM", "--preset", "simulator", "--model", "logreg", "--protocol",
      "kfold"], 2, "unknown protocol 'kfold'"),
    (["evaluate", "--data", "SIM", "--preset", "simulator", "--model", "logreg",
      "--label-delay", "soon"], 2, "--label-delay: not a duration"),
    (["evaluate", "--data", "SIM", "SIM", "--preset", "simulator", "--model", "logreg"], 2,
     "give the file once"),
    (["evaluate", "--data", "SIM", "--preset", "simulator", "--model", "sk-rf", "--params",
      '{"trees": 3}'], 2, "bad parameters: trees"),
    (["evaluate", "--data", "SIM", "--preset", "simulator", "--model", "logreg", "--test-start",
      "2030-01-01"], 2, "the test period is empty"),
    (["evaluate", "--data", "SIM", "--preset", "simulator", "--model", "logreg", "--json",
      "nowhere/x.json"], 2, "--json: no such folder: nowhere"),
    (["train", "--data", "SIM", "--preset", "simulator", "--model", "logreg,hat"], 2,
     "train takes one model"),
    (["tune", "--data", "SIM", "--preset", "simulator", "--model", "sk-tree", "--method",
      "anneal"], 2, "unknown search method 'anneal'"),
    (["tune", "--data", "SIM", "--preset", "simulator", "--model", "sk-tree", "--method", "grid",
      "--space", '{"C": {"low": 0.1, "high": 1}}'], 2, "grid search needs a list"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(
    home: Path, sim_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
    exit_code: int, message: str,
) -> None:
    argv = [str(sim_file) if a == "SIM" else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == exit_code
    assert len(err.strip().splitlines()) == 1 and message in err
