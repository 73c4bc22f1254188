"""The embedded services answer, and `down` stops only what `up` started."""

from __future__ import annotations

from pathlib import Path

from fraudstream.settings import Settings
from stream.services import Services, free_port, kafka_healthy, redis_healthy


def test_session_services_answer(services: dict[str, str]) -> None:
    assert kafka_healthy(services["kafka"])
    assert redis_healthy(services["redis"])


def test_redis_up_status_down(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path, redis_port=free_port())
    svc = Services(settings, log=lambda m: None)
    url = svc.up(kafka=False)["redis"]
    assert redis_healthy(url)
    status = {s.name: s for s in svc.status()}
    assert status["redis"].healthy and status["redis"].started_here
    assert svc.up(kafka=False)["redis"] == url  # idempotent: the running one is reused
    assert svc.down() == ["redis"]
    assert not redis_healthy(url)
    assert svc.down() == []  # nothing left that this folder started


def test_external_services_are_used_not_started(tmp_path: Path, services: dict[str, str]) -> None:
    settings = Settings(_env_file=None, home=tmp_path, kafka_bootstrap=services["kafka"],
                        redis_url=services["redis"])
    svc = Services(settings, log=lambda m: None)
    assert svc.up() == {"kafka": services["kafka"], "redis": services["redis"]}
    assert all(s.kind == "external" and not s.started_here for s in svc.status())
    assert svc.down() == []
    assert kafka_healthy(services["kafka"]) and redis_healthy(services["redis"])
