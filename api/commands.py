"""``fraudstream api``: serve the side API with uvicorn."""

from __future__ import annotations

import argparse
from typing import Any

from fraudstream.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("api", help="serve the FastAPI side API (status, lifecycle, models, /score)")
    p.add_argument("--host", default=None, help="default: FRAUDSTREAM_API_HOST (127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="default: FRAUDSTREAM_API_PORT (8000)")
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    import uvicorn

    # alerts and the monitor's problems go to the API's log (stderr)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("fraudstream").setLevel(logging.INFO)

    from api.main import create_app
    from stream.services import Services

    kafka, redis_url = Services(settings).addresses()
    settings = settings.model_copy(update={"kafka_bootstrap": kafka, "redis_url": redis_url})
    uvicorn.run(create_app(settings), host=args.host or settings.api_host,
                port=args.port or settings.api_port, log_level="warning")
    return 0
