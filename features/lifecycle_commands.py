"""Subcommands of the offline lifecycle's first half: criteria, datasets, clean, eda.

Data options are shared by every command that reads a historical file (train, evaluate and tune
reuse :func:`add_data_options` and :func:`resolve_data`): a PATH (or ``--dataset ID`` of a
registered data set) and either ``--preset NAME`` or ``--time COL`` with ``--label``, ``--id``,
``--card``, ``--terminal``, ``--amount``, ``--map CANONICAL=COL`` and ``--drop COL``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fraudstream.errors import ConfigError
from fraudstream.settings import Settings

__all__ = ["add_data_options", "register", "resolve_data"]

_COLUMN_OPTIONS = ("time", "label", "id", "card", "terminal", "amount")


def add_data_options(parser: argparse.ArgumentParser, *, path: bool = True) -> None:
    """PATH / --dataset and the column-mapping options."""
    if path:
        parser.add_argument("path", nargs="?", metavar="PATH",
                            help="CSV or Parquet file (gzip allowed)")
        parser.add_argument("--dataset", metavar="ID", help="a registered data set instead of PATH")
    g = parser.add_argument_group("column mapping (a preset, or --time and the others)")
    g.add_argument("--preset", metavar="NAME", help="a known layout: handbook")
    g.add_argument("--time", metavar="COL", help="event time column (required without --preset)")
    g.add_argument("--label", metavar="COL", help="fraud label column (0/1)")
    g.add_argument("--id", metavar="COL", help="transaction id column (default: row number)")
    g.add_argument("--card", metavar="COL", help="card id column")
    g.add_argument("--terminal", metavar="COL", help="terminal / merchant id column")
    g.add_argument("--amount", metavar="COL", help="amount column")
    g.add_argument("--map", metavar="CANONICAL=COL", action="append", default=[],
                   help="map another canonical column (currency, city, country, channel, "
                        "merchant_category, latitude, longitude); repeatable")
    g.add_argument("--drop", metavar="COL", action="append", default=[],
                   help="a column never to use as a feature; repeatable")


def mapping_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~features.columns.ColumnMapping` the options describe."""
    from features.columns import PRESETS, ColumnMapping

    given = [f"--{o}" for o in _COLUMN_OPTIONS if getattr(args, o, None)]
    extra = _parse_map(getattr(args, "map", []) or [])
    drop = frozenset(getattr(args, "drop", []) or [])
    if args.preset:
        if given:
            raise ConfigError(f"--preset {args.preset} and {', '.join(given)} do not mix: use one "
                              "or the other")
        preset = PRESETS.get(args.preset)
        if preset is None:
            raise ConfigError(f"unknown preset {args.preset!r}; known: {', '.join(sorted(PRESETS))}")
        if not extra and not drop:
            return preset
        return ColumnMapping(columns={**preset.columns, **extra}, drop=preset.drop | drop,
                             name=preset.name, label_delay=preset.label_delay)
    if not args.time:
        raise ConfigError("say how to read the file: --preset NAME, or --time COL (with --label "
                          "COL and the other column options)")
    base = ColumnMapping.from_options(time=args.time, label=args.label, id=args.id, card=args.card,
                                      terminal=args.terminal, amount=args.amount)
    return ColumnMapping(columns={**base.columns, **extra}, drop=drop)


def _parse_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        canonical, sep, column = item.partition("=")
        if not sep or not canonical.strip() or not column.strip():
            raise ConfigError(f"--map {item!r}: write CANONICAL=COLUMN, e.g. currency=CUR")
        out[canonical.strip()] = column.strip()
    return out


def resolve_data(args: argparse.Namespace, settings: Settings) -> tuple[Path, Any]:
    """``(path, mapping)`` from PATH and the mapping options, or from ``--dataset ID``."""
    dataset = getattr(args, "dataset", None)
    if dataset:
        if args.path:
            raise ConfigError("give PATH or --dataset ID, not both")
        if args.preset or any(getattr(args, o, None) for o in _COLUMN_OPTIONS):
            raise ConfigError("--dataset ID carries its own column mapping; drop the column "
                              "options")
        from features.datasets import get_dataset

        record = get_dataset(settings.datasets_path, dataset)
        return Path(record.path), record.column_mapping()
    if not args.path:
        raise ConfigError("give a PATH (CSV or Parquet) or --dataset ID")
    path = Path(args.path)
    if not path.exists():
        from fraudstream.errors import DataError

        raise DataError(f"no such file: {path}")
    return path, mapping_from_args(args)


