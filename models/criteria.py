"""The problem definition as configuration: the objective and the success criteria.

What fraudstream solves, written down once: score each card transaction in real time (binary
classification, positive class: fraud), rank models by one objective metric, and call a model good
enough only when every success criterion holds. The targets come from :class:`Settings`
(``FRAUDSTREAM_MAX_FPR``, ``..._MAX_P99_LATENCY_MS``, ``..._MIN_RECALL``,
``..._MIN_AVERAGE_PRECISION``, and the optional ``..._MIN_ROC_AUC`` and
``..._MIN_CARD_PRECISION_AT_100``). Every evaluation calls :func:`check` on its metrics and gets a
pass/fail table; a criterion whose metric is absent (or not a finite number) is "not measured",
which makes the whole report "incomplete" rather than passed.

>>> from fraudstream.settings import Settings
>>> report = check({"fpr": 0.0008, "recall": 0.42, "average_precision": 0.61},
...                Settings(_env_file=None))
>>> [(r.criterion.name, r.passed) for r in report.results]
[('fpr', True), ('p99_latency_ms', None), ('recall', True), ('average_precision', True)]
>>> report.status
'incomplete'
>>> check({"fpr_at_threshold": 0.002}, Settings(_env_file=None)).status
'fail'
"""

from __future__ import annotations

import io
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.table import Table

    from fraudstream.settings import Settings

__all__ = [
    "CriteriaReport",
    "Criterion",
    "CriterionResult",
    "ProblemDefinition",
    "check",
    "criteria_from_settings",
    "problem_from_settings",
]

#: Keys under which an evaluation may report each metric, in order of preference (the operating
#: threshold's figure first).
METRIC_KEYS: dict[str, tuple[str, ...]] = {
    "fpr": ("fpr_at_threshold", "fpr", "false_positive_rate"),
    "p99_latency_ms": ("p99_latency_ms", "latency_p99_ms", "latency_ms_p99"),
    "recall": ("recall_at_threshold", "recall"),
    "average_precision": ("average_precision", "ap"),
    "roc_auc": ("roc_auc", "auc"),
    "card_precision_at_100": ("card_precision_at_100", "cp_at_100"),
}


@dataclass(frozen=True)
class Criterion:
    """One success criterion: ``metric op target``, e.g. ``fpr <= 0.001``."""

    name: str
    op: Literal["<=", ">="]
    target: float
    setting: str
    description: str
    percent: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return METRIC_KEYS.get(self.name, (self.name,))

    def holds(self, value: float) -> bool:
        """Whether a measured value meets the target.

        >>> Criterion("fpr", "<=", 0.001, "MAX_FPR", "").holds(0.001)
        True
        >>> Criterion("recall", ">=", 0.3, "MIN_RECALL", "").holds(0.29)
        False
        """
        return value <= self.target if self.op == "<=" else value >= self.target

    def format(self, value: float | None) -> str:
        if value is None:
            return "not measured"
        if self.percent:
            return f"{value * 100:.3g} %"
        if self.name.endswith("_ms"):
            return f"{value:.4g} ms"
        return f"{value:.4g}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "target": self.target, "setting": self.setting,
                "description": self.description, "metric_keys": list(self.keys)}


def criteria_from_settings(settings: Settings) -> tuple[Criterion, ...]:
    """The success criteria configured in ``settings`` (unset optional targets are left out)."""
    out = [
        Criterion("fpr", "<=", settings.max_fpr, "FRAUDSTREAM_MAX_FPR",
                  "false-positive rate at the operating threshold", percent=True),
        Criterion("p99_latency_ms", "<=", settings.max_p99_latency_ms,
                  "FRAUDSTREAM_MAX_P99_LATENCY_MS", "99th percentile of scoring latency"),
        Criterion("recall", ">=", settings.min_recall, "FRAUDSTREAM_MIN_RECALL",
                  "share of frauds caught at the operating threshold", percent=True),
        Criterion("average_precision", ">=", settings.min_average_precision,
                  "FRAUDSTREAM_MIN_AVERAGE_PRECISION", "area under the precision-recall curve"),
    ]
    if settings.min_roc_auc is not None:
        out.append(Criterion("roc_auc", ">=", settings.min_roc_auc, "FRAUDSTREAM_MIN_ROC_AUC",
                             "area under the ROC curve"))
    if settings.min_card_precision_at_100 is not None:
        out.append(Criterion("card_precision_at_100", ">=", settings.min_card_precision_at_100,
                             "FRAUDSTREAM_MIN_CARD_PRECISION_AT_100",
                             "daily share of compromised cards among the 100 riskiest"))
    return tuple(out)


