"""Faust's aiokafka transport with the consumer's fetch wait lowered.

faust-streaming builds its worker consumer with ``fetch_max_wait_ms=1500`` written into the code, so
a broker holds every fetch up to 1.5 s when a partition has no new data: a transaction arriving
just after a fetch waits that long. This transport is the stock one with that value replaced by
``Settings.fetch_max_wait_ms`` (5 ms by default). It is registered under the URL scheme
``fskafka://`` (see :func:`broker_url`).
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["SCHEME", "Transport", "broker_url"]

SCHEME = "fskafka"
DEFAULT_FETCH_MAX_WAIT_MS = 5


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """The stock consumer thread, with the fetch wait from the app's configuration."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS)
        # AIOKafkaConsumer hands this attribute to its Fetcher in start(), which runs later.
        consumer._fetch_max_wait_ms = int(wait)
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """``fskafka://host:port``: aiokafka with a short fetch wait."""

    Consumer = Consumer


drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def broker_url(bootstrap: str) -> str:
    """Faust broker URL(s) for a Kafka bootstrap list ``host:port[,host:port]``.

    >>> broker_url("127.0.0.1:9092,127.0.0.1:9093")
    'fskafka://127.0.0.1:9092;fskafka://127.0.0.1:9093'
    """
    return ";".join(f"{SCHEME}://{hp.strip()}" for hp in bootstrap.split(",") if hp.strip())
