"""The scoring path: features from the online store, a score from the champion, a ScoredEvent.

The Faust scoring agent and the API's synchronous ``/score`` both call :class:`Scorer`, so a
transaction is scored the same way wherever it enters. A batch costs two Redis round trips in all
(features for every transaction of the batch, then the scored events), whatever its size.

Per transaction, in order:

1. the online store updates every window and returns the feature vector (or says the id was seen
   before, or that the event is later than the allowed lateness);
2. the champion scores the features plus the transaction's extra numeric attributes; challengers
   score in shadow; the three features that pushed the score up most become the reasons;
3. the decision follows the thresholds; the event is stored (for duplicates and lookups) and
   returned for publishing.

A duplicate whose scored event was stored gets that same event back, byte for byte; the first
event saved for a transaction is its event, so each transaction counts as scored exactly once,
even when a redelivery is scored twice at once or after an attempt that never saved.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from features.store import FeatureResult, OnlineFeatureStore
from fraudstream.settings import Settings
from models.watcher import ChampionWatcher
from stream.schemas import ScoredEvent, Transaction

__all__ = ["Outcome", "Scorer"]


@dataclass
class Outcome:
    """What became of one transaction: a scored event to publish, or a reason to dead-letter."""

    transaction: Transaction
    event: ScoredEvent | None = None
    payload: bytes | None = None  # the ScoredEvent JSON, exactly as published and stored
    dead_reason: str | None = None
    duplicate: bool = False


class Scorer:
    """Scores batches of valid transactions with the online store and the current champion."""

    def __init__(self, settings: Settings, store: OnlineFeatureStore, models: ChampionWatcher) -> None:
        self.settings = settings
        self.store = store
        self.models = models
        self.lateness_s = settings.allowed_lateness_s

    async def score(
        self, txs: Sequence[Transaction], produced_at: Sequence[float | None] | None = None
    ) -> list[Outcome]:
        """Score ``txs`` (in arrival order); ``produced_at`` are the Kafka record times (epoch s)."""
        if not txs:
            return []
        # what the store cannot take (an amount in a currency without a rate) is dead-lettered
        # alone instead of failing the whole batch
        refused = [self.store.reject_reason(tx) for tx in txs]
        todo = [tx for tx, why in zip(txs, refused, strict=True) if why is None]
        results: list[FeatureResult] = await self.store.process(todo) if todo else []
        pending = iter(results)
        outcomes: list[Outcome] = []
        to_save: list[tuple[str, bytes]] = []
        saving: list[Outcome] = []  # the outcomes of to_save
        now = time.time()
        for i, tx in enumerate(txs):
            if refused[i] is not None:
                outcomes.append(Outcome(tx, dead_reason=refused[i]))
                continue
            res = next(pending)
            if res.status == "late":
                outcomes.append(Outcome(tx, dead_reason=(
                    f"late event: event time {tx.timestamp.isoformat()} is older than the allowed "
                    f"lateness ({self.settings.allowed_lateness}) behind the latest event of its card"
                )))
                continue
            if res.status == "duplicate" and res.scored is not None:
                event = ScoredEvent.model_validate_json(res.scored)
                outcomes.append(Outcome(tx, event=event, payload=res.scored, duplicate=True))
                continue
            # a duplicate without a saved event (its first attempt updated the windows but never
            # saved, or runs now on another worker) is scored with its first-time features; the
            # save says which event is the transaction's: the first one saved
            at = produced_at[i] if produced_at else None
            started = at if at else now
            event = self._event(tx, res.features, started)
            payload = orjson.dumps(event.model_dump(mode="json"))
            to_save.append((tx.transaction_id, payload))
            outcomes.append(Outcome(tx, event=event, payload=payload))
            saving.append(outcomes[-1])
        if to_save:
            for before, out in zip(await self.store.save_scored(to_save), saving, strict=True):
                if before is not None:  # saved first by another attempt: that one is published
                    out.event = ScoredEvent.model_validate_json(before)
                    out.payload, out.duplicate = before, True
        return outcomes

    def decide(self, score: float, operating_threshold: float | None) -> str:
        """approve / review / decline: the model version's operating threshold (chosen for the
        FPR target) replaces the review threshold of the settings; decline needs both."""
        review = self.settings.review_threshold if operating_threshold is None else operating_threshold
        if score >= max(review, self.settings.decline_threshold):
            return "decline"
        return "review" if score >= review else "approve"

    def _event(self, tx: Transaction, features: dict[str, float | None], started: float) -> ScoredEvent:
        x: dict[str, Any] = dict(features)
        extras = tx.extras()
        if extras:
            x.update(extras)
        current = self.models.current
        assert current is not None, "no champion loaded"
        model, meta = current
        score, reasons = model.score_one(x, 3)
        shadow = {f"{m.name}@{v.version}": round(float(m.predict_proba_one(x)), 6)
                  for m, v in self.models.challengers.values()}
        done = time.time()
        return ScoredEvent(
            transaction_id=tx.transaction_id,
            card_id=tx.card_id,
            terminal_id=tx.terminal_id,
            score=score,
            decision=self.decide(score, meta.threshold),  # type: ignore[arg-type]
            model_name=meta.name,
            model_version=meta.version,
            reasons=reasons,
            features=x,
            event_time=tx.timestamp,
            scored_at=datetime.fromtimestamp(done, tz=UTC),
            latency_ms=max(0.0, (done - started) * 1000.0),
            challenger_scores=shadow,
        )
