"""Publishing records to Kafka in event-time order, paced: shared by the simulator and the replay.

:class:`Publisher` wraps a kafka-python producer: transactions go to ``transactions`` keyed by card
id, labels to ``labels`` keyed by transaction id, values are JSON (orjson). A failed send is
counted and :meth:`Publisher.flush` raises :class:`~fraudstream.errors.ServiceError` for it, so a
caller never checkpoints past a record Kafka did not take.

:class:`Pacer` decides when the next record may go: flat out, at a fixed number of transactions
per wall-clock second, or with event time mapped linearly onto wall time (``speed`` event seconds
per wall second).

>>> fake_now = [0.0]
>>> p = Pacer(speed=100, clock=lambda: fake_now[0])
>>> p.due(1000.0), p.due(1500.0)  # event seconds 1000 and 1500 -> wall seconds 0 and 5
(0.0, 5.0)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from fraudstream.errors import ServiceError
from fraudstream.settings import Settings

__all__ = ["Pacer", "Publisher"]


class Publisher:
    """A kafka-python producer for the transactions and labels topics of ``settings``."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        client_id: str = "fraudstream-producer",
        **producer_options: Any,
    ) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self.tx_topic = settings.topic("transactions")
        self.label_topic = settings.topic("labels")
        self.bootstrap = bootstrap
        # kafka-python's defaults: acks=all with the idempotent producer (a retried batch is
        # not written twice); batches of up to 256 KiB, lingering 5 ms, for throughput
        options: dict[str, Any] = {"linger_ms": 5, "batch_size": 256 * 1024}
        options.update(producer_options)
        try:
            self.producer = KafkaProducer(bootstrap_servers=bootstrap, client_id=client_id, **options)
        except KafkaError as exc:
            raise ServiceError(f"cannot connect a producer to Kafka at {bootstrap}: {exc}") from exc
        self.failed = 0
        self.first_error: BaseException | None = None
        self._lock = threading.Lock()

    def _errback(self, exc: BaseException) -> None:
        with self._lock:
            self.failed += 1
            if self.first_error is None:
                self.first_error = exc

    def send_transaction(self, key: str | None, record: dict[str, Any]) -> None:
        self._send(self.tx_topic, key, orjson.dumps(record))

    def send_label(self, key: str | None, record: dict[str, Any]) -> None:
        self._send(self.label_topic, key, orjson.dumps(record))

    def _send(self, topic: str, key: str | None, value: bytes) -> None:
        future = self.producer.send(topic, value=value, key=None if key is None else key.encode())
        future.add_errback(self._errback)

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until Kafka acknowledged every record sent so far; raise if any failed."""
        from kafka.errors import KafkaError

        try:
            self.producer.flush(timeout=timeout)
        except KafkaError as exc:
            raise ServiceError(f"Kafka at {self.bootstrap} did not take the records: {exc}") from exc
        if self.failed:
            raise ServiceError(
                f"{self.failed} record(s) were not delivered to Kafka at {self.bootstrap}: "
                f"{self.first_error}"
            )

    def close(self, timeout: float = 10.0) -> None:
        self.producer.close(timeout=timeout)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pacer:
    """When the next record may be published.

    * ``rate`` > 0: transactions leave at ``rate`` per wall-clock second, evenly spaced; labels go
      as soon as the stream reaches them (they are not counted in the rate).
    * ``speed`` > 0: event time runs ``speed`` times faster than wall time (``speed=86400/300``
      plays one day in five minutes); labels are paced like transactions.
    * neither (``rate=0``): flat out.
    """

    def __init__(
        self,
        rate: float | None = None,
        speed: float | None = None,
        stop_event: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate and speed:
            raise ValueError("pace by rate or by speed, not both")
        if (rate or 0) < 0 or (speed or 0) < 0:
            raise ValueError("rate and speed must be >= 0")
        self.rate = rate or 0.0
        self.speed = speed or 0.0
        self.stop_event = stop_event or threading.Event()
        self.clock = clock
        self._start: float | None = None
        self._first: float | None = None
        self._sent = 0

    def due(self, t: float, is_transaction: bool = True) -> float | None:
        """The wall-clock time (of ``clock``) the record at event time ``t`` may go; None: now."""
        if not self.rate and not self.speed:
            return None
        if self._start is None:
            self._start, self._first = self.clock(), t
        if self.rate:
            if not is_transaction:
                return None
            self._sent += 1
            return self._start + (self._sent - 1) / self.rate
        return self._start + (t - (self._first or 0.0)) / self.speed

    def wait(self, t: float, is_transaction: bool) -> bool:
        """Sleep until the record at event time ``t`` may go; False when asked to stop."""
        if self.stop_event.is_set():
            return False
        due = self.due(t, is_transaction)
        if due is None:
            return True
        ahead = due - self.clock()
        while ahead > 0.0005:
            if self.stop_event.wait(min(ahead, 0.2)):
                return False
            ahead = due - self.clock()
        return True
