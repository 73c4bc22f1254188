"""Column mappings: how a historical file's columns map to fraudstream's canonical names.

Every offline part (features, replay, datasets, evaluation) reads files through
:func:`read_frame`, which returns a DataFrame with canonical columns:

=================  ==========================================================
``transaction_id`` str, unique
``timestamp``      ``datetime64[ns, UTC]``
``card_id``        str (optional: files without cards still work)
``terminal_id``    str (optional)
``amount``         float (optional)
``is_fraud``       int 0/1 (optional: unlabelled files)
others             ``currency``, ``channel``, ``country``, ``city``,
                   ``merchant_category``, ``latitude``, ``longitude`` when mapped
=================  ==========================================================

Rows come sorted in event-time order, ties broken by transaction id (numerically when every id is
an integer), which is the order the online store sees in a replay. Columns of the file that are
neither mapped nor dropped and are numeric pass through unchanged: they become features.

>>> HANDBOOK.source("card_id")
'CUSTOMER_ID'
>>> sorted(HANDBOOK.drop)
['TX_FRAUD_SCENARIO', 'TX_TIME_DAYS', 'TX_TIME_SECONDS']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fraudstream.errors import DataError

__all__ = [
    "CANONICAL", "HANDBOOK", "PRESETS", "SIMULATOR", "ColumnMapping", "read_frame", "read_raw",
    "sort_events", "to_canonical",
]

CANONICAL = (
    "transaction_id", "timestamp", "card_id", "terminal_id", "amount", "currency", "is_fraud",
    "channel", "country", "city", "merchant_category", "latitude", "longitude",
)


@dataclass(frozen=True)
class ColumnMapping:
    """Canonical name -> the file's column name; ``drop`` lists columns never used as features."""

    columns: dict[str, str]
    drop: frozenset[str] = field(default_factory=frozenset)
    name: str = "custom"
    label_delay: str | None = None  # the data set's own label delay, e.g. "7d" for the handbook

    def __post_init__(self) -> None:
        unknown = set(self.columns) - set(CANONICAL)
        if unknown:
            raise DataError(f"unknown canonical column(s) {sorted(unknown)}; known: {', '.join(CANONICAL)}")
        if "timestamp" not in self.columns:
            raise DataError("a column mapping needs at least a time column (timestamp)")

    def source(self, canonical: str) -> str | None:
        return self.columns.get(canonical)

    @classmethod
    def from_options(
        cls,
        *,
        time: str,
        label: str | None = None,
        id: str | None = None,  # noqa: A002 - the CLI option's name
        card: str | None = None,
        terminal: str | None = None,
        amount: str | None = None,
    ) -> ColumnMapping:
        cols = {"timestamp": time}
        for canonical, source in (("is_fraud", label), ("transaction_id", id), ("card_id", card),
                                  ("terminal_id", terminal), ("amount", amount)):
            if source:
                cols[canonical] = source
        return cls(columns=cols)


#: The Fraud Detection Handbook's simulated data set (../shared/data/fdh/).
HANDBOOK = ColumnMapping(
    name="handbook",
    columns={
        "transaction_id": "TRANSACTION_ID",
        "timestamp": "TX_DATETIME",
        "card_id": "CUSTOMER_ID",
        "terminal_id": "TERMINAL_ID",
        "amount": "TX_AMOUNT",
        "is_fraud": "TX_FRAUD",
    },
    drop=frozenset({"TX_TIME_SECONDS", "TX_TIME_DAYS", "TX_FRAUD_SCENARIO"}),
    label_delay="7d",
)

#: Files written by ``fraudstream simulate --out`` (:func:`stream.simulate.write_simulation`): the
#: canonical names as they are; ``scenario`` is the simulator's truth, never a feature.
SIMULATOR = ColumnMapping(
    name="simulator",
    columns={c: c for c in ("transaction_id", "timestamp", "card_id", "terminal_id", "amount",
                            "currency", "is_fraud", "channel", "country", "city",
                            "merchant_category", "latitude", "longitude")},
    drop=frozenset({"scenario"}),
)

PRESETS: dict[str, ColumnMapping] = {"handbook": HANDBOOK, "simulator": SIMULATOR}


def read_frame(path: str | Path, mapping: ColumnMapping, nrows: int | None = None) -> pd.DataFrame:
    """The file at ``path`` (CSV or Parquet, gzip allowed) with canonical columns, in event order."""
    return to_canonical(read_raw(path, nrows), mapping, origin=str(path))


