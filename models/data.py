"""Labelled training data: a historical file, its features (the offline twin) and its labels.

:func:`load_labelled` reads a file through its column mapping (:func:`features.columns.read_frame`)
and computes the features every model of the training commands sees, with the same definitions the
worker computes online (:func:`features.offline.compute_features`, point-in-time correct; a
label-based feature sees a label only ``label_delay`` after its transaction):

- the ``handbook`` feature set (its 15 baseline features) for the ``handbook`` preset;
- the ``default`` feature set (what the worker computes) for any other file with a card column;
- for a file without a card column (only a time column, numeric columns and a label): the
  per-transaction features of the ``default`` set (amount when present, hour of day, weekend,
  night); card and terminal features are skipped, and ``notes`` says so;
- in every case, the file's extra numeric columns (neither mapped nor dropped) as features too,
  under their own names, as the worker passes a transaction's extra attributes to the model.

A named ``feature_set`` overrides the choice.

>>> import pandas as pd
>>> frame = pd.DataFrame({
...     "transaction_id": ["1", "2", "3"], "is_fraud": [0, 1, 0], "v1": [0.5, 3.0, 0.1],
...     "timestamp": pd.to_datetime(["2024-01-01 01:00", "2024-01-01 13:00", "2024-01-06 02:00"],
...                                 utc=True)})
>>> data = labelled_from_frame(frame, label_delay="1d")
>>> data.feature_set, data.features
('transaction', ['hour_sin', 'hour_cos', 'is_weekend', 'is_night', 'v1'])
>>> data.has_card, data.n, data.n_fraud
(False, 3, 1)
>>> data.notes[0]
'no card column: card and terminal features and card precision@k are skipped'
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.columns import CANONICAL, ColumnMapping, read_frame
from features.definitions import FeatureSet, load_feature_set
from features.offline import compute_features
from fraudstream.errors import ConfigError, DataError
from fraudstream.progress import Tracker
from fraudstream.settings import parse_duration

__all__ = ["LabelledData", "choose_feature_set", "labelled_from_frame", "load_labelled"]

#: Canonical columns that are never features themselves.
NOT_FEATURES = set(CANONICAL) | {"scenario"}


@dataclass
class LabelledData:
    """Canonical rows in event-time order, their features and labels (see the module doc)."""

    frame: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray
    t: np.ndarray  # event time, epoch seconds
    feature_set: str
    features: list[str]
    label_delay_s: float
    notes: list[str] = field(default_factory=list)
    source: str = ""
    seconds: float = 0.0

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def n_fraud(self) -> int:
        return int(self.y.sum())

    @property
    def has_card(self) -> bool:
        return "card_id" in self.frame.columns and bool(self.frame["card_id"].notna().any())

    @property
    def cards(self) -> np.ndarray | None:
        return self.frame["card_id"].to_numpy(dtype=object) if self.has_card else None

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "rows": self.n, "frauds": self.n_fraud,
                "feature_set": self.feature_set, "features": list(self.features),
                "has_card": self.has_card, "label_delay_s": self.label_delay_s,
                "notes": list(self.notes), "prepare_seconds": round(self.seconds, 2)}


def _transaction_only(has_amount: bool) -> FeatureSet:
    base = load_feature_set("default")
    defs = tuple(d for d in base.definitions
                 if not d.needs() and not d.needs_previous()
                 and (has_amount or not d.needs_amount()))
    return FeatureSet("transaction", defs, "per-transaction features of the default set")


def choose_feature_set(mapping_name: str, has_card: bool, has_amount: bool,
                       name: str | None = None) -> tuple[FeatureSet, list[str]]:
    """The feature set for a file (see the module doc) and notes on what was skipped."""
    notes: list[str] = []
    if not has_card:
        notes.append("no card column: card and terminal features and card precision@k are skipped")
        if name not in (None, "transaction"):
            raise ConfigError(f"feature set {name!r} needs a card column; this file has none "
                              "(leave out --features to use the per-transaction features)")
        return _transaction_only(has_amount), notes
    if name == "transaction":
        return _transaction_only(has_amount), notes
    if name is None:
        name = "handbook" if mapping_name == "handbook" else "default"
    return load_feature_set(name), notes


def labelled_from_frame(
    frame: pd.DataFrame,
    *,
    mapping_name: str = "custom",
    feature_set: str | None = None,
    label_delay: str | float = "7d",
    base_currency: str = "EUR",
    currency_rates: dict[str, float] | None = None,
    tracker: Tracker | None = None,
    source: str = "",
) -> LabelledData:
    """Features and labels of a canonical frame (see :mod:`features.columns`), in event order."""
    started = time.perf_counter()
    if "is_fraud" not in frame.columns:
        raise DataError("no label column: training and evaluation need one (--label COL)")
    if not len(frame):
        raise DataError("no rows to train or evaluate on")
    frame = frame.reset_index(drop=True)
    delay_s = parse_duration(label_delay)
    has_card = "card_id" in frame.columns and bool(frame["card_id"].notna().any())
    if has_card and frame["card_id"].isna().any():
        raise DataError(f"{int(frame['card_id'].isna().sum())} row(s) have no card id; clean the "
                        "file first (fraudstream clean)")
    has_amount = "amount" in frame.columns
    fs, notes = choose_feature_set(mapping_name, has_card, has_amount, feature_set)
    if has_card and "terminal_id" not in frame.columns and fs.name != "transaction":
        notes.append("no terminal column: terminal features are missing (None)")
    if tracker is not None:
        tracker.step(tracker.fraction, f"features: {fs.name} on {len(frame):,} rows")
    if currency_rates is None:  # the settings' default table
        from fraudstream.settings import Settings

        currency_rates = dict(Settings.model_fields["currency_rates"].default)
    X = compute_features(frame, fs, label_delay=delay_s, base_currency=base_currency,
                         currency_rates=currency_rates)
    X = X.drop(columns=["transaction_id"]).astype(float)
    extras = [c for c in frame.columns if c not in NOT_FEATURES and c not in X.columns
              and pd.api.types.is_numeric_dtype(frame[c])
              and not pd.api.types.is_bool_dtype(frame[c])]
    for c in extras:
        X[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    if extras:
        notes.append(f"{len(extras)} extra numeric column(s) used as features: "
                     + ", ".join(map(str, extras[:10])) + (" ..." if len(extras) > 10 else ""))
    y = frame["is_fraud"].to_numpy().astype(np.int8)
    t = frame["timestamp"].astype("datetime64[ns, UTC]").to_numpy(dtype="datetime64[ns]")
    t_s = t.astype("int64") / 1e9
    return LabelledData(frame=frame, X=X, y=y, t=t_s, feature_set=fs.name,
                        features=[str(c) for c in X.columns], label_delay_s=delay_s,
                        notes=notes, source=source, seconds=time.perf_counter() - started)


def load_labelled(
    path: str | Path,
    mapping: ColumnMapping,
    *,
    feature_set: str | None = None,
    label_delay: str | float | None = None,
    nrows: int | None = None,
    base_currency: str = "EUR",
    currency_rates: dict[str, float] | None = None,
    tracker: Tracker | None = None,
) -> LabelledData:
    """Read ``path`` with ``mapping`` and compute its features (label delay: the given one, else
    the mapping's own, else 7 days)."""
    started = time.perf_counter()
    if tracker is not None:
        tracker.step(tracker.fraction, f"reading {Path(path).name}")
    frame = read_frame(path, mapping, nrows=nrows)
    delay = label_delay if label_delay is not None else (mapping.label_delay or "7d")
    data = labelled_from_frame(frame, mapping_name=mapping.name, feature_set=feature_set,
                               label_delay=delay, base_currency=base_currency,
                               currency_rates=currency_rates, tracker=tracker, source=str(path))
    data.seconds = time.perf_counter() - started
    return data
