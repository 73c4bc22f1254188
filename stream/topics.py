"""The Kafka topics of fraudstream, created when missing.

Every topic of :data:`fraudstream.settings.TOPIC_NAMES` gets the configured prefix
(``settings.topic(name)``). ``transactions`` and ``scored`` are keyed by card id and get
``settings.partitions`` partitions (the unit of parallelism of the scorers); ``labels``,
``labels.dlq``, ``labels.retry``, ``transactions.dlq`` and ``model-events`` get one (one
learner, small volumes, a total order). Topics that exist are left as they are.

>>> from fraudstream.settings import Settings
>>> sorted(topic_partitions(Settings(_env_file=None, topic_prefix="x-", partitions=3)).items())
... # doctest: +NORMALIZE_WHITESPACE
[('x-labels', 1), ('x-labels.dlq', 1), ('x-labels.retry', 1), ('x-model-events', 1),
 ('x-scored', 3), ('x-transactions', 3), ('x-transactions.dlq', 1)]
"""

from __future__ import annotations

import time

from fraudstream.errors import ServiceError
from fraudstream.settings import TOPIC_NAMES, Settings

__all__ = ["PARTITIONED", "ensure_topics", "resolve_bootstrap", "topic_partitions"]

#: Topics with ``settings.partitions`` partitions; every other one has a single partition.
PARTITIONED = frozenset({"transactions", "scored"})


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Full topic name -> number of partitions it should have."""
    return {
        settings.topic(name): settings.partitions if name in PARTITIONED else 1
        for name in TOPIC_NAMES
    }


def resolve_bootstrap(settings: Settings) -> str:
    """The Kafka bootstrap address in use: the configured one, else the embedded broker's."""
    from stream.services import Services

    return Services(settings, log=lambda m: None).addresses()[0]


def ensure_topics(
    settings: Settings,
    bootstrap: str | None = None,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Create the topics that are missing; return the names created (waits until they exist)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    bootstrap = bootstrap or resolve_bootstrap(settings)
    wanted = topic_partitions(settings)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="fraudstream-topics",
            request_timeout_ms=int(timeout * 1000),
        )
    except KafkaError as exc:
        raise ServiceError(f"Kafka at {bootstrap} does not answer: {exc}") from exc
    try:
        missing = [name for name in wanted if name not in set(admin.list_topics())]
        created = []
        for name in missing:
            try:
                admin.create_topics(
                    [NewTopic(name, num_partitions=wanted[name], replication_factor=replication_factor)],
                    timeout_ms=int(timeout * 1000),
                )
                created.append(name)
            except TopicAlreadyExistsError:  # created meanwhile by someone else
                pass
        deadline = time.monotonic() + timeout
        while missing:
            present = set(admin.list_topics())
            missing = [name for name in missing if name not in present]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise ServiceError(f"topics {missing} not visible at {bootstrap} after {timeout:.0f} s")
            time.sleep(0.1)
        return created
    except KafkaError as exc:
        raise ServiceError(f"cannot create topics at {bootstrap}: {exc}") from exc
    finally:
        admin.close()
