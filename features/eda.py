"""Exploratory data analysis: what a historical file looks like, as numbers, PNGs and one HTML page.

:func:`summarize` computes the numbers from a canonical frame (:func:`features.columns.read_frame`):
the class balance, summary statistics overall and by class, the correlation matrix with the pairs
above a threshold (0.9) flagged and each column's correlation with the label, the daily fraud rate,
the amount and the fraud rate by hour of the day (UTC), and card and terminal counts.
:func:`explore` writes them to ``summary.json``, draws the plots (``*.png``, matplotlib without
pyplot) and an ``index.html`` that shows both. A file without a label, card, terminal or amount
still works: the sections that need the missing column are skipped, and the summary's ``notes``
say which.

Besides the file's own numeric columns, the correlation matrix holds three time columns derived
for exploration only: ``hour``, ``weekday`` and ``is_night`` (hour <= 6).

>>> import pandas as pd
>>> frame = pd.DataFrame({
...     "transaction_id": ["1", "2", "3", "4"],
...     "timestamp": pd.to_datetime(["2024-01-01 01:00", "2024-01-01 13:00",
...                                  "2024-01-02 02:00", "2024-01-02 14:00"], utc=True),
...     "amount": [10.0, 20.0, 30.0, 300.0], "is_fraud": [0, 0, 0, 1]})
>>> s = summarize(frame)
>>> s["class_balance"]["fraud_rate"], [d["rate"] for d in s["fraud_rate_daily"]]
(0.25, [0.0, 0.5])
"""

from __future__ import annotations

import html
import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.columns import ColumnMapping, read_frame
from features.plotting import FRAUD, GENUINE, check_plotting, new_figure, save_png
from fraudstream.progress import CancelFn, ProgressFn, Tracker

__all__ = ["EdaResult", "explore", "explore_frame", "summarize"]

ID_COLUMNS = ("transaction_id", "card_id", "terminal_id")
NON_FEATURES = {"transaction_id", "timestamp", "card_id", "terminal_id", "is_fraud", "currency",
                "channel", "country", "city", "merchant_category"}
DERIVED = ("hour", "weekday", "is_night")
MAX_HIST_COLUMNS = 12


@dataclass
class EdaResult:
    """Where the report went, and its numbers."""

    out_dir: Path
    summary: dict[str, Any]
    html: Path
    json: Path
    plots: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "html": str(self.html), "json": str(self.json),
                "plots": {k: str(v) for k, v in self.plots.items()},
                "seconds": round(self.seconds, 3), "summary": self.summary}


# -- the numbers --------------------------------------------------------------------------------


