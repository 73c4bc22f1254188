"""The problem definition: criteria from settings, the pass/fail table, its text and JSON."""

from __future__ import annotations

import json

from fraudstream.settings import Settings
from models.criteria import Criterion, check, criteria_from_settings, problem_from_settings


def settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[arg-type]


def test_criteria_come_from_settings() -> None:
    s = settings(max_fpr=0.002, max_p99_latency_ms=150, min_recall=0.4, min_average_precision=0.5)
    got = {(c.name, c.op, c.target) for c in criteria_from_settings(s)}
    assert got == {("fpr", "<=", 0.002), ("p99_latency_ms", "<=", 150.0), ("recall", ">=", 0.4),
                   ("average_precision", ">=", 0.5)}
    more = criteria_from_settings(settings(min_roc_auc=0.85, min_card_precision_at_100=0.25))
    assert [c.name for c in more][-2:] == ["roc_auc", "card_precision_at_100"]
    problem = problem_from_settings(settings())
    assert "0.1 %" in problem.objective and "200 ms" in problem.objective
    assert problem.objective_metric == "average_precision"
    json.dumps(problem.to_dict())


def test_all_pass_some_fail_or_not_measured() -> None:
    s = settings()
    good = {"fpr": 0.0005, "p99_latency_ms": 12.0, "recall": 0.5, "average_precision": 0.7}
    report = check(good, s)
    assert report.status == "pass" and report.passed
    assert [r.passed for r in report.results] == [True, True, True, True]

    report = check({**good, "recall": 0.29}, s)
    assert report.status == "fail" and not report.passed
    assert [r.criterion.name for r in report.results if r.passed is False] == ["recall"]

    report = check({k: v for k, v in good.items() if k != "p99_latency_ms"}, s)
    assert report.status == "incomplete" and not report.passed
    row = report.to_dict()["criteria"][1]
    assert row == {"criterion": "p99_latency_ms", "op": "<=", "target": 200.0, "measured": None,
                   "metric_key": None, "passed": None, "status": "not measured"}


def test_targets_are_inclusive_and_bad_values_are_not_measured() -> None:
    s = settings()
    report = check({"fpr": 0.001, "recall": 0.3, "average_precision": float("nan"),
                    "p99_latency_ms": True}, s)
    by = {r.criterion.name: r for r in report.results}
    assert by["fpr"].passed is True and by["recall"].passed is True
    assert by["average_precision"].passed is None  # NaN: not measured
    assert by["p99_latency_ms"].passed is None  # a boolean is not a number


def test_operating_threshold_figures_are_preferred() -> None:
    report = check({"fpr": 0.5, "fpr_at_threshold": 0.0009, "recall": 0.9,
                    "recall_at_threshold": 0.2}, settings())
    by = {r.criterion.name: r for r in report.results}
    assert (by["fpr"].metric_key, by["fpr"].measured, by["fpr"].passed) == (
        "fpr_at_threshold", 0.0009, True)
    assert (by["recall"].metric_key, by["recall"].passed) == ("recall_at_threshold", False)


def test_text_and_json_rendering() -> None:
    report = check({"fpr": 0.002, "recall": 0.5}, settings())
    text = report.to_text()
    assert "Success criteria: FAIL" in text
    assert "0.2 %" in text and "FAIL" in text and "not measured" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["status"] == "fail" and len(data["criteria"]) == 4


def test_explicit_criteria() -> None:
    crit = [Criterion("roc_auc", ">=", 0.87, "X", "auc")]
    assert check({"auc": 0.871}, crit).passed
    assert check({"roc_auc": 0.869}, crit).status == "fail"
    assert check({}, crit).status == "incomplete"
