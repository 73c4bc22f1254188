"""The Faust app: topics and agents. Start here to follow one transaction through the system.

::

    producers ──► transactions (key = card id)
                     │  score agent: validate ─► transactions.dlq (reason + original bytes)
                     │               features: ONE Redis round trip per batch (features/store.py)
                     │               score: champion (+ challengers in shadow), reasons
                     ▼
                  scored ──► consumers                     (stream/scoring.py)
    labels ──► learn agent (the learner app, one per system): join with the feature snapshot,
               learn_one, ADWIN drift, snapshots to the registry ─► model-events; scorers reload
               the champion from the registry when its version changes (a timer polls it).
               A label that overtook its transaction waits on labels.retry (FRAUDSTREAM_LABEL_WAIT),
               then goes to labels.dlq.

:func:`create_app` builds the app for a set of settings; ``role`` says which agents it runs:
``"scorer"`` (the scoring agent, stateless, scales with partitions), ``"learner"`` (the learning
agent; exactly one per system) or ``"all"`` (both, for one-process deployments). Scorers and the
learner are separate Kafka consumer groups, so each gets every partition of its own topics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import orjson

from features.store import LabelResult
from fraudstream.settings import Settings
from stream import transport
from stream.runtime import Runtime
from stream.schemas import DeadLetter, HeldLabel, Label
from stream.validation import parse_label, parse_transaction

__all__ = ["create_app"]

log = logging.getLogger("fraudstream.worker")


def _no_snapshot(label: Label, held: HeldLabel | None) -> str:
    why = (f"no feature snapshot for transaction {label.transaction_id!r} "
           "(never scored, or its snapshot expired)")
    if held is not None:
        why += f"; waited {held.wait_s:g} s on labels.retry ({held.attempts} tries)"
    return why


def create_app(settings: Settings, role: str = "all", runtime: Runtime | None = None) -> faust.App:
    """The Faust app with its topics and the agents of ``role``."""
    if role not in ("scorer", "learner", "all"):
        raise ValueError(f"role must be scorer, learner or all, not {role!r}")
    bootstrap = settings.kafka_bootstrap or f"127.0.0.1:{settings.kafka_port}"
    app_id = settings.app_id if role != "learner" else f"{settings.app_id}-learner"
    app = faust.App(
        app_id,
        broker=transport.broker_url(bootstrap),
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=6.0 if settings.broker == "tansu" else 10.0,
        broker_heartbeat_interval=1.0,
        producer_linger_ms=1,
        producer_acks=1,
        stream_buffer_maxsize=4096,
        worker_redirect_stdouts=False,
        store="memory://",
    )
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms  # type: ignore[attr-defined]  # transport.py
    rt = runtime or Runtime(settings, role)
    app.runtime = rt  # type: ignore[attr-defined]

    def topic(name: str, partitions: int | None = None) -> faust.TopicT:
        return app.topic(settings.topic(name), partitions=partitions, value_type=bytes,
                         key_type=bytes)

    transactions = topic("transactions")
    scored = topic("scored")
    labels = topic("labels", partitions=1)
    tx_dlq = topic("transactions.dlq", partitions=1)
    label_dlq = topic("labels.dlq", partitions=1)
    label_retry = topic("labels.retry", partitions=1)
    model_events = topic("model-events", partitions=1)

    @app.task
    async def start_runtime() -> None:
        await rt.start()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def stop_runtime(app: Any, **kwargs: Any) -> None:
        """A clean stop (the consumer has stopped and committed; the producer runs until the
        flush after this): the learner snapshots what it learned since its last snapshot, the
        last model events are published and logged, the worker leaves the list of workers."""
        try:
            for model_event in rt.save_unsaved():
                await model_events.send(key=b"learner", value=model_event)
        finally:
            await rt.close()

    async def dead_letter(dlq: faust.TopicT, raw: bytes, reason: str, event: Any) -> None:
        msg = event.message
        record = DeadLetter.of(raw, reason, msg.topic, msg.partition, msg.offset)
        await dlq.send(key=msg.key, value=record.model_dump_json().encode())
        rt.metrics.dead_letter(msg.topic, reason)

    if role in ("scorer", "all"):

        @app.agent(transactions, name="score")
        async def score(stream: faust.StreamT) -> None:
            """Validate, featurise, score and publish each transaction, a batch at a time."""
            await rt.ready.wait()
            batch_within = settings.batch_within_ms / 1000.0
            async for events in stream.take_events(settings.batch_max, within=batch_within):  # type: ignore[attr-defined]
                received = time.time()
                valid, produced = [], []
                for event in events:
                    raw = event.value
                    tx, reason = parse_transaction(raw, settings.default_currency)
                    if tx is None:
                        await dead_letter(tx_dlq, raw, reason or "invalid", event)
                        continue
                    valid.append(tx)
                    produced.append(event.message.timestamp or received)
                if not valid:
                    continue
                outcomes = await rt.scorer.score(valid, produced)
                for out in outcomes:
                    if out.dead_reason:
                        raw = orjson.dumps(out.transaction.model_dump(mode="json"))
                        rec = DeadLetter.of(raw, out.dead_reason, settings.topic("transactions"))
                        await tx_dlq.send(key=out.transaction.card_id.encode(),
                                          value=rec.model_dump_json().encode())
                        rt.metrics.dead_letter(settings.topic("transactions"), out.dead_reason)
                        continue
                    assert out.payload is not None and out.event is not None
                    await scored.send(key=out.transaction.card_id.encode(), value=out.payload)
                    rt.metrics.scored(out.event, out.duplicate)

        @app.timer(0.25)
        async def reload_champion() -> None:
            """Switch to a new champion within a second of its promotion, without a restart."""
            if rt.ready.is_set():
                await asyncio.get_running_loop().run_in_executor(None, rt.models.refresh)

    if role in ("learner", "all"):

        @app.agent(labels, name="learn")
        async def learn(stream: faust.StreamT) -> None:
            """Join each label with its feature snapshot, learn, detect drift, publish events."""
            await rt.ready.wait()
            async for events in stream.take_events(500, within=0.05):  # type: ignore[attr-defined]
                parsed = []
                for event in events:
                    label, reason = parse_label(event.value)
                    if label is None:
                        await dead_letter(label_dlq, event.value, reason or "invalid", event)
                        continue
                    parsed.append((label, event))
                if not parsed:
                    continue
                joins = await rt.store.apply_labels([lb for lb, _ in parsed])
                for (label, event), join in zip(parsed, joins, strict=True):
                    if join.status == "unknown":
                        msg = event.message
                        held = HeldLabel.first(event.value, msg.topic, msg.partition, msg.offset,
                                               time.time(), rt.settings.label_wait_s)
                        if held is None:
                            await dead_letter(label_dlq, event.value, _no_snapshot(label, None),
                                              event)
                        else:
                            await label_retry.send(key=msg.key, value=held.encode())
                            rt.metrics.count("labels_held")
                        continue
                    await learn_one(label, join)
                for model_event in rt.after_learning():
                    await model_events.send(key=b"learner", value=model_event)

        async def learn_one(label: Label, join: LabelResult) -> None:
            if join.status == "duplicate":
                rt.metrics.label_duplicate()
                return
            for model_event in rt.learn(label, join):
                await model_events.send(key=b"learner", value=model_event)

        @app.agent(label_retry, name="retry-labels")
        async def retry_labels(stream: faust.StreamT) -> None:
            """Labels that overtook their transaction, tried again until their wait is over.

            A held label is a Kafka record (nothing is lost if the worker stops); records come
            in the order they were held, so waiting for the first one due delays no other."""
            await rt.ready.wait()
            async for raw in stream:
                held = HeldLabel.decode(raw)
                delay = held.due - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                label, _ = parse_label(held.raw)
                assert label is not None  # it was parsed before it was held
                (join,) = await rt.store.apply_labels([label])
                if join.status != "unknown":
                    rt.metrics.count("labels_joined_late")
                    await learn_one(label, join)
                    for model_event in rt.after_learning():
                        await model_events.send(key=b"learner", value=model_event)
                    continue
                again = held.again(time.time())
                if again is not None:
                    await label_retry.send(key=label.transaction_id.encode(), value=again.encode())
                    continue
                record = DeadLetter.of(held.raw, _no_snapshot(label, held), held.topic,
                                       held.partition, held.offset)
                await label_dlq.send(key=label.transaction_id.encode(),
                                     value=record.model_dump_json().encode())
                rt.metrics.dead_letter(held.topic, record.reason)

        @app.timer(1.0)
        async def learner_tick() -> None:
            """Adopt operators' promotions and rollbacks; save due snapshots."""
            if rt.ready.is_set():
                for model_event in rt.after_learning():
                    await model_events.send(key=b"learner", value=model_event)

        @app.agent(scored, name="observe")
        async def observe(stream: faust.StreamT) -> None:
            """Data drift without labels: the score distribution and key feature means."""
            await rt.ready.wait()
            async for events in stream.take_events(1000, within=0.2):  # type: ignore[attr-defined]
                for model_event in rt.observe([e.value for e in events]):
                    await model_events.send(key=b"learner", value=model_event)

    return app
