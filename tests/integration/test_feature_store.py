"""The online feature store against a real redis-server, and its parity with the offline twin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, ConnectionPool

from features.columns import HANDBOOK, read_frame
from features.definitions import load_feature_set
from features.offline import compute_features
from features.parity import compare, replay_online, transactions_of
from features.store import OnlineFeatureStore
from fraudstream.errors import DataError
from stream.schemas import Label, Transaction

DAY = 86400
T0 = datetime(2024, 3, 1, tzinfo=UTC)
RATES = {"USD": 0.92, "GBP": 1.17}


@pytest.fixture
async def client(redis_service: dict[str, str]):  # type: ignore[no-untyped-def]
    c = aioredis.Redis.from_url(redis_service["redis"])
    yield c
    await c.aclose()


def make_store(client: Any, prefix: str, name: str = "default", **kw: Any) -> OnlineFeatureStore:
    params: dict[str, Any] = dict(key_prefix=prefix, allowed_lateness_s=3600,
                                  snapshot_ttl_s=60 * DAY, prediction_ttl_s=90 * DAY,
                                  currency_rates=RATES)
    params.update(kw)
    return OnlineFeatureStore(client, load_feature_set(name), **params)


def tx(i: Any, card: str = "c1", seconds: float = 0, terminal: str | None = "t1",
       amount: float = 10.0, **kw: Any) -> Transaction:
    return Transaction(transaction_id=i, card_id=card, terminal_id=terminal, amount=amount,
                       timestamp=T0 + timedelta(seconds=seconds), **kw)


async def state(client: Any, prefix: str) -> dict[bytes, Any]:
    """Every key under ``prefix`` with its value (TTLs left out)."""
    out: dict[bytes, Any] = {}
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        kind = (await client.type(key)).decode()
        if kind == "hash":
            out[key] = await client.hgetall(key)
        elif kind == "zset":
            out[key] = await client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = await client.get(key)
    return out


def synthetic(n: int = 1500, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A canonical frame with every field the default set reads, some of them missing, same-second
    ties in random id order, foreign currencies; and a labels frame with varied delays, some
    labels released before their transaction and some given twice."""
    rng = np.random.default_rng(seed)
    cards = np.array([f"card{i}" for i in range(40)])
    card = rng.choice(cards, n)
    secs = np.sort(rng.integers(0, 40 * DAY, n))
    for k in rng.choice(np.arange(1, n), 25, replace=False):  # same card, same second
        secs[k], card[k] = secs[k - 1], card[k - 1]
    home = {c: (rng.uniform(43, 51), rng.uniform(-1, 8)) for c in cards}
    lat = np.array([home[c][0] for c in card]) + rng.normal(0, 0.3, n)
    lon = np.array([home[c][1] for c in card]) + rng.normal(0, 0.3, n)
    no_xy = rng.random(n) < 0.1
    terminal = np.array([f"term{i}" for i in rng.integers(0, 60, n)], dtype=object)
    terminal[rng.random(n) < 0.05] = None
    country = rng.choice(np.array(["FR", "BE", "DE", "ES"], dtype=object), n, p=[.7, .1, .1, .1])
    country[rng.random(n) < 0.1] = None
    currency = rng.choice(["EUR", "USD", "GBP"], n, p=[.8, .1, .1])
    risky = np.isin(terminal, ["term1", "term2", "term3"])
    fraud = (rng.random(n) < np.where(risky, 0.4, 0.02)).astype(int)
    df = pd.DataFrame({
        "transaction_id": rng.permutation(n).astype(str),
        "timestamp": pd.to_datetime(T0) + pd.to_timedelta(secs, unit="s"),
        "card_id": card.astype(object),
        "terminal_id": terminal,
        "amount": np.round(rng.lognormal(3.5, 1.0, n), 2),
        "currency": currency,
        "latitude": np.where(no_xy, np.nan, lat),
        "longitude": np.where(no_xy, np.nan, lon),
        "country": country,
        "is_fraud": fraud,
    })
    df["timestamp"] = df["timestamp"].astype("datetime64[ns, UTC]")
    delay = rng.uniform(0.2, 3.0, n) * DAY
    delay[rng.random(n) < 0.02] = -60.0  # released before its transaction: never counts
    delay[rng.random(n) < 0.02] = 0.0  # with it: the label goes first, so it never counts either
    # released at the very second of a later transaction of the same terminal (the label goes
    # first, so that transaction counts it)
    tied = 0
    for i in rng.permutation(n):
        if terminal[i] is None or tied >= 80:
            continue
        later = np.flatnonzero((terminal == terminal[i]) & (secs - secs[i] > 1.5 * DAY)
                               & (secs - secs[i] < 6 * DAY))
        if later.size:
            delay[i] = float(secs[later[0]] - secs[i])
            tied += 1
    labels = pd.DataFrame({"transaction_id": df["transaction_id"], "is_fraud": fraud,
                           "reported_at": df["timestamp"] + pd.to_timedelta(delay, unit="s")})
    again = labels.sample(40, random_state=seed).assign(
        is_fraud=lambda d: 1 - d["is_fraud"],
        reported_at=lambda d: d["reported_at"] + pd.Timedelta(hours=5))
    labels = pd.concat([labels, again], ignore_index=True)
    labels = labels[rng.random(len(labels)) < 0.9].reset_index(drop=True)  # some never labelled
    return df, labels


