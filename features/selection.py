"""Feature selection: correlated pairs, importance, L1 and recursive elimination, as one table.

:func:`select_features` takes a feature frame and the labels, in time order, and returns a plain
dict (the API returns it as JSON; the CLI prints it with :func:`format_table`):

* **correlation**: Pearson correlation on the training part; pairs above the threshold are
  flagged, and of each pair the feature with the lower permutation importance is dropped;
* **importance**: a random forest's impurity importance, and its permutation importance on the
  later (validation) part, scored by average precision;
* **L1**: an L1-penalised logistic regression on standardised features; a zero coefficient means
  the feature adds nothing the others do not already give;
* **recursive elimination**: the rank in which RFE with a logistic regression would keep features.

A feature is ``selected`` when it survives the correlation filter and either its permutation
importance is positive or its L1 coefficient is not zero. Missing values are imputed with the
training medians. The split is in time: the first ``train_fraction`` of the rows train, the rest
validate, so no feature is judged on the past it was fitted on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fraudstream.errors import DataError

__all__ = ["format_table", "select_features"]


def select_features(
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    corr_threshold: float = 0.9,
    method: str = "both",
    max_rows: int = 200_000,
    train_fraction: float = 0.7,
    l1_c: float = 0.05,
    n_repeats: int = 3,
    seed: int = 7,
) -> dict[str, Any]:
    """Selection report for ``X`` (rows in time order) and 0/1 labels ``y``; see the module."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.feature_selection import RFE
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.preprocessing import StandardScaler

    if method not in ("l1", "rfe", "both"):
        raise DataError(f"method must be l1, rfe or both, not {method!r}")
    if not 0 < corr_threshold <= 1:
        raise DataError(f"correlation threshold must be in (0, 1], not {corr_threshold}")
    if len(X) != len(y):
        raise DataError(f"{len(X)} feature rows but {len(y)} labels")
    X = X.apply(pd.to_numeric, errors="coerce").astype(float)
    labels = pd.to_numeric(pd.Series(np.asarray(y)), errors="coerce").to_numpy(dtype=float)
    keep = ~np.isnan(labels)
    X, labels = X.loc[keep].reset_index(drop=True), labels[keep].astype(int)
    if max_rows and len(X) > max_rows:  # an even thinning keeps the time order
        idx = np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))
        X, labels = X.iloc[idx].reset_index(drop=True), labels[idx]
    cut = int(len(X) * train_fraction)
    y_tr, y_va = labels[:cut], labels[cut:]
    for part, yy in (("training", y_tr), ("validation", y_va)):
        if len(np.unique(yy)) < 2:
            raise DataError(f"the {part} part ({len(yy)} rows) needs both classes")
    constant = [c for c in X.columns if X[c].iloc[:cut].nunique(dropna=True) <= 1]
    names = [c for c in X.columns if c not in constant]
    if not names:
        raise DataError("every feature is constant or missing on the training part")
    med = X[names].iloc[:cut].median()
    Xi = X[names].fillna(med)
    X_tr, X_va = Xi.iloc[:cut].to_numpy(), Xi.iloc[cut:].to_numpy()

    corr = np.corrcoef(X_tr, rowvar=False) if len(names) > 1 else np.ones((1, 1))
    pairs = [
        {"a": names[i], "b": names[j], "r": float(corr[i, j])}
        for i in range(len(names)) for j in range(i + 1, len(names))
        if abs(corr[i, j]) > corr_threshold
    ]
    pairs.sort(key=lambda p: -abs(p["r"]))

    forest = RandomForestClassifier(n_estimators=100, max_depth=12, min_samples_leaf=5,
                                    class_weight="balanced_subsample", n_jobs=2, random_state=seed)
    forest.fit(X_tr, y_tr)
    ap = float(average_precision_score(y_va, forest.predict_proba(X_va)[:, 1]))
    perm = permutation_importance(forest, X_va, y_va, scoring="average_precision",
                                  n_repeats=n_repeats, random_state=seed, n_jobs=1)

    scaler = StandardScaler().fit(X_tr)
    Z_tr = scaler.transform(X_tr)
    l1: np.ndarray | None = None
    ranks: np.ndarray | None = None
    if method in ("l1", "both"):
        lasso = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=l1_c,
                                   class_weight="balanced", max_iter=1000)
        lasso.fit(Z_tr, y_tr)
        l1 = lasso.coef_[0]
    if method in ("rfe", "both"):
        n = min(len(Z_tr), 50_000)
        rfe = RFE(LogisticRegression(class_weight="balanced", max_iter=1000),
                  n_features_to_select=1, step=1).fit(Z_tr[:n], y_tr[:n])
        ranks = rfe.ranking_

    perm_mean = dict(zip(names, perm.importances_mean.tolist(), strict=True))
    dropped: dict[str, str] = {}
    for p in pairs:
        a, b = p["a"], p["b"]
        if a in dropped or b in dropped:
            continue
        loser, winner = (a, b) if perm_mean[a] < perm_mean[b] else (b, a)
        dropped[loser] = winner
    rows = []
    for i, name in enumerate(names):
        useful = bool(perm_mean[name] > 0 or (l1 is not None and abs(l1[i]) > 0))
        rows.append({
            "feature": name,
            "tree_importance": float(forest.feature_importances_[i]),
            "permutation_importance": perm_mean[name],
            "permutation_std": float(perm.importances_std[i]),
            "l1_coef": None if l1 is None else float(l1[i]),
            "rfe_rank": None if ranks is None else int(ranks[i]),
            "correlated_with": sorted({p["b"] if p["a"] == name else p["a"]
                                       for p in pairs if name in (p["a"], p["b"])}),
            "selected": name not in dropped and useful,
        })
    rows.sort(key=lambda r: -r["permutation_importance"])
    return {
        "rows": int(len(X)),
        "train_rows": int(cut),
        "validation_rows": int(len(X) - cut),
        "positives": int(labels.sum()),
        "validation_average_precision": ap,
        "features": rows,
        "correlated_pairs": pairs,
        "dropped_for_correlation": dropped,
        "dropped_constant": constant,
        "selected": [r["feature"] for r in rows if r["selected"]],
        "params": {"corr_threshold": corr_threshold, "method": method, "max_rows": max_rows,
                   "train_fraction": train_fraction, "l1_c": l1_c, "n_repeats": n_repeats,
                   "seed": seed},
    }


