"""Concept drift: a frozen model, online learning alone, and the full system, day by day.

The simulator (:mod:`stream.simulator`) runs ``--days`` simulated days with the fraud pattern
changing at ``--drift-day`` (``--pattern``): to :data:`~stream.simulator.DRIFT_PATTERN` (fraud
stops looking like large amounts: compromised cards spend like their holders, at night and
abroad; card testing doubles), to ``imitation`` (compromised cards spend like their holders, at
their usual terminals, in the daytime) or to :data:`~stream.simulator.SPREE_PATTERN` (cloned cards
on daytime sprees at new shops of their holder's city). Features come from the offline twin (:func:`features.offline.compute_features`, the
worker's ``default`` feature set, point-in-time correct) with the simulated labels applied at
their ``reported_at``, so the bench runs at in-process speed with the worker's numbers.

Three systems see the same stream in event-time order (transactions at their ``timestamp``,
labels at their ``reported_at``, a label first at equal times). Each is the worker's own code: an
:class:`~models.learner.OnlineLearner` (settings from :class:`~fraudstream.settings.Settings`,
the worker's defaults) with a real :class:`~models.registry.ModelRegistry` in a temporary folder,
ticked after every run of labels as the learn agent does; transactions are scored by a
:class:`~models.watcher.ChampionWatcher` on that registry, as a scorer does, refreshed after each
tick (a scorer polls every 0.25 s); every scored transaction goes to ``learner.observe`` as the
observe agent does.

(a) ``frozen``: the online learner's champion at the start of the drift day, never updated again
    (labels after the drift are not learned): what a team gets that trains offline and deploys;
(b) ``online``: online learning without drift handling: the same learner with concept drift
    detection off (``drift_detection=False``: no ADWIN alarms, no background model, no
    challengers); the champion keeps learning every label;
(c) ``full``: the full system: online learning plus ADWIN on the error of the score each fresh
    fraud label's transaction got when it was scored, a warning that makes the champion hold
    back fraud labels of transactions older than the change (``drift_hold``: released if no
    drift follows, dropped if one does) and starts a background model, a drift challenger in
    shadow, promotion when it beats the champion by the margin on the latest N labelled
    transactions, judged on the scores both gave when each was scored (``promotion_judge=live``;
    every scored transaction goes to ``learner.observe`` with its id); the worker's defaults.

Metrics per simulated day, on EVERY transaction of that day (labelled or not), with the score the
system gave at scoring time (before the label of that transaction was known): average precision, and card
precision@100 (:func:`models.metrics.card_precision_at_k`: the share of true compromised cards
among the 100 cards with the highest score that day, cards found on earlier days left out).

Recovery time. The pre-drift level of a metric is its mean over the ``--baseline-days`` days
before the drift day (the first week is left out: genuine labels arrive 7 days after their
transaction, so a learner only starts to know genuine spending on day 7). A system has recovered
on the first day ``d >= drift day`` from which the mean of the metric over days d, d+1, d+2 is
back within ``--tolerance`` (relative, default 10 %) of that system's OWN pre-drift level; the
recovery time is ``d - drift day`` days (0: it never really dipped). "never" means not within
the run. Because a system whose own pre-drift level was lower has an easier target, the recovery
is also given back to (b)'s level (``to (b)``, ``recovery_days_to_reference``), the same bar
for all. The drift's damage is also reported as the area between (b)'s pre-drift level and the
daily metric over the days from the drift on (``lost``, metric-days), and the full system's
loss as a share of (a)'s and (b)'s.

    PYTHONPATH=. python bench/drift.py [--days 42] [--drift-day 21] [--seed 7]

Prints a table, writes ``bench/results/drift.json`` and ``bench/results/drift.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features.definitions import load_feature_set  # noqa: E402
from features.offline import compute_features, timestamps_us  # noqa: E402
from fraudstream.settings import Settings  # noqa: E402
from models.learner import LearnerConfig, OnlineLearner  # noqa: E402
from models.metrics import average_precision, card_precision_at_k  # noqa: E402
from models.registry import ModelRegistry  # noqa: E402
from models.watcher import ChampionWatcher  # noqa: E402
from stream.simulator import DRIFT_PATTERN, SPREE_PATTERN, FraudPattern, SimConfig, Simulator  # noqa: E402

DAY = 86400.0
SYSTEMS = ("frozen", "online", "full")
LABELS = {
    "frozen": "(a) frozen before the drift",
    "online": "(b) online learning, no drift handling",
    "full": "(c) full system (drift detection, challengers, promotion)",
}


#: After the drift, fraudsters imitate the cardholders: compromised cards spend like their
#: holders (no inflation) at their usual terminals in the daytime, single large amounts and card
#: testing stop. What the model learned before (large, far, at night, bursts) is wrong after it.
IMITATION_PATTERN = FraudPattern(
    large_amount=0.0002,
    compromised_terminal=0.003,
    compromised_card=0.007,
    card_testing=0.0002,
    card_inflation=(0.8, 1.3),
    card_fraud_per_day=(1.0, 3.0),
    foreign_share=0.05,
    night_share=0.05,
)
PATTERNS = {"simulator": DRIFT_PATTERN, "imitation": IMITATION_PATTERN, "spree": SPREE_PATTERN}


class Stream:
    """The simulated days: transactions with their features, and labels, merged in time order."""

    def __init__(self, config: SimConfig, days: int, settings: Settings) -> None:
        t0 = time.perf_counter()
        sim = Simulator(config)
        tx, labels = sim.frames(days=days, flush_labels=False)
        self.generate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fs = load_feature_set(settings.feature_set)
        feats = compute_features(tx, fs, labels=labels, base_currency=config.base_currency,
                                 currency_rates=dict(config.currency_rates))
        self.features_s = time.perf_counter() - t0
        self.names = [c for c in feats.columns if c != "transaction_id"]
        self.x = feats[self.names].to_numpy(dtype=float)
        self.tx_id = tx["transaction_id"].astype(str).to_numpy()
        self.card = tx["card_id"].astype(str).to_numpy()
        self.t = timestamps_us(tx["timestamp"]) / 1e6
        self.y = tx["is_fraud"].to_numpy().astype(bool)
        self.start_s = config.start.timestamp()
        self.day = np.floor((self.t - self.start_s) / DAY).astype(int)
        pos = {tid: i for i, tid in enumerate(self.tx_id.tolist())}
        labels = labels[labels["transaction_id"].astype(str).isin(pos)]
        self.label_row = np.array([pos[t] for t in labels["transaction_id"].astype(str)], dtype=np.int64)
        self.label_fraud = labels["is_fraud"].to_numpy().astype(bool)
        self.label_t = timestamps_us(labels["reported_at"]) / 1e6
        # event order: (time, kind) with labels (0) before transactions (1) at equal times
        times = np.concatenate([self.label_t, self.t])
        kinds = np.concatenate([np.zeros(len(self.label_t), np.int8), np.ones(len(self.t), np.int8)])
        idx = np.concatenate([np.arange(len(self.label_t)), np.arange(len(self.t))])
        order = np.lexsort((kinds, times))
        self.order_kind = kinds[order]
        self.order_idx = idx[order]

    def features(self, i: int) -> dict[str, float | None]:
        """Row ``i``'s features as the online store returns them (None for a missing value)."""
        return {k: (None if v != v else v) for k, v in zip(self.names, self.x[i].tolist(), strict=True)}

    def __len__(self) -> int:
        return len(self.t)


