"""``/tuning``: search a model's parameters (a job): grid, random or Bayesian (Optuna TPE) on the
time split or the prequential protocol; every trial in a table; the best configuration can be
registered as a challenger. :func:`models.tuning.tune`.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import Field

from api.deps import ApiKey, JobsDep, SettingsDep
from api.http import COMMON_RESPONSES, ERROR_RESPONSES, http_error
from api.jobs import JobContext
from api.learning import LearningIn
from api.routes.jobs import KIND_LINKS, JobPublic, WaitQuery, accepted, result_of
from api.sources import checked_source
from fraudstream.errors import FraudstreamError

router = APIRouter(prefix="/tuning", tags=["tuning"], responses=COMMON_RESPONSES)

KIND_LINKS["tuning"] = lambda rec: {"result": f"/tuning/{rec.id}"}


class TuningCreate(LearningIn):
    """The model, the search space and the search."""

    model: str = Field(examples=["logreg"])
    space: dict[str, Any] | None = Field(
        default=None, description="parameter -> list of values, or {low, high, log, int, step}; "
                                  "default: the model's own space")
    method: Literal["grid", "random", "bayes"] = "bayes"
    trials: int | None = Field(default=20, ge=1, le=500, description="grid: all when null")
    fixed: dict[str, Any] = Field(default_factory=dict, description="parameters not searched")
    seed: int = Field(default=0, ge=0)
    folds: int = Field(default=1, ge=1, le=10,
                       description="judge each configuration on this many splits moved back")
    challenger: bool = Field(default=False, description="save the best as a challenger")


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             dependencies=[ApiKey], summary="Tune a model's parameters (a job)",
             responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404)})
def start_tuning(body: TuningCreate, jobs: JobsDep, settings: SettingsDep,
                 response: Response, wait: WaitQuery = 0.0) -> JobPublic:
    """404 for an unknown data set; 422 for a bad path, mapping, model or fixed parameter. The
    job's result: the trials best first, the best parameters, metrics and criteria, and the
    registered version."""
    from models.training import ModelSpec, parse_models
    from models.tuning import tune

    try:
        parse_models([ModelSpec(name=body.model, params=dict(body.fixed))])
        path, mapping, _ = checked_source(body, settings)
    except FraudstreamError as exc:
        raise http_error(exc) from exc

    def run(ctx: JobContext) -> dict[str, Any]:
        result = tune(path, mapping, body.model, space=body.space, method=body.method,
                      trials=body.trials, options=body.protocol, fixed=body.fixed,
                      feature_set=body.feature_set, settings=settings, max_fpr=body.max_fpr,
                      seed=body.seed, folds=body.folds, register=body.challenger,
                      nrows=body.nrows, progress=ctx.progress, cancel=ctx.cancelled)
        return result.to_dict()

    params = {**body.model_dump(mode="json", exclude_none=True), "path": str(path)}
    return accepted(jobs, "tuning", params, run, response, wait)


@router.get("/{job_id}", summary="The tuning result: trials, best configuration",
            responses={404: ERROR_RESPONSES[404], 409: ERROR_RESPONSES[409]})
def get_tuning(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    return result_of(jobs, job_id, "tuning", "result")  # type: ignore[no-any-return]
