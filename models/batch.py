"""Batch models: scikit-learn, LightGBM and XGBoost classifiers behind the zoo's :class:`Model`.

A batch model is fitted once on a table (:meth:`BatchModel.fit`) and then FROZEN: it scores one
transaction at a time like any zoo model (``predict_proba_one``, ``explain_one``), so it can be
saved to the registry, promoted and scored by the worker, but ``learn_one`` only counts the labels
it is shown (``labels_ignored``): retrain it offline (``fraudstream train``). Its ``clone()`` is
the same frozen fit (the learner clones a champion to start a drift challenger; a fresh, unfitted
batch model could never learn online).

Models (:data:`BATCH_MODEL_NAMES`) and their parameters (unknown keys are refused):

``sk-logreg``  median imputation | StandardScaler | LogisticRegression: ``C`` (1.0),
               ``max_iter`` (1000).
``sk-tree``    DecisionTreeClassifier: ``max_depth`` (2), ``min_samples_leaf`` (1).
``sk-rf``      RandomForestClassifier: ``n_estimators`` (100), ``max_depth`` (None),
               ``min_samples_leaf`` (1), ``max_features`` ("sqrt"), ``n_jobs`` (1).
``sk-hgb``     HistGradientBoostingClassifier: ``learning_rate`` (0.1), ``max_iter`` (100),
               ``max_leaf_nodes`` (31), ``max_depth`` (None), ``min_samples_leaf`` (20),
               ``l2_regularization`` (0.0).
``lgbm``       LightGBM LGBMClassifier: ``n_estimators`` (100), ``learning_rate`` (0.1),
               ``num_leaves`` (31), ``max_depth`` (-1), ``min_child_samples`` (20),
               ``subsample`` (1.0), ``colsample_bytree`` (1.0), ``reg_lambda`` (0.0),
               ``n_jobs`` (1).
``xgb``        XGBoost XGBClassifier: ``n_estimators`` (100), ``learning_rate`` (0.3),
               ``max_depth`` (6), ``min_child_weight`` (1.0), ``subsample`` (1.0),
               ``colsample_bytree`` (1.0), ``reg_lambda`` (1.0), ``n_jobs`` (1).
``ensemble``   the weighted mean of the probabilities of ``members`` (a list of ``{name, params,
               weight}`` of the models above; default lgbm and sk-rf), fitted on the same rows;
               each member keeps its own ``pos_weight`` / ``class_weight`` (on top of the
               ensemble's); resampling is set on the ensemble only.

Class imbalance (every model): ``pos_weight`` (1.0) weighs each fraud row in the fit (sample
weight); ``class_weight`` "none" | "balanced" (frauds weighed n_genuine / n_fraud, times
``pos_weight``); ``sampling`` "none" | "under" | "over" resamples the training rows (seeded by
``seed``) to a fraud share of ``desired_pos`` (0.2) before the fit: "under" keeps every fraud and
draws genuine rows without replacement, "over" keeps every genuine row and draws frauds with
replacement.

Missing values: features are ``dict[str, float | None]``; a None, NaN or a feature the model was
not fitted with becomes NaN, which the trees and boosters route natively and ``sk-logreg``
imputes with the training median. Features the model does not know are ignored.

Reasons (``explain_one``): ``sk-logreg`` uses ``coef_j * z_j`` (the standardised value's exact
share of the logit, as the River logistic regression does); the tree models use perturbation:
``p(x) - p(x with x_j := training median_j)`` for every present feature, computed in ONE call on
a small matrix.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"amount": rng.uniform(0, 100, 400), "night": rng.integers(0, 2, 400)})
>>> y = (X["amount"] > 80).astype(int).to_numpy()
>>> m = build_batch_model("sk-logreg", {"C": 10.0}).fit(X, y)
>>> m.predict_proba_one({"amount": 95.0, "night": None}) > 0.5 > m.predict_proba_one({"amount": 5.0})
True
>>> [r.feature for r in m.explain_one({"amount": 95.0, "night": 0.0})]
['amount']
>>> m.learn_one({"amount": 1.0}, True); m.labels_ignored
1
>>> build_batch_model("sk-svm")
Traceback (most recent call last):
...
fraudstream.errors.ConfigError: unknown batch model 'sk-svm'; known: sk-logreg, sk-tree, sk-rf, sk-hgb, lgbm, xgb, ensemble
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from fraudstream.errors import ConfigError, DataError
from models.zoo import MODEL_NAMES, Model, build_model, validate_params

__all__ = [
    "ALL_MODEL_NAMES",
    "BATCH_MODEL_NAMES",
    "BatchModel",
    "build_any",
    "build_batch_model",
    "is_batch_model",
    "quantile_of",
]

BATCH_MODEL_NAMES: tuple[str, ...] = ("sk-logreg", "sk-tree", "sk-rf", "sk-hgb", "lgbm", "xgb",
                                      "ensemble")
#: Every model name the training commands accept: the River zoo, then the batch models.
ALL_MODEL_NAMES: tuple[str, ...] = MODEL_NAMES + BATCH_MODEL_NAMES


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pos_weight: float = Field(default=1.0, gt=0.0)
    class_weight: Literal["none", "balanced"] = "none"
    sampling: Literal["none", "under", "over"] = "none"
    desired_pos: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int | None = 42


class SkLogregParams(_Params):
    C: float = Field(default=1.0, gt=0.0)
    max_iter: int = Field(default=1000, ge=10)


class SkTreeParams(_Params):
    max_depth: int | None = Field(default=2, ge=1)
    min_samples_leaf: int = Field(default=1, ge=1)


class SkRfParams(_Params):
    n_estimators: int = Field(default=100, ge=1, le=5000)
    max_depth: int | None = Field(default=None, ge=1)
    min_samples_leaf: int = Field(default=1, ge=1)
    max_features: Literal["sqrt", "log2"] | float | None = "sqrt"
    n_jobs: int = 1


class SkHgbParams(_Params):
    learning_rate: float = Field(default=0.1, gt=0.0, le=1.0)
    max_iter: int = Field(default=100, ge=1, le=10000)
    max_leaf_nodes: int | None = Field(default=31, ge=2)
    max_depth: int | None = Field(default=None, ge=1)
    min_samples_leaf: int = Field(default=20, ge=1)
    l2_regularization: float = Field(default=0.0, ge=0.0)


class LgbmParams(_Params):
    n_estimators: int = Field(default=100, ge=1, le=10000)
    learning_rate: float = Field(default=0.1, gt=0.0, le=1.0)
    num_leaves: int = Field(default=31, ge=2)
    max_depth: int = -1
    min_child_samples: int = Field(default=20, ge=1)
    subsample: float = Field(default=1.0, gt=0.0, le=1.0)
    colsample_bytree: float = Field(default=1.0, gt=0.0, le=1.0)
    reg_lambda: float = Field(default=0.0, ge=0.0)
    n_jobs: int = 1


class XgbParams(_Params):
    n_estimators: int = Field(default=100, ge=1, le=10000)
    learning_rate: float = Field(default=0.3, gt=0.0, le=1.0)
    max_depth: int = Field(default=6, ge=1, le=30)
    min_child_weight: float = Field(default=1.0, ge=0.0)
    subsample: float = Field(default=1.0, gt=0.0, le=1.0)
    colsample_bytree: float = Field(default=1.0, gt=0.0, le=1.0)
    reg_lambda: float = Field(default=1.0, ge=0.0)
    n_jobs: int = 1


def _sk_logreg(p: SkLogregParams) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", StandardScaler()),
        ("model", LogisticRegression(C=p.C, max_iter=p.max_iter)),
    ])


def _sk_tree(p: SkTreeParams) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=p.max_depth, min_samples_leaf=p.min_samples_leaf,
                                  random_state=p.seed)


def _sk_rf(p: SkRfParams) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=p.n_estimators, max_depth=p.max_depth,
                                  min_samples_leaf=p.min_samples_leaf,
                                  max_features=p.max_features, n_jobs=p.n_jobs,
                                  random_state=p.seed)


def _sk_hgb(p: SkHgbParams) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        learning_rate=p.learning_rate, max_iter=p.max_iter, max_leaf_nodes=p.max_leaf_nodes,
        max_depth=p.max_depth, min_samples_leaf=p.min_samples_leaf,
        l2_regularization=p.l2_regularization, early_stopping=False, random_state=p.seed)


def _lgbm(p: LgbmParams) -> Any:
    try:
        from lightgbm import LGBMClassifier
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ConfigError(f"model 'lgbm' needs LightGBM ({exc}): pip install lightgbm") from exc
    return LGBMClassifier(
        n_estimators=p.n_estimators, learning_rate=p.learning_rate, num_leaves=p.num_leaves,
        max_depth=p.max_depth, min_child_samples=p.min_child_samples, subsample=p.subsample,
        subsample_freq=1 if p.subsample < 1.0 else 0, colsample_bytree=p.colsample_bytree,
        reg_lambda=p.reg_lambda, n_jobs=p.n_jobs, random_state=p.seed, verbose=-1)


def _xgb(p: XgbParams) -> Any:
    try:
        from xgboost import XGBClassifier
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ConfigError(f"model 'xgb' needs XGBoost ({exc}): pip install xgboost-cpu") from exc
    return XGBClassifier(
        n_estimators=p.n_estimators, learning_rate=p.learning_rate, max_depth=p.max_depth,
        min_child_weight=p.min_child_weight, subsample=p.subsample,
        colsample_bytree=p.colsample_bytree, reg_lambda=p.reg_lambda, n_jobs=p.n_jobs,
        random_state=p.seed if p.seed is not None else 0, tree_method="hist")


class MemberSpec(BaseModel):
    """One member of an ensemble: a batch model name (not ``ensemble``) and its parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["sk-logreg", "sk-tree", "sk-rf", "sk-hgb", "lgbm", "xgb"]
    params: dict[str, Any] = Field(default_factory=dict)
    weight: float = Field(default=1.0, gt=0.0)