# -- parity ---------------------------------------------------------------------------------
@pytest.fixture
def handbook_sample(fdh_path: Any) -> pd.DataFrame:
    return _handbook_sample(str(fdh_path))


@lru_cache(maxsize=1)
def _handbook_sample(path: str) -> pd.DataFrame:
    """~45 days of the handbook data: every transaction of 45 terminals (15 with frauds) and of
    15 cards (5 with frauds), so 30-day and 7-day-delayed windows and the risk are exercised."""
    df = read_frame(path, HANDBOOK, nrows=450_000)
    rng = np.random.default_rng(11)
    fraud_terms = np.sort(df.loc[df.is_fraud == 1, "terminal_id"].unique())
    terms = set(rng.choice(fraud_terms, 15, replace=False)) | set(
        rng.choice(np.sort(df.terminal_id.unique()), 30, replace=False))
    fraud_cards = np.sort(df.loc[df.is_fraud == 1, "card_id"].unique())
    cards = set(rng.choice(fraud_cards, 5, replace=False)) | set(
        rng.choice(np.sort(df.card_id.unique()), 10, replace=False))
    return df[df.terminal_id.isin(terms) | df.card_id.isin(cards)].reset_index(drop=True)


@pytest.mark.parametrize("name", ["handbook", "default"])
async def test_handbook_sample_parity(client: Any, unique: str, handbook_sample: pd.DataFrame,
                                      name: str) -> None:
    df = handbook_sample
    span = (df.timestamp.max() - df.timestamp.min()).days
    assert 2_000 <= len(df) <= 6_000 and span >= 44 and df.is_fraud.sum() >= 20
    store = make_store(client, unique, name)
    online = await replay_online(store, df, label_delay="7d", batch_size=50)
    assert (online["status"] == "new").all()
    offline = compute_features(df, store.feature_set, label_delay="7d")
    report = compare(online.drop(columns="status"), offline, tolerance=1e-9)
    assert report.ok, report.summary()
    if name == "handbook":  # not a vacuous comparison: the windows really are populated
        for n in (1, 7, 30):
            assert report.non_trivial[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] >= 10
            assert report.non_trivial[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] >= 500
        assert offline["CUSTOMER_ID_NB_TX_30DAY_WINDOW"].max() >= 50
        assert offline["TERMINAL_ID_NB_TX_30DAY_WINDOW"].max() >= 20