def read_raw(path: str | Path, nrows: int | None = None) -> pd.DataFrame:
    """The file at ``path`` (CSV or Parquet, gzip allowed) as it is, its own column names."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            raw = pd.read_parquet(path)
            if nrows is not None:
                raw = raw.head(nrows)
        elif name.endswith((".csv", ".csv.gz", ".gz", ".txt")):
            raw = pd.read_csv(path, nrows=nrows, low_memory=False)
        else:
            raise DataError(f"{path.name}: not CSV or Parquet (by its name)")
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
    return raw


def to_canonical(raw: pd.DataFrame, mapping: ColumnMapping, origin: str = "data") -> pd.DataFrame:
    """Rename, type and sort ``raw`` by ``mapping``; extra numeric columns pass through."""
    missing = [src for src in mapping.columns.values() if src not in raw.columns]
    if missing:
        raise DataError(f"{origin}: column(s) {missing} not found; it has {list(raw.columns)[:20]}")
    out = pd.DataFrame(index=raw.index)
    for canonical, src in mapping.columns.items():
        out[canonical] = raw[src]
    ts = out["timestamp"]
    if pd.api.types.is_numeric_dtype(ts):
        unit = "ms" if ts.abs().max() >= 1e11 else "s"
        out["timestamp"] = pd.to_datetime(ts, unit=unit, utc=True)
    else:
        try:
            out["timestamp"] = pd.to_datetime(ts, utc=True, format="mixed")
        except (ValueError, TypeError) as exc:
            raise DataError(f"{origin}: time column {mapping.columns['timestamp']!r}: {exc}") from exc
    out["timestamp"] = out["timestamp"].astype("datetime64[ns, UTC]")
    if out["timestamp"].isna().any():
        n = int(out["timestamp"].isna().sum())
        raise DataError(f"{origin}: {n} row(s) have no time in {mapping.columns['timestamp']!r}; "
                        "clean the file first (fraudstream clean)")
    if "transaction_id" not in out:
        out["transaction_id"] = raw.index.astype(str)
    for col in ("transaction_id", "card_id", "terminal_id"):
        if col in out:
            out[col] = _as_id(out[col])
    for col in ("amount", "is_fraud"):
        if col not in out:
            continue
        try:
            out[col] = pd.to_numeric(out[col], errors="raise").astype(float)
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"{origin}: column {mapping.columns[col]!r} ({col}) is not numeric "
                f"({' '.join(str(exc).split())}); clean the file first (fraudstream clean)"
            ) from exc
    if "is_fraud" in out:
        bad = out.loc[~out["is_fraud"].isin((0.0, 1.0)), "is_fraud"]
        if len(bad):
            raise DataError(f"{origin}: label column {mapping.columns['is_fraud']!r} must be 0/1; "
                            f"{len(bad)} row(s) are not, e.g. {bad.unique()[:3].tolist()}; clean "
                            "the file first (fraudstream clean)")
        out["is_fraud"] = out["is_fraud"].astype(int)
    used = set(mapping.columns.values()) | set(mapping.drop)
    for col in raw.columns:
        if col not in used and col not in out and pd.api.types.is_numeric_dtype(raw[col]):
            out[col] = raw[col].astype(float)
    if out["transaction_id"].duplicated().any():
        dupes = out.loc[out["transaction_id"].duplicated(), "transaction_id"].head(3).tolist()
        raise DataError(f"{origin}: duplicate transaction ids, e.g. {dupes}")
    return sort_events(out)


def _as_id(s: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(s):
        if s.notna().all() and (s == s.round()).all():
            s = s.astype("int64")
    return s.astype("string").astype(object).where(s.notna(), None)


def sort_events(df: pd.DataFrame) -> pd.DataFrame:
    """Event-time order, ties by transaction id (numeric when all ids are integers)."""
    ids = df["transaction_id"]
    numeric = pd.to_numeric(ids, errors="coerce")
    key = numeric if numeric.notna().all() else ids
    order = pd.DataFrame({"t": df["timestamp"].to_numpy(dtype="datetime64[ns]"), "k": key.to_numpy()}).sort_values(
        ["t", "k"], kind="stable"
    ).index
    return df.iloc[order].reset_index(drop=True)