class EnsembleParams(_Params):
    members: list[MemberSpec] = Field(default_factory=lambda: [
        MemberSpec(name="lgbm"), MemberSpec(name="sk-rf")], min_length=1)
    #: "mean": the weighted mean of the members' probabilities; "rank": the weighted mean of
    #: their quantiles among their own scores of the training rows (a rank average that scores
    #: one row at a time as well as a batch).
    combine: Literal["mean", "rank"] = "mean"


def quantile_of(ref: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The mid-rank quantile of each score of ``p`` among the sorted reference scores ``ref``.

    >>> quantile_of(np.array([0.1, 0.2, 0.2, 0.9]), np.array([0.0, 0.2, 0.5, 1.0]))
    array([0.  , 0.5 , 0.75, 1.  ])
    """
    lo = np.searchsorted(ref, p, side="left")
    hi = np.searchsorted(ref, p, side="right")
    return (lo + hi) / (2.0 * len(ref))


class Blend:
    """Members fitted on the same rows; P(fraud) is their weighted mean (scikit-learn style), or
    with ``combine="rank"`` the weighted mean of each member's quantile among its scores of the
    fitted rows (kept sorted at the fit).

    Each member keeps its own fraud weight (``pos_weight``, ``class_weight``), applied on top of
    the ensemble's sample weights.
    """

    def __init__(self, members: list[tuple[str, Any, float]],
                 params: list[_Params] | None = None, combine: str = "mean") -> None:
        self.members = members  # (name, estimator, weight)
        self.member_params = params or [_Params() for _ in members]
        self.combine = combine
        self.reference: list[np.ndarray] = []  # each member's sorted scores of the fitted rows

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Blend:
        base = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        for (name, est, _), mp in zip(self.members, self.member_params, strict=True):
            weight = base * fraud_weights(np.asarray(y), mp)
            if np.all(weight == 1.0):
                est.fit(X, y)
            else:
                key = "model__sample_weight" if name == "sk-logreg" else "sample_weight"
                est.fit(X, y, **{key: weight})
        if self.combine == "rank":
            self.reference = [np.sort(np.asarray(est.predict_proba(X)[:, 1], dtype=float))
                              for _, est, _ in self.members]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        total = sum(w for _, _, w in self.members)
        scores = [np.asarray(est.predict_proba(X)[:, 1], dtype=float) for _, est, _ in self.members]
        if getattr(self, "combine", "mean") == "rank":  # (a Blend pickled before had no combine)
            scores = [quantile_of(ref, s) for ref, s in zip(self.reference, scores, strict=True)]
        p = sum(w * s for (_, _, w), s in zip(self.members, scores, strict=True)) / total
        return np.column_stack([1.0 - p, p])


def fraud_weights(y: np.ndarray, p: _Params) -> np.ndarray:
    """Sample weights of the class-imbalance parameters: ``pos_weight`` on each fraud (times
    n_genuine / n_fraud with ``class_weight="balanced"``), 1 on each genuine row.

    >>> fraud_weights(np.array([0, 0, 0, 1]), _Params(pos_weight=2.0, class_weight="balanced"))
    array([1., 1., 1., 6.])
    """
    y = np.asarray(y).astype(int)
    weight = np.ones(len(y))
    pos = y == 1
    w_pos = p.pos_weight
    if p.class_weight == "balanced":
        w_pos *= float((~pos).sum()) / max(float(pos.sum()), 1.0)
    weight[pos] = w_pos
    return weight


def _ensemble(p: EnsembleParams) -> Any:
    members: list[tuple[str, Any, float]] = []
    params: list[_Params] = []
    for m in p.members:
        mp = _validate(m.name, m.params)
        if mp.sampling != "none":
            raise ConfigError(f"ensemble member {m.name!r}: resampling applies to the whole "
                              "ensemble; set sampling on the ensemble, not on a member")
        members.append((m.name, _SPECS[m.name][1](mp), m.weight))
        params.append(mp)
    return Blend(members, params, combine=p.combine)


_SPECS: dict[str, tuple[type[_Params], Callable[[Any], Any]]] = {
    "sk-logreg": (SkLogregParams, _sk_logreg),
    "sk-tree": (SkTreeParams, _sk_tree),
    "sk-rf": (SkRfParams, _sk_rf),
    "sk-hgb": (SkHgbParams, _sk_hgb),
    "lgbm": (LgbmParams, _lgbm),
    "xgb": (XgbParams, _xgb),
    "ensemble": (EnsembleParams, _ensemble),
}


#: Matrices up to this many rows are scored with OpenMP limited to one thread. Measured here on
#: a loaded 2-core machine: scikit-learn's HistGradientBoosting scored ONE row in 6 ms (p50) and
#: 850 ms (p99) with its default threads, 0.9 ms and 18 ms with one.
SMALL_BATCH = 1024
_CONTROLLER: Any = None


def _single_thread() -> Any:
    """A context limiting OpenMP to one thread (the controller is built once: it is slow)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="openmp")


