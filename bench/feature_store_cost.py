"""Redis time per transaction of the online feature store: this tree against a git ref,
interleaved on one redis-server; prints a table, writes ``bench/results/feature_store_cost.json``.

    python bench/feature_store_cost.py [--baseline main] [--reps 3] [--days 30] [--cards 300]

The stream is ``bench/features.py``'s synthetic one (cards with favourite terminals, ~3
transactions per card per day, labels 1 to 5 days later), ``--days`` of history plus one more
day. For each repetition and each tree (the order alternates), a child process with that tree
first on ``sys.path``:

1. replays the history with its labels through a fresh ``default``-set store (batches of 100);
2. measures ``process()`` on the next day's transactions: ``--n1`` sequential calls with one
   transaction, then ``--n100`` calls with 100; for each, Redis's own time per script or function
   call (``INFO commandstats``: ``usec / calls`` of ``cmdstat_evalsha`` and ``cmdstat_fcall``,
   reset before) and the client's wall time per call;
3. measures ``apply_labels()`` the same way (batches of 100 labels of the last days);
4. reads ``MEMORY USAGE`` of every key of the store: bytes per card, terminal, card x terminal.

Both trees share the redis-server and the machine, so their figures are comparable; absolute
values depend on the machine's load (recorded with every repetition). ``--instructions N`` also
counts, once per tree, redis-server's instructions per transaction over N transactions of the
last day under valgrind's callgrind (a private server loaded from an RDB of the warmed state):
a figure the machine's load does not change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400


# -- the child: runs with the tree under test first on sys.path --------------------------------
async def _memory(client: Any, prefix: str) -> dict[str, Any]:
    kinds = {"c": "card", "t": "terminal", "x": "card_terminal", "tx": "snapshot", "lb": "label"}
    total = dict.fromkeys(kinds.values(), 0)
    entities: dict[str, set[str]] = {k: set() for k in kinds.values()}
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=5000)]
    for i in range(0, len(keys), 2000):
        pipe = client.pipeline(transaction=False)
        for k in keys[i:i + 2000]:
            pipe.memory_usage(k, samples=0)
        for k, size in zip(keys[i:i + 2000], await pipe.execute(), strict=True):
            parts = k.decode().split(":")
            kind = kinds.get(parts[3])
            if kind is None:
                continue
            total[kind] += int(size or 0)
            ent = parts[4:]
            if kind in ("card", "terminal", "card_terminal") and len(ent) > 1 and (
                    ent[-1] == "prev" or re.fullmatch(r"g[0-9a-f]{8}", ent[-1])):
                ent = ent[:-1]  # the old scheme: one key per bucket group
            entities[kind].add(":".join(ent))
    return {kind: {"entities": len(entities[kind]), "bytes": total[kind],
                   "bytes_per_entity": round(total[kind] / len(entities[kind]), 1)
                   if entities[kind] else None} for kind in kinds.values()}


async def _child(url: str, data: Path, n1: int, n100: int, prefix: str) -> dict[str, Any]:
    import pandas as pd
    import redis.asyncio as aioredis

    from features.definitions import load_feature_set
    from features.parity import replay_online, transactions_of
    from features.store import OnlineFeatureStore
    from stream.schemas import Label

    df = pd.read_parquet(data / "tx.parquet")
    labels = pd.read_parquet(data / "labels.parquet")
    rates = json.loads((data / "rates.json").read_text())
    split = df.timestamp.max().normalize()  # the last day is measured, the rest is history
    hist, new = df[df.timestamp < split].reset_index(drop=True), df[df.timestamp >= split]
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushall()
        store = OnlineFeatureStore(client, load_feature_set("default"), key_prefix=prefix,
                                   allowed_lateness_s=3600, snapshot_ttl_s=45 * DAY,
                                   prediction_ttl_s=45 * DAY, currency_rates=rates)
        await store.load()
        t0 = time.perf_counter()
        warm = await replay_online(store, hist, labels=labels[labels.reported_at < split],
                                   batch_size=100)
        replay_s = time.perf_counter() - t0
        assert (warm["status"] == "new").all()
        txs = transactions_of(new.reset_index(drop=True))
        assert len(txs) >= n1 + 100 * n100, "not enough transactions on the last day"
        out: dict[str, Any] = {"load_before": [round(x, 2) for x in os.getloadavg()],
                               "replay_seconds": round(replay_s, 1),
                               "history_transactions": len(hist)}

        async def evalsha_us() -> float:
            """Redis's own time per script or function call (EVALSHA before, FCALL after)."""
            stats = await client.info("commandstats")
            usec = calls = 0
            for name in ("cmdstat_evalsha", "cmdstat_fcall"):
                usec += int(stats.get(name, {}).get("usec", 0))
                calls += int(stats.get(name, {}).get("calls", 0))
            return round(usec / calls, 2)

        async def cpu_us() -> float:
            """CPU time of redis-server's main thread so far (user + system), us."""
            cpu = await client.info("cpu")
            return 1e6 * (float(cpu["used_cpu_user_main_thread"])
                          + float(cpu["used_cpu_sys_main_thread"]))

        await client.config_resetstat()
        walls = []
        cpu0 = await cpu_us()
        for t in txs[:n1]:
            s = time.perf_counter()
            await store.process([t])
            walls.append(time.perf_counter() - s)
        cpu1 = await cpu_us()
        out["batch_1"] = {"redis_us_per_tx": await evalsha_us(),
                          "redis_cpu_us_per_tx": round((cpu1 - cpu0) / n1, 1),
                          "wall_us_per_call_p50": round(statistics.median(walls) * 1e6, 1)}
        await client.config_resetstat()
        walls = []
        cpu0 = await cpu_us()
        for i in range(n100):
            chunk = txs[n1 + 100 * i: n1 + 100 * (i + 1)]
            s = time.perf_counter()
            await store.process(chunk)
            walls.append(time.perf_counter() - s)
        cpu1 = await cpu_us()
        out["batch_100"] = {"redis_us_per_tx": await evalsha_us(),
                            "redis_cpu_us_per_tx": round((cpu1 - cpu0) / (100 * n100), 1),
                            "wall_us_per_call_p50": round(statistics.median(walls) * 1e6, 1)}
        # labels of the transactions of the last days of the history (not labelled yet)
        done = set(labels.loc[labels.reported_at < split, "transaction_id"])
        todo = hist[~hist.transaction_id.isin(done)].tail(100 * n100)
        labs = [Label(transaction_id=r.transaction_id, is_fraud=bool(r.is_fraud),
                      reported_at=split) for r in todo.itertuples()]
        await client.config_resetstat()
        walls = []
        cpu0 = await cpu_us()
        for i in range(0, len(labs), 100):
            s = time.perf_counter()
            res = await store.apply_labels(labs[i:i + 100])
            walls.append(time.perf_counter() - s)
            assert all(r.status == "new" for r in res)
        cpu1 = await cpu_us()
        out["labels_100"] = {"n": len(labs), "redis_us_per_label": await evalsha_us(),
                             "redis_cpu_us_per_label": round((cpu1 - cpu0) / len(labs), 1),
                             "wall_us_per_call_p50": round(statistics.median(walls) * 1e6, 1)}
        out["memory"] = await _memory(client, store.ns)
        out["load_after"] = [round(x, 2) for x in os.getloadavg()]
        return out
    finally:
        await client.aclose()


