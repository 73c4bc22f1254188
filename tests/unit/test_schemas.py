"""Wire schemas and validation: every accepted timestamp form, every rejection."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest

from stream.schemas import DeadLetter, Label, ScoredEvent, Transaction, parse_timestamp
from stream.validation import parse_label, parse_transaction

BASE = {"transaction_id": "tx1", "card_id": "c1", "terminal_id": "t1", "amount": 10.0,
        "timestamp": "2024-05-01T08:00:00Z"}
T0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)


def tx(**changes: object) -> bytes:
    record = {**BASE, **changes}
    return orjson.dumps({k: v for k, v in record.items() if v is not ...})


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01T08:00:00Z",
        "2024-05-01T08:00:00+00:00",
        "2024-05-01T10:00:00+02:00",
        "2024-05-01T03:00:00-05:00",
        "2024-05-01T08:00:00",
        "2024-05-01 08:00:00",
        "2024-05-01T08:00:00.000",
        1714550400,
        1714550400.0,
        "1714550400",
        1714550400000,
        "1714550400000",
    ],
)
def test_every_accepted_timestamp_form_is_stored_as_utc(value: object) -> None:
    record, reason = parse_transaction(tx(timestamp=value))
    assert reason is None
    assert record is not None
    assert record.timestamp == T0
    assert record.timestamp.tzinfo is not None and record.timestamp.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("yesterday", "neither ISO-8601 nor epoch"),
        ("2024-13-01T00:00:00", "neither ISO-8601 nor epoch"),
        (True, "not a boolean"),
        (-5, "before 1970"),
        ("2200-01-01T00:00:00", "outside 1970..2100"),
        ([2024], "not list"),
        (None, "not NoneType"),
    ],
)
def test_bad_timestamps_are_rejected_with_a_reason(value: object, fragment: str) -> None:
    record, reason = parse_transaction(tx(timestamp=value))
    assert record is None
    assert reason is not None and reason.startswith("timestamp: ")
    assert fragment in reason


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"transaction_id": "a",', "bad JSON"),
        (b"\xff\xfe", "bad JSON"),
        (b"[1, 2]", "expected an object, got list"),
        (b'"text"', "expected an object, got str"),
        (tx(transaction_id=...), "transaction_id: missing"),
        (tx(card_id=...), "card_id: missing"),
        (tx(amount=...), "amount: missing"),
        (tx(timestamp=...), "timestamp: missing"),
        (tx(amount=-0.01), "amount: must be >= 0"),
        (tx(amount="ten"), "amount: "),
        (tx(amount=True), "amount: must be a number, not a boolean"),
        (tx(amount=float("nan")) if False else tx(amount="NaN"), "amount: "),
        (tx(currency="XYZ"), "unknown currency 'XYZ'"),
        (tx(currency=978), "currency must be an ISO 4217 code"),
        (tx(card_id=""), "card_id: must be 1 to 128 printable characters"),
        (tx(card_id={"a": 1}), "card_id: must be a string or an integer"),
        (tx(transaction_id=1.5), "transaction_id: must be a string or an integer"),
        (tx(channel="phone"), "channel must be pos, ecom or atm"),
        (tx(country="Narnia"), "unknown country"),
        (tx(latitude=91, longitude=0), "latitude: must be <= 90"),
        (tx(latitude=45.0), "latitude and longitude come together"),
        (tx(device="iphone"), "extra field 'device' must be a number"),
        (tx(risk=True), "extra field 'risk' must be a number"),
    ],
)
def test_every_rejection_names_the_field_and_why(raw: bytes, fragment: str) -> None:
    record, reason = parse_transaction(raw)
    assert record is None
    assert reason is not None and fragment in reason, reason


def test_defaults_and_normalisation() -> None:
    record, reason = parse_transaction(
        tx(currency=" usd ", channel="Online", country=" fr", city="  New   York ",
           transaction_id=42, card_id=7, terminal_id=None, risk_score=3), default_currency="GBP")
    assert reason is None and record is not None
    assert (record.transaction_id, record.card_id, record.terminal_id) == ("42", "7", None)
    assert (record.currency, record.channel, record.country, record.city) == ("USD", "ecom", "FR", "New York")
    assert record.extras() == {"risk_score": 3.0}
    record, _ = parse_transaction(tx(), default_currency="GBP")
    assert record is not None and record.currency == "GBP"


def test_label_forms() -> None:
    for flag, expected in [(1, True), (0, False), ("true", True), ("0", False), (True, True)]:
        label, reason = parse_label(orjson.dumps(
            {"transaction_id": 5, "is_fraud": flag, "reported_at": "2024-05-03T00:00:00"}))
        assert reason is None and label is not None
        assert label.is_fraud is expected and label.transaction_id == "5" and label.source == "unknown"
    label, reason = parse_label(orjson.dumps({"transaction_id": 5, "is_fraud": 2, "reported_at": 0}))
    assert label is None and reason and "is_fraud" in reason
    label, reason = parse_label(orjson.dumps({"transaction_id": 5, "is_fraud": 1, "reported_at": 0, "x": 1}))
    assert label is None and reason and "x: extra inputs are not permitted" in reason


def test_scored_event_and_dead_letter_round_trip() -> None:
    event = ScoredEvent(
        transaction_id="tx1", card_id="c1", score=0.97, decision="decline", model_name="logreg",
        model_version="v3", reasons=[{"feature": "amount", "value": 900.0, "contribution": 2.1}],
        features={"amount": 900.0, "card_nb_tx_1h": None}, event_time=T0, scored_at=T0,
        latency_ms=3.2,
    )
    again = ScoredEvent.model_validate_json(event.model_dump_json())
    assert again == event
    with pytest.raises(ValueError):
        ScoredEvent.model_validate({**event.model_dump(), "score": 1.5})
    dl = DeadLetter.of(b"\x00not json", "bad JSON", "transactions", 3, 17)
    assert base64.b64decode(dl.original) == b"\x00not json" and dl.original_bytes() == b"\x00not json"
    assert DeadLetter.model_validate_json(dl.model_dump_json()) == dl


def test_parse_timestamp_keeps_aware_datetimes() -> None:
    assert parse_timestamp(datetime(2024, 5, 1, 8)) == T0
    assert Label(transaction_id="a", is_fraud=False, reported_at=T0).reported_at == T0
    assert Transaction.model_validate({**BASE}).currency == "EUR"
