"""Fixtures of the API tests (tests/integration/test_api_*.py): the app on a real Redis, data
files, a trained champion."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from fraudstream.settings import Settings

API_KEY = "test-api-key"
AUTH = {"X-API-Key": API_KEY}


@pytest.fixture
def api_settings(redis_service: dict[str, str], make_settings: Any) -> Settings:
    """Settings of one API test: its own home (jobs, datasets, registry) and Redis key prefix."""
    return make_settings(redis_service, api_key=API_KEY)  # type: ignore[no-any-return]


@pytest.fixture
def api(api_settings: Settings) -> Iterator[TestClient]:
    """The app, started (lifespan run), for ``api_settings``; without the ops monitor (status
    sampling, alerts, Kafka probing), which these tests do not exercise."""
    from api.main import create_app

    with TestClient(create_app(api_settings, monitor=False)) as client:
        yield client


def wait_job(client: TestClient, job_id: str, timeout: float = 60.0,
             until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Poll ``/jobs/{id}`` until it is finished (or ``until`` holds); the last record."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if (until or (lambda j: j["status"] in ("succeeded", "failed", "cancelled")))(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not get there in {timeout} s: {job}")
        time.sleep(0.05)


def write_transactions(path: Path, n: int, seed: int = 1, days: int = 30) -> Path:
    """A file in the handbook's layout: ``n`` transactions over ``days`` days, ~1 % fraud."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    secs = np.sort(rng.integers(0, days * 86400, n))
    amount = np.round(rng.gamma(2.0, 30.0, n), 2)
    fraud = (rng.random(n) < 0.01 + 0.05 * (amount > 150)).astype(int)
    frame = pd.DataFrame({
        "TRANSACTION_ID": np.arange(n),
        "TX_DATETIME": (t0 + pd.to_timedelta(secs, unit="s")).strftime("%Y-%m-%d %H:%M:%S"),
        "CUSTOMER_ID": rng.integers(0, max(2, n // 20), n),
        "TERMINAL_ID": rng.integers(0, max(2, n // 10), n),
        "TX_AMOUNT": amount,
        "TX_FRAUD": fraud,
    })
    if path.name.endswith((".parquet", ".pq")):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture
def tx_file(tmp_path: Path) -> Path:
    """2,000 handbook-layout transactions (CSV)."""
    return write_transactions(tmp_path / "tx.csv", 2000)


def train_champion(settings: Settings, name: str = "logreg", n: int = 400) -> str:
    """Save a model trained on two features (fraud when the amount is above 150) and promote
    it; its version. Features it never saw weigh nothing, so its score rises with the amount."""
    from models.registry import ModelRegistry
    from models.zoo import build_model

    rnd = random.Random(3)
    model = build_model(name)
    for _ in range(n):
        amount = rnd.uniform(1, 400)
        model.learn_one({"amount": amount, "card_tx_count_1h": float(rnd.randint(1, 5))},
                        amount > 150)
    reg = ModelRegistry(settings.registry_path, settings.hmac_key)
    meta = reg.save(model, name=model.name, params=model.params, kind="batch",
                    threshold=0.5, note="trained by the API tests")
    reg.promote(meta.version, reason="test champion")
    return meta.version
