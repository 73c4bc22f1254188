"""Turn raw record bytes into a valid record, or into the reason it is not one.

The worker, the replay script and the API's ``/score`` share these functions, so a record is
judged the same way wherever it enters.

>>> ok, err = parse_transaction(b'{"transaction_id": "a", "card_id": 1, "amount": -5,'
...                             b' "timestamp": 0}')
>>> ok, err
(None, 'amount: must be >= 0 (got -5)')
>>> parse_transaction(b'{"transaction_id": "a"')[1]
'bad JSON: unexpected end of data at byte 22'
>>> parse_label(b'{"transaction_id": "a", "is_fraud": 1, "reported_at": 1700000000}')[0].is_fraud
True
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from stream.schemas import Label, Transaction

__all__ = ["decode_json", "explain", "parse_label", "parse_transaction"]

M = TypeVar("M", bound=BaseModel)


def decode_json(raw: bytes) -> tuple[Any, str | None]:
    """The JSON object in ``raw``, or ``(None, reason)``."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = str(exc).split(":", 1)[0].strip().rstrip(".").lower()
        return None, f"bad JSON: {msg} at byte {exc.pos}"
    if not isinstance(value, dict):
        return None, f"bad JSON: expected an object, got {type(value).__name__}"
    return value, None


def explain(exc: ValidationError) -> str:
    """One line naming every invalid field and why; the first three errors at most."""
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        kind = err["type"]
        if kind == "missing":
            parts.append(f"{loc}: missing")
            continue
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            ctx = err.get("ctx", {})
            bound = next(iter(ctx.values()), "")
            if isinstance(bound, float) and bound.is_integer():
                bound = int(bound)
            op = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">",
                  "less_than": "<"}[kind]
            msg = f"must be {op} {bound} (got {err.get('input')!r})"
        else:
            msg = msg[0].lower() + msg[1:]
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - 3
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _parse(model: type[M], raw: bytes, context: dict[str, Any] | None) -> tuple[M | None, str | None]:
    value, reason = decode_json(raw)
    if reason is not None:
        return None, reason
    return validate_dict(model, value, context)


def validate_dict(
    model: type[M], value: dict[str, Any], context: dict[str, Any] | None = None
) -> tuple[M | None, str | None]:
    """``(record, None)`` or ``(None, reason)`` for an already decoded object."""
    try:
        return model.model_validate(value, context=context), None
    except ValidationError as exc:
        return None, explain(exc)


def parse_transaction(
    raw: bytes, default_currency: str = "EUR"
) -> tuple[Transaction | None, str | None]:
    """A :class:`Transaction` from JSON bytes, or ``(None, reason)``."""
    return _parse(Transaction, raw, {"default_currency": default_currency})


def parse_label(raw: bytes) -> tuple[Label | None, str | None]:
    """A :class:`Label` from JSON bytes, or ``(None, reason)``."""
    return _parse(Label, raw, None)
