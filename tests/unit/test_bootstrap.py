"""The first champion of `fraudstream run`: trained on simulated history, on the live clock."""

from __future__ import annotations

import time
from pathlib import Path

from fraudstream.settings import Settings
from models.registry import ModelRegistry
from stream.run import bootstrap_champion
from stream.simulate import simulation_config


def test_bootstrap_trains_on_history_put_on_the_demo_clock(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path)
    config = simulation_config(settings, cards=400, terminals=800)
    before = time.time()
    version = bootstrap_champion(settings, 4, say=lambda m: None, day_seconds=30.0, config=config)
    registry = ModelRegistry(settings.registry_path, settings.hmac_key)
    assert version is not None and registry.champion_version() == version
    meta = registry.get(version)
    assert meta.metrics["feature_set"] == settings.feature_set
    assert meta.threshold is not None  # chosen for the FPR target
    # 4 simulated days of 30 s each, ending now: the training part spans under 2 minutes of
    # wall-clock time (not 4 days), so its velocity windows are the live stream's
    assert meta.time_range is not None
    start, end = (t.timestamp() for t in meta.time_range)
    assert 0 < end - start < 120
    assert before - 130 < start and end <= time.time() + 1
    # an existing champion is kept
    assert bootstrap_champion(settings, 4, say=lambda m: None) is None
