"""The API's data endpoints: /datasets, /cleaning, /eda against a real Redis, real files, real jobs."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from features.plotting import PNG_SIGNATURE
from tests.integration.conftest import AUTH, wait_job, write_transactions

HANDBOOK = {"preset": "handbook"}


def register(api: TestClient, path: Path, **extra: object) -> dict:
    r = api.post("/datasets", json={"path": str(path), "mapping": HANDBOOK, **extra}, headers=AUTH)
    assert r.status_code == 202, r.text
    return wait_job(api, r.json()["id"])


# -- /datasets ----------------------------------------------------------------------------------


def test_register_list_show_delete(api: TestClient, tx_file: Path) -> None:
    r = api.post("/datasets", json={"path": str(tx_file), "mapping": HANDBOOK, "id": "tx"},
                 headers=AUTH)
    assert r.status_code == 202
    job = r.json()
    assert r.headers["location"] == f"/jobs/{job['id']}"
    assert job["kind"] == "dataset" and job["status"] in ("queued", "running", "succeeded")
    assert job["links"]["dataset"] == "/datasets/tx"
    job = wait_job(api, job["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["id"] == "tx" and job["result"]["rows"] == 2000

    listed = api.get("/datasets").json()
    assert [d["id"] for d in listed] == ["tx"]
    shown = api.get("/datasets/tx").json()
    expected = pd.read_csv(tx_file)
    assert shown["rows"] == len(expected)
    assert shown["n_fraud"] == int(expected["TX_FRAUD"].sum())
    assert shown["has_card"] and shown["has_terminal"] and shown["has_amount"]
    assert shown["schema"]["TX_AMOUNT"] == "float64"
    assert shown["mapping"]["columns"]["card_id"] == "CUSTOMER_ID"
    assert shown["time_min"].startswith("2024-01-01")

    assert api.delete("/datasets/tx").status_code == 401
    assert api.delete("/datasets/tx", headers={"X-API-Key": "nope"}).status_code == 403
    assert api.delete("/datasets/tx", headers=AUTH).status_code == 204
    r = api.get("/datasets/tx")
    assert r.status_code == 404 and "dataset 'tx' not found" in r.json()["detail"]
    assert api.delete("/datasets/tx", headers=AUTH).status_code == 404
    assert tx_file.exists()  # the file itself is left alone


def test_register_with_a_column_mapping_and_no_card(api: TestClient, tmp_path: Path) -> None:
    raw = pd.DataFrame({"t": range(0, 86400 * 3, 600), "x1": 1.0, "label": 0})
    raw.loc[::50, "label"] = 1
    raw["x2"] = raw.index * 0.5
    path = tmp_path / "plain.parquet"
    raw.to_parquet(path, index=False)
    mapping = {"columns": {"timestamp": "t", "is_fraud": "label"}}
    r = api.post("/datasets?wait=30", json={"path": str(path), "mapping": mapping, "id": "plain"},
                 headers=AUTH)
    assert r.status_code == 202 and r.json()["status"] == "succeeded", r.text
    shown = api.get("/datasets/plain").json()
    assert shown["rows"] == len(raw) and not shown["has_card"]
    assert shown["feature_columns"] == ["x1", "x2"]
    assert any("no card column" in n for n in shown["notes"])


def test_register_errors(api: TestClient, tx_file: Path, tmp_path: Path) -> None:
    body = {"path": str(tx_file), "mapping": HANDBOOK}
    assert api.post("/datasets", json=body).status_code == 401
    assert api.post("/datasets", json=body, headers={"X-API-Key": "wrong"}).status_code == 403

    def detail(payload: dict, code: int = 422) -> str:
        r = api.post("/datasets", json=payload, headers=AUTH)
        assert r.status_code == code, r.text
        d = r.json()["detail"]
        return d if isinstance(d, str) else " ".join(e["msg"] for e in d)

    assert "no such file on the server" in detail({**body, "path": str(tmp_path / "none.csv")})
    assert "give an absolute path" in detail({**body, "path": "tx.csv"})
    assert "unknown preset 'nope'; known: handbook" in detail({**body, "mapping": {"preset": "nope"}})
    missing = detail({**body, "mapping": {"columns": {"timestamp": "WHEN", "is_fraud": "TX_FRAUD"}}})
    assert "column(s) ['WHEN'] not found" in missing
    assert "at least a time column" in detail({**body, "mapping": {"columns": {"is_fraud": "TX_FRAUD"}}})
    assert "unknown canonical column" in detail(
        {**body, "mapping": {"columns": {"timestamp": "TX_DATETIME", "colour": "TX_FRAUD"}}})
    assert "say how to read the file" in detail({**body, "mapping": {}})
    assert "string should match pattern" in detail({**body, "id": "Bad Id"}).lower()
    bad_label = tmp_path / "bad.csv"
    pd.DataFrame({"t": ["2024-01-01"], "y": [7]}).to_csv(bad_label, index=False)
    assert "must be 0/1" in detail({"path": str(bad_label),
                                    "mapping": {"columns": {"timestamp": "t", "is_fraud": "y"}}})

    assert register(api, tx_file, id="dup")["status"] == "succeeded"
    assert "already registered" in detail({**body, "id": "dup"}, 409)
    assert register(api, tx_file, id="dup", replace=True)["status"] == "succeeded"


def test_data_roots_limit_server_paths(redis_service: dict, make_settings, tmp_path: Path) -> None:
    from api.main import create_app

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside = write_transactions(allowed / "in.csv", 50)
    outside = write_transactions(tmp_path / "out.csv", 50)
    settings = make_settings(redis_service, api_key=AUTH["X-API-Key"], api_data_roots=[allowed])
    with TestClient(create_app(settings, monitor=False)) as api:
        r = api.post("/datasets", json={"path": str(outside), "mapping": HANDBOOK}, headers=AUTH)
        assert r.status_code == 422 and "outside the folders the API may read" in r.json()["detail"]
        assert register(api, inside)["status"] == "succeeded"


# -- /cleaning ----------------------------------------------------------------------------------


def dirty_file(tmp_path: Path) -> Path:
    frame = pd.DataFrame({
        "TRANSACTION_ID": [1, 2, 3, 3, 4, 5, 6],
        "TX_DATETIME": ["2024-01-01 10:00:00", "02/01/2024 11:00", "1704276000", "1704276000",
                        "not a date", "2024-01-05T09:30:00Z", "2024-01-06 08:00:00"],
        "CUSTOMER_ID": [1, 1, 2, 2, 3, 3, 4],
        "TERMINAL_ID": [10, 11, 12, 12, 13, 14, 15],
        "TX_AMOUNT": ["12.50", "€7,25", "100", "100", "5", "N/A", "8.0"],
        "TX_FRAUD": ["0", "yes", "0", "0", "1", "no", "0"],
        "city": ["New York", "new york", "NY", "NY", "Boston", "boston ", "Boston"],
    })
    path = tmp_path / "dirty.csv"
    frame.to_csv(path, index=False)
    return path


def test_cleaning_job_report_and_downloads(api: TestClient, tmp_path: Path) -> None:
    path = dirty_file(tmp_path)
    rules = {"categories": [{"column": "city", "case": "title",
                             "aliases": {"NY": "New York"}}]}
    body = {"path": str(path), "mapping": HANDBOOK, "rules": rules, "register_as": "clean-tx"}
    r = api.post("/cleaning", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    job = wait_job(api, r.json()["id"])
    assert job["status"] == "succeeded", job
    assert set(job["links"]) >= {"report", "cleaned", "rejects"}

    report = api.get(f"/cleaning/{job['id']}/report").json()
    assert report == job["result"]
    assert report["rows_in"] == 7
    assert report["rejected_by_reason"]  # the duplicate id and the unreadable date
    assert sum(report["rejected_by_reason"].values()) == report["rows_rejected"] == 2
    assert report["registered_dataset"] == "clean-tx"

    cleaned = api.get(f"/cleaning/{job['id']}/cleaned")
    assert cleaned.status_code == 200 and cleaned.headers["content-type"].startswith("text/csv")
    assert "attachment" in cleaned.headers["content-disposition"]
    frame = pd.read_csv(io.BytesIO(cleaned.content))
    assert len(frame) == 5
    assert set(frame["city"]) == {"New York", "Boston"}
    assert frame["TX_FRAUD"].isin([0, 1]).all()
    rejects = pd.read_csv(io.BytesIO(api.get(f"/cleaning/{job['id']}/rejects").content))
    assert len(rejects) == 2

    ds = api.get("/datasets/clean-tx").json()
    assert ds["rows"] == 5 and ds["path"].endswith("cleaned.csv")

    names = {f["name"] for f in api.get(f"/jobs/{job['id']}/files").json()}
    assert names == {"cleaned.csv", "rejects.csv", "report.json"}


def test_cleaning_errors(api: TestClient, tx_file: Path, tmp_path: Path) -> None:
    assert api.post("/cleaning", json={"dataset_id": "x"}).status_code == 401
    r = api.post("/cleaning", json={"dataset_id": "nothing"}, headers=AUTH)
    assert r.status_code == 404 and "dataset 'nothing' not found" in r.json()["detail"]
    r = api.post("/cleaning", json={"path": str(tx_file)}, headers=AUTH)
    assert r.status_code == 422 and "path needs a mapping" in r.text
    r = api.post("/cleaning", json={"dataset_id": "a", "path": str(tx_file)}, headers=AUTH)
    assert r.status_code == 422  # request validation: a one-line reason, and FastAPI's list
    assert r.json()["detail"] == ("body: give dataset_id or path (with a mapping), not both, "
                                  "not neither")
    assert [e["type"] for e in r.json()["errors"]] == ["value_error"]
    r = api.post("/cleaning", json={"dataset_id": "a", "nrows": 0, "output_format": "xls"},
                 headers=AUTH)
    assert r.json()["detail"] == ("nrows: input should be greater than or equal to 1; "
                                  "output_format: input should be 'csv', 'csv.gz' or 'parquet'")
    r = api.post("/cleaning", json={"junk": 2 ** 70}, headers=AUTH)  # found by schemathesis
    assert r.status_code == 422 and r.json()["errors"][0]["input"] == {"junk": 2 ** 70}
    r = api.post("/cleaning", content=b"{nope", headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"] == ("body: bad JSON at position 1 (expecting property name "
                                  "enclosed in double quotes)")
    r = api.post("/cleaning", json={"path": str(tx_file), "mapping": HANDBOOK,
                                    "rules": {"outliers": [{"column": "TX_AMOUNT", "method": "zz"}]}},
                 headers=AUTH)
    assert r.status_code == 422 and "method" in r.text
    r = api.post("/cleaning", json={"path": str(tx_file), "mapping": HANDBOOK,
                                    "rules": {"no_such_rule": 1}}, headers=AUTH)
    assert r.status_code == 422 and "no_such_rule" in r.text
    # a rule naming a column the file lacks fails in the job, with the library's reason
    r = api.post("/cleaning?wait=30", json={"path": str(tx_file), "mapping": HANDBOOK,
                                            "rules": {"numeric": ["NOPE"]}}, headers=AUTH)
    job = r.json()
    assert job["status"] == "failed" and "NOPE" in job["error"], job
    assert job["error_type"] in ("ConfigError", "DataError")
    r = api.get(f"/cleaning/{job['id']}/report")
    assert r.status_code == 409 and "is failed" in r.json()["detail"]
    r = api.get(f"/cleaning/{job['id']}/cleaned")
    assert r.status_code == 409


def test_cleaning_a_registered_dataset_to_parquet(api: TestClient, tx_file: Path) -> None:
    register(api, tx_file, id="raw")
    r = api.post("/cleaning?wait=60", json={"dataset_id": "raw", "output_format": "parquet",
                                            "nrows": 500}, headers=AUTH)
    job = r.json()
    assert job["status"] == "succeeded", job
    assert job["result"]["rows_in"] == 500
    got = api.get(f"/cleaning/{job['id']}/cleaned")
    assert got.status_code == 200 and got.content[:4] == b"PAR1"
    assert len(pd.read_parquet(io.BytesIO(got.content))) == job["result"]["rows_out"]
    r = api.post("/cleaning", json={"dataset_id": "raw", "register_as": "raw"}, headers=AUTH)
    assert r.status_code == 409 and "already registered" in r.json()["detail"]


# -- /eda ---------------------------------------------------------------------------------------


def test_eda_job_summary_page_and_plots(api: TestClient, tx_file: Path) -> None:
    register(api, tx_file, id="tx")
    r = api.post("/eda", json={"dataset_id": "tx", "title": "API EDA"}, headers=AUTH)
    assert r.status_code == 202, r.text
    job = wait_job(api, r.json()["id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert job["links"]["report"] == f"/eda/{job['id']}/index.html"

    summary = api.get(f"/eda/{job['id']}").json()
    frame = pd.read_csv(tx_file)
    assert summary["class_balance"]["n"] == len(frame)
    assert summary["class_balance"]["n_fraud"] == int(frame["TX_FRAUD"].sum())
    assert summary["dataset"]["rows"] == len(frame)

    page = api.get(f"/eda/{job['id']}/index.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>API EDA</title>" in page.text
    assert summary["plots"], "no plots drawn"
    for name in summary["plots"].values():
        assert f"src='{name}'" in page.text  # relative: served next to the page
        png = api.get(f"/eda/{job['id']}/{name}")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(PNG_SIGNATURE)
    assert api.get(f"/eda/{job['id']}/summary.json").json()["class_balance"] == summary["class_balance"]

    r = api.get(f"/eda/{job['id']}/nothing.png")
    assert r.status_code == 404 and "it has:" in r.json()["detail"]
    # an encoded ../ reaches the route (the client does not normalise it) and is refused there
    for escape in ("..%2Fjob.json", "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"):
        r = api.get(f"/jobs/{job['id']}/files/{escape}")
        assert r.status_code == 404 and "it has:" in r.json()["detail"], (escape, r.text)


def test_eda_errors(api: TestClient, tx_file: Path) -> None:
    assert api.post("/eda", json={"dataset_id": "tx"}).status_code == 401
    r = api.post("/eda", json={"dataset_id": "tx"}, headers=AUTH)
    assert r.status_code == 404
    r = api.post("/eda", json={"path": str(tx_file), "mapping": HANDBOOK, "corr_threshold": 2},
                 headers=AUTH)
    assert r.status_code == 422 and "corr_threshold" in r.text
    assert api.get("/eda/eda-20240101-000000-abcdef").status_code == 404
    assert api.get("/eda/../../etc/passwd").status_code == 404
    # a cleaning job is not an EDA job
    r = api.post("/cleaning?wait=30", json={"path": str(tx_file), "mapping": HANDBOOK,
                                            "nrows": 50}, headers=AUTH)
    cid = r.json()["id"]
    r = api.get(f"/eda/{cid}")
    assert r.status_code == 404 and "is a cleaning job, not eda" in r.json()["detail"]
