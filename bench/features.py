"""Benchmark of the feature store and its offline twin; prints a table, writes
``bench/results/features.json``.

    python bench/features.py [--fdh PATH] [--quick]

What it measures, on a private redis-server it starts (and stops) on a free port:

1. **30 simulated days, default set**: a synthetic stream (no simulator exists yet on this branch;
   generated here: cards with a home, terminals with coordinates, foreign trips and currencies,
   missing terminals/coordinates, frauds labelled 1 to 5 days later) replayed through the store in
   event-time order with its labels, in batches of up to 100; then Redis memory per card, per
   terminal, per card x terminal pair and per transaction snapshot, and parity of every feature
   of every transaction with the offline twin.
2. **the handbook's first 30 days, handbook set**: the same (labels 7 days after each
   transaction), so the 1-second buckets' memory is measured too.
3. **latency** of ``process`` (update + read, one round trip) on the warmed default-set store:
   batches of 1 (sequential) and of 100, p50/p99; Redis round trips per transaction counted by
   the store and, independently, as socket writes of the connection.
4. **offline** rows/s of the twin on the whole handbook file, both sets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features.columns import HANDBOOK, read_frame  # noqa: E402
from features.definitions import load_feature_set  # noqa: E402
from features.offline import compute_features  # noqa: E402
from features.parity import compare, replay_online, transactions_of  # noqa: E402
from features.store import OnlineFeatureStore  # noqa: E402
from fraudstream.settings import Settings  # noqa: E402

FDH = ROOT.parent / "shared" / "data" / "fdh" / "transactions_raw.csv.gz"
DAY = 86400
RATES = Settings(_env_file=None).currency_rates
COUNTRIES = ["FR", "BE", "DE", "ES", "IT", "NL"]


def synthetic_stream(days: int, cards: int, terminals: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A canonical frame and its labels frame (see the module docstring)."""
    rng = np.random.default_rng(seed)
    t_country = rng.integers(0, len(COUNTRIES), terminals)
    t_lat = 40 + 3 * t_country + rng.uniform(0, 3, terminals)
    t_lon = -2 + 2.5 * t_country + rng.uniform(0, 3, terminals)
    home = rng.integers(0, len(COUNTRIES), cards)
    by_country = [np.flatnonzero(t_country == c) for c in range(len(COUNTRIES))]
    favourites = np.array([rng.choice(by_country[h], 8) for h in home])
    card_cur = rng.choice(["EUR", "USD", "GBP"], cards, p=[0.85, 0.1, 0.05])
    per_card = rng.poisson(3.0 * days, cards)
    card = np.repeat(np.arange(cards), per_card)
    n = len(card)
    day = rng.integers(0, days, n)
    hour = rng.choice(24, n, p=np.r_[np.full(7, 0.01), np.full(17, 0.93 / 17)])
    secs = day * DAY + hour * 3600 + rng.integers(0, 3600, n)
    abroad = rng.random(n) < 0.05
    term = np.where(abroad, rng.integers(0, terminals, n), favourites[card, rng.integers(0, 8, n)])
    fraud = (rng.random(n) < 0.006).astype(int)
    amount = np.round(rng.lognormal(3.5, 0.9, n) * np.where(fraud == 1, 4.0, 1.0), 2)
    terminal = np.array([f"T{t}" for t in term], dtype=object)
    no_terminal = rng.random(n) < 0.03
    terminal[no_terminal] = None
    no_xy = (rng.random(n) < 0.05) | no_terminal
    country = np.array(COUNTRIES, dtype=object)[t_country[term]]
    country[no_terminal] = None
    order = np.argsort(secs, kind="stable")
    df = pd.DataFrame({
        "transaction_id": np.arange(n).astype(str),
        "timestamp": (pd.Timestamp("2024-01-01", tz="UTC")
                      + pd.to_timedelta(secs[order], unit="s")).astype("datetime64[ns, UTC]"),
        "card_id": np.array([f"C{c}" for c in card[order]], dtype=object),
        "terminal_id": terminal[order],
        "amount": amount[order],
        "currency": card_cur[card[order]],
        "latitude": np.where(no_xy, np.nan, t_lat[term])[order],
        "longitude": np.where(no_xy, np.nan, t_lon[term])[order],
        "country": country[order],
        "is_fraud": fraud[order],
    })
    delay = rng.uniform(1, 5, n) * DAY
    labels = pd.DataFrame({"transaction_id": df["transaction_id"], "is_fraud": df["is_fraud"],
                           "reported_at": df["timestamp"] + pd.to_timedelta(delay, unit="s")})
    end = df["timestamp"].iloc[-1]
    return df, labels[labels["reported_at"] <= end].reset_index(drop=True)


