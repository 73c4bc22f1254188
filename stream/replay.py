"""Replay a historical file into Kafka in event-time order, with each label after its delay.

``fraudstream replay PATH --preset handbook --speed 100 --label-delay 7d`` reads the file through a
column mapping (a preset, or ``--time/--label/--id/--card/--terminal/--amount``), and publishes:

* every row as a :class:`~stream.schemas.Transaction` JSON to ``transactions`` (key: card id), in
  event-time order, ties by transaction id (the order of :func:`features.columns.sort_events`, which
  the offline feature twin uses too);
* for every labelled row a :class:`~stream.schemas.Label` JSON to ``labels`` (key: transaction id)
  with ``reported_at`` = transaction time + ``label_delay`` and source ``replay``, interleaved at
  that event time (a label due at t goes before a transaction at t).

Pacing: ``speed`` 100 plays 100 seconds of event time per wall second; ``speed`` 0 is flat out.

Invalid values. A row whose time cannot be read has no place in event-time order: it is skipped and
reported (count and first row numbers). Every other row is published as it is, even with a
negative or non-numeric amount or a missing card id: the worker judges it with the same validation
as live traffic and dead-letters it with a reason. A row whose label is empty is published without
a label; a label that is not 0/1 is published as it is (it lands in ``labels.dlq``).

Resume. Progress is checkpointed in ``<home>/replay/<key>.json``, keyed by the file's resolved path,
the two topics and the Kafka bootstrap; it records the options and the file's size and mtime, and a
replay with other options or of a changed file refuses to resume (``--restart`` starts over). A
checkpoint is written only after the producer flushed, i.e. after Kafka acknowledged every record
before it, every ``checkpoint_every`` events or ``checkpoint_seconds``, and on a clean stop
(Ctrl-C, ``stop_event``). Guarantee: nothing before the checkpoint is lost; after a crash
(SIGKILL, power loss) the events between the last checkpoint and the crash may be published again on
resume (at-least-once, at most ``checkpoint_every`` events or ``checkpoint_seconds`` of them). The
worker is idempotent per transaction id, so re-published transactions change nothing; a
re-published label reaches the learner twice unless it deduplicates labels too.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.columns import CANONICAL, PRESETS, ColumnMapping, read_raw, sort_events
from fraudstream.errors import ConfigError, DataError
from fraudstream.files import write_atomic
from fraudstream.settings import Settings, parse_duration
from stream.simulator import SIMULATOR_COLUMNS

__all__ = [
    "SIMULATOR",
    "ReplayPlan",
    "ReplayReport",
    "load_plan",
    "mapping_for",
    "progress_path",
    "replay",
]

#: The column mapping of ``fraudstream simulate --out`` files (``--preset simulator``).
SIMULATOR = ColumnMapping(columns=dict(SIMULATOR_COLUMNS), drop=frozenset({"scenario"}),
                          name="simulator", label_delay=None)

_OPTIONAL_TEXT = ("currency", "channel", "country", "city", "merchant_category")


def mapping_for(preset: str | None = None, **options: str | None) -> ColumnMapping:
    """A preset's mapping (``handbook``, ``simulator``), or one from the column options."""
    presets = {**PRESETS, "simulator": SIMULATOR}
    given = {k: v for k, v in options.items() if v}
    if preset:
        if given:
            raise ConfigError(f"give --preset or column options, not both (got {sorted(given)})")
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(sorted(presets))}")
        return presets[preset]
    if not given.get("time"):
        raise ConfigError("give --preset NAME or at least --time COL (and --card, --amount, --label)")
    return ColumnMapping.from_options(**given)  # type: ignore[arg-type]


@dataclass
class ReplayPlan:
    """A file ready to publish: canonical rows in event order and the merged event sequence.

    Event ``k`` is transaction row ``order[k]`` when ``order[k] >= 0``, else the label of row
    ``-order[k] - 1``; ``times[k]`` is its event time (epoch seconds).
    """

    frame: pd.DataFrame
    times: np.ndarray
    order: np.ndarray
    extras: list[str]
    invalid_time_rows: int = 0
    invalid_examples: list[int] = field(default_factory=list)
    unlabelled_rows: int = 0
    duplicate_ids: int = 0

    @property
    def total(self) -> int:
        return len(self.order)

    @property
    def n_transactions(self) -> int:
        return len(self.frame)


@dataclass
class ReplayReport:
    """What one replay run did."""

    path: str
    transactions: int = 0
    labels: int = 0
    skipped: int = 0  # events published by an earlier run (resume)
    total_events: int = 0
    published_total: int = 0  # events published by all runs so far
    invalid_time_rows: int = 0
    unlabelled_rows: int = 0
    duplicate_ids: int = 0
    elapsed_s: float = 0.0
    resumed: bool = False
    complete: bool = False
    progress_file: str = ""

    @property
    def rate(self) -> float:
        n = self.transactions + self.labels
        return n / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rate"] = round(self.rate, 1)
        return out


