"""The registry: signed artifacts, champion pointer, promotion, rollback, pruning, concurrency."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from pathlib import Path

import pytest

from fraudstream.errors import ArtifactError, ConfigError, NotFoundError, RegistryConflictError
from models.registry import ModelRegistry
from models.zoo import build_model

KEY = "test-key"


def _model(seed: int = 0, n: int = 50):  # type: ignore[no-untyped-def]
    m = build_model("logreg")
    for i in range(n):
        m.learn_one({"amount": float((i * 7 + seed) % 50)}, (i + seed) % 5 == 0)
    return m


def _save(reg: ModelRegistry, m=None, **kw):  # type: ignore[no-untyped-def]
    m = m if m is not None else _model()
    return reg.save(m, name=m.name, params=m.params, labels_learned=m.labels_learned, **kw)


@pytest.fixture
def reg(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry", KEY, keep_online=3)


def test_save_and_load_round_trip(reg: ModelRegistry) -> None:
    m = _model()
    meta = _save(reg, m, metrics={"average_precision": 0.5}, time_range=(1.7e9, 1.7e9 + 60),
                 threshold=0.4, note="first", kind="batch")
    assert (meta.version, meta.number, meta.name, meta.kind, meta.parent) == ("v1", 1, "logreg", "batch", None)
    assert meta.labels_learned == 50 and meta.threshold == 0.4 and meta.metrics["average_precision"] == 0.5
    assert meta.time_range[1].timestamp() - meta.time_range[0].timestamp() == 60
    loaded, meta2 = reg.load("v1")
    assert meta2 == meta == reg.get("1")
    probe = [{"amount": float(a)} for a in range(0, 60, 7)]
    assert [loaded.predict_proba_one(x) for x in probe] == [m.predict_proba_one(x) for x in probe]
    child = _save(reg, parent="v1")
    assert (child.version, child.parent) == ("v2", "v1")
    assert [v.version for v in reg.list()] == ["v1", "v2"]


class _Exploit:
    """Unpickling this creates a file: proof that nothing was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


def test_tampered_artifact_is_refused_before_unpickling(reg: ModelRegistry, tmp_path: Path) -> None:
    _save(reg)
    art = reg.root / "versions" / "v1" / "model.pkl"
    marker = tmp_path / "pwned"
    art.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(ArtifactError, match="model v1: signature does not match the artifact"):
        reg.load("v1")
    assert not marker.exists()

    _save(reg)
    data = bytearray((reg.root / "versions" / "v2" / "model.pkl").read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    (reg.root / "versions" / "v2" / "model.pkl").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="tampered"):
        reg.load("v2")


def test_unsigned_or_foreign_artifact_is_refused(reg: ModelRegistry, tmp_path: Path) -> None:
    _save(reg)
    _save(reg)
    os.unlink(reg.root / "versions" / "v1" / "model.sig")
    with pytest.raises(ArtifactError, match="model v1 is unsigned"):
        reg.load("v1")
    (reg.root / "versions" / "v1" / "model.sig").write_text("")
    with pytest.raises(ArtifactError, match="signature does not match"):
        reg.load("v1")
    other = ModelRegistry(reg.root, "another-key")
    with pytest.raises(ArtifactError, match="signed with another key"):
        other.load("v2")
    with pytest.raises(ConfigError, match="HMAC key"):
        ModelRegistry(tmp_path / "x", "")


def test_unknown_versions(reg: ModelRegistry) -> None:
    with pytest.raises(NotFoundError, match="'v7' not found"):
        reg.load("v7")
    with pytest.raises(NotFoundError):
        reg.get("7")
    with pytest.raises(ConfigError, match="not a model version: 'latest'"):
        reg.get("latest")
    with pytest.raises(NotFoundError):
        reg.promote("v3")


