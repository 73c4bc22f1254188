"""Shared fixtures: embedded Kafka and Redis for the session, unique names per test, hygiene.

Unit tests (``tests/unit``) need no service. Integration and e2e tests ask for ``services``,
which starts a real Kafka (KRaft, from Maven Central) and a real redis-server on free ports of
127.0.0.1, in a temporary folder, once per session, and stops them at the end. Set
``FRAUDSTREAM_TEST_KAFKA`` and ``FRAUDSTREAM_TEST_REDIS`` to use running ones instead.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudstream.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FDH = ROOT.parent / "shared" / "data" / "fdh" / "transactions_raw.csv.gz"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}integration{os.sep}" in path:
            item.add_marker(pytest.mark.integration)
        elif f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``{"kafka": bootstrap, "redis": url}`` of real services for this session."""
    if os.environ.get("FRAUDSTREAM_TEST_KAFKA") and os.environ.get("FRAUDSTREAM_TEST_REDIS"):
        yield {"kafka": os.environ["FRAUDSTREAM_TEST_KAFKA"], "redis": os.environ["FRAUDSTREAM_TEST_REDIS"]}
        return
    from stream.services import Services, free_port

    home = tmp_path_factory.mktemp("services")
    settings = Settings(
        _env_file=None,
        home=home,
        cache_dir=ROOT / ".cache",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        redis_port=free_port(),
        partitions=4,
    )
    svc = Services(settings, log=lambda m: None)
    addresses = svc.up(timeout=180)
    try:
        yield addresses
    finally:
        svc.down()


@pytest.fixture(scope="session")
def redis_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``{"redis": url}`` of a real redis-server for this session (no Kafka)."""
    if os.environ.get("FRAUDSTREAM_TEST_REDIS"):
        yield {"redis": os.environ["FRAUDSTREAM_TEST_REDIS"]}
        return
    from stream.services import Services, free_port

    home = tmp_path_factory.mktemp("redis")
    settings = Settings(_env_file=None, home=home, redis_port=free_port())
    svc = Services(settings, log=lambda m: None)
    addresses = svc.up(timeout=60, kafka=False)
    try:
        yield addresses
    finally:
        svc.down()


@pytest.fixture
def unique() -> str:
    """A short name unique to this test, for topic and key prefixes."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def make_settings(tmp_path: Path, unique: str):  # type: ignore[no-untyped-def]
    """Settings for one test: its own topics, Redis keys, registry and home folder."""

    def make(services: dict[str, str] | None = None, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "env": "test",
            "home": tmp_path / "home",
            "cache_dir": ROOT / ".cache",
            "topic_prefix": f"{unique}-",
            "key_prefix": unique,
            "app_id": f"fraudstream-{unique}",
        }
        if services:
            if "kafka" in services:
                values["kafka_bootstrap"] = services["kafka"]
            values["redis_url"] = services["redis"]
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def fdh_path() -> Path:
    """The handbook data set, read in place (never copied into the repo)."""
    if not FDH.exists():
        pytest.skip(f"the handbook data set is not at {FDH}")
    return FDH


@pytest.fixture(autouse=True)
def no_leftover_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a unit test that leaves threads behind."""
    if "unit" not in str(request.node.fspath):
        yield
        return
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"test left threads behind: {[t.name for t in left]}"
