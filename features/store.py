"""The online feature store: Redis, one round trip per batch, idempotent, event-time windows.

Key scheme (every key starts with ``NS = {key_prefix}:{feature set}:{plan digest}v{STORAGE_VERSION}``;
the digest changes whenever a group's definition changes and the version whenever the layout of
the values does, so old state is never read with a new meaning: it is left to expire)::

    NS:tx:{transaction_id}        string  snapshot of a processed transaction: the raw columns
                                          returned at scoring (8 * columns bytes, little-endian
                                          doubles, NaN = missing), then the inputs JSON (t event
                                          time in us, a amount in the base currency, la/lo
                                          coordinates, c card, m terminal), the byte 0x1E, and
                                          the label targets (its event time, then the entities
                                          with label groups: index and key, one per line).
                                          TTL snapshot_ttl_s, set once
    NS:lb:{transaction_id}        string  the label JSON, once labelled; TTL: the snapshot's rest
    NS:sc:{transaction_id}        string  the ScoredEvent JSON saved by save_scored;
                                          TTL prediction_ttl_s
    NS:c:{card}                   string  the card's state: every bucket group of the card, and
                                          its recent transactions
    NS:t:{terminal}               string  the terminal's state
    NS:x:{len(card)}:{card}:{terminal}
                                  string  the state of the card at the terminal

An entity's state is one packed string (layout in :mod:`features.lua`): a head block with the
entity's latest event time and, per bucket group, its anchor bucket, the record of the current
bucket and the running totals of every window; then each group's older bucket records (tx:
count, sum, sum of squares, max of the amount in cents, as the group needs; label: labelled,
frauds), each distinct group's values with their buckets, and (card) the recent transactions
(event time, coordinates, tie key). One GET reads it, one SET writes it.
Records older than ``floor((latest - allowed lateness) / width) - reach`` (``reach`` = the furthest
bucket any window of the group looks back) are never read again and are dropped when the group's
anchor moves (a distinct value when its newest bucket is that old; a recent transaction when a
later one is also older than the lateness), so memory per entity is bounded by the windows, not
by its history. A state key gets its TTL, the longest span of its groups (``(reach + 2) * width``
+ the lateness; the card's recent transactions: the previous-transaction horizon + the lateness),
when it is created, and again only when a write opens a bucket that must outlive the TTL set last
(its span from the entity's latest event time ends after that TTL's, counted in event time);
other writes keep the TTL (``SET ... KEEPTTL``). TTLs are wall-clock, which is exact as long as
event time advances at least as fast as the clock (live traffic, or a replay faster than real
time). A label for a transaction whose entity state has expired is not kept: nothing a later
transaction reads could hold it.

Window semantics. A transaction at event time ``t`` (bucket ``B = floor(t / w)``) sees, in a
window of ``n`` buckets delayed by ``d`` buckets, the events of its entity that Redis processed
before it whose bucket lies in ``[B - d - n + 1, B - d]``; with ``d = 0`` the transaction itself
is included. Label windows count labels applied before the transaction, each in the bucket of its
*labelled transaction's* event time. The offline twin computes exactly this with events in
(event time, transaction id) order and labels applied at their ``reported_at`` (a label released
at the same time as a transaction is applied first).

Out-of-order events. A transaction older than the latest event time of its card or card x
terminal by more than ``allowed_lateness_s`` is refused (status ``late``) and changes nothing:
those entities are keyed by card, the Kafka key, so their events arrive in order and only a
producer's lag makes one late. A terminal's events come from every partition, so a worker that
reads one partition ahead of another can see a terminal's event late without anyone's fault: such
a transaction is scored (its terminal windows see the buckets before its own), and its terminal
buckets are updated only where the terminal still keeps them (not older than the allowed lateness
behind the terminal's latest event).
One within the lateness is added to the bucket of its own event time, and sees exactly what
in-order processing would have shown it in every bucket *before* its own: later buckets are
outside its windows. Within its own bucket it also sees events of that bucket that arrived before
it even if their event time is later (at 1-second buckets: only same-second events). The events
that were processed before it and are later in event time are not re-computed. The card's
previous transaction (seconds since, distance, speed) is exact in (time, id) order whatever the
arrival order, within the lateness.

Exactness. Sums are integers (cents) below 2^53 in Lua's doubles and numpy's int64: exact while a
window's sum of squared cents stays below 2^53 (about 95,000 EUR per transaction with 100
transactions); the derived values are finalized by :func:`features.plan.finalize`, the same
function the offline twin runs.

Round trips: ``process``, ``save_scored``, ``apply_labels`` and ``get_prediction`` each send one
non-transactional pipeline for the whole batch (``round_trips()`` counts them). The Redis
functions (``FCALL``, Redis >= 7.0) come from one library the store loads with ``FUNCTION LOAD``;
a "function not found" reply (Redis restarted without persistence, or FUNCTION FLUSH) costs one
FUNCTION LOAD and one re-send of the affected calls. Within a pipeline Redis runs the calls one
after the other, so two transactions of one card in a batch see each other in order. The label
function writes the state keys its snapshot names, which are not declared as keys: the store
needs a standalone Redis (or one shard), not Redis Cluster.

Cost (``bench/feature_store_cost.py``, ``bench/features.py``): one ``process`` call reads and
writes three strings (card ~1.2 KB, terminal ~0.8 KB, pair ~0.2 KB at 30 days of history for the
default set). A transaction in its groups' current buckets or later (in order) reads its windows
from the running totals and touches only the records that leave a window; an older one (late
within the lateness) scans its groups' records. The work left is mostly per call and per byte
copied between Redis and Lua, not per bucket of history.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import orjson
from redis.exceptions import RedisError, ResponseError

from features.definitions import FeatureSet, load_feature_set
from features.lua import entities, render
from features.plan import Context, Plan, epoch_us, finalize, tie_key, to_cents
from fraudstream.errors import DataError, ServiceError
from stream.schemas import Label, Transaction

if TYPE_CHECKING:
    import redis.asyncio

    from fraudstream.settings import Settings

__all__ = ["STORAGE_VERSION", "FeatureResult", "LabelResult", "OnlineFeatureStore"]

#: The layout of the values in Redis (part of every key): a new layout never reads an old one.
STORAGE_VERSION = 2

#: Amounts (base currency) from this one up are refused: their cents would not be exact integers
#: in a double (2^53 cents), and an infinite product of amount and rate would not count at all.
MAX_AMOUNT = 1e13


@dataclass
class FeatureResult:
    """The features of one transaction; ``scored`` is the saved ScoredEvent JSON of a duplicate."""

    transaction_id: str
    status: Literal["new", "duplicate", "late"]
    features: dict[str, float | None]
    scored: bytes | None
    reason: str | None = None  # why a late transaction was refused (for the dead-letter topic)


@dataclass
class LabelResult:
    """A label applied: the features used at scoring (for the learner's join) and the tx's facts."""

    transaction_id: str
    status: Literal["new", "duplicate", "unknown"]
    features: dict[str, float | None] | None
    scored: bytes | None
    event_time: float | None
    card_id: str | None
    terminal_id: str | None


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _snapshot(x: bytes, ncols: int) -> tuple[bytes, dict[str, Any]]:
    """(raw columns, inputs) of a stored snapshot."""
    size = 8 * ncols
    inputs, _ = x[size:].split(b"\x1e", 1)
    return x[:size], orjson.loads(inputs)


def _bytes(x: Any) -> bytes | None:
    if x is None:
        return None
    return x if isinstance(x, bytes) else str(x).encode()


class OnlineFeatureStore:
    """Computes a feature set's features in Redis, online (see the module docstring)."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        feature_set: FeatureSet,
        *,
        key_prefix: str,
        allowed_lateness_s: float,
        snapshot_ttl_s: int,
        prediction_ttl_s: int,
        base_currency: str = "EUR",
        currency_rates: dict[str, float] | None = None,
    ) -> None:
        if allowed_lateness_s < 0 or snapshot_ttl_s <= 0 or prediction_ttl_s <= 0:
            raise ValueError("allowed lateness must be >= 0 and TTLs > 0")
        self.client = client
        self.feature_set = feature_set
        self.plan = Plan.of(feature_set)
        self.ns = f"{key_prefix}:{feature_set.name}:{self.plan.digest}v{STORAGE_VERSION}"
        self.lateness_us = int(round(allowed_lateness_s * 1e6))
        self.snapshot_ttl_s = int(snapshot_ttl_s)
        self.prediction_ttl_s = int(prediction_ttl_s)
        self.base_currency = base_currency.upper()
        self.currency_rates = {k.upper(): float(v) for k, v in (currency_rates or {}).items()}
        horizon = max((getattr(d, "horizon_us", 0) for d in feature_set.definitions
                       if d.needs_previous()), default=0)
        self.library = render(self.plan, horizon, self.lateness_us, self.snapshot_ttl_s)
        self._loaded = False
        self._round_trips = 0
        self._names = feature_set.feature_names()
        self._ncols = len(self.plan.columns)
        self._entities = entities(self.plan)  # the order of the scripts' state KEYS
        self._labelled = {g.entity for g in self.plan.label_groups}
        self._distinct = [(g.entity, g.source) for g in self.plan.groups if g.kind == "distinct"]

    @classmethod
    def from_settings(cls, client: redis.asyncio.Redis, settings: Settings,
                      feature_set: FeatureSet | None = None) -> OnlineFeatureStore:
        """The store as the settings configure it (feature set, key prefix, lateness, TTLs,
        currencies)."""
        return cls(
            client,
            feature_set or load_feature_set(settings.feature_set),
            key_prefix=settings.key_prefix,
            allowed_lateness_s=settings.allowed_lateness_s,
            snapshot_ttl_s=settings.snapshot_ttl_s,
            prediction_ttl_s=settings.prediction_ttl_s,
            base_currency=settings.base_currency,
            currency_rates=settings.currency_rates,
        )

    # -- the function library and accounting ---------------------------------------------------
    async def load(self) -> None:
        """FUNCTION LOAD the store's library (one round trip); later calls use FCALL."""
        self._round_trips += 1
        try:
            name = await self.client.function_load(self.library.code, replace=True)
        except RedisError as exc:
            raise ServiceError(f"cannot load the feature functions into Redis (needs Redis >= 7.0): "
                               f"{exc}") from exc
        if _text(name) != self.library.name:
            raise ServiceError(f"Redis loaded library {_text(name)!r}, not {self.library.name!r}")
        self._loaded = True

    async def round_trips(self) -> int:
        """Pipelines sent to Redis so far (each one is one network round trip)."""
        return self._round_trips

    async def _batched(self, one: str, many: str, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """The replies of ``one`` for each call, through ``many`` in one command when there are
        several (every call has as many keys and as many args)."""
        if len(calls) == 1:
            return await self._fcall(one, calls)
        nk, na = len(calls[0][0]), len(calls[0][1])
        keys = [k for ks, _ in calls for k in ks]
        args: list[Any] = [nk, na, *(a for _, args_ in calls for a in args_)]
        (replies,) = await self._fcall(many, [(keys, args)])
        return list(replies)

    async def _fcall(self, function: str, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        if not self._loaded:
            await self.load()
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            for i in todo:
                keys, args = calls[i]
                pipe.fcall(function, len(keys), *keys, *args)
            self._round_trips += 1
            try:
                got = await pipe.execute(raise_on_error=False)
            except RedisError as exc:
                raise ServiceError(f"Redis feature call failed: {exc}") from exc
            missing = []
            for i, r in zip(todo, got, strict=True):
                if isinstance(r, ResponseError) and "function not found" in str(r).lower():
                    missing.append(i)
                elif isinstance(r, Exception):
                    raise ServiceError(f"feature function failed: {r}")
                else:
                    replies[i] = r
            if not missing:
                return replies
            if attempt == 0:  # Redis restarted or flushed its functions: load them, re-send those
                await self.load()
                todo = missing
        raise ServiceError("Redis keeps answering 'Function not found' for the feature functions")

    # -- inputs --------------------------------------------------------------------------------
    def to_base(self, amount: float, currency: str) -> float:
        """The amount in the base currency (unchanged when already in it)."""
        if not currency or currency == self.base_currency:
            return float(amount)
        rate = self.currency_rates.get(currency)
        if rate is None:
            raise DataError(f"no exchange rate for {currency} (base {self.base_currency})")
        return float(amount) * rate

    def reject_reason(self, tx: Transaction) -> str | None:
        """Why ``process`` would refuse this transaction before any round trip (else None):
        no exchange rate for its currency, or an amount too large to count in exact cents."""
        try:
            amount = self.to_base(tx.amount, tx.currency)
        except DataError as exc:
            return str(exc)
        if not amount < MAX_AMOUNT:
            return (f"amount {tx.amount:g} {tx.currency} is too large: at most {MAX_AMOUNT:g} "
                    f"{self.base_currency}")
        return None

    def _entity_key(self, entity: str, tx: Transaction) -> str:
        if entity == "card":
            return f"{self.ns}:c:{tx.card_id}"
        if tx.terminal_id is None:
            return ""
        if entity == "terminal":
            return f"{self.ns}:t:{tx.terminal_id}"
        return f"{self.ns}:x:{len(tx.card_id)}:{tx.card_id}:{tx.terminal_id}"

    def _prepare(self, tx: Transaction) -> tuple[list[str], list[Any], dict[str, Any]]:
        ts = epoch_us(tx.timestamp)
        amount = self.to_base(tx.amount, tx.currency)
        cents = math.floor(amount * 100.0 + 0.5)
        inputs = {"t": ts, "a": amount, "la": tx.latitude, "lo": tx.longitude,
                  "c": tx.card_id, "m": tx.terminal_id}
        keys = [f"{self.ns}:tx:{tx.transaction_id}", f"{self.ns}:sc:{tx.transaction_id}"]
        targets = [str(ts)]
        for i, entity in enumerate(self._entities, start=1):
            key = self._entity_key(entity, tx)
            keys.append(key)
            if key and entity in self._labelled:
                targets += [str(i), key]
        nan = math.nan
        numbers = struct.pack("<dddd", ts, cents, nan if tx.latitude is None else tx.latitude,
                              nan if tx.longitude is None else tx.longitude)
        args: list[Any] = [numbers, orjson.dumps(inputs), "\n".join(targets),
                           tie_key(tx.transaction_id)]
        for _, source in self._distinct:
            v = getattr(tx, source)
            args.append("" if v is None else str(v))
        return keys, args, inputs

    # -- finalizing ----------------------------------------------------------------------------
    def _features(self, raws: list[bytes], inputs: list[dict[str, Any]]) -> list[dict[str, float | None]]:
        """Raw columns (doubles, NaN = missing) + inputs -> feature dicts, through the shared
        finalizer."""
        if not raws:
            return []
        if any(len(r) != 8 * self._ncols for r in raws):
            raise ServiceError(f"stored raw columns are not {self._ncols} doubles (the plan's)")
        matrix = np.frombuffer(b"".join(raws), dtype="<f8").reshape(len(raws), self._ncols)

        def col(name: str) -> np.ndarray:
            return np.array([math.nan if x.get(name) is None else x[name] for x in inputs], dtype=float)

        amount = col("a")
        ctx = Context.of_columns(
            self.plan, matrix.T,
            ts_us=np.array([x["t"] for x in inputs], dtype=np.int64),
            amount=amount, cents=to_cents(amount), lat=col("la"), lon=col("lo"),
        )
        values = finalize(self.plan, ctx)
        lists = [values[n].tolist() for n in self._names]
        return [
            {n: (None if v[i] != v[i] else v[i]) for n, v in zip(self._names, lists, strict=True)}
            for i in range(len(raws))
        ]

    # -- the API the worker uses ---------------------------------------------------------------
    async def process(self, txs: Sequence[Transaction]) -> list[FeatureResult]:
        """Update every window with ``txs`` and return their features, in one round trip.

        A transaction id seen before changes nothing and gets the features of its first time
        (and its saved scored event, if any); one too late gets status ``late``.
        """
        if not txs:
            return []
        prepared = [self._prepare(tx) for tx in txs]
        replies = await self._batched(self.library.process, self.library.many,
                                      [(k, a) for k, a, _ in prepared])
        results: list[FeatureResult | None] = [None] * len(txs)
        raws: list[bytes] = []
        inputs: list[dict[str, Any]] = []
        where: list[int] = []
        scored: dict[int, bytes | None] = {}
        for i, (tx, reply) in enumerate(zip(txs, replies, strict=True)):
            status = "new" if isinstance(reply, bytes) else _text(reply[0])
            if status == "late":
                latest = int(_text(reply[1])) / 1e6
                results[i] = FeatureResult(
                    tx.transaction_id, "late", {}, None,
                    reason=(f"event time {tx.epoch:.0f} is more than {self.lateness_us / 1e6:g} s "
                            f"behind the latest event time {latest:.0f} of its card or terminal"))
                continue
            where.append(i)
            if status == "new":
                raws.append(reply)
                inputs.append(prepared[i][2])
            else:
                raw, facts = _snapshot(reply[1], self._ncols)
                raws.append(raw)
                inputs.append(facts)
                scored[i] = _bytes(reply[2] if len(reply) > 2 else None)
        for i, feats in zip(where, self._features(raws, inputs), strict=True):
            results[i] = FeatureResult(txs[i].transaction_id,
                                       "duplicate" if i in scored else "new", feats, scored.get(i))
        return [r for r in results if r is not None]

    async def save_scored(self, items: Sequence[tuple[str, bytes]]) -> list[bytes | None]:
        """Keep each (transaction id, ScoredEvent JSON) for ``prediction_ttl_s``; one round trip
        (one call of the library's ``save`` function for the whole batch).

        The first event saved for an id stays: per item, ``None`` when this call saved it, or the
        event saved before (which is the transaction's scored event; this one is a duplicate).
        """
        if not items:
            return []
        keys = [f"{self.ns}:sc:{tx_id}" for tx_id, _ in items]
        (reply,) = await self._fcall(self.library.save, [(keys, [self.prediction_ttl_s,
                                                                 *(payload for _, payload in items)])])
        return [_bytes(r) for r in reply]

    async def apply_labels(self, labels: Sequence[Label]) -> list[LabelResult]:
        """Mark transactions labelled (idempotent), add them to the label-based buckets of their
        event time, and return the features they were scored with; one round trip."""
        if not labels:
            return []
        calls = []
        for lab in labels:
            body = orjson.dumps({"is_fraud": lab.is_fraud, "reported_at": lab.reported_at.isoformat(),
                                 "source": lab.source})
            tid = lab.transaction_id
            calls.append(([f"{self.ns}:tx:{tid}", f"{self.ns}:sc:{tid}", f"{self.ns}:lb:{tid}"],
                          [body, 1 if lab.is_fraud else 0]))
        replies = await self._batched(self.library.label, self.library.label_many, calls)
        known = [(i, r, *_snapshot(r[1], self._ncols)) for i, r in enumerate(replies)
                 if _text(r[0]) != "unknown"]
        feats = self._features([raw for _, _, raw, _ in known], [facts for *_, facts in known])
        out = [LabelResult(lab.transaction_id, "unknown", None, None, None, None, None)
               for lab in labels]
        for (i, r, _, facts), f in zip(known, feats, strict=True):
            out[i] = LabelResult(
                labels[i].transaction_id, "new" if _text(r[0]) == "new" else "duplicate", f,
                _bytes(r[2] if len(r) > 2 else None), facts["t"] / 1e6, facts["c"], facts["m"])
        return out

    async def get_prediction(self, transaction_id: str) -> dict[str, Any] | None:
        """``{"features", "scored", "label", "event_time", "card_id", "terminal_id"}`` of a
        processed transaction, or None when Redis knows nothing of it; one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for kind in ("tx", "sc", "lb"):
            pipe.get(f"{self.ns}:{kind}:{transaction_id}")
        self._round_trips += 1
        try:
            snap, scored, label = await pipe.execute()
        except RedisError as exc:
            raise ServiceError(f"Redis: cannot read prediction {transaction_id!r}: {exc}") from exc
        if snap is None and scored is None:
            return None
        out: dict[str, Any] = {"transaction_id": transaction_id, "features": None,
                               "scored": orjson.loads(scored) if scored is not None else None,
                               "label": orjson.loads(label) if label is not None else None,
                               "event_time": None, "card_id": None, "terminal_id": None}
        if snap is not None:
            raw, facts = _snapshot(snap, self._ncols)
            out["features"] = self._features([raw], [facts])[0]
            out.update(event_time=facts["t"] / 1e6, card_id=facts["c"], terminal_id=facts["m"])
        return out
