"""``/score``: score one transaction synchronously, exactly as the worker does.

The request body is the Transaction JSON producers publish to Kafka. It goes through the
worker's own steps, in the same code:

1. :func:`stream.validation.parse_transaction` on the raw bytes: an invalid record gets 422 with
   the reason string the worker would put in its dead letter;
2. :class:`stream.scoring.Scorer` with the online store (Redis, one round trip) and the registry's
   champion (a :class:`models.watcher.ChampionWatcher`, challengers scored in shadow): features
   are updated idempotently and the scored event is stored, so ``/predictions/{id}`` finds it and
   the learner can join its label later;
3. a transaction id seen before changes nothing and gets its stored event back, byte for byte
   (header ``X-Fraudstream-Duplicate: true``); a transaction later than the allowed lateness
   behind its card's latest event gets 409 with the worker's reason; an amount in a currency
   without an exchange rate gets 422.

Publishing: by default the event is NOT sent to the ``scored`` topic (the caller has the answer;
scoring works without Kafka). With ``?publish=true`` it is, keyed by card id, like the worker's
(Kafka's acknowledgement awaited): consumers and the learner's data-drift observer then see it.
A failed publish answers 503 after the event was stored; retrying with the same transaction id
returns the same event and publishes it again (at-least-once, like the worker).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from api.deps import ApiKey, RuntimeDep, SettingsDep
from api.http import COMMON_RESPONSES, ERROR_RESPONSES, http_error
from fraudstream.errors import FraudstreamError
from stream.schemas import ScoredEvent, Transaction
from stream.validation import parse_transaction

router = APIRouter(tags=["score"], responses=COMMON_RESPONSES)

MAX_BODY = 64 * 1024

_TX_SCHEMA = Transaction.model_json_schema(mode="validation")
_EXAMPLE = {"transaction_id": "tx-1001", "card_id": "card-42", "terminal_id": "term-7",
            "amount": 59.9, "currency": "EUR", "timestamp": "2024-05-01T12:00:00Z",
            "channel": "ecom"}


@router.post(
    "/score",
    response_model=ScoredEvent,
    dependencies=[ApiKey],
    summary="Score one transaction (the worker's code path)",
    responses={
        200: {"headers": {"X-Fraudstream-Duplicate": {
            "description": "true when the transaction id was seen before",
            "schema": {"type": "string"}}}},
        **{k: ERROR_RESPONSES[k] for k in (401, 403, 503)},
        409: {**ERROR_RESPONSES[409], "description": "late event: older than the allowed "
              "lateness behind its card's latest event (the reason says by how much)"},
        413: {**ERROR_RESPONSES[422], "description": "the body is larger than 64 KiB"},
        422: {**ERROR_RESPONSES[422], "description": "invalid transaction (the worker's "
              "dead-letter reason), or one the store refuses (no exchange rate, huge amount)"},
    },
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": _TX_SCHEMA, "example": _EXAMPLE}}}},
)
async def score(
    request: Request,
    runtime: RuntimeDep,
    settings: SettingsDep,
    publish: Annotated[bool, Query(description="also publish the event to the scored topic")] = False,
) -> Response:
    received = time.time()
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"the body is {len(raw)} bytes; at most {MAX_BODY}")
    tx, reason = parse_transaction(raw, settings.default_currency)
    if tx is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, reason or "invalid")
    try:
        scorer = await runtime.scorer()
        (out,) = await scorer.score([tx], [received])  # latency_ms: from the request's arrival
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    if out.dead_reason is not None:
        refused = runtime.store.reject_reason(tx) is not None
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT if refused
                            else status.HTTP_409_CONFLICT, out.dead_reason)
    assert out.payload is not None
    if publish:
        try:
            await runtime.publish_scored(tx.card_id, out.payload)
        except FraudstreamError as exc:
            raise http_error(exc) from exc
    return Response(out.payload, media_type="application/json",
                    headers={"X-Fraudstream-Duplicate": "true" if out.duplicate else "false"})