def test_promote_and_rollback(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "registry", KEY, keep_online=10)
    for _ in range(4):
        _save(reg)
    assert reg.champion() is None and reg.champion_version() is None
    assert reg.promote("v1", "first").version == "v1"
    reg.promote("v2", "better")
    reg.promote("v3", "better still")
    assert reg.champion_version() == "v3"
    assert reg.previous_champions() == ["v1", "v2"]
    assert reg.rollback(reason="v3 misbehaves").version == "v2"
    assert reg.rollback().version == "v1"
    with pytest.raises(NotFoundError, match="nothing to roll back to"):
        reg.rollback()
    reg.promote("v4")
    assert reg.rollback(to="v3").version == "v3"  # any earlier version
    assert reg.champion().version == "v3"
    events = [(e["event"], e.get("version")) for e in reg.history() if e["event"] != "save"]
    assert events == [("promote", "v1"), ("promote", "v2"), ("promote", "v3"), ("rollback", "v2"),
                      ("rollback", "v1"), ("promote", "v4"), ("rollback", "v3")]
    assert reg.history()[-1]["previous"] == "v4"


def test_advance_is_refused_when_the_champion_changed(reg: ModelRegistry) -> None:
    _save(reg)
    reg.promote("v1")
    _save(reg, parent="v1")
    reg.advance("v2", expected="v1")
    assert reg.champion_version() == "v2" and reg.previous_champions() == []
    _save(reg, parent="v2")
    reg.rollback(to="v1")  # an operator, meanwhile
    with pytest.raises(RegistryConflictError, match="champion is v1, not v2"):
        reg.advance("v3", expected="v2")
    assert reg.champion_version() == "v1"


def test_champion_version_sees_another_process_change_it(reg: ModelRegistry) -> None:
    _save(reg)
    _save(reg)
    other = ModelRegistry(reg.root, KEY)
    other.promote("v1")
    assert reg.champion_version() == "v1"
    assert reg.champion_version() == "v1"  # cached: one stat
    other.promote("v2")
    assert reg.champion_version() == "v2"


def test_challengers(reg: ModelRegistry) -> None:
    for _ in range(3):
        _save(reg)
    reg.promote("v1")
    reg.set_challengers(["v2", "v3", "v1"])  # the champion is not its own challenger
    assert reg.challenger_versions() == ["v2", "v3"]
    assert [m.version for m in reg.challengers()] == ["v2", "v3"]
    reg.promote("v2")
    assert reg.challenger_versions() == ["v3"]
    reg.add_challenger("v1")
    assert reg.challenger_versions() == ["v3", "v1"]


def test_pruning_keeps_the_latest_online_and_every_promoted(reg: ModelRegistry) -> None:
    _save(reg, kind="batch")  # v1: never pruned
    _save(reg)  # v2
    reg.promote("v2")
    for _ in range(3):  # v3..v5
        _save(reg)
    reg.promote("v5")  # v2 stays as a rollback point
    for _ in range(3):  # v6..v8: v3 and v4 go
        _save(reg)
    assert [m.version for m in reg.list()] == ["v1", "v2", "v5", "v6", "v7", "v8"]
    reg.set_challengers(["v6"])
    _save(reg)  # v9
    _save(reg)  # v10: v7 goes, v6 is a challenger
    assert [m.version for m in reg.list()] == ["v1", "v2", "v5", "v6", "v8", "v9", "v10"]
    assert _save(reg).version == "v11"  # numbers keep growing
    assert reg.load("v2")[1].version == "v2"
    assert any(e["event"] == "prune" for e in reg.history())


def _save_many(root: str, n: int, queue) -> None:  # type: ignore[no-untyped-def]
    reg = ModelRegistry(root, KEY, keep_online=1000)
    out = []
    for i in range(n):
        m = _model(seed=i, n=5)
        out.append(reg.save(m, name=m.name, params=m.params, note=f"pid {os.getpid()}").version)
    queue.put(out)


def test_concurrent_saves_from_two_processes_get_distinct_versions(tmp_path: Path) -> None:
    root = str(tmp_path / "registry")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_save_many, args=(root, 15, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    queue.close()
    queue.join_thread()
    versions = results[0] + results[1]
    assert len(set(versions)) == 30
    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 31)]
    reg = ModelRegistry(root, KEY)
    assert [m.version for m in reg.list()] == [f"v{i}" for i in range(1, 31)]
    for v in versions:
        reg.load(v)  # every artifact whole and correctly signed
    assert not [p for p in (Path(root) / "versions").iterdir() if p.name.startswith(".")]
