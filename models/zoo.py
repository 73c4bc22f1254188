"""The model zoo: every model the system can run, by name and parameters.

``build_model(name, params)`` returns a :class:`Model`, one small wrapper type over River so the
worker and the learner treat every model alike:

- ``predict_proba_one(x) -> float``: P(fraud) in [0, 1] (call it BEFORE ``learn_one``);
- ``learn_one(x, y)``: learn one label (supervised parts);
- ``observe_one(x)``: learn from one scored transaction without a label (unsupervised parts:
  half-space trees); a no-op for purely supervised models;
- ``explain_one(x, k=3) -> list[Reason]``: the features that pushed the score up most
  (see :mod:`models.reasons` for how each kind measures it);
- ``score_one(x, k=3) -> (float, list[Reason])``: both at once, ``x`` cleaned once (the
  scorer's call: the same numbers as the two calls);
- ``name``, ``params`` (every parameter, defaults filled in), ``kind``, ``clone()`` (a fresh,
  unfitted model with the same parameters).

Models (:data:`MODEL_NAMES`) and their parameters (unknown keys are refused):

``logreg``  StandardScaler | LogisticRegression: ``lr`` (SGD step, 0.01), ``l2`` (0),
            ``intercept_lr`` (0.01).
``hat``     HoeffdingAdaptiveTreeClassifier: ``grace_period`` (200), ``delta`` (1e-7),
            ``max_depth`` (None), ``leaf_prediction`` ("nba"), ``seed``.
``arf``     ARFClassifier: ``n_models`` (10), ``max_features`` ("sqrt"), ``lambda_value`` (6),
            ``grace_period`` (50), ``delta`` (0.01), ``seed``.
``hst``     MinMaxScaler | HalfSpaceTrees: ``n_trees`` (10), ``height`` (8), ``window_size``
            (250), ``calibration_window`` (2000), ``seed``. Learns WITHOUT labels, in
            ``observe_one`` (call it on every scored transaction); ``learn_one`` (labels) does
            nothing. River's raw score ``1 - mass / max_mass`` is in [0, 1] but its level
            depends on the height, the window and the spread of the features (measured here:
            0.96 to 0.98 for typical and unusual transactions alike on one stream, 0.5 to 0.9 on
            another), so it is MAPPED to its quantile among the raw scores of the latest
            ``calibration_window`` observed transactions (ties count half): about 0.5 for a
            typical transaction, near 1 for one more unusual than all of the latest 2000. With
            ``calibration_window`` 0, the raw score is returned.
``rules``   transparent rules from configuration, ``rules``: a list of ``{name, feature, op,
            value, weight}`` (``feature`` may be a list of alternative names: the first present
            is used; ``op`` one of > >= < <= == !=); a fired rule's weight is its fraud
            probability, the score is ``1 - prod(1 - weight)`` over the fired rules (0 when none
            fires). With ``learn_weights`` (True) each weight is re-estimated from labels as
            ``(prior * m + frauds when fired) / (m + times fired)``, ``m = prior_strength`` (20).
``logreg+hst``, ``hat+hst``, ``arf+hst``
            a supervised model with the anomaly score: ``mode`` "feature" (default: the score is
            one more input, ``anomaly_score``, so the supervised model learns how much to trust
            it) or "blend" (``(1 - weight) * p + weight * anomaly``, ``weight`` 0.3);
            ``supervised`` and ``anomaly``: the parameters of each part.

Class imbalance (every supervised model): ``pos_weight`` (1.0) weighs each fraud label in
``learn_one`` (River's sample weight ``w``; ARF takes no weight, so a fraud is learned
``pos_weight`` times, the fraction by a seeded coin); ``sampling`` "none" | "under" | "over"
wraps the model in River's ``imblearn.RandomUnderSampler`` / ``RandomOverSampler`` with
``desired_dist = {True: desired_pos, False: 1 - desired_pos}`` (``desired_pos`` 0.2).

Missing and new features: features are ``dict[str, float | None]``. A ``None``, a NaN, an infinity
or a value that is not a number is DROPPED from the dict before River sees it (drop-key
imputation): after the standard scaler a dropped feature is at its mean (contribution 0), a tree
sends it down its most travelled branch, half-space trees likewise. With ``missing_indicators``
(False) every feature also gets ``<name>__missing`` = 1.0 when it is None, 0.0 otherwise, so a
model can learn from the absence itself. A new feature is simply learned from its first
appearance (half-space trees keep the features of their first observation; see River). The
caller's dict is never modified.

>>> model = build_model("logreg", {"pos_weight": 5})
>>> model.params["pos_weight"], model.params["sampling"]
(5.0, 'none')
>>> for i in range(200):
...     model.learn_one({"amount": float(i % 50), "night": None}, i % 50 > 40)
>>> round(model.predict_proba_one({"amount": 49.0}), 3), round(model.predict_proba_one({"amount": 1.0}), 3)
(0.793, 0.198)
>>> [(r.feature, r.value) for r in model.explain_one({"amount": 49.0, "night": None})]
[('amount', 49.0)]
>>> build_model("forest")
Traceback (most recent call last):
...
fraudstream.errors.ConfigError: unknown model 'forest'; known: logreg, hat, arf, hst, rules, logreg+hst, hat+hst, arf+hst
"""

