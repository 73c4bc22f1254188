"""``/predictions/{transaction_id}``: a scored transaction, from Redis while it lives.

The scored event as the worker (or ``/score``) stored it (``scored``: score, decision, model name
and version, the reasons, the features the model saw), the label once the learner applied one,
and the feature snapshot kept for the learner's join.
Events live ``FRAUDSTREAM_PREDICTION_TTL`` (45 days by default); after that, or for an id never
scored, the answer is 404 with the reason.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field

from api.deps import RuntimeDep, SettingsDep
from api.http import COMMON_RESPONSES, ERROR_RESPONSES, http_error
from fraudstream.errors import FraudstreamError
from stream.schemas import ScoredEvent

router = APIRouter(prefix="/predictions", tags=["predictions"], responses=COMMON_RESPONSES)


class LabelPublic(BaseModel):
    is_fraud: bool
    reported_at: datetime
    source: str


class PredictionPublic(BaseModel):
    """What Redis keeps of a scored transaction (:meth:`OnlineFeatureStore.get_prediction`)."""

    transaction_id: str
    scored: ScoredEvent = Field(description="the scored event as published: score, decision, "
                                "model name and version, reasons, the features the model saw")
    label: LabelPublic | None = Field(default=None, description="null until the label arrives")
    features: dict[str, float | None] | None = Field(
        default=None, description="the feature snapshot kept for the learner's join (null once "
                                  "it expired)")
    event_time: float | None = Field(default=None, description="epoch seconds")
    card_id: str | None = None
    terminal_id: str | None = None


@router.get("/{transaction_id}", response_model=PredictionPublic,
            summary="A scored transaction: score, decision, model version, reasons, label",
            responses={404: ERROR_RESPONSES[404], 503: ERROR_RESPONSES[503]})
async def get_prediction(
    transaction_id: str = Path(min_length=1, max_length=128),
    *, runtime: RuntimeDep, settings: SettingsDep,
) -> PredictionPublic:
    try:
        found = await runtime.store.get_prediction(transaction_id)
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, (
            f"no prediction for transaction {transaction_id!r}: never scored, or expired "
            f"(scored events live FRAUDSTREAM_PREDICTION_TTL = {settings.prediction_ttl})"))
    if found["scored"] is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, (
            f"no prediction for transaction {transaction_id!r}: its features were computed but "
            "its scored event is gone (expired, or it was never saved)"))
    return PredictionPublic.model_validate(found)
