"""The baseline of bench/e2e.py: a bare Faust agent that forwards ``transactions`` to ``scored``.

Same broker, same transport (short fetch wait), same batching as the scoring agent, and no work:
the difference between the two is what validation, features, scoring and publishing cost.

    python bench/passthrough.py   # settings from the environment, like `fraudstream worker`
"""

from __future__ import annotations

import faust

from fraudstream.settings import Settings
from stream import transport


def create_passthrough_app(settings: Settings) -> faust.App:
    bootstrap = settings.kafka_bootstrap or f"127.0.0.1:{settings.kafka_port}"
    app = faust.App(
        f"{settings.app_id}-passthrough",
        broker=transport.broker_url(bootstrap),
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_s,
        producer_linger_ms=1,
        producer_acks=1,
        worker_redirect_stdouts=False,
        store="memory://",
    )
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms
    source = app.topic(settings.topic("transactions"), value_type=bytes, key_type=bytes)
    sink = app.topic(settings.topic("scored"), value_type=bytes, key_type=bytes)

    @app.agent(source, name="passthrough")
    async def forward(stream: faust.StreamT) -> None:
        within = settings.batch_within_ms / 1000.0
        async for events in stream.take_events(settings.batch_max, within=within):
            for event in events:
                await sink.send(key=event.message.key, value=event.value)

    return app


if __name__ == "__main__":
    app = create_passthrough_app(Settings())
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.spinner = None  # as `fraudstream worker` does: no DEBUG root logger for a spinner
    worker.execute_from_commandline()
