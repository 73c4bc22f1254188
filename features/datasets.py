"""Registered data sets: a historical file, how to read it, and what it holds.

Registering a file (CSV or Parquet, gzip allowed) reads it once through its column mapping
(:mod:`features.columns`) and stores a :class:`DatasetRecord`: the file's path, size and sha256,
the mapping, the raw schema (column -> dtype), the row count, time range, label rate, whether cards,
terminals and amounts are present, the extra numeric columns that become features, and notes on
what is skipped for want of a column (a file with only a time column, numeric columns and a label
works: card-based features and metrics are skipped, and the record says so).

The registry is a folder (``settings.datasets_path``, by default ``<home>/datasets``) with one JSON
file per data set, ``<id>.json``, written atomically, so concurrent jobs never corrupt each other's
records and a record can be read, copied or removed by hand. It lives in ``features/`` because a
record is a description of input data and its column mapping, which this package owns;
training and evaluation in ``models/`` read a data set with
``read_frame(record.path, record.column_mapping())``.

>>> slugify("Transactions raw (2018).csv.gz")
'transactions-raw-2018'
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field, ValidationError

from features.columns import CANONICAL, ColumnMapping, read_raw, to_canonical
from fraudstream.errors import DataError, NotFoundError
from fraudstream.files import write_atomic
from fraudstream.progress import CancelFn, ProgressFn, Tracker

__all__ = [
    "DatasetRecord",
    "describe_frame",
    "get_dataset",
    "list_datasets",
    "mapping_from_dict",
    "mapping_to_dict",
    "register_dataset",
    "remove_dataset",
    "slugify",
]

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq", ".gz", ".txt")
FEW_FRAUDS = 30


class DatasetRecord(BaseModel):
    """What the registry knows about one data set."""

    id: str
    name: str
    path: str
    format: str
    size_bytes: int
    sha256: str
    mapping: dict[str, Any]
    schema_: dict[str, str] = Field(alias="schema", serialization_alias="schema")
    rows: int
    time_min: str | None
    time_max: str | None
    days: float
    labelled: bool
    n_fraud: int | None = None
    label_rate: float | None = None
    has_card: bool
    has_terminal: bool
    has_amount: bool
    n_cards: int | None = None
    n_terminals: int | None = None
    feature_columns: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    registered_at: str
    profile_seconds: float = 0.0

    model_config = {"populate_by_name": True}

    def column_mapping(self) -> ColumnMapping:
        """The mapping to read this data set with :func:`features.columns.read_frame`."""
        return mapping_from_dict(self.mapping)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


def mapping_to_dict(mapping: ColumnMapping) -> dict[str, Any]:
    """A JSON-able form of a :class:`ColumnMapping`.

    >>> from features.columns import HANDBOOK
    >>> mapping_to_dict(HANDBOOK)["columns"]["card_id"]
    'CUSTOMER_ID'
    >>> mapping_from_dict(mapping_to_dict(HANDBOOK)) == HANDBOOK
    True
    """
    return {"name": mapping.name, "columns": dict(mapping.columns), "drop": sorted(mapping.drop),
            "label_delay": mapping.label_delay}


def mapping_from_dict(data: dict[str, Any]) -> ColumnMapping:
    """The :class:`ColumnMapping` that :func:`mapping_to_dict` wrote."""
    return ColumnMapping(columns=dict(data["columns"]), drop=frozenset(data.get("drop", ())),
                         name=data.get("name", "custom"), label_delay=data.get("label_delay"))


def slugify(name: str) -> str:
    """A registry id from a name: lower case letters, digits, ``.``, ``_`` and ``-``."""
    text = name.strip()
    for suffix in _SUFFIXES:
        if text.lower().endswith(suffix):
            text = text[: -len(suffix)]
            break
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return slug[:64].rstrip("-._") or "dataset"


def describe_frame(raw: pd.DataFrame, frame: pd.DataFrame, mapping: ColumnMapping) -> dict[str, Any]:
    """The profile of a data set: ``raw`` as read, ``frame`` its canonical form (from
    :func:`features.columns.to_canonical`).

    >>> from features.columns import ColumnMapping, to_canonical
    >>> raw = pd.DataFrame({"t": [0, 86400, 172800], "x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    >>> m = ColumnMapping.from_options(time="t", label="y")
    >>> d = describe_frame(raw, to_canonical(raw, m), m)
    >>> d["rows"], d["days"], d["n_fraud"], d["has_card"], d["feature_columns"]
    (3, 2.0, 1, False, ['x'])
    """
    ts = frame["timestamp"]
    labelled = "is_fraud" in frame
    n_fraud = int(frame["is_fraud"].sum()) if labelled else None
    canonical = set(frame.columns)
    features = [c for c in frame.columns if c not in CANONICAL]
    notes = []
    if "card_id" not in canonical:
        notes.append("no card column: card-window features and card-based metrics "
                     "(card precision@k) are skipped")
    if "terminal_id" not in canonical:
        notes.append("no terminal column: terminal-window features are skipped")
    if "amount" not in canonical:
        notes.append("no amount column: amount features and amount plots are skipped")
    if mapping.source("transaction_id") is None:
        notes.append("no id column: transaction ids are the row numbers of the file")
    if not labelled:
        notes.append("no label column: usable for scoring and replay, not for training or "
                     "evaluation")
    elif n_fraud is not None and n_fraud < FEW_FRAUDS:
        notes.append(f"only {n_fraud} fraud(s): metrics on this data set will be noisy")
    if features:
        notes.append(f"{len(features)} extra numeric column(s) become features: "
                     + ", ".join(features[:10]) + (" ..." if len(features) > 10 else ""))
    skipped = [c for c in raw.columns if c not in set(mapping.columns.values())
               and c not in mapping.drop and c not in canonical]
    if skipped:
        notes.append(f"{len(skipped)} non-numeric column(s) not used (map them to use them): "
                     + ", ".join(map(str, skipped[:10])))
    span = (ts.max() - ts.min()).total_seconds() / 86400 if len(ts) else 0.0
    return {
        "schema": {str(c): str(t) for c, t in raw.dtypes.items()},
        "rows": len(frame),
        "time_min": ts.min().isoformat() if len(ts) else None,
        "time_max": ts.max().isoformat() if len(ts) else None,
        "days": round(span, 3),
        "labelled": labelled,
        "n_fraud": n_fraud,
        "label_rate": (n_fraud / len(frame)) if n_fraud is not None and len(frame) else None,
        "has_card": "card_id" in canonical,
        "has_terminal": "terminal_id" in canonical,
        "has_amount": "amount" in canonical,
        "n_cards": int(frame["card_id"].nunique()) if "card_id" in canonical else None,
        "n_terminals": int(frame["terminal_id"].nunique()) if "terminal_id" in canonical else None,
        "feature_columns": features,
        "notes": notes,
    }


def register_dataset(
    path: str | Path,
    mapping: ColumnMapping,
    root: str | Path,
    *,
    name: str | None = None,
    dataset_id: str | None = None,
    replace: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> DatasetRecord:
    """Read the file at ``path`` with ``mapping``, profile it, and store its record under ``root``.

    Raises :class:`DataError` for an unreadable file, a mapping naming missing columns, or an
    existing id (unless ``replace``); :class:`~fraudstream.errors.Cancelled` when ``cancel`` says so.
    """
    started = time.perf_counter()
    tracker = Tracker(progress, cancel, what="dataset registration")
    path = Path(path).expanduser().resolve()
    name = name or path.name
    dataset_id = dataset_id or slugify(name)
    _check_id(dataset_id)
    target = Path(root) / f"{dataset_id}.json"
    if target.exists() and not replace:
        raise DataError(f"dataset {dataset_id!r} is already registered; use --replace "
                        "(replace=True) or another --name")
    tracker.step(0.02, f"reading {path.name}")
    raw = read_raw(path)
    tracker.step(0.55, "mapping columns")
    frame = to_canonical(raw, mapping, origin=str(path))
    tracker.step(0.75, "profiling")
    profile = describe_frame(raw, frame, mapping)
    del frame
    tracker.step(0.85, "hashing the file")
    digest = _sha256(path, tracker)
    record = DatasetRecord(
        id=dataset_id,
        name=name,
        path=str(path),
        format=_format(path),
        size_bytes=path.stat().st_size,
        sha256=digest,
        mapping=mapping_to_dict(mapping),
        registered_at=datetime.now(UTC).isoformat(timespec="seconds"),
        profile_seconds=round(time.perf_counter() - started, 3),
        **profile,
    )
    tracker.step(0.98, "writing the record")
    write_atomic(target, record.model_dump_json(by_alias=True, indent=2) + "\n")
    tracker.done(f"registered {dataset_id}")
    return record


def list_datasets(root: str | Path) -> list[DatasetRecord]:
    """Every registered data set, by id; unreadable records raise :class:`DataError`."""
    folder = Path(root)
    if not folder.is_dir():
        return []
    return [_load(p) for p in sorted(folder.glob("*.json"))]


def get_dataset(root: str | Path, dataset_id: str) -> DatasetRecord:
    """The record of ``dataset_id``; :class:`NotFoundError` when there is none."""
    if not _ID.match(dataset_id):
        raise NotFoundError("dataset", dataset_id, "ids are lower-case letters, digits, . _ -")
    path = Path(root) / f"{dataset_id}.json"
    if not path.exists():
        known = [p.stem for p in sorted(Path(root).glob("*.json"))] if Path(root).is_dir() else []
        hint = f"known: {', '.join(known)}" if known else "none is registered (datasets add PATH)"
        raise NotFoundError("dataset", dataset_id, hint)
    return _load(path)


def remove_dataset(root: str | Path, dataset_id: str) -> None:
    """Forget ``dataset_id`` (the data file itself is left alone)."""
    get_dataset(root, dataset_id)
    (Path(root) / f"{dataset_id}.json").unlink()


def _check_id(dataset_id: str) -> None:
    if not _ID.match(dataset_id):
        raise DataError(f"bad dataset id {dataset_id!r}: use 1-64 lower-case letters, digits, "
                        ". _ - (starting with a letter or digit)")


def _load(path: Path) -> DatasetRecord:
    try:
        return DatasetRecord.model_validate_json(path.read_bytes())
    except (ValidationError, OSError) as exc:
        raise DataError(f"unreadable dataset record {path}: "
                        f"{' '.join(str(exc).splitlines()[:2])}") from exc


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv.gz" if name.endswith(".gz") else "csv"


def _sha256(path: Path, tracker: Tracker) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
            tracker.check()
    return h.hexdigest()


