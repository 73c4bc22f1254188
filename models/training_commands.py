"""Subcommands of the offline lifecycle's second half: evaluate, leaderboard, train, tune.

The contract users script against::

    fraudstream evaluate --data PATH [--preset NAME | --label COL --time COL [--id COL]
        [--card COL] [--terminal COL] [--amount COL]] --model NAME --protocol holdout|prequential
        [--label-delay 7d] --json OUT

writes at least ``roc_auc``, ``average_precision``, ``n``, ``n_fraud`` (and
``card_precision_at_100`` when the file has a card column) at the top level of OUT. ``--model``
takes a comma-separated list (a leaderboard; the top-level figures are the best model's);
``leaderboard`` is ``evaluate`` with every model by default. ``train`` and ``tune`` take the same
data options (PATH, ``--data PATH`` or ``--dataset ID``; see
:func:`features.lifecycle_commands.add_data_options`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from fraudstream.errors import ConfigError
from fraudstream.settings import Settings, parse_duration

__all__ = ["register"]

DEFAULT_LEADERBOARD = "logreg,hat,arf,sk-logreg,sk-rf,sk-hgb,lgbm,xgb"


# -- options ------------------------------------------------------------------------------------


def _add_common(p: argparse.ArgumentParser) -> None:
    from features.lifecycle_commands import add_data_options

    p.add_argument("--data", metavar="PATH", help="the historical file (CSV or Parquet, gzip "
                   "allowed); same as PATH")
    add_data_options(p)
    g = p.add_argument_group("protocol")
    g.add_argument("--protocol", default="holdout", metavar="holdout|prequential",
                   help="holdout: train | delay | test, model frozen on the test; prequential: "
                        "stream in event order, predict before learning, labels after the delay "
                        "(default holdout)")
    g.add_argument("--label-delay", metavar="DURATION", help="a label is known this long after "
                   "its transaction; also the gap between training and test (default: the "
                   "preset's, else 7d)")
    g.add_argument("--train-start", metavar="DATE", help="first day of the training period")
    g.add_argument("--train-days", type=float, metavar="N", help="length of the training period")
    g.add_argument("--test-start", metavar="DATE", help="first day of the test period")
    g.add_argument("--test-days", type=float, metavar="N", help="length of the test period")
    g.add_argument("--test-fraction", type=float, default=0.3, metavar="F",
                   help="without dates: share of the time span tested (default 0.3)")
    g.add_argument("--calibration", type=float, default=0.25, metavar="F",
                   help="last share of the training period where the threshold is chosen "
                        "(default 0.25)")
    g.add_argument("--exclude-known-compromised", action="store_true",
                   help="leave out test transactions of cards with a fraud known before that day "
                        "(the handbook's protocol)")
    g.add_argument("--refit-every", default="1d", metavar="DURATION",
                   help="prequential: how often batch models are refitted (default 1d)")
    g.add_argument("--refit-window", metavar="DURATION",
                   help="prequential: labelled history of each batch refit (default: as long as "
                        "the training period)")
    g.add_argument("--k", type=int, default=100, help="card precision@k (default 100)")
    g.add_argument("--max-fpr", type=float, metavar="F", help="false-positive rate target of the "
                   "operating threshold (default FRAUDSTREAM_MAX_FPR)")
    p.add_argument("--features", metavar="NAME", help="feature set (default: handbook for the "
                   "handbook preset, else default; per-transaction features without cards)")
    p.add_argument("--nrows", type=int, metavar="N", help="only the first N rows of the file")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT ('-': stdout)")
    p.add_argument("--plots", metavar="DIR", help="ROC and precision-recall PNGs (default: "
                   "OUT_curves/ next to --json OUT)")


def _data(args: argparse.Namespace, settings: Settings) -> tuple[Path, Any]:
    from features.lifecycle_commands import resolve_data

    _check_outputs(args)
    if args.data:
        if args.path:
            raise ConfigError("give the file once: PATH or --data PATH")
        args.path = args.data
    return resolve_data(args, settings)


def _options(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from models.protocols import parse_time
    from models.training import ProtocolOptions

    if args.protocol not in ("holdout", "prequential"):
        raise ConfigError(f"unknown protocol {args.protocol!r}; use holdout or prequential")
    for name in ("label_delay", "refit_every", "refit_window"):
        value = getattr(args, name)
        if value is not None:
            try:
                parse_duration(value)
            except ValueError as exc:
                raise ConfigError(f"--{name.replace('_', '-')}: {exc}") from None
    for name in ("train_start", "test_start"):
        parse_time(getattr(args, name))
    if args.max_fpr is not None and not 0.0 <= args.max_fpr <= 1.0:
        raise ConfigError(f"--max-fpr must be in [0, 1], not {args.max_fpr}")
    try:
        return ProtocolOptions(
            protocol=args.protocol, label_delay=args.label_delay, train_start=args.train_start,
            train_days=args.train_days, test_start=args.test_start, test_days=args.test_days,
            test_fraction=args.test_fraction, calibration=args.calibration,
            exclude_known_compromised=args.exclude_known_compromised,
            refit_every=args.refit_every, refit_window=args.refit_window, k=args.k)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ConfigError(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}") from None


def _json_arg(value: str | None, what: str) -> dict[str, Any] | None:
    """A JSON object given inline or as a file name."""
    if value is None:
        return None
    text = value
    if not value.lstrip().startswith("{"):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError:
            raise ConfigError(f"{what}: neither a JSON object nor a readable file: {value!r}") \
                from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: expected a JSON object")
    return data


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse output places that do not exist BEFORE any work is done."""
    if args.json and args.json != "-" and not Path(args.json).parent.exists():
        raise ConfigError(f"--json: no such folder: {Path(args.json).parent}")
    if args.plots and not Path(args.plots).parent.exists():
        raise ConfigError(f"--plots: no such folder: {Path(args.plots).parent}")


