"""docker-compose.yml, the Prometheus scrape config and the Grafana provisioning, checked without
Docker: the files parse, every service has what a production-like stack needs, every fraudstream
command in them exists in the CLI, and every metric the dashboards query is one the API exposes."""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.alerts import Alerter
from api.prometheus import build_families, exposition
from fraudstream.cli import build_parser
from fraudstream.settings import Settings
from stream.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def _fraudstream_commands(compose: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(where, argv) of every fraudstream invocation: service commands and health checks."""
    out = []
    for name, svc in compose["services"].items():
        if svc.get("image", "").startswith("fraudstream"):
            cmd = svc["command"]
            out.append((f"{name}.command", shlex.split(cmd) if isinstance(cmd, str) else list(cmd)))
        test = (svc.get("healthcheck") or {}).get("test") or []
        if len(test) > 1 and test[0] == "CMD" and test[1] == "fraudstream":
            out.append((f"{name}.healthcheck", list(test[2:])))
    return out


def test_the_stack_has_every_part(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "redis", "worker", "learner", "api", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["worker"]["command"][-1] == "scorer" and services["learner"]["command"][-1] == "learner"
    assert "deploy" not in services["learner"]  # exactly one learner


def test_health_checks_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        if name != "simulator":  # a one-shot producer
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert cond["condition"] == "service_healthy", f"{name} -> {dep}: {cond}"
            assert services[dep].get("healthcheck"), f"{name} waits for {dep}, which has no health check"
    assert set(services["worker"]["depends_on"]) == {"kafka", "redis"}
    assert set(services["api"]["depends_on"]) == {"kafka", "redis"}
    assert set(services["prometheus"]["depends_on"]) == {"api"}
    assert set(services["grafana"]["depends_on"]) == {"prometheus"}


def test_every_fraudstream_command_exists_in_the_cli(compose: dict[str, Any]) -> None:
    parser = build_parser()
    commands = _fraudstream_commands(compose)
    assert {w for w, _ in commands} >= {"worker.command", "learner.command", "api.command",
                                         "simulator.command", "worker.healthcheck"}
    for where, argv in commands:
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: `fraudstream {' '.join(argv)}` is not a valid command")
        assert callable(args.func), where


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"
    assert (ROOT / "Dockerfile").exists()


def _exposed_names() -> set[str]:
    """Every sample name /metrics can produce (a synthetic scorer, learner, lag and alerter)."""
    scorer, learner = WorkerMetrics("scorer"), WorkerMetrics("learner")
    scorer.dead_letter("transactions", "bad json")
    learner.count("model_events.promotion")
    learner.model = {"name": "logreg", "version": "v3", "learner": {
        "drifts": 1, "warnings": 0, "data_drifts": 0,
        "champion": {"model": "logreg", "version": "v3", "metrics": {"labels": 10, "fpr": 0.1}}}}
    scorer.model = {"name": "logreg", "version": "v3"}
    entries = [{"worker_id": m.role, "role": m.role, "seen_at": time.time(), "beat": m.heartbeat()}
               for m in (scorer, learner)]
    status = {"lag": {"g": {"total": 3, "topics": {"t": {"partitions": {"0": 3}}}}},
              "components": {"kafka": {"healthy": True}, "redis": {"healthy": True}},
              "criteria": {"criteria": [{"criterion": "fpr", "passed": True}]}}
    text = exposition(build_families(status, entries, Alerter(Settings(_env_file=None)))).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}


def test_prometheus_scrapes_the_api() -> None:
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "fraudstream")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["static_configs"][0]["targets"] == ["api:8000"]


def test_grafana_is_provisioned_with_queries_on_real_metrics() -> None:
    prov = ROOT / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((prov / "dashboards" / "fraudstream.yml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dash = json.loads((ROOT / "grafana" / "dashboards" / "fraudstream.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [a["expr"] for a in dash["annotations"]["list"]]
    assert len(exprs) >= 15
    exposed = _exposed_names()
    for expr in exprs:
        for name in re.findall(r"\bfraudstream_[a-z_]+", expr):
            assert name in exposed, f"Grafana queries {name}, which /metrics does not expose"
    for p in dash["panels"]:
        for t in p["targets"]:
            assert t["datasource"]["uid"] == ds["uid"]
