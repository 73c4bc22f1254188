"""Reason codes: the features that pushed one transaction's score up most, per model kind.

Every scored event carries the top three, as :class:`stream.schemas.Reason` (feature, value,
contribution); only features with a POSITIVE contribution are reasons (a feature that lowered the
score is not why a transaction was flagged), so fewer than three may come back. Each model kind
measures a contribution its own way, always on the features the model actually saw (``None`` and
non-finite values dropped, see :mod:`models.zoo`); the value reported is the caller's value:

``logreg`` (StandardScaler | LogisticRegression)
    ``weight_j * z_j`` with ``z_j = (x_j - mean_j) / std_j`` from the online scaler: the feature's
    exact additive share of the logit relative to an average transaction (a missing feature is at
    its mean, so it contributes 0). Units: log-odds.
``hat`` and ``arf`` (Hoeffding trees)
    path attribution (Saabas): walk the transaction's path from the root; at each split on feature
    ``f`` add ``P(fraud | child) - P(fraud | node)``, both from the class counts the nodes hold. The
    contributions add up to ``P(fraud | leaf) - P(fraud | root)``. A missing split feature follows
    the most travelled branch and is credited with value ``None``. ARF averages over its trees
    (their branches keep the counts from when they split, so for ARF it is an approximation of the
    vote). Units: probability.
``hst`` (half-space trees)
    perturbation: ``score(x) - score(x with x_j replaced by its running mean)``, for every feature
    tested on the transaction's paths (a feature no tree tests on the path cannot change the score),
    on River's raw score, before the quantile calibration of :mod:`models.zoo`. Units: raw
    anomaly score.
``rules``
    the rules that fired, each with its current weight (its estimated fraud probability when it
    fires); the feature is the rule's name, the value the feature's value.
combinations
    ``feature`` mode (the anomaly score is an input of the supervised model): the supervised
    model's reasons, where ``anomaly_score`` itself may be one. ``blend`` mode: the reasons of the
    part with the larger weighted share of the score, scaled by its weight.

The functions here take River objects and plain dicts, so they can be reused and benchmarked
alone; :mod:`models.zoo` wires them into each model's ``explain_one``.

>>> contributions = {"amount": 1.2, "night": -0.3, "card_nb_tx_1d": 0.4, "terminal_risk": 0.0}
>>> [(r.feature, r.value, r.contribution) for r in top_reasons(contributions, {"amount": 310.0}, k=3)]
[('amount', 310.0, 1.2), ('card_nb_tx_1d', None, 0.4)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from river.tree.base import Branch

from stream.schemas import Reason

__all__ = [
    "Reason",
    "hst_contributions",
    "linear_contributions",
    "perturbation_contributions",
    "top_reasons",
    "tree_path_contributions",
]


def top_reasons(
    contributions: Mapping[str, float], values: Mapping[str, Any], k: int = 3
) -> list[Reason]:
    """The ``k`` largest positive contributions as reasons, largest first.

    ``values`` gives each feature's value as the caller sent it (``None`` when absent or not a
    number). Ties are broken by feature name, so the answer is deterministic.
    """
    if k <= 0:
        return []
    best = sorted([(-c, f) for f, c in contributions.items() if c > 0.0])[:k]
    return [
        Reason(feature=f, value=_number(values.get(f)), contribution=float(-c)) for c, f in best
    ]


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, str):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def linear_contributions(
    x: Mapping[str, float], weights: Any, means: Mapping[str, float], variances: Mapping[str, float]
) -> dict[str, float]:
    """``w_j * (x_j - mean_j) / std_j`` for each feature of ``x`` (0 when the variance is 0).

    ``weights`` is anything with ``.get(name, default)`` (River's VectorDict); ``means`` and
    ``variances`` are a River StandardScaler's ``means`` and ``vars`` (read, never written).

    >>> linear_contributions({"a": 3.0, "b": 1.0}, {"a": 0.5, "b": 2.0}, {"a": 1.0, "b": 1.0},
    ...                      {"a": 4.0, "b": 0.0})
    {'a': 0.5, 'b': 0.0}
    """
    out = {}
    for f, xf in x.items():
        v = variances.get(f, 0.0)
        out[f] = weights.get(f, 0.0) * (xf - means.get(f, 0.0)) / math.sqrt(v) if v > 0.0 else 0.0
    return out


def _p_fraud(stats: Mapping[Any, float] | None) -> float | None:
    if not stats:
        return None
    if len(stats) <= 2:  # the common case: {False: n0, True: n1}
        pos = stats.get(True, 0.0)
        total = pos + stats.get(False, 0.0)
    else:
        pos = stats.get(True, 0.0)
        total = sum(stats.values())
    if total <= 0.0:
        return None
    return float(pos) / total


def tree_path_contributions(
    root: Any, x: Mapping[str, float], out: dict[str, float] | None = None, scale: float = 1.0
) -> dict[str, float]:
    """Saabas path attribution of one River Hoeffding tree, added into ``out`` times ``scale``.

    At each split on feature ``f`` along the path of ``x``: ``P(fraud | child) - P(fraud | node)``
    from the nodes' class counts. A missing split feature follows the most travelled branch.
    """
    if out is None:
        out = {}
    node = root
    if node is None:
        return out
    p_prev = _p_fraud(getattr(node, "stats", None))
    while isinstance(node, Branch):
        feature = node.feature  # type: ignore[attr-defined]  # every River split has one
        try:
            child = node.next(x)
        except KeyError:
            _, child = node.most_common_path()
        p = _p_fraud(getattr(child, "stats", None))
        if p is not None:
            if p_prev is not None:
                out[feature] = out.get(feature, 0.0) + scale * (p - p_prev)
            p_prev = p
        node = child
    return out


def perturbation_contributions(
    score: Callable[[dict[str, float]], float],
    x: dict[str, float],
    baseline: Mapping[str, float],
    features: Iterable[str],
) -> dict[str, float]:
    """``score(x) - score(x with x_j := baseline_j)`` for each of ``features`` present in both.

    >>> perturbation_contributions(lambda d: d["a"] * 2 + d["b"], {"a": 1.0, "b": 5.0},
    ...                            {"a": 0.0, "b": 5.0}, ["a", "b", "c"])
    {'a': 2.0, 'b': 0.0}
    """
    base = score(x)
    out = {}
    for f in features:
        if f not in x or f not in baseline:
            continue
        old = x[f]
        x[f] = baseline[f]
        try:
            out[f] = base - score(x)
        finally:
            x[f] = old
    return out


def hst_contributions(
    hst: Any, xs: Mapping[str, float], baseline: Mapping[str, float]
) -> dict[str, float]:
    """Per-feature perturbation of River's HalfSpaceTrees, computed tree by tree.

    Exactly ``score(xs) - score(xs with xs_j := baseline_j)`` for every feature j of ``xs`` that
    has a baseline (``xs`` already min-max scaled, as the trees see it), without re-scoring the
    whole forest per feature: a tree's walk with the perturbed value is identical up to the first
    node on the path where the perturbed value takes the other branch, so only the rest of that
    walk is recomputed, and only in trees where it diverges. Mirrors River's scoring walk (the
    walk stops where a node's reference mass is below ``0.1 * window_size``).
    """
    if getattr(hst, "_first_window", True) or not hst.trees:
        return {}
    size_limit = 0.1 * hst.window_size
    height = hst.height
    max_score = hst._max_score
    deltas: dict[str, float] = {}
    for root in hst.trees:
        # the original walk: nodes visited, and the running score after each
        node = root
        depth_pow = 1
        score = 0.0
        path = []
        for level in range(height):
            r = node.r_mass
            score += r * depth_pow
            if r < size_limit:
                break
            path.append((node, level, score))
            node = node.next(xs)
            depth_pow <<= 1
        else:
            score += node.r_mass * depth_pow
        done: set[str] = set()
        for node, level, partial in path:
            f = node.feature
            if f in done or f not in xs or f not in baseline:
                continue
            b = baseline[f]
            if (xs[f] < node.threshold) == (b < node.threshold):
                continue  # same branch here: the walks have not diverged yet
            done.add(f)
            # diverged at this node: finish the perturbed walk from the other child
            left, right = node.children
            nxt = left if b < node.threshold else right
            pert = partial
            dp = 1 << (level + 1)
            for _ in range(level + 1, height):
                r = nxt.r_mass
                pert += r * dp
                if r < size_limit:
                    break
                g = nxt.feature
                v = b if g == f else xs.get(g)
                if v is None:
                    lo, hi = nxt.children
                    nxt = hi if lo.l_mass < hi.l_mass else lo
                else:
                    nxt = nxt.children[0] if v < nxt.threshold else nxt.children[1]
                dp <<= 1
            else:
                pert += nxt.r_mass * dp
            # anomaly score = 1 - total / max: a lower perturbed mass means x_j made it MORE normal
            deltas[f] = deltas.get(f, 0.0) + (pert - score) / max_score
    return deltas
