"""Where the lifecycle's data come from: a registered data set, or a server path with a mapping.

Every job that reads a historical file (register, clean, explore; train, evaluate and tune next)
takes the same request part, :class:`SourceIn`: ``{"dataset_id": "fdh"}`` or
``{"path": "/data/tx.csv.gz", "mapping": {"preset": "handbook"}}`` or
``{"path": ..., "mapping": {"columns": {"timestamp": "t", "is_fraud": "y"}}}``. It is checked
before a job is queued (:func:`resolve_source`, :func:`preflight`), so a wrong path or mapping
is a 4xx answer with the reason, not a failed job minutes later.

Server paths may be limited to folders (settings ``api_data_roots``); by default any file the API
process can read is allowed (the endpoints that take a path need the API key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.columns import PRESETS, ColumnMapping, read_raw, to_canonical
from fraudstream.errors import ConfigError, DataError
from fraudstream.settings import Settings

__all__ = ["MappingIn", "SourceIn", "check_path", "checked_source", "preflight", "resolve_source"]

SAMPLE_ROWS = 1000


class MappingIn(BaseModel):
    """How to read a file: a preset (``handbook``), or columns (canonical name -> the file's
    column; ``timestamp`` is required, ``is_fraud``, ``transaction_id``, ``card_id``,
    ``terminal_id``, ``amount``, ``currency``, ... are optional), or a preset with extra columns."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"preset": "handbook"},
                     {"columns": {"timestamp": "ts", "is_fraud": "label", "amount": "amt"}}]})

    preset: str | None = Field(default=None, description="a known layout: handbook")
    columns: dict[str, str] = Field(default_factory=dict,
                                    description="canonical name -> the file's column name")
    drop: list[str] = Field(default_factory=list, description="columns never used as features")
    label_delay: str | None = Field(default=None, description="the data's label delay, e.g. 7d")

    def to_mapping(self) -> ColumnMapping:
        """The :class:`ColumnMapping`; ConfigError or DataError saying what is wrong."""
        if self.preset is not None:
            preset = PRESETS.get(self.preset)
            if preset is None:
                raise ConfigError(f"unknown preset {self.preset!r}; known: "
                                  f"{', '.join(sorted(PRESETS))}")
            if not self.columns and not self.drop and self.label_delay is None:
                return preset
            return ColumnMapping(columns={**preset.columns, **self.columns},
                                 drop=preset.drop | frozenset(self.drop), name=preset.name,
                                 label_delay=self.label_delay or preset.label_delay)
        if not self.columns:
            raise ConfigError("say how to read the file: a preset, or columns with at least "
                              "timestamp (e.g. {\"timestamp\": \"TX_DATETIME\", "
                              "\"is_fraud\": \"TX_FRAUD\"})")
        return ColumnMapping(columns=dict(self.columns), drop=frozenset(self.drop),
                             label_delay=self.label_delay)


class SourceIn(BaseModel):
    """A registered data set (``dataset_id``), or a file on the server (``path``) and how to
    read it (``mapping``)."""

    dataset_id: str | None = Field(default=None, description="a registered data set")
    path: str | None = Field(default=None, description="a CSV or Parquet file on the server "
                             "(gzip allowed)")
    mapping: MappingIn | None = Field(default=None, description="with path: how to read it")

    @model_validator(mode="after")
    def _one_source(self) -> SourceIn:
        if (self.dataset_id is None) == (self.path is None):
            raise ValueError("give dataset_id or path (with a mapping), not both, not neither")
        if self.dataset_id is not None and self.mapping is not None:
            raise ValueError("dataset_id carries its own column mapping; drop mapping")
        if self.path is not None and self.mapping is None:
            raise ValueError("path needs a mapping: {\"preset\": \"handbook\"} or "
                             "{\"columns\": {\"timestamp\": COL, ...}}")
        return self


def check_path(path: str | Path, settings: Settings) -> Path:
    """``path`` resolved, if it is a readable file under the allowed roots; DataError otherwise."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        raise DataError(f"{path}: give an absolute path on the server")
    p = p.resolve()
    roots = [Path(r).expanduser().resolve() for r in settings.api_data_roots]
    if roots and not any(p.is_relative_to(r) for r in roots):
        raise DataError(f"{p}: outside the folders the API may read "
                        f"(FRAUDSTREAM_API_DATA_ROOTS: {', '.join(map(str, roots))})")
    if not p.exists():
        raise DataError(f"no such file on the server: {p}")
    if not p.is_file():
        raise DataError(f"not a file: {p}")
    return p


def resolve_source(source: SourceIn, settings: Settings) -> tuple[Path, ColumnMapping, Any]:
    """``(path, mapping, dataset record or None)``; NotFoundError for an unknown data set,
    DataError / ConfigError for a bad path or mapping."""
    if source.dataset_id is not None:
        from features.datasets import get_dataset

        record = get_dataset(settings.datasets_path, source.dataset_id)
        path = Path(record.path)
        if not path.is_file():
            raise DataError(f"data set {record.id!r}: its file {path} no longer exists")
        return path, record.column_mapping(), record
    assert source.path is not None and source.mapping is not None
    return check_path(source.path, settings), source.mapping.to_mapping(), None


def checked_source(source: SourceIn, settings: Settings) -> tuple[Path, ColumnMapping, Any]:
    """:func:`resolve_source`, then a file given by path is checked on a sample with its mapping
    (:func:`preflight`; a registered data set was checked when it was added): a job is refused
    with a reason now rather than failing later."""
    path, mapping, record = resolve_source(source, settings)
    if record is None:
        preflight(path, mapping)
    return path, mapping, record


def sample(path: Path, rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """The first ``rows`` rows of a CSV or Parquet file, without reading the rest."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            batch = next(pf.iter_batches(batch_size=rows), None)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
        return batch.to_pandas() if batch is not None else pf.schema_arrow.empty_table().to_pandas()
    return read_raw(path, nrows=rows)


def preflight(path: Path, mapping: ColumnMapping, *, canonical: bool = True) -> None:
    """Read a sample of the file with ``mapping``: mapped columns must exist and, when
    ``canonical``, the sample must convert (times, numeric amounts, 0/1 labels). A raw file about
    to be cleaned is checked with ``canonical=False`` (only the columns)."""
    raw = sample(path)
    if canonical:
        to_canonical(raw, mapping, origin=str(path))
        return
    missing = [c for c in mapping.columns.values() if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: column(s) {missing} not found; it has {list(raw.columns)[:20]}")