def _progress(enabled: bool) -> Any:
    """A progress callback printing to stderr on a terminal; None otherwise."""
    if not enabled or not sys.stderr.isatty():
        return None

    def show(fraction: float, message: str) -> None:
        end = "\n" if fraction >= 1.0 else ""
        print(f"\r\033[K{fraction:4.0%} {message}", end=end, file=sys.stderr, flush=True)

    return show


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


# -- criteria -----------------------------------------------------------------------------------


def cmd_criteria(args: argparse.Namespace, settings: Settings) -> int:
    from models.criteria import check, problem_from_settings

    problem = problem_from_settings(settings)
    if args.check:
        try:
            metrics = json.loads(Path(args.check).read_text(encoding="utf-8"))
        except FileNotFoundError:
            from fraudstream.errors import DataError

            raise DataError(f"no such metrics file: {args.check}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{args.check}: not valid JSON ({exc})") from exc
        if not isinstance(metrics, dict):
            raise ConfigError(f"{args.check}: expected a JSON object of metric -> number")
        report = check(metrics, problem.criteria)
        if args.json:
            _print_json(report.to_dict())
        else:
            print(report.to_text(), end="")
        return 0 if report.passed else 1
    if args.json:
        _print_json(problem.to_dict())
    else:
        print(problem.to_text(), end="")
    return 0


# -- datasets -----------------------------------------------------------------------------------


def cmd_datasets(args: argparse.Namespace, settings: Settings) -> int:
    from features import datasets as ds

    root = settings.datasets_path
    if args.action == "add":
        if not args.path:
            raise ConfigError("datasets add needs a PATH")
        path, mapping = resolve_data(args, settings)
        record = ds.register_dataset(path, mapping, root, name=args.name, dataset_id=args.id_,
                                     replace=args.replace, progress=_progress(not args.json))
        if args.json:
            _print_json(record.to_dict())
        else:
            print(f"registered {record.id}: {record.rows:,} rows, {record.time_min} .. "
                  f"{record.time_max}, label rate "
                  + (f"{record.label_rate:.3%}" if record.label_rate is not None else "n/a")
                  + f" ({record.profile_seconds:.1f} s)")
            for note in record.notes:
                print(f"note: {note}")
        return 0
    if args.action == "list":
        records = ds.list_datasets(root)
        if args.json:
            _print_json([r.to_dict() for r in records])
            return 0
        if not records:
            print(f"no data sets registered in {root} (fraudstream datasets add PATH ...)")
            return 0
        print(f"{'id':<24} {'rows':>11} {'from':<11} {'to':<11} {'label rate':>10} "
              f"{'card':>4} {'term':>4}  path")
        for r in records:
            rate = f"{r.label_rate:.3%}" if r.label_rate is not None else "-"
            print(f"{r.id:<24} {r.rows:>11,} {(r.time_min or '')[:10]:<11} "
                  f"{(r.time_max or '')[:10]:<11} {rate:>10} {'yes' if r.has_card else 'no':>4} "
                  f"{'yes' if r.has_terminal else 'no':>4}  {r.path}")
        return 0
    if not args.target:
        raise ConfigError(f"datasets {args.action} needs an ID")
    if args.action == "show":
        record = ds.get_dataset(root, args.target)
        if args.json:
            _print_json(record.to_dict())
        else:
            _show_record(record.to_dict())
        return 0
    ds.remove_dataset(root, args.target)
    print(f"removed {args.target} (the file itself is untouched)")
    return 0


def _show_record(d: dict[str, Any]) -> None:
    width = max(len(k) for k in d)
    for key, value in d.items():
        if key in ("schema", "mapping"):
            print(f"{key:<{width}}")
            items = value["columns"].items() if key == "mapping" else value.items()
            for k, v in items:
                print(f"  {k:<{width}} {v}")
            if key == "mapping" and value.get("drop"):
                print(f"  {'(dropped)':<{width}} {', '.join(value['drop'])}")
        elif key == "notes":
            for note in value:
                print(f"{'note':<{width}} {note}")
        elif isinstance(value, list):
            print(f"{key:<{width}} {', '.join(map(str, value)) or '-'}")
        else:
            print(f"{key:<{width}} {value}")


# -- clean --------------------------------------------------------------------------------------