async def memory(client: Any, prefix: str) -> dict[str, Any]:
    """Bytes (MEMORY USAGE, exact) of every key under ``prefix``, by kind, and per entity."""
    kinds = {"c": "card", "t": "terminal", "x": "card_terminal", "tx": "snapshot", "lb": "label",
             "sc": "scored"}
    total: dict[str, int] = dict.fromkeys(kinds.values(), 0)
    entities: dict[str, set[str]] = {k: set() for k in kinds.values()}
    keys: dict[str, int] = dict.fromkeys(kinds.values(), 0)
    batch: list[bytes] = []

    async def flush() -> None:
        pipe = client.pipeline(transaction=False)
        for k in batch:
            pipe.memory_usage(k, samples=0)
        for k, size in zip(batch, await pipe.execute(), strict=True):
            parts = k.decode().split(":")
            kind = kinds[parts[3]]
            total[kind] += int(size or 0)
            keys[kind] += 1
            # one state key per card, terminal and pair (NS:c:{card}, NS:x:{len}:{card}:{terminal})
            entities[kind].add(":".join(parts[4:]) if kind in ("card", "terminal", "card_terminal")
                               else parts[4])
        batch.clear()

    async for key in client.scan_iter(match=f"{prefix}:*", count=5000):
        batch.append(key)
        if len(batch) >= 2000:
            await flush()
    await flush()
    out: dict[str, Any] = {}
    for kind in kinds.values():
        n = len(entities[kind])
        out[kind] = {"entities": n, "keys": keys[kind], "bytes": total[kind],
                     "bytes_per_entity": round(total[kind] / n, 1) if n else None}
    return out


async def replay_and_measure(client: Any, name: str, df: pd.DataFrame, labels: pd.DataFrame | None,
                             label_delay: str | None, prefix: str) -> dict[str, Any]:
    store = OnlineFeatureStore(client, load_feature_set(name), key_prefix=prefix,
                               allowed_lateness_s=3600, snapshot_ttl_s=45 * DAY,
                               prediction_ttl_s=45 * DAY, currency_rates=RATES)
    await store.load()
    trips0 = await store.round_trips()
    t0 = time.perf_counter()
    online = await replay_online(store, df, labels=labels, label_delay=label_delay, batch_size=100)
    seconds = time.perf_counter() - t0
    trips = await store.round_trips() - trips0
    t0 = time.perf_counter()
    offline = compute_features(df, store.feature_set, labels=labels, label_delay=label_delay,
                               currency_rates=RATES)
    offline_s = time.perf_counter() - t0
    report = compare(online.drop(columns="status"), offline, tolerance=1e-9)
    mem = await memory(client, store.ns)
    return {
        "feature_set": name, "transactions": len(df),
        "labels_released": int(online.attrs["labels_applied"]),
        "days": round((df.timestamp.max() - df.timestamp.min()).total_seconds() / DAY, 1),
        "cards": int(df.card_id.nunique()), "terminals": int(df.terminal_id.nunique()),
        "replay_seconds": round(seconds, 1), "replay_round_trips": trips,
        "events_per_s": round((len(df) + online.attrs["labels_applied"]) / seconds),
        "statuses": online["status"].value_counts().to_dict(),
        "parity": {"rows": report.rows, "features": report.features, "ok": report.ok,
                   "max_abs_diff": max(report.max_abs_diff.values()),
                   "mismatches": sum(report.mismatches.values()),
                   "offline_seconds": round(offline_s, 2)},
        "memory": mem,
    }


