"""/models and /criteria through the API, on a real registry folder."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fraudstream.settings import Settings
from models.registry import ModelRegistry
from models.zoo import build_model
from tests.integration.conftest import AUTH


def registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry(settings.registry_path, settings.hmac_key)


def save(reg: ModelRegistry, name: str = "logreg", note: str = "") -> str:
    model = build_model(name)
    return reg.save(model, name=model.name, params=model.params, kind="batch", note=note,
                    metrics={"average_precision": 0.5}).version


def test_list_show_promote_rollback_history(api: TestClient, api_settings: Settings) -> None:
    assert api.get("/models").json() == {"champion": None, "challengers": [],
                                         "rollback_points": [], "versions": []}
    r = api.get("/models/champion")
    assert r.status_code == 404 and "no champion yet" in r.json()["detail"]
    reg = registry(api_settings)
    v1, v2, v3 = save(reg, note="first"), save(reg, "hst"), save(reg)
    reg.promote(v1, reason="setup")

    listed = api.get("/models").json()
    assert listed["champion"] == v1
    assert [m["version"] for m in listed["versions"]] == [v1, v2, v3]
    assert [m["role"] for m in listed["versions"]] == ["champion", None, None]
    shown = api.get(f"/models/{v2}").json()
    assert shown["name"] == "hst" and shown["kind"] == "batch" and shown["sha256"]
    assert api.get("/models/2").json()["version"] == "v2"  # "2" means v2

    body = {"reason": "better AP"}
    assert api.post(f"/models/{v2}/promote", json=body).status_code == 401
    assert api.post(f"/models/{v2}/promote", json=body,
                    headers={"X-API-Key": "bad"}).status_code == 403
    r = api.post(f"/models/{v2}/promote", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["champion"]["version"] == v2 and r.json()["previous"] == v1
    assert r.json()["champion"]["role"] == "champion"
    assert reg.champion_version() == v2  # the registry the workers poll moved
    assert api.get("/models/champion").json()["version"] == v2
    assert api.get("/models").json()["rollback_points"] == [v1]
    assert api.get(f"/models/{v1}").json()["role"] == "previous champion"

    r = api.put("/models/challengers", json={"versions": [v3, v1]}, headers=AUTH)
    assert r.status_code == 200 and [m["version"] for m in r.json()] == [v3, v1]
    assert [m["role"] for m in api.get("/models/challengers").json()] == ["challenger"] * 2
    assert reg.challenger_versions() == [v3, v1]

    r = api.post("/models/rollback", headers=AUTH)  # no body: back to the one before
    assert r.status_code == 200 and r.json()["champion"]["version"] == v1
    assert r.json()["previous"] == v2
    r = api.post("/models/rollback", json={"to": v3, "reason": "try v3"}, headers=AUTH)
    assert r.json()["champion"]["version"] == v3

    events = api.get("/models/history").json()
    assert [e["event"] for e in events][-4:] == ["promote", "challengers", "rollback", "rollback"]
    assert events[-1]["reason"] == "try v3" and events[-4]["reason"] == "better AP"
    assert len(api.get("/models/history?last=2").json()) == 2


def test_model_errors(api: TestClient, api_settings: Settings) -> None:
    reg = registry(api_settings)
    v1 = save(reg)
    for bad in ("v99", "banana", "v0"):
        r = api.get(f"/models/{bad}")
        assert r.status_code == 404, (bad, r.text)
        assert "not found" in r.json()["detail"]
        r = api.post(f"/models/{bad}/promote", headers=AUTH)
        assert r.status_code == 404
    assert "latest: v1" in api.get("/models/v99").json()["detail"]
    r = api.post("/models/rollback", headers=AUTH)
    assert r.status_code == 409 and "nothing to roll back to" in r.json()["detail"]
    r = api.post("/models/rollback", json={"to": "v42"}, headers=AUTH)
    assert r.status_code == 404
    r = api.put("/models/challengers", json={"versions": ["v7"]}, headers=AUTH)
    assert r.status_code == 404
    assert api.put("/models/challengers", json={"versions": []}).status_code == 401
    assert api.get("/models/history?last=0").status_code == 422

    # a tampered artifact is never promoted: 409 with the registry's own message
    v2 = save(reg)
    pkl = api_settings.registry_path / "versions" / v2 / "model.pkl"
    pkl.write_bytes(pkl.read_bytes() + b"x")
    r = api.post(f"/models/{v2}/promote", headers=AUTH)
    assert r.status_code == 409
    assert r.json()["detail"] == (f"model {v2}: signature does not match the artifact (tampered, "
                                  "or signed with another key): refusing to load it")
    assert reg.champion_version() is None
    r = api.put("/models/challengers", json={"versions": [v2]}, headers=AUTH)
    assert r.status_code == 409 and "tampered" in r.json()["detail"]
    (api_settings.registry_path / "versions" / v2 / "model.sig").unlink()
    r = api.post(f"/models/{v2}/promote", headers=AUTH)
    assert r.status_code == 409 and "unsigned" in r.json()["detail"]
    reg.promote(v1)
    r = api.post("/models/rollback", json={"to": v2}, headers=AUTH)
    assert r.status_code == 409 and "unsigned" in r.json()["detail"]
    assert reg.champion_version() == v1


def test_criteria(api: TestClient, make_settings, redis_service) -> None:  # type: ignore[no-untyped-def]
    problem = api.get("/criteria").json()
    assert problem["objective_metric"] == "average_precision"
    by_name = {c["name"]: c for c in problem["criteria"]}
    assert by_name["fpr"] == {"name": "fpr", "op": "<=", "target": 0.001,
                              "setting": "FRAUDSTREAM_MAX_FPR",
                              "description": "false-positive rate at the operating threshold",
                              "metric_keys": ["fpr_at_threshold", "fpr", "false_positive_rate"]}
    assert set(by_name) == {"fpr", "p99_latency_ms", "recall", "average_precision"}
    assert "0.1 %" in problem["objective"]

    good = {"fpr_at_threshold": 0.0008, "recall_at_threshold": 0.41, "average_precision": 0.62,
            "p99_latency_ms": 12.5}
    report = api.post("/criteria/check", json={"metrics": good}).json()
    assert report["status"] == "pass" and report["passed"]
    report = api.post("/criteria/check", json={"metrics": {**good, "fpr": 0.5,
                                                           "fpr_at_threshold": 0.01}}).json()
    assert report["status"] == "fail"
    failed = [c for c in report["criteria"] if c["passed"] is False]
    assert [(c["criterion"], c["measured"], c["metric_key"]) for c in failed] == [
        ("fpr", 0.01, "fpr_at_threshold")]
    assert api.post("/criteria/check", json={"metrics": {}}).json()["status"] == "incomplete"
    assert api.post("/criteria/check", json={"metrics": {"fpr": "low"}}).status_code == 422

    from api.main import create_app

    strict = make_settings(redis_service, min_roc_auc=0.9, max_fpr=0.0005)
    with TestClient(create_app(strict, monitor=False)) as other:
        names = {c["name"]: c["target"] for c in other.get("/criteria").json()["criteria"]}
        assert names["roc_auc"] == 0.9 and names["fpr"] == 0.0005