async def test_synthetic_parity_with_labels_as_they_arrive(client: Any, unique: str) -> None:
    df, labels = synthetic()
    store = make_store(client, unique)
    online = await replay_online(store, df, labels=labels, batch_size=7)
    assert (online["status"] == "new").all()
    offline = compute_features(df, store.feature_set, labels=labels, currency_rates=RATES)
    report = compare(online.drop(columns="status"), offline)
    assert report.ok, report.summary()
    for name in ("card_km_from_prev", "card_kmh_from_prev", "card_new_country_30d",
                 "card_distinct_countries_7d", "terminal_risk_7d", "terminal_risk_30d",
                 "card_amount_zscore_30d", "card_amount_max_24h", "card_terminal_tx_count_30d",
                 "terminal_distinct_cards_24h", "card_new_terminal_30d"):
        assert report.non_trivial[name] >= 20, name
    # the missing fields give missing features on both sides, in the same rows
    no_terminal = df["terminal_id"].isna().to_numpy()
    assert offline.loc[no_terminal, "terminal_tx_count_24h"].isna().all()
    assert online.loc[no_terminal, "card_new_terminal_30d"].isna().all()
    no_country = df["country"].isna().to_numpy()
    assert online.loc[no_country, "card_new_country_30d"].isna().all()
    no_xy = df["latitude"].isna().to_numpy()
    assert online.loc[no_xy, "card_km_from_prev"].isna().all()
    assert online.loc[~no_xy, "card_seconds_since_prev"].notna().sum() > 1000


# -- idempotency ----------------------------------------------------------------------------
async def test_duplicates_change_nothing_and_return_the_same_features(client: Any, unique: str) -> None:
    store = make_store(client, unique)
    batch = [tx(i, card=f"c{i % 3}", seconds=60 * i, amount=5.0 + i, latitude=48.0,
                longitude=2.0 + i / 100, country="FR") for i in range(12)]
    first = await store.process(batch)
    assert [r.status for r in first] == ["new"] * 12
    before = await state(client, unique)
    again = await store.process([batch[3], batch[3], *batch[:2]])
    assert [r.status for r in again] == ["duplicate"] * 4
    assert again[0].features == first[3].features and again[1].features == first[3].features
    assert again[0].scored is None
    assert await state(client, unique) == before
    # a duplicate inside one batch counts once
    dup = tx("x", card="c9", seconds=3600)
    res = await store.process([dup, dup])
    assert [r.status for r in res] == ["new", "duplicate"]
    assert res[0].features == res[1].features
    nxt = await store.process([tx("y", card="c9", seconds=3700)])
    assert nxt[0].features["card_tx_count_1h"] == 2.0
    # after save_scored a duplicate brings the stored scored event back
    await store.save_scored([("3", b'{"score": 0.5}')])
    res = await store.process([batch[3]])
    assert res[0].status == "duplicate" and res[0].scored == b'{"score": 0.5}'
    # the same id with other content is still the first one
    changed = batch[3].model_copy(update={"amount": 999.0})
    assert (await store.process([changed]))[0].features == first[3].features


# -- event time -----------------------------------------------------------------------------
async def test_out_of_order_within_lateness_matches_in_order(client: Any, unique: str) -> None:
    # event 3 (23:40) arrives after 4 and 5 (00:01, 00:11 the next day): those are in later
    # buckets of every group (1 minute, 1 hour and 1 day wide)
    events = [tx(i, card="c1", terminal=f"t{i % 2}", seconds=s, amount=1.0 + i,
                 latitude=48 + i / 10, longitude=2.0, country="FR")
              for i, s in enumerate([-3000, -2500, -1900, -1200, 100, 700])]
    ordered = make_store(client, unique + "a", allowed_lateness_s=3600)
    in_order = {r.transaction_id: r.features for r in await ordered.process(events)}
    shuffled = make_store(client, unique + "b", allowed_lateness_s=3600)
    late_first = [events[0], events[1], events[2], events[4], events[5], events[3]]
    got = {r.transaction_id: r for r in await shuffled.process(late_first)}
    assert got["3"].status == "new"
    assert got["3"].features == in_order["3"]  # every feature, previous-tx ones included
    # the ones processed before it did not see it (they are not recomputed) ...
    assert got["4"].features["card_tx_count_1h"] == in_order["4"]["card_tx_count_1h"] - 1
    # ... and everything after sees the same state as in order
    probe = tx("p", card="c1", terminal="t0", seconds=2100, amount=3.0, latitude=48.0,
               longitude=2.0, country="FR")
    a = (await ordered.process([probe]))[0].features
    b = (await shuffled.process([probe]))[0].features
    assert a == b


