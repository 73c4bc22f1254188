"""The OpenAPI description: docs served, tags described, and every mutating endpoint guarded."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.integration.conftest import AUTH

READ_ONLY_POSTS = {("post", "/criteria/check")}  # computes, changes nothing


def test_docs_and_tags(api: TestClient) -> None:
    page = api.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    spec = api.get("/openapi.json").json()
    described = {t["name"] for t in spec["tags"] if t.get("description")}
    used = {tag for ops in spec["paths"].values() for op in ops.values() for tag in op["tags"]}
    assert used <= described, f"tags without a description: {used - described}"
    assert {"datasets", "cleaning", "eda", "training", "evaluation", "tuning", "jobs", "models",
            "criteria", "predictions", "score"} <= used
    assert spec["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "FRAUDSTREAM_API_KEY; needed by every endpoint that changes something"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
            if "422" in op.get("responses", {}):
                schema = op["responses"]["422"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorPublic"}, (method, path)


def test_every_mutating_endpoint_needs_the_key(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    mutating = [(m, p) for p, ops in spec["paths"].items() for m in ops
                if m in ("post", "put", "delete", "patch") and (m, p) not in READ_ONLY_POSTS]
    assert len(mutating) >= 10
    for method, path in mutating:
        op = spec["paths"][path][method]
        assert op.get("security") == [{"APIKeyHeader": []}], (method, path)
        url = re.sub(r"\{[^}]+\}", "x", path)
        assert api.request(method, url, json={}).status_code == 401, (method, path)
        r = api.request(method, url, json={}, headers={"X-API-Key": AUTH["X-API-Key"] + "x"})
        assert r.status_code == 403 and r.json() == {"detail": "wrong API key"}, (method, path)
    for method, path in READ_ONLY_POSTS:
        assert "security" not in spec["paths"][path][method]


def test_status_series_refuses_a_since_out_of_range(api: TestClient) -> None:
    """A `since` far in the future was a 500 (Redis: invalid stream id); now a 422 with a reason."""
    resp = api.get("/status/series", params={"since": 4.9e16})
    assert resp.status_code == 422
    assert "since" in resp.text
