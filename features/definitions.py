"""Every feature definition of fraudstream, declared once; the online store and the offline twin both
derive their computation from these objects.

A feature is one of:

* :class:`Aggregate`: an aggregation (``count``, ``sum``, ``mean``, ``std``, ``max``, ``distinct``)
  of a source field over an event-time window of one entity (``card``, ``terminal`` or
  ``card_terminal``), optionally shifted back by a delay. The window is made of time buckets of a
  fixed width (part of the definition): a transaction at time ``t`` falls in bucket
  ``floor(t / bucket)``, and a window of length ``N`` with delay ``D`` seen from bucket ``B`` covers
  the buckets ``B - (D + N) / bucket + 1 .. B - D / bucket``. With no delay the current transaction
  is included. The source ``is_fraud`` makes it label-based: ``count`` = labelled transactions,
  ``sum`` = frauds, ``mean`` = fraud share, counted in the bucket of the labelled transaction's
  event time, as labels arrive.
* derived features: :class:`Amount`, :class:`AmountVsHistory` (z-score or ratio to the entity's
  mean), :class:`SincePrevious`, :class:`DistanceFromPrevious`, :class:`SpeedFromPrevious`,
  :class:`HourOfDay` (cyclic), :class:`Weekend`, :class:`Night`, :class:`FirstSeen` (first time
  at this terminal / in this country within a window).

Each definition knows which raw aggregates it needs (``needs()``) and how to turn them into its
value (``compute(ctx)``); :mod:`features.plan` gathers the needs into bucket groups and runs
``compute`` on numpy arrays, the same code online (a batch) and offline (the whole frame).

A bad definition raises :class:`~fraudstream.errors.FeatureDefinitionError` when it is built:

>>> Aggregate("n", "card", "count", window="90m", bucket="1h")
Traceback (most recent call last):
...
fraudstream.errors.FeatureDefinitionError: feature 'n': window 5400 s is not a multiple of its bucket width 3600 s

>>> fs = load_feature_set("handbook")
>>> len(fs.feature_names()), fs.feature_names()[:4]
(15, ['TX_AMOUNT', 'TX_DURING_WEEKEND', 'TX_DURING_NIGHT', 'CUSTOMER_ID_NB_TX_1DAY_WINDOW'])
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from fraudstream.errors import ConfigError, FeatureDefinitionError
from fraudstream.settings import parse_duration

if TYPE_CHECKING:
    from features.plan import Context

__all__ = [
    "AGGREGATIONS",
    "CATEGORICAL_FIELDS",
    "ENTITIES",
    "Aggregate",
    "Amount",
    "AmountVsHistory",
    "Definition",
    "DistanceFromPrevious",
    "FeatureSet",
    "FirstSeen",
    "HourOfDay",
    "Night",
    "SincePrevious",
    "SpeedFromPrevious",
    "WindowKey",
    "Weekend",
    "feature_set_names",
    "load_feature_set",
]

ENTITIES = ("card", "terminal", "card_terminal")
AGGREGATIONS = ("count", "sum", "mean", "std", "max", "distinct")
#: Fields a ``distinct`` aggregation or a :class:`FirstSeen` can count.
CATEGORICAL_FIELDS = ("card_id", "terminal_id", "country", "city", "merchant_category", "channel",
                      "currency")
#: The id fields of each entity (a distinct count of them is meaningless).
ENTITY_FIELDS = {"card": ("card_id",), "terminal": ("terminal_id",),
                 "card_terminal": ("card_id", "terminal_id")}
LABEL = "is_fraud"
AMOUNT = "amount"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


# -- window keys: what the plan groups into buckets ---------------------------------------------
@dataclass(frozen=True, order=True)
class WindowKey:
    """One window of one bucket group: ``kind`` is ``tx``, ``distinct`` or ``label``.

    ``delay`` and ``length`` are in buckets; ``source`` is the counted field of a distinct group.
    """

    entity: str
    kind: str
    width_s: int
    delay: int
    length: int
    source: str = ""

    @property
    def group(self) -> tuple[str, str, int, str]:
        return (self.entity, self.kind, self.width_s, self.source)

    @cached_property
    def id(self) -> str:
        """A string naming the window (cheap to hash, unlike the dataclass)."""
        return f"{self.entity}/{self.kind}/{self.width_s}/{self.delay}/{self.length}/{self.source}"


def _seconds(name: str, what: str, value: str | float | int) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise FeatureDefinitionError(name, f"{what}: {exc}") from None


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise FeatureDefinitionError(str(name), "a name is letters, digits and _ (not first digit)")
    return name


def _bucketed(name: str, window: str | float | int, bucket: str | float | int,
              delay: str | float | int = 0) -> tuple[int, int, int]:
    """(width s, length in buckets, delay in buckets), checked."""
    width = _seconds(name, "bucket", bucket)
    if width < 1 or width != int(width):
        raise FeatureDefinitionError(name, f"bucket width {width:g} s must be a whole number of seconds >= 1")
    length = _seconds(name, "window", window)
    if length <= 0:
        raise FeatureDefinitionError(name, "window must be longer than 0")
    if length % width:
        raise FeatureDefinitionError(
            name, f"window {length:g} s is not a multiple of its bucket width {width:g} s")
    lag = _seconds(name, "delay", delay)
    if lag < 0:
        raise FeatureDefinitionError(name, "delay must not be negative")
    if lag % width:
        raise FeatureDefinitionError(
            name, f"delay {lag:g} s is not a multiple of its bucket width {width:g} s")
    return int(width), int(length // width), int(lag // width)


def _entity(name: str, entity: str) -> str:
    if entity not in ENTITIES:
        raise FeatureDefinitionError(name, f"unknown entity {entity!r}; known: {', '.join(ENTITIES)}")
    return entity


def _empty(name: str, empty: float | None) -> float | None:
    if empty is not None and (isinstance(empty, bool) or not isinstance(empty, int | float)
                              or not math.isfinite(empty)):
        raise FeatureDefinitionError(name, f"empty must be a finite number or None, not {empty!r}")
    return None if empty is None else float(empty)


def _fill(values: np.ndarray, empty_mask: np.ndarray, empty: float | None) -> np.ndarray:
    return np.where(empty_mask, np.nan if empty is None else empty, values)


class Definition:
    """Base of every feature definition: a name, its raw needs, and how to compute it."""

    name: str

    def names(self) -> list[str]:
        """The feature names this definition produces (one, for every definition here)."""
        return [self.name]

    def needs(self) -> dict[WindowKey, set[str]]:
        """The windows (and raw statistics of each) this feature reads."""
        return {}

    def needs_previous(self) -> bool:
        """True when it reads the card's previous transaction."""
        return False

    def needs_amount(self) -> bool:
        return False

    def compute(self, ctx: Context) -> np.ndarray:  # pragma: no cover - abstract
        """The feature's values (NaN = missing); runs under ``np.errstate(all="ignore")``."""
        raise NotImplementedError(f"{type(self).__name__}.compute")

    def label_delay_s(self) -> float:
        """The delay of a label-based window (0 when not label-based)."""
        return 0.0