def format_table(result: dict[str, Any]) -> str:
    """The selection report as a text table (one line per feature), then the correlated pairs."""
    head = (f"{'feature':<38} {'tree':>7} {'perm AP':>9} {'± std':>7} {'L1 coef':>8} "
            f"{'RFE':>4}  selected  correlated with")
    lines = [head, "-" * len(head)]
    for r in result["features"]:
        l1 = "" if r["l1_coef"] is None else f"{r['l1_coef']:8.3f}"
        rfe = "" if r["rfe_rank"] is None else f"{r['rfe_rank']:4d}"
        lines.append(
            f"{r['feature']:<38} {r['tree_importance']:7.4f} {r['permutation_importance']:9.4f} "
            f"{r['permutation_std']:7.4f} {l1:>8} {rfe:>4}  {'yes' if r['selected'] else 'no':<8}  "
            f"{', '.join(r['correlated_with'])}")
    for name in result["dropped_constant"]:
        lines.append(f"{name:<38} constant or missing on the training part: dropped")
    lines.append("")
    lines.append(f"pairs with |r| > {result['params']['corr_threshold']}: "
                 + ("; ".join(f"{p['a']} ~ {p['b']} ({p['r']:.3f})" for p in result["correlated_pairs"])
                    or "none"))
    lines.append(f"rows {result['rows']} (train {result['train_rows']}, validation "
                 f"{result['validation_rows']}), positives {result['positives']}, random forest "
                 f"validation AP {result['validation_average_precision']:.3f}; "
                 f"selected {len(result['selected'])} of {len(result['features'])}")
    return "\n".join(lines)
