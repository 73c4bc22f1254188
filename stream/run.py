"""``fraudstream run``: the whole system on one machine, with simulated traffic and a live view.

It starts, in order: Kafka and Redis (embedded unless FRAUDSTREAM_KAFKA_BOOTSTRAP /
FRAUDSTREAM_REDIS_URL are set), the topics, a scoring worker, the learner, the API, and the
simulator (in this process); then it shows a live view of the API's ``/status`` until Ctrl-C (or
``--duration``), and stops everything it started, in reverse order. Logs of the child processes go
to ``<home>/logs/``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from fraudstream.errors import ServiceError
from fraudstream.settings import Settings
from stream.services import Services, port_open, wait_for

__all__ = ["SystemRunner", "render_status", "settings_env"]


def settings_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that gives a child process these very settings (``FRAUDSTREAM_*``).

    >>> env = settings_env(Settings(_env_file=None, key_prefix="k1", challengers=["hat"]), base={})
    >>> env["FRAUDSTREAM_KEY_PREFIX"], env["FRAUDSTREAM_CHALLENGERS"], "FRAUDSTREAM_REDIS_URL" in env
    ('k1', '["hat"]', False)
    """
    env = dict(os.environ if base is None else base)
    for name, value in settings.model_dump(mode="json").items():
        key = f"FRAUDSTREAM_{name.upper()}"
        if value is None:
            env.pop(key, None)
        elif isinstance(value, dict | list):
            env[key] = json.dumps(value)
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        else:
            env[key] = str(value)
    return env