def _score_in_one_thread(est: Any) -> None:
    """After the fit (which may use ``n_jobs`` threads), score with one: the worker scores one
    transaction at a time, where thread pools only add overhead."""
    if isinstance(est, Blend):
        for _, member, _ in est.members:
            _score_in_one_thread(member)
        return
    if hasattr(est, "n_jobs"):
        try:
            est.set_params(n_jobs=1)
        except (ValueError, TypeError):  # pragma: no cover - an estimator without the param
            pass


def is_batch_model(name: str) -> bool:
    """Whether ``name`` is a batch model (fitted on a table) rather than a River zoo model."""
    return name in _SPECS


def _validate(name: str, params: Mapping[str, Any] | None) -> _Params:
    return validate_params(name, _SPECS[name][0], params)


def build_batch_model(name: str, params: Mapping[str, Any] | None = None) -> BatchModel:
    """A new, unfitted batch model; ConfigError for an unknown name or bad parameters."""
    if name not in _SPECS:
        raise ConfigError(f"unknown batch model {name!r}; known: {', '.join(BATCH_MODEL_NAMES)}")
    p = _validate(name, params)
    if isinstance(p, EnsembleParams):  # each member's parameters, now rather than at the fit
        _ensemble(p)
    return BatchModel(name, p)


def build_any(name: str, params: Mapping[str, Any] | None = None) -> Model:
    """A River zoo model or a batch model by name (see :data:`ALL_MODEL_NAMES`)."""
    if name in _SPECS:
        return build_batch_model(name, params)
    if name in MODEL_NAMES:
        return build_model(name, params)
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(ALL_MODEL_NAMES)}")


