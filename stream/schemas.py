"""The records on the wire: Transaction, Label, ScoredEvent and DeadLetter (pydantic v2).

Every topic carries JSON objects. This module is a leaf: it imports nothing else of the project,
so producers, the worker, the API and notebooks share it. The currency a transaction gets when it
names none comes from the validation context (``{"default_currency": "EUR"}``), which the worker
fills from the settings.

Timestamps are accepted as ISO-8601 (with or without a zone; without one means UTC) or as epoch
seconds or milliseconds (numbers or numeric strings; an absolute value of 1e11 or more is read as
milliseconds), and always stored as timezone-aware UTC.

>>> tx = Transaction.model_validate(
...     {"transaction_id": 1, "card_id": "c1", "terminal_id": "t9", "amount": "12.50",
...      "timestamp": "2024-05-01 10:00:00+02:00", "channel": "ECOM", "risk_score": 0.4},
...     context={"default_currency": "EUR"})
>>> tx.transaction_id, tx.currency, tx.timestamp.isoformat(), tx.channel, tx.extras()
('1', 'EUR', '2024-05-01T08:00:00+00:00', 'ecom', {'risk_score': 0.4})
>>> parse_timestamp(1714550400000).isoformat()
'2024-05-01T08:00:00+00:00'

The small normalisers below (text, categories with an alias table, currency codes, currency
conversion, timestamps) are pure functions that the offline cleaning (``features.cleaning``) uses
too, so a value is judged the same way in a file as on the wire.
"""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

__all__ = [
    "CHANNEL_ALIASES",
    "COUNTRIES",
    "CURRENCIES",
    "EPOCH_MS_THRESHOLD",
    "DeadLetter",
    "HeldLabel",
    "Label",
    "Reason",
    "ScoredEvent",
    "Transaction",
    "alias_index",
    "category_key",
    "currency_rate",
    "normalize_category",
    "normalize_currency",
    "normalize_text",
    "parse_timestamp",
]

#: ISO 4217 codes (active and fund codes), from pycountry 26.2.
CURRENCIES = frozenset(
    """AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN
MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD
SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
USD USN UYI UYU UYW UZS VED VES VND VUV WST XAD XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD
XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG""".split()
)

