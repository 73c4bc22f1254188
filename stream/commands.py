"""Subcommands of the streaming side: services, worker, simulate, replay, run."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from fraudstream.errors import ConfigError, ServiceError
from fraudstream.settings import Settings, parse_duration


def register(sub: Any) -> None:
    p = sub.add_parser("services", help="start, stop or report the embedded Kafka and Redis")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.set_defaults(func=services)
    _register_simulate(sub)
    _register_replay(sub)

    p = sub.add_parser("worker", help="run the Faust worker: score transactions, learn from labels")
    p.add_argument("--role", choices=["scorer", "learner", "all"], default="all",
                   help="scorer: scoring agent only; learner: the one learner; all: both (default)")
    p.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=worker)

    p = sub.add_parser(
        "health", help="exit 0 when Kafka and Redis answer (or, with --worker, this host's worker beats)",
        description="A health check for scripts and containers: without options, Kafka and Redis "
        "must answer; with --worker, a worker process on this host must have written a "
        "heartbeat to Redis within --max-age seconds.")
    p.add_argument("--worker", action="store_true", help="check this host's worker heartbeat")
    p.add_argument("--max-age", type=float, default=15.0, help="seconds (default 15)")
    p.set_defaults(func=health)

    p = sub.add_parser("run", help="the whole system: services, worker, learner, API, simulator, live view")
    p.add_argument("--rate", type=float, default=None, help="simulated transactions per second")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--no-view", action="store_true", help="print status every 5 s instead")
    p.add_argument("--bootstrap-days", type=float, default=14.0,
                   help="when the registry has no champion, train the first one on this many "
                        "days of simulated history (0: start with an untrained model)")
    p.set_defaults(func=run)


def services(args: argparse.Namespace, settings: Settings) -> int:
    from stream.services import Services

    svc = Services(settings)
    if args.action == "up":
        addresses = svc.up()
        print(f"kafka  {addresses['kafka']}")
        print(f"redis  {addresses['redis']}")
        return 0
    if args.action == "down":
        stopped = svc.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing (none started here)"))
        return 0
    infos = svc.status()
    if args.json:
        print(json.dumps(svc.describe(), indent=2))
    else:
        for s in infos:
            health = "healthy" if s.healthy else "DOWN"
            origin = f"pid {s.pid}, started here" if s.started_here else s.kind
            print(f"{s.name:<6} {s.address:<28} {health:<8} ({origin})")
    return 0 if all(s.healthy for s in infos) else 1


def _check_champion(settings: Settings) -> None:
    """Refuse to start a scorer whose registry's champion it cannot serve (another feature
    set, a bad signature): it would score every transaction the same. An empty registry is
    fine: the worker creates an initial champion."""
    from fraudstream.errors import ConfigError
    from models.registry import ModelRegistry
    from models.watcher import ChampionWatcher

    registry = ModelRegistry(settings.registry_path, settings.hmac_key)
    if registry.champion_version() is None:
        return
    watcher = ChampionWatcher(registry, feature_set=settings.feature_set)
    if watcher.current is None:
        raise ConfigError(f"the champion cannot be served: {watcher.last_error}; promote a "
                          "version trained on this feature set, or set FRAUDSTREAM_FEATURE_SET")


def worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust

    from stream.app import create_app
    from stream.services import Services
    from stream.topics import ensure_topics

    if args.role in ("scorer", "all"):
        _check_champion(settings)
    kafka, redis_url = Services(settings).addresses()
    settings = settings.model_copy(update={"kafka_bootstrap": kafka, "redis_url": redis_url})
    ensure_topics(settings, kafka)
    app = create_app(settings, role=args.role)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG so that it spins on every record:
    # every debug call of aiokafka and Faust then builds a LogRecord (6 % of a worker's time).
    worker.spinner = None
    worker.execute_from_commandline()
    return 0


def health(args: argparse.Namespace, settings: Settings) -> int:
    import socket
    import time

    import redis

    from stream.metrics import workers_key
    from stream.services import Services, kafka_healthy, redis_healthy

    kafka, redis_url = Services(settings).addresses()
    if args.worker:
        host = socket.gethostname()
        client = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
        try:
            members = client.zrangebyscore(workers_key(settings.key_prefix),
                                           time.time() - args.max_age, "+inf")
        except redis.RedisError as exc:
            raise ServiceError(f"Redis at {redis_url}: {exc}") from exc
        finally:
            client.close()
        names = [m.decode() if isinstance(m, bytes) else str(m) for m in members]  # type: ignore[union-attr]
        mine = [m for m in names if m.partition("|")[2].startswith(f"{host}-")]
        print(f"worker heartbeat on {host}: " + (", ".join(mine) if mine else "none"))
        return 0 if mine else 1
    ok_redis = redis_healthy(redis_url)
    try:
        ok_kafka = kafka_healthy(kafka)
    except Exception:  # noqa: BLE001 - any failure is "not healthy"
        ok_kafka = False
    print(f"kafka  {kafka:<28} {'healthy' if ok_kafka else 'DOWN'}")
    print(f"redis  {redis_url:<28} {'healthy' if ok_redis else 'DOWN'}")
    return 0 if ok_kafka and ok_redis else 1


def run(args: argparse.Namespace, settings: Settings) -> int:
    from stream.run import run as run_system

    if args.rate is not None and args.rate <= 0:
        from fraudstream.errors import ConfigError

        raise ConfigError("--rate must be positive")
    if args.bootstrap_days < 0:
        from fraudstream.errors import ConfigError

        raise ConfigError("--bootstrap-days must be 0 or more")
    return run_system(settings, rate=args.rate or settings.run_rate, duration=args.duration,
                      view=not args.no_view, bootstrap_days=args.bootstrap_days)


# -- simulate -----------------------------------------------------------------------------------
def _register_simulate(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulated card transactions with fraud scenarios and delayed labels, to Kafka or files",
        description=(
            "Simulate cards, terminals, fraud scenarios (large amounts, compromised terminals, "
            "compromised cards, card testing), an optional concept drift, and labels reported days "
            "later. Without --out: publish to Kafka (transactions keyed by card id, labels keyed by "
            "transaction id), paced; with --clock now (default) records carry the wall-clock time "
            "they are published at, and a label is published when the compressed simulated clock "
            "reaches its due time."
        ),
    )
    p.add_argument("--out", metavar="FILE", help="write transactions to FILE (.csv, .csv.gz, .parquet)")
    p.add_argument("--labels-out", metavar="FILE", help="labels file (default: FILE.labels.EXT)")
    p.add_argument("--count", metavar="N", help="stop after N transactions")
    p.add_argument("--days", metavar="D", help="stop after D simulated days (files: default 30)")
    p.add_argument("--seed", metavar="S", help="random seed (default: FRAUDSTREAM_SEED)")
    p.add_argument("--cards", metavar="N", help="number of cards (default 5000)")
    p.add_argument("--terminals", metavar="N", help="number of terminals (default 10000)")
    p.add_argument("--tx-per-day", metavar="X", help="mean transactions per card per day (2.5)")
    p.add_argument("--start", metavar="DATE", help="simulated start, ISO date (2024-01-01)")
    p.add_argument("--drift-day", metavar="D", help="the fraud pattern changes from day D")
    for name, default in (("large", 0.002), ("terminal", 0.003), ("card", 0.003),
                          ("testing", 0.002)):
        p.add_argument(f"--fraud-{name}", metavar="SHARE",
                       help=f"share of transactions of this fraud scenario ({default})")
    p.add_argument("--unlabelled", metavar="SHARE", help="share never labelled (0.05)")
    p.add_argument("--analyst-share", metavar="SHARE",
                   help="share of fraud labels from analysts, within hours (0.3)")
    p.add_argument("--chargeback-delay", metavar="DUR", help="median chargeback delay (10d)")
    p.add_argument("--genuine-delay", metavar="DUR",
                   help="genuine transactions are labelled after DUR without dispute (7d); 'none'")
    p.add_argument("--single-currency", action="store_true",
                   help="every amount in the base currency (default: the terminal's currency)")
    k = p.add_argument_group("Kafka")
    k.add_argument("--rate", metavar="TX_PER_S",
                   help="transactions per wall second (default FRAUDSTREAM_RUN_RATE; 0: flat out)")
    k.add_argument("--time-scale", metavar="DUR",
                   help="instead of --rate: wall time of one simulated day (e.g. 5m)")
    k.add_argument("--clock", choices=["now", "sim"], default=None,
                   help="timestamps: wall clock at publish (now, default) or simulated (sim)")
    k.add_argument("--flush-labels", action="store_true",
                   help="at the end, publish the labels not due yet instead of dropping them")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=simulate)


def _number(value: str | None, name: str, kind: type = float, low: float | None = None,
            high: float | None = None) -> Any:
    if value is None:
        return None
    try:
        x = kind(value)
    except ValueError:
        raise ConfigError(f"{name}: not {'an integer' if kind is int else 'a number'}: {value!r}") from None
    if (low is not None and x < low) or (high is not None and x > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{name} must be {bounds}, not {value}")
    return x


def _duration(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    if seconds <= 0:
        raise ConfigError(f"{name} must be > 0, not {value}")
    return seconds


def _sim_config(args: argparse.Namespace, settings: Settings) -> Any:
    from dataclasses import replace

    from stream.simulate import simulation_config

    overrides: dict[str, Any] = {}
    for opt, key, kind, low, high in (
        ("seed", "seed", int, 0, None), ("cards", "cards", int, 1, 10_000_000),
        ("terminals", "terminals", int, 2, 10_000_000), ("tx_per_day", "tx_per_day", float, 0.001, 1000),
        ("drift_day", "drift_day", int, 0, None),
    ):
        v = _number(getattr(args, opt), "--" + opt.replace("_", "-"), kind, low, high)
        if v is not None:
            overrides[key] = v
    if args.start:
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError:
            raise ConfigError(f"--start: not an ISO date: {args.start!r}") from None
        overrides["start"] = start if start.tzinfo else start.replace(tzinfo=UTC)
    if args.single_currency:
        overrides["local_currency"] = False
    config = simulation_config(settings, **overrides)
    fraud = {}
    for name, field in (("large", "large_amount"), ("terminal", "compromised_terminal"),
                        ("card", "compromised_card"), ("testing", "card_testing")):
        v = _number(getattr(args, f"fraud_{name}"), f"--fraud-{name}", float, 0.0, 0.5)
        if v is not None:
            fraud[field] = v
    if fraud:
        config = replace(config, fraud=replace(config.fraud, **fraud))
    labels: dict[str, Any] = {}
    v = _number(args.unlabelled, "--unlabelled", float, 0.0, 1.0)
    if v is not None:
        labels["unlabelled_share"] = v
    v = _number(args.analyst_share, "--analyst-share", float, 0.0, 1.0)
    if v is not None:
        labels["analyst_share"] = v
    median = _duration(args.chargeback_delay, "--chargeback-delay")
    if median is not None:
        lo, _, hi = config.labels.chargeback_delay
        labels["chargeback_delay"] = (min(lo, median), median, max(hi, median))
    if args.genuine_delay is not None:
        labels["genuine_delay"] = (None if args.genuine_delay.strip().lower() == "none"
                                   else _duration(args.genuine_delay, "--genuine-delay"))
    if labels:
        config = replace(config, labels=replace(config.labels, **labels))
    return config.check()


@contextmanager
def _stop_on_sigint() -> Iterator[threading.Event]:
    """A stop event set by the first Ctrl-C (a clean stop); the second one interrupts."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    try:
        old: Callable[..., Any] | int | None = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        old = None
    try:
        yield stop
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


