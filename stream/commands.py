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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