def make_learner(kind: str, settings: Settings, root: Path) -> OnlineLearner:
    registry = ModelRegistry(root / kind, settings.hmac_key,
                             keep_online=settings.registry_keep_snapshots)
    overrides: dict[str, Any] = {}
    if kind in ("frozen", "online"):
        overrides["drift_detection"] = False
    return OnlineLearner(registry, LearnerConfig.from_settings(settings, **overrides))


def run_system(kind: str, stream: Stream, settings: Settings, root: Path, drift_s: float,
               progress: Callable[[str], None]) -> dict[str, Any]:
    """One system over the whole stream: its score for every transaction and its model events."""
    learner = make_learner(kind, settings, root)
    watcher = ChampionWatcher(learner.registry, poll_interval_s=0.0)
    scores = np.zeros(len(stream))
    events: list[dict[str, Any]] = []
    frozen = False
    pending = 0
    now = [stream.start_s]  # simulated time of the event being processed
    started = time.perf_counter()
    learn_s = 0.0

    def record(evs: list[Any]) -> None:
        for e in evs:
            if e.kind in ("drift", "promotion", "rollback") or (
                    e.kind == "warning" and e.evidence.get("type") in ("concept", "hold released")):
                events.append({"kind": e.kind, "version": e.version,
                               "at_s": now[0], "event_time": e.event_time,
                               "evidence": {k: v for k, v in e.evidence.items()
                                            if k not in ("metrics",)}})

    def tick() -> None:
        record(learner.tick())
        watcher.refresh(force=True)

    last_day = -1
    kinds, idxs = stream.order_kind.tolist(), stream.order_idx.tolist()
    for n, (k, i) in enumerate(zip(kinds, idxs, strict=True)):
        now[0] = float(stream.label_t[i] if k == 0 else stream.t[i])
        if k == 0:  # a label, at its reported_at
            if frozen:
                continue
            if kind == "frozen" and stream.label_t[i] >= drift_s:
                tick()
                frozen = True  # the model in charge at the drift is never updated again
                continue
            row = int(stream.label_row[i])
            t0 = time.perf_counter()
            record(learner.learn(stream.features(row), bool(stream.label_fraud[i]),
                                 transaction_id=stream.tx_id[row], card_id=stream.card[row],
                                 event_time=float(stream.t[row]),
                                 reported_at=float(stream.label_t[i]),
                                 score=float(scores[row])))
            learn_s += time.perf_counter() - t0
            pending += 1
            continue
        if pending:  # a run of labels ended: the learn agent's after_learning()
            tick()
            pending = 0
        x = stream.features(i)
        model, _ = watcher.current  # type: ignore[misc]
        s = float(model.predict_proba_one(x))
        scores[i] = s
        if not frozen:
            record(learner.observe(x, s, transaction_id=stream.tx_id[i]))
        if stream.day[i] != last_day:
            last_day = int(stream.day[i])
            progress(f"{kind}: day {last_day} ({n:,} events, {time.perf_counter() - started:.0f} s, "
                     f"champion {learner.champion_version})")
    tick()
    status = learner.status()
    return {
        "scores": scores,
        "events": events,
        "seconds": time.perf_counter() - started,
        "learn_us_per_label": learn_s / max(1, learner.labels) * 1e6,
        "labels": learner.labels,
        "champion": learner.champion_version,
        "versions": len(learner.registry.list()),
        "drifts": status["drifts"],
        "warnings": status["warnings"],
        "data_drifts": status["data_drifts"],
    }


