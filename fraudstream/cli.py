"""The one command-line entry point, ``fraudstream``, with subcommands.

Each package contributes its subcommands from a ``commands`` module with a
``register(subparsers)`` function; every handler has the signature
``handler(args, settings) -> int`` and imports what it needs when it runs, so ``fraudstream --help``
stays fast. Domain errors print one line to stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from fraudstream.errors import FraudstreamError

COMMAND_MODULES = (
    "stream.commands", "features.commands", "features.lifecycle_commands", "models.commands",
    "models.training_commands", "api.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudstream",
        description="Streaming, real-time card-fraud detection: the whole ML lifecycle.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that package has no commands yet
                continue
            raise
        module.register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"fraudstream {version('fraudstream')}"
    except PackageNotFoundError:
        return "fraudstream (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from fraudstream.settings import Settings

        settings = Settings()
    except ValidationError as exc:
        print(f"fraudstream: bad settings: {_settings_error(exc)}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, settings) or 0)
    except FraudstreamError as exc:
        print(f"fraudstream {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"fraudstream {args.command}: interrupted", file=sys.stderr)
        return 130


def _settings_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        name = f"FRAUDSTREAM_{loc.upper()}" if loc else "settings"
        parts.append(f"{name}: {err['msg']}")
    return "; ".join(parts)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
