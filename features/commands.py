"""Subcommands of the features package: ``features`` (the offline twin on a file) and ``select``.

``fraudstream features PATH [--preset handbook] [--feature-set NAME] --out OUT.(csv|parquet)``
writes one row per transaction id: ``transaction_id``, ``timestamp``, ``card_id``, ``is_fraud``
(when the file has labels), then every feature.

``fraudstream select PATH [--preset handbook] [--feature-set NAME]`` computes the features the
same way (or reads a file ``features`` wrote, with ``--from-features``) and prints the selection
table (correlated pairs, importance, L1, recursive elimination); ``--json OUT`` saves the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from fraudstream.errors import ConfigError, DataError
from fraudstream.settings import Settings

_KEYS = ("transaction_id", "timestamp", "card_id", "is_fraud")


def register(sub: Any) -> None:
    p = sub.add_parser("features", help="compute a feature set offline on a file (the offline twin)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _input_options(p)
    p.add_argument("--out", required=True, help="output file, .csv or .parquet")
    p.set_defaults(func=features)

    s = sub.add_parser("select", help="feature selection: correlation, importance, L1, RFE")
    _input_options(s)
    s.add_argument("--from-features", action="store_true",
                   help="PATH is a file written by `fraudstream features` (with is_fraud)")
    s.add_argument("--corr", type=float, default=0.9, help="flag pairs with |r| above (0.9)")
    s.add_argument("--method", choices=["l1", "rfe", "both"], default="both")
    s.add_argument("--max-rows", type=int, default=200_000, help="thin to this many rows (200000)")
    s.add_argument("--json", dest="json_out", help="also write the report as JSON here")
    s.set_defaults(func=select)


def _input_options(p: argparse.ArgumentParser) -> None:
    from features.columns import PRESETS

    p.add_argument("path", help="transactions file (CSV, CSV.gz or Parquet)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="column mapping of a known data set")
    p.add_argument("--feature-set", help="feature set (default: handbook with --preset handbook, "
                   "else FRAUDSTREAM_FEATURE_SET)")
    p.add_argument("--label-delay", help="labels are known this long after each transaction "
                   "(default: the data set's, else the feature set's)")
    p.add_argument("--labels", help="labels file: transaction_id, is_fraud, reported_at")
    p.add_argument("--nrows", type=int, help="read only the first N rows")
    for name in ("time", "id", "card", "terminal", "amount", "label"):
        p.add_argument(f"--{name}", help=f"column holding the {name} (without a preset)")


def _header(path: Path) -> list[str]:
    import pandas as pd

    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0).columns)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def _mapping(args: argparse.Namespace, path: Path) -> Any:
    from features.columns import CANONICAL, PRESETS, ColumnMapping

    if args.preset:
        return PRESETS[args.preset]
    header = _header(path)
    cols = {c: c for c in CANONICAL if c in header}
    for option, canonical in (("time", "timestamp"), ("id", "transaction_id"), ("card", "card_id"),
                              ("terminal", "terminal_id"), ("amount", "amount"),
                              ("label", "is_fraud")):
        if getattr(args, option):
            cols[canonical] = getattr(args, option)
    if "timestamp" not in cols:
        raise ConfigError(f"{path.name}: no timestamp column; use --preset or --time COLUMN")
    if "card_id" not in cols:
        raise ConfigError(f"{path.name}: no card_id column; use --preset or --card COLUMN")
    return ColumnMapping(columns=cols)


def _frame_and_features(args: argparse.Namespace, settings: Settings) -> tuple[Any, Any, float]:
    """(canonical frame, feature frame, seconds spent on the features)."""
    import pandas as pd

    from features.columns import read_frame
    from features.definitions import load_feature_set
    from features.offline import compute_features

    path = Path(args.path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if args.nrows is not None and args.nrows <= 0:
        raise ConfigError("--nrows must be positive")
    mapping = _mapping(args, path)
    name = args.feature_set or ("handbook" if args.preset == "handbook" else settings.feature_set)
    fs = load_feature_set(name)
    df = read_frame(path, mapping, nrows=args.nrows)
    labels = None
    if args.labels:
        lpath = Path(args.labels)
        if not lpath.is_file():
            raise DataError(f"no such labels file: {lpath}")
        labels = (pd.read_parquet(lpath) if lpath.name.lower().endswith((".parquet", ".pq"))
                  else pd.read_csv(lpath))
    delay = args.label_delay or mapping.label_delay
    if labels is None and "is_fraud" not in df.columns and fs.label_delay_s:
        print(f"note: {path.name} has no labels (is_fraud or --labels): the label-based "
              "features see none", file=sys.stderr)
    t0 = time.perf_counter()
    feats = compute_features(df, fs, labels=labels, label_delay=delay,
                             base_currency=settings.base_currency,
                             currency_rates=settings.currency_rates)
    return df, feats, time.perf_counter() - t0


def features(args: argparse.Namespace, settings: Settings) -> int:
    out = Path(args.out)
    suffix = out.name.lower()
    if not suffix.endswith((".csv", ".parquet")):
        raise ConfigError(f"--out must end in .csv or .parquet, not {out.name!r}")
    if not out.parent.is_dir():
        raise DataError(f"the folder of --out does not exist: {out.parent}")
    t0 = time.perf_counter()
    df, feats, seconds = _frame_and_features(args, settings)
    table = feats.drop(columns="transaction_id")
    keys = df[[c for c in _KEYS if c in df.columns]]
    result = keys.join(table)
    if suffix.endswith(".parquet"):
        result.to_parquet(out, index=False)
    else:
        result.to_csv(out, index=False)
    print(f"wrote {len(result)} rows x {table.shape[1]} features to {out} "
          f"(features {seconds:.1f} s, {len(result) / max(seconds, 1e-9):,.0f} rows/s; "
          f"total {time.perf_counter() - t0:.1f} s)")
    return 0


def select(args: argparse.Namespace, settings: Settings) -> int:
    import pandas as pd

    from features.selection import format_table, select_features

    if args.from_features:
        path = Path(args.path)
        if not path.is_file():
            raise DataError(f"no such file: {path}")
        try:
            data = (pd.read_parquet(path) if path.name.lower().endswith((".parquet", ".pq"))
                    else pd.read_csv(path, nrows=args.nrows))
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {path}: {exc}") from exc
        if "is_fraud" not in data.columns:
            raise DataError(f"{path.name} has no is_fraud column")
        if "timestamp" in data.columns:
            data = data.sort_values("timestamp", kind="stable")
        X = data.drop(columns=[c for c in _KEYS + ("terminal_id",) if c in data.columns])
        y = data["is_fraud"]
    else:
        df, feats, _ = _frame_and_features(args, settings)
        if "is_fraud" not in df.columns:
            raise DataError("feature selection needs labels: the file has no is_fraud column")
        X, y = feats.drop(columns="transaction_id"), df["is_fraud"]
    result = select_features(X, y, corr_threshold=args.corr, method=args.method,
                             max_rows=args.max_rows, seed=settings.seed)
    print(format_table(result))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
