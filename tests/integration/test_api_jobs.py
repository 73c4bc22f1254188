"""Jobs through the API: progress, cancel, listing, files, and records that survive a restart
(a clean one in process, and a SIGKILLed uvicorn process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from fraudstream.settings import Settings
from stream.services import free_port
from tests.integration.conftest import AUTH, wait_job, write_transactions

HANDBOOK = {"preset": "handbook"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 transactions: an EDA of it takes seconds, long enough to watch and cancel."""
    return write_transactions(tmp_path_factory.mktemp("big") / "big.csv", 200_000, seed=5)


def test_job_lifecycle_progress_and_files(api: TestClient, api_settings: Settings,
                                          tmp_path: Path) -> None:
    path = write_transactions(tmp_path / "mid.csv", 100_000, seed=4)
    r = api.post("/eda", json={"path": str(path), "mapping": HANDBOOK}, headers=AUTH)
    assert r.status_code == 202
    job_id = r.json()["id"]
    seen = []
    while True:
        job = api.get(f"/jobs/{job_id}").json()
        seen.append((job["status"], job["progress"], job["message"]))
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.02)
    assert job["status"] == "succeeded", job
    running = [s for s in seen if s[0] == "running"]
    fractions = [p for _, p, _ in running]
    assert fractions == sorted(fractions), "progress went backwards"
    assert len({m for _, _, m in running}) >= 3, f"too few progress messages seen: {running}"
    assert any(0 < p < 1 for p in fractions)
    assert job["progress"] == 1.0 and job["message"] == "done"
    assert job["started_at"] >= job["created_at"] and job["finished_at"] >= job["started_at"]
    assert job["seconds"] > 0 and job["error"] is None
    assert job["result"]["summary"]["class_balance"]["n"] == 100_000

    # the record on disk says the same
    on_disk = json.loads((api_settings.jobs_path / job_id / "job.json").read_text())
    assert on_disk["status"] == "succeeded" and on_disk["result"] == job["result"]

    files = api.get(f"/jobs/{job_id}/files").json()
    names = {f["name"] for f in files}
    assert {"index.html", "summary.json"} <= names and any(n.endswith(".png") for n in names)
    one = next(f for f in files if f["name"] == "summary.json")
    got = api.get(one["url"])
    assert got.status_code == 200 and len(got.content) == one["size_bytes"]

    listed = api.get("/jobs").json()
    assert [j["id"] for j in listed] == [job_id] and listed[0]["result"] is None
    assert api.get("/jobs?kind=cleaning").json() == []
    assert api.get("/jobs?status=succeeded").json()[0]["id"] == job_id
    assert api.get("/jobs?status=bogus").status_code == 422

    r = api.post(f"/jobs/{job_id}/cancel", headers=AUTH)
    assert r.status_code == 409 and "is succeeded: cannot cancel" in r.json()["detail"]
    assert api.delete(f"/jobs/{job_id}").status_code == 401
    assert api.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 204
    assert api.get(f"/jobs/{job_id}").status_code == 404
    assert not (api_settings.jobs_path / job_id).exists()


def test_cancel_a_running_eda_job(api: TestClient, big_file: Path) -> None:
    r = api.post("/eda", json={"path": str(big_file), "mapping": HANDBOOK}, headers=AUTH)
    job_id = r.json()["id"]
    # wait until it is past reading the file, in the middle of its stages
    job = wait_job(api, job_id, until=lambda j: j["progress"] >= 0.3 or j["status"] in (
        "succeeded", "failed", "cancelled"))
    assert job["status"] == "running", job
    assert api.post(f"/jobs/{job_id}/cancel").status_code == 401
    assert api.post(f"/jobs/{job_id}/cancel", headers={"X-API-Key": "x"}).status_code == 403
    asked = time.monotonic()
    r = api.post(f"/jobs/{job_id}/cancel", headers=AUTH)
    assert r.status_code == 202 and r.json()["cancel_requested"]
    job = wait_job(api, job_id, timeout=30)
    took = time.monotonic() - asked
    assert job["status"] == "cancelled", job
    assert job["error_type"] == "Cancelled" and "cancelled" in job["error"]
    assert job["progress"] < 1.0
    assert took < 3.0, f"cancel took {took:.1f} s"
    names = {f["name"] for f in api.get(f"/jobs/{job_id}/files").json()}
    assert "index.html" not in names  # it stopped before writing the page
    r = api.get(f"/eda/{job_id}")
    assert r.status_code == 409 and "is cancelled" in r.json()["detail"]