def daily(stream: Stream, scores: np.ndarray, k: int) -> dict[str, list[float | None]]:
    """Average precision and card precision@k of each simulated day."""
    days = sorted(set(stream.day.tolist()))
    ap: list[float | None] = []
    for d in days:
        m = stream.day == d
        v = average_precision(stream.y[m], scores[m]) if stream.y[m].any() else math.nan
        ap.append(None if v != v else round(float(v), 4))
    cp = card_precision_at_k(stream.day.tolist(), stream.card.tolist(), stream.y.tolist(),
                             scores.tolist(), k=k)
    return {"day": days, "average_precision": ap,
            "card_precision": [round(float(cp.per_day[d]), 4) for d in days]}


def recovery(values: list[float | None], days: list[int], drift_day: int, baseline_days: int,
             tolerance: float, reference: float | None = None) -> dict[str, Any]:
    """Pre-drift level, the dip, days until the 3-day mean is back within tolerance of it.

    ``reference`` (default: this system's own pre-drift level) is the level the loss is measured
    from, so systems can be compared on the same footing.
    """
    v = np.array([math.nan if x is None else x for x in values])
    d = np.array(days)
    before = v[(d >= drift_day - baseline_days) & (d < drift_day)]
    level = float(np.nanmean(before))
    target = level * (1.0 - tolerance)
    after = d >= drift_day
    post_days, post = d[after], v[after]
    # the mean over days d, d+1, d+2 (only where all three are in the run)
    ahead = pd.Series(post[::-1]).rolling(3, min_periods=3).mean().to_numpy()[::-1]

    def days_back(to: float) -> tuple[int | None, int | None]:
        below = [j for j in range(len(post)) if ahead[j] == ahead[j] and ahead[j] < to]
        if not below:
            return None, 0
        back = [j for j in range(below[0] + 1, len(post)) if ahead[j] == ahead[j] and ahead[j] >= to]
        return int(post_days[below[0]]), (int(post_days[back[0]] - drift_day) if back else None)

    dipped_on, days_to = days_back(target)
    ref = level if reference is None else reference
    # the same, back to the REFERENCE's level: a system whose own pre-drift level was lower has
    # an easier own target
    _, days_to_ref = days_back(ref * (1.0 - tolerance))
    lost = float(np.nansum(np.clip(ref - post, 0.0, None)))
    return {
        "pre_drift_level": round(level, 4),
        "target": round(target, 4),
        "dipped_on_day": dipped_on,
        "worst_after_drift": round(float(np.nanmin(post)), 4),
        "mean_after_drift": round(float(np.nanmean(post)), 4),
        "mean_last_week": round(float(np.nanmean(post[-7:])), 4),
        "recovery_days": days_to,
        "recovery_days_to_reference": days_to_ref,
        "loss_reference": round(ref, 4),
        "lost_metric_days": round(lost, 3),
    }