def _num(x: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _stats(s: pd.Series) -> dict[str, Any]:
    s = s.astype(float)
    v = s.dropna()
    if v.empty:
        return {"count": 0, "missing": int(s.isna().sum())}
    q = v.quantile([0.01, 0.25, 0.5, 0.75, 0.99]).to_numpy()
    return {"count": int(v.size), "missing": int(s.size - v.size), "mean": _num(v.mean()),
            "std": _num(v.std()), "min": _num(v.min()), "p01": _num(q[0]), "p25": _num(q[1]),
            "median": _num(q[2]), "p75": _num(q[3]), "p99": _num(q[4]), "max": _num(v.max())}


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric columns worth describing: the amount, the coordinates and extra features."""
    return [c for c in frame.columns if c not in NON_FEATURES
            and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def _derived(frame: pd.DataFrame) -> pd.DataFrame:
    ts = frame["timestamp"]
    hour = ts.dt.hour
    return pd.DataFrame({"hour": hour.astype(float), "weekday": ts.dt.day_of_week.astype(float),
                         "is_night": (hour <= 6).astype(float)}, index=frame.index)


def summarize(frame: pd.DataFrame, corr_threshold: float = 0.9,
              tracker: Tracker | None = None) -> dict[str, Any]:
    """Every number of the EDA report, JSON-ready, from a canonical frame."""
    tracker = tracker or Tracker()
    notes: list[str] = []
    labelled = "is_fraud" in frame
    y = frame["is_fraud"].astype(int) if labelled else None
    ts = frame["timestamp"]
    features = feature_columns(frame)
    out: dict[str, Any] = {}
    out["dataset"] = {
        "rows": len(frame), "columns": [str(c) for c in frame.columns],
        "time_min": ts.min().isoformat() if len(frame) else None,
        "time_max": ts.max().isoformat() if len(frame) else None,
        "days": _num((ts.max() - ts.min()).total_seconds() / 86400) if len(frame) else 0.0,
        "labelled": labelled, "has_card": "card_id" in frame, "has_terminal": "terminal_id" in frame,
        "has_amount": "amount" in frame, "feature_columns": features,
    }
    out["missing"] = {str(c): int(n) for c, n in frame.isna().sum().items() if n}
    tracker.step(0.32, "class balance")
    if y is not None:
        n_fraud = int(y.sum())
        rate = n_fraud / len(y) if len(y) else None
        out["class_balance"] = {
            "n": len(y), "n_fraud": n_fraud, "n_genuine": len(y) - n_fraud, "fraud_rate": rate,
            "genuine_per_fraud": _num((len(y) - n_fraud) / n_fraud) if n_fraud else None,
            "imbalanced": bool(rate is not None and rate < 0.05),
        }
        if rate is not None and rate < 0.05:
            notes.append(f"classes are imbalanced: {rate:.2%} fraud; accuracy is meaningless here, "
                         "use average precision, recall at a fixed false-positive rate, ROC AUC")
    else:
        out["class_balance"] = None
        notes.append("no label column: class balance, class distributions, fraud rates and "
                     "correlation with the label are skipped")
    tracker.step(0.38, "summary statistics")
    out["stats"] = {c: _stats(frame[c]) for c in features}
    if y is not None:
        out["stats_by_class"] = {
            c: {"genuine": _stats(frame.loc[y == 0, c]), "fraud": _stats(frame.loc[y == 1, c])}
            for c in features}
    if "amount" not in frame:
        notes.append("no amount column: amount distributions and amount by hour are skipped")
    tracker.step(0.45, "correlations")
    corr_frame = pd.concat([frame[features].astype(float), _derived(frame)], axis=1)
    if y is not None:
        corr_frame["is_fraud"] = y.astype(float)
    corr = corr_frame.corr(method="pearson") if len(corr_frame.columns) else pd.DataFrame()
    cols = [str(c) for c in corr.columns]
    out["correlation"] = {
        "method": "pearson", "columns": cols,
        "matrix": [[_num(v) for v in row] for row in corr.to_numpy()],
        "threshold": corr_threshold,
        "flagged_pairs": [
            {"a": cols[i], "b": cols[j], "r": _num(corr.iat[i, j])}
            for i in range(len(cols)) for j in range(i + 1, len(cols))
            if pd.notna(corr.iat[i, j]) and abs(corr.iat[i, j]) > corr_threshold
        ],
        "with_label": ({c: _num(corr.at[c, "is_fraud"]) for c in cols if c != "is_fraud"}
                       if y is not None else None),
    }
    constant = [c for c in cols if corr_frame[c].nunique(dropna=True) <= 1]
    if constant:
        notes.append("constant column(s), no correlation: " + ", ".join(constant))
    for pair in out["correlation"]["flagged_pairs"]:
        notes.append(f"{pair['a']} and {pair['b']} are highly correlated (r = {pair['r']:.3f}): "
                     "keeping both adds little (multicollinearity)")
    tracker.step(0.55, "fraud rate over time")
    day = ts.dt.floor("D")
    grouped = pd.DataFrame({"day": day, "y": y if y is not None else 0}).groupby("day")["y"]
    daily = pd.DataFrame({"n": grouped.size(), "n_fraud": grouped.sum()})
    out["fraud_rate_daily"] = [
        {"date": d.strftime("%Y-%m-%d"), "n": int(r.n),
         "n_fraud": int(r.n_fraud) if y is not None else None,
         "rate": _num(r.n_fraud / r.n) if y is not None and r.n else None}
        for d, r in daily.iterrows()]
    tracker.step(0.6, "by hour")
    hour = ts.dt.hour
    parts: dict[str, pd.Series] = {"hour": hour}
    if y is not None:
        parts["y"] = y
    if "amount" in frame:
        parts["amount"] = frame["amount"]
    hourly = pd.DataFrame(parts)
    by_hour = []
    for h in range(24):
        sub = hourly[hourly["hour"] == h]
        row: dict[str, Any] = {"hour": h, "n": len(sub)}
        if y is not None:
            row["n_fraud"] = int(sub["y"].sum())
            row["fraud_rate"] = _num(sub["y"].mean()) if len(sub) else None
        if "amount" in sub:
            row["mean_amount"] = _num(sub["amount"].mean())
            row["median_amount"] = _num(sub["amount"].median())
            if y is not None:
                row["mean_amount_genuine"] = _num(sub.loc[sub["y"] == 0, "amount"].mean())
                row["mean_amount_fraud"] = _num(sub.loc[sub["y"] == 1, "amount"].mean())
        by_hour.append(row)
    out["by_hour"] = by_hour
    out["hour_timezone"] = "UTC"
    tracker.step(0.65, "cards and terminals")
    for entity, key in (("cards", "card_id"), ("terminals", "terminal_id")):
        if key not in frame:
            out[entity] = None
            notes.append(f"no {key} column: {entity} statistics are skipped" + (
                "; card-based features and metrics (card precision@k) do not apply"
                if key == "card_id" else ""))
            continue
        per = frame.groupby(key, sort=False).size()
        info: dict[str, Any] = {"n": int(per.size), "tx_per_entity": _stats(per)}
        if y is not None:
            frauds = y.groupby(frame[key], sort=False).sum()
            info["with_fraud"] = int((frauds > 0).sum())
            info["share_with_fraud"] = _num((frauds > 0).mean())
        out[entity] = info
    out["notes"] = notes
    return out


# -- the plots ----------------------------------------------------------------------------------


def _hist_by_class(ax: Any, values: pd.Series, y: pd.Series | None, title: str) -> None:
    v = values.astype(float)
    finite = v[np.isfinite(v)]
    if finite.empty:
        ax.set_title(f"{title}: no values")
        return
    if len(finite) >= 2000:  # trim the extreme 0.1 % on each side, so the bulk is visible
        lo, hi = finite.quantile(0.001), finite.quantile(0.999)
    else:
        lo, hi = finite.min(), finite.max()
    if not hi > lo:
        lo, hi = finite.min() - 0.5, finite.max() + 0.5
    bins = np.linspace(lo, hi, 60)
    groups = [("all", finite, GENUINE)] if y is None else [
        ("genuine", finite[y.reindex(finite.index) == 0], GENUINE),
        ("fraud", finite[y.reindex(finite.index) == 1], FRAUD)]
    for name, data, color in groups:
        if data.empty:
            continue
        inside = data[(data >= lo) & (data <= hi)]
        if inside.empty:
            continue
        counts, edges = np.histogram(inside, bins=bins, density=True)
        outside = len(data) - len(inside)
        label = f"{name} (n={len(data):,}" + (f", {outside:,} off range)" if outside else ")")
        ax.stairs(counts, edges, label=label, color=color, fill=True, alpha=0.35)
        ax.stairs(counts, edges, color=color, linewidth=1.2)
    ax.set_title(title)
    ax.set_ylabel("density")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _plot_class_balance(summary: dict[str, Any], path: Path) -> Path:
    cb = summary["class_balance"]
    fig = new_figure(5.5, 4)
    ax = fig.add_subplot()
    names, counts = ["genuine", "fraud"], [cb["n_genuine"], cb["n_fraud"]]
    bars = ax.bar(names, counts, color=[GENUINE, FRAUD])
    ax.set_yscale("log")
    ax.set_ylabel("transactions (log scale)")
    for bar, n in zip(bars, counts, strict=True):
        share = n / cb["n"] if cb["n"] else 0
        ax.annotate(f"{n:,}\n{share:.2%}", (bar.get_x() + bar.get_width() / 2, max(n, 1)),
                    ha="center", va="bottom", fontsize=9)
    ax.set_ylim(bottom=1, top=max(counts) * 8 if max(counts) else 10)
    ax.set_title(f"Class balance: {cb['fraud_rate']:.2%} fraud")
    return save_png(fig, path)


def _plot_amount(frame: pd.DataFrame, y: pd.Series | None, path: Path) -> Path:
    fig = new_figure(10, 4)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[2, 1])
    _hist_by_class(ax1, frame["amount"], y, "Amount by class")
    ax1.set_xlabel("amount")
    from matplotlib.cbook import boxplot_stats

    amounts = frame["amount"].astype(float)
    groups = [("all", amounts.dropna())] if y is None else [
        ("genuine", amounts[y == 0].dropna()), ("fraud", amounts[y == 1].dropna())]
    groups = [(n, g) for n, g in groups if not g.empty]
    stats = []
    for name, g in groups:
        st = boxplot_stats(g.to_numpy(), whis=1.5)[0]
        st["label"] = name
        st["fliers"] = []
        stats.append(st)
    if stats:
        box = ax2.bxp(stats, showfliers=False, patch_artist=True)
        for patch, (name, _) in zip(box["boxes"], groups, strict=True):
            patch.set_facecolor(FRAUD if name == "fraud" else GENUINE)
            patch.set_alpha(0.5)
    ax2.set_title("Amount box plot (no fliers)")
    return save_png(fig, path)


def _plot_features(frame: pd.DataFrame, columns: list[str], y: pd.Series | None,
                   path: Path) -> Path:
    n = len(columns)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = new_figure(4 * ncols, 3 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, c in zip(axes, columns, strict=False):
        _hist_by_class(ax, frame[c], y, c)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle("Distributions by class")
    return save_png(fig, path)


def _plot_correlation(summary: dict[str, Any], path: Path) -> Path:
    corr = summary["correlation"]
    cols = corr["columns"]
    m = np.array([[np.nan if v is None else v for v in row] for row in corr["matrix"]], dtype=float)
    size = max(5.0, 0.7 * len(cols) + 2)
    fig = new_figure(size, size * 0.85)
    ax = fig.add_subplot()
    image = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(cols)), cols, fontsize=8)
    if len(cols) <= 16:
        for i in range(len(cols)):
            for j in range(len(cols)):
                if np.isfinite(m[i, j]):
                    flagged = i != j and abs(m[i, j]) > corr["threshold"]
                    ax.text(j, i, f"{0.0 if abs(m[i, j]) < 0.005 else m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(m[i, j]) > 0.6 else "black",
                            fontweight="bold" if flagged else "normal")
    for pair in corr["flagged_pairs"]:
        i, j = cols.index(pair["a"]), cols.index(pair["b"])
        for a, b in ((i, j), (j, i)):
            ax.add_patch(_rect(b, a))
    fig.colorbar(image, ax=ax, shrink=0.8, label="Pearson r")
    ax.set_title(f"Correlation (pairs with |r| > {corr['threshold']:g} boxed)")
    return save_png(fig, path)


def _rect(x: int, y: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2)


def _plot_daily(summary: dict[str, Any], path: Path) -> Path:
    daily = summary["fraud_rate_daily"]
    dates = pd.to_datetime([d["date"] for d in daily])
    fig = new_figure(10, 4)
    ax = fig.add_subplot()
    ax.bar(dates, [d["n"] for d in daily], color="#BBBBBB", width=1.0, label="transactions")
    ax.set_ylabel("transactions per day")
    if summary["class_balance"] is not None:
        ax2 = ax.twinx()
        ax2.plot(dates, [100 * (d["rate"] or 0) for d in daily], color=FRAUD, linewidth=1.5,
                 label="fraud rate")
        ax2.set_ylabel("fraud rate (%)", color=FRAUD)
        ax2.set_ylim(bottom=0)
        ax.set_title("Daily volume and fraud rate")
    else:
        ax.set_title("Daily volume (no label)")
    fig.autofmt_xdate()
    return save_png(fig, path)


def _plot_by_hour(summary: dict[str, Any], path: Path) -> Path:
    rows = summary["by_hour"]
    hours = [r["hour"] for r in rows]
    has_amount = summary["dataset"]["has_amount"]
    labelled = summary["class_balance"] is not None
    fig = new_figure(10 if has_amount else 6, 4)
    axes: Any = np.atleast_1d(fig.subplots(1, 2 if has_amount else 1))  # type: ignore[arg-type]
    if has_amount:
        ax = axes[0]
        if labelled:
            ax.plot(hours, [r["mean_amount_genuine"] for r in rows], "o-", color=GENUINE,
                    label="genuine")
            ax.plot(hours, [r["mean_amount_fraud"] for r in rows], "o-", color=FRAUD,
                    label="fraud")
        else:
            ax.plot(hours, [r["mean_amount"] for r in rows], "o-", color=GENUINE, label="all")
        ax.set_xlabel(f"hour of day ({summary['hour_timezone']})")
        ax.set_ylabel("mean amount")
        ax.set_title("Amount by hour and class")
        ax.set_xticks(range(0, 24, 3))
        ax.legend(fontsize=8)
    ax = axes[-1]
    ax.bar(hours, [r["n"] for r in rows], color="#BBBBBB")
    ax.set_xlabel(f"hour of day ({summary['hour_timezone']})")
    ax.set_ylabel("transactions")
    ax.set_xticks(range(0, 24, 3))
    if labelled:
        ax2 = ax.twinx()
        ax2.plot(hours, [100 * (r["fraud_rate"] or 0) for r in rows], "o-", color=FRAUD)
        ax2.set_ylabel("fraud rate (%)", color=FRAUD)
        ax2.set_ylim(bottom=0)
    ax.set_title("Volume and fraud rate by hour")
    return save_png(fig, path)


# -- the page -----------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(summary: dict[str, Any], plots: dict[str, Path], title: str) -> str:
    d = summary["dataset"]
    cb = summary["class_balance"]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class=meta>Generated {summary['generated_at']} in {summary['seconds']:.1f} s "
             f"from <code>{html.escape(summary['source'])}</code>. Numbers: "
             "<a href='summary.json'>summary.json</a>.</p>",
             "<h2>Data set</h2>",
             _table(["rows", "from", "to", "days", "label", "cards", "terminals", "amount"],
                    [[d["rows"], d["time_min"], d["time_max"], d["days"], d["labelled"],
                      summary["cards"]["n"] if summary["cards"] else None,
                      summary["terminals"]["n"] if summary["terminals"] else None,
                      d["has_amount"]]])]
    if summary["notes"]:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>"
                                                    for n in summary["notes"]) + "</ul>")
    if cb:
        parts += ["<h2>Class balance</h2>",
                  _table(["transactions", "fraud", "genuine", "fraud rate", "genuine per fraud"],
                         [[cb["n"], cb["n_fraud"], cb["n_genuine"], f"{cb['fraud_rate']:.3%}",
                           cb["genuine_per_fraud"]]])]
    if summary["missing"]:
        parts.append("<h2>Missing values</h2>" + _table(
            ["column", "missing", "share"],
            [[c, n, f"{n / max(1, d['rows']):.2%}"] for c, n in summary["missing"].items()]))
    entity_rows = []
    for entity in ("cards", "terminals"):
        info = summary[entity]
        if info:
            tx = info["tx_per_entity"]
            entity_rows.append([entity, info["n"], tx.get("mean"), tx.get("median"), tx.get("max"),
                                info.get("with_fraud"), info.get("share_with_fraud")])
    if entity_rows:
        parts.append("<h2>Cards and terminals</h2>" + _table(
            ["entity", "count", "transactions each: mean", "median", "max", "with a fraud",
             "share with a fraud"], entity_rows))
    daily = [r for r in summary["fraud_rate_daily"] if r["rate"] is not None]
    if daily:
        lo = min(daily, key=lambda r: r["rate"])
        hi = max(daily, key=lambda r: r["rate"])
        parts.append(f"<p>Daily fraud rate ranges from {lo['rate']:.3%} ({lo['date']}) to "
                     f"{hi['rate']:.3%} ({hi['date']}) over {len(daily)} days.</p>")
    captions = {
        "class_balance": "Class balance (log scale).",
        "amount_by_class": "Amount distribution by class: density histograms and box plots.",
        "features_by_class": "Distributions of the other numeric columns by class.",
        "correlation": "Pearson correlation of the numeric columns, the derived time columns "
                       "and the label; highly correlated pairs are boxed.",
        "fraud_rate_daily": "Transactions per day (bars) and the daily fraud rate (line).",
        "by_hour": "Mean amount by hour of day and class; volume and fraud rate by hour.",
    }
    stats = summary["stats"]
    if stats:
        parts.append("<h2>Summary statistics</h2>")
        keys = ["count", "missing", "mean", "std", "min", "p01", "median", "p99", "max"]
        parts.append(_table(["column", *keys],
                            [[c, *[s.get(k) for k in keys]] for c, s in stats.items()]))
        if "stats_by_class" in summary:
            rows = []
            for c, by in summary["stats_by_class"].items():
                for cls in ("genuine", "fraud"):
                    s = by[cls]
                    rows.append([c, cls, s.get("count"), s.get("mean"), s.get("median"),
                                 s.get("p99"), s.get("max")])
            parts.append("<h3>By class</h3>" + _table(
                ["column", "class", "count", "mean", "median", "p99", "max"], rows))
    corr = summary["correlation"]
    parts.append("<h2>Correlation</h2>")
    if corr["flagged_pairs"]:
        parts.append(f"<p>Pairs with |r| &gt; {corr['threshold']:g}:</p>" + _table(
            ["a", "b", "r"], [[p["a"], p["b"], p["r"]] for p in corr["flagged_pairs"]]))
    else:
        parts.append(f"<p>No pair has |r| &gt; {corr['threshold']:g}.</p>")
    if corr["with_label"]:
        ranked = sorted(corr["with_label"].items(), key=lambda kv: -abs(kv[1] or 0))
        parts.append("<h3>Correlation with the label</h3>" + _table(
            ["column", "r with is_fraud"], [[c, r] for c, r in ranked]))
    parts.append("<h2>Plots</h2>")
    for name, path in plots.items():
        parts.append(f"<figure><img src='{html.escape(path.name)}' alt='{html.escape(name)}'>"
                     f"<figcaption>{html.escape(captions.get(name, name))}</figcaption></figure>")
    by_hour = summary["by_hour"]
    hour_cols = [k for k in ("hour", "n", "n_fraud", "fraud_rate", "mean_amount",
                             "mean_amount_genuine", "mean_amount_fraud") if k in by_hour[0]]
    parts.append("<h2>By hour of day (UTC)</h2>" + _table(
        hour_cols, [[r[k] for k in hour_cols] for r in by_hour]))
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
             "color:#222}table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.9em}"
             "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
             "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%;border:1px solid #eee}figure{margin:1em 0 2em}"
             "figcaption{color:#555;font-size:.9em}.meta{color:#666}")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n")


# -- entry points -------------------------------------------------------------------------------


def explore_frame(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    source: str = "data",
    title: str | None = None,
    corr_threshold: float = 0.9,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    _tracker: Tracker | None = None,
    _started: float | None = None,
) -> EdaResult:
    """The EDA report of a canonical ``frame`` into ``out_dir`` (index.html, summary.json, PNGs)."""
    started = _started if _started is not None else time.perf_counter()
    tracker = _tracker or Tracker(progress, cancel, what="EDA")
    check_plotting()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    summary = summarize(frame, corr_threshold, tracker)
    timings["numbers"] = time.perf_counter() - t
    y = frame["is_fraud"].astype(int) if "is_fraud" in frame else None
    plots: dict[str, Path] = {}
    t = time.perf_counter()
    jobs: list[tuple[str, Any]] = []
    if summary["class_balance"]:
        jobs.append(("class_balance", lambda p: _plot_class_balance(summary, p)))
    if "amount" in frame:
        jobs.append(("amount_by_class", lambda p: _plot_amount(frame, y, p)))
    others = [c for c in summary["dataset"]["feature_columns"] if c != "amount"]
    if others:
        if len(others) > MAX_HIST_COLUMNS:
            summary["notes"].append(f"distributions drawn for the first {MAX_HIST_COLUMNS} of "
                                    f"{len(others)} numeric columns")
        cols = others[:MAX_HIST_COLUMNS]
        jobs.append(("features_by_class", lambda p: _plot_features(frame, cols, y, p)))
    if summary["correlation"]["columns"]:
        jobs.append(("correlation", lambda p: _plot_correlation(summary, p)))
    if summary["fraud_rate_daily"]:
        jobs.append(("fraud_rate_daily", lambda p: _plot_daily(summary, p)))
        jobs.append(("by_hour", lambda p: _plot_by_hour(summary, p)))
    for i, (name, draw) in enumerate(jobs):
        tracker.step(0.7 + 0.25 * i / max(1, len(jobs)), f"plot {name}")
        plots[name] = draw(out / f"{name}.png")
    timings["plots"] = time.perf_counter() - t
    tracker.step(0.96, "writing the page")
    summary["source"] = source
    summary["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    summary["plots"] = {k: v.name for k, v in plots.items()}
    summary["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    summary["seconds"] = round(time.perf_counter() - started, 3)
    json_path = out / "summary.json"
    json_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    html_path = out / "index.html"
    html_path.write_text(_page(summary, plots, title or f"EDA: {Path(source).name}"),
                         encoding="utf-8")
    tracker.done("EDA written")
    return EdaResult(out, summary, html_path, json_path, plots, time.perf_counter() - started)


def explore(
    path: str | Path,
    mapping: ColumnMapping,
    out_dir: str | Path,
    *,
    nrows: int | None = None,
    title: str | None = None,
    corr_threshold: float = 0.9,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> EdaResult:
    """Read the file at ``path`` with ``mapping`` and write its EDA report into ``out_dir``."""
    started = time.perf_counter()
    tracker = Tracker(progress, cancel, what="EDA")
    check_plotting()
    tracker.step(0.0, f"reading {Path(path).name}")
    t = time.perf_counter()
    frame = read_frame(path, mapping, nrows=nrows)
    read_s = time.perf_counter() - t
    tracker.step(0.3, f"{len(frame):,} rows read")
    result = explore_frame(frame, out_dir, source=str(path), title=title,
                           corr_threshold=corr_threshold, _tracker=tracker, _started=started)
    result.summary["timings_s"]["read"] = round(read_s, 3)
    result.json.write_text(json.dumps(result.summary, indent=2) + "\n", encoding="utf-8")
    return result