async def latency(client: Any, pool_counter: Any, df: pd.DataFrame, n1: int, n100: int) -> dict[str, Any]:
    """process() latency on a warmed default store (the stream continues after ``df``)."""
    store = OnlineFeatureStore(client, load_feature_set("default"), key_prefix="benchlat",
                               allowed_lateness_s=3600, snapshot_ttl_s=45 * DAY,
                               prediction_ttl_s=45 * DAY, currency_rates=RATES)
    await store.load()
    txs = transactions_of(df)
    warm, rest = txs[: len(txs) - n1 - 100 * n100], txs[len(txs) - n1 - 100 * n100:]
    for i in range(0, len(warm), 100):
        await store.process(warm[i:i + 100])
    await client.config_resetstat()
    ones, hundreds = [], []
    trips0, writes0 = await store.round_trips(), pool_counter.writes
    for t in rest[:n1]:
        s = time.perf_counter()
        await store.process([t])
        ones.append(time.perf_counter() - s)
    trips1, writes1 = await store.round_trips(), pool_counter.writes
    for i in range(n100):
        chunk = rest[n1 + 100 * i: n1 + 100 * (i + 1)]
        s = time.perf_counter()
        await store.process(chunk)
        hundreds.append(time.perf_counter() - s)
    trips2, writes2 = await store.round_trips(), pool_counter.writes
    stats = await client.info("commandstats")
    usec = calls = 0
    for name in ("cmdstat_evalsha", "cmdstat_fcall"):  # a script before, a function now
        usec += int(stats.get(name, {}).get("usec", 0))
        calls += int(stats.get(name, {}).get("calls", 0))
    one, hun = np.array(ones) * 1e6, np.array(hundreds) * 1e6
    return {
        "feature_set": "default", "warm_transactions": len(warm),
        "batch_1": {"n": n1, "p50_us": round(float(np.percentile(one, 50))),
                    "p99_us": round(float(np.percentile(one, 99))),
                    "tx_per_s": round(n1 / one.sum() * 1e6)},
        "batch_100": {"n_batches": n100, "p50_us_per_batch": round(float(np.percentile(hun, 50))),
                      "p99_us_per_batch": round(float(np.percentile(hun, 99))),
                      "p50_us_per_tx": round(float(np.percentile(hun, 50)) / 100, 1),
                      "p99_us_per_tx": round(float(np.percentile(hun, 99)) / 100, 1),
                      "tx_per_s": round(100 * n100 / hun.sum() * 1e6)},
        "round_trips_per_tx": {"batch_1": (trips1 - trips0) / n1,
                               "batch_100": (trips2 - trips1) / (100 * n100)},
        "socket_writes_per_tx": {"batch_1": (writes1 - writes0) / n1,
                                 "batch_100": (writes2 - writes1) / (100 * n100)},
        "redis_us_per_call": round(usec / calls, 2) if calls else None,
        # a batch is ONE function call: per transaction is the meaningful figure
        "redis_us_per_tx": round(usec / (n1 + 100 * n100), 2),
    }