# -- aggregations ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Aggregate(Definition):
    """An aggregation over an event-time window of one entity.

    >>> a = Aggregate("card_tx_count_1h", "card", "count", window="1h", bucket="1m")
    >>> a.key
    WindowKey(entity='card', kind='tx', width_s=60, delay=0, length=60, source='')
    >>> Aggregate("risk", "terminal", "max", window="7d", bucket="1d", source="is_fraud")
    Traceback (most recent call last):
    ...
    fraudstream.errors.FeatureDefinitionError: feature 'risk': max of labels is not defined; use count, sum or mean of is_fraud
    """

    name: str
    entity: str
    agg: str
    window: str | float = "1h"
    bucket: str | float = "1m"
    source: str | None = None
    delay: str | float = 0
    empty: float | None = None
    key: WindowKey = dc_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = _check_name(self.name)
        _entity(name, self.entity)
        if self.agg not in AGGREGATIONS:
            raise FeatureDefinitionError(
                name, f"unknown aggregation {self.agg!r}; known: {', '.join(AGGREGATIONS)}")
        width, length, delay = _bucketed(name, self.window, self.bucket, self.delay)
        _empty(name, self.empty)
        source = self.source
        if self.agg == "count":
            if source not in (None, LABEL):
                raise FeatureDefinitionError(
                    name, f"count takes no source (transactions) or {LABEL} (labelled ones), not {source!r}")
            kind = "label" if source == LABEL else "tx"
        elif self.agg == "distinct":
            if source not in CATEGORICAL_FIELDS:
                raise FeatureDefinitionError(
                    name, f"distinct needs a source among {', '.join(CATEGORICAL_FIELDS)}, not {source!r}")
            if source in ENTITY_FIELDS[self.entity]:
                raise FeatureDefinitionError(name, f"distinct {source} of a {self.entity} is always 1")
            kind = "distinct"
        elif source == LABEL:
            if self.agg not in ("sum", "mean"):
                raise FeatureDefinitionError(
                    name, f"{self.agg} of labels is not defined; use count, sum or mean of {LABEL}")
            kind = "label"
        elif source in (None, AMOUNT):
            kind = "tx"
        else:
            raise FeatureDefinitionError(
                name, f"{self.agg} needs source {AMOUNT} or {LABEL}, not {source!r}")
        object.__setattr__(self, "key", WindowKey(self.entity, kind, width, delay, length,
                                                  source or "" if kind == "distinct" else ""))

    def needs(self) -> dict[WindowKey, set[str]]:
        k = self.key
        if k.kind == "label":
            return {k: {"n", "f"}}
        if k.kind == "distinct":
            return {k: {"d"}}
        return {k: {"count": {"c"}, "sum": {"c", "s"}, "mean": {"c", "s"},
                    "std": {"c", "s", "q"}, "max": {"c", "m"}}[self.agg]}

    def needs_amount(self) -> bool:
        return self.key.kind == "tx" and self.agg != "count"

    def label_delay_s(self) -> float:
        return float(self.key.delay * self.key.width_s) if self.key.kind == "label" else 0.0

    def compute(self, ctx: Context) -> np.ndarray:
        k = self.key
        if k.kind == "distinct":
            return ctx.raw(k, "d")
        if k.kind == "label":
            n, f = ctx.raw(k, "n"), ctx.raw(k, "f")
            if self.agg == "count":
                return n
            if self.agg == "sum":
                return f
            return _fill(f / n, n == 0, self.empty)
        c = ctx.raw(k, "c")
        if self.agg == "count":
            return c
        if self.agg == "sum":
            return ctx.raw(k, "s") / 100.0
        if self.agg == "mean":
            return _fill(ctx.raw(k, "s") / c / 100.0, c == 0, self.empty)
        if self.agg == "max":
            return _fill(ctx.raw(k, "m") / 100.0, c == 0, self.empty)
        return _fill(_std_cents(c, ctx.raw(k, "s"), ctx.raw(k, "q")) / 100.0, c == 0, self.empty)