from __future__ import annotations

import abc
import bisect
import copy
import math
import operator
import random
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from river import anomaly, forest, imblearn, linear_model, optim, preprocessing, tree

from fraudstream.errors import ConfigError
from models import reasons as _reasons
from stream.schemas import Reason

__all__ = [
    "MODEL_NAMES",
    "Model",
    "build_model",
    "clean_features",
    "describe_params",
    "validate_params",
]

MODEL_NAMES: tuple[str, ...] = (
    "logreg",
    "hat",
    "arf",
    "hst",
    "rules",
    "logreg+hst",
    "hat+hst",
    "arf+hst",
)

ANOMALY_FEATURE = "anomaly_score"


# -- features ---------------------------------------------------------------------------------


def clean_features(x: Mapping[str, Any], indicators: bool = False) -> dict[str, float]:
    """A new dict of the finite numbers of ``x`` (None, NaN, inf, text dropped); see module doc.

    >>> clean_features({"a": 1, "b": None, "c": float("nan"), "d": True, "e": "x"})
    {'a': 1.0, 'd': 1.0}
    >>> clean_features({"a": 2.5, "b": None}, indicators=True)
    {'a': 2.5, 'a__missing': 0.0, 'b__missing': 1.0}
    """
    out: dict[str, float] = {}
    for k, v in x.items():
        if v is None:
            if indicators:
                out[k + "__missing"] = 1.0
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = math.nan
        if f - f == 0.0:  # finite
            out[k] = f
            if indicators:
                out[k + "__missing"] = 0.0
        elif indicators:
            out[k + "__missing"] = 1.0
    return out


# -- parameters -------------------------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Supervised(_Params):
    pos_weight: float = Field(default=1.0, gt=0.0)
    sampling: Literal["none", "under", "over"] = "none"
    desired_pos: float = Field(default=0.2, gt=0.0, lt=1.0)
    missing_indicators: bool = False
    seed: int | None = 42


class LogregParams(_Supervised):
    lr: float = Field(default=0.01, gt=0.0)
    l2: float = Field(default=0.0, ge=0.0)
    intercept_lr: float = Field(default=0.01, ge=0.0)


class HatParams(_Supervised):
    grace_period: int = Field(default=200, ge=1)
    delta: float = Field(default=1e-7, gt=0.0, lt=1.0)
    max_depth: int | None = Field(default=None, ge=1)
    leaf_prediction: Literal["mc", "nb", "nba"] = "nba"


class ArfParams(_Supervised):
    n_models: int = Field(default=10, ge=1, le=500)
    max_features: Literal["sqrt", "log2"] | int = "sqrt"
    lambda_value: int = Field(default=6, ge=1)
    grace_period: int = Field(default=50, ge=1)
    delta: float = Field(default=0.01, gt=0.0, lt=1.0)
    max_depth: int | None = Field(default=None, ge=1)