def offline_speed(path: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    df = read_frame(path, HANDBOOK)
    out: dict[str, Any] = {"rows": len(df), "read_seconds": round(time.perf_counter() - t0, 1)}
    for name in ("handbook", "default"):
        t0 = time.perf_counter()
        feats = compute_features(df, load_feature_set(name))
        s = time.perf_counter() - t0
        out[name] = {"seconds": round(s, 1), "rows_per_s": round(len(df) / s),
                     "features": feats.shape[1] - 1}
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import redis.asyncio as aioredis
    from redis.asyncio.connection import Connection, ConnectionPool

    from stream.services import Services, free_port

    class Counting(Connection):
        writes = 0

        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            type(self).writes += 1
            await super().send_packed_command(command, check_health)

    days = 3 if args.quick else 30
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "quick": bool(args.quick),
    }
    with tempfile.TemporaryDirectory() as home:
        svc = Services(Settings(_env_file=None, home=Path(home), redis_port=free_port()),
                       log=lambda m: None)
        url = svc.up(timeout=60, kafka=False)["redis"]
        pool = ConnectionPool.from_url(url, connection_class=Counting)
        client = aioredis.Redis(connection_pool=pool)
        try:
            info = await client.info("server")
            results["machine"]["redis"] = info.get("redis_version")
            df, labels = synthetic_stream(days=days, cards=200 if args.quick else 2000,
                                          terminals=100 if args.quick else 1000)
            print(f"synthetic stream: {len(df)} transactions, {len(labels)} labels, {days} days",
                  flush=True)
            results["default_30d"] = await replay_and_measure(client, "default", df, labels, None,
                                                              "benchdef")
            print("default set replayed", flush=True)
            extra, _ = synthetic_stream(days=days + 2, cards=200 if args.quick else 2000,
                                        terminals=100 if args.quick else 1000, seed=8)
            results["latency"] = await latency(client, Counting, extra, 500 if args.quick else 3000,
                                               10 if args.quick else 100)
            print("latency measured", flush=True)
            await client.flushall()
            if args.fdh.exists():
                hb = read_frame(args.fdh, HANDBOOK, nrows=30_000 if args.quick else None)
                hb = hb[hb.timestamp < hb.timestamp.min() + pd.Timedelta(days=days)]
                hb = hb.reset_index(drop=True)
                results["handbook_30d"] = await replay_and_measure(client, "handbook", hb, None, "7d",
                                                                   "benchhb")
                print("handbook replayed", flush=True)
                await client.flushall()
                if not args.quick:
                    results["offline"] = offline_speed(args.fdh)
        finally:
            await client.aclose()
            await pool.disconnect()
            svc.down()
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def table(r: dict[str, Any]) -> str:
    lines = []
    lat = r["latency"]
    lines.append("| measure | value |")
    lines.append("|---|---|")
    lines.append(f"| process(), batch of 1: p50 / p99 per transaction | {lat['batch_1']['p50_us']} µs / "
                 f"{lat['batch_1']['p99_us']} µs ({lat['batch_1']['tx_per_s']} tx/s) |")
    lines.append(f"| process(), batch of 100: p50 / p99 per batch | {lat['batch_100']['p50_us_per_batch']} µs / "
                 f"{lat['batch_100']['p99_us_per_batch']} µs ({lat['batch_100']['p50_us_per_tx']} µs per tx, "
                 f"{lat['batch_100']['tx_per_s']} tx/s) |")
    lines.append(f"| Redis time per transaction in the feature function (default set) | {lat['redis_us_per_tx']} µs |")
    lines.append(f"| round trips per transaction (store count), batch 1 / 100 | "
                 f"{lat['round_trips_per_tx']['batch_1']:.2f} / {lat['round_trips_per_tx']['batch_100']:.2f} |")
    lines.append(f"| socket writes per transaction (connection count), batch 1 / 100 | "
                 f"{lat['socket_writes_per_tx']['batch_1']:.2f} / {lat['socket_writes_per_tx']['batch_100']:.2f} |")
    for key, title in (("default_30d", "default set, synthetic"), ("handbook_30d", "handbook set, handbook data")):
        if key not in r:
            continue
        m = r[key]["memory"]
        lines.append(f"| {title}, {r[key]['days']} days: Redis bytes per card / terminal / card x terminal | "
                     f"{m['card']['bytes_per_entity']} / {m['terminal']['bytes_per_entity']} / "
                     f"{m['card_terminal']['bytes_per_entity']} |")
        lines.append(f"| {title}: bytes per transaction snapshot / per label (kept snapshot TTL) | "
                     f"{m['snapshot']['bytes_per_entity']} / {m['label']['bytes_per_entity']} |")
        p = r[key]["parity"]
        lines.append(f"| {title}: parity online vs offline ({p['rows']} tx x {p['features']} features) | "
                     f"{'equal' if p['ok'] else 'DIFFERENT'}, max abs diff {p['max_abs_diff']:.3g} |")
        lines.append(f"| {title}: replay with labels | {r[key]['events_per_s']} events/s "
                     f"({r[key]['transactions']} tx + {r[key]['labels_released']} labels) |")
    if "offline" in r:
        o = r["offline"]
        lines.append(f"| offline twin, handbook file ({o['rows']} rows): handbook set | "
                     f"{o['handbook']['seconds']} s, {o['handbook']['rows_per_s']} rows/s (+ read {o['read_seconds']} s) |")
        lines.append(f"| offline twin, handbook file: default set | {o['default']['seconds']} s, "
                     f"{o['default']['rows_per_s']} rows/s |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fdh", type=Path, default=FDH, help="the handbook data set")
    parser.add_argument("--quick", action="store_true", help="3 days and small samples")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "features.json")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print(table(results))
    print(f"load average (1, 5, 15 min) at start {results['machine']['load_average_at_start']}, "
          f"at end {results['machine']['load_average_at_end']} on {os.cpu_count()} CPUs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