@pytest.mark.parametrize("name", ["default", "handbook"])
async def test_state_after_out_of_order_arrival_reads_as_in_order(client: Any, unique: str,
                                                                   name: str) -> None:
    """The running totals after a stream that arrives out of order within the lateness (late
    events take the exact fallback: records inserted before the anchor, pointers moved) read
    exactly as after the same stream in order: probes of every card, terminal and pair agree."""
    rng = np.random.default_rng(9)
    n = 1500  # 8 cards and 6 terminals over 2 days: one event per card every ~15 minutes
    secs = np.sort(rng.uniform(0, 2 * DAY, n)).round()
    df = pd.DataFrame({
        "transaction_id": [str(i) for i in range(n)],
        "timestamp": (pd.Timestamp(T0) + pd.to_timedelta(secs, unit="s")).astype("datetime64[ns, UTC]"),
        "card_id": rng.choice([f"k{i}" for i in range(8)], n).astype(object),
        "terminal_id": rng.choice([f"m{i}" for i in range(6)], n).astype(object),
        "amount": np.round(rng.lognormal(3.0, 1.0, n), 2),
        "country": rng.choice(["FR", "BE", "DE"], n).astype(object),
        "latitude": rng.uniform(43, 51, n), "longitude": rng.uniform(-1, 8, n),
        "is_fraud": (rng.random(n) < 0.2).astype(int),
    })
    ts = df["timestamp"].astype("int64").to_numpy() // 1000
    arrival = ts + rng.uniform(0, 50 * 60e6, len(df)).astype(np.int64)  # < the 1 h lateness
    txs = transactions_of(df)
    stores = []
    for tag, order in (("a", np.lexsort((df.index.to_numpy(), ts))), ("b", np.argsort(arrival))):
        store = make_store(client, unique + tag, name)
        for i in range(0, len(order), 9):
            res = await store.process([txs[j] for j in order[i:i + 9]])
            assert all(r.status == "new" for r in res)
        stores.append(store)
    assert not np.array_equal(np.lexsort((df.index.to_numpy(), ts)), np.argsort(arrival))
    known = [Label(transaction_id=t, is_fraud=bool(f), reported_at=T0 + timedelta(days=50))
             for t, f in zip(df.transaction_id, df.is_fraud, strict=True)]
    for store in stores:
        await store.apply_labels(known)
    # probe every card and every terminal just after its own last event, while its windows
    # (10 minutes and up) still hold the events that arrived out of order
    secs = (ts - int(T0.timestamp() * 1e6)) / 1e6
    frame = df.assign(secs=secs).sort_values("secs")
    probes = [tx(f"p{r.card_id}", card=r.card_id, terminal=r.terminal_id, seconds=r.secs + 60,
                 amount=7.5, country="FR", latitude=48.0, longitude=2.0)
              for r in frame.groupby("card_id").tail(1).itertuples()]
    probes += [tx(f"q{r.terminal_id}", card=f"new{r.terminal_id}", terminal=r.terminal_id,
                  seconds=r.secs + 30, amount=3.0)
               for r in frame.dropna(subset=["terminal_id"]).groupby("terminal_id").tail(1).itertuples()]
    probes.sort(key=lambda t: t.timestamp)
    got = [[r.features for r in await s.process(probes)] for s in stores]
    assert got[0] == got[1]
    first = next(iter(got[0][0]))
    assert sum(1 for f in got[0] if f[first] is not None) == len(probes)


