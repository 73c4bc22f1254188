"""Evaluation protocols: the time-ordered split with a label-delay gap, and prequential streaming.

Time split (:func:`time_split`): ``train [a, b) | delay [b, c) | test [c, d)`` with ``c = b +
label_delay``. Nothing of the gap is used: the labels of the last training transactions become
known only at ``c``, when the model starts to serve, so a model evaluated on ``[c, d)`` knew exactly
what a model deployed at ``c`` would know. The bounds come from dates (``train_start``,
``train_days``, ``test_start``, ``test_days``) or, without them, from the share of the time span
kept for the test (``test_fraction``, 0.3). The last ``calibration`` share (0.25) of the training
period is where the operating threshold is chosen (see :mod:`models.training`).

Known compromised cards (:func:`known_compromised_mask`, the handbook's protocol): a card with a
fraud on a day in ``[first training day, test day - delay days - 1]`` is known to be compromised on
that test day (it would be blocked), so its transactions are left out of that day's evaluation.

Prequential (:func:`prequential_stream`): the rows are streamed in event-time order; each model
predicts BEFORE it learns, and a transaction's label becomes available only ``label_delay`` after
the transaction (labels due at or before a transaction's time are learned before it is scored).
Unsupervised models observe every transaction after scoring it, as the worker does. A batch model
cannot learn one label at a time: :func:`prequential_refit` refits it every ``refit_every`` (one
day) on the labels due by then, over a sliding window as long as the training period, and scores
the next period with that fit (on the handbook split its first fit is the holdout fit).

Prequential folds (:func:`prequential_folds`, the handbook's ``prequentialSplit``): fold ``i`` is
the split moved back by ``i`` test lengths; a model is judged by the mean over the folds.

>>> import numpy as np
>>> t = np.arange(0, 20 * 86400, 3600.0)  # 20 days, hourly
>>> s = time_split(t, delay_s=2 * 86400, test_fraction=0.25)
>>> [round(v / 86400, 2) for v in (s.train_start, s.train_end, s.test_start, s.test_end)]
[0.0, 12.97, 14.97, 19.96]
>>> train, gap, test = s.masks(t)
>>> int(train.sum()), int(gap.sum()), int(test.sum())
(312, 48, 120)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from fraudstream.errors import ConfigError, DataError
from fraudstream.progress import Tracker
from models.zoo import Model

__all__ = [
    "DAY",
    "TimeSplit",
    "day_numbers",
    "known_compromised_mask",
    "parse_time",
    "prequential_folds",
    "prequential_refit",
    "prequential_stream",
    "time_split",
]

DAY = 86400.0


def parse_time(value: str | float | datetime | pd.Timestamp | None) -> float | None:
    """Epoch seconds (UTC) of a date, a datetime, an ISO string or a number; None stays None.

    >>> parse_time("2018-07-25"), parse_time("2018-07-25T12:00:00Z")
    (1532476800.0, 1532520000.0)
    >>> parse_time("soon")
    Traceback (most recent call last):
    ...
    fraudstream.errors.ConfigError: not a date: 'soon' (use e.g. 2018-07-25 or 2018-07-25T12:00)
    """
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"not a date: {value!r} (use e.g. 2018-07-25 or 2018-07-25T12:00)") from None
    if ts is pd.NaT:
        raise ConfigError(f"not a date: {value!r}")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.value / 1e9


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def day_numbers(t: np.ndarray) -> np.ndarray:
    """UTC day numbers since the epoch of epoch-second times.

    >>> day_numbers(np.array([0.0, 86399.9, 86400.0])).tolist()
    [0, 0, 1]
    """
    return np.floor(np.asarray(t, dtype=float) / DAY).astype(np.int64)


@dataclass(frozen=True)
class TimeSplit:
    """``train [train_start, train_end) | delay | test [test_start, test_end)``, epoch seconds."""

    train_start: float
    train_end: float
    test_start: float
    test_end: float
    delay_s: float
    calibration: float = 0.25

    @property
    def calibration_start(self) -> float:
        """Start of the last ``calibration`` share of the training period."""
        return self.train_end - self.calibration * (self.train_end - self.train_start)

    @property
    def train_length_s(self) -> float:
        return self.train_end - self.train_start

    def masks(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boolean masks (train, gap, test) over event times ``t``."""
        train = (t >= self.train_start) & (t < self.train_end)
        gap = (t >= self.train_end) & (t < self.test_start)
        test = (t >= self.test_start) & (t < self.test_end)
        return train, gap, test

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_start": _iso(self.train_start), "train_end": _iso(self.train_end),
            "test_start": _iso(self.test_start), "test_end": _iso(self.test_end),
            "label_delay_s": self.delay_s, "train_days": round(self.train_length_s / DAY, 4),
            "test_days": round((self.test_end - self.test_start) / DAY, 4),
            "calibration_start": _iso(self.calibration_start),
        }


