"""Parity between the online store and the offline twin: replay a frame through Redis, compare.

The replay merges two streams in event-time order: the frame's transactions (ties by transaction
id) and their labels, each released at its ``reported_at`` (by default ``is_fraud`` exactly
``label_delay`` after its transaction). A label released at the same time as a transaction is
applied first; that is the offline twin's rule too (a label counts when ``reported_at <= t``).
Consecutive events of one kind go to Redis in batches of ``batch_size`` (one round trip each).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from features.definitions import LABEL
from features.offline import event_order, timestamps_us
from features.store import OnlineFeatureStore
from fraudstream.settings import parse_duration
from stream.schemas import Label, Transaction

__all__ = ["ParityReport", "compare", "replay_online", "transactions_of"]

_TX_FIELDS = ("card_id", "terminal_id", "amount", "currency", "merchant_category", "channel",
              "latitude", "longitude", "country", "city")


def transactions_of(df: pd.DataFrame) -> list[Transaction]:
    """The canonical frame's rows as wire Transactions (in the frame's row order)."""
    cols = [c for c in _TX_FIELDS if c in df.columns]
    out = []
    stamps = df["timestamp"].tolist()
    ids = df["transaction_id"].astype(str).tolist()
    values = {c: df[c].tolist() for c in cols}
    for i in range(len(df)):
        rec: dict[str, Any] = {"transaction_id": ids[i], "timestamp": stamps[i].to_pydatetime()}
        for c in cols:
            v = values[c][i]
            if v is not None and not (isinstance(v, float) and np.isnan(v)):
                rec[c] = v
        out.append(Transaction.model_validate(rec))
    return out


async def replay_online(
    store: OnlineFeatureStore,
    df: pd.DataFrame,
    *,
    labels: pd.DataFrame | None = None,
    label_delay: float | str | None = None,
    batch_size: int = 100,
) -> pd.DataFrame:
    """Replay ``df`` (and its labels) through ``store``; the features of each row, in row order,
    with a ``status`` column (``attrs["labels_applied"]``: labels released up to the last
    transaction; later ones could change nothing and are not sent)."""
    n = len(df)
    ts = timestamps_us(df["timestamp"])
    txs = transactions_of(df)
    events: list[tuple[int, int, int, Any]] = []  # (time, 0 label | 1 tx, order, payload)
    order = event_order(df["transaction_id"], ts)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    for i in range(n):
        events.append((int(ts[i]), 1, int(rank[i]), i))
    if labels is None and LABEL in df.columns and store.plan.label_groups:
        delay = store.feature_set.label_delay_s if label_delay is None else parse_duration(label_delay)
        d_us = int(round(delay * 1e6))
        for i, f in enumerate(df[LABEL].tolist()):
            if f == f:  # not NaN
                events.append((int(ts[i]) + d_us, 0, int(rank[i]), (txs[i].transaction_id, bool(f))))
    elif labels is not None:
        rep = timestamps_us(labels["reported_at"])
        for j, (tid, f) in enumerate(zip(labels["transaction_id"].astype(str), labels[LABEL],
                                         strict=True)):
            events.append((int(rep[j]), 0, j, (tid, bool(f))))
    last = int(ts.max()) if n else 0
    events = [e for e in events if e[1] == 1 or e[0] <= last]  # later labels change nothing
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    features: list[dict[str, float | None] | None] = [None] * n
    status: list[str] = [""] * n
    i = 0
    while i < len(events):
        kind = events[i][1]
        j = i
        while j < len(events) and events[j][1] == kind and j - i < batch_size:
            j += 1
        chunk = events[i:j]
        if kind == 1:
            results = await store.process([txs[e[3]] for e in chunk])
            for e, r in zip(chunk, results, strict=True):
                features[e[3]], status[e[3]] = r.features, r.status
        else:
            await store.apply_labels([
                Label(transaction_id=tid, is_fraud=f,
                      reported_at=datetime.fromtimestamp(e[0] / 1e6, tz=UTC))
                for e in chunk for tid, f in [e[3]]])
        i = j
    names = store.feature_set.feature_names()
    out = pd.DataFrame([{k: (np.nan if (f or {}).get(k) is None else f[k]) for k in names}  # type: ignore[index]
                        for f in features], index=df.index, columns=names, dtype=float)
    out.insert(0, "transaction_id", df["transaction_id"].to_numpy())
    out["status"] = status
    out.attrs["labels_applied"] = sum(1 for e in events if e[1] == 0)
    return out


@dataclass
class ParityReport:
    """Per-feature maximum absolute difference and mismatch counts (NaN must match NaN)."""

    rows: int
    features: int
    tolerance: float
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    mismatches: dict[str, int] = field(default_factory=dict)
    non_trivial: dict[str, int] = field(default_factory=dict)  # rows where the value is not 0/NaN

    @property
    def ok(self) -> bool:
        return not any(self.mismatches.values())

    def summary(self) -> str:
        bad = {k: v for k, v in self.mismatches.items() if v}
        worst = max(self.max_abs_diff.values(), default=0.0)
        if not bad:
            return (f"parity OK: {self.rows} rows x {self.features} features, "
                    f"max |online - offline| = {worst:.3g}")
        return f"parity FAILED on {len(bad)} feature(s): {bad}"


def compare(online: pd.DataFrame, offline: pd.DataFrame, tolerance: float = 1e-9) -> ParityReport:
    """Compare two feature frames aligned by row (same transaction ids, same columns)."""
    if not np.array_equal(online["transaction_id"].astype(str).to_numpy(),
                          offline["transaction_id"].astype(str).to_numpy()):
        raise ValueError("the frames are not aligned on transaction_id")
    names = [c for c in offline.columns if c != "transaction_id"]
    rep = ParityReport(rows=len(offline), features=len(names), tolerance=tolerance)
    for c in names:
        a = online[c].to_numpy(dtype=float)
        b = offline[c].to_numpy(dtype=float)
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        both = ~nan_a & ~nan_b
        diff = np.abs(a[both] - b[both])
        rep.max_abs_diff[c] = float(diff.max()) if diff.size else 0.0
        rep.mismatches[c] = int((nan_a != nan_b).sum() + (diff > tolerance).sum())
        rep.non_trivial[c] = int((both & (b != 0)).sum())
    return rep
