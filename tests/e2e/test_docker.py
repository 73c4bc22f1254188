"""The docker-compose stack, brought up with pytest-docker where a Docker engine answers.

Skipped, with the reason, where none does (the development machines and CI have the docker CLI
but no engine). Where one answers: ``docker compose up --build -d`` (pytest-docker), wait for the
API, publish one transaction to Kafka's host listener (127.0.0.1:9094), and follow it to the
``scored`` topic, the API's /status and /metrics, Prometheus and Grafana; ``down -v`` at the end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
API = "http://127.0.0.1:8000"
KAFKA = "127.0.0.1:9094"


def engine_problem() -> str | None:
    """Why no Docker engine can be used here, or None when one answers."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    try:
        r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` failed: {exc}"
    if r.returncode != 0 or not r.stdout.strip():
        return "`docker info` failed: " + (r.stderr.strip().splitlines() or ["no server version"])[-1]
    r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        return "the Docker Compose plugin (`docker compose`) is missing"
    return None


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(ROOT / "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return "fraudstream-test"


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Any:
    reason = engine_problem()
    if reason:
        pytest.skip(f"no Docker engine answers: {reason}")
    services = request.getfixturevalue("docker_services")  # up --build -d; down -v at the end

    def api_ready() -> bool:
        try:
            status = httpx.get(f"{API}/status", timeout=3).json()
        except (httpx.HTTPError, ValueError):
            return False
        roles = {w["role"] for w in status["components"]["workers"] if w["alive"]}
        return {"scorer", "learner"} <= roles

    services.wait_until_responsive(check=api_ready, timeout=600.0, pause=3.0)
    return services


def test_a_transaction_goes_through_the_stack(stack: Any) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    tx_id = f"docker-{uuid.uuid4().hex[:12]}"
    tx = {"transaction_id": tx_id, "card_id": "card-docker-1", "terminal_id": "term-1",
          "amount": 42.5, "currency": "EUR", "timestamp": datetime.now(UTC).isoformat()}
    producer = KafkaProducer(bootstrap_servers=KAFKA)
    producer.send("transactions", key=b"card-docker-1", value=json.dumps(tx).encode()).get(timeout=30)
    producer.close()

    consumer = KafkaConsumer("scored", bootstrap_servers=KAFKA, auto_offset_reset="earliest",
                             consumer_timeout_ms=60_000)
    try:
        scored = next(json.loads(m.value) for m in consumer if json.loads(m.value)["transaction_id"] == tx_id)
    finally:
        consumer.close()
    assert 0.0 <= scored["score"] <= 1.0 and scored["model_version"].startswith("v")

    status = httpx.get(f"{API}/status", timeout=10).json()
    assert status["counts"]["scored"] >= 1
    assert status["components"]["kafka"]["healthy"] is True
    assert httpx.get(f"{API}/dashboard", timeout=10).status_code == 200
    assert "fraudstream_transactions_scored_total" in httpx.get(f"{API}/metrics", timeout=10).text

    deadline = time.monotonic() + 120  # Prometheus scrapes every 5 s
    value = 0.0
    while time.monotonic() < deadline and value < 1:
        r = httpx.get("http://127.0.0.1:9090/api/v1/query", timeout=10,
                      params={"query": "sum(fraudstream_transactions_scored_total)"}).json()
        value = float(r["data"]["result"][0]["value"][1]) if r["data"]["result"] else 0.0
        time.sleep(2)
    assert value >= 1, "Prometheus has not scraped the scored count"
    health = httpx.get("http://127.0.0.1:3000/api/health", timeout=10).json()
    assert health["database"] == "ok"
    found = httpx.get("http://127.0.0.1:3000/api/search", params={"query": "fraudstream"},
                      auth=("admin", "admin"), timeout=10).json()
    assert any(d.get("uid") == "fraudstream" for d in found)