def prequential_folds(split: TimeSplit, folds: int) -> list[TimeSplit]:
    """``split`` and the ``folds - 1`` splits before it, each moved back by one test length.

    The handbook's prequential split (``prequentialSplit``, chapter 5): fold ``i`` trains from
    ``train_start - i * test length``, keeps the same delay, and is assessed on the test period
    ``i`` lengths earlier. Fold 0 is ``split`` itself.

    >>> s = TimeSplit(21 * DAY, 28 * DAY, 35 * DAY, 42 * DAY, 7 * DAY)
    >>> [(f.train_start / DAY, f.test_start / DAY) for f in prequential_folds(s, 3)]
    [(21.0, 35.0), (14.0, 28.0), (7.0, 21.0)]
    >>> prequential_folds(s, 0)
    Traceback (most recent call last):
    ...
    fraudstream.errors.ConfigError: a prequential estimate needs at least one fold
    """
    if folds < 1:
        raise ConfigError("a prequential estimate needs at least one fold")
    out = []
    for k in range(folds):
        d = k * (split.test_end - split.test_start)
        out.append(TimeSplit(split.train_start - d, split.train_end - d, split.test_start - d,
                             split.test_end - d, split.delay_s, split.calibration))
    return out


def time_split(
    t: np.ndarray,
    *,
    delay_s: float,
    train_start: float | None = None,
    train_days: float | None = None,
    test_start: float | None = None,
    test_days: float | None = None,
    test_fraction: float = 0.3,
    calibration: float = 0.25,
) -> TimeSplit:
    """The split of event times ``t`` (epoch seconds); see the module doc for the rules.

    Raises ConfigError when the bounds are inconsistent, DataError when a part holds no row.
    """
    t = np.asarray(t, dtype=float)
    if t.size == 0:
        raise DataError("no transactions to split")
    if delay_s < 0:
        raise ConfigError("the label delay must not be negative")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test fraction must be in (0, 1), not {test_fraction}")
    if not 0.0 < calibration < 1.0:
        raise ConfigError(f"calibration share must be in (0, 1), not {calibration}")
    for name, v in (("train days", train_days), ("test days", test_days)):
        if v is not None and v <= 0:
            raise ConfigError(f"{name} must be positive, not {v}")
    lo, hi = float(t.min()), float(np.nextafter(t.max(), math.inf))
    if test_start is None:
        if train_start is not None and train_days is not None:
            test_start = train_start + train_days * DAY + delay_s
        else:
            test_start = lo + (1.0 - test_fraction) * (hi - lo)
    train_end = test_start - delay_s
    if train_start is None:
        train_start = train_end - train_days * DAY if train_days is not None else lo
    elif train_days is not None and abs(train_start + train_days * DAY - train_end) > 1e-6:
        raise ConfigError("train start + train days + label delay must equal the test start; "
                          "give two of them")
    test_end = test_start + test_days * DAY if test_days is not None else hi
    if train_end <= train_start:
        raise ConfigError(f"no training period: it would end ({_iso(train_end)}) before it "
                          f"starts ({_iso(train_start)}); shorten the label delay or move the test")
    if test_end <= test_start:
        raise ConfigError("the test period is empty: the test starts after the data ends")
    split = TimeSplit(train_start, train_end, test_start, test_end, float(delay_s), calibration)
    train, _, test = split.masks(t)
    if not train.any():
        raise DataError(f"no transaction in the training period {_iso(train_start)} .. "
                        f"{_iso(train_end)}")
    if not test.any():
        raise DataError(f"no transaction in the test period {_iso(test_start)} .. {_iso(test_end)}")
    return split