#: ISO 3166-1 alpha-2 country codes, from pycountry 26.2.
COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW""".split()
)

#: Epoch numbers with an absolute value at or above this are milliseconds (1e11 s is the year 5138,
#: 1e11 ms is 1973).
EPOCH_MS_THRESHOLD = 1e11

#: Accepted spellings of the channel (keys as :func:`category_key` makes them).
CHANNEL_ALIASES = {"pos": "pos", "ecom": "ecom", "e-commerce": "ecom", "online": "ecom", "atm": "atm"}

_MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TS = datetime(2100, 1, 1, tzinfo=UTC)
_NUMERIC = re.compile(r"^[+-]?\d+(\.\d+)?$")
_ID = re.compile(r"^[^\x00-\x1f]{1,128}$")
_CASES = ("keep", "lower", "upper", "title")


def normalize_text(value: Any) -> str | None:
    """Text with surrounding spaces removed and inner runs of white space collapsed; None if empty.

    >>> normalize_text("  New   York "), normalize_text("   "), normalize_text(None)
    ('New York', None, None)
    """
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def category_key(value: str) -> str:
    """The key under which a category is looked up in an alias table: case folded, dots removed,
    white space collapsed.

    >>> category_key("N.Y."), category_key("  New  YORK "), category_key("St. Louis")
    ('ny', 'new york', 'st louis')
    """
    return " ".join(value.replace(".", "").casefold().split())


def alias_index(aliases: dict[str, str]) -> dict[str, str]:
    """An alias table (spelling -> canonical value) keyed by :func:`category_key`; each canonical
    value is an alias of itself.

    >>> alias_index({"NY": "New York", "N.Y.": "New York"})
    {'ny': 'New York', 'new york': 'New York'}
    """
    index: dict[str, str] = {}
    for spelling, canonical in aliases.items():
        index[category_key(spelling)] = canonical
        index.setdefault(category_key(canonical), canonical)
    return index


def normalize_category(
    value: Any, index: dict[str, str] | None = None, case: str = "keep"
) -> str | None:
    """A category value made consistent: white space collapsed, then the alias table ``index``
    (from :func:`alias_index`) consulted, else the ``case`` applied (keep, lower, upper, title).

    >>> idx = alias_index({"ny": "New York", "n.y.": "New York"})
    >>> [normalize_category(v, idx, "title") for v in ["New York", "new  york", "NY", "N.Y.", "paris"]]
    ['New York', 'New York', 'New York', 'New York', 'Paris']
    >>> normalize_category("  ", idx) is None
    True
    """
    text = normalize_text(value)
    if text is None:
        return None
    if index:
        hit = index.get(category_key(text))
        if hit is not None:
            return hit
    if case == "keep":
        return text
    if case not in _CASES:
        raise ValueError(f"case must be one of {', '.join(_CASES)}, not {case!r}")
    return getattr(text, case)()  # type: ignore[no-any-return]


def normalize_currency(value: Any) -> str:
    """An ISO 4217 code from text such as ``" usd "``; ValueError when it is not one.

    >>> normalize_currency(" usd ")
    'USD'
    >>> normalize_currency("XYZ")
    Traceback (most recent call last):
    ...
    ValueError: unknown currency 'XYZ' (not an ISO 4217 code)
    """
    if not isinstance(value, str):
        raise ValueError("currency must be an ISO 4217 code such as EUR")
    code = value.strip().upper()
    if code not in CURRENCIES:
        raise ValueError(f"unknown currency {value!r} (not an ISO 4217 code)")
    return code


def currency_rate(code: str, rates: dict[str, float]) -> float:
    """Units of the base currency per unit of ``code``, from the configured rate table.

    >>> currency_rate("USD", {"EUR": 1.0, "USD": 0.92})
    0.92
    >>> currency_rate("SEK", {"EUR": 1.0})
    Traceback (most recent call last):
    ...
    ValueError: no exchange rate for SEK (known: EUR)
    """
    rate = rates.get(code)
    if rate is None:
        raise ValueError(f"no exchange rate for {code} (known: {', '.join(sorted(rates))})")
    return float(rate)


def parse_timestamp(value: Any) -> datetime:
    """A UTC datetime from ISO-8601 text, epoch seconds or epoch milliseconds.

    >>> parse_timestamp("2018-04-01 00:00:31").isoformat()
    '2018-04-01T00:00:31+00:00'
    >>> parse_timestamp("2018-04-01T02:00:31+02:00").isoformat()
    '2018-04-01T00:00:31+00:00'
    >>> parse_timestamp("1522540831").isoformat()
    '2018-04-01T00:00:31+00:00'
    >>> parse_timestamp(True)
    Traceback (most recent call last):
    ...
    ValueError: timestamp must be ISO-8601 text or epoch seconds/milliseconds, not a boolean
    """
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, bool):
        raise ValueError("timestamp must be ISO-8601 text or epoch seconds/milliseconds, not a boolean")
    elif isinstance(value, int | float):
        dt = _from_epoch(float(value))
    elif isinstance(value, str):
        text = value.strip()
        if _NUMERIC.match(text):
            dt = _from_epoch(float(text))
        else:
            try:
                dt = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"timestamp {value!r} is neither ISO-8601 nor epoch seconds/milliseconds"
                ) from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
    else:
        raise ValueError(
            f"timestamp must be ISO-8601 text or epoch seconds/milliseconds, not {type(value).__name__}"
        )
    dt = dt.astimezone(UTC)
    if not _MIN_TS <= dt < _MAX_TS:
        raise ValueError(f"timestamp {dt.isoformat()} is outside 1970..2100")
    return dt


def _from_epoch(x: float) -> datetime:
    if not math.isfinite(x):
        raise ValueError("timestamp is not a finite number")
    if abs(x) >= EPOCH_MS_THRESHOLD:
        x /= 1000.0
    if x < 0:
        raise ValueError("timestamp is before 1970")
    try:
        return datetime.fromtimestamp(x, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"timestamp {x} is out of range") from None


def _id(value: Any, name: str) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError("must be a string or an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"must be a string or an integer, not {value}")
        value = int(value)
    if not isinstance(value, str | int):
        raise ValueError(f"must be a string or an integer, not {type(value).__name__}")
    text = str(value).strip()
    if not _ID.match(text):
        raise ValueError("must be 1 to 128 printable characters")
    return text


def _opt_text(value: Any, name: str, max_len: int = 64) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("must be text")
    text = normalize_text(value)
    if text is None:
        return None
    if len(text) > max_len:
        raise ValueError(f"is longer than {max_len} characters")
    return text


_CHANNEL_INDEX = alias_index(CHANNEL_ALIASES)


class Transaction(BaseModel):
    """A card payment as producers publish it to the ``transactions`` topic (key: card id).

    Unknown fields must be numbers; they pass through to the model as features.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    transaction_id: str
    card_id: str
    terminal_id: str | None = None
    amount: float = Field(ge=0.0, allow_inf_nan=False)
    currency: str = Field(default="", validate_default=True)
    timestamp: datetime
    merchant_category: str | None = None
    channel: Literal["pos", "ecom", "atm"] | None = None
    latitude: float | None = Field(default=None, ge=-90.0, le=90.0, allow_inf_nan=False)
    longitude: float | None = Field(default=None, ge=-180.0, le=180.0, allow_inf_nan=False)
    country: str | None = None
    city: str | None = None

    @field_validator("transaction_id", "card_id", mode="before")
    @classmethod
    def _ids(cls, v: Any, info: ValidationInfo) -> str:
        return _id(v, info.field_name or "id")

    @field_validator("terminal_id", mode="before")
    @classmethod
    def _terminal(cls, v: Any) -> str | None:
        return None if v is None or v == "" else _id(v, "terminal_id")

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("must be a number, not a boolean")
        return v

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, v: Any, info: ValidationInfo) -> str:
        if v is None or v == "":
            default = (info.context or {}).get("default_currency", "EUR")
            return str(default)
        return normalize_currency(v)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, v: Any) -> datetime:
        return parse_timestamp(v)

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, v: Any) -> str | None:
        if v is None or v == "":
            return None
        channel = normalize_category(v, _CHANNEL_INDEX) if isinstance(v, str) else None
        if channel not in ("pos", "ecom", "atm"):
            raise ValueError(f"channel must be pos, ecom or atm, not {v!r}")
        return channel

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, v: Any) -> str | None:
        if v is None or v == "":
            return None
        if not isinstance(v, str) or v.strip().upper() not in COUNTRIES:
            raise ValueError(f"unknown country {v!r} (not an ISO 3166 alpha-2 code)")
        return v.strip().upper()

    @field_validator("merchant_category", "city", mode="before")
    @classmethod
    def _text(cls, v: Any, info: ValidationInfo) -> str | None:
        return _opt_text(v, info.field_name or "field")

    @model_validator(mode="after")
    def _coords_and_extras(self) -> Transaction:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude come together or not at all")
        for key, value in (self.__pydantic_extra__ or {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"extra field {key!r} must be a number, not {type(value).__name__}")
            if not math.isfinite(value):
                raise ValueError(f"extra field {key!r} is not a finite number")
        return self

    def extras(self) -> dict[str, float]:
        """The extra numeric attributes, which pass through as features."""
        return {k: float(v) for k, v in (self.__pydantic_extra__ or {}).items()}

    @property
    def epoch(self) -> float:
        """Event time in epoch seconds."""
        return self.timestamp.timestamp()


class Label(BaseModel):
    """The truth about a transaction, known later (chargeback, analyst verdict): topic ``labels``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: str
    is_fraud: bool
    reported_at: datetime
    source: str = "unknown"

    @field_validator("transaction_id", mode="before")
    @classmethod
    def _tx(cls, v: Any) -> str:
        return _id(v, "transaction_id")

    @field_validator("is_fraud", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> bool:
        if isinstance(v, bool):
            return v
        if v in (0, 1) and not isinstance(v, float):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in ("true", "false", "0", "1"):
            return v.strip().lower() in ("true", "1")
        raise ValueError(f"is_fraud must be true/false or 0/1, not {v!r}")

    @field_validator("reported_at", mode="before")
    @classmethod
    def _ts(cls, v: Any) -> datetime:
        return parse_timestamp(v)

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, v: Any) -> str:
        return _opt_text(v, "source") or "unknown"


class Reason(BaseModel):
    """One feature that pushed the score up, with its value and contribution."""

    model_config = ConfigDict(frozen=True)

    feature: str
    value: float | None
    contribution: float


class ScoredEvent(BaseModel):
    """The verdict on one transaction, published to ``scored`` (key: card id)."""

    model_config = ConfigDict(frozen=True)

    transaction_id: str
    card_id: str
    terminal_id: str | None = None
    score: float = Field(ge=0.0, le=1.0)
    decision: Literal["approve", "review", "decline"]
    model_name: str
    model_version: str
    reasons: list[Reason] = Field(default_factory=list)
    features: dict[str, float | None] = Field(default_factory=dict)
    event_time: datetime
    scored_at: datetime
    latency_ms: float = Field(ge=0.0)
    challenger_scores: dict[str, float] = Field(default_factory=dict)

    @field_serializer("event_time", "scored_at")
    def _iso(self, v: datetime) -> str:
        return v.astimezone(UTC).isoformat()


class DeadLetter(BaseModel):
    """A record the worker could not use, with why: topics ``transactions.dlq``, ``labels.dlq``."""

    model_config = ConfigDict(frozen=True)

    original: str = Field(description="the original record's bytes, base64")
    reason: str
    topic: str
    partition: int | None = None
    offset: int | None = None
    failed_at: datetime

    @classmethod
    def of(
        cls,
        raw: bytes,
        reason: str,
        topic: str,
        partition: int | None = None,
        offset: int | None = None,
        failed_at: datetime | None = None,
    ) -> DeadLetter:
        return cls(
            original=base64.b64encode(raw).decode("ascii"),
            reason=reason,
            topic=topic,
            partition=partition,
            offset=offset,
            failed_at=failed_at or datetime.now(UTC),
        )

    def original_bytes(self) -> bytes:
        return base64.b64decode(self.original)

    @field_serializer("failed_at")
    def _iso(self, v: datetime) -> str:
        return v.astimezone(UTC).isoformat()


class HeldLabel(BaseModel):
    """A label whose transaction had no feature snapshot yet, on topic ``labels.retry``.

    Labels normally come days after their transaction; one that overtakes it (a flat-out replay,
    a lagging scorer) is held and tried again with a growing pause (0.5 s, 1 s, 2 s, ... at most
    the rest of its wait) until ``wait_s`` of wall-clock time have passed since it was first
    held; then it goes to ``labels.dlq``. ``topic``/``partition``/``offset`` are where it came from.

    >>> h = HeldLabel.first(b'{"transaction_id": "7"}', "labels", 0, 12, now=100.0, wait_s=3.0)
    >>> h.due, h.attempts, h.raw
    (100.5, 1, b'{"transaction_id": "7"}')
    >>> h.again(100.5).due, h.again(102.0).due, h.again(103.0)
    (101.5, 103.0, None)
    >>> HeldLabel.first(b"{}", "labels", 0, 1, now=0.0, wait_s=0.0) is None  # no waiting
    True
    """

    model_config = ConfigDict(frozen=True)

    original: str = Field(description="the label record's bytes, base64")
    topic: str
    partition: int | None = None
    offset: int | None = None
    held_at: float = Field(description="when it was first held, epoch s")
    due: float = Field(description="when to try it again, epoch s")
    attempts: int = 1
    wait_s: float

    @classmethod
    def first(cls, raw: bytes, topic: str, partition: int | None, offset: int | None, now: float,
              wait_s: float) -> HeldLabel | None:
        """Hold a label, or None when labels do not wait (``wait_s`` <= 0)."""
        if wait_s <= 0:
            return None
        return cls(original=base64.b64encode(raw).decode("ascii"), topic=topic,
                   partition=partition, offset=offset, held_at=now,
                   due=now + min(0.5, wait_s), wait_s=wait_s)

    def again(self, now: float) -> HeldLabel | None:
        """The next try after a failed one at ``now``; None when the wait is over."""
        end = self.held_at + self.wait_s
        if now >= end:
            return None
        pause = min(0.5 * 2 ** self.attempts, end - now)
        return self.model_copy(update={"due": now + pause, "attempts": self.attempts + 1})

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.original)

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, data: bytes) -> HeldLabel:
        return cls.model_validate_json(data)
