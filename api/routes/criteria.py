"""``/criteria``: the problem definition (objective, task, ranking metric) and success criteria.

The same figures as ``fraudstream criteria`` (:mod:`models.criteria`), from the settings
(``FRAUDSTREAM_MAX_FPR``, ``..._MAX_P99_LATENCY_MS``, ``..._MIN_RECALL``, ...).
``POST /criteria/check`` gives the pass/fail table of a set of metrics.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, Strict

from api.deps import SettingsDep
from api.http import COMMON_RESPONSES
from models.criteria import check, problem_from_settings

router = APIRouter(prefix="/criteria", tags=["criteria"], responses=COMMON_RESPONSES)


class CriterionPublic(BaseModel):
    name: str
    op: Literal["<=", ">="]
    target: float
    setting: str
    description: str
    metric_keys: list[str] = Field(description="keys an evaluation's metrics may use for it")


class ProblemPublic(BaseModel):
    objective: str
    task: str
    objective_metric: str = Field(description="what model selection and tuning maximise")
    criteria: list[CriterionPublic]


class CriteriaCheck(BaseModel):
    metrics: dict[str, Annotated[float, Strict()] | None] = Field(
        description="metric name -> value, as an evaluation writes them",
        examples=[{"fpr_at_threshold": 0.0008, "recall_at_threshold": 0.41,
                   "average_precision": 0.62, "p99_latency_ms": 12.5}])


class CriterionResultPublic(BaseModel):
    criterion: str
    op: str
    target: float
    measured: float | None
    metric_key: str | None = Field(description="the key of ``metrics`` that was read")
    passed: bool | None = Field(description="None: not measured")
    status: str


class CriteriaReportPublic(BaseModel):
    status: Literal["pass", "fail", "incomplete"]
    passed: bool
    criteria: list[CriterionResultPublic]


@router.get("", response_model=ProblemPublic, summary="The problem definition and criteria")
def get_criteria(settings: SettingsDep) -> dict[str, Any]:
    return problem_from_settings(settings).to_dict()


@router.post("/check", response_model=CriteriaReportPublic,
             summary="Check metrics against the criteria (changes nothing)")
def check_criteria(body: CriteriaCheck, settings: SettingsDep) -> dict[str, Any]:
    """``fail`` if any criterion fails; ``incomplete`` if one is not measured; else ``pass``."""
    return check(body.metrics, settings).to_dict()