def add_recovery(result: dict[str, Any]) -> None:
    """Recovery per system and metric; the loss measured from (b)'s pre-drift level for all."""
    s = result["setup"]
    systems = result["systems"]
    for m in ("average_precision", "card_precision"):
        ref = None
        if "online" in systems:
            ref = recovery(systems["online"]["daily"][m], systems["online"]["daily"]["day"],
                           s["drift_day"], s["baseline_days"], s["tolerance"])["pre_drift_level"]
        for r in systems.values():
            r.setdefault("recovery", {})[m] = recovery(
                r["daily"][m], r["daily"]["day"], s["drift_day"], s["baseline_days"],
                s["tolerance"], reference=ref)
    if set(systems) == set(SYSTEMS):
        result["summary"] = summary(systems)


def plot(result: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 7.5), dpi=110)
    axes = fig.subplots(2, 1, sharex=True)
    colours = {"frozen": "#999999", "online": "#1f77b4", "full": "#d62728"}
    drift_day = result["setup"]["drift_day"]
    for ax, metric, title in ((axes[0], "average_precision", "daily average precision"),
                              (axes[1], "card_precision", "daily card precision@100")):
        for kind in SYSTEMS:
            sysr = result["systems"][kind]
            days = sysr["daily"]["day"]
            vals = [math.nan if v is None else v for v in sysr["daily"][metric]]
            rec = sysr["recovery"][metric]
            rd = rec["recovery_days"]
            tag = f"recovered in {rd} d" if rd is not None else "not recovered"
            ax.plot(days, vals, marker="o", markersize=3, color=colours[kind],
                    label=f"{LABELS[kind]}: {tag}")
        for ev in result["systems"]["full"]["events"]:
            if ev["kind"] == "promotion" and ev.get("at_s") is not None:
                x = (ev["at_s"] - result["setup"]["start_s"]) / DAY
                ax.axvline(x, color=colours["full"], linestyle=":", linewidth=1)
        ceiling = result["setup"].get("card_precision_ceiling")
        if metric == "card_precision" and ceiling:
            ax.plot(result["systems"]["online"]["daily"]["day"], ceiling, color="black",
                    linestyle=":", linewidth=1, label="ceiling (a perfect score)")
        ax.axvline(drift_day, color="black", linestyle="--", linewidth=1)
        ax.set_ylabel(title)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[1].set_xlabel(f"simulated day (concept drift at day {drift_day}, dashed; "
                       "promotions of the full system dotted)")
    fig.suptitle("fraudstream: concept drift, frozen vs online vs full system")
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=42)
    p.add_argument("--drift-day", type=int, default=21)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--pattern", choices=sorted(PATTERNS), default="simulator",
                   help="fraud after the drift: the simulator's DRIFT_PATTERN, imitation, or "
                   "SPREE_PATTERN (local sprees at new shops)")
    p.add_argument("--cards", type=int, default=5000)
    p.add_argument("--terminals", type=int, default=10000)
    p.add_argument("--baseline-days", type=int, default=7)
    p.add_argument("--tolerance", type=float, default=0.10)
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "drift.json"))
    p.add_argument("--cache", metavar="FILE",
                   help="pickle the generated stream here and reuse it (development runs)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--from-json", metavar="FILE",
                   help="recompute recovery, table and plot from an earlier result (no run)")
    args = p.parse_args(argv)
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        result["setup"].update(baseline_days=args.baseline_days, tolerance=args.tolerance)
        return finish(result, Path(args.out))

    def progress(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    # snapshots every 500 labels only: the worker's other trigger (every 10 s of wall-clock
    # time) would make which champion version scored a transaction depend on the machine's speed
    settings = Settings(_env_file=None, snapshot_every_s=1e12)
    config = SimConfig(cards=args.cards, terminals=args.terminals, seed=args.seed,
                       drift_day=args.drift_day, drift=PATTERNS[args.pattern])
    load_before = os.getloadavg()
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.exists():
        with open(cache, "rb") as fh:
            stream = pickle.load(fh)
    else:
        stream = Stream(config, args.days, settings)
        if cache is not None:
            with open(cache, "wb") as fh:
                pickle.dump(stream, fh)
    progress(f"{len(stream):,} transactions, {len(stream.label_t):,} labels; "
             f"generated in {stream.generate_s:.1f} s, features in {stream.features_s:.1f} s")
    drift_s = stream.start_s + args.drift_day * DAY
    systems: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fraudstream-drift-") as tmp:
        for kind in args.systems.split(","):
            r = run_system(kind, stream, settings, Path(tmp), drift_s, progress)
            r["daily"] = daily(stream, r.pop("scores"), settings.card_precision_k)
            systems[kind] = r
    cfg = LearnerConfig.from_settings(settings)
    result = {
        "bench": "drift",
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "setup": {
            "days": args.days, "drift_day": args.drift_day, "seed": args.seed,
            "pattern": args.pattern,
            "cards": args.cards, "terminals": args.terminals,
            "start_s": stream.start_s,
            "transactions": len(stream), "labels": int(len(stream.label_t)),
            "fraud_share": round(float(stream.y.mean()), 5),
            "feature_set": settings.feature_set, "features": len(stream.names),
            "model": cfg.model, "learner": {
                k: getattr(cfg, k) for k in (
                    "promotion_judge", "promotion_metric", "promotion_alert_share",
                    "promotion_alpha", "promotion_window", "promotion_margin",
                    "promotion_min_positives", "drift_delta", "drift_warning_delta",
                    "drift_min_change", "drift_warmup", "drift_cooldown", "drift_label_age",
                    "drift_challenger", "warning_max_labels", "challenger_max_labels",
                    "snapshot_every_labels", "snapshot_every_s")},
            "baseline_days": args.baseline_days, "tolerance": args.tolerance,
            "generate_s": round(stream.generate_s, 1), "features_s": round(stream.features_s, 1),
        },
        "systems": systems,
    }
    for r in systems.values():
        r["seconds"] = round(r["seconds"], 1)
        r["learn_us_per_label"] = round(r["learn_us_per_label"], 1)
    oracle = card_precision_at_k(stream.day.tolist(), stream.card.tolist(), stream.y.tolist(),
                                 stream.y.astype(float).tolist(), k=settings.card_precision_k)
    result["setup"]["card_precision_ceiling"] = [round(float(v), 4) for v in oracle.per_day.values()]
    return finish(result, Path(args.out))


def finish(result: dict[str, Any], out: Path) -> int:
    add_recovery(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    if "summary" in result:
        plot(result, out.with_suffix(".png"))
    out.write_text(json.dumps(result, indent=1) + "\n")
    print_table(result)
    return 0


def summary(systems: dict[str, Any]) -> dict[str, Any]:
    """How much faster the full system recovers than (a) and (b), per metric."""
    out: dict[str, Any] = {}
    for m in ("average_precision", "card_precision"):
        full = systems["full"]["recovery"][m]["recovery_days"]
        row: dict[str, Any] = {"full_days": full, "full_days_to_online_level":
                               systems["full"]["recovery"][m]["recovery_days_to_reference"],
                               "online_days_to_online_level":
                               systems["online"]["recovery"][m]["recovery_days_to_reference"]}
        for other in ("frozen", "online"):
            o = systems[other]["recovery"][m]["recovery_days"]
            row[f"{other}_days"] = o
            if full is not None and o is not None:
                row[f"faster_than_{other}_days"] = o - full
            elif full is not None:
                row[f"faster_than_{other}_days"] = f"> {o}" if o else "the other never recovered"
            else:
                row[f"faster_than_{other}_days"] = None
            lost_f = systems["full"]["recovery"][m]["lost_metric_days"]
            lost_o = systems[other]["recovery"][m]["lost_metric_days"]
            row[f"loss_vs_{other}"] = round(lost_f / lost_o, 3) if lost_o else None
        out[m] = row
    return out


def print_table(result: dict[str, Any]) -> None:
    s = result["setup"]
    print(f"concept drift at day {s['drift_day']} of {s['days']}; {s['transactions']:,} transactions,"
          f" {s['labels']:,} labels, fraud {s['fraud_share']:.2%}; model {s['model']}")
    print(f"{'system':<8} {'metric':<6} {'pre':>6} {'worst':>6} {'after':>6} {'last7':>6} "
          f"{'recovery':>9} {'to (b)':>7} {'lost':>6} {'drifts':>6} {'promo':>5} {'sec':>5}")
    for kind, r in result["systems"].items():
        promos = sum(1 for e in r["events"] if e["kind"] == "promotion")
        for m, short in (("average_precision", "AP"), ("card_precision", "CP@100")):
            rec = r["recovery"][m]
            rd = rec["recovery_days"]
            rr = rec.get("recovery_days_to_reference")
            print(f"{kind:<8} {short:<6} {rec['pre_drift_level']:>6.3f} {rec['worst_after_drift']:>6.3f} "
                  f"{rec['mean_after_drift']:>6.3f} {rec['mean_last_week']:>6.3f} "
                  f"{(str(rd) + ' d') if rd is not None else 'never':>9} "
                  f"{(str(rr) + ' d') if rr is not None else 'never':>7} {rec['lost_metric_days']:>6.2f} "
                  f"{r['drifts']:>6} {promos:>5} {r['seconds']:>5.0f}")
    load = result["machine"]["loadavg_before"]
    print(f"load average before: {load[0]:.2f} (2 cores shared; see the JSON)")


if __name__ == "__main__":
    raise SystemExit(main())