@dataclass
class SystemRunner:
    """Starts and stops the parts of the system; usable from tests as a context manager."""

    settings: Settings
    rate: float = 200.0
    scorers: int = 1
    simulate: bool = True
    bootstrap_days: float = 14.0
    sim_config: Any = None  # a stream.simulator.SimConfig; None: the default for the settings
    console: Console = field(default_factory=lambda: Console(stderr=True))
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _services: Services | None = None
    _stop_services: bool = False
    _sim_stop: threading.Event = field(default_factory=threading.Event)
    _sim_thread: threading.Thread | None = None
    sim_stats: Any = None
    sim_error: str | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def start(self) -> None:
        say = self.console.print
        self._services = Services(self.settings, log=lambda m: say(f"[dim]{m}[/dim]"))
        before = {s.name: s.started_here for s in self._services.status()}
        addresses = self._services.up()
        self._stop_services = not all(before.values())
        self.settings = self.settings.model_copy(
            update={"kafka_bootstrap": addresses["kafka"], "redis_url": addresses["redis"]}
        )
        from stream.topics import ensure_topics

        ensure_topics(self.settings, addresses["kafka"])
        if port_open(self.settings.api_host, self.settings.api_port):
            raise ServiceError(
                f"port {self.settings.api_port} is taken; set FRAUDSTREAM_API_PORT to a free port"
            )
        env = settings_env(self.settings)
        if self.bootstrap_days:
            compressed = None
            if self.simulate and self.rate > 0:  # the live clock: one simulated day this long
                from stream.simulate import day_seconds, simulation_config
                from stream.simulator import Simulator

                compressed = day_seconds(
                    Simulator(self.sim_config or simulation_config(self.settings)), self.rate)
            bootstrap_champion(self.settings, self.bootstrap_days, say, day_seconds=compressed,
                               config=self.sim_config)
        logs = self.settings.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        cli = [sys.executable, "-m", "fraudstream"]
        for i in range(self.scorers):
            self._spawn(f"scorer-{i + 1}", [*cli, "worker", "--role", "scorer"], env, logs)
        self._spawn("learner", [*cli, "worker", "--role", "learner"], env, logs)
        self._spawn("api", [*cli, "api"], env, logs)
        wait_for(f"the API at {self.api_url}", self._api_up, 60, lambda m: say(f"[dim]{m}[/dim]"))
        wait_for("the workers' first heartbeats", self._workers_up, 90, lambda m: say(f"[dim]{m}[/dim]"))
        if self.simulate:
            self._start_simulator()

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str], logs: Path) -> None:
        out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        out.close()
        self.procs.append((name, proc))
        self.console.print(f"[dim]{name}: started (pid {proc.pid}), log {logs / (name + '.log')}[/dim]")

    def _api_up(self) -> bool:
        self._check_children()
        return httpx.get(f"{self.api_url}/health", timeout=1.0).status_code == 200

    def _workers_up(self) -> bool:
        self._check_children()
        status = httpx.get(f"{self.api_url}/status", timeout=2.0).json()
        roles = {w["role"] for w in status["components"]["workers"] if w["alive"]}
        return {"scorer", "learner"} <= roles

    def _check_children(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                log = self.settings.home / "logs" / f"{name}.log"
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                raise ServiceError(f"{name} exited with code {proc.returncode}; end of {log}:\n{tail}")

    def _start_simulator(self) -> None:
        from stream.simulate import SimStats, run_simulation

        self.sim_stats = SimStats()

        def target() -> None:
            try:
                run_simulation(self.settings, self.rate, self._sim_stop, stats=self.sim_stats,
                               config=self.sim_config, bootstrap=self.settings.kafka_bootstrap,
                               create_topics=False)
            except Exception as exc:  # noqa: BLE001 - shown in the live view
                self.sim_error = str(exc)

        self._sim_thread = threading.Thread(target=target, name="simulator", daemon=True)
        self._sim_thread.start()

    def pause_simulator(self, timeout: float = 10.0) -> None:
        """Stop the simulated traffic (what was sent is flushed to Kafka first)."""
        self._sim_stop.set()
        if self._sim_thread is not None:
            self._sim_thread.join(timeout=timeout)
            self._sim_thread = None

    def resume_simulator(self) -> None:
        """Start simulated traffic again (a new run: new ids, new ``sim_stats``)."""
        self.pause_simulator()
        self._sim_stop = threading.Event()
        self._start_simulator()

    def status(self) -> dict[str, Any] | None:
        try:
            return httpx.get(f"{self.api_url}/status", timeout=2.0).json()  # type: ignore[no-any-return]
        except httpx.HTTPError:
            return None

    def stop(self) -> None:
        self._sim_stop.set()
        if self._sim_thread is not None:
            self._sim_thread.join(timeout=10)
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except OSError:
                    proc.terminate()
        deadline = time.monotonic() + 15
        for _name, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        if self._services is not None and self._stop_services:
            stopped = self._services.down()
            if stopped:
                self.console.print(f"[dim]stopped: {', '.join(stopped)}[/dim]")

    def __enter__(self) -> SystemRunner:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bootstrap_champion(settings: Settings, days: float, say: Any = print,
                       day_seconds: float | None = None, config: Any = None) -> str | None:
    """Give an empty registry a champion trained on simulated history; its version, or None.

    A fraud system does not go live with an untrained model: the first champion learns ``days``
    of simulated history (the same world the live simulator draws from, features by the offline
    twin of the same definitions the worker computes online), is evaluated on the last part of
    it, gets the operating threshold that meets the FPR target, and is promoted. The learner then
    continues it online from the labels that arrive.

    ``config``: the live simulator's (same world); ``day_seconds``: the live stream stamps records with the wall clock while one simulated day
    lasts ``day_seconds`` (a paced demo); the history is then put on that same compressed clock,
    ending now, so the champion learns the features it will be served (velocity windows full of
    compressed days), with labels usable one simulated day after their transaction.
    """
    from models.registry import ModelRegistry

    registry = ModelRegistry(settings.registry_path, settings.hmac_key,
                             keep_online=settings.registry_keep_snapshots)
    if registry.champion_version() is not None:
        return None
    from features.columns import SIMULATOR
    from models.training import ProtocolOptions, train
    from stream.simulate import simulation_config, write_simulation

    started = time.monotonic()
    folder = settings.home / "bootstrap"
    folder.mkdir(parents=True, exist_ok=True)
    history = folder / "history.parquet"
    say(f"[dim]bootstrap: simulating {days:g} days of history for the first champion ...[/dim]")
    write_simulation(config or simulation_config(settings), history, days=days)
    label_delay: str | None = None
    if day_seconds:
        import pandas as pd

        frame = pd.read_parquet(history)
        ts = pd.to_datetime(frame["timestamp"], utc=True)
        end = ts.max()
        now = pd.Timestamp.now(tz="UTC")
        frame["timestamp"] = now - (end - ts) * (day_seconds / 86400.0)
        frame.to_parquet(history, index=False)
        label_delay = f"{day_seconds:.3f}s"
    say(f"[dim]bootstrap: training {settings.model} on it (features by the offline twin) ...[/dim]")
    result = train(history, SIMULATOR, settings.model,
                   ProtocolOptions(protocol="holdout", test_fraction=0.25,
                                   label_delay=label_delay),
                   params=settings.model_params or None, feature_set=settings.feature_set,
                   settings=settings, promote=True)
    metrics = result.evaluation.metrics
    ap = metrics.get("average_precision")
    say(f"[dim]bootstrap: champion {result.version} in {time.monotonic() - started:.0f} s "
        f"(on its last quarter: average precision {ap if ap is None else round(ap, 3)}, "
        f"operating threshold {result.threshold if result.threshold is None else round(result.threshold, 4)})[/dim]")
    return result.version


def render_status(status: dict[str, Any] | None, sim: Any, api_url: str,
                  sim_error: str | None = None) -> Panel:
    """The live view: throughput, latency, fraud and decline rates, dead letters, models."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    if status is None:
        table.add_row("status", "[red]the API does not answer[/red]")
    else:
        counts = status["counts"]
        lat = status["latency_ms"]
        scored = max(1, counts["scored"])
        table.add_row("throughput", f"{status['throughput_per_s']:.0f} tx/s (last 60 s)")
        table.add_row("latency", f"p50 {lat['p50']:.1f} ms   p99 {lat['p99']:.1f} ms")
        table.add_row("scored", f"{counts['scored']:,}  (duplicates {counts['duplicates']:,})")
        table.add_row("decisions", f"decline {status['decline_rate']:.2%}   review "
                                   f"{status['review_rate']:.2%}   (last 60 s)")
        table.add_row("declined", f"{counts['decline']:,} ({counts['decline'] / scored:.2%} of all)")
        dl = status.get("dead_letters") or {}
        table.add_row("dead letters", f"{counts['dead_letters']:,}  ({dl.get('last_minute', 0):,} in the "
                                      "last minute)")
        fraud_rate = status.get("fraud_rate")
        table.add_row("labels learned", f"{counts['labels_learned']:,}  (fraud "
                      + (f"{fraud_rate:.2%} in the last 60 s)" if fraud_rate is not None else "rate: none yet)"))
        lag = status.get("lag") or {}
        if lag:
            table.add_row("consumer lag", "   ".join(f"{g}: {v['total']:,}" for g, v in lag.items()))
        models = status.get("models") or {}
        champion = models.get("champion") or {}
        if champion:
            m = champion.get("metrics") or {}
            extra = (f"  AP {m['average_precision']:.3f} over {m.get('labels', 0):,} labels"
                     if m.get("average_precision") is not None else "")
            table.add_row("champion", f"{champion.get('model', '?')} {champion.get('version', '?')}{extra}")
        criteria = status.get("criteria") or {}
        if criteria:
            word = {"pass": "[green]pass[/green]", "fail": "[red]FAIL[/red]"}.get(
                criteria.get("status", ""), criteria.get("status", "?"))
            failing = [c["criterion"] for c in criteria.get("criteria", []) if c.get("passed") is False]
            table.add_row("success criteria", word + (f" ({', '.join(failing)})" if failing else ""))
        workers = status["components"]["workers"]
        alive = sum(1 for w in workers if w["alive"])
        table.add_row("workers", f"{alive} alive of {len(workers)}")
        alerts = status.get("alerts") or []
        if alerts:
            table.add_row("alerts", "\n".join(f"[red]{a['summary']}[/red]" for a in alerts[:5]))
    if sim is not None:
        sent, fraud = sim.transactions, sim.frauds
        table.add_row("simulator", f"{sent:,} transactions sent ({sim.rate:.0f}/s), {fraud:,} fraud "
                                   f"({fraud / max(1, sent):.2%}), {sim.labels:,} labels, "
                                   f"{sim.sim_days:.1f} simulated days"
                      + (f"  [red]{sim_error}[/red]" if sim_error else ""))
    footer = f"dashboard {api_url}/dashboard   API {api_url}/docs   Ctrl-C stops everything"
    return Panel(Group(table), title="fraudstream live", subtitle=footer)


def run(settings: Settings, rate: float, duration: float | None, view: bool,
        bootstrap_days: float = 14.0) -> int:
    from stream.simulate import simulation_config
    from stream.simulator import DAY, LabelConfig

    console = Console(stderr=True)
    # Live demo: genuine transactions are confirmed 1 simulated day after them (about a minute at
    # 200 tx/s) instead of 7, so the learner sees both classes within minutes, not only the quick
    # fraud verdicts (a fresh system has no matured history; a real one has been running).
    config = simulation_config(settings, labels=LabelConfig(genuine_delay=DAY))
    runner = SystemRunner(settings, rate=rate, console=console, bootstrap_days=bootstrap_days,
                          sim_config=config)
    with runner:
        console.print(f"[green]fraudstream is running[/green]: API {runner.api_url}  "
                      f"dashboard {runner.api_url}/dashboard")
        deadline = time.monotonic() + duration if duration else None
        if view and sys.stdout.isatty():
            with Live(render_status(None, runner.sim_stats, runner.api_url, runner.sim_error), console=Console(),
                      refresh_per_second=2) as live:
                while deadline is None or time.monotonic() < deadline:
                    runner._check_children()
                    live.update(render_status(runner.status(), runner.sim_stats, runner.api_url,
                                              runner.sim_error))
                    time.sleep(1.0)
        else:
            out = Console()
            while deadline is None or time.monotonic() < deadline:
                runner._check_children()
                out.print(render_status(runner.status(), runner.sim_stats, runner.api_url,
                                              runner.sim_error))
                time.sleep(5.0)
    return 0
