"""/training, /evaluation and /tuning: real jobs on a generated file, the registry they write."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fraudstream.settings import Settings
from models.registry import ModelRegistry
from tests.integration.conftest import AUTH, wait_job, write_transactions

HANDBOOK = {"preset": "handbook"}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 transactions over 40 days (frauds mostly among large amounts)."""
    return write_transactions(tmp_path_factory.mktemp("train") / "tx.csv", 6000, seed=3, days=40)


def test_evaluation_job(api: TestClient, labelled: Path) -> None:
    body = {"path": str(labelled), "mapping": HANDBOOK, "models": ["logreg", "sk-logreg"],
            "protocol": {"protocol": "holdout", "label_delay": "3d"}}
    r = api.post("/evaluation", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    job = wait_job(api, r.json()["id"], timeout=300)
    assert job["status"] == "succeeded", job
    report = api.get(f"/evaluation/{job['id']}").json()
    assert report == job["result"]
    assert {row["model"] for row in report["leaderboard"]} == {"logreg", "sk-logreg"}
    assert 0.5 < report["roc_auc"] <= 1 and report["n"] > 0 and report["n_fraud"] > 0
    assert report["criteria"]["status"] in ("pass", "fail", "incomplete")
    assert report["plots"]
    for name in report["plots"].values():
        png = api.get(f"/evaluation/{job['id']}/{Path(name).name}")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert ModelRegistry(api.app.state.settings.registry_path, "change-me").list() == []


def test_training_job_registers_and_promotes(api: TestClient, api_settings: Settings,
                                             labelled: Path) -> None:
    api.post("/datasets?wait=60", json={"path": str(labelled), "mapping": HANDBOOK, "id": "tx"},
             headers=AUTH)
    body = {"dataset_id": "tx", "model": "logreg", "promote": True,
            "protocol": {"label_delay": "3d"}}
    r = api.post("/training?wait=120", json=body, headers=AUTH)
    job = r.json()
    assert job["status"] == "succeeded", job
    result = api.get(f"/training/{job['id']}").json()
    version = result["version"]
    assert result["promoted"] and version
    reg = ModelRegistry(api_settings.registry_path, api_settings.hmac_key)
    assert reg.champion_version() == version
    meta = api.get(f"/models/{version}").json()
    assert meta["role"] == "champion" and meta["kind"] == "offline"
    assert meta["threshold"] == result["threshold"]
    assert meta["metrics"]["feature_set"] == "handbook"  # the preset's features
    tx = {"transaction_id": "x1", "card_id": "c1", "amount": 12.0,
          "timestamp": "2024-03-01T00:00:00Z"}
    # this API computes the default feature set: it refuses to serve a handbook-trained champion
    r = api.post("/score", json=tx, headers=AUTH)
    assert r.status_code == 503
    assert f"model {version} was trained on feature set 'handbook'" in r.text
    # trained on the features the API computes, the new champion scores at once
    body["feature_set"] = api_settings.feature_set
    job = api.post("/training?wait=120", json=body, headers=AUTH).json()
    assert job["status"] == "succeeded", job
    version = api.get(f"/training/{job['id']}").json()["version"]
    r = api.post("/score", json=tx, headers=AUTH)
    assert r.status_code == 200 and r.json()["model_version"] == version


def test_tuning_job_registers_a_challenger(api: TestClient, api_settings: Settings,
                                           labelled: Path) -> None:
    body = {"path": str(labelled), "mapping": HANDBOOK, "model": "logreg", "method": "random",
            "trials": 2, "challenger": True, "protocol": {"label_delay": "3d"}}
    r = api.post("/tuning?wait=120", json=body, headers=AUTH)
    job = r.json()
    assert job["status"] == "succeeded", job
    result = api.get(f"/tuning/{job['id']}").json()
    assert len(result["trials"]) == 2 and result["best_params"]
    version = result["registered"]["version"]
    assert api.get("/models/challengers").json()[0]["version"] == version


def test_learning_errors(api: TestClient, labelled: Path) -> None:
    base = {"path": str(labelled), "mapping": HANDBOOK}
    for path, body in (("/training", {**base, "model": "logreg"}),
                       ("/evaluation", {**base, "models": ["logreg"]}),
                       ("/tuning", {**base, "model": "logreg"})):
        assert api.post(path, json=body).status_code == 401
        r = api.post(path, json={**body, "dataset_id": "nope", "path": None, "mapping": None},
                     headers=AUTH)
        assert r.status_code == 404, r.text
    r = api.post("/training", json={**base, "model": "forest"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"].startswith("unknown model 'forest'")
    r = api.post("/evaluation", json={**base, "models": []}, headers=AUTH)
    assert r.status_code == 422
    r = api.post("/training", json={**base, "model": "logreg", "params": {"nope": 1}},
                 headers=AUTH)
    assert r.status_code == 422 and "nope" in r.json()["detail"]
    r = api.post("/tuning", json={**base, "model": "logreg", "method": "annealing"}, headers=AUTH)
    assert r.status_code == 422 and "method" in r.json()["detail"]
    r = api.post("/training", json={**base, "model": "logreg", "promote": True,
                                    "challenger": True}, headers=AUTH)
    assert r.status_code == 422
    r = api.post("/training", json={**base, "model": "logreg",
                                    "protocol": {"protocol": "sideways"}}, headers=AUTH)
    assert r.status_code == 422 and "protocol" in r.json()["detail"]