async def test_out_of_order_inside_one_bucket_is_bucket_resolution(client: Any, unique: str) -> None:
    """Documented limit: within its own bucket a late event also sees earlier-arrived later ones."""
    store = make_store(client, unique)  # card_tx_count_10m has 1-minute buckets
    late, early = tx("1", seconds=10), tx("2", seconds=50)  # same minute, arrive 2 then 1
    await store.process([early])
    res = await store.process([late])
    assert res[0].features["card_tx_count_10m"] == 2.0  # in order it would be 1
    # but the previous-transaction features are exact in (time, id) order
    assert res[0].features["card_seconds_since_prev"] is None


async def test_too_late_is_refused_and_changes_nothing(client: Any, unique: str) -> None:
    store = make_store(client, unique, allowed_lateness_s=600)
    await store.process([tx(1, card="a", terminal="t1", seconds=5000)])
    before = await state(client, unique)
    res = await store.process([tx(2, card="a", terminal="t1", seconds=5000 - 601),
                               tx(4, card="a", terminal="t9", seconds=5000 - 599)])
    assert [r.status for r in res] == ["late", "new"]
    assert res[0].features == {} and "600 s behind" in (res[0].reason or "")
    after = await state(client, unique)
    assert {k for k in after if b":tx:2" in k} == set()
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed and all(b":t:t1:" not in k for k in changed)  # terminal t1 untouched
    # a late id stays unknown: it is not a duplicate later
    assert (await store.process([tx(2, card="a", terminal="t1", seconds=5000)]))[0].status == "new"


async def test_lagging_behind_a_terminal_is_not_late(client: Any, unique: str) -> None:
    """A terminal's events come from every partition: behind it by more than the lateness is
    scored, and counted where the terminal keeps buckets, as in-order processing would have."""
    store = make_store(client, unique, allowed_lateness_s=600)
    await store.process([tx(1, card="a", terminal="t1", seconds=7300)])
    res = await store.process([tx(3, card="b", terminal="t1", seconds=7300 - 700)])
    assert res[0].status == "new"
    # it sees nothing of the terminal's later buckets (7300 s is in the next hour bucket)
    assert res[0].features["terminal_tx_count_24h"] == 1.0
    probe = (await store.process([tx(5, card="c", terminal="t1", seconds=7301)]))[0]
    assert probe.features["terminal_tx_count_24h"] == 3.0  # both earlier ones, as in order
    reference = make_store(client, unique + "ref", allowed_lateness_s=600)
    for t in (tx(3, card="b", terminal="t1", seconds=6600), tx(1, card="a", terminal="t1", seconds=7300),
              tx(5, card="c", terminal="t1", seconds=7301)):
        last = (await reference.process([t]))[0]
    assert last.features == probe.features


# -- labels ---------------------------------------------------------------------------------
async def test_labels_are_idempotent_and_return_the_scoring_snapshot(client: Any, unique: str) -> None:
    store = make_store(client, unique)
    scored = await store.process([tx("a", terminal="T", seconds=0, amount=20.0),
                                  tx("b", terminal="T", seconds=60, amount=30.0)])
    lab = Label(transaction_id="a", is_fraud=True, reported_at=T0 + timedelta(days=1))
    res = await store.apply_labels([lab, lab, Label(transaction_id="zz", is_fraud=False,
                                                    reported_at=T0)])
    assert [r.status for r in res] == ["new", "duplicate", "unknown"]
    assert res[0].features == scored[0].features
    assert res[0].event_time == T0.timestamp() and res[0].card_id == "c1" and res[0].terminal_id == "T"
    assert res[2].features is None
    await store.apply_labels([Label(transaction_id="b", is_fraud=False,
                                    reported_at=T0 + timedelta(days=1))])
    # terminal risk (window 7 d, delayed 1 d) two days later: 1 fraud out of 2 labelled, once
    later = await store.process([tx("c", card="c2", terminal="T", seconds=2 * DAY)])
    assert later[0].features["terminal_labelled_7d"] == 2.0
    assert later[0].features["terminal_risk_7d"] == 0.5
    pred = await store.get_prediction("a")
    assert pred is not None and pred["label"]["is_fraud"] is True
    assert pred["features"] == scored[0].features
    assert await store.get_prediction("nope") is None


