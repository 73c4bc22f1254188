"""A deterministic simulator of card transactions with fraud scenarios and delayed labels.

The world: cards with a spending profile (mean and spread of amounts, transactions per day, the
hours they are active, how often they shop online) and a home (city, country, latitude/longitude);
terminals with a location, a merchant category and a channel (``pos``, ``atm``, ``ecom``). A card
mostly uses the ``pos``/``atm`` terminals within a few kilometres of home and a handful of online
merchants, now and then a terminal far away (travel).

Fraud scenarios (each rate is the expected share of ALL transactions it produces):

1. ``large_amount``: a single purchase far above anything the card does, mostly online, at any hour.
2. ``compromised_terminal``: a terminal is compromised for ``terminal_days`` days; every
   transaction made there in that period is fraud (the handbook's skimming scenario).
3. ``compromised_card``: a card is compromised for ``card_days`` days; the fraudster makes extra
   transactions with inflated amounts, often far from home. Half of these cards were first seen in
   a card-testing burst in the three days before.
4. ``card_testing``: a burst of small amounts within minutes, on one online merchant the card has
   never used (a small pool of merchants the testers abuse) or on terminals far from home.

Concept drift: from ``drift_day`` the :class:`FraudPattern` changes to ``SimConfig.drift`` (by
default :data:`DRIFT_PATTERN`: single large amounts become rare, compromised cards spend like their
holders (no inflation) mostly at night and abroad, terminals are compromised for shorter periods,
card testing doubles). A model that learned "fraud = large amount" before the drift degrades.

Labels (truthful, at most one per transaction; ``reported_at`` is when the truth becomes known):

* a share ``unlabelled_share`` of all transactions is never labelled;
* fraud: ``analyst_share`` is confirmed by an analyst or the cardholder quickly (log-normal delay,
  median 12 h, 1 h to 3 days, source ``analyst``), the rest by a chargeback (median 10 days,
  1 to 60 days, source ``chargeback``);
* genuine: labelled genuine when no dispute came within ``genuine_delay`` (7 days, source
  ``maturity``), the usual way a production system closes the books; ``genuine_delay=None`` never
  labels genuine transactions.

Amounts are in the terminal's local currency (``EUR``, ``GBP``, ``CHF``, ``USD``, ``JPY``, ``TRY``,
converted from the base currency with ``currency_rates``), or all in the base currency with
``local_currency=False``. Ecommerce transactions carry the merchant's country but no coordinates.

Everything is drawn from numpy generators seeded by ``(seed, day)``: the same configuration gives
the same events, and a run cut after N transactions is a prefix of a longer one. Days are generated
vectorised and the events come out in event-time order; a label comes out when it is due (at its
``reported_at``), before a transaction with the same time.

>>> sim = Simulator(SimConfig(cards=50, terminals=100, seed=1))
>>> events = list(sim.events(count=200))
>>> sum(e.kind == "transaction" for e in events)
200
>>> all(a.time <= b.time for a, b in zip(events, events[1:]))
True
>>> events[0].record  # doctest: +NORMALIZE_WHITESPACE
{'transaction_id': '1', 'card_id': 'C000043', 'amount': 30.85,
 'timestamp': '2024-01-01T03:48:51.875Z', 'terminal_id': 'T000041', 'currency': 'EUR',
 'merchant_category': 'transport', 'channel': 'pos', 'latitude': 52.45396, 'longitude': 13.37535,
 'country': 'DE', 'city': 'Berlin'}
>>> from stream.schemas import Transaction
>>> Transaction.model_validate(events[0].record).card_id == events[0].key
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from fraudstream.errors import ConfigError

__all__ = [
    "DEFAULT_PATTERN",
    "DRIFT_PATTERN",
    "SCENARIOS",
    "SPREE_PATTERN",
    "DayBatch",
    "SIMULATOR_COLUMNS",
    "Event",
    "FraudPattern",
    "LabelConfig",
    "SimConfig",
    "Simulator",
]

DAY = 86400.0
HOUR = 3600.0

#: Scenario codes (the truth kept for evaluation) and their names.
SCENARIOS = ("genuine", "large_amount", "compromised_terminal", "compromised_card", "card_testing",
             "local_spree")
LABEL_SOURCES = ("analyst", "chargeback", "maturity")

#: The column mapping of the simulator's file output (canonical names, used as they are).
SIMULATOR_COLUMNS = {
    "transaction_id": "transaction_id", "timestamp": "timestamp", "card_id": "card_id",
    "terminal_id": "terminal_id", "amount": "amount", "currency": "currency",
    "is_fraud": "is_fraud", "channel": "channel", "country": "country", "city": "city",
    "merchant_category": "merchant_category", "latitude": "latitude", "longitude": "longitude",
}

DEFAULT_RATES = MappingProxyType(
    {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.05, "JPY": 0.0062, "TRY": 0.027}
)
_MINOR_UNITS = {"JPY": 0}

# city, country, latitude, longitude, weight (cards and terminals are spread by weight)
CITIES = (
    ("Paris", "FR", 48.8566, 2.3522, 10), ("Lyon", "FR", 45.7640, 4.8357, 4),
    ("Marseille", "FR", 43.2965, 5.3698, 3), ("Berlin", "DE", 52.5200, 13.4050, 8),
    ("Munich", "DE", 48.1351, 11.5820, 4), ("Hamburg", "DE", 53.5511, 9.9937, 3),
    ("Madrid", "ES", 40.4168, -3.7038, 6), ("Barcelona", "ES", 41.3874, 2.1686, 5),
    ("Rome", "IT", 41.9028, 12.4964, 5), ("Milan", "IT", 45.4642, 9.1900, 5),
    ("Amsterdam", "NL", 52.3676, 4.9041, 4), ("Brussels", "BE", 50.8503, 4.3517, 3),
    ("Lisbon", "PT", 38.7223, -9.1393, 3), ("Vienna", "AT", 48.2082, 16.3738, 3),
    ("Dublin", "IE", 53.3498, -6.2603, 2), ("London", "GB", 51.5074, -0.1278, 7),
    ("Manchester", "GB", 53.4808, -2.2426, 2), ("Zurich", "CH", 47.3769, 8.5417, 2),
    ("Geneva", "CH", 46.2044, 6.1432, 1), ("New York", "US", 40.7128, -74.0060, 3),
    ("Chicago", "US", 41.8781, -87.6298, 1), ("San Francisco", "US", 37.7749, -122.4194, 1),
    ("Tokyo", "JP", 35.6762, 139.6503, 1), ("Istanbul", "TR", 41.0082, 28.9784, 1),
)
COUNTRY_CURRENCY = {"GB": "GBP", "CH": "CHF", "US": "USD", "JP": "JPY", "TR": "TRY"}  # else EUR

# merchant category, share within its channel, amount factor
MERCHANTS = {
    "pos": (("grocery", 0.30, 0.8), ("restaurant", 0.18, 0.9), ("fuel", 0.10, 1.1),
            ("retail", 0.15, 1.2), ("pharmacy", 0.07, 0.6), ("transport", 0.07, 0.5),
            ("entertainment", 0.05, 1.0), ("electronics", 0.04, 2.5), ("travel", 0.02, 3.0),
            ("jewelry", 0.02, 3.0)),
    "atm": (("cash_withdrawal", 1.0, 2.0),),
    "ecom": (("online_retail", 0.35, 1.2), ("digital_goods", 0.15, 0.5),
             ("subscription", 0.12, 0.4), ("travel", 0.10, 3.0), ("electronics", 0.10, 2.5),
             ("gaming", 0.08, 0.6), ("food_delivery", 0.10, 0.7)),
}
CHANNEL_SHARES = (("pos", 0.78), ("atm", 0.07), ("ecom", 0.15))
# Monday .. Sunday, mean 1
WEEKDAY_FACTOR = np.array([0.97, 0.97, 0.97, 0.97, 1.05, 1.12, 0.95])


@dataclass(frozen=True)
class FraudPattern:
    """How fraud looks during one period. Rates are expected shares of all transactions."""

    large_amount: float = 0.002
    compromised_terminal: float = 0.003
    compromised_card: float = 0.003
    card_testing: float = 0.002
    large_amount_range: tuple[float, float] = (300.0, 2500.0)  # base currency, log-uniform
    card_inflation: tuple[float, float] = (2.0, 5.0)  # x the card's usual amount
    card_fraud_per_day: tuple[float, float] = (0.5, 2.5)  # fraudster's transactions per day
    foreign_share: float = 0.5  # share of compromised-card fraud at terminals the card never uses
    night_share: float = 0.25  # share of injected fraud between 00:00 and 06:00
    testing_amount: tuple[float, float] = (0.5, 5.0)  # base currency
    testing_burst: float = 6.0  # mean transactions per burst (at least 2)
    testing_gap_s: float = 30.0  # mean seconds between two tests of a burst
    terminal_days: float = 14.0
    card_days: float = 7.0
    local_spree: float = 0.0
    spree_size: float = 4.0  # mean purchases per spree (at least 2)
    spree_gap_s: float = 1200.0  # mean seconds between two purchases of a spree
    spree_amount: tuple[float, float] = (1.0, 2.0)  # x the card's usual amount at that merchant

    @property
    def rates(self) -> dict[str, float]:
        return {
            "large_amount": self.large_amount,
            "compromised_terminal": self.compromised_terminal,
            "compromised_card": self.compromised_card,
            "card_testing": self.card_testing,
            "local_spree": self.local_spree,
        }

    @property
    def genuine_share(self) -> float:
        """The share of all transactions that are genuine or at compromised terminals (those
        replace genuine ones; the other scenarios ADD transactions)."""
        return 1.0 - self.large_amount - self.compromised_card - self.card_testing - self.local_spree

    def check(self, where: str) -> None:
        for name, rate in self.rates.items():
            if not 0.0 <= rate <= 0.5:
                raise ConfigError(f"{where}: fraud rate {name}={rate} must be in [0, 0.5]")
        if sum(self.rates.values()) >= 0.9:
            raise ConfigError(f"{where}: fraud rates add up to {sum(self.rates.values())} (>= 0.9)")
        for name in ("large_amount_range", "card_inflation", "card_fraud_per_day", "testing_amount",
                     "spree_amount"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"{where}: {name} must be 0 < low <= high, not {(lo, hi)}")
        for name in ("foreign_share", "night_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{where}: {name} must be in [0, 1]")
        if self.testing_burst < 2 or self.testing_gap_s <= 0:
            raise ConfigError(f"{where}: testing_burst must be >= 2 and testing_gap_s > 0")
        if self.spree_size < 2 or self.spree_gap_s <= 0:
            raise ConfigError(f"{where}: spree_size must be >= 2 and spree_gap_s > 0")
        if self.terminal_days <= 0 or self.card_days <= 0:
            raise ConfigError(f"{where}: terminal_days and card_days must be > 0")


DEFAULT_PATTERN = FraudPattern()

#: The default pattern after a drift: fraud that does not look like large amounts any more.
DRIFT_PATTERN = FraudPattern(
    large_amount=0.0005,
    compromised_terminal=0.002,
    compromised_card=0.005,
    card_testing=0.004,
    card_inflation=(0.8, 1.5),
    card_fraud_per_day=(1.0, 4.0),
    foreign_share=0.85,
    night_share=0.7,
    testing_amount=(1.0, 15.0),
    testing_burst=4.0,
    terminal_days=5.0,
    card_days=4.0,
)

#: Fraudsters change tactics: cloned cards go on daytime sprees at shops they never used in their
#: holder's own city (a few medium purchases within an hour or two), and the old tactics (large
#: amounts, skimmed terminals, far-away or night-time use of compromised cards, card testing) fall
#: to a fifth of their rates. The features see the new fraud (a first-time terminal, several
#: purchases in the last hour, several terminals in a day) but a model that learned the old
#: tactics has learned to trust what it looks like: daytime, near home, ordinary amounts.
SPREE_PATTERN = FraudPattern(
    large_amount=0.0004,
    compromised_terminal=0.0006,
    compromised_card=0.0006,
    card_testing=0.0004,
    local_spree=0.007,
    night_share=0.05,
    spree_size=6.0,
    spree_gap_s=600.0,
    spree_amount=(1.0, 2.0),
)


@dataclass(frozen=True)
class LabelConfig:
    """When and whether the truth about a transaction is reported. Durations in seconds."""

    unlabelled_share: float = 0.05
    analyst_share: float = 0.3
    analyst_delay: tuple[float, float, float] = (HOUR, 12 * HOUR, 3 * DAY)  # min, median, max
    chargeback_delay: tuple[float, float, float] = (DAY, 10 * DAY, 60 * DAY)
    sigma: float = 0.7  # of the log-normal delays
    genuine_delay: float | None = 7 * DAY  # None: genuine transactions are never labelled

    def check(self) -> None:
        for name in ("unlabelled_share", "analyst_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"labels: {name} must be in [0, 1], not {getattr(self, name)}")
        for name in ("analyst_delay", "chargeback_delay"):
            lo, med, hi = getattr(self, name)
            if not 0 < lo <= med <= hi:
                raise ConfigError(f"labels: {name} must be 0 < min <= median <= max")
        if self.sigma < 0:
            raise ConfigError("labels: sigma must be >= 0")
        if self.genuine_delay is not None and self.genuine_delay <= 0:
            raise ConfigError("labels: genuine_delay must be > 0 (or None)")

    @property
    def max_delay(self) -> float:
        return max(self.analyst_delay[2], self.chargeback_delay[2], self.genuine_delay or 0.0)


@dataclass(frozen=True)
class SimConfig:
    """Everything the simulator needs; the same configuration always gives the same events.

    The defaults make about 12,600 transactions a simulated day (5,000 cards x 2.5), 1 % fraud.
    """

    cards: int = 5000
    terminals: int = 10000
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    seed: int = 7
    tx_per_day: float = 2.5  # mean over cards; each card draws its own in [0.2, 1.8] x this
    amount_mean: tuple[float, float] = (5.0, 100.0)  # a card's mean amount, base currency
    fraud: FraudPattern = DEFAULT_PATTERN
    drift_day: int | None = None
    drift: FraudPattern = DRIFT_PATTERN
    labels: LabelConfig = field(default_factory=LabelConfig)
    local_currency: bool = True
    base_currency: str = "EUR"
    currency_rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    travel_share: float = 0.01  # genuine transactions at a random terminal far from home
    local_radius_km: float = 5.0
    id_prefix: str = ""

    def check(self) -> SimConfig:
        if self.cards < 1 or self.terminals < 2:
            raise ConfigError(f"need at least 1 card and 2 terminals (got {self.cards}, {self.terminals})")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, not {self.seed}")
        if not 0 < self.tx_per_day <= 1000:
            raise ConfigError(f"tx_per_day must be in (0, 1000], not {self.tx_per_day}")
        lo, hi = self.amount_mean
        if not 0 < lo <= hi:
            raise ConfigError(f"amount_mean must be 0 < low <= high, not {self.amount_mean}")
        if self.start.tzinfo is None:
            raise ConfigError("start must carry a time zone")
        if self.drift_day is not None and self.drift_day < 0:
            raise ConfigError(f"drift_day must be >= 0, not {self.drift_day}")
        if not 0.0 <= self.travel_share <= 0.5:
            raise ConfigError(f"travel_share must be in [0, 0.5], not {self.travel_share}")
        if self.local_radius_km <= 0:
            raise ConfigError("local_radius_km must be > 0")
        if self.base_currency not in self.currency_rates:
            raise ConfigError(f"base currency {self.base_currency} has no rate in currency_rates")
        if any(not (r > 0 and math.isfinite(r)) for r in self.currency_rates.values()):
            raise ConfigError("currency_rates must be positive numbers")
        self.fraud.check("fraud")
        self.drift.check("drift")
        self.labels.check()
        return self

    def pattern(self, day: int) -> FraudPattern:
        """The fraud pattern in force on ``day`` (0-based from ``start``)."""
        if self.drift_day is not None and day >= self.drift_day:
            return self.drift
        return self.fraud


class Event(NamedTuple):
    """One record on the wire, in event-time order, with the truth kept for evaluation.

    ``time`` is the event time in epoch seconds (the transaction's ``timestamp``, the label's
    ``reported_at``); ``key`` the Kafka key (card id, or transaction id for a label); ``record`` the
    JSON object of :class:`stream.schemas.Transaction` or :class:`stream.schemas.Label`;
    ``scenario`` the truth: 0 genuine, 1..4 the fraud scenario (a label carries its transaction's).
    """

    time: float
    kind: str  # "transaction" | "label"
    key: str
    record: dict[str, Any]
    scenario: int


@dataclass
class DayBatch:
    """One simulated day, columnar: its transactions and the labels due that day, both sorted."""

    day: int
    t: np.ndarray  # event time, epoch seconds
    card: np.ndarray
    terminal: np.ndarray
    amount: np.ndarray  # local currency, rounded to its minor unit
    scenario: np.ndarray
    seq: np.ndarray  # 1-based global transaction number (the id without prefix)
    label_due: np.ndarray
    label_seq: np.ndarray
    label_fraud: np.ndarray
    label_source: np.ndarray
    label_scenario: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class _World:
    card_lat: np.ndarray
    card_lon: np.ndarray
    card_city: np.ndarray
    card_mu: np.ndarray  # log-normal parameters of the card's amounts, base currency
    card_sigma: np.ndarray
    card_tpd: np.ndarray
    card_hour: np.ndarray  # centre of the card's active hours, hours
    card_spread: np.ndarray  # hours
    card_p_ecom: np.ndarray
    local: np.ndarray  # [cards, K] terminal indices near home, padded
    n_local: np.ndarray
    ecom: np.ndarray  # [cards, 4] usual online merchants
    n_ecom: np.ndarray
    term_city: np.ndarray
    term_channel: np.ndarray  # index into ("pos", "atm", "ecom")
    term_lat: np.ndarray
    term_lon: np.ndarray
    term_mcc: list[str]
    term_factor: np.ndarray
    term_currency: list[str]
    term_rate: np.ndarray  # base units per local unit
    term_decimals: np.ndarray
    physical: np.ndarray  # pos + atm terminal indices
    online: np.ndarray  # ecom terminal indices
    testing_pool: np.ndarray
    usage: np.ndarray  # expected genuine transactions per day per terminal
    static: list[dict[str, Any]]  # the wire fields fixed by the terminal
    card_ids: list[str]


class Simulator:
    """Generates the events of one :class:`SimConfig`, day by day (see the module docstring)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = (config or SimConfig()).check()
        self.world = _build_world(self.config)
        self.start_s = self.config.start.timestamp()
        w = self.world
        self.genuine_per_day = float(w.card_tpd.sum())

    # -- public ------------------------------------------------------------------------------
    def batches(self, count: int | None = None, days: float | None = None) -> Iterator[DayBatch]:
        """Columnar day batches from day 0, cut at ``count`` transactions or ``days``."""
        yield from _Run(self, count, days)

    def events(
        self, count: int | None = None, days: float | None = None, flush_labels: bool = False
    ) -> Iterator[Event]:
        """Transactions and labels in event-time order, until ``count`` transactions or ``days``.

        Without either it never ends. ``flush_labels`` emits, after the last transaction, the
        labels of the emitted transactions that were not due yet, at their ``reported_at``.
        """
        run = _Run(self, count, days)
        for batch in run:
            yield from self._day_events(batch)
        if flush_labels:
            yield from self._label_events(run.flush())

    def frames(
        self, count: int | None = None, days: float | None = None, flush_labels: bool = True
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(transactions, labels)`` DataFrames of the same events :meth:`events` yields.

        Transactions carry the wire columns plus the truth (``is_fraud``, ``scenario`` as a name);
        labels carry the wire columns of :class:`stream.schemas.Label`.
        """
        if count is None and days is None:
            raise ConfigError("frames need a count or a number of days")
        parts = list(self.iter_frames(count, days, flush_labels))
        return (pd.concat([p[0] for p in parts], ignore_index=True),
                pd.concat([p[1] for p in parts], ignore_index=True))

    def iter_frames(
        self, count: int | None = None, days: float | None = None, flush_labels: bool = True
    ) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """:meth:`frames` one day at a time (then the flushed labels), for streaming writers."""
        run = _Run(self, count, days)
        for batch in run:
            yield self.tx_frame(batch), self.label_frame(batch)
        last = run.flush()
        if not flush_labels:
            last = _cut(last, 0, -math.inf)[0]
        yield self.tx_frame(last), self.label_frame(last)

    def expected_per_day(self, day: int = 0) -> float:
        """Expected transactions per simulated day (genuine and fraud) under ``day``'s pattern."""
        p = self.config.pattern(day)
        return self.genuine_per_day / p.genuine_share

    # -- records -----------------------------------------------------------------------------
    def _tx_events(self, b: DayBatch) -> list[Event]:
        w = self.world
        prefix = self.config.id_prefix
        stamps = _iso(b.t)
        card_ids = w.card_ids
        static = w.static
        new = tuple.__new__  # an Event without NamedTuple's slower constructor
        out: list[Event] = []
        append = out.append
        for t, q, c, a, ts, k, s in zip(
            b.t.tolist(), b.seq.tolist(), b.card.tolist(), b.amount.tolist(), stamps,
            b.terminal.tolist(), b.scenario.tolist(), strict=True):
            rec = static[k].copy()  # key order: transaction_id, card_id, amount, timestamp, ...
            card = card_ids[c]
            rec["transaction_id"] = f"{prefix}{q}"
            rec["card_id"] = card
            rec["amount"] = a
            rec["timestamp"] = ts
            append(new(Event, (t, "transaction", card, rec, s)))
        return out

    def _label_events(self, b: DayBatch) -> list[Event]:
        prefix = self.config.id_prefix
        stamps = _iso(b.label_due)
        new = tuple.__new__
        out: list[Event] = []
        append = out.append
        for t, q, f, ts, src, s in zip(
            b.label_due.tolist(), b.label_seq.tolist(), b.label_fraud.tolist(), stamps,
            b.label_source.tolist(), b.label_scenario.tolist(), strict=True):
            tid = f"{prefix}{q}"
            rec = {"transaction_id": tid, "is_fraud": f, "reported_at": ts,
                   "source": LABEL_SOURCES[src]}
            append(new(Event, (t, "label", tid, rec, s)))
        return out

    def _day_events(self, b: DayBatch) -> list[Event]:
        labels = self._label_events(b)
        txs = self._tx_events(b)
        if not labels:
            return txs
        # labels first at equal times: a label due at t is known to a transaction at t
        order = np.argsort(np.concatenate([b.label_due, b.t]), kind="stable").tolist()
        both = labels + txs
        return [both[j] for j in order]

    def tx_frame(self, b: DayBatch) -> pd.DataFrame:
        w = self.world
        prefix = self.config.id_prefix
        term = b.terminal
        frame = pd.DataFrame({
            "transaction_id": [f"{prefix}{s}" for s in b.seq.tolist()],
            "timestamp": pd.to_datetime(np.round(b.t * 1000).astype("int64"), unit="ms", utc=True),
            "card_id": np.asarray(w.card_ids, dtype=object)[b.card],
            "terminal_id": np.asarray([d["terminal_id"] for d in w.static], dtype=object)[term],
            "amount": b.amount,
        })
        for col in ("currency", "merchant_category", "channel", "latitude", "longitude", "country",
                    "city"):
            values = np.asarray([d[col] for d in w.static], dtype=object)[term]
            if col in ("latitude", "longitude"):
                values = values.astype(float)
            frame[col] = values
        frame["is_fraud"] = (b.scenario > 0).astype("int8")
        frame["scenario"] = np.asarray(SCENARIOS, dtype=object)[b.scenario]
        return frame

    def label_frame(self, b: DayBatch) -> pd.DataFrame:
        prefix = self.config.id_prefix
        return pd.DataFrame({
            "transaction_id": [f"{prefix}{s}" for s in b.label_seq.tolist()],
            "is_fraud": b.label_fraud.astype(bool),
            "reported_at": pd.to_datetime(
                np.round(b.label_due * 1000).astype("int64"), unit="ms", utc=True),
            "source": np.asarray(LABEL_SOURCES, dtype=object)[b.label_source],
        })


def _iso(t: np.ndarray) -> list[str]:
    """Epoch seconds as ISO-8601 UTC text with milliseconds, vectorised."""
    ms = np.round(t * 1000).astype("int64").astype("datetime64[ms]")
    return np.datetime_as_string(ms, unit="ms", timezone="UTC").tolist()


def _cut(b: DayBatch, keep: int, end: float, inclusive: bool = False) -> tuple[DayBatch, tuple]:
    """The first ``keep`` transactions of ``b`` with the labels due before ``end``, and the
    labels cut off (due later; every kept label belongs to a kept transaction since a label is
    due after its transaction)."""
    n = int(np.searchsorted(b.label_due, end, side="right" if inclusive else "left"))
    labels = (b.label_due, b.label_seq, b.label_fraud, b.label_source, b.label_scenario)
    kept = DayBatch(b.day, b.t[:keep], b.card[:keep], b.terminal[:keep], b.amount[:keep],
                    b.scenario[:keep], b.seq[:keep], *(x[:n] for x in labels))
    return kept, tuple(x[n:] for x in labels)


class _Run:
    """One pass over the days, cut at ``count`` transactions or ``days``; then :meth:`flush`."""

    def __init__(self, sim: Simulator, count: int | None, days: float | None) -> None:
        if count is not None and count < 0:
            raise ConfigError(f"count must be >= 0, not {count}")
        if days is not None and days < 0:
            raise ConfigError(f"days must be >= 0, not {days}")
        self.sim, self.count, self.days = sim, count, days
        self.state = _State(sim)
        self.day = 0
        self.emitted = 0
        self.leftover: list[tuple[np.ndarray, ...]] = []

    def __iter__(self) -> Iterator[DayBatch]:
        count, days = self.count, self.days
        while (days is None or self.day < days) and (count is None or self.emitted < count):
            batch = self.state.day(self.day)
            if days is not None and self.day + 1 > days:
                end = self.sim.start_s + days * DAY
                batch, rest = _cut(batch, int(np.searchsorted(batch.t, end, side="left")), end)
                self.leftover.append(rest)
            if count is not None and self.emitted + len(batch) >= count:
                keep = count - self.emitted
                batch, rest = _cut(batch, keep, float(batch.t[keep - 1]), inclusive=True)
                self.leftover.append(rest)
            self.emitted += len(batch)
            self.day += 1
            yield batch

    def flush(self) -> DayBatch:
        """The labels of the emitted transactions not due yet, in due order (no transactions)."""
        return self.state.flush(self.day, self.emitted, self.leftover)


# -- the world ---------------------------------------------------------------------------------
def _km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Approximate distance in km (equirectangular; fine within a city)."""
    dy = (lat2 - lat1) * 110.57
    dx = (lon2 - lon1) * 111.32 * np.cos(np.radians((lat1 + lat2) / 2))
    return np.sqrt(dx * dx + dy * dy)


def _build_world(cfg: SimConfig) -> _World:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([cfg.seed, 0])))
    n_c, n_t = cfg.cards, cfg.terminals
    city_lat = np.array([c[2] for c in CITIES])
    city_lon = np.array([c[3] for c in CITIES])
    weights = np.array([c[4] for c in CITIES], dtype=float)
    weights /= weights.sum()

    # cards
    card_city = rng.choice(len(CITIES), size=n_c, p=weights)
    card_lat = city_lat[card_city] + rng.normal(0, 0.05, n_c)
    card_lon = city_lon[card_city] + rng.normal(0, 0.05, n_c) / np.cos(np.radians(city_lat[card_city]))
    mean = rng.uniform(*cfg.amount_mean, n_c)
    cv = rng.uniform(0.3, 0.9, n_c)  # coefficient of variation of the card's amounts
    card_sigma = np.sqrt(np.log1p(cv * cv))
    card_mu = np.log(mean) - card_sigma**2 / 2
    card_tpd = cfg.tx_per_day * rng.uniform(0.2, 1.8, n_c)
    card_hour = np.clip(rng.normal(13.5, 2.5, n_c), 8.0, 20.0)
    card_spread = rng.uniform(1.5, 4.0, n_c)
    card_p_ecom = rng.uniform(0.02, 0.3, n_c)

    # terminals
    term_city = rng.choice(len(CITIES), size=n_t, p=weights)
    channels = ("pos", "atm", "ecom")
    term_channel = rng.choice(3, size=n_t, p=[s for _, s in CHANNEL_SHARES])
    term_channel[0] = 0  # at least one physical terminal
    term_lat = city_lat[term_city] + rng.normal(0, 0.06, n_t)
    term_lon = city_lon[term_city] + rng.normal(0, 0.06, n_t) / np.cos(np.radians(city_lat[term_city]))
    term_mcc: list[str] = []
    term_factor = np.empty(n_t)
    mcc_draw = rng.random(n_t)
    for i, ch in enumerate(term_channel.tolist()):
        table = MERCHANTS[channels[ch]]
        cum = 0.0
        for name, share, factor in table:
            cum += share
            if mcc_draw[i] < cum or name == table[-1][0]:
                term_mcc.append(name)
                term_factor[i] = factor
                break
    countries = [CITIES[c][1] for c in term_city.tolist()]
    if cfg.local_currency:
        term_currency = [COUNTRY_CURRENCY.get(c, "EUR") for c in countries]
        term_currency = [c if c in cfg.currency_rates else cfg.base_currency for c in term_currency]
    else:
        term_currency = [cfg.base_currency] * n_t
    term_rate = np.array([cfg.currency_rates[c] for c in term_currency], dtype=float)
    term_decimals = np.array([_MINOR_UNITS.get(c, 2) for c in term_currency])
    physical = np.flatnonzero(term_channel != 2)
    online = np.flatnonzero(term_channel == 2)

    # each card's terminals near home: pos/atm within the radius (at least the 3 nearest, at
    # most 40), in its city when that city has any, else anywhere
    k_max = 40
    local = np.zeros((n_c, k_max), dtype=np.int64)
    n_local = np.zeros(n_c, dtype=np.int64)
    for city in np.unique(card_city).tolist():
        cards = np.flatnonzero(card_city == city)
        cand = physical[term_city[physical] == city]
        if len(cand) == 0:
            cand = physical
        for lo in range(0, len(cards), 256):
            chunk = cards[lo : lo + 256]
            d = _km(card_lat[chunk, None], card_lon[chunk, None], term_lat[None, cand],
                    term_lon[None, cand])
            k = min(k_max, len(cand))
            nearest = np.argpartition(d, k - 1, axis=1)[:, :k] if k < len(cand) else \
                np.broadcast_to(np.arange(len(cand)), d.shape)
            near_d = np.take_along_axis(d, nearest, axis=1)
            by_distance = np.argsort(near_d, axis=1, kind="stable")
            nearest = np.take_along_axis(nearest, by_distance, axis=1)
            near_d = np.take_along_axis(near_d, by_distance, axis=1)
            count = np.maximum((near_d <= cfg.local_radius_km).sum(axis=1), min(3, k))
            local[chunk, :k] = cand[nearest]
            n_local[chunk] = count

    # a few usual online merchants per card, mostly of its own country
    ecom = np.zeros((n_c, 4), dtype=np.int64)
    n_ecom = np.zeros(n_c, dtype=np.int64)
    if len(online):
        online_country = np.array([countries[t] for t in online.tolist()])
        card_country = np.array([CITIES[c][1] for c in card_city.tolist()])
        for country in np.unique(card_country).tolist():
            cards = np.flatnonzero(card_country == country)
            home = online[online_country == country]
            pick_home = rng.random((len(cards), 4)) < 0.7
            anywhere = online[rng.integers(0, len(online), (len(cards), 4))]
            at_home = home[rng.integers(0, len(home), (len(cards), 4))] if len(home) else anywhere
            ecom[cards] = np.where(pick_home, at_home, anywhere)
        n_ecom[:] = 4
    else:
        card_p_ecom[:] = 0.0
    n_pool = max(3, len(online) // 50) if len(online) else 0
    testing_pool = rng.choice(online, size=min(n_pool, len(online)), replace=False) if n_pool else physical[:1]

    # expected genuine transactions per day at each terminal (calibrates the terminal scenario)
    usage = np.zeros(n_t)
    p_local = 1.0 - card_p_ecom - cfg.travel_share
    cols = np.arange(k_max)[None, :]
    mask = cols < n_local[:, None]
    np.add.at(usage, local[mask], np.repeat(card_tpd * p_local / n_local, n_local))
    if len(online):
        np.add.at(usage, ecom.ravel(), np.repeat(card_tpd * card_p_ecom / 4, 4))
    usage[physical] += card_tpd.sum() * cfg.travel_share / len(physical)

    static = []
    for i in range(n_t):
        is_ecom = term_channel[i] == 2
        static.append({
            "transaction_id": "", "card_id": "", "amount": 0.0, "timestamp": "",
            "terminal_id": f"T{i:06d}",
            "currency": term_currency[i],
            "merchant_category": term_mcc[i],
            "channel": channels[term_channel[i]],
            "latitude": None if is_ecom else round(float(term_lat[i]), 5),
            "longitude": None if is_ecom else round(float(term_lon[i]), 5),
            "country": countries[i],
            "city": None if is_ecom else CITIES[term_city[i]][0],
        })
    return _World(
        card_lat=card_lat, card_lon=card_lon, card_city=card_city, card_mu=card_mu,
        card_sigma=card_sigma, card_tpd=card_tpd, card_hour=card_hour, card_spread=card_spread,
        card_p_ecom=card_p_ecom, local=local, n_local=n_local, ecom=ecom, n_ecom=n_ecom,
        term_city=term_city, term_channel=term_channel, term_lat=term_lat, term_lon=term_lon,
        term_mcc=term_mcc, term_factor=term_factor, term_currency=term_currency,
        term_rate=term_rate, term_decimals=term_decimals, physical=physical, online=online,
        testing_pool=testing_pool, usage=usage, static=static,
        card_ids=[f"C{i:06d}" for i in range(n_c)],
    )


# -- the days ----------------------------------------------------------------------------------
class _State:
    """What carries from one day to the next: compromises, recent tests, labels not yet due."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.cfg = sim.config
        w = sim.world
        self.w = w
        n_t, n_c = len(w.static), len(w.card_ids)
        self.term_from = np.full(n_t, np.inf)
        self.term_until = np.full(n_t, -np.inf)
        self.card_from = np.full(n_c, np.inf)
        self.card_until = np.full(n_c, -np.inf)
        self.card_fraud_tpd = np.zeros(n_c)
        self.tested: list[tuple[np.ndarray, float]] = []  # (cards, time) of recent bursts
        self.buckets: dict[int, list[tuple[np.ndarray, ...]]] = {}
        self.next_seq = 1
        self.used = np.flatnonzero(w.usage > 0)
        self.city_terminals: dict[int, np.ndarray] | None = None  # physical terminals by city
        self.mean_usage = float(w.usage[self.used].mean()) if len(self.used) else 0.0
        self._seed_steady_state()

    def _rng(self, day: int, stream: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.cfg.seed, 1, day + 1, stream])))

    def expected_total(self, p: FraudPattern) -> float:
        """Expected transactions per day (genuine + added fraud) under pattern ``p``."""
        return self.sim.genuine_per_day / p.genuine_share

    def _terminal_lambda(self, p: FraudPattern) -> float:
        if self.mean_usage <= 0:
            return 0.0
        return p.compromised_terminal * self.expected_total(p) / (p.terminal_days * self.mean_usage)

    def _card_lambda(self, p: FraudPattern) -> float:
        per_card = p.card_days * sum(p.card_fraud_per_day) / 2
        return p.compromised_card * self.expected_total(p) / per_card

    def _seed_steady_state(self) -> None:
        """Compromises already running at the start, so rates hold from day 0."""
        rng = self._rng(-1, 0)
        start = self.sim.start_s
        p = self.cfg.pattern(0)
        n = rng.poisson(self._terminal_lambda(p) * p.terminal_days)
        self._compromise_terminals(rng, n, start - rng.uniform(0, p.terminal_days * DAY, n), p)
        n = rng.poisson(self._card_lambda(p) * p.card_days)
        self._compromise_cards(rng, n, start - rng.uniform(0, p.card_days * DAY, n), p, start)

    def _compromise_terminals(self, rng: np.random.Generator, n: int, starts: np.ndarray,
                              p: FraudPattern) -> None:
        if n == 0 or not len(self.used):
            return
        free = self.used[self.term_until[self.used] < starts.min()]
        if not len(free):
            return
        chosen = rng.choice(free, size=min(n, len(free)), replace=False)
        self.term_from[chosen] = starts[: len(chosen)]
        self.term_until[chosen] = starts[: len(chosen)] + p.terminal_days * DAY

    def _compromise_cards(self, rng: np.random.Generator, n: int, starts: np.ndarray,
                          p: FraudPattern, now: float) -> None:
        if n == 0:
            return
        n_c = len(self.card_from)
        recent = [c for cards, t in self.tested if now - t <= 3 * DAY for c in cards.tolist()]
        chosen: list[int] = []
        for i in range(n):
            free = [c for c in recent if self.card_until[c] < starts[i] and c not in chosen]
            if free and rng.random() < 0.5:
                chosen.append(free[int(rng.integers(0, len(free)))])
                continue
            for _ in range(100):  # a random card not compromised now
                c = int(rng.integers(0, n_c))
                if self.card_until[c] < starts[i] and c not in chosen:
                    chosen.append(c)
                    break
        idx = np.array(chosen, dtype=np.int64)
        if not len(idx):
            return
        st = starts[: len(idx)]
        self.card_from[idx] = st
        self.card_until[idx] = st + p.card_days * DAY
        self.card_fraud_tpd[idx] = rng.uniform(*p.card_fraud_per_day, len(idx))

    def _fraud_times(self, rng: np.random.Generator, n: int, day_s: float, p: FraudPattern) -> np.ndarray:
        night = rng.random(n) < p.night_share
        tod = np.where(night, rng.uniform(0, 6 * HOUR, n), rng.uniform(6 * HOUR, DAY, n))
        return day_s + tod

    def _far_terminals(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Terminals a card does not normally use: online 60 %, a physical one anywhere 40 %."""
        w = self.w
        phys = w.physical[rng.integers(0, len(w.physical), n)]
        if not len(w.online):
            return phys
        onl = w.online[rng.integers(0, len(w.online), n)]
        return np.where(rng.random(n) < 0.6, onl, phys)

    def _sprees(self, rng: np.random.Generator, day_s: float, p: FraudPattern) -> list[tuple[np.ndarray, ...]]:
        """Scenario 5: a cloned card goes on a spree in its holder's city, at shops it never used.

        ``spree_size`` purchases (mean, at least 2) ``spree_gap_s`` apart (mean, exponential) at
        distinct physical terminals of the card's home city that are not among its usual ones,
        each ``spree_amount`` times the card's usual amount at that merchant.
        """
        w = self.w
        sprees = rng.poisson(p.local_spree * self.expected_total(p) / p.spree_size)
        if not sprees:
            return []
        if self.city_terminals is None:
            cities = w.term_city[w.physical]
            self.city_terminals = {int(c): w.physical[cities == c] for c in np.unique(cities).tolist()}
        cards = rng.integers(0, len(w.card_ids), sprees)
        size = 2 + rng.poisson(p.spree_size - 2, sprees)
        t0 = self._fraud_times(rng, sprees, day_s, p)
        out_t, out_c, out_term = [], [], []
        for c, n, start in zip(cards.tolist(), size.tolist(), t0.tolist(), strict=True):
            pool = self.city_terminals.get(int(w.card_city[c]), w.physical)
            usual = set(w.local[c, : w.n_local[c]].tolist())
            fresh = [x for x in rng.choice(pool, size=min(len(pool), n + len(usual)),
                                           replace=False).tolist() if x not in usual][:n]
            if not fresh:
                continue
            gaps = np.concatenate([[0.0], rng.exponential(p.spree_gap_s, len(fresh) - 1)])
            out_t.append(np.minimum(start + np.cumsum(gaps), day_s + DAY - 0.001))
            out_c.append(np.full(len(fresh), c, np.int64))
            out_term.append(np.array(fresh, np.int64))
        if not out_t:
            return []
        t5, c5, term5 = np.concatenate(out_t), np.concatenate(out_c), np.concatenate(out_term)
        a5 = self._amounts(rng, c5, term5) * rng.uniform(*p.spree_amount, len(c5))
        return [(t5, c5, term5, a5, np.full(len(c5), 5, np.int8))]

    def _amounts(self, rng: np.random.Generator, cards: np.ndarray, terms: np.ndarray) -> np.ndarray:
        w = self.w
        base = np.exp(rng.normal(w.card_mu[cards], w.card_sigma[cards])) * w.term_factor[terms]
        atm = w.term_channel[terms] == 1
        if atm.any():
            base[atm] = np.maximum(10.0, np.round(base[atm] / 10.0) * 10.0)
        return base

    def day(self, d: int) -> DayBatch:
        cfg, w = self.cfg, self.w
        p = cfg.pattern(d)
        day_s = self.sim.start_s + d * DAY
        weekday = datetime.fromtimestamp(day_s, UTC).weekday()
        rng = self._rng(d, 0)

        # new compromises starting today (before anything is marked)
        starts = day_s + rng.uniform(0, DAY, rng.poisson(self._terminal_lambda(p)))
        self._compromise_terminals(rng, len(starts), np.sort(starts), p)
        self.tested = [(c, t) for c, t in self.tested if day_s - t <= 3 * DAY]
        starts = day_s + rng.uniform(0, DAY, rng.poisson(self._card_lambda(p)))
        self._compromise_cards(rng, len(starts), np.sort(starts), p, day_s)

        # genuine spending
        n = rng.poisson(w.card_tpd * WEEKDAY_FACTOR[weekday])
        card = np.repeat(np.arange(len(n)), n)
        m = len(card)
        tod = np.mod(rng.normal(w.card_hour[card], w.card_spread[card]) * HOUR, DAY)
        t = day_s + tod
        u = rng.random(m)
        r = rng.random(m)
        p_ecom = w.card_p_ecom[card]
        term = w.local[card, (r * w.n_local[card]).astype(np.int64)]
        if len(w.online):
            is_ecom = u < p_ecom
            term = np.where(is_ecom, w.ecom[card, (r * 4).astype(np.int64)], term)
        travel = (u >= p_ecom) & (u < p_ecom + cfg.travel_share)
        if travel.any():
            term[travel] = w.physical[rng.integers(0, len(w.physical), int(travel.sum()))]
        amount = self._amounts(rng, card, term)
        scen = np.zeros(m, dtype=np.int8)
        at_bad = (self.term_from[term] <= t) & (t < self.term_until[term])
        scen[at_bad] = 2
        parts = [(t, card, term, amount, scen)]

        # 1: single large amounts
        k = rng.poisson(p.large_amount * self.expected_total(p))
        if k:
            c1 = rng.integers(0, len(w.card_ids), k)
            lo, hi = p.large_amount_range
            a1 = np.exp(rng.uniform(math.log(lo), math.log(hi), k))
            parts.append((self._fraud_times(rng, k, day_s, p), c1, self._far_terminals(rng, k), a1,
                          np.full(k, 1, np.int8)))

        # 3: compromised cards spend more, often elsewhere
        active = np.flatnonzero((self.card_from < day_s + DAY) & (self.card_until > day_s))
        if len(active):
            k3 = rng.poisson(self.card_fraud_tpd[active])
            c3 = np.repeat(active, k3)
            t3 = self._fraud_times(rng, len(c3), day_s, p)
            inside = (self.card_from[c3] <= t3) & (t3 < self.card_until[c3])
            c3, t3 = c3[inside], t3[inside]
            n3 = len(c3)
            if n3:
                usual = w.local[c3, (rng.random(n3) * w.n_local[c3]).astype(np.int64)]
                term3 = np.where(rng.random(n3) < p.foreign_share, self._far_terminals(rng, n3), usual)
                a3 = self._amounts(rng, c3, term3) * rng.uniform(*p.card_inflation, n3)
                parts.append((t3, c3, term3, a3, np.full(n3, 3, np.int8)))

        # 4: card testing bursts
        bursts = rng.poisson(p.card_testing * self.expected_total(p) / p.testing_burst)
        if bursts:
            c4 = rng.integers(0, len(w.card_ids), bursts)
            size = 2 + rng.poisson(p.testing_burst - 2, bursts)
            t0 = self._fraud_times(rng, bursts, day_s, p)
            pool = w.testing_pool[rng.integers(0, len(w.testing_pool), bursts)]
            scattered = rng.random(bursts) < 0.25
            cards4 = np.repeat(c4, size)
            gaps = rng.exponential(p.testing_gap_s, len(cards4))
            first = np.concatenate([[0], np.cumsum(size)[:-1]])
            gaps[first] = 0.0
            offsets = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first], size)
            t4 = np.minimum(np.repeat(t0, size) + offsets, day_s + DAY - 0.001)
            term4 = np.repeat(pool, size)
            sc = np.repeat(scattered, size)
            if sc.any():
                term4[sc] = self._far_terminals(rng, int(sc.sum()))
            lo, hi = p.testing_amount
            a4 = rng.uniform(lo, hi, len(cards4))
            parts.append((t4, cards4, term4, a4, np.full(len(cards4), 4, np.int8)))
            self.tested.append((c4, float(day_s + DAY)))

        # 5: local sprees (their own random stream: patterns without them draw what they drew)
        if p.local_spree > 0:
            parts.extend(self._sprees(self._rng(d, 2), day_s, p))  # type: ignore[arg-type]

        t = np.concatenate([x[0] for x in parts])
        order = np.argsort(t, kind="stable")
        t = np.round(t[order], 3)
        card = np.concatenate([x[1] for x in parts])[order]
        term = np.concatenate([x[2] for x in parts])[order]
        base = np.concatenate([x[3] for x in parts])[order]
        scen = np.concatenate([x[4] for x in parts])[order]
        local_amount = base / w.term_rate[term]
        dec = w.term_decimals[term]
        amount = np.where(dec == 0, np.round(local_amount), np.round(local_amount, 2))
        amount = np.maximum(amount, np.where(dec == 0, 1.0, 0.01))
        seq = np.arange(self.next_seq, self.next_seq + len(t), dtype=np.int64)
        self.next_seq += len(t)

        self._draw_labels(self._rng(d, 1), t, seq, scen)
        due = self._take_due(d)
        return DayBatch(d, t, card, term, amount, scen, seq, *due)

    def _draw_labels(self, rng: np.random.Generator, t: np.ndarray, seq: np.ndarray,
                     scen: np.ndarray) -> None:
        lc = self.cfg.labels
        m = len(t)
        fraud = scen > 0
        labelled = rng.random(m) >= lc.unlabelled_share
        analyst = rng.random(m) < lc.analyst_share
        z = rng.normal(0.0, lc.sigma, m)
        a_lo, a_med, a_hi = lc.analyst_delay
        c_lo, c_med, c_hi = lc.chargeback_delay
        delay = np.where(analyst, np.clip(a_med * np.exp(z), a_lo, a_hi),
                         np.clip(c_med * np.exp(z), c_lo, c_hi))
        source = np.where(analyst, 0, 1).astype(np.int8)
        if lc.genuine_delay is None:
            labelled &= fraud
        else:
            delay = np.where(fraud, delay, lc.genuine_delay)
            source = np.where(fraud, source, 2).astype(np.int8)
        idx = np.flatnonzero(labelled)
        due = np.round(t[idx] + delay[idx], 3)
        day_of = np.floor((due - self.sim.start_s) / DAY).astype(np.int64)
        for d in np.unique(day_of).tolist():
            sel = idx[day_of == d]
            self.buckets.setdefault(d, []).append(
                (due[day_of == d], seq[sel], fraud[sel], source[sel], scen[sel]))

    def _take_due(self, d: int) -> tuple[np.ndarray, ...]:
        parts = self.buckets.pop(d, [])
        return _merge_labels(parts)

    def flush(self, day: int, emitted: int, leftover: list[tuple[np.ndarray, ...]]) -> DayBatch:
        """The labels still pending after the last emitted transaction, in due order."""
        parts = list(leftover) + [p for d in sorted(self.buckets) for p in self.buckets[d]]
        self.buckets.clear()
        due, seq, fraud, source, scen = _merge_labels(parts)
        keep = seq <= emitted
        empty = np.empty(0)
        return DayBatch(day, empty, empty.astype(np.int64), empty.astype(np.int64), empty,
                        empty.astype(np.int8), empty.astype(np.int64), due[keep], seq[keep],
                        fraud[keep], source[keep], scen[keep])


def _merge_labels(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    if not parts:
        return (np.empty(0), np.empty(0, np.int64), np.empty(0, bool), np.empty(0, np.int8),
                np.empty(0, np.int8))
    cols = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    order = np.lexsort((cols[1], cols[0]))  # by due time, then transaction number
    return tuple(c[order] for c in cols)