async def _child_instructions(sock: str, data: Path, mode: str, pid: int, n: int) -> dict[str, Any]:
    """``warm``: replay the history into the redis-server at ``sock`` and SAVE it; ``count``:
    process ``n`` transactions of the last day (batches of 100) between a reset and a dump of
    callgrind's counters of the redis-server ``pid``."""
    import pandas as pd
    import redis.asyncio as aioredis

    from features.definitions import load_feature_set
    from features.parity import replay_online, transactions_of
    from features.store import OnlineFeatureStore

    df = pd.read_parquet(data / "tx.parquet")
    labels = pd.read_parquet(data / "labels.parquet")
    rates = json.loads((data / "rates.json").read_text())
    split = df.timestamp.max().normalize()
    client = aioredis.Redis(unix_socket_path=sock)
    try:
        store = OnlineFeatureStore(client, load_feature_set("default"), key_prefix="instr",
                                   allowed_lateness_s=3600, snapshot_ttl_s=45 * DAY,
                                   prediction_ttl_s=45 * DAY, currency_rates=rates)
        await store.load()
        if mode == "warm":
            hist = df[df.timestamp < split].reset_index(drop=True)
            await replay_online(store, hist, labels=labels[labels.reported_at < split],
                                batch_size=100)
            await client.save()
            return {}
        txs = transactions_of(df[df.timestamp >= split].reset_index(drop=True))
        await store.process(txs[:10])  # the first calls (not counted)
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
        for i in range(10, 10 + n, 100):
            await store.process(txs[i:min(i + 100, 10 + n)])
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
        return {}
    finally:
        await client.aclose()