def _scenario_summary(by_scenario: dict[str, int]) -> str:
    parts = [f"{name} {n:,}" for name, n in by_scenario.items() if name != "genuine" and n]
    return ", ".join(parts) or "none"


def simulate(args: argparse.Namespace, settings: Settings) -> int:
    config = _sim_config(args, settings)
    count = _number(args.count, "--count", int, 1)
    days = _number(args.days, "--days", float, 0.001)
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if args.out:
        for opt in ("rate", "time_scale", "clock"):
            if getattr(args, opt) is not None:
                raise ConfigError(f"--{opt.replace('_', '-')} paces Kafka output; it does not apply to --out")
        if args.flush_labels:
            raise ConfigError("--flush-labels applies to Kafka; a labels file always has every label")
        from stream.simulate import labels_path_for, write_simulation

        labels_out = args.labels_out or labels_path_for(args.out)
        stats = write_simulation(config, args.out, labels_out, count=count,
                                 days=days if days is not None or count is not None else 30)
        print(f"wrote {stats.transactions:,} transactions ({stats.frauds:,} fraud: "
              f"{_scenario_summary(stats.by_scenario)}) to {args.out}")
        print(f"wrote {stats.labels:,} labels ({stats.fraud_labels:,} fraud) to {labels_out}")
        print(f"{stats.sim_days:.1f} simulated days in {stats.elapsed_s:.1f} s "
              f"({stats.transactions / max(stats.elapsed_s, 1e-9):,.0f} tx/s)")
        return 0
    if args.labels_out:
        raise ConfigError("--labels-out needs --out")
    rate = _number(args.rate, "--rate", float, 0.0)
    time_scale = _duration(args.time_scale, "--time-scale")
    if rate is not None and time_scale is not None:
        raise ConfigError("pace by --rate or by --time-scale, not both")

    from stream.services import kafka_healthy
    from stream.simulate import run_simulation
    from stream.topics import resolve_bootstrap

    bootstrap = resolve_bootstrap(settings)
    if not kafka_healthy(bootstrap):
        raise ServiceError(f"Kafka at {bootstrap} does not answer; start it with `fraudstream "
                           "services up` or set FRAUDSTREAM_KAFKA_BOOTSTRAP")
    clock: Literal["now", "sim"] = "sim" if args.clock == "sim" else "now"

    def on_start(stats: Any) -> None:
        if time_scale:
            pace, scale = f"one simulated day per {time_scale:g} s of wall time", ""
        elif stats.day_seconds:
            pace = f"{rate if rate is not None else settings.run_rate:g} tx/s"
            scale = f"; one simulated day ~ {stats.day_seconds:,.0f} s of wall time"
        else:
            pace, scale = "flat out", ""
        say(f"simulating to {bootstrap}: {settings.topic('transactions')}, "
            f"{settings.topic('labels')} at {pace} (clock {clock}{scale}); Ctrl-C stops")

    def on_progress(stats: Any) -> None:
        say(f"  {stats.transactions:>10,} tx ({stats.frauds:,} fraud)  {stats.labels:>9,} labels"
            f"  {stats.rate:>9,.1f} tx/s  day {stats.sim_days:6.2f}")

    with _stop_on_sigint() as stop:
        stats = run_simulation(
            settings, rate, stop, config=config, time_scale=time_scale, clock=clock, count=count,
            days=days, flush_labels=args.flush_labels, bootstrap=bootstrap, on_start=on_start,
            on_progress=on_progress, progress_every=5.0,
        )
    print(f"published {stats.transactions:,} transactions ({stats.frauds:,} fraud: "
          f"{_scenario_summary(stats.by_scenario)}) and {stats.labels:,} labels in "
          f"{stats.elapsed_s:.1f} s ({stats.rate:,.1f} tx/s, {stats.sim_days:.2f} simulated days)"
          + (", stopped" if stats.stopped else ""))
    return 0


