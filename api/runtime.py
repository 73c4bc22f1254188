"""What the API process holds besides Redis: the job runner, the registry, the scoring path.

:class:`ApiRuntime` is created when the app starts and closed when it stops. It holds

- ``jobs``: the :class:`~api.jobs.JobRunner` (records under ``settings.jobs_path``);
- ``registry``: the :class:`~models.registry.ModelRegistry` the workers use;
- ``store``: the :class:`~features.store.OnlineFeatureStore` on the app's Redis client (lookups
  of predictions, and the features of ``/score``);
- the scorer of ``/score``, built on first use exactly as a worker builds its own
  (:class:`stream.runtime.Runtime`): the same :class:`~stream.scoring.Scorer` over the same store
  and a :class:`~models.watcher.ChampionWatcher` with challengers, so a transaction scored here is
  stored, deduplicated and scored as the worker would;
- a Kafka producer for ``/score?publish=true``, started on first use.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis

from api.jobs import JobRunner
from features.store import OnlineFeatureStore
from fraudstream.errors import ServiceError
from fraudstream.settings import Settings
from models.registry import ModelRegistry
from models.watcher import ChampionWatcher
from stream.scoring import Scorer

__all__ = ["ApiRuntime"]

log = logging.getLogger("fraudstream.api")


class ApiRuntime:
    """The API's long-lived parts (see the module docstring)."""

    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.registry = ModelRegistry(settings.registry_path, settings.hmac_key,
                                      keep_online=settings.registry_keep_snapshots)
        self.store = OnlineFeatureStore.from_settings(redis, settings)
        self.jobs = JobRunner(settings.jobs_path, workers=settings.api_job_workers)
        self._models: ChampionWatcher | None = None
        self._scorer: Scorer | None = None
        self._scorer_lock = asyncio.Lock()
        self._producer: Any = None
        self._producer_lock = asyncio.Lock()
        self._warmup: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load the champion in the background: importing River and unpickling take seconds,
        which the first ``/score`` would otherwise wait for."""
        self._warmup = asyncio.create_task(self._warm())

    async def _warm(self) -> None:
        try:
            await self.scorer()
        except ServiceError as exc:  # no champion yet: /score says so until there is one
            log.info("scorer not ready: %s", exc)
        except Exception:  # noqa: BLE001 - /score will report it; the API must still start
            log.exception("loading the champion failed")

    async def scorer(self) -> Scorer:
        """The scorer, with the registry's current champion (checked on every call: one stat)."""
        async with self._scorer_lock:
            if self._models is None:
                # poll_interval 0: a promotion made through this API is used by the next request
                self._models = await asyncio.to_thread(
                    ChampionWatcher, self.registry, poll_interval_s=0.0, with_challengers=True,
                    feature_set=self.settings.feature_set)
                self._scorer = Scorer(self.settings, self.store, self._models)
            else:
                await asyncio.to_thread(self._models.refresh)
        assert self._scorer is not None
        if self._models.current is None:
            why = f" (last load error: {self._models.last_error})" if self._models.last_error else ""
            raise ServiceError(
                f"no champion model in the registry at {self.settings.registry_path}{why}: start "
                "a worker (it creates an initial one) or promote a version "
                "(POST /models/{version}/promote)")
        return self._scorer

    @property
    def models(self) -> ChampionWatcher | None:
        """The champion watcher of ``/score`` (None until the first call)."""
        return self._models

    async def publish_scored(self, key: str, payload: bytes) -> None:
        """Send one scored event to the ``scored`` topic and wait for Kafka's acknowledgement."""
        producer = await self._kafka()
        try:
            await producer.send_and_wait(self.settings.topic("scored"), value=payload,
                                         key=key.encode())
        except Exception as exc:  # noqa: BLE001 - aiokafka raises many kinds
            raise ServiceError(f"cannot publish to Kafka topic {self.settings.topic('scored')}: "
                               f"{exc}") from exc

    async def _kafka(self) -> Any:
        async with self._producer_lock:
            if self._producer is not None:
                return self._producer
            from aiokafka import AIOKafkaProducer

            bootstrap = self.settings.kafka_bootstrap or f"127.0.0.1:{self.settings.kafka_port}"
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="fraudstream-api",
                                        acks=1, linger_ms=0, request_timeout_ms=10_000)
            try:
                await asyncio.wait_for(producer.start(), timeout=15)
            except Exception as exc:  # noqa: BLE001
                await producer.stop()
                raise ServiceError(f"cannot connect a producer to Kafka at {bootstrap}: "
                                   f"{exc or type(exc).__name__}") from exc
            self._producer = producer
            return producer

    async def close(self) -> None:
        """Stop the producer and the job threads (running jobs are asked to cancel)."""
        if self._warmup is not None and not self._warmup.done():
            self._warmup.cancel()
            await asyncio.gather(self._warmup, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        await asyncio.to_thread(self.jobs.shutdown, 10.0)
