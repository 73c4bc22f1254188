"""What a worker process holds while it runs: Redis, the feature store, models, learner, metrics.

The agents in ``stream/app.py`` stay short by calling into one :class:`Runtime`; the API's
``/score`` builds the same parts (store, model holder, scorer) for its own process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from features.store import LabelResult, OnlineFeatureStore
from fraudstream.errors import ServiceError
from fraudstream.settings import Settings
from models.registry import ModelRegistry
from models.watcher import ChampionWatcher
from models.zoo import build_model
from stream.event_log import record_model_events
from stream.metrics import WorkerMetrics, workers_key
from stream.schemas import Label, ScoredEvent
from stream.scoring import Scorer

__all__ = ["Runtime", "build_store"]

log = logging.getLogger("fraudstream.worker")


def build_store(settings: Settings, client: aioredis.Redis) -> OnlineFeatureStore:
    """The online feature store these settings describe."""
    return OnlineFeatureStore.from_settings(client, settings)


class Runtime:
    """The parts one worker process shares between its agents and timers."""

    HEARTBEAT_S = 1.0

    def __init__(self, settings: Settings, role: str) -> None:
        self.settings = settings
        self.role = role
        self.ready = asyncio.Event()
        self.metrics = WorkerMetrics(role)
        self.redis: aioredis.Redis | None = None
        self.registry = ModelRegistry(settings.registry_path, settings.hmac_key,
                                      keep_online=settings.registry_keep_snapshots)
        self._models: ChampionWatcher | None = None
        self._store: OnlineFeatureStore | None = None
        self._scorer: Scorer | None = None
        self._learner: Any = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._events_to_log: list[bytes] = []

    @property
    def store(self) -> OnlineFeatureStore:
        assert self._store is not None, "runtime not started"
        return self._store

    @property
    def models(self) -> ChampionWatcher:
        assert self._models is not None, "runtime not started"
        return self._models

    @property
    def scorer(self) -> Scorer:
        assert self._scorer is not None, "runtime not started"
        return self._scorer

    async def start(self) -> None:
        """Connect to Redis, load the store's Redis functions and the champion; then agents may run."""
        if self.ready.is_set():
            return
        url = self.settings.redis_url or f"redis://127.0.0.1:{self.settings.redis_port}/0"
        self.redis = aioredis.Redis.from_url(url, socket_timeout=10, health_check_interval=30)
        for attempt in range(60):
            try:
                await self.redis.ping()
                break
            except Exception:  # noqa: BLE001
                if attempt % 10 == 0:
                    log.warning("waiting for Redis at %s ...", url)
                await asyncio.sleep(0.5)
        self._store = build_store(self.settings, self.redis)
        await self._store.load()
        loop = asyncio.get_running_loop()
        if self.role in ("learner", "all"):
            from models.learner import OnlineLearner

            self._learner = await loop.run_in_executor(
                None, lambda: OnlineLearner.from_settings(self.settings, self.registry))
        else:
            await loop.run_in_executor(None, ensure_champion, self.registry, self.settings)
        self._models = await loop.run_in_executor(
            None, lambda: ChampionWatcher(self.registry, poll_interval_s=0.2, with_challengers=True,
                                          feature_set=self.settings.feature_set))
        if self._models.current is None and self.role in ("scorer", "all"):
            raise ServiceError(f"no champion this worker can serve: {self._models.last_error}")
        self._scorer = Scorer(self.settings, self._store, self._models)
        self._heartbeat_task = asyncio.create_task(self._heartbeats())
        self.ready.set()
        log.info("worker ready: role=%s champion=%s", self.role, self.models.version)

    @property
    def _heartbeat_key(self) -> str:
        return f"{self.settings.key_prefix}:worker:{self.metrics.worker_id}"

    @property
    def _member(self) -> str:
        return f"{self.role}|{self.metrics.worker_id}"

    async def _heartbeats(self) -> None:
        """Every second: the heartbeat (see ``stream/metrics.py``) and the model events to log."""
        while True:
            try:
                await self.beat()
            except Exception as exc:  # noqa: BLE001 - a lost heartbeat must not stop scoring
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(self.HEARTBEAT_S)

    async def beat(self) -> None:
        """Write this worker's heartbeat and append the pending model events to the event log."""
        self.metrics.model = self.describe_models()
        if self._learner is not None:
            status = self._learner.status()
            self.metrics.model["learner"] = status
            if self.role == "learner":  # its watcher is not refreshed: report what it learns
                self.metrics.model.update(name=status["champion"]["model"],
                                          version=status["champion"]["version"])
        assert self.redis is not None
        beat = self.metrics.heartbeat()
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self._heartbeat_key, orjson.dumps(beat), ex=15)
        pipe.zadd(workers_key(self.settings.key_prefix), {self._member: beat["at"]})
        await pipe.execute()
        if self._events_to_log:
            events, self._events_to_log = self._events_to_log, []
            await record_model_events(self.redis, self.settings.key_prefix, events)

    def _model_events(self, events: list[Any]) -> list[bytes]:
        """Events as the bytes published to ``model-events``; counted and queued for the log."""
        out = [_event_bytes(e) for e in events]
        for e in events:
            self.metrics.count(f"model_events.{getattr(e, 'kind', 'other')}")
        self._events_to_log.extend(out)
        return out

    def describe_models(self) -> dict[str, Any]:
        """The champion and challengers this process scores with."""
        if self._models is None or self._models.current is None:
            return {}
        _, meta = self._models.current
        return {
            "name": meta.name,
            "version": meta.version,
            "threshold": meta.threshold,
            "labels_learned": meta.labels_learned,
            "challengers": [{"name": m.name, "version": v.version}
                            for m, v in self._models.challengers.values()],
            "swaps": self._models.swaps,
            "last_error": self._models.last_error,
        }

    # -- learning ----------------------------------------------------------------------------
    def learn(self, label: Label, join: LabelResult) -> list[bytes]:
        """Learn one label from the snapshot stored at scoring time; model events to publish."""
        features = join.features or {}
        score = None
        if join.scored is not None:
            scored = ScoredEvent.model_validate_json(join.scored)
            features, score = scored.features, scored.score
        events = self._learner.learn(
            features, label.is_fraud, transaction_id=label.transaction_id,
            card_id=join.card_id, event_time=join.event_time or time.time(),
            reported_at=label.reported_at.timestamp(), score=score,
        )
        self.metrics.count("labels_learned")
        if label.is_fraud:
            self.metrics.count("labels_fraud")
        return self._model_events(events)

    def after_learning(self) -> list[bytes]:
        """Adopt operators' promotions, snapshot the learned champion when due; their events."""
        return self._model_events(self._learner.tick(time.time()))

    def save_unsaved(self) -> list[bytes]:
        """A clean stop of the learner: snapshot what it learned since its last snapshot (the
        labels' offsets are committed, a restart would not learn them again); its events."""
        if self._learner is None or not self.ready.is_set():
            return []
        return self._model_events(self._learner.save_unsaved(time.time()))

    def observe(self, payloads: list[bytes]) -> list[bytes]:
        """Data drift on scored events (no labels needed)."""
        out: list[Any] = []
        for raw in payloads:
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            tid = event.get("transaction_id")
            out.extend(self._learner.observe(event.get("features", {}), float(event.get("score", 0.0)),
                                             transaction_id=None if tid is None else str(tid)))
        self.metrics.count("observed", len(payloads))
        return self._model_events(out)

    async def close(self) -> None:
        """Stop the heartbeat; a clean stop also leaves the list of workers (it is not "down")."""
        if self._heartbeat_task:
            self._heartbeat_task.cancel()
            self._heartbeat_task = None
        if self.redis is not None:
            try:
                if self._events_to_log:
                    await record_model_events(self.redis, self.settings.key_prefix,
                                              self._events_to_log)
                    self._events_to_log = []
                pipe = self.redis.pipeline(transaction=False)
                pipe.delete(self._heartbeat_key)
                pipe.zrem(workers_key(self.settings.key_prefix), self._member)
                await pipe.execute()
            except Exception as exc:  # noqa: BLE001 - stopping anyway
                log.warning("could not deregister the worker: %s", exc)
            await self.redis.aclose()
            self.redis = None


def ensure_champion(registry: ModelRegistry, settings: Settings) -> None:
    """Give an empty registry an initial (unfitted) champion, as the learner would."""
    if registry.champion_version() is not None:
        return
    model = build_model(settings.model, settings.model_params)
    meta = registry.save(model, name=model.name, params=model.params, kind="online",
                         threshold=settings.review_threshold, note="initial champion (unfitted)")
    if registry.champion_version() is None:
        registry.promote(meta.version, reason="initial champion")


def _event_bytes(event: Any) -> bytes:
    if isinstance(event, bytes):
        return event
    if hasattr(event, "model_dump"):
        return orjson.dumps(event.model_dump(mode="json"))
    if hasattr(event, "to_dict"):
        return orjson.dumps(event.to_dict())
    return orjson.dumps(event, default=str)
