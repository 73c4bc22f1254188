"""The replay plan: event-time order, labels at their delay, invalid rows, resume checks, pacing."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from features.columns import HANDBOOK, ColumnMapping, read_frame
from fraudstream.cli import main
from fraudstream.errors import ConfigError, DataError
from fraudstream.settings import Settings
from stream.publisher import Pacer
from stream.replay import (
    SIMULATOR,
    _fingerprint,
    _records,
    _resume_point,
    _save,
    load_plan,
    mapping_for,
    progress_path,
)
from stream.simulate import write_simulation
from stream.simulator import SimConfig
from stream.validation import parse_label, parse_transaction

MAPPING = ColumnMapping.from_options(time="when", label="fraud", id="tid", card="card",
                                     terminal="term", amount="amt")


def _csv(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "hist.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _events(plan, delay_s: float) -> list[tuple[str, dict]]:
    rows = np.arange(plan.n_transactions)
    txs, labels = _records(plan, rows, delay_s)
    out = []
    for ident in plan.order.tolist():
        out.append(("tx", txs[ident]) if ident >= 0 else ("label", labels[-ident - 1]))
    return out


def test_order_and_label_timing_on_a_small_file(tmp_path: Path) -> None:
    rows = [  # out of order in the file; ties on time; a label due exactly at a later transaction
        {"tid": 3, "when": "2024-01-01 00:02:00", "card": "a", "term": "t1", "amt": 5.0, "fraud": 0},
        {"tid": 1, "when": "2024-01-01 00:00:00", "card": "a", "term": "t1", "amt": 10.0, "fraud": 1},
        {"tid": 2, "when": "2024-01-01 00:00:00", "card": "b", "term": "t2", "amt": 20.0, "fraud": 0},
        {"tid": 4, "when": "2024-01-01 00:01:00", "card": "b", "term": "t2", "amt": 7.5, "fraud": 1},
    ]
    plan = load_plan(_csv(tmp_path, rows), MAPPING, label_delay_s=120.0)
    events = _events(plan, 120.0)
    got = [(kind, rec["transaction_id"]) for kind, rec in events]
    # tx 1, 2 at 00:00; tx 4 at 00:01; label of 1 and 2 due at 00:02 come before tx 3 at 00:02;
    # label of 4 at 00:03; label of 3 at 00:04
    assert got == [("tx", "1"), ("tx", "2"), ("tx", "4"), ("label", "1"), ("label", "2"),
                   ("tx", "3"), ("label", "4"), ("label", "3")]
    assert (np.diff(plan.times) >= 0).all()
    labels = {rec["transaction_id"]: rec for kind, rec in events if kind == "label"}
    assert labels["1"] == {"transaction_id": "1", "is_fraud": 1,
                           "reported_at": "2024-01-01T00:02:00.000Z", "source": "replay"}
    for kind, rec in events:
        parsed, reason = (parse_transaction if kind == "tx" else parse_label)(orjson.dumps(rec))
        assert reason is None, reason
    tx1 = next(rec for kind, rec in events if kind == "tx" and rec["transaction_id"] == "1")
    assert tx1 == {"transaction_id": "1", "timestamp": "2024-01-01T00:00:00.000Z", "card_id": "a",
                   "terminal_id": "t1", "amount": 10.0}


def test_the_order_is_the_offline_order_of_read_frame(tmp_path: Path) -> None:
    path = tmp_path / "sim.csv"
    write_simulation(SimConfig(cards=200, terminals=500, seed=3), path, days=2)
    plan = load_plan(path, SIMULATOR, label_delay_s=7 * 86400.0)
    offline = read_frame(path, SIMULATOR)
    assert plan.frame["transaction_id"].tolist() == offline["transaction_id"].tolist()
    events = _events(plan, 7 * 86400.0)
    txs = [rec for kind, rec in events if kind == "tx"]
    assert len(txs) == len(offline)
    assert all(rec["amount"] == a for rec, a in zip(txs, offline["amount"], strict=True))
    for rec in txs[:500]:
        assert parse_transaction(orjson.dumps(rec))[1] is None
    ecom = next(rec for rec in txs if rec.get("channel") == "ecom")
    assert "latitude" not in ecom and ecom["country"]  # missing values are left out
    assert plan.extras == []  # the scenario (truth) is not published


def test_handbook_sample_has_every_label_seven_days_later(fdh_path: Path) -> None:
    plan = load_plan(fdh_path, HANDBOOK, label_delay_s=7 * 86400.0, limit=3000)
    assert plan.n_transactions == 3000 and plan.total == 6000
    assert (np.diff(plan.times) >= 0).all()
    events = _events(plan, 7 * 86400.0)
    first_label = next(i for i, (kind, _) in enumerate(events) if kind == "label")
    assert first_label == 3000  # 3,000 transactions span less than a week


def test_invalid_rows_are_published_as_they_are_or_reported(tmp_path: Path) -> None:
    rows = [
        {"tid": 1, "when": "2024-01-01 00:00:00", "card": "a", "term": "t", "amt": "-5", "fraud": 0},
        {"tid": 2, "when": "not a time", "card": "a", "term": "t", "amt": "1", "fraud": 0},
        {"tid": 3, "when": "2024-01-01 00:00:02", "card": None, "term": "t", "amt": "2", "fraud": 1},
        {"tid": 4, "when": "2024-01-01 00:00:03", "card": "a", "term": "t", "amt": "12,50",
         "fraud": None},
        {"tid": 5, "when": "2024-01-01 00:00:04", "card": "a", "term": "t", "amt": "3", "fraud": "yes"},
        {"tid": 5, "when": "2024-01-01 00:00:05", "card": "a", "term": "t", "amt": "4", "fraud": 0},
    ]
    plan = load_plan(_csv(tmp_path, rows), MAPPING, label_delay_s=60.0)
    assert plan.invalid_time_rows == 1 and plan.invalid_examples == [3]  # line 3 of the file
    assert plan.unlabelled_rows == 1 and plan.duplicate_ids == 1
    events = _events(plan, 60.0)
    txs = {rec["transaction_id"] + rec["timestamp"]: rec for kind, rec in events if kind == "tx"}
    assert len(txs) == 5
    reasons = [parse_transaction(orjson.dumps(rec))[1] for rec in txs.values()]
    assert reasons[0] == "amount: must be >= 0 (got -5.0)"
    assert reasons[1].startswith("card_id:")
    assert reasons[2].startswith("amount:")  # "12,50" went out as it is
    assert reasons[3] is None and reasons[4] is None
    labels = [rec for kind, rec in events if kind == "label"]
    assert [rec["transaction_id"] for rec in labels] == ["1", "3", "5", "5"]
    assert parse_label(orjson.dumps(labels[2]))[1].startswith("is_fraud")  # "yes" goes as it is


def test_missing_columns_and_bad_options(tmp_path: Path) -> None:
    path = _csv(tmp_path, [{"tid": 1, "when": "2024-01-01", "card": "a", "amt": 1, "fraud": 0}])
    with pytest.raises(DataError, match="term"):
        load_plan(path, MAPPING, 60.0)
    with pytest.raises(DataError, match="card"):
        load_plan(path, ColumnMapping.from_options(time="when", amount="amt"), 60.0)
    with pytest.raises(ConfigError, match="label delay"):
        load_plan(path, MAPPING, 0.0)
    with pytest.raises(DataError, match="no such file"):
        load_plan(tmp_path / "nope.csv", MAPPING, 60.0)
    with pytest.raises(ConfigError, match="not both"):
        mapping_for("handbook", time="x")
    with pytest.raises(ConfigError, match="unknown preset"):
        mapping_for("nope")
    with pytest.raises(ConfigError, match="--time"):
        mapping_for(None, card="c")
    assert mapping_for("simulator") is SIMULATOR
    assert mapping_for(None, time="when", card="card").columns == {"timestamp": "when",
                                                                   "card_id": "card"}


def test_resume_refuses_other_options_or_a_changed_file(tmp_path: Path) -> None:
    path = _csv(tmp_path, [{"tid": 1, "when": "2024-01-01", "card": "a", "term": "t", "amt": 1,
                            "fraud": 0}])
    settings = Settings(_env_file=None, home=tmp_path / "home", topic_prefix="x-")
    file = progress_path(settings, path, "127.0.0.1:1")
    assert file != progress_path(Settings(_env_file=None, home=tmp_path / "home",
                                          topic_prefix="y-"), path, "127.0.0.1:1")
    fp = _fingerprint(path, MAPPING, 60.0, None, True)
    assert _resume_point(file, fp, restart=False) == (0, False)
    _save(file, {"fingerprint": fp, "published": 7})
    assert _resume_point(file, fp, restart=False) == (7, True)
    assert _resume_point(file, fp, restart=True) == (0, False)
    with pytest.raises(ConfigError, match="label_delay_s"):
        _resume_point(file, _fingerprint(path, MAPPING, 120.0, None, True), restart=False)
    path.write_text(path.read_text() + "2,2024-01-02,a,t,1,0\n")
    with pytest.raises(ConfigError, match="--restart"):
        _resume_point(file, _fingerprint(path, MAPPING, 60.0, None, True), restart=False)


class _FakeTime:
    """A clock and a stop event whose waits advance the clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0
        self.stop = False

    def clock(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return self.stop

    def wait(self, timeout: float) -> bool:
        self.now += timeout
        self.slept += timeout
        return self.stop


def test_pacer_by_rate_and_by_speed() -> None:
    fake = _FakeTime()
    pacer = Pacer(rate=100, stop_event=fake, clock=fake.clock)  # type: ignore[arg-type]
    for i in range(201):
        assert pacer.wait(float(i), is_transaction=True)
        assert pacer.wait(float(i), is_transaction=False)  # labels are not counted
    assert fake.slept == pytest.approx(2.0, abs=0.01)  # 200 intervals of 10 ms

    fake = _FakeTime()
    pacer = Pacer(speed=50, stop_event=fake, clock=fake.clock)  # type: ignore[arg-type]
    for t in (1000.0, 1000.0, 1100.0, 1500.0):
        assert pacer.wait(t, is_transaction=False)
    assert fake.slept == pytest.approx(10.0, abs=0.01)  # 500 event seconds at 50x
    fake.stop = True
    assert not pacer.wait(1600.0, is_transaction=True)

    flat = Pacer(rate=0, stop_event=threading.Event())
    assert flat.wait(0.0, True) and flat.due(5.0) is None
    with pytest.raises(ValueError):
        Pacer(rate=1, speed=1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "x.csv"], "--preset NAME or at least --time"),
        (["replay", "x.csv", "--preset", "nope"], "unknown preset"),
        (["replay", "x.csv", "--preset", "handbook", "--speed", "-1"], "--speed must be >= 0"),
        (["replay", "x.csv", "--preset", "handbook", "--label-delay", "soon"], "not a duration"),
        (["replay", "x.csv", "--preset", "handbook", "--limit", "0"], "--limit must be >= 1"),
        (["simulate", "--rate", "-3"], "--rate must be >= 0"),
        (["simulate", "--rate", "5", "--time-scale", "5m"], "not both"),
        (["simulate", "--out", "a.csv", "--clock", "sim"], "does not apply to --out"),
        (["simulate", "--labels-out", "b.csv"], "--labels-out needs --out"),
        (["simulate", "--cards", "many"], "not an integer"),
    ],
)
def test_bad_options_give_one_line_and_a_non_zero_exit(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