class HstParams(_Params):
    n_trees: int = Field(default=10, ge=1, le=200)
    height: int = Field(default=8, ge=1, le=20)
    window_size: int = Field(default=250, ge=2)
    calibration_window: int = Field(default=2000, ge=0)
    seed: int | None = 42


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class RuleSpec(_Params):
    """One transparent rule: ``feature op value`` fires with fraud probability ``weight``."""

    name: str | None = None
    feature: str | list[str]
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    value: float
    weight: float = Field(default=0.5, gt=0.0, lt=1.0)

    @field_validator("feature")
    @classmethod
    def _nonempty(cls, v: str | list[str]) -> str | list[str]:
        if not v:
            raise ValueError("a rule needs a feature name")
        return v

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        first = self.feature if isinstance(self.feature, str) else self.feature[0]
        return f"{first}{self.op}{self.value:g}"


#: The default rules: amount, velocity, new terminal, terminal risk (names as in the handbook
#: preset and the plain ones; a rule whose feature is absent does not fire).
DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {"name": "amount>220", "feature": ["amount", "TX_AMOUNT"], "op": ">", "value": 220.0,
     "weight": 0.5},
    {"name": "card_velocity_1d>10",
     "feature": ["card_tx_count_24h", "CUSTOMER_ID_NB_TX_1DAY_WINDOW"], "op": ">", "value": 10.0,
     "weight": 0.1},
    {"name": "new_terminal", "feature": ["card_new_terminal_30d"], "op": "==",
     "value": 1.0, "weight": 0.05},
    {"name": "terminal_risk_7d>0.2",
     "feature": ["terminal_risk_7d", "TERMINAL_ID_RISK_7DAY_WINDOW"], "op": ">", "value": 0.2,
     "weight": 0.3},
)


