"""/score and /predictions on a real Redis: the worker's code path, idempotency, lookups, errors;
``publish=true`` against a real Kafka."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from fraudstream.settings import Settings
from stream.runtime import Runtime
from stream.schemas import Label, ScoredEvent
from stream.validation import parse_transaction
from tests.integration.conftest import AUTH, train_champion

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TIMING = ("scored_at", "latency_ms")


def tx(i: int, card: str = "c1", minutes: float = 0, amount: float = 20.0, **kw: Any) -> dict:
    return {"transaction_id": f"tx-{i}", "card_id": card, "terminal_id": f"t{i % 4}",
            "amount": amount, "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), **kw}


def stream(n: int = 40) -> list[dict]:
    """Three cards, rising amounts, moving about; in event-time order."""
    out = []
    for i in range(n):
        out.append(tx(i, card=f"c{i % 3}", minutes=7 * i, amount=10.0 + 9.5 * i,
                       latitude=48.8 + 0.01 * i, longitude=2.3 - 0.02 * i))
    return out


def without_timing(event: dict) -> dict:
    return {k: v for k, v in event.items() if k not in TIMING}


@pytest.fixture
def scoring_api(api_settings: Settings):  # type: ignore[no-untyped-def]
    version = train_champion(api_settings)
    with TestClient(create_app(api_settings, monitor=False)) as client:
        client.champion = version  # type: ignore[attr-defined]
        yield client


def test_score_then_predictions(scoring_api: TestClient) -> None:
    api = scoring_api
    r = api.get("/predictions/tx-1")
    assert r.status_code == 404
    assert "no prediction for transaction 'tx-1': never scored, or expired" in r.json()["detail"]

    r = api.post("/score", json=tx(1, amount=320.0, channel="ECOM"), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.headers["x-fraudstream-duplicate"] == "false"
    event = ScoredEvent.model_validate_json(r.content)
    assert event.model_version == api.champion  # type: ignore[attr-defined]
    assert event.model_name == "logreg" and 0 <= event.score <= 1
    assert event.score > 0.5 and event.decision in ("review", "decline")  # a high amount
    assert event.reasons[0].feature == "amount" and event.reasons[0].contribution > 0
    assert event.features["amount"] == 320.0
    assert event.features["card_tx_count_1h"] == 1.0

    got = api.get("/predictions/tx-1")
    assert got.status_code == 200
    body = got.json()
    assert body["label"] is None
    assert body["scored"] == orjson.loads(r.content)  # the event as /score returned it
    assert body["scored"]["model_version"] == api.champion  # type: ignore[attr-defined]
    assert body["card_id"] == "c1" and body["terminal_id"] == "t1"
    assert body["event_time"] == T0.timestamp() + 0
    assert body["features"] == {k: v for k, v in event.features.items()}  # no extra fields sent

    low = api.post("/score", json=tx(2, minutes=5, amount=3.0), headers=AUTH).json()
    assert low["score"] < 0.5 and low["decision"] == "approve"
    assert low["features"]["card_tx_count_1h"] == 2.0


def test_a_duplicate_gets_the_same_event_and_counts_once(scoring_api: TestClient) -> None:
    api = scoring_api
    first = api.post("/score", json=tx(1), headers=AUTH)
    # the same id again, even with other values: nothing changes, the stored event comes back
    again = api.post("/score", json=tx(1, amount=999.0), headers=AUTH)
    assert again.status_code == 200 and again.headers["x-fraudstream-duplicate"] == "true"
    assert again.content == first.content  # byte for byte, timing fields included
    nxt = api.post("/score", json=tx(2, minutes=1), headers=AUTH).json()
    assert nxt["features"]["card_tx_count_1h"] == 2.0  # tx-1 counted once
    assert nxt["features"]["card_amount_sum_1h"] == 40.0


async def test_score_matches_the_workers_scorer(scoring_api: TestClient, api_settings: Settings,
                                                 make_settings: Any,
                                                 redis_service: dict[str, str]) -> None:
    """The same transactions through /score and through a scoring worker's Runtime (its own
    Redis keys, the same registry): the same events, up to the timing fields."""
    events = stream()
    via_api = []
    for record in events:
        r = scoring_api.post("/score", json=record, headers=AUTH)
        assert r.status_code == 200, r.text
        via_api.append(orjson.loads(r.content))
    worker_settings = make_settings(redis_service, key_prefix=api_settings.key_prefix + "w",
                                    registry_dir=api_settings.registry_path)
    rt = Runtime(worker_settings, "scorer")
    await rt.start()
    try:
        parsed = [parse_transaction(orjson.dumps(e))[0] for e in events]
        outcomes = await rt.scorer.score(parsed)  # type: ignore[arg-type]
    finally:
        await rt.close()
    via_worker = [orjson.loads(o.payload) for o in outcomes]  # type: ignore[arg-type]
    assert len(via_worker) == len(via_api)
    for a, w in zip(via_api, via_worker, strict=True):
        assert without_timing(a) == without_timing(w)
    assert len({round(e["score"], 6) for e in via_api}) > 10  # a real model: scores differ
    assert any(e["features"]["card_km_from_prev"] is not None for e in via_api)


def test_invalid_transactions_get_the_dead_letter_reason(scoring_api: TestClient) -> None:
    api = scoring_api
    cases = [
        b'{"transaction_id": "a", "card_id": 1, "amount": -5, "timestamp": 0}',
        b'{"transaction_id": "a"',
        b'[1, 2]',
        b'{"card_id": "c", "amount": 5, "timestamp": "2024-05-01T00:00:00Z"}',
        b'{"transaction_id": "b", "card_id": "c", "amount": 5, "timestamp": 0, "country": "XX"}',
        b'{"transaction_id": "b", "card_id": "c", "amount": 5, "timestamp": 0, "note": "hi"}',
        b'',
    ]
    for raw in cases:
        r = api.post("/score", content=raw, headers={**AUTH, "content-type": "application/json"})
        assert r.status_code == 422, (raw, r.text)
        assert r.json()["detail"] == parse_transaction(raw)[1], raw
    r = api.post("/score", content=cases[0], headers=AUTH)
    assert r.json()["detail"] == "amount: must be >= 0 (got -5)"
    r = api.post("/score", content=b"x" * 70_000, headers=AUTH)
    assert r.status_code == 413


def test_late_events_and_currencies_without_rate(scoring_api: TestClient) -> None:
    api = scoring_api
    assert api.post("/score", json=tx(1, minutes=180), headers=AUTH).status_code == 200
    r = api.post("/score", json=tx(2, minutes=0), headers=AUTH)  # 3 h behind, lateness 1 h
    assert r.status_code == 409
    assert r.json()["detail"].startswith("late event: event time 2024-05-01T12:00:00+00:00 is "
                                         "older than the allowed lateness (1h)")
    assert api.get("/predictions/tx-2").status_code == 404  # a late event changes nothing
    assert api.post("/score", json=tx(3, minutes=150), headers=AUTH).status_code == 200  # 30 min

    r = api.post("/score", json=tx(4, minutes=200, currency="SEK"), headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"] == "no exchange rate for SEK (base EUR)"
    r = api.post("/score", json=tx(6, minutes=200, amount=1.09e308), headers=AUTH)
    assert r.status_code == 422
    assert r.json()["detail"] == "amount 1.09e+308 EUR is too large: at most 1e+13 EUR"
    r = api.post("/score", json=tx(5, minutes=200, currency="USD", amount=100), headers=AUTH)
    assert r.status_code == 200 and r.json()["features"]["amount"] == pytest.approx(92.0)


async def test_the_worker_dead_letters_what_the_store_refuses_alone(
        api_settings: Settings) -> None:
    train_champion(api_settings)
    rt = Runtime(api_settings, "scorer")
    await rt.start()
    try:
        batch = [parse_transaction(orjson.dumps(tx(i, minutes=i, **extra)))[0]
                 for i, extra in enumerate([{}, {"currency": "SEK"}, {}, {"amount": 1e300}])]
        outcomes = await rt.scorer.score(batch)  # type: ignore[arg-type]
    finally:
        await rt.close()
    assert [o.dead_reason for o in outcomes] == [
        None, "no exchange rate for SEK (base EUR)", None,
        "amount 1e+300 EUR is too large: at most 1e+13 EUR"]
    assert outcomes[2].event is not None and outcomes[2].event.features["card_tx_count_1h"] == 2.0


async def test_a_transaction_counts_as_scored_once_whatever_the_redeliveries(
        api_settings: Settings) -> None:
    """At-least-once delivery: a transaction can be processed again after an attempt that updated
    the windows but never saved its event (a worker stopped mid-batch, a Redis reply lost and the
    call retried), or twice at once (two workers during a rebalance). The first event saved is
    the transaction's: it is the one counted as scored, every other attempt is a duplicate that
    gets that event back byte for byte."""
    train_champion(api_settings)
    rt = Runtime(api_settings, "scorer")
    await rt.start()
    try:
        first, second, other = (parse_transaction(orjson.dumps(tx(i, minutes=i)))[0] for i in range(3))
        await rt.store.process([first])  # an attempt that never got as far as saving
        (out,) = await rt.scorer.score([first])  # type: ignore[list-item]
        assert out.duplicate is False and out.event is not None  # the first event saved
        assert out.event.features["card_tx_count_1h"] == 1.0  # the windows counted it once
        (again,) = await rt.scorer.score([first])  # type: ignore[list-item]
        assert again.duplicate is True and again.payload == out.payload
        # two attempts at once: both score (neither had a saved event), the first save wins
        a, b, c = await rt.scorer.score([second, second, other])  # type: ignore[list-item]
        assert (a.duplicate, b.duplicate, c.duplicate) == (False, True, False)
        assert b.payload == a.payload and b.event == a.event
        assert c.event is not None and c.event.features["card_tx_count_1h"] == 3.0
        assert await rt.store.save_scored([("tx-1", b"{}")]) == [a.payload]  # kept, not replaced
    finally:
        await rt.close()


def test_auth_and_no_champion(api: TestClient, api_settings: Settings) -> None:
    assert api.post("/score", json=tx(1)).status_code == 401
    assert api.post("/score", json=tx(1), headers={"X-API-Key": "nope"}).status_code == 403
    r = api.post("/score", json=tx(1), headers=AUTH)
    assert r.status_code == 503 and "no champion model in the registry" in r.json()["detail"]
    version = train_champion(api_settings)  # promoted while the API runs: used at once
    r = api.post("/score", json=tx(2), headers=AUTH)
    assert r.status_code == 200 and r.json()["model_version"] == version


def test_a_promotion_is_used_by_the_next_request(scoring_api: TestClient,
                                                 api_settings: Settings) -> None:
    api = scoring_api
    first = api.post("/score", json=tx(1), headers=AUTH).json()
    newer = train_champion(api_settings, name="hst")
    second = api.post("/score", json=tx(2, minutes=1), headers=AUTH).json()
    assert first["model_version"] != newer
    assert second["model_version"] == newer and second["model_name"] == "hst"
    # challengers are scored in shadow, as in the worker
    r = api.put("/models/challengers", json={"versions": [first["model_version"]]}, headers=AUTH)
    assert r.status_code == 200
    third = api.post("/score", json=tx(3, minutes=2), headers=AUTH).json()
    assert list(third["challenger_scores"]) == [f"logreg@{first['model_version']}"]


async def test_predictions_show_the_label_once_known(scoring_api: TestClient,
                                                     api_settings: Settings) -> None:
    api = scoring_api
    assert api.post("/score", json=tx(7), headers=AUTH).status_code == 200
    rt = Runtime(api_settings, "scorer")  # the learner's join, through the same store
    await rt.start()
    try:
        (join,) = await rt.store.apply_labels([Label(
            transaction_id="tx-7", is_fraud=True, reported_at=T0 + timedelta(days=3),
            source="chargeback")])
    finally:
        await rt.close()
    assert join.status == "new"
    body = api.get("/predictions/tx-7").json()
    assert body["label"] == {"is_fraud": True, "reported_at": "2024-05-04T12:00:00Z",
                             "source": "chargeback"}


def test_predictions_expire(redis_service: dict[str, str], make_settings: Any) -> None:
    settings = make_settings(redis_service, api_key=AUTH["X-API-Key"], prediction_ttl="1s",
                             snapshot_ttl="1s")
    train_champion(settings)
    with TestClient(create_app(settings, monitor=False)) as api:
        assert api.post("/score", json=tx(1), headers=AUTH).status_code == 200
        assert api.get("/predictions/tx-1").status_code == 200
        time.sleep(2.1)
        r = api.get("/predictions/tx-1")
        assert r.status_code == 404
        assert "(scored events live FRAUDSTREAM_PREDICTION_TTL = 1s)" in r.json()["detail"]


def test_publish_without_kafka_is_503_after_scoring(redis_service: dict[str, str],
                                                    make_settings: Any) -> None:
    from stream.services import free_port

    settings = make_settings(redis_service, api_key=AUTH["X-API-Key"],
                             kafka_bootstrap=f"127.0.0.1:{free_port()}")
    train_champion(settings)
    with TestClient(create_app(settings, monitor=False)) as api:
        started = time.monotonic()
        r = api.post("/score?publish=true", json=tx(1), headers=AUTH)
        assert r.status_code == 503 and "cannot connect a producer to Kafka" in r.json()["detail"]
        assert time.monotonic() - started < 20
        assert api.get("/predictions/tx-1").status_code == 200  # scored and stored before
        assert api.post("/score", json=tx(1), headers=AUTH).status_code == 200


def test_publish_sends_the_event_to_the_scored_topic(services: dict[str, str],
                                                     make_settings: Any) -> None:
    from kafka import KafkaConsumer

    from stream.topics import ensure_topics

    settings = make_settings(services, api_key=AUTH["X-API-Key"])
    ensure_topics(settings, services["kafka"])
    train_champion(settings)
    with TestClient(create_app(settings, monitor=False)) as api:
        sent = [api.post("/score?publish=true", json=tx(i, card=f"c{i}", minutes=i),
                         headers=AUTH) for i in range(3)]
        assert [r.status_code for r in sent] == [200, 200, 200]
        quiet = api.post("/score", json=tx(9, minutes=9), headers=AUTH)  # not published
        assert quiet.status_code == 200
    consumer = KafkaConsumer(settings.topic("scored"), bootstrap_servers=services["kafka"],
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    try:
        got = {m.value: m.key for m in consumer}
    finally:
        consumer.close()
    assert got == {r.content: f"c{i}".encode() for i, r in enumerate(sent)}