def test_cancel_a_queued_job(api: TestClient, big_file: Path) -> None:
    """One worker thread: the second job waits in the queue and is cancelled at once."""
    first = api.post("/eda", json={"path": str(big_file), "mapping": HANDBOOK}, headers=AUTH).json()
    second = api.post("/eda", json={"path": str(big_file), "mapping": HANDBOOK},
                      headers=AUTH).json()
    assert api.get(f"/jobs/{second['id']}").json()["status"] == "queued"
    r = api.post(f"/jobs/{second['id']}/cancel", headers=AUTH)
    assert r.status_code == 202
    assert r.json()["status"] == "cancelled" and r.json()["started_at"] is None
    r = api.delete(f"/jobs/{first['id']}", headers=AUTH)
    assert r.status_code == 409 and "cancel it first" in r.json()["detail"]
    r = api.post(f"/jobs/{first['id']}/cancel?wait=30", headers=AUTH)
    assert r.json()["status"] == "cancelled"
    assert api.get("/jobs/no-such-job").status_code == 404
    assert api.post("/jobs/no-such-job/cancel", headers=AUTH).status_code == 404


def test_jobs_survive_a_clean_restart(api_settings: Settings, tx_file: Path,
                                      big_file: Path) -> None:
    with TestClient(create_app(api_settings, monitor=False)) as api:
        r = api.post("/eda?wait=60", json={"path": str(tx_file), "mapping": HANDBOOK},
                     headers=AUTH)
        done = r.json()
        assert done["status"] == "succeeded", done
        slow = api.post("/eda", json={"path": str(big_file), "mapping": HANDBOOK},
                        headers=AUTH).json()
    # the app stopped: the running job was cancelled on the way out
    with TestClient(create_app(api_settings, monitor=False)) as api:
        again = api.get(f"/jobs/{done['id']}").json()
        assert again["status"] == "succeeded" and again["result"] == done["result"]
        assert api.get(f"/eda/{done['id']}/index.html").status_code == 200
        stopped = api.get(f"/jobs/{slow['id']}").json()
        assert stopped["status"] == "cancelled", stopped
        assert {j["id"] for j in api.get("/jobs").json()} == {done["id"], slow["id"]}


def test_a_job_running_when_the_api_is_killed_is_failed_at_restart(
        api_settings: Settings, tmp_path: Path, big_file: Path) -> None:
    """A real uvicorn process, SIGKILLed in the middle of a job, then started again."""
    big = big_file
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FRAUDSTREAM_HOME": str(api_settings.home),
           "FRAUDSTREAM_REDIS_URL": str(api_settings.redis_url),
           "FRAUDSTREAM_KEY_PREFIX": api_settings.key_prefix,
           "FRAUDSTREAM_API_KEY": AUTH["X-API-Key"], "FRAUDSTREAM_ENV": "test",
           "FRAUDSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}  # none: the probe gives up
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.main:app_from_env",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    url = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                time.sleep(0.2)
        proc.kill()
        raise AssertionError("the API did not start")

    proc = start()
    try:
        job = httpx.post(f"{url}/eda", json={"path": str(big), "mapping": HANDBOOK},
                         headers=AUTH).json()
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/jobs/{job['id']}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        on_disk = json.loads((api_settings.jobs_path / job["id"] / "job.json").read_text())
        assert on_disk["status"] == "running"
        proc = start()
        after = httpx.get(f"{url}/jobs/{job['id']}").json()
        assert after["status"] == "failed"
        assert "the API stopped while this job was running" in after["error"]
        assert after["error_type"] == "Interrupted" and after["finished_at"]
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