class RulesParams(_Params):
    rules: list[RuleSpec] = Field(default_factory=lambda: [RuleSpec(**r) for r in DEFAULT_RULES])
    learn_weights: bool = True
    prior_strength: float = Field(default=20.0, gt=0.0)

    @field_validator("rules")
    @classmethod
    def _unique(cls, v: list[RuleSpec]) -> list[RuleSpec]:
        if not v:
            raise ValueError("at least one rule is needed")
        labels = [r.label for r in v]
        dupes = sorted({n for n in labels if labels.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique: {', '.join(dupes)}")
        return v


class ComboParams(_Params):
    mode: Literal["feature", "blend"] = "feature"
    weight: float = Field(default=0.3, ge=0.0, le=1.0)
    supervised: dict[str, Any] = Field(default_factory=dict)
    anomaly: dict[str, Any] = Field(default_factory=dict)


_PARAMS: dict[str, type[_Params]] = {
    "logreg": LogregParams,
    "hat": HatParams,
    "arf": ArfParams,
    "hst": HstParams,
    "rules": RulesParams,
}


P = TypeVar("P", bound=BaseModel)


def validate_params(name: str, cls: type[P], params: Mapping[str, Any] | None) -> P:
    """``params`` checked by ``cls`` (a pydantic model), or a ConfigError naming every problem
    and the allowed parameters (zoo and batch models alike)."""
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError(f"model {name!r}: parameters must be a mapping, not {type(params).__name__}")
    try:
        return cls.model_validate(dict(params or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()
        )
        allowed = ", ".join(cls.model_fields)
        raise ConfigError(
            f"model {name!r}: bad parameters: {problems} (allowed: {allowed})"
        ) from None


def describe_params(name: str) -> dict[str, Any]:
    """The default parameters of a zoo model (what ``build_model(name).params`` holds).

    >>> describe_params("arf")["n_models"]
    10
    """
    return build_model(name).params


# -- the wrapper type -------------------------------------------------------------------------


class Model(abc.ABC):
    """One zoo model: P(fraud), online learning, reason codes. Picklable (the registry's unit)."""

    kind: ClassVar[str]
    #: learns from labels in ``learn_one``
    supervised: ClassVar[bool] = True
    #: learns from unlabelled scored transactions in ``observe_one``
    unsupervised: ClassVar[bool] = False

    def __init__(self, name: str, params: _Params) -> None:
        self.name = name
        self._p = params
        self.params: dict[str, Any] = params.model_dump(mode="json")
        self.labels_learned = 0
        self.observed = 0

    # public API: each takes the caller's dict, cleans a copy, never writes to the input
    def predict_proba_one(self, x: Mapping[str, Any]) -> float:
        """P(fraud | x) in [0, 1]. Call it before ``learn_one`` on the same x (prequential)."""
        return _clamp(self._proba(self._clean(x)))

    def learn_one(self, x: Mapping[str, Any], y: bool) -> None:
        """Learn one label (``y`` True = fraud)."""
        self.labels_learned += 1
        self._learn(self._clean(x), bool(y))

    def observe_one(self, x: Mapping[str, Any]) -> None:
        """Learn from one scored, unlabelled transaction (only unsupervised models learn)."""
        self.observed += 1
        if self.unsupervised:
            self._observe(self._clean(x))

    def explain_one(self, x: Mapping[str, Any], k: int = 3) -> list[Reason]:
        """The ``k`` features that pushed the score up most (see :mod:`models.reasons`)."""
        return self._explain(self._clean(x), x, k)

    def score_one(self, x: Mapping[str, Any], k: int = 3) -> tuple[float, list[Reason]]:
        """``predict_proba_one(x)`` and ``explain_one(x, k)`` with ``x`` cleaned once."""
        xc = self._clean(x)
        return _clamp(self._proba(xc)), self._explain(xc, x, k)

    def clone(self, params: Mapping[str, Any] | None = None) -> Model:
        """A fresh, unfitted model with the same name and parameters (``params`` override some)."""
        return build_model(self.name, {**self.params, **(params or {})})

    def restart(self, params: Mapping[str, Any] | None = None) -> Model:
        """A model that learns the concept afresh but keeps what this one knows of the INPUTS.

        The learner starts drift challengers with it. The supervised part is unfitted (as in
        :meth:`clone`); the input statistics are copied: the logistic regression's standard
        scaler, a combination's anomaly detector (it learns without labels). A concept drift
        changes P(fraud | x), not the spread of x; and a scaler fitted afresh on the few
        thousand labels after a drift, in their ARRIVAL order, sees features that barely vary
        among them (genuine labels mature a fixed delay after their transaction, so they arrive
        in the daily rhythm of the transactions: the hour of day, the weekend flag) and blows
        them up, so the new model learns the labels' arrival time instead of fraud (measured in
        bench/drift.py: twice the champion's prequential average precision on the label stream,
        half its average precision on live transactions). Models without input statistics
        (trees, rules, half-space trees alone) restart as :meth:`clone`. ``params`` override
        some of this model's parameters (the learner's ``drift_model_params``: e.g. a larger
        learning rate for drift challengers than for a conservative champion).
        """
        return self.clone(params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, labels_learned={self.labels_learned})"

    # internals, on cleaned dicts (combinations call these directly)
    def _clean(self, x: Mapping[str, Any]) -> dict[str, float]:
        return clean_features(x, indicators=bool(self.params.get("missing_indicators")))

    @abc.abstractmethod
    def _proba(self, xc: dict[str, float]) -> float: ...

    @abc.abstractmethod
    def _learn(self, xc: dict[str, float], y: bool) -> None: ...

    def _observe(self, xc: dict[str, float]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not learn without labels")

    @abc.abstractmethod
    def _contributions(self, xc: dict[str, float]) -> dict[str, float]: ...

    def _explain(self, xc: dict[str, float], x: Mapping[str, Any], k: int) -> list[Reason]:
        """The reasons of the cleaned ``xc``; ``x`` (as the caller sent it) gives the values."""
        return _reasons.top_reasons(self._contributions(xc), x, k)


def _clamp(p: float) -> float:
    if p != p:  # NaN: an untrained or degenerate model
        return 0.0
    return 0.0 if p < 0.0 else 1.0 if p > 1.0 else float(p)


class _RiverClassifier(Model):
    """A River classifier, optionally wrapped in an imblearn sampler, with class weights."""

    _weighted: ClassVar[bool] = True  # the River learn_one takes a sample weight ``w``

    def __init__(self, name: str, params: _Supervised) -> None:
        super().__init__(name, params)
        self.core = self._make_core(params)
        self.estimator: Any = self.core
        if params.sampling != "none":
            wrapper = (
                imblearn.RandomUnderSampler
                if params.sampling == "under"
                else imblearn.RandomOverSampler
            )
            dist = {True: params.desired_pos, False: 1.0 - params.desired_pos}
            self.estimator = wrapper(self.core, desired_dist=dist, seed=params.seed)
        self._pos_weight = params.pos_weight
        self._rng = random.Random(params.seed)

    @abc.abstractmethod
    def _make_core(self, params: Any) -> Any: ...

    def _proba(self, xc: dict[str, float]) -> float:
        return float(self.estimator.predict_proba_one(xc).get(True, 0.0))

    def _learn(self, xc: dict[str, float], y: bool) -> None:
        w = self._pos_weight if y else 1.0
        if w == 1.0:
            self.estimator.learn_one(xc, y)
        elif self._weighted:
            self.estimator.learn_one(xc, y, w=w)
        else:  # no sample weight in River: learn int(w) times, plus once more with P(frac)
            n = int(w) + (1 if self._rng.random() < w - int(w) else 0)
            for _ in range(n):
                self.estimator.learn_one(xc, y)


class LogReg(_RiverClassifier):
    kind = "linear"

    def _make_core(self, params: LogregParams) -> Any:
        self.scaler = preprocessing.StandardScaler()
        self.lr = linear_model.LogisticRegression(
            optimizer=optim.SGD(params.lr), l2=params.l2, intercept_lr=params.intercept_lr
        )
        return self.scaler | self.lr

    def _contributions(self, xc: dict[str, float]) -> dict[str, float]:
        return _reasons.linear_contributions(xc, self.lr._weights, self.scaler.means, self.scaler.vars)

    def restart(self, params: Mapping[str, Any] | None = None) -> Model:
        fresh = self.clone(params)
        assert isinstance(fresh, LogReg)
        scaler = copy.deepcopy(self.scaler)
        fresh.scaler = scaler
        fresh.core = scaler | fresh.lr
        if fresh.estimator is not fresh.core and hasattr(fresh.estimator, "classifier"):
            fresh.estimator.classifier = fresh.core  # the imblearn sampler wraps the pipeline
        else:
            fresh.estimator = fresh.core
        return fresh


class HAT(_RiverClassifier):
    kind = "tree"

    def _make_core(self, params: HatParams) -> Any:
        return tree.HoeffdingAdaptiveTreeClassifier(
            grace_period=params.grace_period,
            delta=params.delta,
            max_depth=params.max_depth,
            leaf_prediction=params.leaf_prediction,
            seed=params.seed,
        )

    def _contributions(self, xc: dict[str, float]) -> dict[str, float]:
        return _reasons.tree_path_contributions(self.core._root, xc)


class ARF(_RiverClassifier):
    kind = "forest"
    _weighted = False  # ARFClassifier.learn_one ignores ``w``

    def _make_core(self, params: ArfParams) -> Any:
        return forest.ARFClassifier(
            n_models=params.n_models,
            max_features=params.max_features,
            lambda_value=params.lambda_value,
            grace_period=params.grace_period,
            delta=params.delta,
            max_depth=params.max_depth,
            seed=params.seed,
        )

    def _contributions(self, xc: dict[str, float]) -> dict[str, float]:
        trees = list(self.core)
        out: dict[str, float] = {}
        if not trees:
            return out
        scale = 1.0 / len(trees)
        for member in trees:
            _reasons.tree_path_contributions(getattr(member, "_root", None), xc, out, scale)
        return out


class HST(Model):
    kind = "anomaly"
    supervised = False
    unsupervised = True

    def __init__(self, name: str, params: HstParams) -> None:
        super().__init__(name, params)
        self.scaler = preprocessing.MinMaxScaler()
        self.hst = anomaly.HalfSpaceTrees(
            n_trees=params.n_trees,
            height=params.height,
            window_size=params.window_size,
            seed=params.seed,
        )
        self._means: dict[str, list[float]] = {}  # feature -> [count, mean] of raw values
        self._calibration = params.calibration_window
        self._recent: deque[float] = deque()  # raw scores of the latest observations, in order
        self._sorted: list[float] = []  # the same, sorted

    def raw_score(self, xc: dict[str, float]) -> float:
        """River's score of a cleaned x (``1 - mass / max_mass``)."""
        return float(self.hst.score_one(self.scaler.transform_one(xc)))

    def _proba(self, xc: dict[str, float]) -> float:
        raw = self.raw_score(xc)
        ref = self._sorted
        if not self._calibration or not ref:
            return raw
        lo = bisect.bisect_left(ref, raw)
        hi = bisect.bisect_right(ref, raw, lo)
        return (lo + 0.5 * (hi - lo)) / len(ref)

    def _learn(self, xc: dict[str, float], y: bool) -> None:
        return None  # no labels needed; learning happens in observe_one

    def _observe(self, xc: dict[str, float]) -> None:
        means = self._means
        for f, v in xc.items():
            m = means.get(f)
            if m is None:
                means[f] = [1.0, v]
            else:
                m[0] += 1.0
                m[1] += (v - m[1]) / m[0]
        if self._calibration and not self.hst._first_window:
            raw = self.raw_score(xc)
            self._recent.append(raw)
            bisect.insort(self._sorted, raw)
            if len(self._recent) > self._calibration:
                old = self._recent.popleft()
                del self._sorted[bisect.bisect_left(self._sorted, old)]
        self.scaler.learn_one(xc)
        self.hst.learn_one(self.scaler.transform_one(xc))

    def _contributions(self, xc: dict[str, float]) -> dict[str, float]:
        hst = self.hst
        if hst._first_window or not hst.trees:
            return {}
        xs = self.scaler.transform_one(xc)
        baseline = self.scaler.transform_one({f: self._means[f][1] for f in xs if f in self._means})
        return _reasons.hst_contributions(hst, xs, baseline)


class Rules(Model):
    kind = "rules"

    def __init__(self, name: str, params: RulesParams) -> None:
        super().__init__(name, params)
        self.rules = list(params.rules)
        self._ops = [_OPS[r.op] for r in self.rules]
        self._names = [
            [r.feature] if isinstance(r.feature, str) else list(r.feature) for r in self.rules
        ]
        self._labels = [r.label for r in self.rules]
        self.fired = [0.0] * len(self.rules)
        self.fired_fraud = [0.0] * len(self.rules)

    def _fired(self, xc: dict[str, float]) -> list[tuple[int, str, float]]:
        out = []
        for i, names in enumerate(self._names):
            for f in names:
                v = xc.get(f)
                if v is not None:
                    if self._ops[i](v, self.rules[i].value):
                        out.append((i, f, v))
                    break
        return out

    def weight(self, i: int) -> float:
        """Rule ``i``'s current fraud probability when it fires."""
        prior = self.rules[i].weight
        if not self._p.learn_weights:  # type: ignore[attr-defined]
            return prior
        m = self._p.prior_strength  # type: ignore[attr-defined]
        return (prior * m + self.fired_fraud[i]) / (m + self.fired[i])

    def _proba(self, xc: dict[str, float]) -> float:
        keep = 1.0
        for i, _, _ in self._fired(xc):
            keep *= 1.0 - self.weight(i)
        return 1.0 - keep

    def _learn(self, xc: dict[str, float], y: bool) -> None:
        for i, _, _ in self._fired(xc):
            self.fired[i] += 1.0
            if y:
                self.fired_fraud[i] += 1.0

    def _contributions(self, xc: dict[str, float]) -> dict[str, float]:
        return {self._labels[i]: self.weight(i) for i, _, _ in self._fired(xc)}

    def _explain(self, xc: dict[str, float], x: Mapping[str, Any], k: int) -> list[Reason]:
        fired = self._fired(xc)
        contributions = {self._labels[i]: self.weight(i) for i, _, _ in fired}
        values = {self._labels[i]: v for i, _, v in fired}
        return _reasons.top_reasons(contributions, values, k)


class Combo(Model):
    """A supervised model with the half-space-trees anomaly score (``feature`` or ``blend``)."""

    kind = "combo"
    unsupervised = True

    def __init__(self, name: str, params: ComboParams, supervised: Model, anomaly_: HST) -> None:
        super().__init__(name, params)
        self.sup = supervised
        self.anomaly = anomaly_
        self.params["supervised"] = supervised.params
        self.params["anomaly"] = anomaly_.params
        self._feature = params.mode == "feature"
        self._w = params.weight

    def _clean(self, x: Mapping[str, Any]) -> dict[str, float]:
        return self.sup._clean(x)

    def _augment(self, xc: dict[str, float]) -> dict[str, float]:
        xa = dict(xc)
        xa[ANOMALY_FEATURE] = _clamp(self.anomaly._proba(xc))
        return xa

    def _proba(self, xc: dict[str, float]) -> float:
        if self._feature:
            return self.sup._proba(self._augment(xc))
        a = _clamp(self.anomaly._proba(xc))
        return (1.0 - self._w) * _clamp(self.sup._proba(xc)) + self._w * a

    def _learn(self, xc: dict[str, float], y: bool) -> None:
        self.sup.labels_learned += 1
        self.sup._learn(self._augment(xc) if self._feature else xc, y)

    def _observe(self, xc: dict[str, float]) -> None:
        self.anomaly.observed += 1
        self.anomaly._observe(xc)

    def _contributions(self, xc: dict[str, float]) -> dict[str, float]:
        if self._feature:
            return self.sup._contributions(self._augment(xc))
        sup_share = (1.0 - self._w) * _clamp(self.sup._proba(xc))
        anomaly_share = self._w * _clamp(self.anomaly._proba(xc))
        part, scale = (self.sup, 1.0 - self._w) if sup_share >= anomaly_share else (self.anomaly, self._w)
        return {f: c * scale for f, c in part._contributions(xc).items()}

    def restart(self, params: Mapping[str, Any] | None = None) -> Model:
        fresh = self.clone(params)
        assert isinstance(fresh, Combo)
        fresh.sup = self.sup.restart((params or {}).get("supervised"))
        fresh.anomaly = copy.deepcopy(self.anomaly)
        return fresh

    def _explain(self, xc: dict[str, float], x: Mapping[str, Any], k: int) -> list[Reason]:
        values: Mapping[str, Any] = x
        if self._feature:
            xa = self._augment(xc)
            values = {**x, ANOMALY_FEATURE: xa[ANOMALY_FEATURE]}
            return _reasons.top_reasons(self.sup._contributions(xa), values, k)
        return _reasons.top_reasons(self._contributions(xc), values, k)


# -- the factory ------------------------------------------------------------------------------

_CLASSES: dict[str, Callable[[str, Any], Model]] = {
    "logreg": LogReg,
    "hat": HAT,
    "arf": ARF,
    "hst": HST,
    "rules": Rules,
}


def build_model(name: str, params: Mapping[str, Any] | None = None) -> Model:
    """A fresh zoo model by name; ``params`` override its defaults (see the module doc).

    Raises ConfigError for an unknown name (naming the known ones) or bad parameters.
    """
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    if "+" in name:
        sup_name, anomaly_name = name.split("+", 1)
        combo = validate_params(name, ComboParams, params)
        assert isinstance(combo, ComboParams)
        sup = build_model(sup_name, combo.supervised)
        ano = build_model(anomaly_name, combo.anomaly)
        assert isinstance(ano, HST)
        return Combo(name, combo, sup, ano)
    return _CLASSES[name](name, validate_params(name, _PARAMS[name], params))
