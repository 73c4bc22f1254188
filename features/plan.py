"""From a feature set to what both computations run: bucket groups, raw columns, one finalizer.

The definitions' needs are gathered into **groups**: one per (entity, kind, bucket width, source),
each with its windows (delay and length in buckets) and the raw statistics it keeps per bucket:

* ``tx`` groups keep, per bucket, the count ``c`` of transactions and, as needed, the sum ``s``,
  the sum of squares ``q`` and the maximum ``m`` of the amount in integer minor units (cents of the
  base currency), so sums are exact integers both online (Redis) and offline (numpy int64);
* ``distinct`` groups keep, per bucket, a count per value of a field; a window returns the number
  of distinct values ``d`` and whether the current value is ``new`` in it;
* ``label`` groups keep, per bucket of the labelled transaction's event time, the number ``n`` of
  labelled transactions and ``f`` of frauds.

Both the Redis script (:mod:`features.lua`) and the offline twin (:mod:`features.offline`)
produce the same **raw columns** (one per window and statistic, plus the card's previous
transaction); :func:`finalize` turns them into the features with the definitions' ``compute``, on
numpy arrays, so the floating-point operations are the same online (a batch) and offline.

>>> from features.definitions import load_feature_set
>>> plan = Plan.of(load_feature_set("handbook"))
>>> [(g.entity, g.kind, g.width_s, g.stats, len(g.windows)) for g in plan.groups]
[('card', 'tx', 1, ('c', 's'), 3), ('terminal', 'label', 1, ('n', 'f'), 3), ('terminal', 'tx', 1, ('c',), 3)]
>>> to_cents(np.array([57.16, 0.004, 0.006, 2628.0]))
array([5.716e+03, 0.000e+00, 1.000e+00, 2.628e+05])
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np

from features.definitions import ENTITIES, FeatureSet, WindowKey

__all__ = [
    "Context",
    "Group",
    "Plan",
    "bucket_of",
    "epoch_us",
    "finalize",
    "tie_key",
    "to_cents",
]

_TX_STATS = ("c", "s", "q", "m")
_OUT = {"label": ("n", "f"), "distinct": ("d", "new")}
PREV_COLUMNS = ("prev.ts", "prev.lat", "prev.lon")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(ts: datetime) -> int:
    """Integer microseconds since the epoch of an aware datetime (exact).

    >>> epoch_us(datetime(2018, 4, 1, 0, 0, 31, tzinfo=UTC))
    1522540831000000
    """
    return (ts - _EPOCH) // timedelta(microseconds=1)


def to_cents(amount: np.ndarray) -> np.ndarray:
    """Amounts in integer minor units (as float64): ``floor(amount * 100 + 0.5)``."""
    return np.floor(np.asarray(amount, dtype=float) * 100.0 + 0.5)


def bucket_of(ts_us: int | np.ndarray, width_s: int) -> int | np.ndarray:
    """The bucket index of an event time: ``floor(ts_us / width)``.

    >>> bucket_of(1522540831000000, 3600), bucket_of(1522540831000000, 1)
    (422928, 1522540831)
    """
    return ts_us // (width_s * 1_000_000)


def tie_key(transaction_id: str) -> str:
    """How transactions at the same time are ordered: integer ids numerically, then other ids as
    text (byte order). The same order as :func:`features.columns.sort_events` for integer ids.

    >>> tie_key("42") < tie_key("100") < tie_key("a")
    True
    """
    if transaction_id.isascii() and transaction_id.isdigit() and len(transaction_id) <= 18:
        return "0" + transaction_id.zfill(18)
    return "1" + transaction_id


@dataclass(frozen=True)
class Group:
    """Buckets of one width for one entity and kind; ``windows`` are (delay, length) in buckets."""

    entity: str
    kind: str
    width_s: int
    source: str
    windows: tuple[tuple[int, int], ...]
    stats: tuple[str, ...]

    @property
    def reach(self) -> int:
        """How many buckets before the current one a window reaches."""
        return max(d + n - 1 for d, n in self.windows)

    @cached_property
    def gid(self) -> str:
        """A short digest of the definition: a changed group gets new Redis keys."""
        text = json.dumps([self.entity, self.kind, self.width_s, self.source, self.windows, self.stats])
        return hashlib.sha1(text.encode()).hexdigest()[:8]

    def outputs(self) -> tuple[str, ...]:
        """The raw statistics returned per window."""
        return _OUT.get(self.kind, self.stats)

    def key(self, k: int) -> WindowKey:
        d, n = self.windows[k]
        return WindowKey(self.entity, self.kind, self.width_s, d, n, self.source)


@dataclass(frozen=True)
class Plan:
    """The groups and raw columns of a feature set."""

    feature_set: FeatureSet
    groups: tuple[Group, ...]
    previous: bool
    needs_amount: bool
    columns: tuple[tuple[WindowKey | None, str], ...] = field(repr=False)

    @classmethod
    def of(cls, feature_set: FeatureSet) -> Plan:
        wanted: dict[tuple[str, str, int, str], dict[tuple[int, int], set[str]]] = {}
        for d in feature_set.definitions:
            for key, needed in d.needs().items():
                wanted.setdefault(key.group, {}).setdefault((key.delay, key.length), set()).update(needed)
        groups = []
        for (entity, kind, width, source), windows in sorted(
            wanted.items(), key=lambda kv: (ENTITIES.index(kv[0][0]), kv[0][1:])
        ):
            used: set[str] = set().union(*windows.values())
            stats: tuple[str, ...]
            if kind == "tx":
                stats = tuple(s for s in _TX_STATS if s in used or s == "c")
            else:
                stats = _OUT[kind]
            groups.append(Group(entity, kind, width, source, tuple(sorted(windows)), stats))
        previous = any(d.needs_previous() for d in feature_set.definitions)
        columns: list[tuple[WindowKey | None, str]] = []
        for g in groups:
            for k in range(len(g.windows)):
                columns.extend((g.key(k), s) for s in g.outputs())
        if previous:
            columns.extend((None, c) for c in PREV_COLUMNS)
        return cls(feature_set, tuple(groups), previous,
                   any(d.needs_amount() for d in feature_set.definitions), tuple(columns))

    @cached_property
    def column_ids(self) -> tuple[tuple[str, str], ...]:
        return tuple(("" if k is None else k.id, s) for k, s in self.columns)

    @property
    def digest(self) -> str:
        text = json.dumps([self.feature_set.name, [g.gid for g in self.groups], self.previous])
        return hashlib.sha1(text.encode()).hexdigest()[:8]

    @property
    def label_groups(self) -> list[Group]:
        return [g for g in self.groups if g.kind == "label"]


@dataclass
class Context:
    """The inputs of ``compute``: per-transaction values and raw columns, as aligned arrays."""

    ts_us: np.ndarray
    amount: np.ndarray
    cents: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    raws: dict[tuple[WindowKey | None, str], np.ndarray]
    _by_id: dict[tuple[str, str], np.ndarray] = field(init=False, repr=False)
    _memo: dict[str, np.ndarray] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._by_id = {("" if k is None else k.id, s): v for (k, s), v in self.raws.items()}

    @classmethod
    def of_columns(cls, plan: Plan, columns: np.ndarray, **inputs: np.ndarray) -> Context:
        """A context from raw columns in ``plan.columns`` order (rows = the columns)."""
        ctx = cls(raws={}, **inputs)
        ctx._by_id = dict(zip(plan.column_ids, columns, strict=True))
        return ctx

    def memo(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """A value several definitions share (computed once per context)."""
        if name not in self._memo:
            self._memo[name] = compute()
        return self._memo[name]

    def raw(self, key: WindowKey | None, stat: str) -> np.ndarray:
        return self._by_id[("" if key is None else key.id, stat)]

    @property
    def prev_ts_us(self) -> np.ndarray:
        return self._by_id[("", "prev.ts")]

    @property
    def prev_lat(self) -> np.ndarray:
        return self._by_id[("", "prev.lat")]

    @property
    def prev_lon(self) -> np.ndarray:
        return self._by_id[("", "prev.lon")]

    @classmethod
    def of(cls, ts_us: np.ndarray, amount: np.ndarray | None = None, lat: np.ndarray | None = None,
           lon: np.ndarray | None = None,
           raws: dict[tuple[WindowKey | None, str], np.ndarray] | None = None) -> Context:
        n = len(ts_us)
        nan = np.full(n, np.nan)
        amt = nan if amount is None else np.asarray(amount, dtype=float)
        return cls(np.asarray(ts_us, dtype=np.int64), amt, to_cents(amt),
                   nan if lat is None else np.asarray(lat, dtype=float),
                   nan if lon is None else np.asarray(lon, dtype=float), raws or {})


def finalize(plan: Plan, ctx: Context) -> dict[str, np.ndarray]:
    """Every feature of ``plan`` as a float64 array (NaN = missing): the ONE function both the
    online store and the offline twin call."""
    out: dict[str, np.ndarray] = {}
    n = len(ctx.ts_us)
    with np.errstate(all="ignore"):  # 0/0 and NaN comparisons are expected: missing values
        for d in plan.feature_set.definitions:
            out[d.name] = _values(d.compute(ctx), n)
    return out


def _values(values: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.shape != (n,):
        values = np.broadcast_to(values, (n,)).copy()
    return values


def as_optional(x: float) -> float | None:
    """NaN -> None for the dict form of a feature vector."""
    return None if math.isnan(x) else x