# -- loading ------------------------------------------------------------------------------------
def _ids(s: pd.Series) -> pd.Series:
    """Ids as text; integral floats lose their ``.0``; missing stays None."""
    if pd.api.types.is_integer_dtype(s):
        return s.astype(str).astype(object)
    if pd.api.types.is_float_dtype(s):
        whole = s.notna() & (s == s.round())
        out = s.astype(object)
        out[whole] = s[whole].astype("int64").astype(str)
        out[~whole & s.notna()] = s[~whole & s.notna()].astype(str)
        return out.where(s.notna(), None)
    return s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v).strip())


def _times(s: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s):
        unit = "ms" if s.abs().max() >= 1e11 else "s"
        return pd.to_datetime(s, unit=unit, utc=True, errors="coerce")
    return pd.to_datetime(s, utc=True, format="mixed", errors="coerce")


def load_plan(
    path: str | Path, mapping: ColumnMapping, label_delay_s: float, limit: int | None = None,
    with_labels: bool = True,
) -> ReplayPlan:
    """Read ``path`` (the first ``limit`` rows) leniently and lay out its events in time order."""
    if label_delay_s <= 0:
        raise ConfigError(f"label delay must be > 0 (a label comes after its transaction), not {label_delay_s}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1, not {limit}")
    for needed in ("card_id", "amount"):
        if mapping.source(needed) is None:
            raise DataError(
                f"replay needs a {needed.replace('_id', '')} column: a transaction on the wire has a "
                f"{needed} (map it with --{needed.replace('_id', '')} COL)"
            )
    path = Path(path)
    raw = read_raw(path, limit)
    missing = [src for src in mapping.columns.values() if src not in raw.columns]
    if missing:
        raise DataError(f"{path}: column(s) {missing} not found; it has {list(raw.columns)[:20]}")
    out = pd.DataFrame(index=raw.index)
    out["timestamp"] = _times(raw[mapping.columns["timestamp"]]).astype("datetime64[ns, UTC]")
    bad = out["timestamp"].isna()
    invalid = int(bad.sum())
    examples = [int(i) + 2 for i in raw.index[bad][:3]]  # file line numbers (header = line 1)
    src_id = mapping.source("transaction_id")
    out["transaction_id"] = _ids(raw[src_id]) if src_id else raw.index.astype(str).to_series(index=raw.index)
    for col in ("card_id", "terminal_id"):
        src = mapping.source(col)
        if src:
            out[col] = _ids(raw[src])
    amount = raw[mapping.columns["amount"]]
    numeric = pd.to_numeric(amount, errors="coerce")
    out["amount"] = numeric.astype(object).where(numeric.notna(), amount.astype(object))
    out["amount"] = out["amount"].where(amount.notna(), None)
    for col in (*_OPTIONAL_TEXT, "latitude", "longitude"):
        src = mapping.source(col)
        if src:
            out[col] = raw[src].astype(object).where(raw[src].notna(), None)
    src_label = mapping.source("is_fraud")
    if src_label and with_labels:
        lab = pd.to_numeric(raw[src_label], errors="coerce")
        out["is_fraud"] = lab.astype(object).where(lab.notna(), raw[src_label].astype(object))
        out["is_fraud"] = out["is_fraud"].where(raw[src_label].notna(), None)
    used = set(mapping.columns.values()) | set(mapping.drop)
    extras = [c for c in raw.columns if c not in used and c not in CANONICAL
              and pd.api.types.is_numeric_dtype(raw[c]) and not pd.api.types.is_bool_dtype(raw[c])]
    for col in extras:
        out[col] = raw[col].astype(float)
    out = out[~bad].reset_index(drop=True)
    # the order of sort_events, computed on the numeric ids when the file has them (much faster)
    ids = raw[src_id][~bad].reset_index(drop=True) if src_id else out["transaction_id"]
    if not pd.api.types.is_numeric_dtype(ids):
        ids = out["transaction_id"]
    keys = pd.DataFrame({"timestamp": out["timestamp"], "transaction_id": ids,
                         "_row": np.arange(len(out))})
    out = out.iloc[sort_events(keys)["_row"].to_numpy()].reset_index(drop=True)
    dupes = int(out["transaction_id"].duplicated().sum())

    t = _ns(out["timestamp"]) / 1e9
    if "is_fraud" in out:
        labelled = np.flatnonzero(out["is_fraud"].notna().to_numpy())
    else:
        labelled = np.empty(0, dtype=np.int64)
    due = t[labelled] + label_delay_s
    times = np.concatenate([due, t])
    ids = np.concatenate([-labelled - 1, np.arange(len(t))])
    # labels first at equal times; among labels, transaction order; among transactions, row order
    kind = np.concatenate([np.zeros(len(due), np.int8), np.ones(len(t), np.int8)])
    seq = np.concatenate([labelled, np.arange(len(t))])
    order = np.lexsort((seq, kind, times))
    return ReplayPlan(
        frame=out, times=times[order], order=ids[order], extras=extras,
        invalid_time_rows=invalid, invalid_examples=examples,
        unlabelled_rows=len(out) - len(labelled), duplicate_ids=dupes,
    )