class BatchModel(Model):
    """A fitted table classifier, frozen, that scores one dict at a time (see the module doc)."""

    kind: ClassVar[str] = "batch"

    def __init__(self, name: str, params: _Params) -> None:
        super().__init__(name, params)  # type: ignore[arg-type]  # a batch model's own params
        self.estimator: Any = None
        self.features: list[str] = []
        self.medians: np.ndarray = np.zeros(0)
        self.labels_ignored = 0
        self.rows_fitted = 0
        self.frauds_fitted = 0
        self.feature_set: str | None = None  # the feature set it was trained on (informative)

    # -- fitting --------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self.estimator is not None

    def fit(self, X: pd.DataFrame, y: Sequence[Any] | np.ndarray,
            feature_set: str | None = None) -> BatchModel:
        """Fit on the numeric columns of ``X`` (NaN = missing) and labels ``y`` (1 = fraud)."""
        if not isinstance(X, pd.DataFrame):
            raise DataError("a batch model fits a DataFrame of features")
        yv = np.asarray(y).astype(int)
        if len(X) != len(yv):
            raise DataError(f"{len(X)} rows of features but {len(yv)} labels")
        n_pos = int(yv.sum())
        if n_pos == 0 or n_pos == len(yv):
            raise DataError(f"model {self.name!r}: the training rows need frauds and genuine ones "
                            f"({n_pos} fraud(s) of {len(yv)})")
        names = [str(c) for c in X.columns]
        A = np.array(X.to_numpy(dtype=float, na_value=np.nan), dtype=float, copy=True)
        A[~np.isfinite(A)] = np.nan
        p: _Params = self._p  # type: ignore[assignment]
        rows = self._resample(yv, p)
        A_fit, y_fit = A[rows], yv[rows]
        weight = fraud_weights(y_fit, p)
        factory = _SPECS[self.name][1]
        est = factory(p)
        kw: dict[str, Any] = {}
        if not np.all(weight == 1.0):
            kw["model__sample_weight" if self.name == "sk-logreg" else "sample_weight"] = weight
        est.fit(A_fit, y_fit, **kw)
        _score_in_one_thread(est)
        self.estimator = est
        self.features = names
        with warnings.catch_warnings():  # an all-missing column has no median: 0 then
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(A, axis=0)
        self.medians = np.where(np.isnan(med), 0.0, med)
        self.rows_fitted = int(len(y_fit))
        self.frauds_fitted = int(y_fit.sum())
        self.feature_set = feature_set
        return self

    def _resample(self, y: np.ndarray, p: _Params) -> np.ndarray:
        idx = np.arange(len(y))
        if p.sampling == "none":
            return idx
        rng = np.random.default_rng(p.seed)
        pos, neg = idx[y == 1], idx[y == 0]
        if p.sampling == "under":
            want = int(round(len(pos) * (1.0 - p.desired_pos) / p.desired_pos))
            if want < len(neg):
                neg = np.sort(rng.choice(neg, size=want, replace=False))
        else:
            want = int(round(len(neg) * p.desired_pos / (1.0 - p.desired_pos)))
            if want > len(pos):
                pos = np.concatenate([pos, rng.choice(pos, size=want - len(pos), replace=True)])
        return np.sort(np.concatenate([pos, neg]))

    # -- scoring --------------------------------------------------------------------------------
    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        cols = {str(c): c for c in X.columns}
        out = np.full((len(X), len(self.features)), np.nan)
        for j, f in enumerate(self.features):
            if f in cols:
                out[:, j] = pd.to_numeric(X[cols[f]], errors="coerce").to_numpy(dtype=float)
        out[~np.isfinite(out)] = np.nan
        return out

    def _raw(self, A: np.ndarray) -> np.ndarray:
        if not self.fitted:
            raise ConfigError(f"batch model {self.name!r} is not fitted: fit it first "
                              "(fraudstream train)")
        if len(A) <= SMALL_BATCH:  # one transaction: OpenMP threads only cost (see SMALL_BATCH)
            with _single_thread():
                return np.asarray(self.estimator.predict_proba(A)[:, 1], dtype=float)
        return np.asarray(self.estimator.predict_proba(A)[:, 1], dtype=float)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(fraud) of every row of ``X`` (columns by name; absent ones are missing)."""
        return np.clip(self._raw(self._matrix(X)), 0.0, 1.0)

    def _row(self, xc: Mapping[str, float]) -> np.ndarray:
        return np.array([[xc.get(f, math.nan) for f in self.features]], dtype=float)

    def _proba(self, xc: dict[str, float]) -> float:
        return float(self._raw(self._row(xc))[0])

    def learn_one(self, x: Mapping[str, Any], y: bool) -> None:
        """A frozen batch model does not learn online: the label is only counted."""
        self.labels_ignored += 1

    def _learn(self, xc: dict[str, float], y: bool) -> None:
        return None

    def clone(self, params: Mapping[str, Any] | None = None) -> Model:
        """The same frozen fit (see the module doc; ``params`` cannot change a fit and are
        ignored); :func:`build_batch_model` makes a fresh one."""
        return copy.deepcopy(self)

    # -- reasons --------------------------------------------------------------------------------
    def _contributions(self, xc: dict[str, float]) -> dict[str, float]:
        if not self.fitted:
            return {}
        present = [j for j, f in enumerate(self.features) if f in xc]
        if not present:
            return {}
        row = self._row(xc)
        if self.name == "sk-logreg":
            z = self.estimator[:-1].transform(row)[0]
            coef = self.estimator[-1].coef_[0]
            return {self.features[j]: float(coef[j] * z[j]) for j in present}
        A = np.repeat(row, len(present) + 1, axis=0)
        for i, j in enumerate(present, start=1):
            A[i, j] = self.medians[j]
        p = self._raw(A)
        return {self.features[j]: float(p[0] - p[i]) for i, j in enumerate(present, start=1)}

    def __repr__(self) -> str:
        state = f"fitted on {self.rows_fitted} rows" if self.fitted else "unfitted"
        return f"BatchModel(name={self.name!r}, {state})"