# -- replay -------------------------------------------------------------------------------------
def _register_replay(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="publish a historical file to Kafka in event-time order, labels after a delay",
        description=(
            "Publish PATH (CSV, gzip CSV or Parquet) to Kafka in event-time order, each label "
            "--label-delay after its transaction; resumable (progress in FRAUDSTREAM_HOME/replay)."
        ),
    )
    p.add_argument("path", metavar="PATH")
    p.add_argument("--preset", metavar="NAME", help="a column mapping: handbook, simulator")
    for opt, what in (("time", "event time"), ("label", "fraud label (0/1)"),
                      ("id", "transaction id"), ("card", "card id"), ("terminal", "terminal id"),
                      ("amount", "amount")):
        p.add_argument(f"--{opt}", metavar="COL", help=f"the {what} column")
    p.add_argument("--speed", metavar="X", default="100",
                   help="event seconds per wall second (100); 0: flat out")
    p.add_argument("--label-delay", metavar="DUR",
                   help="labels are reported DUR after their transaction (preset's, else 7d)")
    p.add_argument("--limit", metavar="N", help="only the first N rows of the file")
    p.add_argument("--no-labels", action="store_true", help="publish transactions only")
    p.add_argument("--restart", action="store_true", help="ignore earlier progress, start over")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=replay)