def _ns(s: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch of a ``datetime64[ns, UTC]`` column."""
    return s.astype("int64").to_numpy()


def _iso(ns: np.ndarray) -> list[str]:
    """ISO-8601 UTC text with milliseconds for nanoseconds since the epoch."""
    ms = (ns // 1_000_000).astype("datetime64[ms]")
    return np.datetime_as_string(ms, unit="ms", timezone="UTC").tolist()


def _clean(v: Any) -> Any:
    """A cell as JSON: NaN -> None; numpy scalars -> Python."""
    if v is None:
        return None
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _records(plan: ReplayPlan, rows: np.ndarray, delay_s: float) -> tuple[list, list]:
    """``(tx_records, label_records)`` for the frame rows ``rows`` (index-aligned)."""
    f = plan.frame.iloc[rows]
    ns = _ns(f["timestamp"])
    stamps = _iso(ns)
    base_cols = [c for c in ("card_id", "terminal_id", "amount", *_OPTIONAL_TEXT,
                             "latitude", "longitude") if c in f]
    cols = {c: [_clean(v) for v in f[c].tolist()] for c in base_cols}
    extra_cols = {c: f[c].tolist() for c in plan.extras}
    ids = f["transaction_id"].tolist()
    txs = []
    for i, tid in enumerate(ids):
        rec: dict[str, Any] = {"transaction_id": tid, "timestamp": stamps[i]}
        for c, values in cols.items():
            v = values[i]
            if v is not None or c in ("card_id", "amount"):
                rec[c] = v
        for c, values in extra_cols.items():
            v = values[i]
            if v == v:  # not NaN
                rec[c] = v
        txs.append(rec)
    labels = []
    if "is_fraud" in f:
        due_iso = _iso(ns + int(round(delay_s * 1e9)))
        for i, (tid, y) in enumerate(zip(ids, f["is_fraud"].tolist(), strict=True)):
            y = _clean(y)
            if isinstance(y, float) and y.is_integer():
                y = int(y)
            labels.append({"transaction_id": tid, "is_fraud": y, "reported_at": due_iso[i],
                           "source": "replay"})
    return txs, labels


# -- progress ------------------------------------------------------------------------------------
def progress_path(settings: Settings, path: str | Path, bootstrap: str) -> Path:
    """The progress file of replaying ``path`` into this configuration's topics at ``bootstrap``."""
    key = json.dumps([str(Path(path).resolve()), settings.topic("transactions"),
                      settings.topic("labels"), bootstrap])
    return settings.home / "replay" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def _fingerprint(path: Path, mapping: ColumnMapping, delay_s: float, limit: int | None,
                 with_labels: bool) -> dict[str, Any]:
    st = path.stat()
    return {
        "size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "mapping": dict(sorted(mapping.columns.items())), "drop": sorted(mapping.drop),
        "label_delay_s": delay_s, "limit": limit, "labels": with_labels,
    }


def _save(file: Path, state: dict[str, Any]) -> None:
    write_atomic(file, json.dumps(state, indent=1))


def _resume_point(file: Path, fingerprint: dict[str, Any], restart: bool) -> tuple[int, bool]:
    if restart or not file.exists():
        return 0, False
    try:
        state = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"progress file {file} is unreadable ({exc}); use --restart") from exc
    saved = state.get("fingerprint", {})
    diff = sorted(k for k in fingerprint if saved.get(k) != fingerprint[k])
    if diff:
        what = ", ".join(f"{k}: {saved.get(k)!r} then, {fingerprint[k]!r} now" for k in diff[:2])
        raise ConfigError(
            f"an earlier replay of this file into these topics used other options or another "
            f"version of the file ({what}); use --restart to publish it again from the start"
        )
    return int(state.get("published", 0)), True


