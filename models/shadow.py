"""What each model said when a transaction was scored, kept until the transaction's label arrives.

The learner judges a challenger against the champion on these LIVE predictions, not on
predictions made when the label arrives. Labels arrive with class-dependent delays (analyst
verdicts in hours, chargebacks in weeks, genuine transactions when they mature after a week), so
a model asked at label time has already learned from labels of transactions that happened AFTER
the one it is judged on, and the set of labels it is judged on is not a sample of live traffic.

Two parts:

- :class:`LiveRanks`: a model's recent live scores (the latest ``size`` scored transactions) and
  the ALERT RANK of a score among them: the share of live traffic the model scored higher (ties
  count half). A fraud at rank 0.004 would have been in the top 1 % of alerts. Ranks compare
  models whose scores are on different scales, and they need no genuine labels: the live
  traffic is the reference (with about 1 % fraud in it, for every model alike).
- :class:`ShadowBook`: per transaction id, each model's live score and alert rank, in a bounded
  ring (the oldest transactions are forgotten first), for :meth:`ShadowBook.pop` when the label
  comes. Models are columns, rows are transactions: about 40 bytes a transaction for four models
  plus the id.

>>> ranks = LiveRanks(size=1000, refresh=1)
>>> for s in range(1000):
...     ranks.add(s / 1000)
>>> ranks.rank(0.995), ranks.rank(0.5), ranks.rank(2.0)
(0.0045, 0.4995, 0.0)
>>> book = ShadowBook(keep=3)
>>> for i in range(4):
...     book.record(str(i), {"champion": (0.1 * i, 0.5), "drift-1": (0.2, 0.01)})
>>> book.pop("0") is None, book.pop("3")  # "0" was forgotten: only 3 are kept
(True, {'champion': (0.3, 0.5), 'drift-1': (0.2, 0.01)})
>>> book.pop("3"), len(book)
(None, 2)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Mapping

import numpy as np

from models.metrics import average_precision, roc_auc

__all__ = ["LiveComparison", "LiveRanks", "ShadowBook", "sign_test"]


class LiveRanks:
    """The latest ``size`` live scores of one model; the alert rank of a score among them.

    The sorted reference is rebuilt every ``refresh`` scores (amortised: a sort of ``size``
    floats per ``refresh`` additions), so a rank lags the newest ``refresh`` scores. A rank is
    ``nan`` until ``min_count`` scores were seen.
    """

    def __init__(self, size: int = 20_000, refresh: int = 500, min_count: int = 1000) -> None:
        if size < 1 or refresh < 1:
            raise ValueError("size and refresh must be >= 1")
        self.size = size
        self.refresh = refresh
        self.min_count = min(min_count, size)
        self._recent: deque[float] = deque(maxlen=size)
        self._sorted = np.empty(0)
        self._since = 0

    def __len__(self) -> int:
        return len(self._recent)

    def add(self, score: float) -> None:
        self._recent.append(score)
        self._since += 1
        if self._since >= self.refresh or len(self._sorted) < self.min_count:
            self._sorted = np.sort(np.fromiter(self._recent, float, len(self._recent)))
            self._since = 0

    def rank(self, score: float) -> float:
        """The share of the reference scored above ``score`` (ties half); nan while too few."""
        ref = self._sorted
        n = len(ref)
        if n < self.min_count or score != score:
            return math.nan
        above = n - int(np.searchsorted(ref, score, side="right"))
        ties = int(np.searchsorted(ref, score, side="right") - np.searchsorted(ref, score, side="left"))
        return (above + 0.5 * ties) / n

    def clear(self) -> None:
        self._recent.clear()
        self._sorted = np.empty(0)
        self._since = 0


class ShadowBook:
    """Live ``(score, alert rank)`` per model and transaction, for the latest ``keep`` transactions.

    Models are named by any hashable key (the learner uses its slots' ids). A key seen for the
    first time gets a column; :meth:`forget` frees a model's column (its entries are erased).
    """

    def __init__(self, keep: int = 200_000) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.keep = keep
        self._row: dict[str, int] = {}
        self._ids: list[str | None] = [None] * keep
        self._next = 0
        self._cols: dict[Hashable, int] = {}
        self._free: list[int] = []
        self._score = np.full((keep, 0), np.nan, dtype=np.float32)
        self._rank = np.full((keep, 0), np.nan, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._row)

    def _column(self, key: Hashable) -> int:
        col = self._cols.get(key)
        if col is not None:
            return col
        if not self._free:
            width = self._score.shape[1]
            grow = np.full((self.keep, max(2, width)), np.nan, dtype=np.float32)
            self._score = np.hstack([self._score, grow])
            self._rank = np.hstack([self._rank, grow.copy()])
            self._free = list(range(self._score.shape[1] - 1, width - 1, -1))
        col = self._free.pop()
        self._score[:, col] = np.nan
        self._rank[:, col] = np.nan
        self._cols[key] = col
        return col

    def models(self) -> list[Hashable]:
        """The models with a column."""
        return list(self._cols)

    def forget(self, key: Hashable) -> None:
        """Drop a model (it no longer exists): its column is erased and reused."""
        col = self._cols.pop(key, None)
        if col is not None:
            self._free.append(col)

    def record(self, transaction_id: str, said: Mapping[Hashable, tuple[float, float]]) -> None:
        """What each model said about one transaction: ``{model: (score, alert rank)}``."""
        tid = str(transaction_id)
        row = self._row.get(tid)
        if row is None:
            row = self._next
            self._next = (row + 1) % self.keep
            old = self._ids[row]
            if old is not None:
                del self._row[old]
            self._ids[row] = tid
            self._row[tid] = row
            self._score[row, :] = np.nan
            self._rank[row, :] = np.nan
        for key, (score, rank) in said.items():
            col = self._column(key)
            self._score[row, col] = score
            self._rank[row, col] = rank

    def pop(self, transaction_id: str) -> dict[Hashable, tuple[float, float]] | None:
        """What the models said about a transaction (then forgotten); None when not kept."""
        tid = str(transaction_id)
        row = self._row.pop(tid, None)
        if row is None:
            return None
        self._ids[row] = None
        scores, ranks = self._score[row], self._rank[row]
        return {
            key: (round(float(scores[col]), 6), round(float(ranks[col]), 6))
            for key, col in self._cols.items()
            if scores[col] == scores[col]
        }


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign test: P(at least ``wins`` of ``wins + losses`` fair coin flips).

    >>> round(sign_test(9, 1), 4), sign_test(0, 0), round(sign_test(3, 3), 4)
    (0.0107, 1.0, 0.6562)
    """
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2.0**n


class LiveComparison:
    """A challenger against the champion on their live predictions, over the latest labels.

    :meth:`add` one labelled transaction both models scored live: its label, each model's
    score and alert rank at scoring time. :meth:`verdict` compares them over the latest
    ``window`` such labels with one of these metrics:

    - ``alert_recall``: the share of the frauds among them that each model put in its top
      ``alert_share`` of live traffic (alert rank below it): the frauds an alert budget of that
      share would have caught. Needs no genuine labels (live traffic is the reference), so it
      can judge a challenger days before genuine labels of its own time mature. The challenger
      wins by at least ``margin``, and the frauds only it caught must outnumber those only the
      champion caught beyond chance (one-sided exact sign test, p <= ``alpha``);
    - ``average_precision``, ``roc_auc``: on the labelled transactions themselves (both classes
      needed), the challenger ahead by at least ``margin``.

    >>> c = LiveComparison(window=100)
    >>> for i in range(40):  # 40 frauds: the challenger ranks 30 in its top 1 %, the champion 10
    ...     c.add(True, 0.5, 0.9, 0.005 if i < 10 else 0.2, 0.005 if i < 30 else 0.3)
    >>> v = c.verdict("alert_recall", margin=0.02, min_positives=30, alert_share=0.01, alpha=0.05)
    >>> v["champion_value"], v["challenger_value"], v["only_challenger"], v["only_champion"], v["wins"]
    (0.25, 0.75, 20, 0, True)
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self._rows: deque[tuple[bool, float, float, float, float]] = deque(maxlen=window)

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, y: bool, champion_score: float, challenger_score: float,
            champion_rank: float, challenger_rank: float) -> None:
        self._rows.append((bool(y), champion_score, challenger_score, champion_rank, challenger_rank))

    def clear(self) -> None:
        self._rows.clear()

    def verdict(self, metric: str, *, margin: float, min_positives: int, alert_share: float = 0.01,
                alpha: float = 0.05) -> dict[str, object]:
        rows = np.array(self._rows, dtype=float).reshape(-1, 5)
        y = rows[:, 0] > 0.5
        out: dict[str, object] = {"metric": metric, "judged_on": "live scores", "labels": len(rows),
                                  "positives": int(y.sum())}
        if metric == "alert_recall":
            fr = rows[y]
            fr = fr[~np.isnan(fr[:, 3]) & ~np.isnan(fr[:, 4])]
            champ, chal = fr[:, 3] < alert_share, fr[:, 4] < alert_share
            n = len(fr)
            only_chal, only_champ = int((chal & ~champ).sum()), int((champ & ~chal).sum())
            cv = float(champ.mean()) if n else math.nan
            hv = float(chal.mean()) if n else math.nan
            p_value = sign_test(only_chal, only_champ)
            ready = n >= min_positives
            wins = ready and hv - cv >= margin and p_value <= alpha
            out.update(positives=n, alert_share=alert_share, only_challenger=only_chal,
                       only_champion=only_champ, p_value=round(p_value, 6), alpha=alpha)
        elif metric in ("average_precision", "roc_auc"):
            fn = average_precision if metric == "average_precision" else roc_auc
            positives, negatives = int(y.sum()), int((~y).sum())
            ready = positives >= min_positives and negatives >= min_positives
            cv = fn(y, rows[:, 1]) if ready else math.nan
            hv = fn(y, rows[:, 2]) if ready else math.nan
            wins = ready and hv - cv >= margin
        else:
            raise ValueError(f"unknown metric {metric!r}; known: alert_recall, average_precision, roc_auc")
        out.update(champion_value=None if cv != cv else round(cv, 6),
                   challenger_value=None if hv != hv else round(hv, 6),
                   margin=margin, ready=bool(ready), wins=bool(wins))
        return out