# -- Redis hygiene --------------------------------------------------------------------------
async def test_every_key_has_a_ttl(client: Any, unique: str) -> None:
    df, labels = synthetic(n=300, seed=5)
    for name in ("default", "handbook"):
        store = make_store(client, f"{unique}{name}", name)
        await replay_online(store, df, labels=labels, batch_size=20)
        await store.save_scored([(df.transaction_id[0], b"{}")])
        keys = [k async for k in client.scan_iter(match=f"{unique}{name}:*", count=1000)]
        assert len(keys) > 100
        ttls = [await client.ttl(k) for k in keys]
        assert all(0 < t <= 90 * DAY for t in ttls), [k for k, t in zip(keys, ttls, strict=True)
                                                      if t <= 0][:5]


async def test_a_state_key_ttl_is_reset_only_when_it_must_live_longer(client: Any, unique: str) -> None:
    """Created with its TTL; a transaction that opens no bucket the key must outlive keeps it
    (KEEPTTL); a new day bucket (the card's longest span) resets it."""
    store = make_store(client, unique)
    key = f"{store.ns}:c:c1"
    await store.process([tx(1, seconds=0)])
    assert 31 * DAY <= await client.ttl(key) <= 32 * DAY  # 30 daily buckets + 2 + lateness
    await client.expire(key, 1000)  # as if 31 days of wall-clock time had passed
    await store.process([tx(2, seconds=10)])  # the same minute, hour and day
    assert 990 <= await client.ttl(key) <= 1000
    await store.process([tx(3, seconds=2 * DAY)])
    assert await client.ttl(key) >= 31 * DAY


async def test_memory_per_entity_is_bounded_by_the_windows(client: Any, unique: str) -> None:
    """A card and a terminal with a transaction every 2 hours: their state stops growing once
    the longest window (30 days) is full."""
    store = make_store(client, unique)
    sizes = {}
    for day in range(90):
        batch = [tx(f"{day}.{h}", card="c1", terminal="t1", seconds=day * DAY + h * 7200,
                    country=["FR", "BE"][h % 2], amount=5.0 + h) for h in range(12)]
        await store.process(batch)
        if day in (35, 60, 89):
            sizes[day] = (await client.strlen(f"{store.ns}:c:c1"),
                          await client.strlen(f"{store.ns}:t:t1"))
    assert sizes[89] == sizes[60] == sizes[35], sizes


class CountingConnection(Connection):
    """Counts writes to the socket: one per request (pipeline or single command)."""

    writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).writes += 1
        await super().send_packed_command(command, check_health)


async def test_one_round_trip_per_batch(redis_service: dict[str, str], unique: str) -> None:
    pool = ConnectionPool.from_url(redis_service["redis"], connection_class=CountingConnection)
    c = aioredis.Redis(connection_pool=pool)
    try:
        store = make_store(c, unique)
        await store.load()
        await c.ping()  # the connection and its handshake are made before counting
        batch = [tx(i, card=f"c{i % 7}", terminal=f"t{i % 5}", seconds=i * 30) for i in range(100)]
        labels = [Label(transaction_id=i, is_fraud=i % 2, reported_at=T0 + timedelta(days=2))
                  for i in range(50)]
        for call in (lambda: store.process(batch), lambda: store.apply_labels(labels),
                     lambda: store.save_scored([(str(i), b"{}") for i in range(100)]),
                     lambda: store.get_prediction("7"), lambda: store.process(batch[:1])):
            writes, trips = CountingConnection.writes, await store.round_trips()
            await call()
            assert CountingConnection.writes - writes == 1
            assert await store.round_trips() - trips == 1
    finally:
        await c.aclose()
        await pool.disconnect()