# -- the replay ----------------------------------------------------------------------------------
def replay(
    settings: Settings,
    path: str | Path,
    mapping: ColumnMapping,
    *,
    speed: float = 100.0,
    label_delay: str | float | None = None,
    limit: int | None = None,
    labels: bool = True,
    bootstrap: str | None = None,
    restart: bool = False,
    stop_event: threading.Event | None = None,
    progress: bool = True,
    checkpoint_every: int = 10_000,
    checkpoint_seconds: float = 2.0,
    stop_after: int | None = None,
    create_topics: bool = True,
    on_plan: Callable[[ReplayPlan, int], None] | None = None,
) -> ReplayReport:
    """Publish ``path`` to Kafka in event-time order, resuming an earlier run (see the module doc).

    ``label_delay``: ``7d``, seconds, or None for the mapping's own (else 7 days). ``stop_after``:
    stop cleanly after that many events of this run (tests; Ctrl-C and ``stop_event`` do the same).
    """
    from stream.publisher import Pacer, Publisher
    from stream.topics import ensure_topics, resolve_bootstrap

    if speed < 0:
        raise ConfigError(f"speed must be >= 0 (0: flat out), not {speed}")
    if checkpoint_every < 1:
        raise ConfigError("checkpoint_every must be >= 1")
    try:
        delay_s = parse_duration(label_delay if label_delay is not None else mapping.label_delay or "7d")
    except ValueError as exc:
        raise ConfigError(f"label delay: {exc}") from exc
    path = Path(path)
    started = time.monotonic()
    plan = load_plan(path, mapping, delay_s, limit, with_labels=labels)
    bootstrap = bootstrap or resolve_bootstrap(settings)
    file = progress_path(settings, path, bootstrap)
    fingerprint = _fingerprint(path, mapping, delay_s, limit, labels)
    start, resumed = _resume_point(file, fingerprint, restart)
    report = ReplayReport(
        path=str(path), skipped=start, total_events=plan.total, published_total=start,
        invalid_time_rows=plan.invalid_time_rows, unlabelled_rows=plan.unlabelled_rows,
        duplicate_ids=plan.duplicate_ids, resumed=resumed, progress_file=str(file),
    )
    if on_plan is not None:
        on_plan(plan, start)
    state = {"path": str(path.resolve()), "transactions_topic": settings.topic("transactions"),
             "labels_topic": settings.topic("labels"), "bootstrap": bootstrap,
             "fingerprint": fingerprint, "total": plan.total, "published": start}
    if start >= plan.total:
        report.complete = True
        report.elapsed_s = time.monotonic() - started
        return report
    if create_topics:
        ensure_topics(settings, bootstrap)
    stop_event = stop_event or threading.Event()
    pacer = Pacer(speed=speed or None, stop_event=stop_event)
    publisher = Publisher(settings, bootstrap, client_id="fraudstream-replay")
    bar = _Bar(plan.total, start, str(path.name)) if progress else None
    done = start
    try:
        chunk = 4096
        pos = start
        last_cp, since_cp = time.monotonic(), 0
        stop = False
        while pos < plan.total and not stop:
            end = min(plan.total, pos + chunk)
            ids = plan.order[pos:end]
            rows = np.unique(np.where(ids >= 0, ids, -ids - 1))
            txs, labs = _records(plan, rows, delay_s)
            where = {r: i for i, r in enumerate(rows.tolist())}
            for k, ident, t in zip(range(pos, end), ids.tolist(), plan.times[pos:end].tolist(),
                                   strict=True):
                if stop_after is not None and k - start >= stop_after:
                    stop = True
                    break
                is_tx = ident >= 0
                if not pacer.wait(t, True):
                    stop = True
                    break
                if is_tx:
                    rec = txs[where[ident]]
                    publisher.send_transaction(rec.get("card_id"), rec)
                    report.transactions += 1
                else:
                    rec = labs[where[-ident - 1]]
                    publisher.send_label(rec["transaction_id"], rec)
                    report.labels += 1
                pos = k + 1
                since_cp += 1
                if since_cp >= checkpoint_every or (since_cp & 255 == 0
                                                   and time.monotonic() - last_cp >= checkpoint_seconds):
                    publisher.flush()
                    done = pos
                    _save(file, {**state, "published": done, "complete": False,
                                 "updated_at": datetime.now(UTC).isoformat()})
                    last_cp, since_cp = time.monotonic(), 0
                    report.elapsed_s = last_cp - started
                    if bar:
                        bar.update(done, report)
        publisher.flush()
        done = pos
        _save(file, {**state, "published": done, "complete": done >= plan.total,
                     "updated_at": datetime.now(UTC).isoformat()})
        if bar:
            bar.update(done, report)
    finally:
        try:
            publisher.close()
        finally:
            if bar:
                bar.close()
            report.elapsed_s = time.monotonic() - started
            report.published_total = done
            report.complete = done >= plan.total
    return report


class _Bar:
    """A rich progress bar on stderr (events published of the total)."""

    def __init__(self, total: int, start: int, name: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("replay"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.task = self.progress.add_task(name, total=total, completed=start, detail="")
        self.progress.start()

    def update(self, done: int, report: ReplayReport) -> None:
        self.progress.update(self.task, completed=done, detail=f"{report.rate:,.0f} msg/s")

    def close(self) -> None:
        self.progress.stop()
