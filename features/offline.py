"""The offline twin: the same feature definitions computed on a canonical DataFrame.

Point-in-time correct: a row sees only events before it in (event time, transaction id) order,
plus itself in undelayed windows, and only labels whose ``reported_at`` is at or before its time
(a label released at the same time as a transaction is applied first, as in a replay). The window
semantics are the online store's (see :mod:`features.store`): a row in bucket ``B`` sees, in a
window of ``n`` buckets delayed by ``d``, the events of its entity in buckets
``[B - d - n + 1, B - d]``. It produces the same raw columns as the Redis script and finalizes them
with the same function (:func:`features.plan.finalize`).

Vectorised: every window is a pair of ``searchsorted`` bounds on the rows sorted by (entity,
time), sums are differences of integer cumulative sums (cents), maxima a pandas rolling window
over those bounds, label windows prefix counts over each label's interval of visibility. No
Python loop runs per row; a distinct count loops once per position in its largest window.

>>> import pandas as pd
>>> from features.definitions import FeatureSet, Aggregate
>>> fs = FeatureSet("demo", (Aggregate("n_1h", "card", "count", window="1h", bucket="1m"),
...                          Aggregate("sum_1h", "card", "sum", window="1h", bucket="1m", source="amount")))
>>> df = pd.DataFrame({"transaction_id": ["1", "2", "3"], "card_id": ["a", "a", "a"],
...                    "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:30",
...                                                 "2024-01-01 11:00:30"], utc=True, format="ISO8601"),
...                    "amount": [10.0, 5.5, 1.0]})
>>> compute_features(df, fs)
  transaction_id  n_1h  sum_1h
0              1   1.0    10.0
1              2   2.0    15.5
2              3   2.0     6.5
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

from features.definitions import LABEL, FeatureSet
from features.plan import Context, Group, Plan, finalize, tie_key, to_cents
from fraudstream.errors import DataError
from fraudstream.settings import parse_duration

__all__ = ["compute_features", "event_order", "timestamps_us"]

_ENTITY_COLUMNS = {"card": ("card_id",), "terminal": ("terminal_id",),
                   "card_terminal": ("card_id", "terminal_id")}


def timestamps_us(ts: pd.Series) -> np.ndarray:
    try:
        s = pd.to_datetime(ts, utc=True)
    except (ValueError, TypeError) as exc:
        raise DataError(f"timestamps: {exc}") from exc
    if s.isna().any():
        raise DataError(f"{int(s.isna().sum())} row(s) have no timestamp")
    return s.dt.as_unit("us").astype("int64").to_numpy()


def event_order(transaction_id: pd.Series, ts_us: np.ndarray) -> np.ndarray:
    """Row positions in (event time, tie key) order: the order the online store sees in a replay."""
    ids = transaction_id.astype(str)
    if ids.str.fullmatch(r"\d{1,18}").all():
        tie: np.ndarray = ids.astype("int64").to_numpy()
        return np.lexsort((tie, ts_us))
    keys = pd.DataFrame({"t": ts_us, "k": [tie_key(x) for x in ids]})
    return keys.sort_values(["t", "k"], kind="stable").index.to_numpy()


def _codes(values: pd.Series | np.ndarray) -> np.ndarray:
    codes, _ = pd.factorize(pd.Series(values).astype(object).where(pd.notna(values), None))
    return codes.astype(np.int64)


class _Bounds(BaseIndexer):
    """Precomputed [start, end) bounds for a pandas rolling window."""

    def __init__(self, start: np.ndarray, end: np.ndarray) -> None:
        super().__init__()
        self.start, self.end = start, end

    def get_window_bounds(self, num_values: int = 0, min_periods: int | None = None,
                          center: bool | None = None, closed: str | None = None,
                          step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.start, self.end


class _Sorted:
    """The rows of one entity kind (present entity only), sorted by (entity, event position)."""

    def __init__(self, codes: np.ndarray, ts_us: np.ndarray, width_s: int) -> None:
        present = np.flatnonzero(codes >= 0)
        self.rows = present[np.argsort(codes[present], kind="stable")]  # event positions
        self.ent = codes[self.rows]
        bucket = ts_us[self.rows] // (width_s * 1_000_000)
        self.b = bucket - (bucket.min() if len(bucket) else 0)
        self.M = int(self.b.max() + 2) if len(self.b) else 2
        self.key = self.ent * self.M + self.b

    def bounds(self, delay: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """[start, end) in sorted order of each row's window (delay, length in buckets)."""
        base = self.ent * self.M
        lo = np.maximum(self.b - delay - length + 1, 0)
        start = np.searchsorted(self.key, base + lo, side="left")
        if delay == 0:
            end = np.arange(1, len(self.rows) + 1)
        else:
            end = np.searchsorted(self.key, base + np.maximum(self.b - delay, -1), side="right")
        return start, np.maximum(end, start)


