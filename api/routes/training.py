"""``/training``: train one model (a job), evaluate it on the later period, save it to the
registry with its operating threshold and metrics (optionally as a challenger, or promoted).

:func:`models.training.train`; ROC and precision-recall curves are written into the job's folder.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import Field

from api.deps import ApiKey, JobsDep, SettingsDep
from api.http import COMMON_RESPONSES, ERROR_RESPONSES, http_error
from api.jobs import JobContext
from api.learning import LearningIn
from api.routes.jobs import (
    KIND_LINKS,
    JobPublic,
    WaitQuery,
    accepted,
    file_response,
    job_of_kind,
    result_of,
)
from api.sources import checked_source
from fraudstream.errors import FraudstreamError

router = APIRouter(prefix="/training", tags=["training"], responses=COMMON_RESPONSES)

KIND_LINKS["training"] = lambda rec: {"report": f"/training/{rec.id}"}


class TrainingCreate(LearningIn):
    """The model to train, and where it goes in the registry."""

    model: str = Field(description="a name of the zoo or a batch model (logreg, hat, arf, "
                       "sk-rf, lgbm, ...)", examples=["logreg"])
    params: dict[str, Any] = Field(default_factory=dict, description="the model's parameters")
    promote: bool = Field(default=False, description="make it the champion")
    challenger: bool = Field(default=False, description="add it to the challengers")


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             dependencies=[ApiKey], summary="Train, evaluate and register one model (a job)",
             responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404)})
def start_training(body: TrainingCreate, jobs: JobsDep, settings: SettingsDep,
                   response: Response, wait: WaitQuery = 0.0) -> JobPublic:
    """404 for an unknown data set; 422 for a bad path, mapping, model name or parameter, or
    promote and challenger together. The job's result: the registry version, its threshold, the
    evaluation (metrics, criteria, leaderboard) and the plots."""
    from models.training import parse_models, train

    if body.promote and body.challenger:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "promote or challenger, not both")
    try:
        spec = parse_models([body.model], body.params)[0]  # a bad name or parameter: 422 now
        path, mapping, _ = checked_source(body, settings)
    except FraudstreamError as exc:
        raise http_error(exc) from exc

    def run(ctx: JobContext) -> dict[str, Any]:
        result = train(path, mapping, spec, body.protocol, feature_set=body.feature_set,
                       settings=settings, max_fpr=body.max_fpr, promote=body.promote,
                       challenger=body.challenger, plots_dir=ctx.folder, nrows=body.nrows,
                       progress=ctx.progress, cancel=ctx.cancelled)
        return result.to_dict()

    params = {**body.model_dump(mode="json", exclude_none=True), "path": str(path)}
    return accepted(jobs, "training", params, run, response, wait)


@router.get("/{job_id}", summary="The training result: version, threshold, evaluation",
            responses={404: ERROR_RESPONSES[404], 409: ERROR_RESPONSES[409]})
def get_training(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    return result_of(jobs, job_id, "training", "result")  # type: ignore[no-any-return]


@router.get("/{job_id}/{name}", summary="A plot (ROC, precision-recall) of the evaluation",
            responses={404: ERROR_RESPONSES[404]})
def get_file(job_id: str, name: str, jobs: JobsDep) -> Any:
    job_of_kind(jobs, job_id, "training")
    return file_response(jobs, job_id, name)
