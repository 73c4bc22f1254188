"""Time the offline lifecycle's first half on the handbook file: register, clean, explore.

    python bench/offline.py [PATH] [--nrows N]

Runs each step once in a temporary folder (the data set is read in place, never copied), prints a
table and writes ``bench/results/offline.json``. The machine's load average is recorded with the
figures, since other work on a 2-core machine moves them a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features.cleaning import clean_file  # noqa: E402
from features.columns import HANDBOOK, read_frame  # noqa: E402
from features.datasets import register_dataset  # noqa: E402
from features.eda import explore  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "fdh" / "transactions_raw.csv.gz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT))
    parser.add_argument("--nrows", type=int, default=None)
    args = parser.parse_args()
    path = Path(args.path)
    if not path.exists():
        print(f"no data set at {path}", file=sys.stderr)
        return 2
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="fs-bench-offline-") as tmp:
        work = Path(tmp)

        def timed(step: str, fn):  # type: ignore[no-untyped-def]
            load = os.getloadavg()[0]
            t = time.perf_counter()
            value = fn()
            rows.append({"step": step, "seconds": round(time.perf_counter() - t, 2),
                         "load_1min_before": round(load, 2)})
            return value

        frame = timed("read_frame (CSV.gz -> canonical)",
                      lambda: read_frame(path, HANDBOOK, nrows=args.nrows))
        n = len(frame)
        del frame
        if args.nrows is None:
            timed("datasets add", lambda: register_dataset(path, HANDBOOK, work / "reg"))
        report = timed("clean -> parquet", lambda: clean_file(
            path, HANDBOOK, work / "clean.parquet", nrows=args.nrows))
        timed("clean -> csv.gz", lambda: clean_file(
            path, HANDBOOK, work / "clean.csv.gz", nrows=args.nrows))
        eda = timed("eda (read + numbers + 5 PNGs + HTML)",
                    lambda: explore(path, HANDBOOK, work / "eda", nrows=args.nrows))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n:,} rows from {path.name}; peak RSS {peak_mb:,.0f} MB")
    print(f"{'step':<40} {'seconds':>8} {'load':>6}")
    for r in rows:
        print(f"{r['step']:<40} {r['seconds']:>8} {r['load_1min_before']:>6}")
    out = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "rows": n, "file": path.name,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "peak_rss_mb": round(peak_mb), "steps": rows,
        "clean": {"rows_out": report.rows_out, "rejected": report.rows_rejected},
        "eda_timings_s": eda.summary["timings_s"],
    }
    target = ROOT / "bench" / "results" / "offline.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