def _instructions(tree: Path, data: Path, tmp: Path, n: int) -> float:
    """redis-server's instructions per transaction of ``process()`` (callgrind), for ``tree``."""
    home = tmp / f"instr-{abs(hash(str(tree)))}"
    home.mkdir()
    sock = str(home / "redis.sock")
    env = {**os.environ, "PYTHONPATH": str(tree)}

    def child(mode: str, pid: int) -> None:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child-instr", sock, str(data), mode,
             str(pid), str(n)], env=env, cwd=str(tree), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"instruction child for {tree} failed:\n{proc.stderr[-3000:]}")

    def server(*prefix: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([*prefix, "redis-server", "--port", "0", "--unixsocket", sock,
                                 "--dir", str(home), "--save", "", "--appendonly", "no"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            ping = subprocess.run(["redis-cli", "-s", sock, "ping"], capture_output=True)
            if ping.stdout.strip() == b"PONG":
                return proc
            time.sleep(0.2)
        proc.kill()
        raise SystemExit("redis-server did not start")

    def stop(proc: subprocess.Popen[bytes]) -> None:
        subprocess.run(["redis-cli", "-s", sock, "shutdown", "nosave"], capture_output=True)
        proc.wait(timeout=120)

    plain = server()
    try:
        child("warm", plain.pid)
    finally:
        stop(plain)
    out = home / "callgrind.out"
    counted = server("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}")
    try:
        child("count", counted.pid)
    finally:
        stop(counted)
    dumps = sorted(home.glob("callgrind.out.*"), key=lambda f: f.stat().st_mtime)
    for line in dumps[0].read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]) / n
    raise SystemExit(f"no totals in {dumps[0]}")


# -- the parent ------------------------------------------------------------------------------
def _tree_of(ref: str, dest: Path) -> Path:
    """The files of git ``ref`` of this repository, extracted into ``dest``."""
    archive = dest / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), ref], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "tree", filter="data")
    return dest / "tree"


