"""ModelEvent: what the learner tells the world, published to the ``model-events`` topic.

One record per drift, warning, promotion, rollback or snapshot, with its evidence (the detector,
the means before and after, the metrics compared, the versions involved). Key: the model name.

>>> e = ModelEvent(kind="snapshot", model="logreg", version="v3", evidence={"labels": 500},
...                at=datetime(2024, 5, 1, tzinfo=UTC))
>>> e.model_dump_json()
'{"kind":"snapshot","model":"logreg","version":"v3","evidence":{"labels":500},"at":"2024-05-01T00:00:00+00:00","event_time":null}'
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

__all__ = ["EVENT_KINDS", "ModelEvent"]

EVENT_KINDS = ("drift", "warning", "promotion", "rollback", "snapshot")


class ModelEvent(BaseModel):
    """One event of the model lifecycle.

    ``kind``: ``drift`` (evidence ``type`` "concept" or "data"), ``warning`` (a possible
    concept drift: a background model started), ``promotion``, ``rollback``, ``snapshot``.
    ``version``: the registry version concerned (the new champion, the snapshot), if any.
    ``at``: wall-clock time of the event; ``event_time``: the event time of the transaction
    that triggered it (epoch seconds), when there is one.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["drift", "warning", "promotion", "rollback", "snapshot"]
    model: str
    version: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    event_time: float | None = None

    @field_serializer("at")
    def _iso(self, v: datetime) -> str:
        return v.astimezone(UTC).isoformat()