def _scatter(n: int, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.full(n, np.nan)
    out[rows] = values
    return out


def _tx_group(g: Group, s: _Sorted, cents: np.ndarray, n: int,
              raws: dict) -> None:
    c_sorted = cents[s.rows]
    sums = {}
    if "s" in g.stats or "q" in g.stats:
        v = c_sorted.astype(np.int64)
        sums["s"] = np.concatenate(([0], np.cumsum(v)))
        sums["q"] = np.concatenate(([0], np.cumsum(v * v)))
    for k, (d, length) in enumerate(g.windows):
        start, end = s.bounds(d, length)
        key = g.key(k)
        count = end - start
        raws[(key, "c")] = _scatter(n, s.rows, count.astype(float))
        for stat in ("s", "q"):
            if stat in g.stats:
                total = (sums[stat][end] - sums[stat][start]).astype(float)
                raws[(key, stat)] = _scatter(n, s.rows, total)
        if "m" in g.stats:
            mx = pd.Series(c_sorted).rolling(_Bounds(start, end), min_periods=1).max().to_numpy()
            raws[(key, "m")] = _scatter(n, s.rows, mx)


def _distinct_counts(start: np.ndarray, end: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """For each row, #{j in [start, end): nxt[j] >= end} (nxt = -1 for rows without a value)."""
    out = np.zeros(len(start), dtype=np.int64)
    active = np.flatnonzero(end > start)
    j, e = start[active].copy(), end[active]
    while active.size:
        out[active] += nxt[j] >= e
        j += 1
        keep = j < e
        active, j, e = active[keep], j[keep], e[keep]
    return out


def _distinct_group(g: Group, s: _Sorted, values: np.ndarray, n: int, raws: dict) -> None:
    vcode = _codes(values)[s.rows]  # -1 where the row has no value
    width = int(vcode.max()) + 1 if len(vcode) else 1
    pair = np.where(vcode >= 0, s.ent * width + vcode, -1)
    m = len(pair)
    big = np.iinfo(np.int64).max
    nxt = np.full(m, -1, dtype=np.int64)
    prv = np.full(m, -1, dtype=np.int64)
    has = np.flatnonzero(pair >= 0)
    o = has[np.argsort(pair[has], kind="stable")]
    same = pair[o[1:]] == pair[o[:-1]]
    nxt[has] = big
    nxt[o[:-1][same]] = o[1:][same]
    prv[o[1:][same]] = o[:-1][same]
    for k, (d, length) in enumerate(g.windows):
        start, end = s.bounds(d, length)
        key = g.key(k)
        raws[(key, "d")] = _scatter(n, s.rows, _distinct_counts(start, end, nxt).astype(float))
        if d == 0:
            new = np.where(prv < start, 1.0, 0.0)
            new[pair < 0] = np.nan
        else:
            new = np.full(m, np.nan)
        raws[(key, "new")] = _scatter(n, s.rows, new)


def _label_group(g: Group, codes: np.ndarray, ts_us: np.ndarray, lab_pos: np.ndarray,
                 lab_fraud: np.ndarray, lab_rep: np.ndarray, n: int, raws: dict) -> None:
    w = g.width_s * 1_000_000
    ent = codes[lab_pos]
    ok = (ent >= 0) & (lab_rep > ts_us[lab_pos])  # released no later than its tx: never known
    pos, fraud, rep, ent = lab_pos[ok], lab_fraud[ok], lab_rep[ok], ent[ok]
    bucket = ts_us[pos] // w
    applied = np.searchsorted(ts_us, rep, side="left")  # labels go before txs at the same time
    span = n + 2
    rows = np.flatnonzero(codes >= 0)
    q = codes[rows] * span + rows
    for k, (d, length) in enumerate(g.windows):
        start = np.maximum(applied, np.searchsorted(ts_us, (bucket + d) * w, side="left"))
        end = np.searchsorted(ts_us, (bucket + d + length) * w, side="left")
        valid = start < end
        e, st, en, f = ent[valid], start[valid], end[valid], fraud[valid]
        ks, ke = e * span + st, e * span + en
        os_, oe = np.argsort(ks, kind="stable"), np.argsort(ke, kind="stable")
        ks, ke = ks[os_], ke[oe]
        fs = np.concatenate(([0], np.cumsum(f[os_])))
        fe = np.concatenate(([0], np.cumsum(f[oe])))
        i_s = np.searchsorted(ks, q, side="right")
        i_e = np.searchsorted(ke, q, side="right")
        key = g.key(k)
        raws[(key, "n")] = _scatter(n, rows, (i_s - i_e).astype(float))
        raws[(key, "f")] = _scatter(n, rows, (fs[i_s] - fe[i_e]).astype(float))


def _labels(df: pd.DataFrame, order: np.ndarray, ts_us: np.ndarray, fs: FeatureSet,
            labels: pd.DataFrame | None,
            label_delay: float | str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event position, fraud 0/1, reported_at us) of the labels, first label per transaction."""
    n = len(order)
    if labels is None:
        if LABEL not in df.columns:  # no label known yet, as online before any label arrives
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        delay = fs.label_delay_s if label_delay is None else parse_duration(label_delay)
        fraud = pd.to_numeric(df[LABEL], errors="coerce").to_numpy(dtype=float)[order]
        pos = np.flatnonzero(~np.isnan(fraud))
        return pos, fraud[pos].astype(np.int64), ts_us[pos] + int(round(delay * 1e6))
    missing = {"transaction_id", LABEL, "reported_at"} - set(labels.columns)
    if missing:
        raise DataError(f"labels frame lacks column(s) {sorted(missing)}")
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.arange(n)
    where = pd.Series(inv, index=df["transaction_id"].astype(str).to_numpy())
    lab = pd.DataFrame({"id": labels["transaction_id"].astype(str).to_numpy(),
                        "f": pd.to_numeric(labels[LABEL], errors="coerce").to_numpy(),
                        "r": timestamps_us(labels["reported_at"])})
    lab = lab[lab["id"].isin(where.index) & lab["f"].notna()]
    lab["pos"] = where.loc[lab["id"]].to_numpy()
    # a label released no later than its transaction finds nothing to label (online: unknown);
    # of the others, the first released wins (online: later ones are duplicates)
    lab = lab[lab["r"].to_numpy() > ts_us[lab["pos"].to_numpy()]]
    lab = lab.sort_values("r", kind="stable").drop_duplicates("id", keep="first")
    return (lab["pos"].to_numpy(dtype=np.int64), lab["f"].astype(np.int64).to_numpy(),
            lab["r"].to_numpy(dtype=np.int64))


def _amount(df: pd.DataFrame, base_currency: str, rates: dict[str, float] | None) -> np.ndarray:
    amount = pd.to_numeric(df["amount"], errors="coerce").to_numpy(dtype=float)
    if "currency" not in df.columns:
        return amount
    cur = df["currency"].astype(object).where(df["currency"].notna(), base_currency)
    cur = cur.astype(str).str.upper()
    other = (cur != base_currency.upper()).to_numpy()
    if not other.any():
        return amount
    table = {k.upper(): float(v) for k, v in (rates or {}).items()}
    unknown = sorted(set(cur[other]) - set(table))
    if unknown:
        raise DataError(f"no exchange rate for {', '.join(unknown[:5])} (base {base_currency})")
    rate = cur.map(table).to_numpy(dtype=float)
    return np.where(other, amount * rate, amount)


def compute_features(
    df: pd.DataFrame,
    feature_set: FeatureSet,
    labels: pd.DataFrame | None = None,
    label_delay: float | str | None = None,
    *,
    base_currency: str = "EUR",
    currency_rates: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Every feature of ``feature_set`` for every row of a canonical frame (see
    :mod:`features.columns`), one row per transaction id, in the rows' order and index.

    Label-based features use ``labels`` (columns transaction_id, is_fraud, reported_at) or, when
    None, the frame's ``is_fraud`` reported ``label_delay`` after each transaction (default: the
    feature set's label delay, 7 days for the handbook set); without either, no label is known
    (as online before the first label arrives).
    """
    plan = Plan.of(feature_set)
    needs_card = bool(plan.groups) or plan.previous  # per-transaction features need no card
    required = ("transaction_id", "timestamp") + (("card_id",) if needs_card else ())
    for col in required:
        if col not in df.columns:
            raise DataError(f"the frame lacks the {col} column")
    if df["transaction_id"].duplicated().any():
        raise DataError("duplicate transaction ids")
    if needs_card and df["card_id"].isna().any():
        raise DataError(f"{int(df['card_id'].isna().sum())} row(s) have no card_id")
    n = len(df)
    ts_raw = timestamps_us(df["timestamp"])
    order = event_order(df["transaction_id"], ts_raw)
    ts_us = ts_raw[order]
    if "amount" in df.columns:
        amount = _amount(df, base_currency, currency_rates)[order]
        if plan.needs_amount and np.isnan(amount).any():
            raise DataError(f"{int(np.isnan(amount).sum())} row(s) have no amount")
    elif plan.needs_amount:
        raise DataError(f"feature set {feature_set.name!r} needs an amount column")
    else:
        amount = np.full(n, np.nan)
    cents = to_cents(amount)

    def column(name: str) -> np.ndarray:
        if name in df.columns:
            return df[name].to_numpy()[order]
        return np.full(n, None, dtype=object)

    def coord(name: str) -> np.ndarray:
        if name in df.columns:
            return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)[order]
        return np.full(n, np.nan)

    codes: dict[str, np.ndarray] = {}

    def entity_codes(entity: str) -> np.ndarray:
        if entity not in codes:
            if entity == "card_terminal":
                c, t = entity_codes("card"), entity_codes("terminal")
                pair = np.where(t >= 0, c * (int(t.max()) + 1 if len(t) else 1) + t, -1)
                codes[entity] = np.where(pair >= 0, _codes(np.where(pair >= 0, pair, np.nan)), -1)
            else:
                codes[entity] = _codes(column(_ENTITY_COLUMNS[entity][0]))
        return codes[entity]

    raws: dict = {}
    sorted_cache: dict[tuple[str, int], _Sorted] = {}
    lab = None
    for g in plan.groups:
        ec = entity_codes(g.entity)
        if g.kind == "label":
            if lab is None:
                lab = _labels(df, order, ts_us, feature_set, labels, label_delay)
            _label_group(g, ec, ts_us, *lab, n=n, raws=raws)
            continue
        s = sorted_cache.setdefault((g.entity, g.width_s), _Sorted(ec, ts_us, g.width_s))
        if g.kind == "tx":
            _tx_group(g, s, cents, n, raws)
        else:
            _distinct_group(g, s, column(g.source), n, raws)
    if plan.previous:
        s = _Sorted(entity_codes("card"), ts_us, 1)
        same = np.concatenate(([False], s.ent[1:] == s.ent[:-1]))
        prev = np.where(same, np.concatenate(([0], s.rows[:-1])), -1)
        lat, lon = coord("latitude"), coord("longitude")
        for name, src in (("prev.ts", ts_us.astype(float)), ("prev.lat", lat), ("prev.lon", lon)):
            raws[(None, name)] = _scatter(n, s.rows, np.where(prev >= 0, src[prev], np.nan))
    ctx = Context(ts_us=ts_us, amount=amount, cents=cents, lat=coord("latitude"),
                  lon=coord("longitude"), raws=raws)
    feats = finalize(plan, ctx)
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.arange(n)
    out = pd.DataFrame({name: values[inv] for name, values in feats.items()}, index=df.index)
    out.insert(0, "transaction_id", df["transaction_id"].to_numpy())
    return out
