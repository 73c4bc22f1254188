"""``/evaluation``: evaluate models on a time-ordered split (a job): a leaderboard with ROC AUC,
average precision, card precision@100, the threshold for the FPR target and its recall, the
success criteria, ROC and precision-recall curves (PNG in the job's folder).

:func:`models.training.evaluate`; nothing is saved to the registry (``/training`` does that).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
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
from models.training import ModelSpec

router = APIRouter(prefix="/evaluation", tags=["evaluation"], responses=COMMON_RESPONSES)

KIND_LINKS["evaluation"] = lambda rec: {"report": f"/evaluation/{rec.id}"}


class EvaluationCreate(LearningIn):
    """The models to compare."""

    models: list[str | ModelSpec] = Field(
        min_length=1, max_length=20, description="names, or {name, params} specs",
        examples=[["logreg", "hat", {"name": "sk-rf", "params": {"n_estimators": 100}}]])


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             dependencies=[ApiKey], summary="Evaluate models on a time split (a job)",
             responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404)})
def start_evaluation(body: EvaluationCreate, jobs: JobsDep, settings: SettingsDep,
                     response: Response, wait: WaitQuery = 0.0) -> JobPublic:
    """404 for an unknown data set; 422 for a bad path, mapping, model name or parameter. The
    job's result: the best model's figures at the top, the leaderboard, every model's metrics
    and criteria, the split, the plots."""
    from models.training import evaluate, parse_models

    try:
        specs = parse_models(body.models)
        path, mapping, _ = checked_source(body, settings)
    except FraudstreamError as exc:
        raise http_error(exc) from exc

    def run(ctx: JobContext) -> dict[str, Any]:
        report = evaluate(path, mapping, specs, body.protocol, feature_set=body.feature_set,
                          settings=settings, max_fpr=body.max_fpr, plots_dir=ctx.folder,
                          nrows=body.nrows, progress=ctx.progress, cancel=ctx.cancelled)
        return report.to_dict()

    params = {**body.model_dump(mode="json", exclude_none=True), "path": str(path)}
    return accepted(jobs, "evaluation", params, run, response, wait)


@router.get("/{job_id}", summary="The evaluation report: leaderboard, metrics, criteria",
            responses={404: ERROR_RESPONSES[404], 409: ERROR_RESPONSES[409]})
def get_evaluation(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    return result_of(jobs, job_id, "evaluation", "report")  # type: ignore[no-any-return]


@router.get("/{job_id}/{name}", summary="A plot (ROC, precision-recall curves)",
            responses={404: ERROR_RESPONSES[404]})
def get_file(job_id: str, name: str, jobs: JobsDep) -> Any:
    job_of_kind(jobs, job_id, "evaluation")
    return file_response(jobs, job_id, name)
