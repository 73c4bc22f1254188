"""Running the simulator: into Kafka, paced, with the clock a live system needs; or into files.

Kafka (:func:`run_simulation`, ``fraudstream simulate``): transactions go to
``settings.topic("transactions")`` keyed by card id, labels to ``settings.topic("labels")`` keyed
by transaction id, in event-time order; a label leaves when the simulated clock reaches its
``reported_at``.

Clocks. With ``clock="now"`` (the default for Kafka) every record carries the wall-clock time it is
published at: a transaction's ``timestamp`` and a label's ``reported_at`` are "now", so latency,
lateness and the event-time windows of the worker make sense against the real clock. Simulated time
still decides WHEN a label is due: with pacing, simulated time is compressed onto wall time, so a
label due 7 simulated days after its transaction is published 7 simulated days later in the
compressed clock (about 7.5 minutes at the default 200 tx/s and 5,000 cards). With
``clock="sim"`` records keep their simulated timestamps (deterministic; for benchmarks and replays
of a known history).

Pacing. ``rate`` transactions per wall second, evenly spaced (labels go as the stream reaches them);
or ``time_scale`` wall seconds per simulated day (``300``: one day every five minutes), which keeps
the daily rhythm (quiet nights) and gives ``expected_per_day / time_scale`` transactions a second;
or ``rate=0``: flat out. Under ``rate`` pacing one simulated day lasts about
``expected_per_day / rate`` wall seconds (:func:`day_seconds`).

Transaction ids: with ``clock="now"`` and no ``id_prefix`` in the configuration, a prefix unique to
the run (``s<hex wall time>-``) is added, so a second demo run is not taken for a replay of the first
by the worker's per-id idempotence; with ``clock="sim"`` ids stay deterministic.

Files (:func:`write_simulation`): transactions as CSV (gzip allowed) or Parquet with the wire
columns plus the truth (``is_fraud``, ``scenario``), and a labels file (every label, including those
due after the last transaction), written one simulated day at a time.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fraudstream.errors import ConfigError, DataError
from fraudstream.settings import Settings
from stream.simulator import SCENARIOS, SimConfig, Simulator

__all__ = [
    "SimStats",
    "day_seconds",
    "labels_path_for",
    "run_simulation",
    "simulation_config",
    "write_simulation",
]


@dataclass
class SimStats:
    """Counts of one simulation run; updated in place while it runs (safe to read from a thread)."""

    transactions: int = 0
    labels: int = 0
    frauds: int = 0
    fraud_labels: int = 0
    by_scenario: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SCENARIOS, 0))
    started_at: float = field(default_factory=time.time)
    elapsed_s: float = 0.0
    first_event_time: float | None = None  # simulated, epoch seconds
    last_event_time: float | None = None
    day_seconds: float | None = None  # wall seconds per simulated day (None: flat out)
    done: bool = False
    stopped: bool = False

    @property
    def rate(self) -> float:
        """Transactions per wall second so far."""
        elapsed = self.elapsed_s or (time.time() - self.started_at)
        return self.transactions / elapsed if elapsed > 0 else 0.0

    @property
    def sim_days(self) -> float:
        if self.first_event_time is None or self.last_event_time is None:
            return 0.0
        return (self.last_event_time - self.first_event_time) / 86400.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rate"] = round(self.rate, 1)
        out["sim_days"] = round(self.sim_days, 3)
        return out


def simulation_config(settings: Settings, **overrides: Any) -> SimConfig:
    """The default :class:`SimConfig` for ``settings`` (seed, currencies), with ``overrides``."""
    values: dict[str, Any] = {
        "seed": settings.seed,
        "base_currency": settings.base_currency,
        "currency_rates": dict(settings.currency_rates),
    }
    values.update(overrides)
    return SimConfig(**values)


def day_seconds(sim: Simulator, rate: float) -> float | None:
    """Wall seconds one simulated day lasts when transactions are paced at ``rate`` a second."""
    return sim.expected_per_day() / rate if rate > 0 else None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def run_simulation(
    settings: Settings,
    rate: float | None = None,
    stop_event: threading.Event | None = None,
    *,
    config: SimConfig | None = None,
    time_scale: float | None = None,
    clock: Literal["now", "sim"] = "now",
    count: int | None = None,
    days: float | None = None,
    flush_labels: bool = False,
    bootstrap: str | None = None,
    stats: SimStats | None = None,
    create_topics: bool = True,
    on_start: Callable[[SimStats], None] | None = None,
    on_progress: Callable[[SimStats], None] | None = None,
    progress_every: float = 2.0,
) -> SimStats:
    """Stream a simulation into Kafka until ``count`` transactions, ``days``, or ``stop_event``.

    ``rate``: transactions per wall second (``None``: ``settings.run_rate``; ``0``: flat out);
    ``time_scale``: wall seconds per simulated day instead of ``rate``. Blocks; run it in a thread
    with a ``stop_event`` to stop it. Returns ``stats`` (updated in place as it runs). Records
    sent before a stop are flushed to Kafka before it returns.
    """
    from stream.publisher import Pacer, Publisher
    from stream.topics import ensure_topics, resolve_bootstrap

    if rate is not None and time_scale is not None:
        raise ConfigError("pace by --rate or by --time-scale, not both")
    if time_scale is not None and time_scale <= 0:
        raise ConfigError(f"time scale must be > 0 seconds per simulated day, not {time_scale}")
    if rate is None and time_scale is None:
        rate = settings.run_rate
    if rate is not None and rate < 0:
        raise ConfigError(f"rate must be >= 0 transactions a second, not {rate}")
    if clock not in ("now", "sim"):
        raise ConfigError(f"clock must be 'now' or 'sim', not {clock!r}")
    config = config or simulation_config(settings)
    if clock == "now" and not config.id_prefix:
        config = replace(config, id_prefix=f"s{int(time.time() * 1000):x}-")
    stop_event = stop_event or threading.Event()
    stats = stats or SimStats()
    bootstrap = bootstrap or resolve_bootstrap(settings)
    if create_topics:
        ensure_topics(settings, bootstrap)
    sim = Simulator(config)
    pacer = Pacer(rate=rate, speed=86400.0 / time_scale if time_scale else None,
                  stop_event=stop_event)
    stats.day_seconds = time_scale if time_scale else day_seconds(sim, rate or 0.0)
    publisher = Publisher(settings, bootstrap, client_id="fraudstream-simulator")
    if on_start is not None:
        on_start(stats)
    names = SCENARIOS
    now = clock == "now"
    started = time.monotonic()
    stats.started_at = time.time()
    next_report = started + progress_every
    try:
        for event in sim.events(count=count, days=days, flush_labels=flush_labels):
            is_tx = event.kind == "transaction"
            if not pacer.wait(event.time, is_tx):
                stats.stopped = True
                break
            record = event.record
            if is_tx:
                if now:
                    record["timestamp"] = _now_iso()
                publisher.send_transaction(event.key, record)
                stats.transactions += 1
                if event.scenario:
                    stats.frauds += 1
                stats.by_scenario[names[event.scenario]] += 1
            else:
                if now:
                    record["reported_at"] = _now_iso()
                publisher.send_label(event.key, record)
                stats.labels += 1
                if event.scenario:
                    stats.fraud_labels += 1
            if stats.first_event_time is None:
                stats.first_event_time = event.time
            stats.last_event_time = event.time
            if on_progress is not None and stats.transactions % 64 == 0:
                t = time.monotonic()
                if t >= next_report:
                    stats.elapsed_s = t - started
                    on_progress(stats)
                    next_report = t + progress_every
        publisher.flush()
    finally:
        try:
            publisher.close()
        finally:
            stats.elapsed_s = time.monotonic() - started
            stats.done = True
    return stats


def labels_path_for(path: str | Path) -> Path:
    """``x.csv`` -> ``x.labels.csv``; ``x.csv.gz`` -> ``x.labels.csv.gz``; same for Parquet."""
    path = Path(path)
    name = path.name
    for ext in (".csv.gz", ".csv", ".parquet", ".pq"):
        if name.lower().endswith(ext):
            return path.with_name(name[: -len(ext)] + ".labels" + name[-len(ext):])
    raise DataError(f"{path.name}: write .csv, .csv.gz or .parquet")


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".csv.gz"):
        return "csv.gz"
    if name.endswith(".csv"):
        return "csv"
    raise DataError(f"{path.name}: write .csv, .csv.gz or .parquet")


class _FrameWriter:
    """Appends DataFrames to one CSV (gzip allowed) or Parquet file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = _format(path)
        self.handle: Any = None
        self.schema: Any = None
        self.rows = 0

    def write(self, frame: Any) -> None:
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self.handle is None:
                self.schema = pa.Schema.from_pandas(frame, preserve_index=False)
                self.schema = pa.schema(
                    [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in self.schema]
                )
                self.handle = pq.ParquetWriter(self.path, self.schema)
            self.handle.write_table(pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False))
        else:
            first = self.handle is None
            if first:
                opener: Any = gzip.open if self.kind == "csv.gz" else open
                self.handle = opener(self.path, "wt", newline="", encoding="utf-8")
            frame.to_csv(self.handle, header=first, index=False,
                         date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        self.rows += len(frame)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def write_simulation(
    config: SimConfig,
    path: str | Path,
    labels_path: str | Path | None = None,
    *,
    count: int | None = None,
    days: float | None = None,
    on_progress: Callable[[SimStats], None] | None = None,
) -> SimStats:
    """Write ``count`` transactions or ``days`` of simulation to ``path`` and its labels file."""
    if count is None and days is None:
        raise ConfigError("give a number of transactions (--count) or of days (--days)")
    path = Path(path)
    labels_path = Path(labels_path) if labels_path else labels_path_for(path)
    if path.resolve() == labels_path.resolve():
        raise ConfigError("the transactions and labels files must differ")
    for p in (path, labels_path):
        _format(p)
        if not p.parent.exists():
            raise DataError(f"no such folder: {p.parent}")
    sim = Simulator(config)
    stats = SimStats()
    started = time.monotonic()
    tx_out, label_out = _FrameWriter(path), _FrameWriter(labels_path)
    try:
        for tx, labels in sim.iter_frames(count=count, days=days, flush_labels=True):
            if len(tx) or tx_out.handle is None:
                tx_out.write(tx)
            if len(labels) or label_out.handle is None:
                label_out.write(labels)
            stats.transactions += len(tx)
            stats.labels += len(labels)
            stats.frauds += int(tx["is_fraud"].sum())
            stats.fraud_labels += int(labels["is_fraud"].sum())
            for name, n in tx["scenario"].value_counts().items():
                stats.by_scenario[str(name)] += int(n)
            if len(tx):
                if stats.first_event_time is None:
                    stats.first_event_time = tx["timestamp"].iloc[0].timestamp()
                stats.last_event_time = tx["timestamp"].iloc[-1].timestamp()
            if on_progress is not None:
                stats.elapsed_s = time.monotonic() - started
                on_progress(stats)
    finally:
        tx_out.close()
        label_out.close()
    stats.elapsed_s = time.monotonic() - started
    stats.done = True
    return stats
