"""``fraudstream models list|show|history|promote|rollback`` against a real registry folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudstream.cli import main
from models.registry import ModelRegistry
from models.zoo import build_model


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("FRAUDSTREAM_REGISTRY_DIR", str(tmp_path / "reg"))
    monkeypatch.setenv("FRAUDSTREAM_HMAC_KEY", "cli-key")
    reg = ModelRegistry(tmp_path / "reg", "cli-key")
    for i in range(3):
        m = build_model("logreg" if i < 2 else "hat")
        m.learn_one({"amount": 10.0 * i}, i == 1)
        reg.save(m, name=m.name, params=m.params, labels_learned=1,
                 metrics={"average_precision": 0.25 * (i + 1)}, note=f"n{i}")
    reg.promote("v1", "first")
    reg.promote("v2", "second")
    return reg


def test_list_marks_the_champion(registry: ModelRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["version", "model", "kind"]
    rows = {line[2:].split()[0]: line for line in out[1:4]}
    assert rows["v2"].startswith("* ") and rows["v1"].startswith("  ")
    assert "0.500" in rows["v2"] and "hat" in rows["v3"]
    assert main(["models", "list", "--json"]) == 0
    assert [m["version"] for m in json.loads(capsys.readouterr().out)] == ["v1", "v2", "v3"]


def test_promote_rollback_show_history(registry: ModelRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "promote", "v3", "--reason", "hat is better"]) == 0
    assert "champion is now v3 (hat)" in capsys.readouterr().out
    assert registry.champion_version() == "v3"
    assert main(["models", "rollback"]) == 0
    assert registry.champion_version() == "v2"
    assert main(["models", "rollback", "--to", "v1"]) == 0
    assert registry.champion_version() == "v1"
    capsys.readouterr()
    assert main(["models", "show", "v3"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "hat"
    assert main(["models", "history", "--last", "3"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["version"]) for e in events] == [
        ("promote", "v3"), ("rollback", "v2"), ("rollback", "v1")]
    assert events[0]["reason"] == "hat is better"


def test_bad_input_is_one_line_and_non_zero(registry: ModelRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "promote", "v9"]) == 5
    assert "model version 'v9' not found" in capsys.readouterr().err
    assert main(["models", "show", "latest"]) == 2
    assert "not a model version" in capsys.readouterr().err
    # a tampered artifact cannot be promoted
    art = registry.root / "versions" / "v3" / "model.pkl"
    art.write_bytes(art.read_bytes() + b"x")
    assert main(["models", "promote", "v3"]) == 6
    err = capsys.readouterr().err
    assert "signature does not match" in err and err.count("\n") == 1
    assert registry.champion_version() == "v2"