@dataclass(frozen=True)
class ProblemDefinition:
    """What is solved, what is maximised, and what counts as success."""

    objective: str
    task: str
    objective_metric: str
    criteria: tuple[Criterion, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "task": self.task,
                "objective_metric": self.objective_metric,
                "criteria": [c.to_dict() for c in self.criteria]}

    def table(self) -> Table:
        from rich.table import Table

        table = Table(title="Success criteria", title_justify="left")
        table.add_column("criterion", no_wrap=True)
        table.add_column("target", no_wrap=True)
        table.add_column("setting", no_wrap=True)
        table.add_column("meaning")
        for c in self.criteria:
            table.add_row(c.name, f"{c.op} {c.format(c.target)}", c.setting, c.description)
        return table

    def to_text(self, width: int = 120) -> str:
        head = (f"Objective: {self.objective}\nTask: {self.task}\n"
                f"Models are ranked by: {self.objective_metric}\n")
        return head + _render(self.table(), width)


def problem_from_settings(settings: Settings) -> ProblemDefinition:
    """The problem definition configured in ``settings``."""
    fpr = f"{settings.max_fpr * 100:g} %"
    return ProblemDefinition(
        objective=(f"flag fraudulent card transactions in real time, catching as many frauds as "
                   f"possible while wrongly flagging at most {fpr} of genuine ones, "
                   f"within {settings.max_p99_latency_ms:g} ms (p99)"),
        task="binary classification: one fraud probability per transaction; positive class "
             "is_fraud = 1; labels arrive late (delayed feedback)",
        objective_metric=settings.objective_metric,
        criteria=criteria_from_settings(settings),
    )


@dataclass(frozen=True)
class CriterionResult:
    """One row of the pass/fail table; ``passed`` is None when the metric was not measured."""

    criterion: Criterion
    measured: float | None
    metric_key: str | None
    passed: bool | None

    def to_dict(self) -> dict[str, Any]:
        c = self.criterion
        return {"criterion": c.name, "op": c.op, "target": c.target, "measured": self.measured,
                "metric_key": self.metric_key,
                "passed": self.passed, "status": _status_word(self.passed)}


@dataclass(frozen=True)
class CriteriaReport:
    """The pass/fail table of one evaluation."""

    results: tuple[CriterionResult, ...]

    @property
    def status(self) -> Literal["pass", "fail", "incomplete"]:
        """fail if any criterion fails; else incomplete if any is not measured; else pass."""
        if any(r.passed is False for r in self.results):
            return "fail"
        if any(r.passed is None for r in self.results):
            return "incomplete"
        return "pass"

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "passed": self.passed,
                "criteria": [r.to_dict() for r in self.results]}

    def table(self) -> Table:
        from rich.table import Table

        table = Table(title=f"Success criteria: {self.status.upper()}", title_justify="left")
        for col in ("criterion", "target", "measured", "result"):
            table.add_column(col)
        for r in self.results:
            c = r.criterion
            table.add_row(c.name, f"{c.op} {c.format(c.target)}", c.format(r.measured),
                          _status_word(r.passed))
        return table

    def to_text(self, width: int = 100) -> str:
        return _render(self.table(), width)


def check(
    metrics: Mapping[str, Any], criteria: Sequence[Criterion] | Settings
) -> CriteriaReport:
    """Check ``metrics`` (a flat mapping of metric name to number) against the criteria.

    ``criteria`` is a sequence of :class:`Criterion` or the settings they come from. Each criterion
    reads the first of its metric keys (:data:`METRIC_KEYS`) that holds a finite number.
    """
    if not isinstance(criteria, Sequence):
        criteria = criteria_from_settings(criteria)
    results = []
    for c in criteria:
        key, value = _lookup(metrics, c.keys)
        results.append(CriterionResult(c, value, key, None if value is None else c.holds(value)))
    return CriteriaReport(tuple(results))


def _lookup(metrics: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str | None, float | None]:
    for key in keys:
        value = metrics.get(key)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        if math.isfinite(float(value)):
            return key, float(value)
    return None, None


def _status_word(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "not measured"}[passed]


def _render(table: Table, width: int) -> str:
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False).print(table)
    return buf.getvalue()
