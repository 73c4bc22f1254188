"""Subcommands of the streaming side: services, worker, simulate, replay, run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fraudstream.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("services", help="start, stop or report the embedded Kafka and Redis")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.set_defaults(func=services)

    p = sub.add_parser("worker", help="run the Faust worker: score transactions, learn from labels")
    p.add_argument("--role", choices=["scorer", "learner", "all"], default="all",
                   help="scorer: scoring agent only; learner: the one learner; all: both (default)")
    p.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=worker)

    p = sub.add_parser("run", help="the whole system: services, worker, learner, API, simulator, live view")
    p.add_argument("--rate", type=float, default=None, help="simulated transactions per second")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--no-view", action="store_true", help="print status every 5 s instead")
    p.set_defaults(func=run)


def services(args: argparse.Namespace, settings: Settings) -> int:
    from stream.services import Services

    svc = Services(settings)
    if args.action == "up":
        addresses = svc.up()
        print(f"kafka  {addresses['kafka']}")
        print(f"redis  {addresses['redis']}")
        return 0
    if args.action == "down":
        stopped = svc.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing (none started here)"))
        return 0
    infos = svc.status()
    if args.json:
        print(json.dumps(svc.describe(), indent=2))
    else:
        for s in infos:
            health = "healthy" if s.healthy else "DOWN"
            origin = f"pid {s.pid}, started here" if s.started_here else s.kind
            print(f"{s.name:<6} {s.address:<28} {health:<8} ({origin})")
    return 0 if all(s.healthy for s in infos) else 1


def worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust

    from stream.app import create_app
    from stream.services import Services

    kafka, redis_url = Services(settings).addresses()
    settings = settings.model_copy(update={"kafka_bootstrap": kafka, "redis_url": redis_url})
    app = create_app(settings, role=args.role)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    from stream.run import run as run_system

    if args.rate is not None and args.rate <= 0:
        from fraudstream.errors import ConfigError

        raise ConfigError("--rate must be positive")
    return run_system(settings, rate=args.rate or settings.run_rate, duration=args.duration,
                      view=not args.no_view)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