def _plots_dir(args: argparse.Namespace) -> Path | None:
    if args.plots:
        return Path(args.plots)
    if args.json and args.json != "-":
        out = Path(args.json)
        return out.with_name(out.name.removesuffix(".json") + "_curves")
    return None


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, str | bytes):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _write_json(target: str | None, data: dict[str, Any]) -> None:
    if not target:
        return
    text = json.dumps(_clean(data), indent=2, default=str)
    if target == "-":
        print(text)
        return
    path = Path(target)
    if not path.parent.exists():
        raise ConfigError(f"--json: no such folder: {path.parent}")
    path.write_text(text + "\n", encoding="utf-8")


def _progress(args: argparse.Namespace) -> Any:
    from features.lifecycle_commands import _progress as show

    return show(args.json != "-")


def _say(args: argparse.Namespace, text: str) -> None:
    if args.json != "-":
        print(text)


def _print_report(args: argparse.Namespace, report: Any) -> None:
    s = report.split
    _say(args, f"data: {report.data['rows']:,} rows, {report.data['frauds']:,} frauds, feature set "
               f"{report.data['feature_set']} ({len(report.data['features'])} features)")
    _say(args, f"{report.protocol}: train {s['train_start'][:19]} .. {s['train_end'][:19]} "
               f"({s['train_rows']:,} rows, {s['train_frauds']:,} frauds) | delay "
               f"{s['label_delay_s'] / 86400:g} d | test {s['test_start'][:19]} .. "
               f"{s['test_end'][:19]}: {s['evaluated_rows']:,} rows, {s['evaluated_frauds']:,} "
               "frauds" + (f" ({s['excluded_known_compromised']:,} of known compromised cards "
                           "left out)" if s["exclude_known_compromised"] else ""))
    for note in report.notes:
        _say(args, f"note: {note}")
    _say(args, "")
    _say(args, report.table())
    best = report.best
    if best.criteria is not None:
        _say(args, "")
        _say(args, f"best: {best.name}")
        _say(args, best.criteria.to_text().rstrip())
    if report.plots:
        _say(args, "curves: " + ", ".join(report.plots.values()))


# -- handlers -----------------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from models.training import evaluate, parse_models

    models = args.model or getattr(args, "default_models", None)
    if not models:
        raise ConfigError("name the model(s) to evaluate: --model NAME[,NAME...]")
    params = _json_arg(args.params, "--params")
    specs = parse_models(models, params)
    if params and len(specs) > 1:
        raise ConfigError("--params applies to one model; evaluate one model at a time with it")
    path, mapping = _data(args, settings)
    options = _options(args)
    report = evaluate(path, mapping, specs, options, feature_set=args.features,
                      settings=settings, max_fpr=args.max_fpr, plots_dir=_plots_dir(args),
                      nrows=args.nrows, progress=_progress(args))
    _print_report(args, report)
    _write_json(args.json, report.to_dict())
    if args.json and args.json != "-":
        print(f"wrote {args.json}")
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from models.training import train

    if not args.model:
        raise ConfigError("name the model to train: --model NAME")
    if "," in args.model:
        raise ConfigError("train takes one model; compare several with evaluate or leaderboard")
    params = _json_arg(args.params, "--params")
    path, mapping = _data(args, settings)
    options = _options(args)
    result = train(path, mapping, args.model, options, params=params, feature_set=args.features,
                   settings=settings, max_fpr=args.max_fpr, promote=args.promote,
                   challenger=args.challenger, plots_dir=_plots_dir(args), nrows=args.nrows,
                   progress=_progress(args))
    _print_report(args, result.report)
    role = "champion" if result.promoted else "challenger" if result.challenger else "stored"
    thr = "none" if result.threshold is None else f"{result.threshold:.6g}"
    _say(args, f"registered {result.version} ({args.model}, {role}, operating threshold {thr}) "
               f"in {result.registry}")
    for note in result.notes:
        _say(args, f"note: {note}")
    _write_json(args.json, result.to_dict())
    return 0