def _std_cents(c: np.ndarray, s: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Population standard deviation from count, sum and sum of squares (same ops everywhere)."""
    var = (c * q - s * s) / (c * c)
    return np.sqrt(np.maximum(var, 0.0))


@dataclass(frozen=True)
class AmountVsHistory(Definition):
    """The amount relative to the entity's amounts in a window (current included): ``zscore`` =
    (amount - mean) / std (missing when std is 0), ``ratio`` = amount / mean."""

    name: str
    kind: str = "zscore"
    entity: str = "card"
    window: str | float = "30d"
    bucket: str | float = "1h"
    key: WindowKey = dc_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = _check_name(self.name)
        _entity(name, self.entity)
        if self.kind not in ("zscore", "ratio"):
            raise FeatureDefinitionError(name, f"kind must be zscore or ratio, not {self.kind!r}")
        width, length, _ = _bucketed(name, self.window, self.bucket)
        object.__setattr__(self, "key", WindowKey(self.entity, "tx", width, 0, length))

    def needs(self) -> dict[WindowKey, set[str]]:
        return {self.key: {"c", "s", "q"} if self.kind == "zscore" else {"c", "s"}}

    def needs_amount(self) -> bool:
        return True

    def compute(self, ctx: Context) -> np.ndarray:
        c, s = ctx.raw(self.key, "c"), ctx.raw(self.key, "s")
        mean = s / c
        if self.kind == "ratio":
            return np.where(mean > 0, ctx.cents / mean, np.nan)
        std = _std_cents(c, s, ctx.raw(self.key, "q"))
        return np.where(std > 0, (ctx.cents - mean) / std, np.nan)


# -- the card's previous transaction --------------------------------------------------------
@dataclass(frozen=True)
class _Previous(Definition):
    name: str
    horizon: str | float = "30d"

    def __post_init__(self) -> None:
        name = _check_name(self.name)
        if _seconds(name, "horizon", self.horizon) <= 0:
            raise FeatureDefinitionError(name, "horizon must be longer than 0")

    @property
    def horizon_us(self) -> int:
        return int(round(parse_duration(self.horizon) * 1e6))

    def needs_previous(self) -> bool:
        return True

    def _dt_seconds(self, ctx: Context) -> np.ndarray:
        def dt() -> np.ndarray:
            diff = ctx.ts_us - ctx.prev_ts_us  # microseconds, exact; NaN without a previous one
            return np.where(diff <= self.horizon_us, diff / 1e6, np.nan)

        return ctx.memo(f"dt/{self.horizon_us}", dt)

    def _km(self, ctx: Context) -> np.ndarray:
        return ctx.memo("km", lambda: haversine_km(ctx.prev_lat, ctx.prev_lon, ctx.lat, ctx.lon))


@dataclass(frozen=True)
class SincePrevious(_Previous):
    """Seconds since the card's previous transaction (missing when none within ``horizon``)."""

    def compute(self, ctx: Context) -> np.ndarray:
        return self._dt_seconds(ctx)


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km (mean Earth radius 6371.0088 km).

    >>> round(float(haversine_km(np.array([48.8566]), np.array([2.3522]),
    ...                          np.array([51.5072]), np.array([-0.1276]))[0]), 1)
    343.5
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    return 2.0 * 6371.0088 * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


@dataclass(frozen=True)
class DistanceFromPrevious(_Previous):
    """Km from the card's previous transaction, when both have coordinates."""

    def compute(self, ctx: Context) -> np.ndarray:
        return np.where(np.isnan(self._dt_seconds(ctx)), np.nan, self._km(ctx))


@dataclass(frozen=True)
class SpeedFromPrevious(_Previous):
    """Implied km/h from the card's previous transaction (missing when no time passed)."""

    def compute(self, ctx: Context) -> np.ndarray:
        dt = self._dt_seconds(ctx)
        return np.where(dt > 0, self._km(ctx) / (dt / 3600.0), np.nan)


# -- per-transaction ------------------------------------------------------------------------
@dataclass(frozen=True)
class Amount(Definition):
    """The amount in the base currency."""

    name: str

    def __post_init__(self) -> None:
        _check_name(self.name)

    def needs_amount(self) -> bool:
        return True

    def compute(self, ctx: Context) -> np.ndarray:
        return ctx.amount


_US_DAY = 86_400_000_000
_US_HOUR = 3_600_000_000


@dataclass(frozen=True)
class HourOfDay(Definition):
    """Hour of day (UTC) on the unit circle: ``sin`` or ``cos`` of 2 pi h / 24, h fractional.

    >>> from features.plan import Context
    >>> ctx = Context.of(ts_us=np.array([6 * _US_HOUR]))
    >>> float(HourOfDay("h", "sin").compute(ctx)[0])
    1.0
    """

    name: str
    kind: str = "sin"

    def __post_init__(self) -> None:
        name = _check_name(self.name)
        if self.kind not in ("sin", "cos"):
            raise FeatureDefinitionError(name, f"kind must be sin or cos, not {self.kind!r}")

    def compute(self, ctx: Context) -> np.ndarray:
        angle = (ctx.ts_us % _US_DAY) / _US_DAY * (2.0 * math.pi)
        return np.sin(angle) if self.kind == "sin" else np.cos(angle)


@dataclass(frozen=True)
class Weekend(Definition):
    """1 on Saturday and Sunday (UTC), else 0."""

    name: str

    def __post_init__(self) -> None:
        _check_name(self.name)

    def compute(self, ctx: Context) -> np.ndarray:
        weekday = (ctx.ts_us // _US_DAY + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        return (weekday >= 5).astype(float)


@dataclass(frozen=True)
class Night(Definition):
    """1 when the hour (UTC) is at most ``last_hour`` (the handbook: hour <= 6), else 0."""

    name: str
    last_hour: int = 6

    def __post_init__(self) -> None:
        name = _check_name(self.name)
        if not isinstance(self.last_hour, int) or not 0 <= self.last_hour <= 23:
            raise FeatureDefinitionError(name, f"last_hour must be 0..23, not {self.last_hour!r}")

    def compute(self, ctx: Context) -> np.ndarray:
        return ((ctx.ts_us % _US_DAY) // _US_HOUR <= self.last_hour).astype(float)


@dataclass(frozen=True)
class FirstSeen(Definition):
    """1 when the entity has not seen this value of ``field`` in the window before this
    transaction (first time at this terminal, in this country), 0 when it has, missing without a
    value. A card's first time at a terminal reads the card x terminal count (1 = only this
    one), which is the same thing at bucket resolution and keeps far fewer fields in Redis."""

    name: str
    field: str = "terminal_id"
    entity: str = "card"
    window: str | float = "30d"
    bucket: str | float = "1h"
    key: WindowKey = dc_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = _check_name(self.name)
        _entity(name, self.entity)
        if self.field not in CATEGORICAL_FIELDS:
            raise FeatureDefinitionError(
                name, f"field must be one of {', '.join(CATEGORICAL_FIELDS)}, not {self.field!r}")
        if self.field in ENTITY_FIELDS[self.entity]:
            raise FeatureDefinitionError(name, f"a {self.entity} always has its own {self.field}")
        width, length, _ = _bucketed(name, self.window, self.bucket)
        if (self.entity, self.field) == ("card", "terminal_id"):
            key = WindowKey("card_terminal", "tx", width, 0, length)
        else:
            key = WindowKey(self.entity, "distinct", width, 0, length, self.field)
        object.__setattr__(self, "key", key)

    def needs(self) -> dict[WindowKey, set[str]]:
        return {self.key: {"c"} if self.key.kind == "tx" else {"new"}}

    def compute(self, ctx: Context) -> np.ndarray:
        if self.key.kind == "tx":
            c = ctx.raw(self.key, "c")
            return np.where(np.isnan(c), np.nan, (c == 1).astype(float))
        return ctx.raw(self.key, "new")


# -- feature sets ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureSet:
    """A named, ordered collection of definitions; the unit the store and the twin compute."""

    name: str
    definitions: tuple[Definition, ...]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.definitions:
            raise FeatureDefinitionError(self.name, "a feature set needs at least one definition")
        seen: set[str] = set()
        for d in self.definitions:
            if not isinstance(d, Definition):
                raise FeatureDefinitionError(self.name, f"{d!r} is not a feature definition")
            for n in d.names():
                if n in seen:
                    raise FeatureDefinitionError(n, f"defined twice in feature set {self.name!r}")
                seen.add(n)

    def feature_names(self) -> list[str]:
        """Every feature's name, in definition order (stable)."""
        return [n for d in self.definitions for n in d.names()]

    @property
    def label_delay_s(self) -> float:
        """The longest delay of the label-based windows (the label delay the set assumes)."""
        return max((d.label_delay_s() for d in self.definitions), default=0.0)


def _handbook() -> FeatureSet:
    """The Fraud Detection Handbook's 15 baseline features, named as there (see the data README)."""
    defs: list[Definition] = [Amount("TX_AMOUNT"), Weekend("TX_DURING_WEEKEND"),
                              Night("TX_DURING_NIGHT", last_hour=6)]
    for n in (1, 7, 30):
        defs.append(Aggregate(f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW", "card", "count",
                              window=f"{n}d", bucket="1s"))
        defs.append(Aggregate(f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW", "card", "mean",
                              window=f"{n}d", bucket="1s", source=AMOUNT, empty=0.0))
    for n in (1, 7, 30):
        defs.append(Aggregate(f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW", "terminal", "count",
                              window=f"{n}d", bucket="1s", delay="7d"))
        defs.append(Aggregate(f"TERMINAL_ID_RISK_{n}DAY_WINDOW", "terminal", "mean",
                              window=f"{n}d", bucket="1s", delay="7d", source=LABEL, empty=0.0))
    return FeatureSet("handbook", tuple(defs),
                      "the handbook's 15 baseline features; 1-second buckets, exact at its resolution")


def _default() -> FeatureSet:
    """What the worker computes on live or simulated traffic. Bucket widths grow with the
    windows (1 minute up to 1 hour, 1 hour for 24 hours, 1 day beyond), which bounds the fields a
    transaction reads in Redis to about a hundred at 30 days of history."""
    defs: list[Definition] = [
        Amount("amount"),
        HourOfDay("hour_sin", "sin"),
        HourOfDay("hour_cos", "cos"),
        Weekend("is_weekend"),
        Night("is_night", last_hour=6),
        # the card: recent activity
        Aggregate("card_tx_count_10m", "card", "count", window="10m", bucket="1m"),
        Aggregate("card_tx_count_1h", "card", "count", window="1h", bucket="1m"),
        Aggregate("card_amount_sum_1h", "card", "sum", window="1h", bucket="1m", source=AMOUNT),
        Aggregate("card_tx_count_24h", "card", "count", window="24h", bucket="1h"),
        Aggregate("card_amount_sum_24h", "card", "sum", window="24h", bucket="1h", source=AMOUNT),
        Aggregate("card_amount_max_24h", "card", "max", window="24h", bucket="1h", source=AMOUNT),
        # the card: its habits (1-day buckets)
        Aggregate("card_tx_count_7d", "card", "count", window="7d", bucket="1d"),
        Aggregate("card_amount_mean_7d", "card", "mean", window="7d", bucket="1d", source=AMOUNT),
        Aggregate("card_amount_mean_30d", "card", "mean", window="30d", bucket="1d", source=AMOUNT),
        Aggregate("card_amount_std_30d", "card", "std", window="30d", bucket="1d", source=AMOUNT),
        AmountVsHistory("card_amount_zscore_30d", "zscore", "card", window="30d", bucket="1d"),
        AmountVsHistory("card_amount_ratio_30d", "ratio", "card", window="30d", bucket="1d"),
        # the card: where
        SincePrevious("card_seconds_since_prev", horizon="30d"),
        DistanceFromPrevious("card_km_from_prev", horizon="30d"),
        SpeedFromPrevious("card_kmh_from_prev", horizon="30d"),
        Aggregate("card_distinct_terminals_24h", "card", "distinct", window="24h", bucket="1h",
                  source="terminal_id"),
        Aggregate("card_distinct_countries_7d", "card", "distinct", window="7d", bucket="1d",
                  source="country"),
        FirstSeen("card_new_terminal_30d", "terminal_id", "card", window="30d", bucket="1d"),
        FirstSeen("card_new_country_30d", "country", "card", window="30d", bucket="1d"),
        # the terminal: activity, distinct cards, and risk from labels (shifted by 1 day)
        Aggregate("terminal_tx_count_1h", "terminal", "count", window="1h", bucket="1h"),
        Aggregate("terminal_tx_count_24h", "terminal", "count", window="24h", bucket="1h"),
        Aggregate("terminal_amount_mean_24h", "terminal", "mean", window="24h", bucket="1h",
                  source=AMOUNT),
        Aggregate("terminal_distinct_cards_24h", "terminal", "distinct", window="24h", bucket="1h",
                  source="card_id"),
        Aggregate("terminal_labelled_7d", "terminal", "count", window="7d", bucket="1d",
                  delay="1d", source=LABEL),
        Aggregate("terminal_risk_7d", "terminal", "mean", window="7d", bucket="1d", delay="1d",
                  source=LABEL, empty=0.0),
        Aggregate("terminal_risk_30d", "terminal", "mean", window="30d", bucket="1d", delay="1d",
                  source=LABEL, empty=0.0),
        # the card at this terminal
        Aggregate("card_terminal_tx_count_30d", "card_terminal", "count", window="30d", bucket="1d"),
    ]
    return FeatureSet("default", tuple(defs), "live traffic: card, terminal and card x terminal")


_PRESETS: dict[str, Callable[[], FeatureSet]] = {"default": _default, "handbook": _handbook}


def feature_set_names() -> list[str]:
    return sorted(_PRESETS)


def load_feature_set(name: str) -> FeatureSet:
    """The named feature set; an unknown name raises ConfigError listing the known ones.

    >>> load_feature_set("nope")
    Traceback (most recent call last):
    ...
    fraudstream.errors.ConfigError: unknown feature set 'nope'; known: default, handbook
    """
    try:
        factory = _PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown feature set {name!r}; known: {', '.join(feature_set_names())}") from None
    return factory()