async def test_recovers_from_a_flushed_library(client: Any, unique: str) -> None:
    """A Redis restart (no persistence) or FUNCTION FLUSH loses the functions: reloaded once."""
    store = make_store(client, unique)
    await store.process([tx(1)])
    await client.function_flush()
    trips = await store.round_trips()
    res = await store.process([tx(2, seconds=10), tx(3, seconds=20)])
    assert [r.status for r in res] == ["new", "new"]
    assert res[1].features["card_tx_count_10m"] == 3.0
    assert await store.round_trips() - trips == 3  # function not found, FUNCTION LOAD, re-send
    labels = [Label(transaction_id="1", is_fraud=False, reported_at=T0 + timedelta(days=1))]
    await client.function_flush()
    assert [r.status for r in await store.apply_labels(labels)] == ["new"]


# -- inputs ---------------------------------------------------------------------------------
async def test_currency_conversion_and_unknown_rates(client: Any, unique: str) -> None:
    store = make_store(client, unique)
    res = await store.process([tx(1, amount=100.0, currency="USD"), tx(2, seconds=1, amount=10.0)])
    assert res[0].features["amount"] == pytest.approx(92.0)
    assert res[1].features["card_amount_sum_1h"] == pytest.approx(102.0)
    odd = tx(3, amount=1.0, currency="JPY")
    assert store.reject_reason(odd) == "no exchange rate for JPY (base EUR)"
    with pytest.raises(DataError, match="JPY"):
        await store.process([odd])


async def test_missing_terminal_coordinates_and_country(client: Any, unique: str) -> None:
    store = make_store(client, unique)
    rows = [tx(1, terminal=None, seconds=0), tx(2, terminal="t1", seconds=60, latitude=48.0,
                                                longitude=2.0, country="FR"),
            tx(3, terminal=None, seconds=120)]
    res = await store.process(rows)
    f = res[0].features
    assert f["terminal_tx_count_24h"] is None and f["terminal_risk_7d"] is None
    assert f["card_new_terminal_30d"] is None and f["card_terminal_tx_count_30d"] is None
    assert f["card_tx_count_1h"] == 1.0 and f["card_km_from_prev"] is None
    assert res[1].features["card_km_from_prev"] is None  # previous had no coordinates
    assert res[2].features["card_new_country_30d"] is None
    assert res[2].features["card_seconds_since_prev"] == 60.0
    frame = pd.DataFrame({"transaction_id": ["1", "2", "3"],
                          "timestamp": [T0 + timedelta(seconds=s) for s in (0, 60, 120)],
                          "card_id": "c1", "terminal_id": [None, "t1", None], "amount": 10.0,
                          "latitude": [np.nan, 48.0, np.nan], "longitude": [np.nan, 2.0, np.nan],
                          "country": [None, "FR", None]})
    offline = compute_features(frame, store.feature_set, labels=frame.iloc[:0].assign(
        is_fraud=[], reported_at=[]))
    online = pd.DataFrame([r.features for r in res], dtype=float)
    online.insert(0, "transaction_id", ["1", "2", "3"])
    assert compare(online, offline).ok


def test_transactions_of_round_trip() -> None:
    df, _ = synthetic(n=50, seed=1)
    txs = transactions_of(df)
    assert [t.transaction_id for t in txs] == df.transaction_id.tolist()
    assert all(t.latitude is None for t, m in zip(txs, df.latitude.isna(), strict=True) if m)