def cmd_tune(args: argparse.Namespace, settings: Settings) -> int:
    from models.tuning import METHODS, tune

    if not args.model or "," in args.model:
        raise ConfigError("name the one model to tune: --model NAME")
    if args.method not in METHODS:
        raise ConfigError(f"unknown search method {args.method!r}; use {', '.join(METHODS)}")
    if args.trials is not None and args.trials < 1:
        raise ConfigError("--trials must be at least 1")
    space = _json_arg(args.space, "--space")
    fixed = _json_arg(args.params, "--params")
    path, mapping = _data(args, settings)
    options = _options(args)
    result = tune(path, mapping, args.model, space=space, method=args.method,
                  trials=args.trials, options=options, fixed=fixed, feature_set=args.features,
                  settings=settings, max_fpr=args.max_fpr, seed=args.seed,
                  folds=args.folds, register=args.register, nrows=args.nrows,
                  progress=_progress(args))
    best = result.best
    _say(args, f"{result.method} search of {result.model}: {len(result.trials)} trials, "
               f"{result.protocol}, objective {result.objective}, {result.seconds:.1f} s")
    _say(args, result.table())
    if best is not None:
        _say(args, f"best: trial {best.number}, {result.objective} {best.value}, "
                   f"params {json.dumps(result.best_params)}")
    if result.registered is not None:
        thr = result.registered.threshold
        _say(args, f"registered {result.registered.version} as a challenger (operating "
                   f"threshold {'none' if thr is None else f'{thr:.6g}'})")
    _write_json(args.json, result.to_dict())
    return 0


# -- registration -------------------------------------------------------------------------------


def register(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="evaluate one or more models on a historical file "
                       "(holdout or prequential): metrics, criteria, curves, JSON")
    p.add_argument("--model", metavar="NAME[,NAME...]", help="zoo models (logreg, hat, arf, ...) "
                   "and batch models (sk-logreg, sk-tree, sk-rf, sk-hgb, lgbm, xgb)")
    p.add_argument("--params", metavar="JSON|FILE", help="parameters of the (one) model")
    _add_common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("leaderboard", help="evaluate every model (or --model ...) on one split "
                       "and rank them")
    p.add_argument("--model", metavar="NAME[,NAME...]",
                   help=f"default: {DEFAULT_LEADERBOARD}")
    p.add_argument("--params", metavar="JSON|FILE", help=argparse.SUPPRESS)
    _add_common(p)
    p.set_defaults(func=cmd_evaluate, default_models=DEFAULT_LEADERBOARD)

    p = sub.add_parser("train", help="train one model on the training period, evaluate it, "
                       "register it with its threshold (optionally promote)")
    p.add_argument("--model", metavar="NAME", help="one model")
    p.add_argument("--params", metavar="JSON|FILE", help="its parameters")
    p.add_argument("--promote", action="store_true", help="make it the champion")
    p.add_argument("--challenger", action="store_true", help="add it as a challenger")
    _add_common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("tune", help="search a model's parameters (grid, random, bayes) on a "
                       "time split; --register saves the best as a challenger")
    p.add_argument("--model", metavar="NAME", help="one model")
    p.add_argument("--method", default="bayes", metavar="grid|random|bayes",
                   help="search method (default bayes: Optuna TPE)")
    p.add_argument("--trials", type=int, metavar="N", help="configurations to try (default 20; "
                   "grid: every combination)")
    p.add_argument("--space", metavar="JSON|FILE", help="search space: {param: [values] | "
                   "{low, high, log?, int?, step?}} (default: the model's)")
    p.add_argument("--params", metavar="JSON|FILE", help="fixed parameters, not searched")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument("--folds", type=int, default=1, metavar="N",
                   help="judge each configuration on N splits, each moved back by the test "
                        "length (the mean of the objective; default 1)")
    p.add_argument("--register", action="store_true",
                   help="save the best configuration (trained) as a challenger in the registry")
    _add_common(p)
    p.set_defaults(func=cmd_tune)