def known_compromised_mask(
    cards: Sequence[Any] | np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    *,
    train_start: float,
    delay_s: float,
) -> np.ndarray:
    """True for each row whose card is KNOWN compromised on the row's day (to leave out).

    Known on day ``T``: the card had a fraud on a day in ``[day(train_start), T - delay days - 1]``
    (the handbook's rule; ``delay days`` = whole days of the label delay).

    >>> t = np.array([0, 1, 2, 8, 9, 9, 10]) * DAY + 3600
    >>> cards = np.array(["a", "b", "c", "a", "b", "c", "c"])
    >>> y = np.array([1, 0, 0, 0, 1, 0, 0])
    >>> known_compromised_mask(cards, t, y, train_start=0.0, delay_s=7 * DAY).tolist()
    [False, False, False, True, False, False, False]

    Card a's fraud on day 0 is known from day 8 (0 + 7 + 1); b's fraud on day 9 is not known to
    itself, and c never had one.
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y).astype(bool)
    days = day_numbers(t)
    first_day = int(day_numbers(np.array([train_start]))[0])
    delay_days = int(math.floor(delay_s / DAY + 1e-9))
    codes, _ = pd.factorize(pd.Series(np.asarray(cards, dtype=object)))
    fraud_rows = y & (days >= first_day) & (codes >= 0)
    big = np.iinfo(np.int64).max
    first_fraud = np.full(int(codes.max()) + 1 if codes.size else 0, big, dtype=np.int64)
    np.minimum.at(first_fraud, codes[fraud_rows], days[fraud_rows])
    ff = np.where(codes >= 0, first_fraud[np.maximum(codes, 0)], big)
    return ff <= days - delay_days - 1


def _records(X: pd.DataFrame, rows: np.ndarray) -> list[dict[str, Any]]:
    return X.iloc[rows].to_dict("records")


def prequential_stream(
    model: Model,
    X: pd.DataFrame,
    y: np.ndarray,
    t: np.ndarray,
    rows: np.ndarray,
    *,
    delay_s: float,
    frozen_from: float | None = None,
    tracker: Tracker | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Stream ``rows`` (positions in event-time order) through a zoo model; scores per row.

    Each row is scored before any label that is not yet due; labels become due ``delay_s`` after
    their transaction and are learned before the first row at or after that time. From
    ``frozen_from`` on (holdout's test period) the model neither learns nor observes.
    """
    rows = np.asarray(rows, dtype=np.int64)
    tr = np.asarray(t, dtype=float)[rows]
    if np.any(np.diff(tr) < 0):
        raise DataError("rows must be in event-time order")
    yr = np.asarray(y).astype(bool)[rows]
    records = _records(X, rows)
    due = tr + float(delay_s)
    scores = np.empty(len(rows))
    frozen = math.inf if frozen_from is None else float(frozen_from)
    observe = model.unsupervised
    j = 0
    n = len(rows)
    every = max(1, min(5000, n // 50 or 1))
    lo, width = span[0], span[1] - span[0]
    for i in range(n):
        now = tr[i]
        until = now if now < frozen else frozen  # frozen: what was due when it froze, no more
        while j < i and due[j] <= until and tr[j] < frozen:
            model.learn_one(records[j], bool(yr[j]))
            j += 1
        x = records[i]
        scores[i] = model.predict_proba_one(x)
        if observe and now < frozen:
            model.observe_one(x)
        if tracker is not None and i % every == 0:
            tracker.step(lo + width * i / n, f"{model.name}: {i:,} of {n:,} transactions")
    return scores


def prequential_refit(
    make: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    t: np.ndarray,
    rows: np.ndarray,
    *,
    delay_s: float,
    window_s: float,
    start: float,
    refit_every_s: float = DAY,
    history_start: float | None = None,
    tracker: Tracker | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Scores of ``rows`` (from ``start`` on) by a batch model refitted every ``refit_every_s``.

    ``make()`` returns a fresh unfitted :class:`~models.batch.BatchModel`. At each boundary ``B``
    (``start``, ``start + refit_every_s``, ...) it is fitted on the transactions with
    ``B - delay - window <= t`` and ``t + delay <= B`` (labels due by ``B``; none before
    ``history_start``) and scores the rows of ``[B, B + refit_every_s)``. Returns the scores and
    one record per fit (bounds, rows, frauds).
    """
    t = np.asarray(t, dtype=float)
    yv = np.asarray(y).astype(int)
    rows = np.asarray(rows, dtype=np.int64)
    tr = t[rows]
    scores = np.full(len(rows), np.nan)
    fits: list[dict[str, Any]] = []
    if not len(rows):
        return scores, fits
    end = float(tr.max())
    n_fits = int(math.floor((end - start) / refit_every_s)) + 1
    floor_t = -math.inf if history_start is None else history_start
    for k in range(n_fits):
        b = start + k * refit_every_s
        seg = (tr >= b) & (tr < b + refit_every_s)
        if not seg.any():
            continue
        lo_t = max(b - delay_s - window_s, floor_t)
        fit_rows = np.flatnonzero((t >= lo_t) & (t + delay_s <= b))
        model = make()
        model.fit(X.iloc[fit_rows], yv[fit_rows])
        scores[seg] = model.predict_proba(X.iloc[rows[seg]])
        fits.append({"at": _iso(b), "from": _iso(lo_t), "rows": int(len(fit_rows)),
                     "frauds": int(yv[fit_rows].sum()), "scored": int(seg.sum())})
        if tracker is not None:
            frac = span[0] + (span[1] - span[0]) * (k + 1) / n_fits
            tracker.step(frac, f"{model.name}: refit {k + 1} of {n_fits}")
    return scores, fits