def _run_child(tree: Path, args: argparse.Namespace, url: str, data: Path, prefix: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", url, str(data), prefix,
         "--n1", str(args.n1), "--n100", str(args.n100)],
        env=env, cwd=str(tree), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child for {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="main", help="git ref to compare with ('' = none)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cards", type=int, default=300, help="terminals: half as many")
    parser.add_argument("--n1", type=int, default=300)
    parser.add_argument("--n100", type=int, default=5)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "feature_store_cost.json")
    parser.add_argument("--instructions", type=int, default=0, metavar="N",
                        help="also count redis-server's instructions per transaction over N "
                             "transactions under valgrind's callgrind (load-independent; slow)")
    parser.add_argument("--child", nargs=3, metavar=("URL", "DATA", "PREFIX"), help=argparse.SUPPRESS)
    parser.add_argument("--child-instr", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_instr:
        here = Path(__file__).resolve().parent
        sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != here]
        sock, data, mode, pid, n = args.child_instr
        asyncio.run(_child_instructions(sock, Path(data), mode, int(pid), int(n)))
        return 0
    if args.child:
        # bench/ itself must not shadow the tree's packages (bench/features.py vs features/)
        here = Path(__file__).resolve().parent
        sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != here]
        url, data, prefix = args.child
        print(json.dumps(asyncio.run(_child(url, Path(data), args.n1, args.n100, prefix))))
        return 0

    sys.path.insert(0, str(ROOT))
    import importlib.util

    from fraudstream.settings import Settings
    from stream.services import Services, free_port

    spec = importlib.util.spec_from_file_location("bench_features", ROOT / "bench" / "features.py")
    assert spec and spec.loader
    bf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bf)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "params": {"days": args.days, "cards": args.cards, "terminals": args.cards // 2,
                   "n1": args.n1, "n100": args.n100, "reps": args.reps,
                   "baseline": args.baseline},
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        trees = {"this tree": ROOT}
        if args.baseline:
            commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline],
                                    capture_output=True, text=True, check=True).stdout.strip()
            trees = {f"baseline {args.baseline} ({commit})": _tree_of(args.baseline, tmp),
                     "this tree": ROOT}
        df, labels = bf.synthetic_stream(days=args.days + 1, cards=args.cards,
                                         terminals=args.cards // 2)
        df.to_parquet(tmp / "tx.parquet")
        labels.to_parquet(tmp / "labels.parquet")
        (tmp / "rates.json").write_text(json.dumps(bf.RATES))
        print(f"stream: {len(df)} transactions, {len(labels)} labels, {args.days} + 1 days",
              flush=True)
        svc = Services(Settings(_env_file=None, home=tmp / "home", redis_port=free_port()),
                       log=lambda m: None)
        url = svc.up(timeout=60, kafka=False)["redis"]
        try:
            names = list(trees)
            for rep in range(args.reps):
                order = names if rep % 2 == 0 else names[::-1]
                for name in order:
                    r = _run_child(trees[name], args, url, tmp, f"cost{rep}")
                    r.update(tree=name, rep=rep)
                    results["runs"].append(r)
                    print(f"rep {rep} {name}: process {r['batch_1']['redis_us_per_tx']:.1f} / "
                          f"{r['batch_100']['redis_us_per_tx']:.1f} µs per tx (Redis, batch 1 / 100; "
                          f"CPU {r['batch_100']['redis_cpu_us_per_tx']:.1f}), "
                          f"labels {r['labels_100']['redis_us_per_label']:.1f} µs, "
                          f"load {r['load_before'][0]}", flush=True)
        finally:
            svc.down()
        if args.instructions:
            results["instructions_per_tx"] = {}
            for name, tree in trees.items():
                results["instructions_per_tx"][name] = round(
                    _instructions(tree, tmp, tmp, args.instructions))
                print(f"{name}: {results['instructions_per_tx'][name]:,} redis-server "
                      f"instructions per transaction (callgrind)", flush=True)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    summary: dict[str, Any] = {}
    for name in trees if results["runs"] else []:
        runs = [r for r in results["runs"] if r["tree"] == name]

        def med(path: tuple[str, ...], runs: list[dict] = runs) -> float:
            vals = []
            for r in runs:
                v: Any = r
                for p in path:
                    v = v[p]
                vals.append(v)
            return round(statistics.median(vals), 1)

        summary[name] = {
            "redis_us_per_tx_batch_1": med(("batch_1", "redis_us_per_tx")),
            "redis_us_per_tx_batch_100": med(("batch_100", "redis_us_per_tx")),
            "redis_us_per_label": med(("labels_100", "redis_us_per_label")),
            "redis_cpu_us_per_tx_batch_1": med(("batch_1", "redis_cpu_us_per_tx")),
            "redis_cpu_us_per_tx_batch_100": med(("batch_100", "redis_cpu_us_per_tx")),
            "redis_cpu_us_per_label": med(("labels_100", "redis_cpu_us_per_label")),
            "wall_us_batch_1": med(("batch_1", "wall_us_per_call_p50")),
            "wall_us_batch_100": med(("batch_100", "wall_us_per_call_p50")),
            "bytes_per_card": med(("memory", "card", "bytes_per_entity")),
            "bytes_per_terminal": med(("memory", "terminal", "bytes_per_entity")),
            "bytes_per_card_terminal": med(("memory", "card_terminal", "bytes_per_entity")),
            "replay_seconds": med(("replay_seconds",)),
        }
    results["summary"] = summary
    rows = [("Redis µs per transaction, process(), batch of 1", "redis_us_per_tx_batch_1"),
            ("Redis µs per transaction, process(), batch of 100", "redis_us_per_tx_batch_100"),
            ("Redis µs per label, apply_labels(), batch of 100", "redis_us_per_label"),
            ("redis-server CPU µs per transaction, batch of 1", "redis_cpu_us_per_tx_batch_1"),
            ("redis-server CPU µs per transaction, batch of 100", "redis_cpu_us_per_tx_batch_100"),
            ("redis-server CPU µs per label, batch of 100", "redis_cpu_us_per_label"),
            ("process() wall µs per call, batch of 1 (p50)", "wall_us_batch_1"),
            ("process() wall µs per call, batch of 100 (p50)", "wall_us_batch_100"),
            ("Redis bytes per card", "bytes_per_card"),
            ("Redis bytes per terminal", "bytes_per_terminal"),
            ("Redis bytes per card x terminal pair", "bytes_per_card_terminal"),
            (f"replay of {args.days} days with labels, s", "replay_seconds")]
    print(f"| measure (median of {args.reps}) | {' | '.join(trees)} |")
    print("|---|" + "---|" * len(trees))
    for title, key in rows if summary else []:
        print(f"| {title} | " + " | ".join(f"{summary[n][key]:,}" for n in trees) + " |")
    if "instructions_per_tx" in results:
        print("| redis-server instructions per transaction, process(), batches of 100 "
              "(callgrind) | " + " | ".join(f"{results['instructions_per_tx'][n]:,}" for n in trees)
              + " |")
    print(f"load average at start {results['machine']['load_average_at_start']}, at end "
          f"{results['machine']['load_average_at_end']} on {os.cpu_count()} CPUs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