def replay(args: argparse.Namespace, settings: Settings) -> int:
    from stream.replay import mapping_for
    from stream.replay import replay as run_replay
    from stream.services import kafka_healthy
    from stream.topics import resolve_bootstrap

    mapping = mapping_for(args.preset, time=args.time, label=args.label, id=args.id,
                          card=args.card, terminal=args.terminal, amount=args.amount)
    speed = _number(args.speed, "--speed", float, 0.0)
    limit = _number(args.limit, "--limit", int, 1)
    delay = _duration(args.label_delay, "--label-delay")
    bootstrap = resolve_bootstrap(settings)
    if not kafka_healthy(bootstrap):
        raise ServiceError(f"Kafka at {bootstrap} does not answer; start it with `fraudstream "
                           "services up` or set FRAUDSTREAM_KAFKA_BOOTSTRAP")
    with _stop_on_sigint() as stop:
        report = run_replay(
            settings, args.path, mapping, speed=speed, label_delay=delay, limit=limit,
            labels=not args.no_labels, bootstrap=bootstrap, restart=args.restart,
            stop_event=stop, progress=not args.quiet,
        )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    if report.complete and not report.transactions and not report.labels:
        print(f"nothing to do: {args.path} was already published ({report.total_events:,} events);"
              " --restart publishes it again")
        return 0
    state = "complete" if report.complete else \
        f"stopped at {report.published_total:,} of {report.total_events:,} events (run again to resume)"
    print(f"published {report.transactions:,} transactions and {report.labels:,} labels in "
          f"{report.elapsed_s:.1f} s ({report.rate:,.0f} msg/s)"
          + (f", resumed after {report.skipped:,} events" if report.resumed else "") + f"; {state}")
    notes = []
    if report.invalid_time_rows:
        notes.append(f"{report.invalid_time_rows:,} rows skipped: unreadable time")
    if report.unlabelled_rows and mapping.source("is_fraud") and not args.no_labels:
        notes.append(f"{report.unlabelled_rows:,} rows without a label")
    if report.duplicate_ids:
        notes.append(f"{report.duplicate_ids:,} duplicate transaction ids (the worker ignores repeats)")
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
