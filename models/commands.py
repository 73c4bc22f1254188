"""Subcommands of the model side: ``fraudstream models list|show|history|promote|rollback``.

They work on the registry at ``settings.registry_path`` with ``settings.hmac_key``. A promotion or
rollback made here moves the champion pointer; scorers and the learner notice it by polling.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from fraudstream.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="list, promote or roll back model versions in the registry")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True

    q = msub.add_parser("list", help="every version, the champion marked with *")
    q.add_argument("--json", action="store_true", help="metadata as JSON")
    q.set_defaults(func=list_versions)

    q = msub.add_parser("show", help="one version's metadata as JSON")
    q.add_argument("version")
    q.set_defaults(func=show)

    q = msub.add_parser("history", help="the registry's events")
    q.add_argument("--last", type=int, default=20)
    q.set_defaults(func=history)

    q = msub.add_parser("promote", help="make VERSION the champion")
    q.add_argument("version")
    q.add_argument("--reason", default="promoted from the command line")
    q.set_defaults(func=promote)

    q = msub.add_parser("rollback", help="back to the champion before the last promotion, or --to")
    q.add_argument("--to", default=None, metavar="VERSION")
    q.add_argument("--reason", default="rolled back from the command line")
    q.set_defaults(func=rollback)


def _registry(settings: Settings):  # type: ignore[no-untyped-def]
    from models.registry import ModelRegistry

    return ModelRegistry(
        settings.registry_path, settings.hmac_key, keep_online=settings.registry_keep_snapshots
    )


def list_versions(args: argparse.Namespace, settings: Settings) -> int:
    reg = _registry(settings)
    versions = reg.list()
    champion = reg.champion_version()
    challengers = set(reg.challenger_versions())
    if args.json:
        print(json.dumps([m.model_dump(mode="json") for m in versions], indent=2))
        return 0
    if not versions:
        print(f"no model versions in {settings.registry_path}")
        return 0
    print(f"  {'version':<8} {'model':<12} {'kind':<7} {'parent':<7} {'labels':>9} "
          f"{'AP':>6} {'created (UTC)':<19} note")
    for m in versions:
        mark = "*" if m.version == champion else ("c" if m.version in challengers else " ")
        ap = m.metrics.get("average_precision")
        ap_text = f"{ap:.3f}" if isinstance(ap, int | float) else "-"
        print(
            f"{mark} {m.version:<8} {m.name:<12} {m.kind:<7} {m.parent or '-':<7} "
            f"{m.labels_learned:>9} {ap_text:>6} "
            f"{m.created_at.strftime('%Y-%m-%d %H:%M:%S'):<19} {m.note}"
        )
    print("* champion, c challenger")
    return 0


def show(args: argparse.Namespace, settings: Settings) -> int:
    print(_registry(settings).get(args.version).model_dump_json(indent=2))
    return 0


def history(args: argparse.Namespace, settings: Settings) -> int:
    for event in _registry(settings).history(args.last):
        print(json.dumps(event))
    return 0


def promote(args: argparse.Namespace, settings: Settings) -> int:
    reg = _registry(settings)
    reg.load(args.version)  # refuse to promote what cannot be loaded (unsigned, tampered)
    meta = reg.promote(args.version, reason=args.reason)
    print(f"champion is now {meta.version} ({meta.name})")
    return 0


def rollback(args: argparse.Namespace, settings: Settings) -> int:
    reg = _registry(settings)
    if args.to:
        reg.load(args.to)
    meta = reg.rollback(args.to, reason=args.reason)
    print(f"champion is now {meta.version} ({meta.name})")
    return 0