def cmd_clean(args: argparse.Namespace, settings: Settings) -> int:
    from features.cleaning import clean_file, load_config

    path, mapping = resolve_data(args, settings)
    config = load_config(args.config)
    report = clean_file(
        path, mapping, args.out, config=config, currency_rates=settings.currency_rates,
        base_currency=settings.base_currency, default_currency=settings.default_currency,
        rejects_path=args.rejects, report_path=args.report, nrows=args.nrows,
        progress=_progress(not args.json),
    )
    if args.json:
        _print_json(report.to_dict())
        return 0
    print(report.to_text(), end="")
    print(f"wrote {report.output} ({report.rows_out:,} rows) in {report.seconds:.1f} s")
    if report.rejects_path:
        print(f"wrote {report.rejects_path} ({report.rows_rejected:,} rejected rows with reasons)")
    elif report.rows_rejected:
        print(f"{report.rows_rejected:,} rows rejected; --rejects FILE writes them with reasons")
    if args.report:
        print(f"wrote {args.report}")
    return 0


# -- eda ----------------------------------------------------------------------------------------


def cmd_eda(args: argparse.Namespace, settings: Settings) -> int:
    from features.eda import explore

    path, mapping = resolve_data(args, settings)
    result = explore(path, mapping, args.out, nrows=args.nrows, title=args.title,
                     corr_threshold=args.corr_threshold, progress=_progress(not args.json))
    if args.json:
        _print_json(result.to_dict())
        return 0
    s = result.summary
    d = s["dataset"]
    print(f"{d['rows']:,} rows, {d['time_min']} .. {d['time_max']}")
    if s["class_balance"]:
        cb = s["class_balance"]
        print(f"fraud: {cb['n_fraud']:,} ({cb['fraud_rate']:.3%}), one per "
              f"{cb['genuine_per_fraud'] or 0:,.0f} genuine")
    for pair in s["correlation"]["flagged_pairs"]:
        print(f"correlated: {pair['a']} ~ {pair['b']} (r = {pair['r']:.3f})")
    for note in s["notes"]:
        print(f"note: {note}")
    print(f"wrote {result.html} ({len(result.plots)} plots) and {result.json} "
          f"in {result.seconds:.1f} s")
    return 0


# -- registration -------------------------------------------------------------------------------


def register(sub: Any) -> None:
    p = sub.add_parser("criteria", help="the objective and the success criteria (from settings)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--check", metavar="METRICS.json",
                   help="check a JSON object of metrics; exit 1 unless every criterion passes")
    p.set_defaults(func=cmd_criteria)

    p = sub.add_parser("datasets", help="register, list and show historical data sets")
    p.add_argument("action", choices=["add", "list", "show", "remove"])
    p.add_argument("target", nargs="?", metavar="PATH|ID",
                   help="add: the file; show/remove: the data set id")
    p.add_argument("--name", help="add: a name (default: the file name); the id is made from it")
    p.add_argument("--as-id", dest="id_", metavar="ID", help="add: the id to register under")
    p.add_argument("--replace", action="store_true", help="add: replace a data set with that id")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_data_options(p, path=False)
    p.set_defaults(func=_datasets_entry)

    p = sub.add_parser("clean", help="clean a historical file by rules, with a report and rejects")
    add_data_options(p)
    p.add_argument("--out", required=True, metavar="OUT", help="cleaned file (.csv, .csv.gz, "
                   ".parquet); same column names, so the same mapping reads it")
    p.add_argument("--config", metavar="RULES.json", help="cleaning rules (default: built-in)")
    p.add_argument("--report", metavar="REPORT.json", help="write the report as JSON")
    p.add_argument("--rejects", metavar="FILE", help="write rejected rows with their reason")
    p.add_argument("--nrows", type=int, metavar="N", help="only the first N rows")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("eda", help="explore a historical file: HTML report, PNG plots, JSON")
    add_data_options(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for index.html, "
                   "summary.json and the plots")
    p.add_argument("--nrows", type=int, metavar="N", help="only the first N rows")
    p.add_argument("--title", help="the page title")
    p.add_argument("--corr-threshold", type=float, default=0.9, metavar="R",
                   help="flag pairs with |r| above this (default 0.9)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_eda)


def _datasets_entry(args: argparse.Namespace, settings: Settings) -> int:
    args.path = args.target if args.action == "add" else None
    args.dataset = None
    return cmd_datasets(args, settings)
